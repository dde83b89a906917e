"""Model families by name. A family registers here and nowhere else.

Besides the families below, ``sklearn:NAME`` is scikit-learn's classifier NAME
(``sklearn:SVC``, ``sklearn:RandomForestClassifier``, …; see ``sklearn_any``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ParameterError

if TYPE_CHECKING:  # not imported here: a run's config.json is checked against the names without NumPy
    from .base import MnistlabModel

_FAMILIES: dict[str, str] = {
    # name -> "module:Class", imported on first use so that PyTorch is loaded
    # only by the families that need it.
    "logreg": "linear.logreg:LogisticRegression",
    "numpy-logreg": "numpy.logreg:NumpyLogReg",
    "numpy-softmax": "numpy.softmax:NumpySoftmax",
    "numpy-mlp": "numpy.mlp:NumpyMLP",
    "mlp": "sklearn_mlp:MLP",
    "lenet": "torch.lenet:LeNet",
    "cnn": "torch.cnn:CNN",
}
SKLEARN_PREFIX = "sklearn:"


def family_names() -> list[str]:
    return list(_FAMILIES)


def check_family_name(name) -> str:
    """``name`` if it can name a family, checked without importing it (PyTorch alone takes seconds);
    whether scikit-learn has the classifier of a ``sklearn:NAME`` is left to ``get_family``."""
    if not isinstance(name, str) or (name not in _FAMILIES and not name.startswith(SKLEARN_PREFIX)):
        raise ParameterError(None, f"unknown model {name!r}; choose one of: {', '.join(_FAMILIES)}, "
                                   f"or {SKLEARN_PREFIX}NAME for any scikit-learn classifier")
    return name


def family_summary(name: str) -> str:
    """The first paragraph of the family's docstring, on one line: what ``mnistlab models`` lists."""
    doc = (get_family(name).__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def get_family(name: str) -> type[MnistlabModel]:
    import importlib

    from .._io import signals_deferred

    # A family's first use imports its library (PyTorch, scikit-learn: seconds; sklearn:NAME imports all of
    # scikit-learn's classifiers), mid-way through a train() or sweep(): a Ctrl-C there, or Jupyter's interrupt,
    # left the library half-imported, and every later call in that kernel failed ("partially initialized module
    # 'torch' has no attribute 'cuda'"). The interrupt waits for the import to end.
    with signals_deferred():
        if check_family_name(name).startswith(SKLEARN_PREFIX):
            from .sklearn_any import family_class

            return family_class(name.removeprefix(SKLEARN_PREFIX))
        module_name, class_name = _FAMILIES[name].split(":")
        return getattr(importlib.import_module(f"{__name__}.{module_name}"), class_name)
