"""What every model family shares: the contract the pipeline relies on.

A family is a scikit-learn estimator (hyperparameters stored untouched in
``__init__``, work in ``fit``, learned attributes ending in ``_``) that takes
``X`` as float32 N×784 in [0, 1] and ``y`` as integer labels, and that can
give its learned state as named NumPy arrays and take it back. The CLI, runs,
reports, compare and the web page use nothing else, so they never
special-case a family.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class MnistlabModel(ClassifierMixin, BaseEstimator):
    """Base class of the model families.

    Subclasses set ``family`` (the name used on the command line and in model
    files) and ``learned_arrays`` (the ``*_`` attributes that make up a fitted
    model), and may override ``get_arrays``/``set_arrays`` when the state is
    not a flat list of arrays (e.g. a PyTorch ``state_dict``).

    Optional, used by reports when present:
    ``history_`` — dict of per-iteration or per-epoch curves (lists of floats);
    ``explain(X)`` — per-class, per-pixel contributions, shape N×classes×784.
    """

    family: ClassVar[str]
    learned_arrays: ClassVar[tuple[str, ...]] = ()

    def get_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name)) for name in self.learned_arrays}

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> MnistlabModel:
        missing = set(self.learned_arrays) - set(arrays)
        if missing:
            raise ValueError(f"model file lacks arrays: {', '.join(sorted(missing))}")
        for name in self.learned_arrays:
            setattr(self, name, arrays[name])
        return self
