"""The figures of a run, by name: what report.html shows and what ``Run.figure(name)`` returns.

Each figure is drawn from a run's test results (``RunResults``) by one entry of
``FIGURES``, in the order a reader meets them, with its caption. A figure
whose ingredients the model lacks (no weight images, no explanation, no
history) is simply not drawn. Which ingredients a model has it declares on
the model contract (``models/base.py``); nothing here names a family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .. import plots
from ..data.preprocess import flatten_scale
from ..models import MnistlabModel

EXPLAINED_SAMPLE = 0  # the test image whose probabilities and contributions the report shows


@dataclass
class RunResults:
    """What a run's figures are drawn from: the model, its predictions and (loaded when a figure
    needs them) its test images."""

    model: MnistlabModel
    classes: list[str]
    y_true: np.ndarray
    proba: np.ndarray
    metrics: dict
    load_images: Callable[[], np.ndarray]  # the test images, uint8 N×28×28

    @cached_property
    def images(self) -> np.ndarray:
        return self.load_images()

    @cached_property
    def x(self) -> np.ndarray:
        """The test images as the model takes them."""
        return flatten_scale(self.images)

    @property
    def y_pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


@dataclass(frozen=True)
class RunFigure:
    name: str  # plots/<name>.png
    caption: str
    draw: Callable[[RunResults], Figure | None]  # None: this model has nothing to show here


def _prediction_grid(wanted: str) -> Callable[[RunResults], Figure]:
    def draw(r: RunResults) -> Figure:
        right = r.y_pred == r.y_true
        idx = np.flatnonzero(right if wanted == "correct" else ~right)[:10]
        return plots.prediction_grid(r.images[idx], r.y_true[idx], r.y_pred[idx], r.classes,
                                     title=f"First {len(idx)} {wanted} test predictions")
    return draw


def _curves(r: RunResults) -> Figure | None:
    curves = r.model.training_curves(r.metrics.get("history"))
    return None if curves is None else plots.curves(curves.series, title=curves.title, xlabel=curves.x_label)


def _weights(r: RunResults) -> Figure | None:
    weights = r.model.weight_images()
    return None if weights is None else plots.coefficient_images(weights, r.classes)


def _sparsity(r: RunResults) -> Figure | None:
    weights = r.model.weight_images()
    if weights is None or np.mean(np.asarray(weights) == 0) <= 0.01:  # a sparse (L1) model, not a few dead pixels
        return None
    return plots.sparsity_mask(weights, r.classes)


def sample_title(proba: np.ndarray, classes, true_label: int | None = None) -> str:
    truth = f", true: {classes[true_label]}" if true_label is not None else ""
    return f"Predicted {classes[int(proba.argmax())]} ({proba.max():.1%}){truth}"


def _sample_probabilities(r: RunResults) -> Figure:
    i = EXPLAINED_SAMPLE
    return plots.probability_bars(r.proba[i], r.classes, title=sample_title(r.proba[i], r.classes, int(r.y_true[i])))


def _sample_contributions(r: RunResults) -> Figure | None:
    if not r.model.can_explain:
        return None
    i = EXPLAINED_SAMPLE
    return plots.contribution_maps(r.model.explain(r.x[i:i + 1])[0], r.images[i], r.classes, proba=r.proba[i])


def _class_saliency(r: RunResults) -> Figure | None:
    if not r.model.can_explain:
        return None
    labels = np.unique(r.y_true)
    first = np.array([np.flatnonzero(r.y_true == k)[0] for k in labels])
    maps = r.model.explain(r.x[first])[np.arange(len(first)), labels]
    return plots.class_saliency(r.images[first], maps, labels, r.y_pred[first], r.classes)


FIGURES: dict[str, RunFigure] = {f.name: f for f in [
    RunFigure("learning_curves", "Training history: the objective per solver iteration, or loss and accuracy "
              "after each epoch.", _curves),
    RunFigure("confusion_matrix", "Confusion matrix of the test set (counts; rows are the true classes).",
              lambda r: plots.confusion_matrix_plot(np.array(r.metrics["confusion_matrix"]), r.classes)),
    RunFigure("confusion_matrix_normalized",
              "Confusion matrix normalised by true class: the diagonal is each class's recall.",
              lambda r: plots.confusion_matrix_plot(np.array(r.metrics["confusion_matrix_normalized"]),
                                                    r.classes, normalized=True)),
    RunFigure("correct", "The first ten correctly classified test images.", _prediction_grid("correct")),
    RunFigure("wrong", "The first ten misclassified test images (titles: predicted / true).",
              _prediction_grid("wrong")),
    RunFigure("coefficients", "The learned weights of each class as 28×28 images: "
              "blue pixels raise the class score, red ones lower it.", _weights),
    RunFigure("sparsity", "Weights that are exactly zero (black) in each class.", _sparsity),
    RunFigure("sample_probabilities", "Predicted class probabilities for one test image.", _sample_probabilities),
    RunFigure("sample_contributions", "How each pixel of one test image pushes each class score "
              "(gradient × input; for a linear model, weight × pixel).", _sample_contributions),
    RunFigure("class_saliency", "Per class, the first test image of that class and the pixels that raise (blue) "
              "or lower (red) its true class's score: gradient × input.", _class_saliency),
]}


def draw(name: str, results: RunResults) -> Figure | None:
    """Figure ``name`` of a run, or None where its model has nothing to show for it."""
    return FIGURES[name].draw(results)


def write_figures(results: RunResults, folder: Path) -> list[Path]:
    """Every figure the model's capabilities allow, as ``folder/<name>.png``."""
    written = []
    for figure in FIGURES.values():
        fig = figure.draw(results)
        if fig is not None:
            written.append(plots.save_png(fig, Path(folder) / f"{figure.name}.png"))
    return written


def explanation_figures(prediction, true_label: int | None = None) -> dict[str, Figure]:
    """A ``Prediction``'s probability bars and, where its model can explain itself, its contribution maps."""
    proba, classes = prediction.probabilities, prediction.classes
    figures = {"probabilities": plots.probability_bars(proba, classes, title=sample_title(proba, classes, true_label))}
    if prediction.contributions is not None:
        figures["contributions"] = plots.contribution_maps(prediction.contributions, prediction.pixels, classes,
                                                           proba=proba)
    return figures
