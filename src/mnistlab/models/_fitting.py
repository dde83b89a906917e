"""Pieces of fitting that several families share.

``convergence_warnings`` turns scikit-learn's ConvergenceWarning into state (for
logreg's scikit-learn solvers and mlp); ``held_out`` is the validation split of
the NumPy and PyTorch loops, whose failure names the parameter that caused it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..data import preprocess
from ..errors import ParameterError


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


def held_out(X: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """``preprocess.validation_split``; a share of the data that cannot be split in a stratified way
    (fewer held-out or remaining rows than classes, a class of one) is ``validation_fraction``'s fault."""
    try:
        return preprocess.validation_split(X, y, fraction=fraction, seed=seed)
    except ValueError as exc:
        raise ParameterError("validation_fraction", f"{fraction} of {len(y)} examples cannot be held out "
                                                    f"stratified: {exc}") from None
