"""`mnistlab benchmark zalando`: Zalando's benchmark of scikit-learn classifiers, reproduced."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import shown_path
from .common import (
    OUT,
    Commands,
    DataDirOpt,
    DatasetOpt,
    JsonOpt,
    OutOpt,
    TestSizeOpt,
    TrainSizeOpt,
    app,
    command_line,
    console,
    emit_json,
    exit_if_some_failed,
)

benchmark_app = Commands(help="Published benchmarks, reproduced as ordinary runs.", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")


@benchmark_app.command("zalando")
def zalando(dataset: DatasetOpt = "fashion-mnist", data_dir: DataDirOpt = None,
            classifiers: Annotated[Optional[str], typer.Option(
                help="Only these classifiers, comma-separated (e.g. SVC,RandomForestClassifier).")] = None,
            train_size: TrainSizeOpt = None, test_size: TestSizeOpt = None,
            quick: Annotated[bool, typer.Option(
                "--quick", help="One configuration per classifier (the paper's best on Fashion-MNIST) on "
                                "2,000 / 1,000 images.")] = False,
            cluster: Annotated[Optional[str], typer.Option(  # the variable read by the API, as sweep's
                help="Run each configuration as a task on a Dask cluster: a scheduler's address or 'local'. "
                     "Default: $MNISTLAB_CLUSTER.")] = None,
            out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """The grid of Zalando's runner (137 scikit-learn configurations), each an ordinary run, beside the
    Fashion-MNIST paper's test accuracies (Xiao, Rasul and Vollgraf, 2017, Table 3).

    Re-running skips the configurations already finished; one that fails is recorded with its error
    and the rest go on. Settings scikit-learn has renamed since 2017 are mapped to today's names,
    and the table says how. The whole grid on 60,000 images takes many CPU-hours: that is what
    `--cluster` is for.

    Examples:

    ```
    mnistlab benchmark zalando --quick
    mnistlab benchmark zalando --classifiers SVC,RandomForestClassifier --train-size 10000
    mnistlab benchmark zalando --dataset mnist --cluster tcp://10.0.0.5:8786
    ```
    """
    from .. import api
    from ..experiments.zalando import RESULTS_MD, number_text, params_text, sizes_text, status_text

    chosen = [c.strip() for c in classifiers.split(",")] if classifiers is not None else None  # "" is a mistake
    result = api.zalando_benchmark(dataset=dataset, classifiers=chosen, train_size=train_size, test_size=test_size,
                                   quick=quick, data_dir=data_dir, cluster=cluster, out=out, progress=not as_json,
                                   command=command_line())
    if as_json:
        emit_json({"folder": str(result.path), "rows": result.rows})
        _exit_if_failed(result.rows)
        return
    table = Table(title=f"Zalando's benchmark on {dataset} ({sizes_text(result.rows)})")
    for col in ("classifier", "parameters", "ours", "paper", "paper's best", "fit s", "status"):
        table.add_column(col, justify="right" if col in ("ours", "paper", "paper's best", "fit s") else "left")
    for r in result.rows:
        table.add_row(r["classifier"], params_text(r["params"]),
                      *(number_text(r[key]) for key in ("accuracy", "paper", "paper_best")),
                      number_text(r["fit_seconds"], 1), status_text(r))
    console.print(table)
    console.print(f"table: {shown_path(result.path / RESULTS_MD)}", highlight=False)
    _exit_if_failed(result.rows)


def _exit_if_failed(rows: list[dict]) -> None:
    from ..experiments.zalando import params_text

    exit_if_some_failed([(f"{r['classifier']} {params_text(r['params'])}", r["error"]) for r in rows
                         if r["status"] == "failed"], len(rows), "configurations")
