"""The Python API: train, load, list, compare and sweep runs from a script or a notebook.

Everything here is what ``mnistlab`` on the command line does, through the
same pipeline and the same run folders; the objects it returns show
themselves in Jupyter (``_repr_html_``) and hand out their numbers, their
fitted model and matplotlib figures.

>>> import mnistlab as ml
>>> run = ml.train("logreg", train_size=2000, test_size=500, name="first", overwrite=True)
>>> round(run.metrics["accuracy"], 2) > 0.7
True
>>> run.predict(run.dataset.x_test[0]).class_name in run.classes
True
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import html
from .data import datasets
from .data.datasets import Dataset
from ._values import path_text, setting_text
from .callbacks import FitProgress
from .errors import MnistlabError, NotConvergedWarning, ParameterError, RunNotFoundError, SchedulerLostWarning
from .experiments.pipeline import DataChoice, evaluate_run, load_run_data, run_data
from .experiments.store import (
    COMPARE_HTML,
    REPORT,
    RunStore,
    RunSummary,
    default_out,
    folder_identity,
    is_run_folder,
    read_config_and_metrics,
    read_predictions,
    read_whole,
)
from .models import family_names, family_summary
from ._ipython import show_figures_in_ipython


show_figures_in_ipython()  # the figures this API returns, shown in a notebook as pictures


def load_dataset(name: str = datasets.DEFAULT_DATASET, data_dir: str | Path | None = None, download: bool = True,
                 progress: bool = True) -> Dataset:
    """A dataset, found or downloaded and verified: ``x_train`` (uint8 N×28×28), ``y_train``, ``x_test``, ``y_test``,
    ``classes``; ``progress`` shows a download's bar (a notebook bar in Jupyter). The arrays are writable, as
    keras.datasets' are, and each call's are its own (copy-on-write maps of the decoded cache's files, which an
    edit never reaches).

    >>> ds = ml.load_dataset("fashion-mnist")
    >>> ds.x_train.shape, ds.classes[0]
    ((60000, 28, 28), 'T-shirt/top')
    """
    from .models.params import check
    from .progress import fit_progress

    check("download", download, ["boolean"])  # "no" is truthy: it downloaded
    return datasets.load_dataset(name, data_dir, download, fit_progress(progress))


def _store(out) -> RunStore:
    return RunStore(default_out() if out is None else out)


def _call(function: str, *args, **kwargs) -> str:
    """How a run was made, as the Python call (recorded in config.json)."""
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"mnistlab.{function}({', '.join(shown)})"


def _path_or_none(name: str, value) -> str | None:
    """``value``, a path given as a keyword argument ``name``, as text; None where none was given."""
    return None if value is None else path_text(name, value)


class Predictions(NamedTuple):
    """A run's test-set predictions."""

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray


