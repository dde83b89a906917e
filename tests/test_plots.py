import numpy as np
import pytest
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
    "confusion_counts": lambda p: plots.confusion_matrix_plot(CM, NAMES, p),
    "confusion_normalized": lambda p: plots.confusion_matrix_plot(
        CM / CM.sum(1, keepdims=True), NAMES, p, normalized=True),
    "prediction_grid_uint8": lambda p: plots.prediction_grid(
        IMAGES[:12], LABELS[:12], (LABELS[:12] + np.arange(12) % 2) % 10, NAMES, p, "Mixed"),
    "prediction_grid_flat_float": lambda p: plots.prediction_grid(
        IMAGES[:3].reshape(3, 784) / 255.0, LABELS[:3], LABELS[:3], NAMES, p, "First 3 correct"),
    "prediction_grid_none": lambda p: plots.prediction_grid(
        IMAGES[:0], [], [], NAMES, p, "First 10 wrong predictions"),
    "coefficients": lambda p: plots.coefficient_images(COEF, NAMES, p),
    "coefficients_binary": lambda p: plots.coefficient_images(COEF[0], ["Shirt", "Coat"], p),
    "sparsity": lambda p: plots.sparsity_mask(COEF, NAMES, p),
    "sparsity_all_zero": lambda p: plots.sparsity_mask(np.zeros((3, 784)), NAMES[:3], p),
    "convergence": lambda p: plots.curves(
        {"objective": list(2.3 * np.exp(-np.arange(60) / 8) + 0.3)}, p, "Convergence", "iteration"),
    "learning_curves": lambda p: plots.curves(
        {"train_loss": [1.0, 0.6, 0.5], "val_loss": [0.9, 0.7, 0.6],
         "val_accuracy": [0.7, 0.8, 0.82], "lr": [0.1, 0.05, 0.01]}, p, "Learning curves", "epoch"),
    "curves_with_per_step_loss": lambda p: plots.curves(
        {"train_loss": [0.9, 0.5], "step_loss": list(np.linspace(1.2, 0.4, 40))}, p, "LC", "epoch"),
    "curves_empty": lambda p: plots.curves({"objective": []}, p, "Convergence", "iteration"),
    "probability_bars": lambda p: plots.probability_bars(
        RNG.dirichlet(np.ones(10)), NAMES, p, "Test image 0"),
    "contributions": lambda p: plots.contribution_maps(
        COEF * IMAGES[0].reshape(784) / 255, IMAGES[0], NAMES, p, proba=RNG.dirichlet(np.ones(10))),
    "contributions_without_proba": lambda p: plots.contribution_maps(
        COEF[:3] * 0.5, IMAGES[0].reshape(784), NAMES[:3], p),
    "class_saliency": lambda p: plots.class_saliency(
        IMAGES[:10], COEF * IMAGES[:10].reshape(10, 784) / 255, LABELS[:10], (LABELS[:10] + 1) % 10, NAMES, p),
    "sample_grid": lambda p: plots.sample_grid(IMAGES, LABELS, NAMES, p, per_class=3),
    "sample_grid_missing_class": lambda p: plots.sample_grid(IMAGES[:5], LABELS[:5], NAMES, p),
    "class_distribution": lambda p: plots.class_distribution(LABELS, LABELS[:7], NAMES, p),
    "metric_bars": lambda p: plots.metric_bars(
        ["l1 C=0.1", "l2 C=1", "mlp"], [0.81, 0.84, 0.88], p, "Test accuracy", "accuracy"),
    "sweep": lambda p: plots.sweep_plot(
        [0.01, 0.1, 1.0], {"l1": ([0.7, 0.8, 0.83], [0.9, 0.5, 0.1]),
                           "l2": ([0.78, 0.82, 0.84], [0.0, 0.0, 0.0])}, p),
}


@pytest.mark.parametrize("case", CASES)
def test_plot_writes_a_png(case, tmp_path):
    path = tmp_path / "plots" / f"{case}.png"
    check_png(path, CASES[case](path))


def test_plot_overwrites_existing_file(tmp_path):
    path = tmp_path / "bars.png"
    path.write_bytes(b"stale")
    plots.metric_bars(["a"], [1.0], path, "t", "y")
    with Image.open(path) as image:
        assert image.format == "PNG"
