"""One pipeline for every model: data → fit → evaluate → artifacts → report.

The run folder it writes is the run store's (``store.py`` says what it holds);
it is built in a staging folder and renamed into place, so a failed or
interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from .. import metrics as metrics_mod
from .._io import check_writable, scratch_folder, write_json
from .._version import __version__
from .._values import is_number, is_whole_number, path_text
from ..callbacks import SILENT, FitProgress
from ..data.datasets import DEFAULT_DATASET, Dataset, data_dir_from_env, get_spec, load_dataset
from ..data.preprocess import check_classes, flatten_scale, held_out
from ..errors import (DatasetError, MnistlabError, ModelFileError, OtherFitsCheckpointError, ParameterError,
                      RunDamagedError, one_line, warn)
from ..models import check_family_name, get_family
from ..models._fitting import finite_proba
from ..models.base import RUN_SET_PARAMETERS, MnistlabModel
from ..models.params import SEED_OR_NONE, check as check_parameter
from ..models.serialization import ARRAYS_FILE, load_model, predicted_classes, save_model, saved_params
from ..models.temperature import TemperatureScaled, fit_temperature
from .interpret import Interpretation
from .robustness import robustness
from ..run_config import CONFIG, read_config
from .store import (METRICS, PLOTS, PREDICTIONS, RunStore, discard_checkpoints, folder_identity, holds_checkpoint,
                    write_embedding)


CALIBRATION_FRACTION = 0.1  # of the training images, held out to fit a temperature on
NAME_TIME = "%Y%m%d-%H%M%S"  # the UTC time that ends a run's or a sweep's default name


@dataclass(frozen=True)
class DataChoice:
    """Which data a run uses: a dataset, optionally re-split, some classes, subsets."""

    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    classes: tuple[int, ...] | None = None
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 0
    resplit_test_fraction: float | None = None  # pool train+test and split again

    def __post_init__(self):
        if not isinstance(self.dataset, str):
            raise ParameterError("dataset", f"must be a dataset's name, got {self.dataset!r}")
        if self.data_dir is not None:
            path_text("data_dir", self.data_dir)
        if self.data_dir is None:  # read here: a cluster's worker has its own environment
            object.__setattr__(self, "data_dir", data_dir_from_env(self.dataset))
        if self.data_dir is not None:  # as given: a cluster's worker or a later evaluate starts elsewhere
            object.__setattr__(self, "data_dir", os.path.abspath(os.path.expanduser(self.data_dir)))
        # it becomes the model's random_state too: a number, not None
        check_parameter("seed", self.seed, SEED_OR_NONE[:1])
        n_classes = len(get_spec(self.dataset).classes)
        if self.classes is not None:  # an empty list is a mistake, not "every class"
            object.__setattr__(self, "classes", check_classes(self.classes, n_classes))  # a tuple of ints
            n_classes = len(self.classes)
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and (not is_whole_number(value) or value < 1):  # said for the API and the CLI
                # alike: "(or None for all)" was Python's word on the command line, where --train-size takes no none
                raise ParameterError(name, f"must be a whole number of images ≥ 1, got {value!r}; leave it out for "
                                           "all of them")
            if value is not None and value < n_classes:  # a stratified subset holds each class at least once
                raise ParameterError(name, f"must be at least the number of classes, {n_classes}, got {value}")
        fraction = self.resplit_test_fraction
        if fraction is not None and not (is_number(fraction) and 0 < fraction < 1):
            raise ParameterError("test_fraction", f"must be a fraction between 0 and 1, got {fraction!r}")

    def load(self, progress: FitProgress = SILENT) -> Dataset:
        ds = load_dataset(self.dataset, data_dir=self.data_dir, progress=progress)
        if self.resplit_test_fraction:
            ds = ds.resplit(self.resplit_test_fraction, seed=self.seed)
        if self.classes is not None:
            ds = ds.filter_classes(self.classes)
        elif missing := ds.untaught_classes():
            raise DatasetError(f"{ds.source}: no training images of class {missing[0]} ({ds.classes[missing[0]]}), "
                               "and a model cannot learn a class it never sees (choose the classes to keep)")
        for name, size, labels, split in (("train_size", self.train_size, ds.y_train, "training"),
                                          ("test_size", self.test_size, ds.y_test, "test")):
            if size and size > len(labels):  # taken as all of them, while config.json recorded the size asked for
                which = " of these classes" if self.classes is not None else ""
                raise ParameterError(name, f"{size} is more than the {len(labels)} {split} images{which} "
                                           f"in {ds.source}")
        if self.train_size:
            ds = ds.subset(n=self.train_size, seed=self.seed, parameter="train_size")
        if self.test_size:
            ds = ds.subset(n=self.test_size, seed=self.seed, split="test", parameter="test_size")
        return ds


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "mnistlab": __version__}
    for dist in ("numpy", "scikit-learn", "scipy", "torch"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


def build_model(family: str, params: dict, seed: int, dataset: str | None = None) -> MnistlabModel:
    """The family's estimator; the run's seed fills ``random_state`` unless given (None given: unseeded), and the
    ``dataset`` it is to be fitted on what the family leaves to the data (``suit_dataset``)."""
    cls = get_family(family)
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ParameterError(unknown[0], f"{family} has no such parameter; its parameters: "
                                         f"{', '.join(p for p in accepted if p not in {'self', *RUN_SET_PARAMETERS})}")
    if run_set := sorted(set(params) & RUN_SET_PARAMETERS):
        raise ParameterError(run_set[0], "set by mnistlab, not given: a run keeps its checkpoints in "
                                         "<out>/checkpoints/<name>, where resume finds them")
    if "random_state" in accepted and "random_state" not in params:
        params = {**params, "random_state": seed}
    model = cls(**params)
    model.validate_params()
    if dataset is not None:
        model.suit_dataset(get_spec(dataset))
    model.check_fit_memory()  # before the data is loaded
    saved_params(model.get_params(deep=False))  # a run's and a sweep's files can hold them: said before the fit
    return model


def train(family: str, params: dict, data: DataChoice, out: Path, name: str | None = None,
          overwrite: bool = False, command: str | None = None, resume: bool = False,
          progress: FitProgress | None = None, embedding: bool = True, calibrate: bool = False) -> Path:
    """Fit, evaluate and write a complete run directory; return its path.

    Everything that can be checked is checked before the data is loaded: the run
    name, that it is free (or ``overwrite``), and the hyperparameters.
    A family that can checkpoint (``can_checkpoint``) writes one every epoch
    into ``<out>/checkpoints/<name>`` (a default-named run into a folder of its process's there,
    which nothing can resume), deleted once the run is complete. With ``resume``,
    training continues from the checkpoint an interrupted run of the same name and
    settings left there; without, such a checkpoint is discarded where the run is overwritten,
    and else kept and the run refused.
    ``embedding`` False skips the 2-D map of the test set (its t-SNE is the slowest part of the report).
    ``calibrate`` holds out ``CALIBRATION_FRACTION`` of the training images (stratified, seeded), fits
    on the rest and fits a temperature on them (``models.temperature``): the model file records it,
    its predictions use it, and metrics.json has the test set's calibration before and after.
    """
    check_family_name(family)  # an unknown model is refused before anything is named or created
    for flag, value in (("overwrite", overwrite), ("resume", resume), ("embedding", embedding),
                        ("calibrate", calibrate)):
        check_parameter(flag, value, ["boolean"])  # overwrite="no" is truthy: it would replace a run
    check_parameter("command", command, [str, None])
    progress = progress or SILENT
    store = RunStore(out)
    created = datetime.now(timezone.utc)
    # a family's name may hold a colon (sklearn:SVC), which a run's name may not; runs started in the same
    # second share a default name, so the store numbers it (-2, -3 …) where it is taken
    default_name = name is None
    if resume and default_name:  # a new default name has no checkpoints: it would start afresh without a word
        raise ParameterError("resume", "resuming needs the name of the run to resume")
    if default_name:  # an empty name given is refused as a name, not taken for none
        name = f"{family.replace(':', '-')}-{data.dataset}-{created.strftime(NAME_TIME)}"
    # a checkpoint of the name is refused by the claim, with the name held, before the data loads
    with store.claim(name, overwrite=overwrite, numbered=default_name, resume=resume) as writer, \
            contextlib.ExitStack() as leaving:
        name = writer.path.name
        model = build_model(family, params, data.seed, data.dataset)
        folder = store.checkpoints(name)
        checkpoints = _checkpoint_folder(model, folder, resume, default_name, leaving)
        # said first on the way out, where a default name's checkpoints are still there: they are not kept
        leaving.push(functools.partial(_say_stopped, writer.path, folder_identity(writer.path),
                                       None if default_name else checkpoints))
        # a family that writes none finds one where another family's fit of this name was stopped: discarded where
        # the run is overwritten, as any (else the completed run was said to be an interrupted overwrite, for good)
        kept_in = checkpoints or folder
        kept = holds_checkpoint(kept_in)
        notes = []  # said with the fit's message (the command's summary, --json, a notebook's run card), not logged
        if resume and checkpoints and not kept:  # once: a line logged too said it twice
            notes.append(f"nothing to resume in {checkpoints}: started afresh")
        ds = data.load(progress)
        x_train, x_test, y_train = flatten_scale(ds.x_train), flatten_scale(ds.x_test), ds.y_train
        if calibrate:
            x_train, x_val, y_train, y_val = held_out(x_train, y_train, CALIBRATION_FRACTION, data.seed, "calibrate",
                                                   ds.classes)
        if kept and not resume and overwrite:  # discarded only now (a re-run that failed on its data lost it)
            discard_checkpoints(kept_in)  # <out>/checkpoints too, where empty (a family that writes none
            # removes nothing when the run is committed)
            # said once, with the fit's message (the command's summary, --json, a notebook's run card): a line
            # logged too said it twice, three times beside train_job's, which says why it discards one
            notes.append(f"discarded the checkpoint an interrupted training kept in {kept_in}: started afresh")

        start = time.perf_counter()
        model.fit(x_train, y_train, progress=progress)
        fit_seconds = time.perf_counter() - start
        if checkpoints:
            model.set_params(checkpoint_dir=None)  # where it trained is not a hyperparameter of the model
        model_params = model.get_params(deep=False)  # the family's hyperparameters, before any calibration wraps it

        if calibrate:
            model, temperature = _calibrated(model, family, x_test, ds.y_test, x_val, y_val)

        start = time.perf_counter()
        proba = model.predict_proba(x_test)
        predict_seconds = time.perf_counter() - start
        # as predictions.npz keeps them: every number of the run (log-loss, top losses) follows from that file
        proba = finite_proba(proba, family).astype(np.float32)

        config = _run_config(name, family, model_params, data, ds, int(len(y_train)), calibrate, created, command)
        run_metrics = _run_metrics(model, ds, proba, fit_seconds, predict_seconds)
        if notes:
            run_metrics["fit_message"] = "; ".join(filter(None, [run_metrics["fit_message"], *notes]))
        if calibrate:
            run_metrics["temperature"] = temperature(run_metrics["calibration"])
        interpretation = Interpretation(lambda: model, list(ds.classes), ds.y_test, proba, run_metrics,
                                        lambda: ds.x_test)
        run_metrics.update(interpretation.summary())
        run_metrics["analysis"] = metrics_mod.analysis(run_metrics)
        # matplotlib comes with these: only writing a run draws (loading one, or predicting with it, does not)
        from . import report
        from .figures import write_figures

        # the checkpoints go with the run's commit: a Ctrl-C just after it must not leave them
        committed = functools.partial(discard_checkpoints, checkpoints) if checkpoints else None
        with writer.staging(committed=committed) as staging:
            save_model(model, staging)
            write_json(staging / CONFIG, config)
            write_json(staging / METRICS, run_metrics)
            np.savez_compressed(staging / PREDICTIONS, y_true=ds.y_test,
                                y_pred=proba.argmax(axis=1), proba=proba)
            # the map (its t-SNE) is computed while drawing its figure, alongside a child drawing others
            write_figures(interpretation, staging / PLOTS, skip=() if embedding else ("embedding",), processes=2)
            if embedding and (mapped := interpretation.embedding()) is not None:
                write_embedding(staging, mapped)
            report.write_report(staging)
    return writer.path


def _run_config(name: str, family: str, model_params: dict, data: DataChoice, ds: Dataset, n_train: int,
                calibrate: bool, created: datetime, command: str | None) -> dict:
    """config.json: what was trained, on which data (the test images' digest too), when, and how it was asked for."""
    return {
        "name": name, "model": family, "params": model_params,
        "dataset": {
            "name": ds.name, "title": ds.title, "source": ds.source, "checksums": ds.checksums,
            "checksum_summary": ds.checksum_summary, "classes": list(ds.classes),
            "class_subset": list(data.classes) if data.classes else None,
            "train_size": data.train_size, "test_size": data.test_size,
            "n_train": n_train, "n_test": int(len(ds.y_test)),
            # which images the run was tested on: comparisons need the same ones, not only the same labels
            "test_images_sha256": test_images_digest(ds),
        },
        "calibrate": calibrate,
        "data": dataclasses.asdict(data),
        "seed": data.seed, "versions": library_versions(),
        "created": created.isoformat(timespec="seconds"),
        "command": command,
    }


def _run_metrics(model: MnistlabModel, ds: Dataset, proba: np.ndarray, fit_seconds: float,
                 predict_seconds: float) -> dict:
    """metrics.json's numbers of the test set's probabilities ``proba``, and of the fit (time, size, history),
    robustness and sparsity; the interpretation's summary is added by the caller."""
    run_metrics = _scores(model, ds.y_test, proba, ds.classes)
    run_metrics.update(
        fit_seconds=fit_seconds,
        predict_seconds_per_10k=predict_seconds * 10000 / max(len(ds.y_test), 1),
        n_parameters=model.n_parameters(),
        n_iter=_iterations(getattr(model, "n_iter_", None)),
        converged=getattr(model, "converged_", None),
        fit_message=getattr(model, "fit_message_", None),
        history=getattr(model, "history_", None),
        robustness=robustness(model.predict_proba, ds.x_test, ds.y_test),
    )
    sparsity = zero_weight_fraction(model)
    # whether the run has the figures of weights, which its list of figures then tells without loading the model
    run_metrics["has_weight_images"] = sparsity is not None
    if sparsity is not None:  # how sparse an L1 penalty made the weights
        run_metrics["zero_weight_fraction"] = sparsity
    return run_metrics


def _say_stopped(run: Path, old: tuple[int, int] | None, checkpoints: Path | None, kind, exc, traceback) -> None:
    """Where ``train`` was stopped (Ctrl-C, SIGTERM: its ExitStack's callback, which lets the exception go on), warn
    of what is kept: the run it was to replace, as it was (``old``, its folder's identity: replaced only once the new
    one is complete, so a stop held back until then finds the new one), and the checkpoint of the stopped fit. A
    bare "interrupted" left the user to guess whether the old run was lost; a warning, as a line logged is not
    heard under --json or without a bar."""
    if kind is None or not issubclass(kind, (KeyboardInterrupt, SystemExit)):
        return
    kept = [f"run {run.name!r} is kept as it was in {run}"] if old is not None and folder_identity(run) == old else []
    if checkpoints is not None and holds_checkpoint(checkpoints):
        kept.append(f"the stopped training's checkpoint is kept in {checkpoints}")
    if kept:
        warn(f"stopped: {'; '.join(kept)}", UserWarning)  # at the user's call, heard at each stop


@dataclass(frozen=True)
class TrainingJob:
    """One run to train: what ``train`` takes, less where the runs go."""

    family: str
    params: dict
    data: DataChoice
    name: str
    command: str | None = None
    embedding: bool = True  # as train's


# A job's own failure: bad settings for its data, a fit that diverged, a model too large for this machine.
JOB_FAILURES = (MnistlabError, MemoryError)


def train_all(jobs: list[TrainingJob], out: Path, cluster: str | None = None, progress: FitProgress = SILENT
              ) -> Iterator[tuple[int, Path | Exception]]:
    """Train each job (``train_job``: replacing a run of its name), here one after another or as tasks on a Dask
    ``cluster``; yields ``(i, run folder)`` as each ends, or ``(i, exception)`` for one that failed by its
    own settings or data (``JOB_FAILURES``), each i exactly once. Anything else stops them all: a full disk,
    a folder that may not be written or a bug would fail every job the same way. On a cluster the run
    folders come back here (``RunStore.put``); ``progress`` hears of a cluster that has no worker yet."""
    if cluster is None:  # an empty address is refused as one, not taken for none
        for i, job in enumerate(jobs):
            try:
                yield i, train_job(job, out)
            except JOB_FAILURES as exc:  # reported with its job; the others go on
                yield i, exc
        return
    from .cluster import run_tasks

    store = RunStore(out)
    arguments = [(j.family, j.params, j.data, j.name, j.command, j.embedding) for j in jobs]
    for i, files in run_tasks(cluster, run_files, arguments, progress):
        try:
            if isinstance(files, Exception):
                raise files
            yield i, store.put(jobs[i].name, files, overwrite=True)
        except JOB_FAILURES as exc:
            yield i, exc


def train_job(job: TrainingJob, out: Path, progress: FitProgress | None = None) -> Path:
    """``train`` the job over a run of its name. Its settings are the job's, the same each time it is run: a
    checkpoint that an interrupted training of it kept is resumed, not discarded with the epochs it holds (a
    recipe run again started at epoch 1). One of another fit (the job's settings changed since, or a user's
    run of its name) is replaced, as an overwrite replaces it."""
    train_it = functools.partial(train, job.family, job.params, job.data, out, name=job.name, overwrite=True,
                                 command=job.command, progress=progress, embedding=job.embedding)
    checkpoints = RunStore(out).checkpoints(job.name)
    # a family that writes none is refused resume (a stray folder of that name would fail the job)
    if get_family(job.family).can_checkpoint and holds_checkpoint(checkpoints):
        try:
            return train_it(resume=True)
        except OtherFitsCheckpointError:
            (progress or SILENT).log(f"discarding {checkpoints}: the checkpoint of a fit with other settings or data")
    return train_it()


def run_files(family: str, params: dict, data: DataChoice, name: str, command: str | None = None,
              embedding: bool = True) -> dict[str, bytes]:
    """``train`` into a temporary folder, and the run folder's files (path → bytes): a cluster's task,
    whose client writes them with ``RunStore.put``, so that the machines share no filesystem."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mnistlab-task-") as tmp:
        folder = train(family, params, data, Path(tmp), name=name, command=command, embedding=embedding)
        return {path.relative_to(folder).as_posix(): path.read_bytes()
                for path in sorted(folder.rglob("*")) if path.is_file()}


def zero_weight_fraction(model: MnistlabModel) -> float | None:
    """The share of exactly-zero weights, for a model with one weight per pixel and class; else None."""
    weights = model.weight_images()
    return None if weights is None else float(np.mean(np.asarray(weights) == 0))


def _checkpoint_folder(model: MnistlabModel, folder: Path, resume: bool, default_name: bool,
                       leaving: contextlib.ExitStack) -> Path | None:
    """Point a model that can checkpoint at ``folder`` (``RunStore.checkpoints``), or a default-named run's at a
    scratch folder there, which ``leaving`` removes; None for one that cannot. What an interrupted run of
    this name left there is resumed, or discarded where the run is overwritten (by the caller, once the data
    is there); else the claim refused the run (a re-run without resume deleted it, even where it then failed)."""
    if not model.can_checkpoint:
        if resume:
            raise ParameterError("resume", f"{model.family} does not write checkpoints, so there is nothing to resume")
        return None
    if default_name:
        # a made-up name, which no later call can give to resume: kept by no end. Its checkpoints go in a
        # folder of this process's, removed however the run ends and swept once a process killed outright
        # (SIGKILL, out of memory) left it: under <out>/checkpoints/<name> nothing ever removed them
        try:  # said as a named run's is, below
            folder = leaving.enter_context(scratch_folder(folder.parent, folder.name))
        except OSError as exc:
            raise ParameterError("out", f"cannot write checkpoints in {folder.parent} ({exc.strerror or exc})"
                                 ) from None
        leaving.callback(discard_checkpoints, folder)  # <out>/checkpoints too, where no other run's are
    if folder.is_symlink() or folder.exists() and not folder.is_dir():  # rmtree would leave it, and saving fail
        raise ParameterError("out", f"{folder} is not a folder of checkpoints: remove it")
    try:  # now, not when the first epoch's checkpoint is written, as the claim checks runs/ before any work
        check_writable(folder)
    except OSError as exc:
        raise ParameterError("out", f"cannot write checkpoints in {folder} ({exc.strerror or exc})") from None
    model.set_params(checkpoint_dir=str(folder))
    return folder


def _calibrated(model: MnistlabModel, family: str, x_test: np.ndarray, y_test: np.ndarray, x_val: np.ndarray,
                y_val: np.ndarray) -> tuple[TemperatureScaled, Callable[[dict], dict]]:
    """``model`` with a temperature fitted on the held-out images ``x_val``, and metrics.json's record of it, made
    of the test set's calibration after it (the run's metrics'): the temperature, and the calibration before and
    after."""
    # as the run's calibrated ones are
    before = metrics_mod.calibration(y_test, finite_proba(model.predict_proba(x_test), family).astype(np.float32))
    temperature, unfitted = fit_temperature(model.predict_proba(x_val), y_val)
    scaled = TemperatureScaled(model, temperature)

    def record(after: dict) -> dict:
        return {"value": scaled.temperature, "n_validation": int(len(y_val)),
                "ece_before": before["ece"], "ece_after": after["ece"],
                "brier_before": before["brier"], "brier_after": after["brier"],
                **({"not_fitted": unfitted} if unfitted else {})}

    return scaled, record


def _iterations(n_iter) -> int | None:
    """A fit's ``n_iter_`` as one count: scikit-learn's is an array where it fits a model per class (the most)."""
    return None if n_iter is None else int(np.max(n_iter))


def run_data(config: dict) -> DataChoice:
    """The data a run was trained and tested on."""
    choice = dict(config["data"])
    try:
        if choice.get("classes"):
            choice["classes"] = tuple(choice["classes"])
        return DataChoice(**choice)
    except (TypeError, ParameterError) as exc:
        raise RunDamagedError(f"{config.get('name')!r}: config.json's data choice is not usable "
                              f"({one_line(exc)})") from None


def test_images_digest(ds: Dataset) -> str:
    """The SHA-256 of ``ds``'s test images: which images a run was tested on (config.json keeps it)."""
    return hashlib.sha256(np.ascontiguousarray(ds.x_test)).hexdigest()


def load_run_data(config: dict, progress: FitProgress = SILENT) -> Dataset:
    """The data a run was trained and tested on, loaded again (a download reports to ``progress``).

    Refused where the test images are not the ones the run was tested on (the files changed since):
    its predictions, figures and evaluation would be paired with other images."""
    try:
        ds = run_data(config).load(progress)
    except ParameterError as exc:  # the run's own choice, not one given now (no flag of the user's to name):
        # the data found here cannot give it (fewer images than the run drew, say)
        raise DatasetError(f"the data found cannot give the run {config['name']!r} its images again, as "
                           f"config.json records them ({one_line(exc)})") from None
    recorded = config["dataset"].get("test_images_sha256")  # absent from runs written before it was recorded
    if recorded is not None and test_images_digest(ds) != recorded:
        raise DatasetError(f"the test images in {ds.source} are not the ones the run {config['name']!r} was tested "
                           "on: the data files changed since it was trained")
    return ds


def evaluate_run(run_dir: Path, data: DataChoice | None = None, progress: FitProgress = SILENT) -> dict:
    """Reload a run's model and evaluate it on its own test set, or on another of the same classes (another
    copy, another dataset of them; a download reports to ``progress``)."""
    model = load_model(run_dir)
    config = read_config(run_dir)
    ds = data.load(progress) if data else load_run_data(config, progress)
    if data and list(ds.classes) != list(config["dataset"]["classes"]):  # its class 0 scored against another's
        raise ParameterError("dataset", f"{data.dataset}'s classes ({_names(ds.classes)}) are not the run's "
                                        f"({_names(config['dataset']['classes'])}): an accuracy would mean nothing")
    n_model = predicted_classes(model, Path(run_dir) / ARRAYS_FILE)
    if n_model != len(ds.classes):
        problem = f"the model predicts {n_model} classes, the data has {len(ds.classes)}"
        raise ParameterError("data", problem) if data else ModelFileError(f"{run_dir}: {problem}")
    proba = model.predict_proba(flatten_scale(ds.x_test)).astype(np.float32)  # as a run's numbers were computed
    return _scores(model, ds.y_test, proba, ds.classes)


def _names(classes, shown: int = 3) -> str:
    return ", ".join(classes[:shown]) + (", …" if len(classes) > shown else "")


def _scores(model: MnistlabModel, y_true: np.ndarray, proba: np.ndarray, classes) -> dict:
    """``metrics.evaluate``, and what the model's probabilities are where they are not its own (said beside
    the log-loss and calibration they give)."""
    scores = metrics_mod.evaluate(y_true, proba, classes)
    if (note := model.probabilities_note()) is not None:
        scores["probabilities_note"] = note
    return scores
