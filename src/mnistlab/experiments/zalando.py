"""Zalando's benchmark of scikit-learn classifiers on Fashion-MNIST (and MNIST), reproduced.

``zalando.json`` holds, as data, the grid of Zalando's runner
(benchmark/baselines.json: every combination of the values listed for a
classifier is one configuration) and the test accuracies the Fashion-MNIST
paper publishes for them (Xiao, Rasul and Vollgraf, 2017, Table 3). Each
configuration is an ordinary run of the family ``sklearn:NAME``, on pixels
standardised as the runner did (StandardScaler fitted on the training set).

The grid is from 2017; scikit-learn has since renamed or removed some
settings, and ``translate`` maps each to today's spelling of the same
computation, saying so in the results:

- the ``deviance`` loss of GradientBoostingClassifier and the ``log`` loss of
  SGDClassifier are called ``log_loss``;
- LogisticRegression's ``penalty`` is now ``l1_ratio`` (1 for l1, 0 for l2), and
  ``multi_class`` is gone: it is always multinomial, so the "ovr" and
  "multinomial" configurations are one run (the paper lists only "ovr", which
  2017's default liblinear solver computed one class against the rest); the
  saga solver is used because it handles both penalties;
- MLPClassifier's ``hidden_layer_sizes`` are given as lists in the grid ("(10,)");
- settings the grid leaves to defaults that have changed since are given 2017's
  values (``DEFAULTS_2017``): SGDClassifier, Perceptron and
  PassiveAggressiveClassifier make 5 passes with no tolerance (Perceptron's
  elasticnet penalty all l2), SVC's gamma is "auto" (1/n_features),
  MLPClassifier stops after 3 epochs without improvement, LinearSVC solves
  the dual problem.

GaussianProcessClassifier is in the grid but not run: its kernel matrix on
60,000 images takes 29 GB (and the paper has no result for it either).

``run_benchmark`` is resumable: a configuration whose run exists is not fitted
again, and one that fails is recorded with its error while the rest go on.
With ``cluster`` each configuration is one task on a Dask cluster, whose run
folder comes back to this machine (``pipeline.train_all``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path

from .._io import atomic_write_text, make_folder, write_json
from .._values import is_number
from ..callbacks import SILENT, FitProgress, started
from ..data.datasets import locate
from ..errors import DatasetError, ParameterError, RunDamagedError, one_line
from ..models import SKLEARN_PREFIX
from .pipeline import DataChoice, TrainingJob, test_images_digest, train_all
from .store import RunStore, read_config_and_metrics

DATASETS = ("fashion-mnist", "mnist")
NOT_RUN = {"GaussianProcessClassifier": "its kernel matrix on 60,000 images takes 29 GB"}
BENCHMARKS = "benchmarks"
RESULTS_JSON, RESULTS_MD = "results.json", "results.md"  # a benchmark's folder: its rows, and their table
QUICK_SIZES = (2000, 1000)  # training and test images of --quick
PAPER_SIZES = (60000, 10000)  # the paper's: every training and test image (of either dataset)
# Defaults of the grid's scikit-learn (0.19) that have changed since, for the settings the grid leaves to
# them: its runs used these.
DEFAULTS_2017 = {
    "SGDClassifier": {"max_iter": 5, "tol": None},
    "Perceptron": {"max_iter": 5, "tol": None, "l1_ratio": 0.0},  # its elasticnet was l2 then
    "PassiveAggressiveClassifier": {"max_iter": 5, "tol": None},
    "SVC": {"gamma": "auto"},
    "MLPClassifier": {"n_iter_no_change": 2},  # it stopped after 3 epochs without improvement
    "LinearSVC": {"dual": True},
}


@cache
def _data() -> dict:
    return json.loads(Path(__file__).with_name("zalando.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Configuration:
    """One configuration of the grid: as the grid names it, and as today's scikit-learn runs it."""

    classifier: str
    original: dict  # the grid's parameters, as the paper names them
    params: dict  # what is run: today's names, plus standardize
    mapping: str  # how the original was translated ("" when it runs as it is)


