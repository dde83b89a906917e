"""`mnistlab models`, `mnistlab train` and `mnistlab sweep`: the families, fitting one, fitting a grid."""

from __future__ import annotations

import warnings
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from .._values import setting_text, settings_text
from ..data.registry import DEFAULT_DATASET
from ..errors import NotConvergedWarning, ParameterError, SchedulerLostWarning, shown_path
from .common import (
    MODEL_OPTIONS,
    OUT,
    ClassesOpt,
    DataDirOpt,
    DatasetOpt,
    JsonOpt,
    ModelArg,
    OutOpt,
    SeedOpt,
    TestSizeOpt,
    TrainSizeOpt,
    app,
    command_line,
    console,
    emit_json,
    err_console,
    exit_if_some_failed,
    parse_classes,
)


@app.command("models")
def models_cmd(family: Annotated[Optional[str], typer.Argument(help="Show one family's options.")] = None,
               as_json: JsonOpt = False) -> None:
    """List the model families and their hyperparameters (the options of `train`).

    Examples:

    ```
    mnistlab models
    mnistlab models logreg
    mnistlab models sklearn:SVC       # any scikit-learn classifier, as sklearn:NAME
    ```
    """
    from ..models import family_names, family_summary, get_family
    from . import model_options

    names = [family] if family is not None else family_names()
    listing = {}
    for name in names:
        cls = get_family(name)
        listing[name] = {"summary": family_summary(name),
                         "options": [option.as_dict() for option in model_options.describe(cls)]}
    if as_json:
        emit_json(listing)
        return
    for name, entry in listing.items():
        table = Table(title=f"{name}: {entry['summary']}", title_justify="left")
        table.add_column("option", no_wrap=True)
        table.add_column("default")
        table.add_column("allowed")
        table.add_column("meaning")
        for option in entry["options"]:
            flags = " ".join([option["flag"], *option["aliases"]])
            table.add_row(flags, repr(option["default"]), option["allowed"], option["meaning"])
        console.print(table)
    if family is None:
        console.print("And any scikit-learn classifier as sklearn:NAME (`mnistlab models sklearn:SVC`: its options).",
                      highlight=False)


