"""Temperature scaling: one number that makes a model's probabilities say how often it is right.

A model's probabilities p are replaced by softmax(log p / T), with T fitted to
minimise the cross-entropy on images the model was not trained on (Guo et al.,
2017). T > 1 softens an over-confident model, T < 1 sharpens an under-confident
one; the ranking of the classes, and so every prediction, stays the same.
``TemperatureScaled`` wraps a fitted model of any family this way; its model
file records the temperature (``serialization``), so predictions made after
loading use it too.
"""

from __future__ import annotations

import numpy as np

from .._values import is_number
from ..errors import MnistlabError, ParameterError
from .base import occlusion_maps

BOUNDS = (0.05, 20.0)  # temperatures searched: from 20× sharper to 20× softer
MAX_TEMPERATURE = 1e6  # of one given (a model file's, set_params'): 0 or less would be no temperature
EPS = 1e-12  # the smallest probability taken the log of: a zero probability has a finite log


def log_probabilities(proba) -> np.ndarray:
    """log ``proba`` in float64, each probability floored at ``EPS``."""
    return np.log(np.maximum(np.asarray(proba, dtype=np.float64), EPS))


def scale(proba, temperature: float) -> np.ndarray:
    """``proba`` (N×classes) as softmax(log proba / temperature)."""
    logits = log_probabilities(proba) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(proba, y) -> tuple[float, str | None]:
    """The temperature in ``BOUNDS`` that minimises the mean cross-entropy of ``scale(proba, T)`` against ``y``,
    and None; or, where the model is right on every image, 1.0 and why: the cross-entropy then falls on as T
    goes to 0, and its bound made a binary model's test mistakes certain."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, dtype=int)
    if (np.argmax(proba, axis=1) == y).all():
        return 1.0, f"not fitted: the model is right on all {len(y):,} held-out images, which set no temperature"

    def loss(log_t: float) -> float:
        return float(-np.mean(log_probabilities(scale(proba, np.exp(log_t))[np.arange(len(y)), y])))

    found = minimize_scalar(loss, bounds=np.log(BOUNDS), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x)), None


def checked_temperature(value) -> float:
    """``value`` as a float, where it is a number above 0 and under ``MAX_TEMPERATURE``."""
    if not is_number(value) or not 0 < value < MAX_TEMPERATURE:  # also NaN
        raise ParameterError("temperature", f"must be a number above 0 and under {MAX_TEMPERATURE:g}, got {value!r}")
    return float(value)


class TemperatureScaled:
    """A fitted model whose probabilities are ``scale``d by ``temperature``; everything else is the model's own.

    Its parameters are scikit-learn's wrapper's (``model``, ``temperature``, and ``model__NAME`` its model's),
    so that ``sklearn.base.clone`` copies it. It cannot be fitted: the temperature is the fitted model's, found
    on images held out from its training (``ml.train(..., calibrate=True)``), and would not fit another fit.
    """

    def __init__(self, model, temperature: float):
        self.model, self.temperature = model, checked_temperature(temperature)

    def __getattr__(self, name):
        if name == "model":  # not yet set: no delegation loop
            raise AttributeError(name)
        return getattr(self.model, name)

    def get_params(self, deep: bool = True) -> dict:
        """``model`` and ``temperature``; with ``deep``, the model's own as ``model__NAME`` too."""
        params = {"model": self.model, "temperature": self.temperature}
        if deep:
            params.update({f"model__{name}": value for name, value in self.model.get_params(deep=True).items()})
        return params

    def set_params(self, **params) -> TemperatureScaled:
        """Set ``model``, ``temperature`` or the model's ``model__NAME``, each checked first; returns self."""
        own = {name: params.pop(name) for name in ("model", "temperature") if name in params}
        inner = {name.removeprefix("model__"): value for name, value in params.items() if name.startswith("model__")}
        if unknown := sorted(set(params) - {f"model__{name}" for name in inner}):
            raise ParameterError(unknown[0], "a calibrated model's parameters are model, temperature and the "
                                             "model's own as model__NAME")
        if "temperature" in own:
            own["temperature"] = checked_temperature(own["temperature"])
        for name, value in own.items():
            setattr(self, name, value)
        self.model.set_params(**inner)
        return self

    def fit(self, X, y, progress=None):
        """Refused: see the class's docstring."""
        raise MnistlabError("a calibrated model is fitted with its temperature by ml.train(..., calibrate=True), "
                            "on images held out from its training; to refit the model alone, fit its .model")

    def __sklearn_is_fitted__(self) -> bool:
        """Whether its model is fitted: this wrapper learns nothing of its own, and scikit-learn, finding none of
        its attributes ending in "_", took a calibrated run's model for unfitted (FrozenEstimator refused it)."""
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(self.model)
        except NotFittedError:
            return False
        return True

    def __repr__(self) -> str:
        return f"TemperatureScaled({self.model!r}, temperature={self.temperature:.4g})"

    def probabilities_note(self) -> str | None:
        """The model's note on what its probabilities are, and that they are scaled here."""
        note = self.model.probabilities_note()
        return None if note is None else f"{note}; here scaled by a temperature fitted on held-out images"

    def predict_proba(self, X) -> np.ndarray:
        """The model's probabilities, scaled by the temperature."""
        return scale(self.model.predict_proba(X), self.temperature)

    def explain(self, X, classes=None) -> np.ndarray:
        """The model's own maps where it has them (of its logits, which the temperature only divides); else
        occlusion of the scaled probabilities, which the run shows (the model's own occluded the unscaled)."""
        if self.model.can_explain:
            return self.model.explain(X, classes)
        return occlusion_maps(self, X, classes)

    def onnx_graph(self):
        """The model's graph followed by ``scale``: softmax(log max(p, EPS) / temperature)."""
        from onnx import helper, numpy_helper

        from .onnx_graphs import OUTPUT

        model = self.model.onnx_graph()
        graph, unscaled = model.graph, "unscaled_probabilities"
        for node in graph.node:  # the model's output becomes the input of the scaling
            node.output[:] = [unscaled if name == OUTPUT else name for name in node.output]
        graph.initializer.extend([numpy_helper.from_array(np.array(EPS, np.float32), "temperature_eps"),
                                  numpy_helper.from_array(np.array(self.temperature, np.float32), "temperature")])
        graph.node.extend([helper.make_node("Max", [unscaled, "temperature_eps"], ["clipped"]),
                           helper.make_node("Log", ["clipped"], ["log_probabilities"]),
                           helper.make_node("Div", ["log_probabilities", "temperature"], ["scaled_logits"]),
                           helper.make_node("Softmax", ["scaled_logits"], [OUTPUT], axis=1)])
        return model
