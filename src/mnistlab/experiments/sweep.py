"""Hyperparameter sweeps: "what happens if you increase or decrease C?", as a table and a plot.

Every combination of the given values is fitted on the training data and
scored on a stratified validation split (or by k-fold cross-validation);
the test set is not touched. The first parameter given two or more values is
the plot's x axis, one line per combination of the other such; those of one
value are fixed settings, said in the plot's title.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import itertools
import math
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import plots
from ..plots import Figure  # matplotlib's, imported by plots alone: whole (see there)
from .._io import atomic_directory, atomic_write_text, write_json
from .._values import is_number, is_whole_number, setting_text, settings_text
from ..callbacks import SILENT, FitProgress, started
from ..data.datasets import content_key
from ..data.preprocess import flatten_scale, held_out, stratified_folds
from ..errors import DatasetError, MnistlabError, ParameterError, one_line
from ..models._fitting import finite_proba
from ..models.base import unused_said_elsewhere
from ..models.params import check as check_parameter
from ..models.params import satisfies
from .cluster import SchedulerLostError, run_tasks
from .pipeline import NAME_TIME, DataChoice, build_model, zero_weight_fraction
from .store import MAX_NAME_LENGTH, claim_folder, output_folder, validate_name

SWEEPS = "sweeps"
SWEEP_JSON, SWEEP_CSV, SWEEP_PNG = "sweep.json", "sweep.csv", "sweep.png"  # a sweep's folder: its files


class FoldsError(ParameterError):
    """The sweep's own k-fold cross-validation (its ``cv``) refused: told apart from a swept model's ``cv``, a
    hyperparameter of the same name (LogisticRegressionCV's), by the command line, where the sweep's is --folds
    ("--cv: 50 folds need 50 training images of each class" was said of sweep sklearn:LogisticRegressionCV
    --cv 3,5 --folds 50)."""


def _splits(x, y, cv: int | None, val_fraction: float | None, seed: int, names: tuple[str, ...]):
    """The (fit, validation) pairs: ``cv`` stratified folds, or one held-out ``val_fraction``; a split
    that cannot keep every class on each side fails before the first pair, naming it by ``names``."""
    if cv:
        if cv > (fewest := int(np.unique(y, return_counts=True)[1].min())):
            raise FoldsError("cv", f"{cv} folds need {cv} training images of each class, and one class has "
                                   f"{fewest}")
        yield from ((x[a], x[b], y[a], y[b]) for a, b in stratified_folds(y, cv, seed))
    else:
        yield held_out(x, y, val_fraction, seed, "val_fraction", names)


MAX_POINTS = 1000  # combinations of one sweep: past it a grid is a typo more often than a plan (and hours of fits)

# the sweep's, not a point's: data they cannot give, or a split they cannot make, fails every point alike
# (DataChoice's fields, resplit_test_fraction named test_fraction in its errors, as the API's argument)
OWN_SETTINGS = {"cv", "val_fraction", "test_fraction", *(field.name for field in dataclasses.fields(DataChoice))}

VAL_FRACTION = 0.2  # the share held out for validation where neither cv nor a share is given


def _validation(cv: int | None, val_fraction: float | None) -> float | None:
    """The share held out: None for ``cv`` folds (at least 2), else ``val_fraction`` (between 0 and 1, by
    default ``VAL_FRACTION``). Both given is refused: a cross-validated sweep ignored the share."""
    if cv is not None and (not is_whole_number(cv) or cv < 2):
        raise FoldsError("cv", f"k-fold cross-validation needs k ≥ 2 folds, got {cv!r}")
    if cv is not None:
        if val_fraction is not None:
            raise ParameterError("val_fraction", "a sweep cross-validated in folds holds out no share: give one "
                                                 "of the two")
        return None
    if val_fraction is None:
        return VAL_FRACTION
    if not (is_number(val_fraction) and 0 < val_fraction < 1):
        raise ParameterError("val_fraction", f"must be a fraction between 0 and 1, got {val_fraction!r}")
    return val_fraction


def _training_arrays(data: DataChoice) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The training images flattened and scaled, their labels and the classes' names: once per process for
    as long as the files are the same (a sweep's points share them; a worker, or a notebook, that sweeps
    again after the files changed must not score the old ones)."""
    return _arrays_of(data, content_key(data.dataset, data.data_dir))


@functools.lru_cache(maxsize=1)
def _arrays_of(data: DataChoice, content: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``_training_arrays``, cached by ``content``, the files' (``content_key``)."""
    ds = data.load()
    return flatten_scale(ds.x_train), np.asarray(ds.y_train), ds.classes


def score_point(family: str, params: dict, data: DataChoice, cv: int | None, val_fraction: float | None
                ) -> tuple[dict, int]:
    """One point of a sweep, ``params`` fitted and scored on validation data (a cluster's task, too):
    its row of the results, and how many training images there were."""
    x, y, names = _training_arrays(data)
    accuracies, sparsities, seconds, converged = [], [], [], []
    for x_fit, x_val, y_fit, y_val in _splits(x, y, cv, val_fraction, data.seed, names):
        start = time.perf_counter()
        with unused_said_elsewhere():  # the sweep's table says so (its "unused")
            model = build_model(family, params, data.seed, data.dataset).fit(x_fit, y_fit)  # a fresh one for each fold
        seconds.append(time.perf_counter() - start)
        proba = finite_proba(model.predict_proba(x_val), family)  # a diverged fit scores no chance accuracy
        accuracies.append(float(np.mean(model.classes_[proba.argmax(axis=1)] == y_val)))
        sparsities.append(zero_weight_fraction(model))
        converged.append(getattr(model, "converged_", None))  # None: a family that says nothing of it
    row = {**params, "val_accuracy": float(np.mean(accuracies)),
           "val_accuracy_std": float(np.std(accuracies)) if len(accuracies) > 1 else None,  # of one split: none
           "sparsity": None if sparsities[0] is None else float(np.mean(sparsities)),
           "fit_seconds": float(np.mean(seconds)),
           # False where a fold's fit stopped at its limit before converging: its score is of an unfinished fit
           "converged": None if converged[0] is None else all(converged)}
    return row, int(len(y))


def run_sweep(family: str, grid: dict[str, list], data: DataChoice, out: Path, name: str | None = None,
              cv: int | None = None, val_fraction: float | None = None, progress: FitProgress = SILENT,
              cluster: str | None = None, overwrite: bool = False) -> tuple[Path, list[dict]]:
    """Fit every combination in ``grid``; write sweep.json, sweep.csv and sweep.png.

    A sweep ``name`` that exists is refused before any work unless ``overwrite``; the default name
    (family, dataset, the parameters and the time) is new each time.

    With ``cluster`` (an address, or "local"; see ``cluster.py``) each combination is one task
    on a Dask cluster, fitted on one thread there (a worker is one core's share): the results are those
    of fits on one thread here (OMP_NUM_THREADS=1). Fits here on more threads can score otherwise in the
    families whose sums depend on the thread count (NumPy's, scikit-learn's MLP, PyTorch's): their rounding
    differs, and over many epochs so does the model (numpy-mlp, hidden 256, 32 epochs, 3,000 images:
    validation accuracy 0.8433 on one thread, 0.8450 on two, one image of 600).
    """
    if not grid:
        raise ParameterError(None, "nothing to sweep: give at least one hyperparameter with values, "
                                   "e.g. C=[0.01, 0.1, 1]")
    val_fraction = _validation(cv, val_fraction)
    check_parameter("overwrite", overwrite, ["boolean"])
    if name is not None:
        validate_name(name, "sweep")
    if (n_points := math.prod(len(values) if isinstance(values, (list, tuple)) else 1 for values in grid.values())) \
            > MAX_POINTS:  # counted before the grid is built: its list of points alone could fill the memory
        raise ParameterError(None, f"{n_points:,} combinations to sweep: at most {MAX_POINTS:,} are swept at once")
    # layer sizes given as lists are tuples, as the command line's: a value keys the plot's points
    grid = {parameter: [tuple(v) if isinstance(v, list) else v for v in values] for parameter, values in grid.items()}
    for parameter, values in grid.items():
        if (repeated := next((i for i, v in enumerate(values) if any(_same(v, w) for w in values[:i])), None)) \
                is not None:
            raise ParameterError(parameter, f"the value {values[repeated]!r} is given twice")
    names = list(grid)
    positions = _positions(grid)
    points = [{n: grid[n][j] for n, j in zip(names, at)} for at in positions]
    with unused_said_elsewhere():  # all checked before any work
        models = [build_model(family, params, data.seed, data.dataset) for params in points]
    unused = [{n: why for n, why in model.unused_parameters().items() if n in grid} for model in models]
    # the values as the fits take them: resolved (cnn's flip 'auto' on Fashion-MNIST is True, a preset's None its value)
    settings = [{n: model.resolved_params()[n] for n in grid} for model in models]
    fits, same_fit = _distinct_fits(positions, unused, grid, settings, models[0]._parameter_constraints)
    sweeps = output_folder(Path(out) / SWEEPS, "sweeps")
    with contextlib.ExitStack() as claims:
        # a name given is held from before the first fit (another sweep of that name is refused, not
        # replaced, at its end); a default one, which holds the time, once the results are in
        final = claims.enter_context(claim_folder(sweeps, name, "sweep", overwrite)) if name is not None else None
        scores, n_train = _scores(family, [points[i] for i in fits], data, cv, val_fraction, cluster, progress)
        rows = [{**points[i], **{k: v for k, v in scores[same_fit[i]].items() if k not in grid}} for i in
                range(len(points))]
        if any(unused) or len(fits) < len(points):  # which swept values a point did not use, or which point's fit
            # it repeats (its scores are that fit's)
            rows = [{**row, "unused": ", ".join(u) or None, **_shared_fit(i, fits[same_fit[i]], positions, points)}
                    for i, (row, u) in enumerate(zip(rows, unused))]
        if final is None:
            # the time, as in a run's default name: another sweep of the same parameters is not replaced
            stamp = datetime.now(timezone.utc).strftime(NAME_TIME)
            described = f"{family.replace(':', '-')}-{data.dataset}-{'-'.join(names)}"
            default = f"{described[:MAX_NAME_LENGTH - len(stamp) - 4]}-{stamp}"  # room for a number: -2, -3 …
            final = claims.enter_context(claim_folder(sweeps, default, "sweep", numbered=True))
        _write(final, family, grid, data, n_train, cv, val_fraction, rows)
    return final, rows


def _same(a, b) -> bool:
    """Whether two values of a parameter are one setting: equal, and both fractions (floats) or neither, as
    scikit-learn reads them (max_features=1 is one feature, 1.0 all of them; True is 1 to its checks)."""
    try:
        equal = bool(a == b)
    except ValueError:  # arrays (GaussianNB's priors) compare element by element: "truth value … ambiguous"
        equal = np.array_equal(a, b)
    return equal and _is_fraction(a) == _is_fraction(b)


def _is_fraction(value) -> bool:
    return is_number(value) and not is_whole_number(value)


def _positions(grid: dict[str, list]) -> list[tuple[int, ...]]:
    """Each point of ``grid`` as the positions of its values in the grid's lists, in the order of the points
    (itertools.product's): what tells points apart, as their values cannot (class_weight={0: 5.0} is no
    dict key or set member, as GridSearchCV takes it)."""
    return list(itertools.product(*(range(len(values)) for values in grid.values())))


def _distinct_fits(positions: list[tuple[int, ...]], unused: list[dict[str, str]], grid: dict[str, list],
                   settings: list[dict], constraints: dict[str, list]) -> tuple[list[int], list[int]]:
    """Which points to fit, and for each point the index among those of the fit it is (points that differ
    only in values they do not use are one fit: l1_ratio 0.2 and 0.8 with penalty l2; and so are those whose
    values differ but are one setting as the fit takes it, ``settings``: ``_setting_key``). A swept parameter
    that no point uses is refused: all its values would be the same fits. Points are known by ``positions``,
    their values' in ``grid``."""
    for name, values in grid.items():
        if len(values) > 1 and all(name in u for u in unused):
            raise ParameterError(name, f"no point of this sweep uses it ({unused[0][name]}): all its values would "
                                       "be one fit")
    fits: list[int] = []
    same_fit: list[int] = []
    seen: dict[tuple, int] = {}
    for i, (at, u) in enumerate(zip(positions, unused)):
        # C=[1, 1.0] and cnn's flip=['auto', True] on Fashion-MNIST had been fitted twice each: the rows stay (they
        # were asked for), their fit is the first's
        key = tuple((name, _setting_key(settings[i][name], j, constraints.get(name)))
                    for name, j in zip(grid, at) if name not in u)
        if key not in seen:
            seen[key] = len(fits)
            fits.append(i)
        same_fit.append(seen[key])
    return fits, same_fit


def _setting_key(value, position: int, constraints: list | str | None) -> tuple:
    """What tells one setting of a parameter from another, ``value`` as the fit takes it (``position``: its place
    in the grid): a number by its value and which of the parameter's ``constraints`` it meets (C 1 and 1.0 are one
    setting; max_features 1, one feature, and 1.0, all of them, meet an int's and a float's, and are two); any
    other value by itself where it can key a dict (a resolved 'auto': True), else by its place in the grid.
    Sequences are not read as numbers: a constraint cannot say what they mean (LogisticRegressionCV's Cs=2 is two
    values of C, Cs=(2,) one)."""
    if is_number(value):
        if not isinstance(constraints, list):  # nothing says how the family reads it: as scikit-learn's checks do
            return "number", value, _is_fraction(value)
        return "number", value, tuple(satisfies(value, c) for c in constraints)
    try:
        hash(value)
    except TypeError:  # arrays (GaussianNB's priors) and lists
        return "position", position
    return "value", type(value).__name__, value


def _shared_fit(i: int, fitted: int, positions: list[tuple[int, ...]], points: list[dict]) -> dict:
    """What point ``i``'s row says of the fit it has the scores of (point ``fitted``): ``same_fit_as``, that
    point's values where they differ from its own (each unused, or one setting with its own); and, where that is
    another point's, no ``fit_seconds``. Merged rows had copied the fitted point's time as if each had been timed,
    and were each counted as a fit of their own (4 of 4 points unconverged where 3 fits were made)."""
    if fitted == i:
        return {"same_fit_as": None}
    return {"fit_seconds": None, "same_fit_as": settings_text({name: value for (name, value), a, b in
                                                               zip(points[fitted].items(), positions[fitted],
                                                                   positions[i]) if a != b})}


def _scores(family: str, points: list[dict], data: DataChoice, cv: int | None, val_fraction: float | None,
            cluster: str | None, progress: FitProgress) -> tuple[list[dict], int]:
    """Each point's row of scores, in order, and the number of training images. A point that failed by its
    own settings has a row too, without scores and with its ``error``: the others' hours are kept (every row
    has an ``error`` then, None where none); where every point failed, there is nothing to keep. So too where
    a cluster's scheduler is lost: the points it had not finished are failed points."""
    arguments = [(family, params, data, cv, val_fraction) for params in points]
    results = run_tasks(cluster, score_point, arguments, progress) if cluster is not None else _here(arguments)
    rows: list[dict | None] = [None] * len(points)
    errors: dict[int, str] = {}
    lost: set[int] = set()  # the points a lost scheduler left unfinished
    n_train = 0
    try:  # outside the bar: one the lost scheduler ended is no bar of finished fits ("1/1")
        with started(progress, len(points), "fit"):
            for done, (i, result) in enumerate(results, start=1):
                if isinstance(result, DatasetError) or (isinstance(result, ParameterError)
                                                         and result.parameter in OWN_SETTINGS):
                    raise result  # the sweep's own data or split, which every point fails alike: said as itself
                if isinstance(result, Exception):
                    errors[i] = one_line(result)
                    progress.log(f"{family} {settings_text(points[i])} failed: {errors[i]}")
                    progress.advance(done, f"{family} {settings_text(points[i])}: failed")
                    continue
                row, n_train = result
                rows[i] = row
                progress.advance(done, f"{family} {settings_text(points[i])}: validation accuracy "
                                       f"{row['val_accuracy']:.4f}")
    except SchedulerLostError as exc:
        if all(row is None for row in rows):
            raise  # nothing finished: said as itself
        # the finished points' fits are kept, as where some points fail: the rest are failed points, marked so
        lost = {i for i, row in enumerate(rows) if row is None and i not in errors}
        errors.update(dict.fromkeys(lost, one_line(exc)))
    if len(errors) == len(points):
        raise MnistlabError(f"all {len(points)} sweep points failed; the first, {settings_text(points[0])}: "
                            f"{errors[0]}")
    if errors:  # a failed point's row: its values, and no scores (those a finished point's row has)
        scores = [key for key in next(row for row in rows if row) if key not in points[0]]
        # a lost scheduler's points are told by a column of their own, not by their error's text
        rows = [{**(row or {**points[i], **dict.fromkeys(scores)}), "error": errors.get(i),
                 **({SCHEDULER_LOST: i in lost} if lost else {})} for i, row in enumerate(rows)]
    return rows, n_train


def used_settings(row: dict, grid: dict) -> str:
    """The swept settings of ``row`` that its fit used, as text: values named in its "unused" column made no
    difference to it (not what made a best point best, nor what a fit that did not converge was given)."""
    unused = (row.get("unused") or "").split(", ")
    return settings_text({name: row[name] for name in grid if name not in unused})


# the column, in the rows of a sweep whose cluster's scheduler was lost midway, that is True in the points it had
# not finished (their error is the scheduler's); these had been told by a prefix of their error's text
SCHEDULER_LOST = "scheduler_lost"


def scheduler_lost(rows: list[dict]) -> str | None:
    """Where the cluster's scheduler was lost midway, one line that says so and how many of the points of
    ``rows`` (``run_sweep``'s) finished; else None. The command line's line had named the first failed point's
    own error, and Python said nothing."""
    lost = [row for row in rows if row.get(SCHEDULER_LOST)]
    if not lost:
        return None
    return (f"{lost[0]['error']}: {len(rows) - len(lost)} of {len(rows)} points finished before it (the rest are "
            "failed points, without scores)")


def _here(arguments: list[tuple]) -> Iterator[tuple[int, tuple[dict, int] | MnistlabError]]:
    """Each point scored in this process, in order, as a cluster's tasks report them: its row, or the
    MnistlabError that stopped it (said with the point it stopped)."""
    for i, args in enumerate(arguments):
        try:
            yield i, score_point(*args)
        except MnistlabError as exc:
            yield i, exc


def _write(final: Path, family: str, grid: dict[str, list], data: DataChoice, n_train: int, cv: int | None,
           val_fraction: float | None, rows: list[dict]) -> None:
    """The sweep's folder: sweep.json, sweep.csv and sweep.png, staged and renamed."""
    with atomic_directory(final) as staging:
        # the data as a run's config.json records it: a sweep of three classes is not one of ten
        write_json(staging / SWEEP_JSON, {"model": family, "grid": grid, "dataset": data.dataset,
                                            "data": dataclasses.asdict(data), "n_train": n_train, "cv": cv,
                                            "val_fraction": val_fraction, "results": rows})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        # as the command line takes them (layer sizes as 64x32, not Python's "(64,)", a swept None as None); a
        # score that is None stays an empty cell
        writer.writerows({key: None if value is None and key not in grid else setting_text(value)
                          for key, value in row.items()} for row in rows)
        atomic_write_text(staging / SWEEP_CSV, buffer.getvalue())
        plots.save_png(sweep_figure(rows, grid), staging / SWEEP_PNG)


def _gap(value: float | None) -> float:
    return math.nan if value is None else value


def sweep_figure(rows: list[dict], grid: dict[str, list]) -> Figure:
    """Validation accuracy (and sparsity) against the first parameter swept over two or more values, a line per
    combination of the other such; a parameter of one value is a fixed setting, said in the title.

    ``rows`` are the points of ``grid`` in its order (``run_sweep``'s): each is placed by its values' positions
    in the grid, not by the values, which may be neither hashable nor ordered (class_weight={0: 5.0}).
    """
    names = list(grid)
    swept = [n for n in names if len(grid[n]) > 1] or names[:1]  # one point alone: the first, at one x
    x_name, others = swept[0], swept[1:]
    fixed = plots.literal(settings_text({n: grid[n][0] for n in names if n not in swept}))  # values as given, $ too
    at = dict(zip(_positions(grid), rows))  # a point's row by its values' positions

    def order(name: str) -> list[int]:
        """The positions of ``name``'s values: numbers by value, then the rest (None, text, layer sizes) as
        given (None and 1 do not compare, and layer sizes sorted as text put 8 after 64)."""
        return sorted(range(len(grid[name])), key=lambda j: (0, grid[name][j], j) if is_number(grid[name][j])
                      else (1, j))

    x_order = order(x_name)
    x_values = [grid[x_name][j] for j in x_order]
    series = {}
    sparse = any(r["sparsity"] is not None for r in rows)  # the family's weights can be zero (failed points: none)
    for line_at in itertools.product(*(order(o) for o in others)):
        label = plots.literal(settings_text({o: grid[o][j] for o, j in zip(others, line_at)})) or "validation"
        place = dict.fromkeys(names, 0) | dict(zip(others, line_at))  # a fixed setting's one value: position 0
        line = [at[tuple({**place, x_name: j}[n] for n in names)] for j in x_order]
        series[label] = ([_gap(r["val_accuracy"]) for r in line],  # a failed point: a gap in its line
                         [_gap(r["sparsity"]) for r in line] if sparse else None)
    # an axis of numbers where all are finite, else one of the values' names (C=inf has no place on a log axis),
    # and where no two are the same number (max_features 1 and 1.0 would be one place); names as the command
    # line writes them (64x32)
    finite = all(is_number(v) and math.isfinite(v) for v in x_values) and len(set(x_values)) == len(x_values)
    return plots.sweep_plot(x_values if finite else [plots.literal(setting_text(v)) for v in x_values], series,
                            x_label=x_name, fixed=fixed)