@app.command("train", context_settings=MODEL_OPTIONS)
def train_cmd(ctx: typer.Context, model: ModelArg,
              dataset: DatasetOpt = DEFAULT_DATASET, data_dir: DataDirOpt = None,
              classes: ClassesOpt = None, train_size: TrainSizeOpt = None, test_size: TestSizeOpt = None,
              seed: SeedOpt = 0,
              name: Annotated[Optional[str], typer.Option(help="Run name (default: model-dataset-time).")] = None,
              overwrite: Annotated[bool, typer.Option(help="Replace a run of the same name.")] = False,
              resume: Annotated[bool, typer.Option(
                  help="Continue an interrupted run from its last epoch checkpoint (needs --name).")] = False,
              embedding: Annotated[bool, typer.Option(
                  help="Draw the 2-D map (t-SNE) of the test set; --no-embedding skips it.")] = True,
              calibrate: Annotated[bool, typer.Option(
                  help="Hold out a tenth of the training images and fit a temperature on them that calibrates "
                       "the probabilities (recorded in the model file).")] = False,
              out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Train a model and write a run: model, metrics, plots and report.html.

    Model hyperparameters follow the model name as `--option value`
    (`mnistlab models MODEL` lists them).

    Examples:

    ```
    mnistlab train logreg
    mnistlab train logreg --penalty l1 --C 0.01 --standardize --train-size 5000
    mnistlab train logreg --classes 0,1 --name tshirt-vs-trouser
    mnistlab train logreg --dataset mnist --json --no-embedding
    mnistlab train numpy-mlp --calibrate     # probabilities that say how often it is right
    mnistlab train cnn --preset long --name long-cnn    # interrupted? add --resume:
    mnistlab train cnn --preset long --name long-cnn --resume
    ```
    """
    from .. import api
    from ..models import get_family
    from ..progress import StatusLine
    from . import model_options

    if resume and not name:
        raise ParameterError("resume", "needs the --name of the interrupted run")
    params = model_options.parse(get_family(model), list(ctx.args))
    # A progress bar on stderr, unless --json asked for quiet; then one line there once the checks have
    # passed. Not a spinner: its drawing thread would keep the figures from being drawn in two processes
    # (experiments.figures.write_figures), which took the command 1 s longer.
    progress = StatusLine(f"training {model} on {dataset}…", err_console) if as_json else True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotConvergedWarning)  # the summary says it: the fit message comes first
        run = api.train(model, dataset=dataset, data_dir=data_dir, classes=parse_classes(classes),
                        train_size=train_size, test_size=test_size, seed=seed, name=name, out=out,
                        overwrite=overwrite, resume=resume, progress=progress, command=command_line(),
                        embedding=embedding, calibrate=calibrate, **params)
    print_run_summary(run, as_json)


def run_paths(run) -> dict:
    """Where a run is, as --json says it: its name, folder and report."""
    return {"run": run.name, "run_dir": str(run.path), "report": str(run.report_path)}


def print_run_summary(run, as_json: bool) -> None:
    metrics = run.metrics
    summary = {key: metrics.get(key) for key in
               ("accuracy", "macro_f1", "log_loss", "probabilities_note", "fit_seconds", "n_iter", "converged",
                "fit_message", "analysis")}  # every number the text below shows
    summary.update(run_paths(run))
    if as_json:
        emit_json(summary)
        return
    if metrics.get("fit_message"):
        console.print(metrics["fit_message"])
    console.print(Text.assemble((f"test accuracy {metrics['accuracy']:.4f}", "bold"),
                                f"  macro F1 {metrics['macro_f1']:.4f}  log-loss {metrics['log_loss']:.4f}  "
                                f"fit {metrics['fit_seconds']:.2f} s"))
    if metrics.get("probabilities_note"):
        console.print(f"  probabilities: {metrics['probabilities_note']}", highlight=False, soft_wrap=True)
    for line in metrics.get("analysis", []):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    console.print(f"run: {shown_path(run.path)}")
    console.print(f"report: {shown_path(run.report_path)}")


@app.command("sweep", context_settings=MODEL_OPTIONS)
def sweep_cmd(ctx: typer.Context, model: ModelArg,
              dataset: DatasetOpt = DEFAULT_DATASET, data_dir: DataDirOpt = None,
              classes: ClassesOpt = None, train_size: TrainSizeOpt = None, seed: SeedOpt = 0,
              # not --cv: that is the model's own, as in train (LogisticRegressionCV's inner folds)
              folds: Annotated[Optional[int], typer.Option(
                  min=2,  # here, not by the API's cv check: where the model's cv is swept, its error is --cv's
                  help="k-fold cross-validation instead of one split (the API's cv).")] = None,
              val_fraction: Annotated[Optional[float], typer.Option(
                  help="Validation share, where not using --folds (default: 0.2).")] = None,
              name: Annotated[Optional[str], typer.Option(help="Sweep name (folder under OUT/sweeps).")] = None,
              overwrite: Annotated[bool, typer.Option(help="Replace a sweep of the same --name.")] = False,
              cluster: Annotated[Optional[str], typer.Option(
                  # the variable read by the API, not by Typer: an error in its value names it, not --cluster
                  help="Run each combination as a task on a Dask cluster: a scheduler's address "
                       "(tcp://HOST:8786) or 'local' (worker processes here). Default: $MNISTLAB_CLUSTER.")] = None,
              out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Fit a grid of hyperparameters; table and plot of validation accuracy (and sparsity).

    Each model option takes comma-separated values; the first given two or more is the plot's x axis. Layer sizes
    are joined by x: --hidden 64x32,128 sweeps a network of two layers (64, 32) and one of one (128).

    Examples:

    ```
    mnistlab sweep logreg --C 0.001,0.01,0.1,1,10 --penalty l1,l2 --train-size 10000
    mnistlab sweep logreg --C 0.01,0.1,1 --folds 5 --train-size 5000 --json
    mnistlab sweep logreg --C 0.001,0.01,0.1,1 --penalty l1,l2 --cluster tcp://10.0.0.5:8786
    mnistlab sweep numpy-mlp --hidden 256x128,128 --max-epochs 5 --train-size 5000
    ```
    """
    from .. import api
    from ..models import get_family
    from ..experiments.sweep import SWEEP_CSV, SWEEP_PNG, FoldsError, used_settings
    from . import model_options

    family = get_family(model)
    if "cv" not in family.parameter_names() and any(arg.lower().partition("=")[0] == "--cv" for arg in ctx.args):
        # the sweep's folds were --cv once: said so, not only "no option --cv"
        raise ParameterError("cv", f"{model} has no cv of its own; the sweep's k-fold cross-validation is --folds")
    grid = model_options.parse(family, list(ctx.args), multi=True)
    if not grid:
        raise ParameterError(None, "nothing to sweep: give at least one model option with values, e.g. --C 0.01,0.1,1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SchedulerLostWarning)  # said last, as its one line
            sweep = api.sweep(model, grid, dataset=dataset, data_dir=data_dir, classes=parse_classes(classes),
                              train_size=train_size, seed=seed, cv=folds, val_fraction=val_fraction, name=name,
                              out=out, progress=not as_json, cluster=cluster, overwrite=overwrite)
    except ParameterError as exc:
        if isinstance(exc, FoldsError):  # the API's cv is --folds here (--cv: a swept model's own)
            raise ParameterError("folds", exc.problem) from None
        raise
    rows = sweep.results
    if as_json:
        emit_json({"folder": str(sweep.path), "results": rows})
        _exit_if_points_failed(sweep, grid)
        return
    on = f"{dataset}, classes {classes}" if classes else dataset
    table = Table(title=f"{model} sweep on {on} ({'%d-fold CV' % folds if folds else 'validation split'})")
    for col in rows[0]:
        table.add_column(col, justify="right")
    for r in rows:  # the scores to 4 places; the swept values as given (C 0.00001 and 0.00004 are two)
        table.add_row(*(setting_text(v) if k in grid  # None too: max_depth=None is a setting, not a gap
                        else "—" if v is None else "failed" if k == "error"  # the error itself: below, and in files
                        else f"{v:.4f}" if isinstance(v, float) else setting_text(v)
                        for k, v in r.items()))
    console.print(table)
    best = sweep.best
    console.print(f"best: {used_settings(best, grid)} ({best['val_accuracy']:.4f})")
    console.print(f"table: {shown_path(sweep.path / SWEEP_CSV)}\nplot: {shown_path(sweep.path / SWEEP_PNG)}")
    _exit_if_points_failed(sweep, grid)


def _exit_if_points_failed(sweep, grid: dict) -> None:
    from ..experiments.sweep import scheduler_lost

    if lost := scheduler_lost(sweep.results):  # the cluster's failure, not the first failed point's own error
        err_console.print(lost, highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    exit_if_some_failed([(settings_text({k: r[k] for k in grid}), r["error"]) for r in sweep.failed],
                        len(sweep.results), "points")
