"""The figures of a run, by name: what report.html shows and what ``Run.figure(name)`` returns.

Each figure is drawn from a run's test results (an ``Interpretation``) by one entry of
``FIGURES``, in the order a reader meets them, with its caption. A figure
declares what it needs of a run (``INGREDIENTS``: a training history, weight
images, a test set large enough to map …); one whose needs the run lacks is
not drawn, nor listed: both ask the same needs, the list without drawing and,
where the run's files say it, without loading the model. Which ingredients a
model has it declares on the model contract (``models/base.py``); nothing here
names a family.
"""

from __future__ import annotations

import gc
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import plots
from ..plots import Figure  # matplotlib's, imported by plots alone: whole (see there)
from .._system import ended_with_parent, other_threads, usable_cores
from .interpret import MIN_EMBEDDED, Interpretation

EXPLAINED_SAMPLE = 0  # the test image whose probabilities and contributions the report shows
CHILD_TIMEOUT_S = 60  # its share is about a CPU second: a child still busy after this is stuck (stopped; drawn here)


@dataclass(frozen=True)
class RunFigure:
    name: str  # plots/<name>.png
    caption: str
    draw: Callable[[Interpretation], Figure]  # called only where the run has all the figure ``needs``
    # of INGREDIENTS: what decides whether the run has this figure, for its drawing and its listing alike (each had
    # its own test before, the listing's repeating the drawing's, which a new figure could leave out of step)
    needs: tuple[str, ...] = ()
    needs_model: bool = False  # asks the model (weights, features), not only the test results and explanations


def _has_weight_images(r: Interpretation) -> bool:
    recorded = r.metrics.get("has_weight_images")  # absent from runs written before it was recorded: their model
    # is asked (one recorded before the weights rule has a zero_weight_fraction of rows that are not the classes')
    return r.model.weight_images() is not None if recorded is None else bool(recorded)


# what a figure may need of a run -> (whether the run has it, told without drawing, explaining or mapping; why a
# figure that needs it is absent where the run has it not, said to whoever asks for that figure)
INGREDIENTS: dict[str, tuple[Callable[[Interpretation], bool], str]] = {
    # training_curves gives None exactly where nothing was recorded
    "history": (lambda r: bool(r.metrics.get("history")), "its model keeps no training history"),
    "a correct prediction": (lambda r: bool((r.y_pred == r.y_true).any()), "no test image was classified correctly"),
    "a wrong prediction": (lambda r: bool((r.y_pred != r.y_true).any()), "no test image was misclassified"),
    # a run's map, or one computed (interpret.embed), which maps any test set of this size
    "a map": (lambda r: len(r.y_true) >= MIN_EMBEDDED, "its test set is too small for a map"),
    "weight images": (_has_weight_images, "its model has no weight per pixel and class"),
    # a sparse (L1) model, not a few dead pixels
    "sparse weights": (lambda r: (r.metrics.get("zero_weight_fraction") or 0) > 0.01,
                       "at most 1% of its model's weights are zero"),
}


def missing(name: str, r: Interpretation) -> str | None:
    """Why run ``r`` has no figure ``name`` (the first of its needs that the run lacks), or None where it has it."""
    return next((why for need in FIGURES[name].needs for has, why in [INGREDIENTS[need]] if not has(r)), None)


def drawable(r: Interpretation) -> list[str]:
    """The names of the figures ``draw`` gives for run ``r``, in reading order, told without drawing them."""
    return [name for name in FIGURES if missing(name, r) is None]


def _prediction_grid(wanted: str) -> Callable[[Interpretation], Figure]:
    def draw(r: Interpretation) -> Figure:
        right = r.y_pred == r.y_true
        idx = np.flatnonzero(right if wanted == "correct" else ~right)[:10]
        return plots.prediction_grid(r.images[idx], r.y_true[idx], r.y_pred[idx], r.classes,
                                     title=f"First {len(idx)} {wanted} test predictions")
    return draw


def _curves(r: Interpretation) -> Figure:
    curves = r.model.training_curves(r.metrics.get("history"))
    return plots.curves(curves.series, title=curves.title, xlabel=curves.x_label)


def _weights(r: Interpretation) -> Figure:
    return plots.coefficient_images(r.model.weight_images(), r.classes)


def _sparsity(r: Interpretation) -> Figure:
    return plots.sparsity_mask(r.model.weight_images(), r.classes)


def sample_title(proba: np.ndarray, classes, true_label: int | None = None) -> str:
    truth = f", true: {classes[true_label]}" if true_label is not None else ""
    return f"Predicted {classes[int(proba.argmax())]} ({proba.max():.1%}){truth}"


def _sample_probabilities(r: Interpretation) -> Figure:
    i = EXPLAINED_SAMPLE
    return plots.probability_bars(r.proba[i], r.classes, title=sample_title(r.proba[i], r.classes, int(r.y_true[i])))