def translate(classifier: str, original: dict) -> tuple[dict, str]:
    """The grid's ``original`` parameters in today's scikit-learn, and a note of what changed."""
    params, notes = dict(original), []
    if params.get("loss") in ("deviance", "log"):
        notes.append(f"loss={params['loss']!r} is 'log_loss'")
        params["loss"] = "log_loss"
    if classifier == "LogisticRegression":
        penalty = params.pop("penalty")
        params["l1_ratio"] = 1.0 if penalty == "l1" else 0.0
        params["solver"] = "saga"
        notes.append(f"penalty={penalty!r} is l1_ratio={params['l1_ratio']:g} (saga solver)")
        if "multi_class" in params:
            notes.append(f"multi_class={params.pop('multi_class')!r} is gone: multinomial")
    if "hidden_layer_sizes" in params:
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    for name, value in DEFAULTS_2017.get(classifier, {}).items():
        if name not in params:
            params[name] = value
            notes.append(f"{name}={value!r}, 2017's default")
    params["standardize"] = True
    return params, "; ".join(notes)


def configurations(classifiers: list[str] | None = None) -> list[Configuration]:
    """The grid's configurations (of ``classifiers``; default all), in its order; configurations that
    translate to the same run are one, the first kept."""
    grid = _data()["grid"]
    if classifiers is not None and (isinstance(classifiers, str) or not classifiers):  # "" and [] are not "all"
        raise ParameterError("classifiers", f"give a non-empty list of the grid's classifiers (or none for all), "
                                            f"got {classifiers!r}")
    # an empty name and one given twice are mistakes, refused as a sweep refuses its values': the command line
    # had dropped an empty name without a word (SVC,,LinearSVC), and a name given twice was run once
    named = list(classifiers or [])
    if not all(isinstance(c, str) for c in named):  # a number or a list among them was a bare TypeError
        raise ParameterError("classifiers", f"give the classifiers' names as strings, got {classifiers!r}")
    if "" in named:
        raise ParameterError("classifiers", f"an empty name among them; the grid's classifiers: {', '.join(grid)}")
    if (repeated := next((c for i, c in enumerate(named) if c in named[:i]), None)) is not None:
        raise ParameterError("classifiers", f"{repeated!r} is given twice")
    unknown = sorted(set(named) - set(grid))
    if unknown:
        raise ParameterError("classifiers", f"{', '.join(unknown)} not in the benchmark's grid; "
                                            f"its classifiers: {', '.join(grid)}")
    chosen, seen = [], set()
    for classifier, values in grid.items():
        if classifiers and classifier not in classifiers:
            continue
        for combination in itertools.product(*values.values()):
            original = dict(zip(values, combination))
            params, mapping = translate(classifier, original)
            key = (classifier, json.dumps(params, sort_keys=True, default=list))
            if key not in seen:
                seen.add(key)
                chosen.append(Configuration(classifier, original, params, mapping))
    return chosen


def quick_configurations(classifiers: list[str] | None = None) -> list[Configuration]:
    """One configuration per classifier: the paper's best on Fashion-MNIST."""
    best = []
    for classifier in dict.fromkeys(c.classifier for c in configurations(classifiers)):
        if classifier in NOT_RUN:
            continue
        _, original = paper_best(classifier, "fashion-mnist")
        best.append(next(c for c in configurations([classifier]) if _same(c.original, original)))
    return best


def _same(a: dict, b: dict) -> bool:
    """Parameters equal as the paper prints them (1 for 1.0, lists for tuples; keys ``b`` lacks ignored)."""
    return all(k in a and _plain(a[k]) == _plain(v) for k, v in b.items())


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if is_number(value):
        return float(value)
    return value


def paper_accuracy(configuration: Configuration, dataset: str) -> float | None:
    """The paper's test accuracy for this configuration on ``dataset``, None where it has none."""
    for row in _data()["paper"]:
        if row["classifier"] == configuration.classifier and _same(configuration.original, row["params"]):
            return row[dataset]
    return None


