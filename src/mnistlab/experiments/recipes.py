"""The classic tutorial experiments, as data: the tutorial's run reproduced, and ours beside it.

A recipe holds two configurations (a model family, its hyperparameters and a
data choice). Its *reproduction* runs what the tutorial ran — its library and
solver, tolerance, split and scaling, on current library versions (the
tutorials' scikit-learn code as ``sklearn:NAME`` families, their NumPy and
PyTorch models as ours, which implement them). *Ours* is what mnistlab
recommends for the same task. Each is an ordinary training run, with the same
run folder and report as any other.

Where today's scikit-learn names a setting differently, the reproduction uses
the current name for the same computation: ``penalty=None`` is ``C=inf``, and
``penalty="l1"`` is ``l1_ratio=1`` (``penalty`` is deprecated since 1.8);
``multi_class="multinomial"`` is what LogisticRegression always does now.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..callbacks import SILENT, FitProgress, started
from ..data.datasets import other_dataset_in
from ..errors import DatasetError, ParameterError, one_line
from .pipeline import DataChoice, TrainingJob, train_all, train_job


@dataclass(frozen=True)
class Configuration:
    """One run of a recipe: a family, its hyperparameters and the data."""

    family: str
    params: dict
    data: DataChoice


@dataclass(frozen=True)
class Recipe:
    title: str
    reproduction: Configuration  # what the tutorial ran
    ours: Configuration  # what mnistlab recommends for the same task
    published: float  # the tutorial's test accuracy (or its bound)
    published_note: str  # where it comes from / how it is phrased there
    notes: str = ""  # where our data or settings differ from the tutorial's

    @property
    def data_note(self) -> str:
        """How to give the recipe its data where it is not found as usual (MNIST's: a data_dir); else ""."""
        return MNIST_NOTE if self.reproduction.data.dataset == DATA_DIR_DATASET else ""


MNIST_NOTE = ("Needs MNIST: pass --data-dir to a folder of the IDX files (data_dir= in Python) "
              "or run `mnistlab data download --dataset mnist`.")
# The dataset whose recipes need a data_dir where it is not found as usual (their data_note)
DATA_DIR_DATASET = "mnist"
FASHION = DataChoice(dataset="fashion-mnist")
TUTORIAL_POOL = DataChoice(dataset="mnist", resplit_test_fraction=0.25, train_size=7500, test_size=2500)
MNIST_5000 = DataChoice(dataset="mnist", train_size=5000)
T_SHIRT_VS_TROUSER = DataChoice(dataset="fashion-mnist", classes=(0, 1))
NUMPY_2LAYER = {"hidden": (128,), "optimizer": "adam", "learning_rate": 0.008, "batch_size": 128,
                "max_epochs": 10, "init": "he"}

RECIPES: dict[str, Recipe] = {
    "fashion-logreg-saga": Recipe(
        title="Fashion-MNIST multinomial logistic regression, scikit-learn saga, tol 0.01",
        reproduction=Configuration("sklearn:LogisticRegression",
                                   {"solver": "saga", "C": 1.0, "tol": 0.01, "max_iter": 3000}, FASHION),
        ours=Configuration("logreg", {}, FASHION),
        published=0.8447, published_note="tutorial: 0.8447 test accuracy"),
    "mnist-logreg-nopenalty": Recipe(
        title="MNIST logistic regression without penalty (saga, tol 0.1), 7,500 / 2,500 digits from one pool",
        reproduction=Configuration("sklearn:LogisticRegression",
                                   {"solver": "saga", "C": float("inf"), "tol": 0.1}, TUTORIAL_POOL),
        ours=Configuration("logreg", {}, TUTORIAL_POOL),
        published=0.9076, published_note="tutorial: 0.9076 on 7,500 training / 2,500 test digits",
        notes="The tutorial drew its 10,000 digits from MNIST; here they are drawn (stratified, seed 0) "
              "from all the digits found, pooled."),
    "mnist-l1-5000": Recipe(
        title="MNIST L1 logistic regression on 5,000 training digits (C = 50/5000, standardised, saga, tol 0.1)",
        reproduction=Configuration("sklearn:LogisticRegression",
                                   {"solver": "saga", "C": 50 / 5000, "l1_ratio": 1.0, "tol": 0.1,
                                    "standardize": True}, MNIST_5000),
        ours=Configuration("logreg", {"penalty": "l1", "C": 50 / 5000, "standardize": True}, MNIST_5000),
        published=0.8, published_note="tutorial: test score 'over 0.8' with high sparsity",
        notes="The 5,000 training digits are a stratified sample (seed 0) of MNIST's training set, "
              "tested on its 10,000 test digits."),
    "numpy-binary": Recipe(
        title="NumPy logistic regression by full-batch gradient descent (lr 0.1, 1,000 steps): T-shirt/top vs Trouser",
        reproduction=Configuration("numpy-logreg", {"optimizer": "gd", "learning_rate": 0.1, "max_epochs": 1000},
                                   T_SHIRT_VS_TROUSER),
        ours=Configuration("logreg", {}, T_SHIRT_VS_TROUSER),
        published=0.98, published_note="exercise: 98 % test accuracy, cost 0.075",
        notes="The exercise does not give its learning rate or number of steps; these are mnistlab's. "
              "(A learning rate of 0.005 for 2,000 steps reached 0.971, cost 0.086.)"),
    "numpy-2layer": Recipe(
        title="NumPy 2-layer ReLU/softmax network, Adam (lr 0.008, batch 128), 10 epochs",
        reproduction=Configuration("numpy-mlp", NUMPY_2LAYER, FASHION),
        ours=Configuration("numpy-mlp", {}, FASHION),
        published=0.87, published_note="exercise: 0.90 train / 0.87 dev accuracy, cost 0.27"),
    "mlp": Recipe(
        title="scikit-learn MLPClassifier(256, 128), adam, alpha 1e-4, max_iter 200",
        reproduction=Configuration("mlp", {}, FASHION),
        ours=Configuration("mlp", {"early_stopping": True}, FASHION),
        published=0.8904, published_note="MLP-vs-CNN study: 0.8904"),
    "lenet": Recipe(
        title="LeNet-5-style CNN, Adam 1e-3, batch 64, 15 epochs",
        reproduction=Configuration("lenet", {}, FASHION),
        ours=Configuration("cnn", {}, FASHION),
        published=0.9201, published_note="MLP-vs-CNN study: 0.9201"),
}
ROLES = ("reproduction", "ours")


def get_recipe(name: str) -> Recipe:
    if not isinstance(name, str) or name not in RECIPES:  # a list given for a name was a bare TypeError
        raise ParameterError(None, f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    return RECIPES[name]


def _jobs(names: list[str], data_dir: str | None, command: str | None = None) -> list[tuple[str, str, TrainingJob]]:
    """Each recipe's two runs, ``recipe-<name>-reproduction`` and ``recipe-<name>-ours``, with its name and role;
    ``command``: how they were asked for (config.json).

    ``data_dir`` is the data of the runs of one dataset: of every run where all are of one dataset (a folder of
    another dataset's official files is refused), and where they are of several (``--all``), of those of the
    dataset whose official files it holds; the others find theirs as usual. A folder of other images goes with
    the recipes of one dataset: with several, no run could tell whether it is its data (a folder of digits
    reported as Fashion-MNIST results). Only the MNIST recipes had taken it: a Fashion-MNIST recipe given a
    folder of its files, or one that does not exist, trained on the default data without a word."""
    runs = [(name, role, getattr(get_recipe(name), role)) for name in names for role in ROLES]
    datasets = sorted({c.data.dataset for _, _, c in runs})
    takers = set(datasets)  # the datasets whose runs take data_dir
    if data_dir:
        holds = {dataset: other_dataset_in(dataset, data_dir) for dataset in datasets}
        if len(datasets) == 1 and holds[datasets[0]]:
            trains = "the recipe trains" if len(names) == 1 else "the recipes train"
            raise ParameterError("data_dir", f"{data_dir} holds {holds[datasets[0]]}'s files, not {datasets[0]}'s, "
                                             f"which {trains} on")
        if len(datasets) > 1:
            if not Path(data_dir).expanduser().is_dir():  # said once, not by each of the runs
                raise DatasetError(f"{data_dir}: no such folder")
            takers = set(holds.values()) & takers  # the one dataset that the others' checks name
            if not takers:
                raise ParameterError("data_dir", f"{data_dir} holds none of the official files of "
                                                 f"{', '.join(datasets)}, which these recipes train on: a folder of "
                                                 "other images goes with the recipes of one dataset")
    return [(name, role, TrainingJob(c.family, dict(c.params), replace(c.data, data_dir=data_dir)
                                     if data_dir and c.data.dataset in takers else c.data,
                                     f"recipe-{name}-{role}", command))
            for name, role, c in runs]


def run_recipe(name: str, out: Path, data_dir: str | None = None, progress: FitProgress | None = None,
               command: str | None = None) -> dict[str, Path]:
    """Train the recipe's reproduction and ours as ordinary runs (replacing earlier ones, continuing an
    interrupted one's checkpoint: ``train_job``); returns each role's run folder."""
    return {role: train_job(job, out, progress) for _, role, job in _jobs([name], data_dir, command)}


def run_recipes(names: list[str], out: Path, data_dir: str | None = None, cluster: str | None = None,
                progress: FitProgress = SILENT, command: str | None = None) -> dict[str, dict[str, Path | Exception]]:
    """Every run of ``names`` (here, or as tasks on a Dask ``cluster``): recipe → role → its run folder,
    or the exception that stopped it (the other runs go on)."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:  # a string's letters are no names
        raise ParameterError("names", f"a non-empty list of recipe names; got {names!r}")
    if len(set(map(str, names))) < len(names):
        raise ParameterError("names", f"a recipe is named twice in {names!r}: its runs would be trained twice")
    jobs = _jobs(names, data_dir, command)
    results: dict[str, dict[str, Path | Exception]] = {name: {} for name in names}
    with started(progress, len(jobs), "run"):
        for done, (i, result) in enumerate(train_all([job for _, _, job in jobs], out, cluster, progress), start=1):
            name, role, job = jobs[i]
            results[name][role] = result
            progress.advance(done, f"{job.name}: " + ("failed" if isinstance(result, Exception) else "done"))
            # and a line that stays: the bar shows the last run's state, and on a file or a pipe (a log of hours)
            # nothing said which runs were done, or why one failed, until the end
            state = f"failed: {one_line(result)}" if isinstance(result, Exception) else "done"
            progress.log(f"[{done}/{len(jobs)}] {job.name}: {state}")
    return results