class Run:
    """A trained run: its configuration, metrics, fitted model, figures and predictions.

    >>> run = ml.load_run("first")
    >>> run.config["model"], run.model.coef_.shape
    ('logreg', (10, 784))
    >>> run.predictions.proba.shape
    (500, 10)
    """

    def __init__(self, path: str | Path):
        # absolute, as every object here keeps its folder: the default out is ./mnistlab-out,
        # and after os.chdir (a notebook's %cd) a relative path named another folder (every call said "replaced")
        self.path = Path(path_text("path", path)).absolute()
        # Both read now, so that a damaged run fails here, with the file and the reason (not when shown), and
        # from one folder; its identity is what a later read or write checks it still is (see _unchanged).
        # config.json: model, hyperparameters, data, seed, versions, how it was made; metrics.json: accuracy,
        # macro F1, log-loss, confusion matrix, per-class scores, history …
        (self.config, self.metrics), self._folder = read_whole(self.path, read_config_and_metrics)

    def __repr__(self) -> str:
        return f"Run({self.name!r}, model={self.config['model']!r}, accuracy={self.metrics['accuracy']:.4f})"

    @property
    def name(self) -> str:
        """The run's name (its folder's)."""
        return self.path.name

    def _unchanged(self) -> None:
        """Raise if the run's folder was replaced since this object read it (trained again with overwrite):
        its model file would no longer be the config's, and the model loaded here no longer the folder's."""
        self._read_from(folder_identity(self.path))

    def _read_from(self, identity: tuple[int, int] | None) -> None:
        """Raise unless ``identity`` (``folder_identity``), of a folder read as this run's, is the one this object
        read: a compare() reads the runs' folders itself."""
        if identity is None:  # no folder there now: said "replaced … load it again", which then said there is none
            raise RunNotFoundError(f"run {self.name!r} is gone (its folder {self.path} was deleted or moved)")
        if identity != self._folder:
            raise MnistlabError(f"run {self.name!r} was replaced after it was loaded (trained again with "
                                "overwrite?): load it again")

    @cached_property
    def model(self):
        """The fitted estimator (scikit-learn compatible), loaded from the run's model file.

        It takes what it was fitted on: N×784 floats in [0, 1], the images flattened and divided by 255
        (``mnistlab.data.preprocess.flatten_scale``); raw 0–255 pixels score lower (every family warns of them
        in runs trained since it was kept, sklearn:NAME's later than the others').
        ``predict`` takes the images as they are.

        >>> from mnistlab.data.preprocess import flatten_scale
        >>> run.model.score(flatten_scale(run.dataset.x_test), run.dataset.y_test) == run.metrics["accuracy"]
        True
        """
        from .models.serialization import load_model

        self._unchanged()
        return load_model(self.path, n_classes=len(self.classes))

    @property
    def classes(self) -> list[str]:
        """Class names, by label."""
        return list(self.config["dataset"]["classes"])

    @cached_property
    def dataset(self) -> Dataset:
        """The data the run was trained and tested on (the same subsets and classes; a calibrated run's training
        images include the share it held out for its temperature)."""
        from .progress import fit_progress

        return load_run_data(self.config, fit_progress())  # a bar where it must be downloaded

    @cached_property
    def predictions(self) -> Predictions:
        """The test set's true labels, predicted labels and probabilities, as saved by the run."""
        self._unchanged()
        return Predictions(**read_predictions(self.path, len(self.classes), self.config["dataset"]["n_test"]))

    @property
    def report_path(self) -> Path:
        """The run's self-contained HTML report."""
        return self.path / REPORT

    def figure_names(self) -> list[str]:
        """The figures this run's model can show (see ``figure``)."""
        from .experiments.figures import drawable

        self._unchanged()
        # those figure() draws (the map of a run trained with embedding=False too: it computes a t-SNE), not the
        # PNGs training wrote: with plots/ deleted, the list said ['embedding'] while figure() drew them all. Told
        # from what the figures need and the run's files, without loading the model where they say it
        return drawable(self.interpretation)

    @cached_property
    def interpretation(self):
        """Where the model is wrong: ``top_losses()``, ``most_confused()``, ``calibration()``, ``robustness()`` …

        >>> run.interpretation.top_losses(3).shape
        (3,)
        """
        from .experiments.interpret import Interpretation
        from .experiments.store import read_embedding

        def embedding() -> dict | None:  # read when first drawn: by then the folder may hold another run, whose
            # map had been drawn as this one's
            self._unchanged()
            return read_embedding(self.path, self.config["dataset"]["n_test"])

        p = self.predictions
        return Interpretation(lambda: self.model, self.classes, p.y_true, p.proba, self.metrics,
                              lambda: self.dataset.x_test, embedding)

    def figure(self, name: str):
        """One of the run's figures as a matplotlib Figure: "confusion_matrix", "top_losses", "reliability" …

        ``figure_names()`` lists those this run has.

        >>> run.figure("wrong")                            # doctest: +ELLIPSIS
        <Figure size ...>
        """
        from .experiments.figures import FIGURES, draw, missing

        if not isinstance(name, str) or name not in FIGURES:  # a list is unhashable: a TypeError
            raise ParameterError("name", f"no figure {name!r}; choose one of: {', '.join(FIGURES)}")
        figure = draw(name, self.interpretation)
        if figure is None:
            raise ParameterError("name", f"this run has no {name!r} figure: {missing(name, self.interpretation)}")
        return figure

    def evaluate(self, dataset: str | None = None, data_dir: str | Path | None = None) -> dict:
        """Reload the saved model and evaluate it on its test set (or on another dataset's).

        >>> run.evaluate()["accuracy"] == run.metrics["accuracy"]
        True
        """
        from .progress import fit_progress

        self._unchanged()  # the folder's model is evaluated: this run's, not one trained over it
        data = None  # its own: checked to be the images it was tested on
        if dataset is not None or data_dir is not None:  # "" or 0 is a mistake, not "its own"
            data = run_data(self.config)
            data = replace(data, dataset=data.dataset if dataset is None else dataset,
                           data_dir=_path_or_none("data_dir", data_dir))
        return evaluate_run(self.path, data, fit_progress())  # a bar where the data must be downloaded

    @cached_property
    def _predictor(self):
        from .inference.predictor import Predictor

        return Predictor(self.path, self.model)

    def predict(self, x):
        """Predict a photo (path or bytes), a PIL image, a 28×28 array, or a list / N×28×28 batch.

        Photos are converted like the training data. Returns a Prediction (a list for a batch),
        with ``class_name``, ``label``, ``probabilities``, ``pixels`` and ``explain()``.

        >>> [p.label for p in run.predict(run.dataset.x_test[:3])] == list(run.predictions.y_pred[:3])
        True
        """
        self._unchanged()  # the predictor reads the folder's classes: this run's, not one trained over it
        return self._predictor.predict(x)

    def export(self, path: str | Path | None = None, format: str = "onnx", check: bool = True) -> Path:
        """Write the model as a file other runtimes read; returns its path.

        ``format``: "onnx" (the only one). The graph takes uint8 N×1×28×28 pixels (0–255, object
        bright on dark, as ``prepare_photo`` gives a photo) and gives float32 probabilities of
        ``classes``, which, with the dataset and its photo convention, are in its metadata.
        ``path``: default ``model.onnx`` in the run's folder. ``check``: first run the export
        under onnxruntime on the run's test images; it is written only if it predicts the model's
        class for each and probabilities within 1e-4 of the model's, summing to 1 (so too for a few
        probe images: noise, sparse, inverted, grey), else ExportError.

        >>> path = run.export()                             # checked on the run's test images
        >>> import onnxruntime
        >>> session = onnxruntime.InferenceSession(str(path))
        >>> proba = session.run(None, {"pixels": run.dataset.x_test[:3, None]})[0]
        >>> list(proba.argmax(axis=1)) == list(run.predictions.y_pred[:3])
        True
        """
        from .inference.onnx_file import ONNX_FILE, export_onnx
        from .models.params import check as check_parameter  # ``check`` is this method's own argument

        if format != "onnx":
            raise ParameterError("format", f"cannot export as {format!r}; choose one of: onnx")
        check_parameter("check", check, ["boolean"])
        path = _path_or_none("path", path)
        target = Path(path).expanduser() if path is not None else self.path / ONNX_FILE
        written = target.resolve()  # through links, as the export writes
        if path is not None and (target.suffix, written.suffix) != (".onnx", ".onnx"):  # it would replace what is
            # there: a run's model.npz, through a link named .onnx too (only the name given was checked, and another
            # run lost its model)
            through = f" (a link to {written})" if target.suffix == ".onnx" else ""
            raise ParameterError(None, f"{path}: an export's file name ends in .onnx{through}")
        if written.name == ONNX_FILE and is_run_folder(written.parent) and written.parent != self.path.resolve():
            # another run's own export, which serve would refuse for this run's model
            raise ParameterError(None, f"{path}: that is run {written.parent.name!r}'s export, not {self.name!r}'s: "
                                       "write it elsewhere, or export that run")
        if (written.parent.parent == self.path.parent.resolve() and written.parent != self.path.resolve()
                and not is_run_folder(written.parent)):
            # every folder there is a run's: one made for the export was listed as a damaged run
            raise ParameterError(None, f"{path}: every folder in {self.path.parent} is a run's, and "
                                       f"{written.parent.name!r} is none; write it elsewhere")
        return export_onnx(self.model, self.classes, self.config["dataset"]["name"], self.name, target,
                           check_images=self.dataset.x_test if check else None,
                           before_write=self._unchanged if path is None else None,
                           follow_links=path is not None)  # a link planted in the run's folder is replaced

    def _repr_html_(self) -> str:
        m, d = self.metrics, self.config["dataset"]
        numbers = html.table(["accuracy", "macro F1", "log-loss", "ECE", "fit s", "train / test images"],
                             [[m["accuracy"], m["macro_f1"], m.get("log_loss"), m.get("calibration", {}).get("ece"),
                               m["fit_seconds"], f"{d.get('n_train', '?'):,} / {d.get('n_test', '?'):,}"]])
        message = html.escape(m.get("fit_message") or "")
        if message and m.get("converged") is False:  # the message says how it stopped
            message = f'<span style="color:#b45309">{message}</span>'
        return html.card(f"{self.name}: {self.config['model']} on {d['name']}", numbers,
                         *([message] if message else []),
                         html.confusion_table(m["confusion_matrix"], self.classes),
                         html.link(_href(self.report_path), "report.html"))