def _sample_contributions(r: Interpretation) -> Figure:
    i = EXPLAINED_SAMPLE
    return plots.contribution_maps(r.explanations([i])[0], r.images[i], r.classes, proba=r.proba[i],
                                   method=r.model.explanation_method)


def _first_of_each_class(r: Interpretation) -> tuple[np.ndarray, np.ndarray]:
    """The classes in the test set and the first test image of each."""
    labels = np.unique(r.y_true)
    return labels, np.array([np.flatnonzero(r.y_true == k)[0] for k in labels])


def explained_images(r: Interpretation) -> np.ndarray:
    """The test images whose explanations the figures show."""
    return np.concatenate([[EXPLAINED_SAMPLE], r.top_losses(), _first_of_each_class(r)[1]]).astype(int)


def _class_saliency(r: Interpretation) -> Figure:
    labels, first = _first_of_each_class(r)
    maps = r.explanations(first)[np.arange(len(first)), labels]
    return plots.class_saliency(r.images[first], maps, labels, r.y_pred[first], r.classes,
                                method=r.model.explanation_method)


def _top_losses(r: Interpretation) -> Figure:
    idx = r.top_losses()
    maps = r.explanations(idx)[np.arange(len(idx)), r.y_pred[idx]] if len(idx) else None
    return plots.top_losses(r.images[idx], r.y_true[idx], r.y_pred[idx], r.true_probability[idx], r.losses[idx],
                            r.classes, maps=maps, method=r.model.explanation_method)


def _most_confused(r: Interpretation) -> Figure:
    rows = []
    for a, b, ab, ba in r.most_confused():
        for true, predicted, n in ((a, b, ab), (b, a, ba)):
            rows.append((f"{r.classes[true]} → {r.classes[predicted]}\n({n:,} image{'s' * (n != 1)})",
                         list(r.confused_examples(true, predicted))))
    return plots.confused_pairs(r.images, rows, title="Most confused pairs: examples each way (true → predicted)")


def _reliability(r: Interpretation) -> Figure:
    c = r.calibration()
    return plots.reliability_diagram(c["bins"], c["ece"], c["brier"], c["ece_binning"])


def _embedding(r: Interpretation) -> Figure:
    e = r.embedding()
    idx = np.asarray(e["index"])
    return plots.embedding_map(e["xy"], r.y_true[idx], r.classes, r.images[idx], of=str(e["of"]))


FIGURES: dict[str, RunFigure] = {f.name: f for f in [
    RunFigure("learning_curves", "Training history: the objective per solver iteration, or loss and accuracy "
              "after each epoch.", _curves, needs=("history",), needs_model=True),
    RunFigure("confusion_matrix", "Confusion matrix of the test set (counts; rows are the true classes).",
              lambda r: plots.confusion_matrix_plot(np.array(r.metrics["confusion_matrix"]), r.classes)),
    RunFigure("confusion_matrix_normalized",
              "Confusion matrix normalised by true class: the diagonal is each class's recall.",
              lambda r: plots.confusion_matrix_plot(np.array(r.metrics["confusion_matrix_normalized"]),
                                                    r.classes, normalized=True)),
    RunFigure("confusion_matrix_percent", "Confusion matrix with each cell's count and its share of the true "
              "class's images (rows sum to 100%).",
              lambda r: plots.confusion_counts_percent(np.array(r.metrics["confusion_matrix"]), r.classes)),
    RunFigure("correct", "The first ten correctly classified test images.", _prediction_grid("correct"),
              needs=("a correct prediction",)),
    RunFigure("wrong", "The first ten misclassified test images (titles: predicted / true).",
              _prediction_grid("wrong"), needs=("a wrong prediction",)),
    RunFigure("top_losses", "Top losses: the test images whose true class got the lowest probability — mostly "
              "the most confident mistakes (titled in red), and any right answer less sure of its class — with what "
              "made the model choose the class it chose.", _top_losses),
    RunFigure("most_confused", "The class pairs most often confused, with the most confident examples of each "
              "direction.", _most_confused),
    RunFigure("reliability", "Reliability diagram: how often the predicted class is right against the probability "
              "the model gave it; a calibrated model follows the diagonal. Below: test images per bin.", _reliability),
    RunFigure("robustness", "Accuracy on a sample of test images translated, rotated, made noisy and lower in "
              "contrast, at growing strengths.", lambda r: plots.robustness_curves({"test": r.robustness()})),
    RunFigure("embedding", "A 2-D map (t-SNE) of test images as the model sees them, coloured by true class, "
              "with some of the images drawn in place: mixed colours are classes it confuses.", _embedding,
              needs=("a map",), needs_model=True),
    RunFigure("coefficients", "The learned weights of each class as 28×28 images: "
              "blue pixels raise the class score, red ones lower it.", _weights, needs=("weight images",),
              needs_model=True),
    RunFigure("sparsity", "Weights that are exactly zero (black) in each class.", _sparsity,
              needs=("weight images", "sparse weights"), needs_model=True),
    RunFigure("sample_probabilities", "Predicted class probabilities for one test image.", _sample_probabilities),
    RunFigure("sample_contributions", "How each pixel of one test image pushes each class score "
              "(gradient × input — for a linear model, weight × pixel, or × the pixel's difference from the "
              "training images' mean where it standardises them — or, for a model without gradients, "
              "occlusion sensitivity: how much hiding it lowers the class's probability).", _sample_contributions),
    RunFigure("class_saliency", "Per class, the first test image of that class and the pixels that raise (blue) "
              "or lower (red) its true class's score (as its title says: gradient × input, or occlusion "
              "sensitivity).",
              _class_saliency),
]}