def paper_best(classifier: str, dataset: str) -> tuple[float | None, dict]:
    """The paper's best accuracy for ``classifier`` on ``dataset``, and that configuration's parameters."""
    rows = [r for r in _data()["paper"] if r["classifier"] == classifier]
    if not rows:
        return None, {}
    top = max(rows, key=lambda r: r[dataset])
    return top[dataset], top["params"]


def run_name(dataset: str, configuration: Configuration, data: DataChoice) -> str:
    """A run name that changes whenever what is run does (parameters or data, a folder of it too); an earlier
    run of the name is reused only where it was tested on the images the data holds now (``_earlier``)."""
    # (the folder only where one is given: names of runs on the data found by the search order stay as they were)
    identity = json.dumps([configuration.params, data.train_size, data.test_size, data.seed]
                          + ([data.data_dir] if data.data_dir else []), sort_keys=True, default=list)
    return f"zalando-{dataset}-{configuration.classifier}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"


def run_benchmark(dataset: str, out: Path, classifiers: list[str] | None = None, train_size: int | None = None,
                  test_size: int | None = None, quick: bool = False, data_dir: str | None = None,
                  cluster: str | None = None, progress: FitProgress = SILENT,
                  command: str | None = None) -> tuple[Path, list[dict]]:
    """Run the grid (or, ``quick``, one configuration per classifier on a few thousand images);
    write ``<out>/benchmarks/zalando-<dataset>/results.json`` and ``results.md`` after each
    configuration. Returns that folder and the rows. ``command``: how it was asked for (each run's
    config.json)."""
    if dataset not in DATASETS:
        raise ParameterError("dataset", f"must be one of {', '.join(DATASETS)}; got {dataset!r}")
    if quick:
        train_size = QUICK_SIZES[0] if train_size is None else train_size  # 0 is refused, not "not given"
        test_size = QUICK_SIZES[1] if test_size is None else test_size
    data = DataChoice(dataset=dataset, data_dir=data_dir, train_size=train_size, test_size=test_size)
    chosen = quick_configurations(classifiers) if quick else configurations(classifiers)
    store = RunStore(out)
    folder = Path(out) / BENCHMARKS / f"zalando-{dataset}"
    rows = [_row(c, dataset, run_name(dataset, c, data)) for c in chosen]
    tested_on = cache(lambda: _test_images_here(data))  # loaded only where an earlier run asks for it
    pending = []
    for row, configuration in zip(rows, chosen):
        if configuration.classifier in NOT_RUN:
            row.update(status="not run", error=NOT_RUN[configuration.classifier])
        elif (earlier := _earlier(store, row["run"], tested_on)) is not None:
            row.update(earlier)
        else:
            pending.append((row, configuration))

    if pending and cluster is None:  # (a cluster's workers find the data on their own machines)
        data.load()  # checked once, before any fit: a wrong folder or size failed each configuration, one by one
    # no t-SNE map in the runs: the slowest part of a report, and the table does not need it
    jobs = [TrainingJob(SKLEARN_PREFIX + c.classifier, c.params, data, row["run"], command, embedding=False)
            for row, c in pending]
    with started(progress, len(pending), "configuration"):
        for done, (i, result) in enumerate(train_all(jobs, store.out, cluster, progress), start=1):
            row, configuration = pending[i]
            if isinstance(result, Exception):  # one configuration's failure is recorded; the rest go on
                row.update(status="failed", error=f"{type(result).__name__}: {one_line(result)}")
            else:
                row.update(_results(*read_config_and_metrics(result), "done"))
            progress.advance(done, f"{configuration.classifier} {configuration.original}: "
                                   + (f"{row['accuracy']:.4f}" if row["accuracy"] is not None else row["status"]))
            _write_results(folder, dataset, data, rows)
    _write_results(folder, dataset, data, rows)
    return folder, rows