def _href(path: Path) -> str:
    """A link a notebook can follow: relative to the working folder when inside it."""
    path = Path(path).resolve()
    try:
        return os.path.relpath(path, Path.cwd()) if path.is_relative_to(Path.cwd()) else path.as_uri()
    except ValueError:
        return path.as_uri()


class RunList(list):
    """The runs of an output folder, newest first; damaged ones last, with the reason.

    ``runs[0]`` is a summary row; ``runs["name"]`` loads that run; ``"name" in runs`` and ``run in runs`` say
    whether it is listed (a damaged one too, which loading it says is damaged).
    """

    def __init__(self, rows: list[RunSummary], store: RunStore):
        super().__init__(rows)
        self.store = store

    def __getitem__(self, key):
        if isinstance(key, str):
            return Run(self.store.resolve(key))
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        # by name or path, as runs["name"] looks up, and a Run by its folder: list's own compared each row with the
        # key, and "name" in ml.runs() was False beside a run ml.runs()["name"] loaded
        if isinstance(key, str) and any(row.name == key for row in self):
            return True
        if isinstance(key, (str, os.PathLike, Run)):  # the same folder, however reached (a link, ".."), not
            # another out folder's run of the same name
            folder = Path(key.path if isinstance(key, Run) else key).resolve()
            return any(Path(row.path).resolve() == folder for row in self)
        return super().__contains__(key)

    def _repr_html_(self) -> str:
        rows = [[r.name, "damaged: " + r.damaged, "", None, None, ""] if r.damaged else
                [r.name, r.model, r.dataset, r.accuracy, r.fit_seconds, (r.created or "")[:16].replace("T", " ")]
                for r in self]
        return html.card(f"{len(self)} runs in {self.store.root}",
                         html.table(["run", "model", "dataset", "accuracy", "fit s", "created"], rows))


