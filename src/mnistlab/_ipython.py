"""Where the code runs, when that is IPython: a Jupyter kernel or IPython's terminal.

Nothing here imports IPython: a kernel has imported it already, and elsewhere it is not needed.
"""

from __future__ import annotations

import sys


def ipython_shell():
    """IPython's shell where this runs inside IPython (a kernel or its terminal), else None."""
    ipython = sys.modules.get("IPython")  # a kernel has imported it; importing it here would not help
    return ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None


def in_notebook() -> bool:
    """Whether this runs inside a Jupyter kernel (IPython's shell there is a ZMQInteractiveShell)."""
    shell = ipython_shell()
    return shell is not None and any(cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__)


def show_figures_in_ipython() -> None:
    """Have IPython show a matplotlib Figure that a cell returns as a picture. It does so only once pyplot
    has drawn (its inline backend registers the formatter then), and mnistlab draws without pyplot: in a
    fresh notebook ``run.figure(...)`` showed "<Figure size … with 2 Axes>". A formatter already there
    (``%matplotlib inline``, its settings) is kept."""
    shell = ipython_shell()
    if shell is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    registered = any(f"{cls.__module__}.{cls.__qualname__}" == "matplotlib.figure.Figure" for cls in png.type_printers)
    if not registered and ("matplotlib.figure", "Figure") not in png.deferred_printers:
        png.for_type_by_name("matplotlib.figure", "Figure", _figure_png)


def _figure_png(figure) -> bytes:
    from IPython.core.pylabtools import print_figure

    return print_figure(figure, "png", bbox_inches="tight")
