"""How long work tells how it is going, without printing anything itself.

``fit(X, y, progress=...)`` takes a ``FitProgress``; the model calls ``start``
once, ``advance`` as units of work (epochs, iterations, optimiser steps)
complete, ``log`` for a line worth keeping (an epoch's summary, a solver's
iteration) and ``end`` when it stops. The default does nothing. A dataset's
download reports to the same object, in bytes. It sits at the bottom of the
layers so that models and data can both report without knowing who draws.
``mnistlab.progress`` draws it: a Rich bar on a terminal (``RichProgress``, what
the command line uses), a tqdm bar in Jupyter (``NotebookProgress``), and
``fit_progress`` picks one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class FitProgress:
    """Receives a fit's progress; every method does nothing unless a subclass draws it."""

    def start(self, total: int | None, unit: str) -> None:
        """The work will take ``total`` units of ``unit`` ("epoch", "iteration", "step", "byte"); None: unknown."""

    def advance(self, done: int, description: str = "") -> None:
        """``done`` units are complete; ``description`` is the latest state (loss, accuracy …), short."""

    def log(self, line: str) -> None:
        """A line worth keeping above the bar: an epoch's summary, a solver's report."""

    def end(self) -> None:
        """The fit is over (finished or not)."""


SILENT = FitProgress()


@contextmanager
def started(progress: FitProgress, total: int | None, unit: str) -> Iterator[FitProgress]:
    """``progress`` started, and ended however the work inside ends (an error, Ctrl-C): a notebook's bar
    would otherwise stay open."""
    progress.start(total, unit)
    try:
        yield progress
    finally:
        progress.end()


EVERY_LINE_UP_TO = 20  # a fit of at most this many epochs or iterations logs a line for each


def worth_a_line(number: int, total: int | None) -> bool:
    """Whether epoch or iteration ``number`` of ``total`` gets a ``log`` line: each of a short fit's; of a
    longer one's, 0, 1, 2, 5, 10, 20, 50, 100, … and the last, so that the log stays short however long."""
    if total is not None and (total <= EVERY_LINE_UP_TO or number == total):
        return True
    return number == 0 or number / 10 ** (len(str(number)) - 1) in (1, 2, 5)


class ThinnedLog:
    """A fit's epoch or iteration lines, logged to ``progress`` where ``worth_a_line`` picks them. The latest
    line left out is kept for ``flush`` (at the fit's end, or before a line of another kind): a fit that
    stops before its last epoch or iteration still shows where it stopped."""

    def __init__(self, progress: FitProgress, total: int | None):
        self.progress, self.total, self.held = progress, total, None

    def add(self, number: int, line: str) -> None:
        """Epoch or iteration ``number``'s line."""
        if worth_a_line(number, self.total):
            self.progress.log(line)
            self.held = None
        else:
            self.held = line

    def flush(self) -> None:
        """Log the line kept back, if any."""
        if self.held is not None:
            self.progress.log(self.held)
            self.held = None
