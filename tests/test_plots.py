import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from mnistlab import plots

NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (30, 28, 28), dtype=np.uint8)
LABELS = np.arange(30) % 10
COEF = RNG.normal(size=(10, 784)) * (RNG.random((10, 784)) < 0.3)
CM = RNG.integers(0, 50, (10, 10))


def check_png(path, returned):
    assert returned == path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode in ("RGB", "RGBA")
        assert image.width > 100 and image.height > 100
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left


CASES = {
    "confusion_counts": lambda: plots.confusion_matrix_plot(CM, NAMES),
    "confusion_normalized": lambda: plots.confusion_matrix_plot(
        CM / CM.sum(1, keepdims=True), NAMES, normalized=True),
    "prediction_grid_uint8": lambda: plots.prediction_grid(
        IMAGES[:12], LABELS[:12], (LABELS[:12] + np.arange(12) % 2) % 10, NAMES, "Mixed"),
    "prediction_grid_flat_float": lambda: plots.prediction_grid(
        IMAGES[:3].reshape(3, 784) / 255.0, LABELS[:3], LABELS[:3], NAMES, "First 3 correct"),
    "prediction_grid_none": lambda: plots.prediction_grid(
        IMAGES[:0], [], [], NAMES, "First 10 wrong predictions"),
    "coefficients": lambda: plots.coefficient_images(COEF, NAMES),
    "coefficients_binary": lambda: plots.coefficient_images(COEF[0], ["Shirt", "Coat"]),
    "sparsity": lambda: plots.sparsity_mask(COEF, NAMES),
    "sparsity_all_zero": lambda: plots.sparsity_mask(np.zeros((3, 784)), NAMES[:3]),
    "convergence": lambda: plots.curves(
        {"objective": list(2.3 * np.exp(-np.arange(60) / 8) + 0.3)}, "Convergence", "iteration"),
    "learning_curves": lambda: plots.curves(
        {"train_loss": [1.0, 0.6, 0.5], "val_loss": [0.9, 0.7, 0.6],
         "val_accuracy": [0.7, 0.8, 0.82], "lr": [0.1, 0.05, 0.01]}, "Learning curves", "epoch"),
    "curves_with_per_step_loss": lambda: plots.curves(
        {"train_loss": [0.9, 0.5], "step_loss": list(np.linspace(1.2, 0.4, 40))}, "LC", "epoch"),
    "curves_empty": lambda: plots.curves({"objective": []}, "Convergence", "iteration"),
    "probability_bars": lambda: plots.probability_bars(
        RNG.dirichlet(np.ones(10)), NAMES, "Test image 0"),
    "contributions": lambda: plots.contribution_maps(
        COEF * IMAGES[0].reshape(784) / 255, IMAGES[0], NAMES, proba=RNG.dirichlet(np.ones(10))),
    "contributions_without_proba": lambda: plots.contribution_maps(
        COEF[:3] * 0.5, IMAGES[0].reshape(784), NAMES[:3]),
    "class_saliency": lambda: plots.class_saliency(
        IMAGES[:10], COEF * IMAGES[:10].reshape(10, 784) / 255, LABELS[:10], (LABELS[:10] + 1) % 10, NAMES),
    "sample_grid": lambda: plots.sample_grid(IMAGES, LABELS, NAMES, per_class=3),
    "sample_grid_missing_class": lambda: plots.sample_grid(IMAGES[:5], LABELS[:5], NAMES),
    "class_distribution": lambda: plots.class_distribution(LABELS, LABELS[:7], NAMES),
    "metric_bars": lambda: plots.metric_bars(
        ["l1 C=0.1", "l2 C=1", "mlp"], [0.81, 0.84, 0.88], "Test accuracy", "accuracy"),
    "sweep": lambda: plots.sweep_plot(
        [0.01, 0.1, 1.0], {"l1": ([0.7, 0.8, 0.83], [0.9, 0.5, 0.1]),
                           "l2": ([0.78, 0.82, 0.84], [0.0, 0.0, 0.0])}, "C"),
    "sweep_without_sparsity": lambda: plots.sweep_plot(
        [16, 64, 256], {"adam": ([0.8, 0.85, 0.86], None)}, "batch_size"),
}


@pytest.mark.parametrize("case", CASES)
def test_plot_is_a_figure_saved_as_png(case, tmp_path):
    fig = CASES[case]()
    assert isinstance(fig, Figure)  # what a notebook shows as it is
    path = tmp_path / "plots" / f"{case}.png"
    check_png(path, plots.save_png(fig, path))


