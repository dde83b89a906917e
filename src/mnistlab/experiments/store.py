"""The run store: the one module that knows where runs live and what a run folder holds.

``<out>/runs/<name>/`` holds the model (``model.npz`` + ``model.json``),
``config.json`` (all that is needed to reproduce it: read by ``run_config``,
below both the runs and ``inference``), ``metrics.json``,
``predictions.npz`` (the test predictions, for compare), ``embedding.npz``
(a 2-D map of test images, unless skipped), ``plots/`` and ``report.html``,
and ``model.onnx`` once the model is exported (``inference.onnx_file``).
Everything else under ``runs/`` is hidden bookkeeping that is never listed:
``.lock-<name>`` (the process training that name) and ``.staging-<pid>-…``
folders (a run being written; renamed into place when complete, swept away
once their process is gone).

The store never loses or invents a run: a name is one path component, checked
before anything is done; it is claimed (an exclusive lock file) before
fitting, so two processes training the same name get one clear error instead
of a silent replacement; overwriting replaces exactly the one folder it names;
a folder whose files are damaged is listed as damaged, with the reason, and the
other runs are unaffected.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import math
import os
import re
import shlex
import shutil
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from .._io import FILE_MODE, STAGING_PREFIX, atomic_directory, make_folder, sweep_staging, utf8_text
from .._values import is_number, is_whole_number, path_text
from ..errors import (
    ParameterError,
    RunDamagedError,
    RunExistsError,
    RunNotFoundError,
    shown_path,
)
from ..run_config import CONFIG, read_config, read_json, require_keys

RUNS = "runs"
# <out>/checkpoints/<run name>/: per-epoch checkpoints while a run trains (a default-named run's in a hidden
# staging folder there, which nothing can resume: swept once its process is gone)
CHECKPOINTS = "checkpoints"
METRICS, PREDICTIONS, REPORT, PLOTS = "metrics.json", "predictions.npz", "report.html", "plots"  # and run_config.CONFIG
MODEL_FILES = ("model.npz", "model.json")  # models.serialization's, named here: a listing imports no model code
# <out>/compare/<name>/: a comparison (experiments.compare's), named here: the server serves its page without
# importing what draws it (matplotlib: 1.5 s)
COMPARISONS, COMPARE_JSON, COMPARE_HTML = "compare", "compare.json", "compare.html"
# ASCII only: a name is a folder's and a URL's part, and a non-ASCII one can be typed in two Unicode forms (macOS
# keeps a third) and has look-alikes (Cyrillic а, Latin a) that list as two runs of one name
NAME_CHARACTERS = "ASCII letters, digits and . _ + - (not first)"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
MAX_NAME_LENGTH = 100
MAX_PREDICTIONS_BYTES = 64 * 1024 * 1024  # a 70000-image test set of 10 classes takes 3 MB
EMBEDDING = "embedding.npz"
MAX_EMBEDDING_BYTES = 1024 * 1024  # a few thousand images' indices and coordinates take tens of kilobytes
LOCK_PREFIX = ".lock-"
LOCK_ATTEMPTS = 3  # a lock found held is tried again twice, 50 ms apart: a sweep holds one for microseconds
WAIT_ATTEMPTS = 6000  # 5 minutes of those, for work that waits for a name (the same comparison, brought up to date)
DEFAULT_OUT = "mnistlab-out"
READ_ATTEMPTS = 3  # a run replaced while it is read is read again, up to this many times in all
T = TypeVar("T")


def default_out() -> Path:
    """Where everything is written unless told otherwise: ``$MNISTLAB_OUT``, else ./mnistlab-out."""
    return Path(os.environ.get("MNISTLAB_OUT") or DEFAULT_OUT)


def output_folder(folder: Path, what: str) -> Path:
    """``folder``, created if need be: one that cannot be is ``--out``'s fault, said before any work."""
    try:
        make_folder(folder)
    except OSError as exc:
        raise ParameterError("out", f"cannot write {what} in {folder} ({exc.strerror or exc})") from None
    return folder