class Comparison:
    """Runs compared on the same test set: accuracies, McNemar's exact test for each pair, figures."""

    def __init__(self, path: Path, result: dict, runs: list[Run]):
        self.path, self.result, self.runs = Path(path).absolute(), result, runs  # absolute: as Run's

    @property
    def pairs(self) -> list[dict]:
        """Per pair (baseline A, other run B): accuracy_delta, a_only, b_only, p_value, p_holm (adjusted for
        testing every pair at once) and significant (by p_holm)."""
        return self.result["pairs"]

    @property
    def report_path(self) -> Path:
        return self.path / COMPARE_HTML

    def figure(self, name: str):
        """One of the comparison's figures, as a Figure: "accuracy"; per pair N, "confusion_delta_N", "f1_delta_N"
        and "class_accuracy_delta_N"; "learning_curves" where the runs kept a history, "robustness" where two
        or more measured it (an error lists the names there are)."""
        from .experiments.compare import comparison_figures, load_for_comparison

        for run in self.runs:  # drawn from the runs' folders: still the runs compared, not others trained over them
            run._unchanged()
        figures = comparison_figures([load_for_comparison(r.path) for r in self.runs], self.pairs,
                                     self.result["classes"])
        if not isinstance(name, str) or name not in figures:
            raise ParameterError("name", f"no figure {name!r}; choose one of: {', '.join(figures)}")
        return figures[name][0]

    def __repr__(self) -> str:
        return (f"Comparison({[r['run'] for r in self.result['runs']]}, p={[p['p_value'] for p in self.pairs]}, "
                f"p_holm={[p['p_holm'] for p in self.pairs]})")

    def _repr_html_(self) -> str:
        from .experiments.compare import verdict

        runs = html.table(["run", "model", "accuracy", "macro F1", "fit s"],
                          [[r["run"], r["model"], r["accuracy"], r["macro_f1"], r["fit_seconds"]]
                           for r in self.result["runs"]])
        tests = html.table(["B vs A", "accuracy B − A", "only A right", "only B right", "McNemar p", "p (Holm)",
                            "verdict"],
                           [[f"{p['b']} vs {p['a']}", p["accuracy_delta"], p["a_only"], p["b_only"],
                             p["p_value"], p["p_holm"], verdict(p, self.result["alpha"])] for p in self.pairs])
        return html.card(f"Comparison of {len(self.runs)} runs", runs, tests,
                         html.link(_href(self.report_path), COMPARE_HTML))


class Sweep:
    """A hyperparameter grid, each combination scored on a validation split (or by cross-validation)."""

    def __init__(self, path: Path, results: list[dict], grid: dict[str, list]):
        self.path, self.results, self.grid = Path(path).absolute(), results, grid  # absolute: as Run's
        self._in_grid_order = list(results)  # the figure places rows by their order: results sorted in a notebook
        # had drawn each score at another point's value

    @property
    def best(self) -> dict:
        """The row with the highest validation accuracy (of the points that did not fail)."""
        return max((r for r in self.results if r["val_accuracy"] is not None), key=lambda r: r["val_accuracy"])

    @property
    def failed(self) -> list[dict]:
        """The rows of the points that failed, each with its ``error`` (their settings, for their data)."""
        return [r for r in self.results if r.get("error")]

    def figure(self):
        """Validation accuracy (and sparsity, for per-pixel weights) against the first parameter swept over two
        or more values, a line per combination of the other such."""
        from .experiments.sweep import sweep_figure

        return sweep_figure(self._in_grid_order, self.grid)

    def __repr__(self) -> str:
        return f"Sweep({self.grid}, best={self.best})"

    def _repr_html_(self) -> str:
        columns = list(self.results[0])
        best = self.best

        def cells(row: dict) -> list:
            """The swept values as the command line takes them (C=1000, not "1000."; 64, not (64,)), the best
            row's starred; the scores as numbers."""
            values = [setting_text(row[c]) if c in self.grid else row[c] for c in columns]
            values[0] = ("★ " if row is best else "") + values[0]
            return values

        rows = [cells(r) for r in self.results]
        return html.card(f"Sweep of {', '.join(self.grid)}: best validation accuracy {best['val_accuracy']:.4f}",
                         html.table(columns, rows))


