"""The errors mnistlab raises for input it cannot use: one base class, one subclass per cause.

Anything raised that is not a ``MnistlabError`` is a bug in mnistlab, not bad
input: the command line shows it as one (with the traceback under ``--debug``)
and the web API answers 500. Messages name the library's parameters
(``train_size``), never command-line flags; a shell that has flags translates
``ParameterError.parameter`` itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from contextvars import ContextVar
from pathlib import Path
from types import FrameType


class MnistlabError(Exception):
    """Input mnistlab cannot use; the message says what and why, in one line."""


class DatasetError(MnistlabError):
    """A dataset file is missing, malformed or not what was asked for."""


class ParameterError(MnistlabError, ValueError):
    """A parameter value that is not allowed. ``parameter`` names a keyword parameter (a shell
    shows it as its flag); None for a positional one or several at once.

    Also a ``ValueError``, as scikit-learn expects of an estimator's invalid parameters.
    """

    def __init__(self, parameter: str | None, problem: str):
        self.parameter, self.problem = parameter, problem
        super().__init__(f"{parameter}: {problem}" if parameter else problem)

    def __reduce__(self):  # so that it crosses from a worker process as itself
        return type(self), (self.parameter, self.problem)


class ModelFileError(MnistlabError):
    """A model file is missing, foreign, tampered with or inconsistent."""


class OtherFitsCheckpointError(ModelFileError):
    """A resumed fit found the unfinished checkpoint of a fit with other parameters or data: resuming would
    train another model, and replacing it would lose its epochs. ``parameter`` names the one whose other value
    resumes it, where the family knows it (as ``ParameterError`` names one), else None."""

    def __init__(self, problem: str, parameter: str | None = None):
        self.parameter, self.problem = parameter, problem
        super().__init__(f"{parameter}: {problem}" if parameter else problem)

    def __reduce__(self):  # so that it crosses from a worker process as itself
        return type(self), (self.problem, self.parameter)


class ExportError(MnistlabError):
    """A model that cannot be exported to the format asked for, an export that would not compute
    what the model computes (it is then not written), or the packages an export needs are missing."""


class DivergedError(MnistlabError):
    """A fit whose numbers went past their type's range, to infinity or NaN: its settings caused it, not the
    data. ``reason`` says which numbers, and where ("its loss in epoch 3 is not finite")."""

    def __init__(self, family: str, reason: str):
        self.family, self.reason = family, reason
        super().__init__(f"{family} diverged in training: {reason}; its settings caused it (a learning rate too "
                         "high is the usual cause, where it has one)")

    def __reduce__(self):  # so that it crosses from a worker process as itself
        return type(self), (self.family, self.reason)


class PhotoError(MnistlabError, ValueError):
    """A photo that cannot be used: unreadable, damaged or too large."""


class BlankPhotoError(PhotoError):
    """A photo that could be read but shows nothing object-like."""


class RunNotFoundError(MnistlabError, LookupError):
    """No run of that name, or the path is not a run folder."""


class RunExistsError(MnistlabError):
    """A run (a sweep, a comparison) of that name exists and overwriting was not asked for, or a run of
    that name is being written right now."""


class RunDamagedError(MnistlabError):
    """A run folder whose files are missing or unreadable; the message names the file."""


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """``exc``'s message on one line, for quoting inside ours: it may hold text from the input. With ``limit``, at
    most that many characters, cut after a whole word and marked " …": cut mid-word, a message listing values
    ended in a false one (HistGradientBoosting's monotonic_cst refusal "Observed values: [-392, …, -356, -35")."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if limit is None or len(text) <= limit:
        return text
    return text[:limit - 1].rsplit(" ", 1)[0] + " …"


def printable(text: str) -> str:
    """``text`` with its control characters escaped (``\n``, ``\x1b``), for quoting a name the user
    gave: a newline would break a message in two, an escape sequence would reach the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# on for the command line only (paths_relative): the API's objects, messages and a cluster's workers keep whole
# paths, which still name their files after a notebook's %cd or from another machine's working folder
_relative_paths: ContextVar[bool] = ContextVar("relative_paths", default=False)


@contextlib.contextmanager
def paths_relative():
    """Within it, ``shown_path`` shows a path as a terminal's user reads it: relative to the working folder."""
    token = _relative_paths.set(True)
    try:
        yield
    finally:
        _relative_paths.reset(token)


def shown_path(path: str | os.PathLike) -> Path:
    """``path`` as a message shows it. Under ``paths_relative`` (the command line): relative to the working folder
    where it lies inside it, as the user typed it (--out runsdir), where "/home/…/runsdir/runs/a/metrics.json"
    was said for a run named "a" (never relative to /, which cut only its slash). Only for a path the code made: a
    value the user gave is quoted as given (the working folder cut from a finished line had cut it from their
    --name $PWD/myrun too)."""
    path = Path(path)
    if not _relative_paths.get() or not path.is_absolute():
        return path
    try:
        cwd = Path.cwd()
        return path if cwd == Path(cwd.anchor) else path.relative_to(cwd)
    except (ValueError, OSError):  # OSError: the working folder was deleted meanwhile
        return path


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str | Warning, category: type[Warning] | None = None) -> None:
    """``warnings.warn`` said at the user's call: the first frame outside mnistlab and contextlib (whose frames
    a ``with`` block or a context manager used as a decorator puts between). A fixed stacklevel pointed into
    either as the calls between differed ("contextlib.py:81: DataConversionWarning" from a PyTorch family's fit,
    "base.py:217: UnusedParameterWarning" from any); Python 3.12's skip_file_prefixes would do it, not 3.11."""
    frame, level = sys._getframe(1), 2  # level 2: this function's caller
    while frame.f_back is not None and (frame.f_code.co_filename.startswith(_PACKAGE)
                                        or frame.f_code.co_filename == contextlib.__file__):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def raised_at(filename: str, lineno: int, frame: FrameType | None) -> tuple[str, int]:
    """Where a warning being shown (``frame``: the showwarning hook's caller) was raised in mnistlab, where the
    place it names is a caller of mnistlab's: ``warn`` names the first frame outside mnistlab, the user's call in
    Python, but the command line's is typer's ("typer/main.py:1445: UnusedParameterWarning"); then the innermost
    mnistlab frame past ``warn``'s. A library's own warning keeps its place (scikit-learn's naive_bayes.py, inside
    mnistlab's call or replayed after it)."""
    ours = None
    while frame is not None and (frame.f_code.co_filename, frame.f_lineno) != (filename, lineno):
        if ours is None and frame.f_code.co_filename.startswith(_PACKAGE) and frame.f_code is not warn.__code__:
            ours = frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return ours if frame is not None and ours is not None else (filename, lineno)


class UnusedParameterWarning(UserWarning):
    """A hyperparameter given that the family's other settings switch off (``l1_ratio`` without an elastic
    net): the fit runs as without it. ``parameter`` names it, as ``ParameterError`` does; warned as
    scikit-learn warns of an ``l1_ratio`` its penalty does not use."""

    def __init__(self, parameter: str, problem: str):
        self.parameter, self.problem = parameter, problem
        super().__init__(f"{parameter}: {problem}")

    def __reduce__(self):  # so that it crosses from a worker process (GridSearchCV's n_jobs) as itself
        return type(self), (self.parameter, self.problem)


class SchedulerLostWarning(UserWarning):
    """A sweep's Dask scheduler was lost midway: the points that had not finished are failed rows, without
    scores (``mnistlab.sweep`` warns; the command line says it as its one error line)."""


class NotConvergedWarning(UserWarning):
    """A fit stopped before its solver converged (at its iteration limit, say): its fit message says where.
    Warned by ``mnistlab.train``, as scikit-learn warns its ConvergenceWarning; the command line prints it."""
