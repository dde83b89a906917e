"""Drawing a fit's progress: a Rich bar in a terminal, a tqdm bar in a notebook.

The models never draw anything: ``fit(X, y, progress=...)`` reports to a
``mnistlab.callbacks.FitProgress`` (start, advance, log, end). These are
the renderers, above the models layer:

* ``RichProgress`` — one bar on stderr (stdout stays clean for results) with
  the latest state, the time spent and the time left; logged lines (epoch
  summaries, solver reports) print above it and stay. Bytes (a download) show
  as sizes and speed, and their bar goes once done. On a file or a pipe (a log,
  a cluster job), where no bar is drawn, a line says how far the work got
  every ``QUIET_LINE_SECONDS``.
* ``NotebookProgress`` — tqdm's bar. ``tqdm.auto`` draws the notebook widget
  in Jupyter (tqdm's text bar on stdout where ipywidgets is missing), so no
  terminal escape codes end up in a cell's output.
* ``fit_progress(enabled)`` picks one for where the code runs.

    from mnistlab.progress import fit_progress
    model.fit(X, y, progress=fit_progress(True))
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .callbacks import SILENT, FitProgress
from .models.params import check
from ._ipython import in_notebook

BAR_WIDTH = 20
FIXED_COLUMNS_WIDTH = 48  # "1234/1234 iterations 0:00:00 left 0:00:00" and the gaps
STARTING = "starting"  # the state before the first advance
QUIET_LINE_SECONDS = 60  # how often a bar that cannot be drawn says how far it got instead


class RichProgress(FitProgress):
    """A Rich progress bar on ``console`` (default: a new one on stderr), lines logged above it."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task = None
        self._unit = ""
        self._last_line = 0.0  # time.monotonic() of the last line said instead of the bar

    def start(self, total: int | None, unit: str) -> None:
        self.end()
        # the state last: where the line is too narrow, it is what gets cut (see advance)
        counted = (DownloadColumn(), TransferSpeedColumn()) if unit == "byte" else (MofNCompleteColumn(),
                                                                                   TextColumn(f"{unit}s"))
        columns = (BarColumn(bar_width=BAR_WIDTH), *counted, TimeElapsedColumn(), TextColumn("left"),
                   TimeRemainingColumn(), TextColumn("{task.description}"))
        self._progress = Progress(*columns, console=self.console, transient=unit == "byte")
        self._progress.start()
        self._task = self._progress.add_task(STARTING, total=total)
        self._unit, self._last_line = unit, time.monotonic()

    def advance(self, done: int, description: str = "") -> None:
        if self._progress is None:
            return
        if not self._draws() and time.monotonic() - self._last_line >= QUIET_LINE_SECONDS:
            self._say_how_far(done, description)
        room = self.console.width - BAR_WIDTH - FIXED_COLUMNS_WIDTH
        if len(description) > room:  # Rich would squeeze every column instead
            description = description[:max(room - 1, 0)] + "…"
        self._progress.update(self._task, completed=done, **({"description": description} if description else {}))

    def _draws(self) -> bool:
        """Whether Rich draws the bar as it goes: on a terminal that is not a dumb one (TERM=dumb: Emacs's shell)."""
        return self.console.is_terminal and not self.console.is_dumb_terminal

    def _say_how_far(self, done: int, description: str) -> None:
        """The bar's count, time and state as a line: Rich draws no bar on a file or a pipe until the end,
        and a benchmark of many hours said nothing in its log until then."""
        task = self._progress.tasks[0]
        if self._unit == "byte":
            count = f"{done / 1e6:.1f}" + (f" of {task.total / 1e6:.1f}" if task.total else "") + " MB"
        else:
            count = f"{done}" + (f"/{task.total:.0f}" if task.total else "") + f" {self._unit}s"
        elapsed = timedelta(seconds=int(task.elapsed or 0))
        self.log(f"{count}, {elapsed} elapsed" + (f": {description}" if description else ""))
        self._last_line = time.monotonic()

    def log(self, line: str) -> None:
        console = self._progress.console if self._progress is not None else self.console
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    def end(self) -> None:
        if self._progress is not None:
            if sys.exc_info()[0] is not None:  # ended by an error: its one line is what is left, not the bar
                self._progress.live.transient = True
            else:  # a fit that converged early is done, not "68/500 iterations … left 0:00:38", as tqdm's below
                task = self._progress.tasks[0]
                self._progress.update(self._task, total=task.completed,
                                      description="" if task.description == STARTING else task.description)
            if self._progress.live.transient and not self._draws():
                with self.console.capture():  # nothing was drawn on a file or a pipe: Rich would write an empty line
                    self._progress.stop()
            else:
                self._progress.stop()
            self._progress = self._task = None


class NotebookProgress(FitProgress):
    """A tqdm bar (``tqdm.auto``: the widget in Jupyter); logged lines are written above it."""

    def __init__(self, **tqdm_options):
        self.options = tqdm_options
        self._bar = None
        self._unit = ""

    def start(self, total: int | None, unit: str) -> None:
        import importlib.util

        # only a notebook needs it; without ipywidgets (no dependency of mnistlab's) tqdm.auto warns in red
        # that the notebook is out of date and draws on stderr: its text bar on stdout then, without a word
        if importlib.util.find_spec("ipywidgets") is not None:
            from tqdm.auto import tqdm
            options = self.options
        else:
            from tqdm.std import tqdm
            options = {"file": sys.stdout, **self.options}
        self.end()
        sizes = {"unit": "B", "unit_scale": True, "unit_divisor": 1024} if unit == "byte" else {"unit": unit}
        self._bar = tqdm(total=total, **sizes, **options)
        self._unit = unit

    def advance(self, done: int, description: str = "") -> None:
        if self._bar is None:
            return
        if description:
            self._bar.set_description_str(description, refresh=False)
        self._bar.update(done - self._bar.n)

    def log(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line)

    def end(self) -> None:
        bar = self._bar
        if bar is not None:
            # A fit that converged early is done: tqdm would draw it red, as failed. (In the ``finally`` that
            # calls this on an error or Ctrl-C, the exception is there to see, and red is right; so is it for
            # a download cut short, whose next attempt starts a new bar.)
            if bar.total and 0 < bar.n < bar.total and sys.exc_info()[0] is None and self._unit != "byte":
                bar.total = bar.n
                if hasattr(bar, "container"):  # the widget's own maximum (tqdm's notebook bar: text, bar, text)
                    bar.container.children[1].max = bar.n
            bar.close()
            if sys.exc_info()[0] is not None and hasattr(bar, "container"):
                # tqdm's notebook bar judges by its count alone: a download that failed its checksum had all its bytes
                bar.disp(bar_style="danger", check_delay=False)
            self._bar = None


class StatusLine(FitProgress):
    """One line on ``console`` once the work starts, and nothing more: where a bar is not wanted
    (``--json``), a sign of life that comes after every check, so bad input still ends in one line."""

    def __init__(self, line: str, console: Console):
        self.line, self.console = line, console

    def start(self, total: int | None, unit: str) -> None:
        if self.line:
            self.console.print(self.line, markup=False, highlight=False, soft_wrap=True)
            self.line = ""


def fit_progress(enabled: bool | FitProgress = True) -> FitProgress:
    """A renderer for where the code runs: tqdm's in a Jupyter kernel, Rich's elsewhere, or silence;
    a ``FitProgress`` given is used as it is."""
    check("progress", enabled, ["boolean", FitProgress])  # "no" is truthy
    if isinstance(enabled, FitProgress):
        return enabled
    if not enabled:
        return SILENT
    return NotebookProgress() if in_notebook() else RichProgress()