def train(model: str, *, dataset: str = datasets.DEFAULT_DATASET, data_dir: str | Path | None = None,
          classes: list[int] | tuple[int, ...] | None = None, train_size: int | None = None,
          test_size: int | None = None, test_fraction: float | None = None, seed: int = 0, name: str | None = None,
          out: str | Path | None = None, overwrite: bool = False, resume: bool = False,
          progress: bool | FitProgress = True,
          command: str | None = None, embedding: bool = True, calibrate: bool = False,
          **hyperparameters: Any) -> Run:
    """Train a model family on a dataset and write a run folder (model, metrics, figures, report.html).

    The same pipeline as ``mnistlab train``. Checks the hyperparameters, the run name and that the
    name is free before any data is loaded. ``classes`` keeps only those labels (relabelled in
    order); ``test_fraction`` pools the training and test images and splits them again with
    this test share (stratified, seeded), as tutorials with one pool of images do;
    ``train_size`` / ``test_size`` take stratified subsets; ``out`` defaults to
    ``$MNISTLAB_OUT`` or ./mnistlab-out; ``progress`` shows a bar (a notebook bar in Jupyter), or
    reports to a ``mnistlab.callbacks.FitProgress`` given;
    ``resume`` continues an interrupted run of the same name from its last checkpoint; ``command``
    is what config.json records as how the run was made (default: this call); ``embedding`` False
    skips the 2-D map of the test set (a t-SNE, the slowest part of a fast model's report); ``calibrate``
    holds out a tenth of the training images and fits a temperature on them that makes the
    probabilities calibrated (the model file records it, predictions use it; metrics.json has
    ``temperature`` with the ECE before and after).

    Model families (``model``) and where their hyperparameters are described:

    {families}

    >>> run = ml.train("logreg", C=0.1, train_size=2000, test_size=500, name="doc", overwrite=True)
    >>> run.metrics["accuracy"] > 0.7
    True
    """
    from .experiments.pipeline import train as train_pipeline
    from .progress import fit_progress

    data = DataChoice(dataset=dataset, data_dir=_path_or_none("data_dir", data_dir),
                      classes=classes, train_size=train_size, test_size=test_size,
                      seed=seed, resplit_test_fraction=test_fraction)
    command = command or _call("train", model, **{k: v for k, v in dict(
        dataset=dataset, classes=classes, train_size=train_size, test_size=test_size, test_fraction=test_fraction,
        seed=seed, name=name, calibrate=calibrate or None, **hyperparameters).items() if v is not None})
    path = train_pipeline(model, hyperparameters, data, _store(out).out, name=name, overwrite=overwrite,
                          command=command, resume=resume, progress=fit_progress(progress), embedding=embedding,
                          calibrate=calibrate)
    run = Run(path)
    if run.metrics.get("converged") is False:  # a notebook shows it: the run's card and bar would not
        warnings.warn(f"{run.name}: {run.metrics.get('fit_message') or 'the fit did not converge'}",
                      NotConvergedWarning, stacklevel=2)
    return run


# sklearn:NAME last, as `mnistlab models` says it below the families: a pattern, not one family of the list
train.__doc__ = train.__doc__.format(families="\n    ".join([
    *(f"- ``{f}``: ``help(mnistlab.models.get_family({f!r}))`` or ``mnistlab models {f}``" for f in family_names()),
    "- ``sklearn:NAME``: any scikit-learn classifier, such as ``sklearn:SVC``: "
    "``help(mnistlab.models.get_family('sklearn:SVC'))`` or ``mnistlab models sklearn:SVC``"]))


def load_run(name_or_path: str | Path, out: str | Path | None = None) -> Run:
    """A run by name (under ``out``/runs) or by the path of its folder.

    >>> ml.load_run("doc").metrics["accuracy"] > 0.7
    True
    """
    return Run(_store(out).resolve(name_or_path))


def runs(out: str | Path | None = None) -> RunList:
    """Every run under ``out`` (default ``$MNISTLAB_OUT`` or ./mnistlab-out), newest first.

    >>> "doc" in [r.name for r in ml.runs()]
    True
    """
    store = RunStore(_store(out).out.absolute())  # absolute: as Run's, its rows and runs["name"] work after a %cd
    return RunList(store.list(), store)


