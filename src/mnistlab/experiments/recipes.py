"""The classic tutorial experiments, as data: run one, see ours next to the published number.

A recipe is a model family, its hyperparameters and a data choice; running
it is an ordinary training run, so it gets the same run folder and report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ParameterError
from ..models.callbacks import FitProgress
from .pipeline import DataChoice, train


@dataclass(frozen=True)
class Recipe:
    title: str
    family: str
    params: dict
    data: DataChoice
    published: float  # the tutorial's test accuracy
    published_note: str  # where it comes from / how it is phrased there
    notes: str = ""


MNIST_NOTE = ("Needs MNIST: pass --data-dir to a folder of the IDX files (data_dir= in Python) "
              "or run `mnistlab data download --dataset mnist`.")

RECIPES: dict[str, Recipe] = {
    "fashion-logreg-saga": Recipe(
        title="Fashion-MNIST multinomial logistic regression, scikit-learn saga, tol 0.01",
        family="logreg", params={"solver": "saga", "C": 1.0, "tol": 0.01, "max_iter": 3000},
        data=DataChoice(dataset="fashion-mnist"),
        published=0.845, published_note="tutorial: 0.8447 test accuracy"),
    "mnist-logreg-nopenalty": Recipe(
        title="MNIST logistic regression without penalty, one pool split 75 % / 25 %",
        family="logreg", params={"penalty": "none"},
        data=DataChoice(dataset="mnist", resplit_test_fraction=0.25),
        published=0.9076, published_note="tutorial: 0.9076 on 7,500 training / 2,500 test digits",
        notes="All available digits are pooled and split 75/25 (the full MNIST: 70,000 digits, "
              "52,500 / 17,500). " + MNIST_NOTE),
    "mnist-l1-5000": Recipe(
        title="MNIST L1 logistic regression on 5,000 training digits (C = 50/5000, standardised, tol 0.1)",
        family="logreg", params={"penalty": "l1", "C": 50 / 5000, "standardize": True, "tol": 0.1},
        data=DataChoice(dataset="mnist", train_size=5000),
        published=0.8, published_note="tutorial: test score 'over 0.8' with high sparsity",
        notes=MNIST_NOTE),
    "numpy-binary": Recipe(
        title="NumPy logistic regression by gradient descent: T-shirt/top vs Trouser",
        family="numpy-logreg", params={},
        data=DataChoice(dataset="fashion-mnist", classes=(0, 1)),
        published=0.98, published_note="exercise: 98 % test accuracy, cost 0.075"),
    "numpy-2layer": Recipe(
        title="NumPy 2-layer ReLU/softmax network, Adam (lr 0.008, batch 128), 10 epochs",
        family="numpy-mlp",
        params={"hidden": (128,), "optimizer": "adam", "learning_rate": 0.008, "batch_size": 128,
                "max_epochs": 10, "init": "he"},
        data=DataChoice(dataset="fashion-mnist"),
        published=0.87, published_note="exercise: 0.90 train / 0.87 dev accuracy, cost 0.27"),
    "mlp": Recipe(
        title="scikit-learn MLPClassifier(256, 128), adam, alpha 1e-4, max_iter 200",
        family="mlp", params={}, data=DataChoice(dataset="fashion-mnist"),
        published=0.8904, published_note="MLP-vs-CNN study: 0.8904"),
    "lenet": Recipe(
        title="LeNet-5-style CNN, Adam 1e-3, batch 64, 15 epochs",
        family="lenet", params={}, data=DataChoice(dataset="fashion-mnist"),
        published=0.9201, published_note="MLP-vs-CNN study: 0.9201"),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ParameterError(None, f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}") from None


def run_recipe(name: str, out: Path, data_dir: str | None = None, overwrite: bool = True,
               progress: FitProgress | None = None) -> Path:
    """Train the recipe as an ordinary run named after it."""
    from dataclasses import replace

    recipe = get_recipe(name)
    data = replace(recipe.data, data_dir=data_dir) if data_dir else recipe.data
    return train(recipe.family, dict(recipe.params), data, out, name=f"recipe-{name}", overwrite=overwrite,
                 command=f"mnistlab recipes run {name}", progress=progress)