def validate_name(name: str, kind: str = "run") -> str:
    """``name`` if it is a valid name of a run (or a sweep, a comparison: ``kind``): one path component of
    NAME_CHARACTERS, at most 100 long."""
    if not isinstance(name, str) or not name:
        raise ParameterError("name", f"a {kind} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ParameterError("name", f"a {kind} name has at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    if not NAME_PATTERN.fullmatch(name):
        raise ParameterError("name", f"{name!r} is not a {kind} name: use {NAME_CHARACTERS}")
    return name


def free_folder(folder: Path, kind: str, overwrite: bool, advice: str = "choose another name or overwrite it") -> Path:
    """``folder`` (a run's, a sweep's, a comparison's) unless it exists and ``overwrite`` was not asked
    for: said before any work, with ``advice``."""
    if folder.exists() and not overwrite:
        raise RunExistsError(f"{kind} {folder.name!r} exists in {folder.parent}; {advice}")
    return folder


def holds_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` (``RunStore.checkpoints``) holds a checkpoint: a file, not what a process killed while
    writing one left."""
    return folder.is_dir() and any(not path.name.startswith(STAGING_PREFIX) for path in folder.iterdir())


def discard_checkpoints(folder: Path) -> None:
    """Remove ``folder``, a run's checkpoints (``RunStore.checkpoints``, or a default-named run's scratch folder
    there), and ``<out>/checkpoints`` above it where that is left empty (``remove_if_empty``)."""
    shutil.rmtree(folder, ignore_errors=True)
    remove_if_empty(folder.parent)


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` (``<out>/checkpoints``) where it is empty: left so after an overwrite that discarded a
    checkpoint and after a sweep of scratch folders, it stayed for good. rmdir removes an empty folder only, so
    never one where another run has made its own; a run that has made it and not yet its own folder in it makes
    it again (``_io.make_folder``, ``_io.scratch_folder``)."""
    with contextlib.suppress(OSError):  # not empty (other runs train there), or gone already
        folder.rmdir()


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a run: its config, metrics and model files (many folders hold a config.json)."""
    return all((folder / name).is_file() for name in (CONFIG, METRICS, *MODEL_FILES))


def read_metrics(run_dir: Path) -> dict:
    """metrics.json, checked for the numbers listings and comparisons show."""
    path = Path(run_dir) / METRICS
    metrics = require_keys(path, read_json(path), {"accuracy": float, "macro_f1": float, "log_loss": float,
                                               "fit_seconds": float, "confusion_matrix": list, "per_class": list})
    for key in ("accuracy", "macro_f1"):  # NaN passes as a float, and listings and pages compute with them
        if not 0 <= metrics[key] <= 1:
            raise RunDamagedError(f"{shown_path(path)}: {key!r} must be a fraction from 0 to 1, got {metrics[key]}")
    for key in ("log_loss", "fit_seconds"):
        if not 0 <= metrics[key] < math.inf:
            raise RunDamagedError(f"{shown_path(path)}: {key!r} must be a finite number ≥ 0, got {metrics[key]}")
    analysis = metrics.get("analysis", [])
    if not isinstance(analysis, list) or not all(isinstance(line, str) for line in analysis):
        raise RunDamagedError(f"{shown_path(path)}: 'analysis' must be a list of sentences (strings)")
    matrix, n = metrics["confusion_matrix"], len(metrics["per_class"])  # what a run's card and figures draw
    if not (n >= 2 and len(matrix) == n and all(isinstance(row, list) and len(row) == n for row in matrix)
            and all(is_whole_number(c) and c >= 0 for row in matrix for c in row)):
        raise RunDamagedError(f"{shown_path(path)}: 'confusion_matrix' must be counts, a row and a column per class")
    for i, row in enumerate(metrics["per_class"]):  # what comparisons subtract and reports show
        if not (isinstance(row, dict) and isinstance(row.get("class"), str) and is_whole_number(row.get("support"))
                and all(is_number(row.get(k)) and 0 <= row[k] <= 1 for k in ("precision", "recall", "f1"))):
            raise RunDamagedError(f"{shown_path(path)}: per_class entry {i} must hold a class name, its support and "
                                  "its precision, recall and f1 as fractions")
    if not _follows_from(matrix, metrics):
        raise RunDamagedError(f"{shown_path(path)}: its accuracy, macro F1 or per-class scores are not those its "
                              "confusion matrix gives")
    calibration = metrics.get("calibration", {})
    if not (isinstance(calibration, dict)
            and all(type(calibration.get(k, 0.0)) in (int, float) for k in ("ece", "brier"))):
        raise RunDamagedError(f"{shown_path(path)}: 'calibration' must be an object, its 'ece' and 'brier' must be "
                              "numbers")
    if metrics.get("history") is not None and not isinstance(metrics["history"], dict):  # None: a fit without epochs
        raise RunDamagedError(f"{shown_path(path)}: 'history' must be an object")
    if type(metrics.get("has_weight_images", False)) is not bool:  # absent in runs written before it; "false" is truthy
        raise RunDamagedError(f"{shown_path(path)}: 'has_weight_images' must be true or false")
    for key in ("predict_seconds_per_10k", "n_parameters"):  # optional: listed and compared where present
        if metrics.get(key) is not None and not (is_number(metrics[key]) and 0 <= metrics[key] < math.inf):
            raise RunDamagedError(f"{shown_path(path)}: {key!r} must be a finite number ≥ 0")
    if metrics.get("robustness") is not None and not _is_robustness(metrics["robustness"]):
        raise RunDamagedError(f"{shown_path(path)}: 'robustness' must hold the clean accuracy and, per shift, its "
                              "strengths and an accuracy for each")
    n_test = sum(map(sum, matrix))
    for i, row in enumerate(metrics.get("top_losses", [])):  # the images the page and the report show
        if not (isinstance(row, dict) and _whole(row.get("index"), n_test)
                and all(_whole(row.get(k), n) for k in ("true", "predicted"))
                and all(type(row.get(k)) in (int, float) and math.isfinite(row[k]) for k in ("p_true", "loss"))):
            raise RunDamagedError(f"{shown_path(path)}: top_losses entry {i} is not a test image's index, its classes "
                                  "and finite numbers")
    return metrics


def _follows_from(matrix: list[list[int]], metrics: dict) -> bool:
    """Whether ``metrics``' accuracy, macro F1 and per-class supports and F1 are the confusion matrix's
    (``metrics.evaluate``'s formulas): listings and comparisons show them beside counts taken from it."""
    n = len(matrix)
    right = [matrix[k][k] for k in range(n)]
    support = [sum(row) for row in matrix]
    predicted = [sum(row[k] for row in matrix) for k in range(n)]
    f1 = [2 * right[k] / (support[k] + predicted[k]) if support[k] + predicted[k] else 0.0 for k in range(n)]
    close = functools.partial(math.isclose, abs_tol=1e-9)
    return (close(metrics["accuracy"], sum(right) / sum(support) if sum(support) else 0.0)
            and close(metrics["macro_f1"], sum(f1) / n)
            and all(row["support"] == support[k] and close(row["f1"], f1[k])
                    for k, row in enumerate(metrics["per_class"])))


def _is_robustness(value) -> bool:
    """Whether ``value`` has the form ``robustness.robustness`` gives, as its figure reads it."""
    def numbers(values) -> bool:
        return isinstance(values, list) and all(is_number(v) for v in values)
    shifts = value.get("shifts") if isinstance(value, dict) else None
    return (is_number(value.get("clean") if isinstance(value, dict) else None) and isinstance(shifts, dict)
            and all(isinstance(s, dict) and is_number(s.get("unshifted")) and numbers(s.get("strengths"))
                    and numbers(s.get("accuracy")) and len(s["accuracy"]) == len(s["strengths"])
                    for s in shifts.values()))


def _whole(value, n: int) -> bool:
    """Whether ``value`` is a whole number from 0 to n - 1 (not a bool)."""
    return type(value) is int and 0 <= value < n


def within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is a file inside ``folder``, where it leads (a link out of a run's folder is not
    the run's: a web page must not serve it)."""
    resolved = path.resolve()
    return resolved.is_file() and folder.resolve() in resolved.parents


def read_predictions(run_dir: Path, n_classes: int, n_test: int) -> dict:
    """predictions.npz: the test set's ``y_true``, ``y_pred`` (labels) and ``proba`` (one row per image),
    checked to be the run's (``n_test`` images, ``n_classes`` columns) and to agree with themselves: every
    number of a run follows from this file, so a comparison or a figure would contradict the run's own."""
    import numpy as np

    from .._npz import read_npz

    path = Path(run_dir) / PREDICTIONS
    arrays = read_npz(path, dict.fromkeys(("y_true", "y_pred", "proba")), MAX_PREDICTIONS_BYTES, RunDamagedError)
    y_true, y_pred, proba = arrays["y_true"], arrays["y_pred"], arrays["proba"]
    if (y_true.ndim != 1 or y_pred.shape != y_true.shape or proba.shape != (len(y_true), n_classes)
            or y_true.dtype.kind not in "iu" or y_pred.dtype.kind not in "iu" or proba.dtype.kind != "f"):
        raise RunDamagedError(f"{shown_path(path)}: expected integer y_true and y_pred of one length and a proba row "
                              f"of {n_classes} classes per image")
    if len(y_true) != n_test:
        raise RunDamagedError(f"{shown_path(path)}: {len(y_true)} test images, but the run was tested on {n_test}")
    if len(y_true) and not (0 <= y_true.min() and y_true.max() < n_classes and np.isfinite(proba).all()
                            and np.array_equal(y_pred, proba.argmax(axis=1))):
        raise RunDamagedError(f"{shown_path(path)}: labels outside the run's {n_classes} classes, probabilities that "
                              "are not finite, or predictions that are not the most probable classes")
    return arrays


def write_embedding(run_dir: Path, embedding: dict) -> None:
    """embedding.npz: the mapped test images' ``index``, their 2-D ``xy`` and ``of`` (what was mapped)."""
    import numpy as np

    np.savez_compressed(Path(run_dir) / EMBEDDING, index=embedding["index"], xy=embedding["xy"],
                        of=np.array(embedding["of"]))


def read_embedding(run_dir: Path, n_test: int) -> dict | None:
    """embedding.npz, or None for a run without one (trained with the embedding skipped); its indices are
    checked to be of the run's ``n_test`` test images."""
    import numpy as np

    from .._npz import read_npz

    path = Path(run_dir) / EMBEDDING
    if not path.is_file():
        return None
    arrays = read_npz(path, dict.fromkeys(("index", "xy", "of")), MAX_EMBEDDING_BYTES, RunDamagedError)
    index, xy = arrays["index"], arrays["xy"]
    if (index.ndim != 1 or index.dtype.kind not in "iu" or xy.shape != (len(index), 2) or xy.dtype.kind != "f"
            or len(index) and not (0 <= index.min() and index.max() < n_test) or not np.isfinite(xy).all()):
        raise RunDamagedError(f"{shown_path(path)}: expected indices of the run's {n_test} test images and one finite "
                              "x, y pair per index")
    return {"index": index, "xy": xy, "of": str(arrays["of"])}


@dataclass(frozen=True)
class RunSummary:
    """One row of a listing. A damaged run has only ``name``, ``path`` and ``damaged`` (the reason)."""

    name: str
    path: str
    dataset: str | None = None
    model: str | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    fit_seconds: float | None = None
    created: str | None = None
    damaged: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def read_config_and_metrics(run_dir: Path) -> tuple[dict, dict]:
    """config.json and metrics.json, each checked, and checked to describe the same classes."""
    config, metrics = read_config(run_dir), read_metrics(run_dir)
    if len(metrics["per_class"]) != len(config["dataset"]["classes"]):
        raise RunDamagedError(f"{Path(run_dir) / METRICS}: scores {len(metrics['per_class'])} classes, "
                              f"but {CONFIG} lists {len(config['dataset']['classes'])}")
    return config, metrics


def folder_identity(folder: Path) -> tuple[int, int] | None:
    """Which folder ``folder`` is now (device and inode): a run trained again over it is another."""
    try:
        status = os.stat(folder)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def read_whole(run_dir: Path, read: Callable[[Path], T]) -> tuple[T, tuple[int, int] | None]:
    """``read(run_dir)``, every file of it from one folder, and that folder's identity: where the run was
    replaced meanwhile (trained again with overwrite), its files may be two runs' (a config with the other's
    metrics, or predictions that contradict them: "damaged"), so it is read again."""
    for _ in range(READ_ATTEMPTS):
        before = folder_identity(run_dir)
        try:
            value = read(run_dir)
        except RunDamagedError:
            if folder_identity(run_dir) != before:
                continue
            raise
        if folder_identity(run_dir) == before:
            return value, before
    raise RunDamagedError(f"{shown_path(run_dir)}: replaced while it was read, {READ_ATTEMPTS} times; read it again")


def _summary_files(run_dir: Path) -> tuple[dict, dict]:
    config, metrics = read_config_and_metrics(run_dir)
    for name in (PREDICTIONS, *MODEL_FILES):  # what comparisons, pages, interpretations and predictions read
        if not (run_dir / name).is_file():
            raise RunDamagedError(f"{shown_path(run_dir / name)}: missing (or not a file)")
    return config, metrics


def _misnamed(folder: Path) -> str | None:
    """Why no command can name the folder ``folder`` of ``runs/`` (one renamed by hand: "my run"), or None:
    listed as a run, it was one that ``runs show``, ``compare`` and the page then said there was none of."""
    try:
        validate_name(folder.name)
    except ParameterError:
        name = utf8_text(folder.name)
        # the name's letters without their accents (été: ete, full-width Ａ: A), where "t" had been offered
        ascii_letters = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
        suggested = re.sub(r"[^A-Za-z0-9._+-]+", "-", ascii_letters).strip("._+-")[:MAX_NAME_LENGTH]
        to = f" to {suggested!r}" if suggested and not (folder.parent / suggested).exists() else ""
        if name != folder.name:  # no one can type its name as shown (�): the command that renames it, byte for byte
            how = f" (in its folder: mv {_shell_word(folder.name)} {_shell_word(suggested)})" if to else ""
            return f"{utf8_text(str(folder))}: its name is not UTF-8: rename it{to}{how}"
        problem = f"not a valid run name (use {NAME_CHARACTERS}, at most {MAX_NAME_LENGTH} characters)"
        return f"{utf8_text(str(folder))}: {problem}: rename it{to}"
    return None


def _shell_word(name: str) -> str:
    """``name`` as a POSIX shell word that names it exactly: quoted, or where it is not UTF-8, as the output of
    printf with each byte outside printable ASCII in octal ("$(printf 'bad\\377')"), as sh, dash, bash and zsh
    read it ($'\\xff' is bash's, zsh's and ksh's: dash's mv was given "$bad\\xff")."""
    data = os.fsencode(name)
    try:
        return shlex.quote(data.decode("utf-8"))
    except UnicodeDecodeError:
        escaped = "".join("%%" if b == ord("%") else chr(b) if 32 <= b < 127 and b not in b"'\\" else f"\\{b:03o}"
                          for b in data)
        return f"\"$(printf '{escaped}')\""


def summarize(run_dir: Path) -> RunSummary:
    """The listing row of one run folder (damaged, with the reason, if its files are)."""
    run_dir = Path(run_dir)
    try:
        (config, metrics), _ = read_whole(run_dir, _summary_files)
    except RunDamagedError as exc:
        return RunSummary(run_dir.name, str(run_dir), damaged=str(exc))
    return RunSummary(run_dir.name, str(run_dir), config["dataset"]["name"], config["model"], metrics["accuracy"],
                      metrics["macro_f1"], metrics["fit_seconds"], config["created"])


class RunStore:
    """The runs under ``<out>/runs``: find, list, claim a name, write a run."""

    def __init__(self, out: str | Path):
        self.out = Path(path_text("out", out))
        self.root = self.out / RUNS

    def path(self, name: str) -> Path:
        """Where the run ``name`` lives (whether or not it exists)."""
        return self.root / validate_name(name)

    def checkpoints(self, name: str) -> Path:
        """Where a run that can checkpoint keeps them while it trains."""
        return self.out / CHECKPOINTS / validate_name(name)

    def resolve(self, run: str | Path) -> Path:
        """A run given by name (under ``runs/``) or by the path of its folder.

        A name that is not valid is looked up only as a path, so no name can reach outside ``runs/``; one that
        names a folder of ``runs/`` all the same (renamed by hand) is a RunDamagedError, as ``list`` shows it.
        """
        if not isinstance(run, (str, os.PathLike)):
            raise ParameterError("run", f"a run is given by its name or its folder's path, got {run!r}")
        if run == "":  # it had been looked for as the folder '.' ("no run '' (looked for a run folder at .)")
            raise ParameterError(None, "an empty run name; give a run's name or its folder's path")
        path_text("run", run)  # a null byte: "no run" had printed it
        candidates = [Path(run)]
        if isinstance(run, str) and NAME_PATTERN.fullmatch(run) and len(run) <= MAX_NAME_LENGTH:
            candidates.insert(0, self.root / run)
        for path in candidates:  # not a hidden one (a run being written): by its real name, ".." is a folder's
            if path.is_dir() and (path / CONFIG).is_file() and not path.resolve().name.startswith("."):
                return path
        if len(candidates) == 2 and candidates[0].is_dir():  # a run's folder, as `runs list` shows it: damaged
            raise RunDamagedError(f"{candidates[0] / CONFIG}: missing (or not a file), so {run!r} is not a "
                                  "complete run")
        folder = self.root / run if isinstance(run, str) and len(candidates) == 1 else None
        if folder is not None and folder.name == run and not run.startswith(".") and folder.is_dir():
            raise RunDamagedError(_misnamed(folder))  # one renamed by hand, which `runs list` shows so: no typo
        if len(candidates) == 1 and candidates[0].is_dir() and not (candidates[0] / CONFIG).exists():
            # a sweep's, say: "no run" read as a typo in the path
            raise RunNotFoundError(f"{candidates[0]}: a folder, but not a run's (it has no {CONFIG})")
        looked = " or ".join(str(p) for p in candidates)
        raise RunNotFoundError(f"no run {str(run)!r} (looked for a run folder at {looked})")

    def check_out(self) -> None:
        """A ParameterError where ``out`` is a file, a run's folder or a folder of runs (given one level too deep):
        listed, it had been an empty list, read as no runs trained."""
        if self.out.exists() and not self.out.is_dir():
            raise ParameterError("out", f"{self.out} is a file, not a folder of runs")
        if self.root.is_dir():
            return
        if is_run_folder(self.out):
            raise ParameterError("out", f"{self.out} is a run's folder, not an output folder: give the one "
                                        f"above its {RUNS}/ folder, {self.out.parent.parent}")
        if self.out.is_dir() and any(map(is_run_folder, self.out.iterdir())):  # not by its name: "runs" may be
            # an output folder's, empty yet
            raise ParameterError("out", f"{self.out} holds runs itself, as a {RUNS}/ folder does: give the folder "
                                        f"above it, {self.out.parent}")

    def list(self) -> list[RunSummary]:
        """Every run, newest first; damaged ones last, with the reason. Stale staging is swept first. Empty where
        ``out`` is no folder yet; a ParameterError where it is no output folder (``check_out``)."""
        self.check_out()
        if not self.root.is_dir():
            return []
        sweep_leftovers(self.root)
        sweep_staging(self.out / CHECKPOINTS)  # default-named runs' checkpoints, left by a process killed outright
        remove_if_empty(self.out / CHECKPOINTS)
        rows = [summarize(p) if (misnamed := _misnamed(p)) is None
                else RunSummary(utf8_text(p.name), utf8_text(str(p)), damaged=misnamed)  # bytes no UTF-8 show: �
                for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted(rows, key=lambda r: (r.damaged is None, r.created or "", r.name), reverse=True)

    @contextmanager
    def claim(self, name: str, overwrite: bool = False, numbered: bool = False, resume: bool = False
              ) -> Iterator[RunWriter]:
        """Hold the run ``name`` while it is fitted and written (``claim_folder``); the writer stages it. A
        checkpoint of that name is a training that was stopped (an overwrite's too: the old run stays until the new
        one is complete): refused, unless ``overwrite`` (which discards it) or a ``resume`` of it that may write
        the run, with the way to go on ("overwrite it" alone discarded the checkpoint, and resume alone was
        refused). Whatever the family to be trained: one that writes none, trained beside it, left the completed
        run called an interrupted overwrite by every later training of the name. A ``numbered`` name is made up
        (a default name), not the stopped training's."""
        with claim_folder(self.root, name, "run", True, numbered, activity="trained") as folder:
            # checked with the name held: a checkpoint of it is no other process's fit of it now
            checkpoints, exists = self.checkpoints(folder.name), folder.exists()
            if not (overwrite or numbered or resume and not exists) and holds_checkpoint(checkpoints):
                raise RunExistsError(
                    (f"run {folder.name!r} exists in {self.root}; an interrupted training of it" if exists else
                     f"an interrupted training of run {folder.name!r}") + f" kept its checkpoint in {checkpoints}: "
                    f"resume {'and overwrite ' if exists else ''}it with the command that trained it to continue that "
                    "training, or overwrite it to start afresh")
            yield RunWriter(free_folder(folder, "run", overwrite))

    def put(self, name: str, files: dict[str, bytes], overwrite: bool = False) -> Path:
        """Write a run computed elsewhere (a cluster's worker): ``files`` maps each file's path in the
        run folder to its bytes. Claimed and staged like a run trained here, and as an overwrite here does, it
        discards a checkpoint a stopped training of the name kept (else every later training of it was told of an
        interrupted overwrite of the complete run); returns its folder."""
        with self.claim(name, overwrite=overwrite) as writer, \
                writer.staging(committed=functools.partial(discard_checkpoints, self.checkpoints(writer.path.name))
                               if holds_checkpoint(self.checkpoints(writer.path.name)) else None) as staging:
            for relative, data in files.items():
                path = staging / relative
                if Path(relative).is_absolute() or ".." in Path(relative).parts:
                    raise ValueError(f"a run's file must lie inside its folder, got {relative!r}")
                make_folder(path.parent)
                path.write_bytes(data)
        return writer.path


def sweep_leftovers(root: Path) -> None:
    """Remove what interrupted processes left in ``root``: staging folders and lock files whose process is gone."""
    sweep_staging(root)
    for lock in root.glob(LOCK_PREFIX + "*"):
        with contextlib.suppress(OSError):  # not a lock file (a folder of that name): not ours to remove
            if (held := _hold_lock(lock, attempts=1)) is not None:  # no one holds it: left by a process killed outright
                _let_go(lock, held)


@contextmanager
def claim_folder(root: Path, name: str, kind: str, overwrite: bool = False, numbered: bool = False,
                 activity: str = "written", wait: bool = False) -> Iterator[Path]:
    """Hold the folder ``root/name`` (a run's, a sweep's, a comparison's) for this process while it is made.

    Raises RunExistsError at once if it exists (unless ``overwrite``) or another live process (or thread)
    holds the name (a lock file beside it); the claim is released however the block ends. ``numbered``
    takes the first free one of ``name``, ``name-2``, ``name-3`` … instead (a default name, which work
    started in the same second shares); the folder yielded says which. ``wait``: a name held is waited
    for, up to 5 minutes, instead (work that brings the same folder up to date, which the holder is
    writing too; one held longer, by a process stopped with Ctrl-Z say, is then a RunExistsError).
    """
    validate_name(name, kind)
    try:  # before any work: a folder that cannot be written is said at once
        make_folder(root)
        sweep_leftovers(root)
        for number in itertools.count(1):
            candidate = name if number == 1 else f"{name}-{number}"
            lock = root / f"{LOCK_PREFIX}{candidate}"
            held = _hold_lock(lock, WAIT_ATTEMPTS if wait else LOCK_ATTEMPTS)
            if not numbered or (held is not None and not (root / candidate).exists()):
                break
            if held is not None:
                _let_go(lock, held)
    except OSError as exc:
        raise ParameterError("out", f"cannot write {kind}s in {root} ({exc.strerror or exc})") from None
    if held is None:
        owner = _lock_owner(lock)
        raise RunExistsError(f"{kind} {name!r} is being {activity} right now by process {owner}" if owner
                             else f"{kind} {name!r} is being claimed by another process")
    try:
        yield free_folder(root / candidate, kind, overwrite)
    finally:
        with contextlib.suppress(OSError):  # a folder gone read-only: the error that says so is on its way out
            _let_go(lock, held)  # (a lock file left behind is swept by the next claim)


class RunWriter:
    """A claimed run name: ``staging()`` is the folder to fill; it becomes the run on success."""

    def __init__(self, final: Path):
        self.path = final

    @contextmanager
    def staging(self, committed: Callable[[], None] | None = None) -> Iterator[Path]:
        """The run's staging folder, which becomes the run when the block ends without an error; then
        ``committed`` runs, which neither Ctrl-C nor SIGTERM cuts off (``atomic_directory``)."""
        with atomic_directory(self.path, committed) as folder:
            yield folder


def _hold_lock(lock: Path, attempts: int = LOCK_ATTEMPTS) -> int | None:
    """A descriptor by which this process holds ``lock`` (an exclusive ``flock`` on the file, with this
    process's id written in it), or None where another process holds it (``attempts`` times, 50 ms apart).

    The kernel lets go of a flock when its process ends, however it ends: a lock is never stale, and
    an id reused by another process does not keep it (a lock judged by the life of the process whose
    id it held was, and two processes removing a stale one at once could both take the name).
    """
    busy = 0
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                current = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                try:
                    os.ftruncate(fd, 0)
                    os.write(fd, str(os.getpid()).encode())
                except OSError:  # a full disk: the file held, made for this claim or swept by it, goes too
                    lock.unlink(missing_ok=True)
                    raise
                return fd
            os.close(fd)  # its holder removed the file as this process opened it: the lock is what is there now
        except BlockingIOError:
            os.close(fd)
            busy += 1
            if busy == attempts:
                return None
            time.sleep(0.05)  # another process's sweep may hold it for a moment
        except BaseException:
            os.close(fd)  # a full disk, a filesystem without flock: the error is said, and nothing stays held
            raise


def _let_go(lock: Path, fd: int) -> None:
    """Remove ``lock`` and let go of it; removed while still held, so that no one takes the file on its way out."""
    try:
        lock.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _lock_owner(lock: Path) -> int | None:
    """The id of the process holding ``lock`` (None before it has written it, or where it cannot be read)."""
    try:
        pid = int(lock.read_text() or "0")
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None