def compare(*runs: Run | str | Path, out: str | Path | None = None, alpha: float = 0.05,
            name: str | None = None, overwrite: bool = False) -> Comparison:
    """Compare runs tested on the same images; the first is the baseline. Writes compare.html.

    Each other run is tested against the baseline with McNemar's exact test. A ``name`` given that
    exists is refused unless ``overwrite``; the default name (the runs') is the same runs' comparison
    brought up to date.

    >>> a = ml.train("logreg", C=0.1, train_size=2000, test_size=500, name="doc-a", overwrite=True)
    >>> b = ml.train("logreg", C=0.01, train_size=2000, test_size=500, name="doc-b", overwrite=True)
    >>> 0 <= ml.compare(a, b).pairs[0]["p_value"] <= 1
    True
    """
    from .experiments.compare import compare_runs

    store = _store(out)
    loaded = [r if isinstance(r, Run) else Run(store.resolve(r)) for r in runs]
    for run in runs:
        if isinstance(run, Run):  # one deleted since it was loaded: said so, not as a run whose config.json is missing
            run._unchanged()

    def read_from(identities: list) -> None:
        # the folders compared are the Runs' own: a Run loaded before its folder was trained again compared the
        # new model silently, and the Comparison's runs were not the ones compared
        for run, identity in zip(loaded, identities):
            run._read_from(identity)
    folder, result = compare_runs([r.path for r in loaded], store.out, name=name, alpha=alpha, overwrite=overwrite,
                                  read_from=read_from)
    return Comparison(folder, result, loaded)


def sweep(model: str, grid: dict[str, list], *, dataset: str = datasets.DEFAULT_DATASET,
          data_dir: str | Path | None = None, classes: list[int] | None = None, train_size: int | None = None,
          seed: int = 0, cv: int | None = None,
          val_fraction: float | None = None, name: str | None = None, out: str | Path | None = None,
          progress: bool = True, cluster: str | None = None, overwrite: bool = False) -> Sweep:
    """Fit every combination of ``grid`` (hyperparameter → values: a list, tuple, range or 1-D array, as
    scikit-learn's ParameterGrid takes them); score each on validation data.

    The test set is not touched. ``cv`` uses k-fold cross-validation instead of one split, which holds out
    ``val_fraction`` of the training images (default 0.2). A ``name``
    given that exists is refused before any fit unless ``overwrite``.
    ``cluster`` (a Dask scheduler's address such as ``"tcp://10.0.0.5:8786"``, or ``"local"``;
    default: ``MNISTLAB_CLUSTER``, else none) runs each combination as a task there; from a script,
    ``"local"`` must be asked for under ``if __name__ == "__main__":``, as with multiprocessing (its worker
    processes import the script again).

    >>> s = ml.sweep("logreg", {"C": [0.01, 0.1]}, train_size=1000, name="doc-sweep", overwrite=True)
    >>> sorted(r["C"] for r in s.results)
    [0.01, 0.1]
    """
    from .experiments.cluster import cluster_address
    from .experiments.sweep import MAX_POINTS, run_sweep, scheduler_lost, used_settings
    from .progress import fit_progress

    if not isinstance(grid, dict):
        raise ParameterError("grid", "give a dict of hyperparameter → non-empty list of values")
    grid = {parameter: _swept_values(parameter, values, MAX_POINTS) for parameter, values in grid.items()}
    data = DataChoice(dataset=dataset, data_dir=_path_or_none("data_dir", data_dir),
                      classes=classes, train_size=train_size, seed=seed)
    folder, rows = run_sweep(model, grid, data, _store(out).out, name=name,
                             cv=cv, val_fraction=val_fraction, progress=fit_progress(progress),
                             cluster=cluster_address(cluster), overwrite=overwrite)
    if lost := scheduler_lost(rows):  # a lost scheduler's failed points, as the command line says them
        warnings.warn(lost, SchedulerLostWarning, stacklevel=2)
    # as train warns of its run; of the fits made, not of the rows: a row with same_fit_as has another's scores,
    # a failed point's (a lost scheduler's too) none
    fitted = [row for row in rows if not row.get("same_fit_as") and row.get("error") is None]
    if unfinished := [row for row in fitted if row.get("converged") is False]:
        warnings.warn(f"{len(unfinished)} of {len(fitted)} fits stopped before they converged (the first, "
                      f"{used_settings(unfinished[0], grid)}): their scores are of unfinished fits; raise max_iter "
                      "(or tol)", NotConvergedWarning, stacklevel=2)
    return Sweep(folder, rows, grid)


