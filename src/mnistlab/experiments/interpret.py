"""Where is a model wrong? One object over a run's test results that answers it for any family.

``Interpretation`` holds a model's test predictions and (loaded on first
use) the model and the test images, and reads from them the most confident mistakes
(top losses), the class pairs most often confused, how well the probabilities
are calibrated, how accuracy holds up under shifted images, and a 2-D map of
the test set. It asks only the model contract (``predict_proba``, ``explain``,
``features``), so it never names a family; ``figures.py`` draws from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Integral

import numpy as np

from .. import metrics as metrics_mod
from ..data.preprocess import flatten_scale
from ..errors import ParameterError
from ..models.base import MnistlabModel
from ..models.params import Interval
from ..models.params import check as check_parameter
from ..models.temperature import log_probabilities
from .robustness import robustness
from .tsne import tsne

TOP_LOSSES = 10  # images in the top-losses figure
EMBEDDING_IMAGES = 800  # t-SNE (tsne.py): 0.37 s for these on one core (1,000: 0.57 s); more would slow every run down
# Perplexity 15 and 300 iterations, the first 250 exaggerated. On logistic regression's log-probabilities the
# map keeps neighbours as well as scikit-learn's Barnes-Hut TSNE did with these settings (and angle 0.8), in
# 0.82 s for the same 800 points on the same core, and as well as 1,000 iterations would: the true class of an
# image's 10 nearest neighbours in the map, by majority, is 74.5 % right (78 % in the 10-D log-probabilities
# themselves), trustworthiness 0.989. After 250 iterations the map is still exaggerated (65 %).
TSNE_SETTINGS = {"perplexity": 15.0, "iterations": 300}
MIN_EMBEDDED = 10
COUNT = [Interval(Integral, 1, None, closed="left")]  # how many images or pairs to show


@dataclass
class Interpretation:
    """A run's test results and what they say about where its model is wrong."""

    # the model, loaded when first asked: a run's top losses, confusions and list of figures need none of it
    # (an sklearn run's model file takes seconds to load)
    load_model: Callable[[], MnistlabModel]
    classes: list[str]
    y_true: np.ndarray
    proba: np.ndarray
    metrics: dict
    load_images: Callable[[], np.ndarray]  # the test images, uint8 N×28×28
    load_embedding: Callable[[], dict | None] = field(default=lambda: None)  # a map the run has cached

    @cached_property
    def model(self) -> MnistlabModel:
        """The fitted model."""
        return self.load_model()

    @cached_property
    def images(self) -> np.ndarray:
        """The test images, uint8 N×28×28."""
        return self.load_images()

    @cached_property
    def x(self) -> np.ndarray:
        """The test images as the model takes them."""
        return flatten_scale(self.images)

    def __repr__(self) -> str:  # the dataclass's would print the model, every probability and all metrics
        wrong = int((self.y_pred != self.y_true).sum())
        return f"Interpretation({len(self.y_true)} test images, {wrong} wrong, classes {self.classes})"

    @property
    def y_pred(self) -> np.ndarray:
        """The predicted class of each test image."""
        return self.proba.argmax(axis=1)

    @cached_property
    def losses(self) -> np.ndarray:
        """Each test image's cross-entropy loss: −log of the probability given to its true class."""
        return metrics_mod.true_class_losses(self.y_true, self.proba)  # the log-loss is their mean

    @property
    def true_probability(self) -> np.ndarray:
        """The probability each test image's true class was given."""
        return np.asarray(self.proba, dtype=np.float64)[np.arange(len(self.y_true)), self.y_true]

    def top_losses(self, k: int = TOP_LOSSES) -> np.ndarray:
        """Indices of the ``k`` test images with the highest loss, highest first (ties: lower index first)."""
        check_parameter("k", k, COUNT)
        return self._worst_first(np.arange(len(self.y_true)))[:k]

    def most_confused(self, top: int = 5) -> list[tuple[int, int, int, int]]:
        """The ``top`` class pairs most often confused, as ``(a, b, a→b, b→a)`` with a→b ≥ b→a."""
        check_parameter("top", top, COUNT)
        return metrics_mod.confused_pairs(self.metrics, top=top)

    def confused_examples(self, true: int, predicted: int, k: int = 6) -> np.ndarray:
        """Up to ``k`` test images of class ``true`` predicted as ``predicted``, most confident mistakes first."""
        a_class = [Interval(Integral, 0, len(self.classes) - 1, closed="both")]  # an index into ``classes``
        check_parameter("true", true, a_class)
        check_parameter("predicted", predicted, a_class)
        check_parameter("k", k, COUNT)
        chosen = np.flatnonzero((self.y_true == true) & (self.y_pred == predicted))
        return self._worst_first(chosen)[:k]

    def _worst_first(self, indices: np.ndarray) -> np.ndarray:
        """``indices`` by loss, highest first; losses clipped alike by the true class's own probability
        (a certain mistake of 1e-9 before one of 1e-8), then by index."""
        return indices[np.lexsort((self.true_probability[indices], -self.losses[indices]))]

    def summary(self, k: int = TOP_LOSSES, top: int = 5) -> dict:
        """The top losses and most confused pairs as JSON-able rows, for metrics.json and the report."""
        return {
            "top_losses": [{"index": int(i), "true": int(self.y_true[i]), "predicted": int(self.y_pred[i]),
                            "p_true": float(self.true_probability[i]), "loss": float(self.losses[i])}
                           for i in self.top_losses(k)],
            "most_confused": [{"a": a, "b": b, "a_to_b": ab, "b_to_a": ba} for a, b, ab, ba in self.most_confused(top)],
        }

    @cached_property
    def _explained(self) -> dict[int, np.ndarray]:
        return {}

    def explanations(self, indices) -> np.ndarray:
        """Per-class, per-pixel contributions of the test images ``indices`` (len×classes×784); each image is
        explained once (a figure and the next ask for the same ones), the missing ones in one call."""
        given = np.asarray(indices).ravel()
        if given.size and (given.dtype.kind not in "iu" or given.min() < 0 or given.max() >= len(self.y_true)):
            raise ParameterError("indices", f"must be test image indices from 0 to {len(self.y_true) - 1}; "
                                            f"got {indices!r}")
        indices = [int(i) for i in given]
        missing = sorted(set(indices) - set(self._explained))
        if missing:
            self._explained.update(zip(missing, self.model.explain(self.x[missing])))
        if not indices:
            return np.zeros((0, len(self.classes), self.x.shape[1]))
        return np.stack([self._explained[i] for i in indices])

    def calibration(self) -> dict:
        """ECE, Brier score and reliability bins (``metrics.calibration``) of the test predictions."""
        return self.metrics.get("calibration") or metrics_mod.calibration(self.y_true, self.proba)

    def robustness(self) -> dict:
        """Accuracy under translation, rotation, noise and contrast shifts (``robustness.robustness``)."""
        return self.metrics.get("robustness") or robustness(self.model.predict_proba, self.images, self.y_true)

    def embedding(self) -> dict | None:
        """A 2-D t-SNE map of (at most ``EMBEDDING_IMAGES``) test images: ``index`` and ``xy``; cached in a run,
        and computed at most once here."""
        return self._embedding

    @cached_property
    def _embedding(self) -> dict | None:
        return self.load_embedding() or embed(self.model, self.x, self.proba)


def embed(model: MnistlabModel, x: np.ndarray, proba: np.ndarray, max_images: int = EMBEDDING_IMAGES
          ) -> dict | None:
    """t-SNE of the model's penultimate features where it has them, else of its log-probabilities.

    Returns ``{"index": test indices, "xy": len×2 coordinates, "of": what was mapped}``, or None for a
    test set too small to map (t-SNE needs a handful of points).
    """
    if len(x) < MIN_EMBEDDED:
        return None
    index = np.sort(np.random.default_rng(0).permutation(len(x))[:max_images])
    features = model.features(x[index])
    of = "penultimate features"
    if features is None:  # log-probabilities less each image's mean: its logits, as softmax cannot tell them apart
        logp = log_probabilities(np.asarray(proba)[index])
        features, of = logp - logp.mean(axis=1, keepdims=True), "log-probabilities"
    features = np.asarray(features, dtype=np.float32).reshape(len(index), -1)
    # t-SNE needs perplexity < the number of points
    settings = {**TSNE_SETTINGS, "perplexity": min(TSNE_SETTINGS["perplexity"], max(1.0, (len(index) - 1) / 3))}
    xy = tsne(features, **settings)
    return {"index": index, "xy": xy.astype(np.float32), "of": of}
