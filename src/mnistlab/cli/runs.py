"""`mnistlab runs …`, `evaluate` and `compare`: the runs there are, one run's results, runs side by side."""

from __future__ import annotations

import warnings
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..experiments.store import summarize
from ..errors import shown_path
from .common import (OUT, Commands, DataDirOpt, JsonOpt, OutOpt, RunArg, app, console, emit_json,
                     warn_if_no_out)
from .train import print_run_summary, run_paths

runs_app = Commands(help="List and inspect training runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Table of runs: dataset, model, accuracy, macro F1, fit time, date; damaged runs with the reason.

    Examples:

    ```
    mnistlab runs list
    mnistlab runs list --out /data/experiments --json
    ```
    """
    from ..experiments.store import RunStore

    store = RunStore(out)
    rows = store.list()
    warn_if_no_out(store.out)  # after the listing's own checks of --out
    if as_json:
        emit_json([r.as_dict() for r in rows])
        return
    table = Table(title=f"Runs in {store.root}")
    # names whole, which other commands are given: folded onto a second line where the terminal is narrow,
    # never cut short with an ellipsis (a minimum width would widen the table past the terminal)
    table.add_column("run", overflow="fold")
    for col in ("dataset", "model"):
        table.add_column(col, overflow="fold")
    for col in ("accuracy", "macro F1", "fit s"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for r in rows:
        if r.damaged:
            table.add_row(r.name, Text(f"damaged: {r.damaged}", style="red"))
        else:
            table.add_row(r.name, r.dataset, r.model, f"{r.accuracy:.4f}", f"{r.macro_f1:.4f}",
                          f"{r.fit_seconds:.2f}", r.created[:16].replace("T", " "))  # to the minute
    console.print(table)


@runs_app.command("show")
def runs_show(run: RunArg, out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """A run's configuration, results and files.

    Examples:

    ```
    mnistlab runs show my-run
    mnistlab runs show mnistlab-out/runs/my-run --json
    ```
    """
    from .. import api

    loaded = api.load_run(run, out=out)
    if (damaged := summarize(loaded.path).damaged) is not None:
        # shown as fine where `runs list` called it damaged (no predictions.npz): said, though the run still loads
        # (its model predicts and exports without the test set's predictions)
        warnings.warn(f"damaged: {damaged}", stacklevel=1)
    config = loaded.config
    if as_json:
        metrics = {k: v for k, v in loaded.metrics.items() if k != "history"}
        emit_json({**run_paths(loaded), "config": config, "metrics": metrics, "files": sorted(  # files: in run_dir
            str(p.relative_to(loaded.path)) for p in loaded.path.rglob("*") if p.is_file())})
        return
    console.print(Text.assemble((loaded.name, "bold"), f": {config['model']} on {config['dataset']['name']} "
                                f"({config['dataset']['n_train']} train / {config['dataset']['n_test']} test), "
                                f"created {config['created']}"))
    console.print("params: " + ", ".join(f"{k}={v!r}" for k, v in config["params"].items()), highlight=False)
    print_run_summary(loaded, as_json=False)


@app.command("evaluate")
def evaluate_cmd(run: RunArg, dataset: Annotated[Optional[str], typer.Option(
                     "--dataset", "-d",
                     help="Evaluate on the test set of another dataset of the run's classes.")] = None,
                 data_dir: DataDirOpt = None, out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Reload a run's saved model and evaluate it on the test set.

    Examples:

    ```
    mnistlab evaluate logreg-fashion-mnist-20261125-101500
    mnistlab evaluate my-run --json
    mnistlab evaluate my-run --data-dir ~/other-copy    # another copy of its data
    ```
    """
    from .. import api
    from ..metrics import format_classification_report

    loaded = api.load_run(run, out=out)
    result = loaded.evaluate(dataset=dataset, data_dir=data_dir)
    if as_json:
        emit_json(result)
        return
    console.print(f"{loaded.name} on {dataset or loaded.config['dataset']['name']}: accuracy {result['accuracy']:.4f}, "
                  f"macro F1 {result['macro_f1']:.4f}, log-loss {result['log_loss']:.4f}")
    if result.get("probabilities_note"):
        console.print(f"  probabilities: {result['probabilities_note']}", highlight=False, soft_wrap=True)
    console.print(format_classification_report(result), highlight=False)


@app.command("compare")
def compare_cmd(runs: Annotated[list[str], typer.Argument(help="Two or more runs; the first is the baseline.")],
                alpha: Annotated[float, typer.Option(
                    help="Significance level of McNemar's test (of Holm-adjusted p where more than two runs "
                         "are compared)."
                )] = 0.05,
                name: Annotated[Optional[str], typer.Option(help="Folder name under OUT/compare.")] = None,
                overwrite: Annotated[bool, typer.Option(help="Replace a comparison of the same --name.")] = False,
                out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Compare runs on the same test set: table, plots, McNemar's exact test, compare.html.

    Examples:

    ```
    mnistlab compare logreg-run cnn-run
    mnistlab compare adam-run mnistlab-out/runs/sgd-run --json
    ```
    """
    from .. import api
    from ..experiments.compare import log_loss_text, p_text, probabilities_notes

    comparison = api.compare(*runs, out=out, alpha=alpha, name=name, overwrite=overwrite)
    result = comparison.result
    if as_json:
        emit_json({"folder": str(comparison.path), **result})
        return
    table = Table(title="Runs")
    table.add_column("", no_wrap=True)  # which row is which where a narrow terminal folds the names
    for col in ("run", "model", "accuracy", "macro F1", "log-loss", "fit s", "predict s/10k", "parameters"):
        table.add_column(col, justify="left" if col in ("run", "model") else "right",
                         overflow="fold" if col == "run" else "ellipsis")
    for number, r in enumerate(result["runs"], start=1):
        table.add_row(str(number), r["run"], r["model"], f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}",
                      log_loss_text(r),
                      f"{r['fit_seconds']:.2f}",
                      "—" if r["predict_seconds_per_10k"] is None else f"{r['predict_seconds_per_10k']:.3f}",
                      "—" if r["n_parameters"] is None else f"{r['n_parameters']:,}")
    console.print(table)
    for note in probabilities_notes(result):
        console.print(note, highlight=False, soft_wrap=True)
    for p in result["pairs"]:
        verdict = "significant" if p["significant"] else "not significant"
        console.print(f"{p['b']} vs {p['a']}: accuracy {p['accuracy_delta']:+.4f}; only A right {p['a_only']}, "
                      f"only B right {p['b_only']}; {p_text(p, len(result['pairs']))} ({verdict} at {alpha:g})",
                      highlight=False, soft_wrap=True)
    console.print(f"report: {shown_path(comparison.report_path)}")