def _row(configuration: Configuration, dataset: str, name: str) -> dict:
    best, best_params = paper_best(configuration.classifier, dataset)
    return {"classifier": configuration.classifier, "params": configuration.original,
            "run_params": {k: v for k, v in configuration.params.items() if k != "standardize"},
            "mapping": configuration.mapping, "paper": paper_accuracy(configuration, dataset),
            "paper_best": best, "paper_best_params": best_params, "run": name, "status": "pending",
            "accuracy": None, "fit_seconds": None, "n_train": None, "n_test": None, "error": None}


def _test_images_here(data: DataChoice) -> str | None:
    """The digest a run on ``data`` records of its test images (``test_images_sha256``), or None where the
    data is not found here without a download: a cluster's client need not have it (its workers do)."""
    try:
        locate(data.dataset, data.data_dir, download=False)
    except DatasetError:
        return None
    return test_images_digest(data.load())


def _earlier(store: RunStore, name: str, tested_on: Callable[[], str | None]) -> dict | None:
    """The row of the run ``name`` finished by an earlier benchmark, or None to run it: missing, damaged, or
    tested on other images than the data's now (``tested_on()``, None where it cannot be told; the files
    changed since: its accuracy would be of the old ones)."""
    try:
        config, metrics = read_config_and_metrics(store.path(name))
    except RunDamagedError:
        return None
    recorded = config["dataset"].get("test_images_sha256")  # absent from runs written before it was recorded
    if recorded is not None and tested_on() not in (None, recorded):
        return None
    return _results(config, metrics, "done (earlier)")


def _results(config: dict, metrics: dict, status: str) -> dict:
    """A finished run's row: its accuracy, fit time and sizes, and ``status``, which says where the solver
    stopped at its iteration limit (the paper's runs converged)."""
    dataset = config["dataset"]
    return {"status": status + (" (did not converge)" if metrics.get("converged") is False else ""),
            "accuracy": metrics["accuracy"], "fit_seconds": metrics["fit_seconds"], "n_train": dataset["n_train"],
            "n_test": dataset["n_test"], "error": None}


def sizes_text(rows: list[dict]) -> str:
    """How many images ours were trained and tested on, beside the paper's (a subset's accuracies are
    not the paper's to compare with one for one)."""
    sizes = sorted({(r["n_train"], r["n_test"]) for r in rows if r["n_train"] is not None})
    ours = "; ".join(f"{train:,} / {test:,}" for train, test in sizes) or "none yet"
    return f"training / test images: ours {ours}, the paper's {PAPER_SIZES[0]:,} / {PAPER_SIZES[1]:,}"


def _write_results(folder: Path, dataset: str, data: DataChoice, rows: list[dict]) -> None:
    make_folder(folder)
    write_json(folder / RESULTS_JSON, {"dataset": dataset, "data": asdict(replace(data, data_dir=None)),
                                         "rows": rows})
    atomic_write_text(folder / RESULTS_MD, results_table(rows))


def params_text(params: dict) -> str:
    """Parameters as the paper prints them: ``C=10 kernel=rbf``."""
    return " ".join(f"{k}={v}" for k, v in params.items())


def number_text(value: float | None, digits: int = 3) -> str:
    """An accuracy or a time as the tables print it; empty where there is none."""
    return "" if value is None else f"{value:.{digits}f}"


def status_text(row: dict) -> str:
    """A row's status with its error, and how the paper's parameters were mapped to today's scikit-learn."""
    error = f": {row['error']}" if row["error"] else ""
    return row["status"] + error + (f" ({row['mapping']})" if row["mapping"] else "")


def results_table(rows: list[dict]) -> str:
    """The rows as a Markdown table: classifier, parameters, ours, the paper's, its best, time."""
    lines = [f"{sizes_text(rows).capitalize()}.", "",
             "| classifier | parameters (the grid's) | ours | paper | paper's best for the classifier | fit s | "
             "status |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['classifier']} | {params_text(r['params'])} | {number_text(r['accuracy'])} "
                     f"| {number_text(r['paper'])} | {number_text(r['paper_best'])} "
                     f"({params_text(r['paper_best_params'])}) | {number_text(r['fit_seconds'], 1)} "
                     f"| {status_text(r)} |")
    return "\n".join(lines) + "\n"