def test_plot_overwrites_existing_file(tmp_path):
    path = tmp_path / "bars.png"
    path.write_bytes(b"stale")
    plots.save_png(plots.metric_bars(["a"], [1.0], "t", "y"), path)
    with Image.open(path) as image:
        assert image.format == "PNG"


def test_figures_fit_the_report_and_keep_their_labels(tmp_path):
    wide = plots.class_saliency(IMAGES[:10], COEF * IMAGES[:10].reshape(10, 784) / 255, LABELS[:10],
                                (LABELS[:10] + 1) % 10, NAMES)
    path = plots.save_png(wide, tmp_path / "wide.png")
    with Image.open(path) as image:  # never wider than report.html shows it, however wide the figure
        assert image.width <= plots.REPORT_WIDTH_PX
    titles = [t.get_text() for t in wide.axes[0].texts]
    assert titles[3] == "Dress\npredicted: Coat" and len(titles) == 10
    grid = plots.prediction_grid(IMAGES[:12], LABELS[:12], (LABELS[:12] + np.arange(12) % 2) % 10, NAMES, "Mixed")
    colours = [t.get_color() for t in grid.axes[0].texts]  # the first 10, a wrong one's title in red
    assert len(colours) == 10 and colours[0] == "black" and colours[1] == plots.WRONG
    counts = [t.get_text() for t in plots.confusion_matrix_plot(CM, NAMES).axes[0].texts]
    assert counts == [str(v) for v in CM.ravel()]
    ticks = [t.get_text() for t in plots.confusion_counts_percent(CM, NAMES).axes[0].get_xticklabels()]
    assert ticks == NAMES


def test_top_losses_of_a_model_without_mistakes_are_not_called_mistakes():
    images = np.zeros((2, 28, 28), np.uint8)
    right = plots.top_losses(images, [0, 1], [0, 1], [0.6, 0.7], [0.5, 0.3], ["a", "b"])
    some = plots.top_losses(np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 1]), np.array([1, 1, 0]),
                            [0.3, 0.7, 0.2], [1.2, 0.3, 1.6], ["a", "b"])  # arrays, as a run's are
    wrong = plots.top_losses(images, [0, 1], [1, 0], [0.3, 0.2], [1.2, 1.6], ["a", "b"])
    assert "no mistakes, the least confident right answers" in right.get_suptitle()
    # one of three right: "the most confident mistakes" titled a right answer too; and "the 2 mistakes, then the
    # least confident right answers" is not what three classes show: a right answer at p(true) 0.34 loses more
    # than a mistake at 0.45
    assert "2 mistakes among them (titles in red)" in some.get_suptitle()
    assert "then" not in some.get_suptitle() and "all mistakes" in wrong.get_suptitle()


@pytest.mark.parametrize("k", [10, 2])
def test_a_photo_s_class_maps_fill_the_bottom_of_its_figure(k):
    """Ten maps filled one of two rows set aside for them: a third of the figure was blank, and the bars'
    labels widened the column under them (the maps split 6, a gap, 4)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, 784)
    fig = plots.photo_explanation(rng.random((40, 30)), pixels, rng.dirichlet(np.ones(k)), [f"c{i}" for i in range(k)],
                                  "a photo", contributions=rng.normal(size=(k, 784)))
    fig.canvas.draw()
    maps = [ax for ax in fig.get_children()[-1].axes if ax.get_visible() and ax.images and ax.get_title()]
    boxes = [ax.get_window_extent() for ax in maps]  # in pixels
    assert len(maps) == k and max(box.y0 for box in boxes) < 0.1 * fig.bbox.height  # one row, at the bottom
    gaps = np.diff(sorted(box.x0 for box in boxes))
    assert gaps.max() < 1.5 * gaps.min()  # evenly spaced


def test_weights_are_drawn_only_as_one_row_per_class():
    names = [str(k) for k in range(10)]
    assert len(plots.coefficient_images(np.ones((10, 784)), names).axes) >= 1
    with pytest.raises(ValueError, match="45 rows of weights for 10 classes"):  # pairs: 35 tiles went untitled
        plots.coefficient_images(np.ones((45, 784)), names)
    with pytest.raises(ValueError, match="3 rows of weights for 2 classes"):
        plots.sparsity_mask(np.ones((3, 784)), names[:2])
