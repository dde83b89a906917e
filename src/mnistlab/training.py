"""One pipeline for every model: data → fit → evaluate → artifacts → report.

A run directory ``<out>/runs/<name>/`` holds the model (``model.npz`` +
``model.json``), ``config.json`` (all that is needed to reproduce it),
``metrics.json``, ``predictions.npz`` (the test predictions, for compare),
``plots/`` and ``report.html``. It is built in a temporary folder and renamed
into place, so a failed or interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import platform
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from . import metrics as metrics_mod
from . import plots, report
from .artifacts import atomic_directory, load_model, save_model, write_json
from .datasets import Dataset, load_dataset
from .models import MnistlabModel, get_family
from .preprocess import flatten_scale

RUNS = "runs"
CHECKPOINTS = "checkpoints"  # <out>/checkpoints/<run name>/: per-epoch checkpoints while a run trains
EXPLAINED_SAMPLE = 0  # the test image whose probabilities and contributions the report shows


@dataclass(frozen=True)
class DataChoice:
    """Which data a run uses: a dataset, optionally re-split, some classes, subsets."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    classes: tuple[int, ...] | None = None
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 0
    resplit_test_fraction: float | None = None  # pool train+test and split again

    def load(self) -> Dataset:
        ds = load_dataset(self.dataset, data_dir=self.data_dir)
        if self.resplit_test_fraction:
            ds = ds.resplit(self.resplit_test_fraction, seed=self.seed)
        if self.classes:
            ds = ds.filter_classes(self.classes)
        if self.train_size:
            ds = ds.subset(n=self.train_size, seed=self.seed)
        if self.test_size:
            ds = ds.subset(n=self.test_size, seed=self.seed, split="test")
        return ds


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("mnistlab", "numpy", "scikit-learn", "scipy", "torch"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


def build_model(family: str, params: dict, seed: int) -> MnistlabModel:
    """The family's estimator; the run's seed fills ``random_state`` unless given."""
    cls = get_family(family)
    accepted = inspect.signature(cls.__init__).parameters
    unknown = set(params) - set(accepted)
    if unknown:
        raise ValueError(f"{family} has no parameter(s) {', '.join(sorted(unknown))}; "
                         f"see `mnistlab models {family}`")
    if "random_state" in accepted and params.get("random_state") is None:
        params = {**params, "random_state": seed}
    return cls(**params)


def runs_dir(out: Path) -> Path:
    return Path(out) / RUNS


def resolve_run(run: str | Path, out: Path) -> Path:
    """A run given by name (under ``<out>/runs``) or by path."""
    candidates = [Path(run), runs_dir(out) / str(run)]
    for path in candidates:
        if (path / "config.json").is_file():
            return path
    raise FileNotFoundError(f"no run {run!r} (looked in {', '.join(map(str, candidates))})")


def train(family: str, params: dict, data: DataChoice, out: Path, name: str | None = None,
          overwrite: bool = False, command: str | None = None, resume: bool = False) -> Path:
    """Fit, evaluate and write a complete run directory; return its path.

    A family that can checkpoint (it takes ``checkpoint_dir``) writes one every epoch
    into ``<out>/checkpoints/<name>``, deleted once the run is complete. With ``resume``,
    training continues from the checkpoint an interrupted run of the same name and
    settings left there; without, any such checkpoint is discarded first.
    """
    ds = data.load()
    model = build_model(family, params, data.seed)
    x_train, x_test = flatten_scale(ds.x_train), flatten_scale(ds.x_test)
    created = datetime.now(timezone.utc)
    name = name or f"{family}-{ds.name}-{created.strftime('%Y%m%d-%H%M%S')}"
    checkpoints = _checkpoint_folder(model, out, name, resume)

    start = time.perf_counter()
    model.fit(x_train, ds.y_train)
    fit_seconds = time.perf_counter() - start
    if checkpoints:
        model.set_params(checkpoint_dir=None)  # where it trained is not a hyperparameter of the model

    start = time.perf_counter()
    proba = model.predict_proba(x_test)
    predict_seconds = time.perf_counter() - start

    final = runs_dir(out) / name
    if final.exists() and not overwrite:
        raise FileExistsError(f"run {name!r} exists in {runs_dir(out)}; choose another --name or pass --overwrite")

    with atomic_directory(final) as staging:
        config = {
            "name": name, "model": family, "params": model.get_params(deep=False),
            "dataset": {
                "name": ds.name, "source": ds.source, "checksums": ds.checksums,
                "checksum_summary": ds.checksum_summary, "classes": list(ds.classes),
                "class_subset": list(data.classes) if data.classes else None,
                "train_size": data.train_size, "test_size": data.test_size,
                "n_train": int(len(ds.y_train)), "n_test": int(len(ds.y_test)),
            },
            "data": dataclasses.asdict(data),
            "seed": data.seed, "versions": library_versions(),
            "created": created.isoformat(timespec="seconds"),
            "command": command or " ".join(shlex.quote(a) for a in ["mnistlab", *sys.argv[1:]]),
        }
        run_metrics = metrics_mod.evaluate(ds.y_test, proba, ds.classes)
        run_metrics.update(
            fit_seconds=fit_seconds,
            predict_seconds_per_10k=predict_seconds * 10000 / max(len(x_test), 1),
            n_parameters=int(sum(a.size for a in model.get_arrays().values()
                                 if np.issubdtype(a.dtype, np.floating))),
            n_iter=_as_int(getattr(model, "n_iter_", None)),
            converged=getattr(model, "converged_", None),
            fit_message=getattr(model, "fit_message_", None),
            history=getattr(model, "history_", None),
        )
        run_metrics["analysis"] = metrics_mod.analysis(run_metrics)
        save_model(model, staging)
        write_json(staging / "config.json", config)
        write_json(staging / "metrics.json", run_metrics)
        np.savez_compressed(staging / "predictions.npz", y_true=ds.y_test,
                            y_pred=proba.argmax(axis=1), proba=proba.astype(np.float32))
        write_plots(model, ds, x_test, proba, run_metrics, staging / "plots")
        report.write_report(staging)
    if checkpoints:
        shutil.rmtree(checkpoints, ignore_errors=True)
        with contextlib.suppress(OSError):
            checkpoints.parent.rmdir()  # <out>/checkpoints, unless other runs are training
    return final


def _checkpoint_folder(model: MnistlabModel, out: Path, name: str, resume: bool) -> Path | None:
    """Point a model that can checkpoint at this run's checkpoint folder; None for one that cannot."""
    if "checkpoint_dir" not in inspect.signature(type(model).__init__).parameters:
        if resume:
            raise ValueError(f"{model.family} does not write checkpoints, so there is nothing to resume")
        return None
    folder = Path(out) / CHECKPOINTS / name
    if not resume:
        shutil.rmtree(folder, ignore_errors=True)  # left by an earlier, interrupted run of this name
    model.set_params(checkpoint_dir=str(folder))
    return folder


def _as_int(value) -> int | None:
    return None if value is None else int(np.max(value))


def write_plots(model: MnistlabModel, ds: Dataset, x_test: np.ndarray, proba: np.ndarray,
                run_metrics: dict, folder: Path) -> None:
    """Every plot the model's capabilities allow; none depends on the family's name."""
    classes = ds.classes
    cm = np.array(run_metrics["confusion_matrix"])
    plots.confusion_matrix_plot(cm, classes, folder / "confusion_matrix.png")
    plots.confusion_matrix_plot(np.array(run_metrics["confusion_matrix_normalized"]), classes,
                                folder / "confusion_matrix_normalized.png", normalized=True)
    pred = proba.argmax(axis=1)
    for label, mask in (("correct", pred == ds.y_test), ("wrong", pred != ds.y_test)):
        idx = np.flatnonzero(mask)[:10]
        plots.prediction_grid(ds.x_test[idx], ds.y_test[idx], pred[idx], classes,
                              folder / f"{label}.png", title=f"First {len(idx)} {label} test predictions")
    coef = getattr(model, "coef_", None)
    if coef is not None and np.shape(coef)[-1] == x_test.shape[1]:
        plots.coefficient_images(coef, classes, folder / "coefficients.png")
        if np.mean(np.asarray(coef) == 0) > 0.01:  # a sparse (L1) model, not a few dead pixels
            plots.sparsity_mask(coef, classes, folder / "sparsity.png")
    history = run_metrics.get("history")
    if history:
        is_objective = set(history) == {"objective"}
        plots.curves(history, folder / ("convergence.png" if is_objective else "learning_curves.png"),
                     title="Convergence" if is_objective else "Learning curves",
                     xlabel="iteration" if is_objective else "epoch")
    write_explanation(model, ds.x_test[EXPLAINED_SAMPLE], x_test[EXPLAINED_SAMPLE:EXPLAINED_SAMPLE + 1],
                      classes, folder, prefix="sample", true_label=int(ds.y_test[EXPLAINED_SAMPLE]))
    if hasattr(model, "explain"):
        labels = np.unique(ds.y_test)
        first = np.array([np.flatnonzero(ds.y_test == k)[0] for k in labels])
        maps = model.explain(x_test[first])[np.arange(len(first)), labels]
        plots.class_saliency(ds.x_test[first], maps, labels, pred[first], classes, folder / "class_saliency.png")


def write_explanation(model: MnistlabModel, image: np.ndarray, x: np.ndarray, classes,
                      folder: Path, prefix: str, true_label: int | None = None) -> list[Path]:
    """Probability bars and, where the model can explain itself, per-class contribution maps."""
    proba = model.predict_proba(x)[0]
    truth = f", true: {classes[true_label]}" if true_label is not None else ""
    title = f"Predicted {classes[int(proba.argmax())]} ({proba.max():.1%}){truth}"
    paths = [plots.probability_bars(proba, classes, folder / f"{prefix}_probabilities.png", title=title)]
    if hasattr(model, "explain"):
        contributions = model.explain(x)[0]
        paths.append(plots.contribution_maps(contributions, image, classes,
                                             folder / f"{prefix}_contributions.png", proba=proba))
    return paths


def read_config(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "config.json").read_text())


