"""Pieces of fitting that several families share.

``convergence_warnings`` turns scikit-learn's ConvergenceWarning into state (for
logreg's scikit-learn solvers and mlp), which ``why_not_converged`` reads; ``refusals_of`` turns a scikit-learn
estimator's refusal of the data into a ParameterError (mlp, sklearn:NAME); ``reporter`` is what a fit's
``progress`` reports to; ``finite_proba`` is the one rule of
what a diverged fit is, which a fit of the gradient families applies to what it ends with and a run or a sweep
to its scores.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..callbacks import SILENT, FitProgress
from ..errors import DivergedError, ParameterError, one_line


def reporter(progress) -> FitProgress:
    """What a fit's ``progress`` reports to: a ``FitProgress`` as given, None or False silence; anything else a
    ParameterError. An estimator draws nothing itself (it never prints, nor imports Rich): True, a bar to
    ``ml.train``, is refused with the way to one. It had been an AttributeError ("'bool' object has no attribute
    'start'") in every family's fit."""
    if isinstance(progress, FitProgress):
        return progress
    if progress is None or isinstance(progress, (bool, np.bool_)) and not progress:
        return SILENT
    bar = " (an estimator draws no bar itself: mnistlab.progress.fit_progress() is ml.train's)" if progress else ""
    raise ParameterError("progress", f"must be a FitProgress, or None or False for none; got {progress!r}{bar}")


@contextmanager
def convergence_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record the ``ConvergenceWarning``s raised inside into the list this yields (filled on exit)
    and pass every other warning on.

    Not converging is a result the family reports (``converged_``, ``fit_message_``), not a
    warning to print; the other warnings are not ours to swallow.
    """
    from sklearn.exceptions import ConvergenceWarning  # the families that call this fit with scikit-learn

    found: list[warnings.WarningMessage] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            yield found
    finally:
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                found.append(w)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def why_not_converged(not_converged: list[warnings.WarningMessage], max_iter) -> str | None:
    """None where a scikit-learn fit stopped by its own rule; else why not: its ``ConvergenceWarning`` (those
    ``convergence_warnings`` recorded), or a ``max_iter`` of 0 (sag and saga return their zero start without a
    warning: "converged", at a tenth's accuracy)."""
    if not_converged:  # its first paragraph: the advice after it (a link, scaling the data) is not for our models
        return one_line(str(not_converged[0].message).split("\n\n")[0])
    return "max_iter=0 allows no iteration" if max_iter == 0 else None


@contextmanager
def refusals_of(family: str, what: str) -> Iterator[None]:
    """The classifier's own refusal of this data (a validation set too small, k neighbours among fewer
    images, a radius with none in it, a singular matrix) as a ParameterError, cut short: it may list
    every image it concerns."""
    try:
        yield
    # IndexError: CategoricalNB meeting a pixel value its training images never had; OverflowError: a count
    # (max_iter) past the C int the classifier's compiled solver keeps it in
    except (ValueError, IndexError, OverflowError, np.linalg.LinAlgError) as exc:
        if "non-finite parameter weights" in str(exc):  # scikit-learn's MLP: it blames the data, the settings did it
            raise DivergedError(family, "its weights are not finite") from None
        # its settings, the data, or the two together (a solver that refuses a penalty says so in its own words)
        raise ParameterError(None, f"{family} could not {what} this data, or not with these settings: "
                                   f"{one_line(exc, 300)}") from None


def finite_proba(proba: np.ndarray, family: str) -> np.ndarray:
    """``proba``, where every value is finite: NaN means the fit diverged, which the settings caused."""
    if not np.isfinite(proba).all():
        raise DivergedError(family, "its probabilities are not finite (NaN or infinity)")
    return proba