def _swept_values(name, values, most: int) -> list:
    """The values of ``grid[name]`` as a list: any sequence but text, or a 1-D array, as scikit-learn's
    ParameterGrid takes them (np.logspace(-2, 0, 3), range(10, 31, 10)); NumPy's scalars as Python's, which
    sweep.json, the table and an error show as 0.1, not np.float64(0.1). A set has no order to plot. More
    than ``most`` are refused before a list is made of them (range(10**9) filled the memory)."""
    if (one := isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray))
            or getattr(values, "ndim", 1) != 1) or not len(values):
        got = ("empty" if not one else f"a {values.ndim}-D array" if isinstance(values, np.ndarray)
               else f"a {type(values).__name__}")
        raise ParameterError("grid", f"give a dict of hyperparameter → non-empty list of values; {name}'s is {got}")
    if len(values) > most:  # named as the hyperparameter, as a value given twice is: the command line's is its flag
        raise ParameterError(name, f"{len(values):,} values are given: at most {most:,} combinations are swept at once")
    values = values.tolist() if isinstance(values, np.ndarray) else values
    return [value.item() if isinstance(value, np.generic) else value for value in values]


def families() -> dict[str, str]:
    """The model families (what ``train`` takes as ``model``), each with its one-line summary.

    And any scikit-learn classifier as ``"sklearn:NAME"`` (``mnistlab models sklearn:SVC``: its options),
    which ``train`` takes too; not an entry here, as it names no one family.

    >>> "logreg" in ml.families()
    True
    """
    return {f: family_summary(f) for f in family_names()}


class RecipeResult:
    """A recipe's two runs: ``reproduced`` (what the tutorial ran) and ``ours``, beside the published number."""

    def __init__(self, name: str, folders: dict[str, Path]):
        from .experiments.recipes import get_recipe

        self.name, self.recipe = name, get_recipe(name)
        self.reproduced, self.ours = Run(folders["reproduction"]), Run(folders["ours"])

    @property
    def published(self) -> float:
        return self.recipe.published

    def rows(self) -> list[dict[str, Any]]:
        """One row per result: the published one, the reproduction and ours (accuracy, fit seconds, run)."""
        rows = [{"result": "published", "model": "", "accuracy": self.published, "zero_weights": None,
                 "fit_seconds": None, "run": None, "images": ""}]
        for label, run in (("reproduced", self.reproduced), ("ours", self.ours)):
            rows.append({"result": label, "model": run.config["model"], "accuracy": run.metrics["accuracy"],
                         "zero_weights": run.metrics.get("zero_weight_fraction"),
                         "fit_seconds": run.metrics["fit_seconds"], "run": run.name,
                         "images": f"{run.config['dataset']['n_train']}/{run.config['dataset']['n_test']}"})
        return rows

    def __repr__(self) -> str:
        return (f"RecipeResult({self.name!r}: published {self.published:.4g}, reproduced "
                f"{self.reproduced.metrics['accuracy']:.4f}, ours {self.ours.metrics['accuracy']:.4f})")

    def _repr_html_(self) -> str:
        rows = [[r["result"], r["model"], f"{r['accuracy']:.4f}",
                 "" if r["fit_seconds"] is None else f"{r['fit_seconds']:.1f}", r["images"]] for r in self.rows()]
        return html.card(f"Recipe {self.name}: {self.recipe.title}",
                         html.table(["result", "model", "test accuracy", "fit s", "train / test images"], rows),
                         html.escape(self.recipe.published_note),
                         html.link(_href(self.reproduced.report_path), f"{self.reproduced.name}: report.html"),
                         html.link(_href(self.ours.report_path), f"{self.ours.name}: report.html"))