def run_data(config: dict) -> DataChoice:
    """The data a run was trained and tested on."""
    choice = dict(config["data"])
    if choice.get("classes"):
        choice["classes"] = tuple(choice["classes"])
    return DataChoice(**choice)


def evaluate_run(run_dir: Path, data: DataChoice | None = None) -> dict:
    """Reload a run's model and evaluate it on its own (or another) test set."""
    model = load_model(run_dir)
    ds = (data or run_data(read_config(run_dir))).load()
    proba = model.predict_proba(flatten_scale(ds.x_test))
    return metrics_mod.evaluate(ds.y_test, proba, ds.classes)


def list_runs(out: Path) -> list[dict]:
    """Summary rows of every complete run under ``<out>/runs``, newest first."""
    rows = []
    for config_path in sorted(runs_dir(out).glob("*/config.json")):
        run_dir = config_path.parent
        try:
            config = json.loads(config_path.read_text())
            metrics = json.loads((run_dir / "metrics.json").read_text())
        except (OSError, ValueError):
            continue  # not a complete run
        rows.append({"name": run_dir.name, "dataset": config["dataset"]["name"], "model": config["model"],
                     "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                     "fit_seconds": metrics["fit_seconds"], "created": config["created"],
                     "path": str(run_dir)})
    return sorted(rows, key=lambda r: r["created"], reverse=True)
