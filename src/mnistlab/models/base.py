"""What every model family shares: the contract the pipeline relies on.

A family is a scikit-learn estimator (hyperparameters stored untouched in
``__init__``, work in ``fit``, learned attributes ending in ``_``) that takes
``X`` as float32 N×784 in [0, 1] and ``y`` as integer labels, and that can
give its learned state as named NumPy arrays and take it back. The CLI, runs,
reports, compare and the web page use nothing else, so they never
special-case a family.

What a family can show beyond predictions it declares here, so that figures,
reports, compare and the web ask the contract rather than test for a family's
attributes: ``can_explain`` (it has ``explain``), ``weight_images`` (one weight
per pixel and class), and how its training history reads (``history_x_label``,
``history_per_step``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import InvalidParameterError

from ..errors import ParameterError


@dataclass(frozen=True)
class Curves:
    """A fit's history, ready to plot: series of floats against ``x_label``."""

    title: str
    x_label: str
    series: dict[str, list[float]]


class MnistlabModel(ClassifierMixin, BaseEstimator):
    """Base class of the model families.

    Subclasses set ``family`` (the name used on the command line and in model
    files) and ``learned_arrays`` (the ``*_`` attributes that make up a fitted
    model), and may override ``get_arrays``/``set_arrays`` when the state is
    not a flat list of arrays (e.g. a PyTorch ``state_dict``).

    Fitted models may have ``history_``: a dict of per-iteration or per-epoch
    curves (lists of floats).
    """

    family: ClassVar[str]
    learned_arrays: ClassVar[tuple[str, ...]] = ()
    can_explain: ClassVar[bool] = False  # explain(X): per-class, per-pixel contributions, N×classes×784
    history_x_label: ClassVar[str] = "epoch"  # what one entry of a history series stands for
    history_per_step: ClassVar[tuple[str, ...]] = ()  # series recorded per optimiser step, not per x
    _parameter_constraints: ClassVar[dict] = {}  # scikit-learn's declaration of the allowed values

    def validate_params(self) -> None:
        """Check the hyperparameters against ``_parameter_constraints`` before any work is done."""
        try:
            self._validate_params()
        except InvalidParameterError as exc:
            raise ParameterError(None, str(exc)) from None

    def get_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name)) for name in self.learned_arrays}

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> MnistlabModel:
        missing = set(self.learned_arrays) - set(arrays)
        if missing:
            raise ValueError(f"model file lacks arrays: {', '.join(sorted(missing))}")
        for name in self.learned_arrays:
            setattr(self, name, arrays[name])
        return self

    def weight_images(self) -> np.ndarray | None:
        """The fitted weights as one 784-pixel image per class (rows), or None if the model has none."""
        return None

    def training_curves(self, history: dict | None = None) -> Curves | None:
        """``history`` (default: ``history_``) as curves to plot, or None when nothing was recorded."""
        history = getattr(self, "history_", None) if history is None else history
        if not history:
            return None
        title = "Convergence" if self.history_x_label == "iteration" else "Learning curves"
        return Curves(title, self.history_x_label, dict(history))

    @classmethod
    def comparable_curves(cls, history: dict | None) -> dict[str, list[float]]:
        """The series of ``history`` that runs of any family can share an axis on: per-epoch ones."""
        if cls.history_x_label != "epoch" or not history:
            return {}
        return {k: v for k, v in history.items() if k not in cls.history_per_step}