class Recipes:
    """The classic tutorial experiments: ``ml.recipes.list()`` and ``ml.recipes.run(name)``.

    >>> "fashion-logreg-saga" in ml.recipes.list()
    True
    """

    def list(self) -> dict[str, str]:
        """Recipe name → what it reproduces (and the published result)."""
        from .experiments.recipes import RECIPES

        return {name: f"{r.title} — {r.published_note}" for name, r in RECIPES.items()}

    def run(self, name: str, data_dir: str | Path | None = None, out: str | Path | None = None,
            progress: bool = True, cluster: str | None = None, command: str | None = None) -> RecipeResult:
        """Run the tutorial's configuration and ours, as the runs ``recipe-<name>-reproduction`` and
        ``recipe-<name>-ours`` (each replaced if it exists). ``data_dir``: a folder of the recipe's
        dataset's four IDX files (in ``run_all``, of the recipes on the dataset it holds; the others find
        their data as usual). ``cluster``: the two runs as tasks
        on a Dask cluster (as in ``sweep``). ``command``: what the runs' config.json records as how they
        were made (default: this call)."""
        from .experiments.cluster import cluster_address
        from .experiments.recipes import run_recipe
        from .progress import fit_progress

        command = command or _call("recipes.run", name)
        if cluster_address(cluster):
            result = self.run_all([name], data_dir=data_dir, out=out, cluster=cluster, progress=progress,
                                  command=command)[name]
            if isinstance(result, Exception):
                raise result
            return result
        folders = run_recipe(name, _store(out).out, data_dir=_path_or_none("data_dir", data_dir),
                             progress=fit_progress(progress), command=command)
        return RecipeResult(name, folders)

    def run_all(self, names: list[str] | None = None, data_dir: str | Path | None = None,
                out: str | Path | None = None, cluster: str | None = None,
                progress: bool = True, command: str | None = None) -> dict[str, RecipeResult | Exception]:
        """Run several recipes (default: all), here or as tasks on a Dask ``cluster`` (as in ``sweep``):
        name → its RecipeResult, or the exception that stopped one of its runs. ``command`` as in ``run``."""
        from .experiments.cluster import cluster_address
        from .experiments.recipes import RECIPES, run_recipes
        from .progress import fit_progress

        command = command or _call("recipes.run_all", *([] if names is None else [names]))
        names = list(RECIPES) if names is None else names  # an empty list is no list of all: hours of training
        results = run_recipes(names, _store(out).out, data_dir=_path_or_none("data_dir", data_dir),
                              cluster=cluster_address(cluster), progress=fit_progress(progress), command=command)
        return {name: next((r for r in folders.values() if isinstance(r, Exception)), None)
                or RecipeResult(name, folders) for name, folders in results.items()}

    def __repr__(self) -> str:
        return "mnistlab.recipes: " + ", ".join(self.list())


recipes = Recipes()


class Benchmark:
    """Zalando's benchmark, reproduced: ``rows`` (one per configuration), ``path`` (its folder)."""

    def __init__(self, path: Path, rows: list[dict]):
        self.path, self.rows = Path(path).absolute(), rows  # absolute: as Run's

    @property
    def table(self) -> str:
        """The rows as Markdown (also ``results.md`` in ``path``)."""
        from .experiments.zalando import results_table

        return results_table(self.rows)

    def __repr__(self) -> str:
        done = sum(r["status"].startswith("done") for r in self.rows)
        return f"Benchmark({self.path.name!r}: {done} of {len(self.rows)} configurations done)"

    def _repr_html_(self) -> str:
        from .experiments.zalando import number_text, params_text, sizes_text, status_text

        rows = [[r["classifier"], params_text(r["params"]), number_text(r["accuracy"]), number_text(r["paper"]),
                 status_text(r)] for r in self.rows]
        return html.card(f"Zalando's benchmark: {self.path.name} ({sizes_text(self.rows)})",
                         html.table(["classifier", "parameters", "ours", "paper", "status"], rows))


def zalando_benchmark(*, dataset: str = "fashion-mnist", classifiers: list[str] | None = None,
                      train_size: int | None = None, test_size: int | None = None, quick: bool = False,
                      data_dir: str | Path | None = None, cluster: str | None = None, out: str | Path | None = None,
                      progress: bool = True, command: str | None = None) -> Benchmark:
    """Zalando's grid of scikit-learn classifiers, each configuration an ordinary run, beside the paper's accuracies.

    Resumable (finished configurations are not run again); ``quick`` runs one configuration per
    classifier (the paper's best on Fashion-MNIST) on 2,000 / 1,000 images; ``cluster`` as in ``sweep``;
    ``command``: what the runs' config.json records as how they were made (default: this call).

    >>> b = ml.zalando_benchmark(quick=True, classifiers=["GaussianNB"], train_size=500, test_size=200,
    ...                          progress=False)
    >>> [(r["classifier"], r["status"], r["paper"]) for r in b.rows]
    [('GaussianNB', 'done', 0.511)]
    """
    from .experiments.cluster import cluster_address
    from .experiments.zalando import run_benchmark
    from .progress import fit_progress

    command = command or _call("zalando_benchmark", **{k: v for k, v in dict(
        dataset=dataset, classifiers=classifiers, train_size=train_size, test_size=test_size,
        quick=quick or None).items() if v is not None})
    folder, rows = run_benchmark(dataset, _store(out).out, classifiers=classifiers, train_size=train_size,
                                 test_size=test_size, quick=quick, data_dir=_path_or_none("data_dir", data_dir),
                                 cluster=cluster_address(cluster), progress=fit_progress(progress), command=command)
    return Benchmark(folder, rows)

__all__ = ["Benchmark", "Comparison", "Predictions", "RecipeResult", "Recipes", "Run", "RunList", "Sweep", "compare",
           "families", "load_dataset", "load_run", "recipes", "runs", "sweep", "train", "zalando_benchmark"]