def draw(name: str, results: Interpretation) -> Figure | None:
    """Figure ``name`` of a run, or None where the run lacks what it needs (``missing`` says why)."""
    return None if missing(name, results) else FIGURES[name].draw(results)


def write_figures(results: Interpretation, folder: Path, skip: tuple[str, ...] = (), processes: int = 1) -> list[Path]:
    """Every figure the model's capabilities allow (but those in ``skip``), as ``folder/<name>.png``.

    With ``processes`` 2, where a fork is safe (``_can_fork``), the explanations are computed first, then
    a forked child draws the figures that need only them and the test results while this process draws
    those that ask the model (the child never runs the model: a forked copy of its thread pools can hang),
    then helps with the rest; each figure is drawn by one of the two, so the files are the same either way.
    What the child did not write is drawn here.
    """
    folder = Path(folder)
    order = sorted((f for f in FIGURES.values() if f.name not in skip), key=lambda f: f.needs_model)
    if processes > 1 and _can_fork() and not order[0].needs_model:
        _draw_in_two_processes(results, folder, order)
    else:
        for figure in order:
            _write(results, folder, figure)
    return [path for figure in FIGURES.values() if (path := folder / f"{figure.name}.png").is_file()
            and figure.name not in skip]


def _write(results: Interpretation, folder: Path, figure: RunFigure) -> None:
    fig = draw(figure.name, results)
    if fig is not None:
        plots.save_png(fig, folder / f"{figure.name}.png")


def _can_fork() -> bool:
    """Whether a child forked now can draw: Linux (macOS's system libraries are not fork-safe), two cores
    for this process, no other Python thread, whose locks (a notebook's, a server's) the child would
    inherit held, and not a daemonic worker (of a ``multiprocessing.Pool``), which may have no children."""
    import multiprocessing

    return (sys.platform == "linux" and usable_cores() > 1 and other_threads() == 0
            and not multiprocessing.current_process().daemon)


def _draw_in_two_processes(results: Interpretation, folder: Path, order: list[RunFigure]) -> None:
    """Figures ``order[front:back]`` are left to draw: the child takes them from the front while they need
    no model, this process from the back."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    left = context.Array("i", [0, len(order)])  # front, back

    def take(from_front: bool) -> RunFigure | None:
        with left.get_lock():
            front, back = left
            if front >= back or (from_front and order[front].needs_model):
                return None
            left[0 if from_front else 1] = front + 1 if from_front else back - 1
            return order[front if from_front else back - 1]

    def child() -> None:
        end_with_parent()
        try:
            while (figure := take(from_front=True)) is not None:
                _write(results, folder, figure)
        except (Exception, KeyboardInterrupt):  # noqa: BLE001 (drawn again here, where the error is raised for
            sys.exit(1)  # all to see; Ctrl-C reaches both processes, and this one goes quietly)

    end_with_parent = ended_with_parent()
    results.explanations(explained_images(results))  # computed here, in one call: the child only reads them
    # the objects there are now out of the collector's sight: its passes in the child would otherwise write
    # to every one of them, copying all the memory the two processes share
    gc.freeze()
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns of any thread at a fork (BLAS and OpenMP pools have some): the child
            # uses none of them, and a child that hangs anyway is stopped and its figures drawn here
            warnings.filterwarnings("ignore", message=r"This process .* is multi-threaded", category=DeprecationWarning)
            worker = context.Process(target=child, daemon=True)
            worker.start()
    finally:
        gc.unfreeze()
    try:
        while (figure := take(from_front=False)) is not None:
            _write(results, folder, figure)
        worker.join(CHILD_TIMEOUT_S)
    finally:
        if worker.is_alive():
            worker.kill()
            worker.join()
    for figure in order[:left[0]]:  # taken by the child; drawn here if it failed to
        if not (folder / f"{figure.name}.png").is_file():
            _write(results, folder, figure)


def explanation_figures(prediction, true_label: int | None = None) -> dict[str, Figure]:
    """A ``Prediction``'s probability bars and, where its model can explain itself, its contribution maps."""
    proba, classes = prediction.probabilities, prediction.classes
    figures = {"probabilities": plots.probability_bars(proba, classes, title=sample_title(proba, classes, true_label))}
    if prediction.contributions is not None:
        figures["contributions"] = plots.contribution_maps(prediction.contributions, prediction.pixels, classes,
                                                           proba=proba, method=prediction.model.explanation_method)
    return figures
