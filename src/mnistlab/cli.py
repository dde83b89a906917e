"""The `mnistlab` command line: data, train, evaluate, explain, predict, runs, sweep.

Every command that writes puts its files under one folder, ``./mnistlab-out``
by default (``--out`` or ``MNISTLAB_OUT``). Bad input ends in one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .registry import DATASETS, DEFAULT_DATASET

app = typer.Typer(
    help="Train, understand, compare and use image classifiers on MNIST-family data.",
    no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Look at the data: info, sample images, pixels, download.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help=f"One of: {', '.join(DATASETS)}.")]
DataDirOpt = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder with the four IDX files (.gz or raw); env MNISTLAB_DATA_DIR.")]
OutOpt = Annotated[Path, typer.Option(
    "--out", envvar="MNISTLAB_OUT", help="Folder for everything this command writes.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
DEFAULT_OUT = Path("mnistlab-out")


def _emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _load(dataset: str, data_dir: Path | None):
    from .datasets import load_dataset

    return load_dataset(dataset, data_dir=data_dir)


# ---------------------------------------------------------------- data commands


@data_app.command("info")
def data_info(dataset: DatasetOpt = DEFAULT_DATASET, data_dir: DataDirOpt = None,
              as_json: JsonOpt = False) -> None:
    """Shapes, dtypes, source, checksum status and class counts.

    Examples:

        mnistlab data info
        mnistlab data info --dataset mnist --data-dir ../shared/data/mnist --json
    """
    import numpy as np

    ds = _load(dataset, data_dir)
    counts = {split: np.bincount(y, minlength=len(ds.classes)).tolist()
              for split, y in (("train", ds.y_train), ("test", ds.y_test))}
    total = np.add(counts["train"], counts["test"])
    info = {
        "dataset": ds.name, "source": ds.source, "official": ds.official,
        "checksums": ds.checksums, "checksum_summary": ds.checksum_summary,
        "x_train": {"shape": list(ds.x_train.shape), "dtype": str(ds.x_train.dtype)},
        "y_train": {"shape": list(ds.y_train.shape), "dtype": str(ds.y_train.dtype)},
        "x_test": {"shape": list(ds.x_test.shape), "dtype": str(ds.x_test.dtype)},
        "y_test": {"shape": list(ds.y_test.shape), "dtype": str(ds.y_test.dtype)},
        "classes": list(ds.classes), "counts": counts,
        "balance": {"min_share": float(total.min() / total.sum()),
                    "max_share": float(total.max() / total.sum())},
    }
    if as_json:
        _emit_json(info)
        return
    console.print(f"[bold]{DATASETS[ds.name].title}[/bold]  ({ds.name})")
    console.print(f"source: {ds.source}")
    console.print(f"checksums: {ds.checksum_summary}")
    for key in ("x_train", "y_train", "x_test", "y_test"):
        console.print(f"{key:8s} shape {tuple(info[key]['shape'])}  dtype {info[key]['dtype']}")
    table = Table(title="Images per class")
    for col in ("label", "class", "train", "test", "share"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for k, name in enumerate(ds.classes):
        table.add_row(str(k), name, str(counts["train"][k]), str(counts["test"][k]),
                      f"{total[k] / total.sum():.1%}")
    console.print(table)
    balanced = info["balance"]["max_share"] - info["balance"]["min_share"] < 0.02
    console.print(f"class balance: {info['balance']['min_share']:.1%} to {info['balance']['max_share']:.1%} "
                  f"per class ({'balanced' if balanced else 'imbalanced'})")


@data_app.command("show")
def data_show(dataset: DatasetOpt = DEFAULT_DATASET, data_dir: DataDirOpt = None,
              per_class: Annotated[int, typer.Option(help="Images per class in the grid.")] = 10,
              seed: Annotated[int, typer.Option(help="Which images are sampled.")] = 0,
              out: OutOpt = DEFAULT_OUT, as_json: JsonOpt = False) -> None:
    """Write the labelled sample grid and the class-distribution chart as PNGs.

    Examples:

        mnistlab data show
        mnistlab data show --dataset mnist --data-dir ../shared/data/mnist --per-class 8 --out /tmp/look
    """
    from . import plots
    from .preprocess import subset_indices

    ds = _load(dataset, data_dir)
    folder = out / "data" / ds.name
    idx = subset_indices(ds.y_train, per_class=per_class, seed=seed)
    paths = [
        plots.sample_grid(ds.x_train[idx], ds.y_train[idx], ds.classes, folder / "samples.png",
                          per_class=per_class),
        plots.class_distribution(ds.y_train, ds.y_test, ds.classes, folder / "class_distribution.png"),
    ]
    if as_json:
        _emit_json({"files": [str(p) for p in paths]})
    else:
        for p in paths:
            console.print(str(p))


@data_app.command("pixels")
def data_pixels(index: Annotated[int, typer.Option("--index", "-i", help="Image index in the split.")],
                split: Annotated[str, typer.Option(help="train or test.")] = "train",
                dataset: DatasetOpt = DEFAULT_DATASET, data_dir: DataDirOpt = None,
                as_json: JsonOpt = False) -> None:
    """Print one image's 28×28 pixel values, aligned.

    Examples:

        mnistlab data pixels --index 0
        mnistlab data pixels --index 42 --split test --json
    """
    if split not in ("train", "test"):
        raise typer.BadParameter("--split must be train or test")
    ds = _load(dataset, data_dir)
    x, y = (ds.x_train, ds.y_train) if split == "train" else (ds.x_test, ds.y_test)
    if not 0 <= index < len(x):
        raise typer.BadParameter(f"--index must be in 0..{len(x) - 1}")
    image, label = x[index], int(y[index])
    if as_json:
        _emit_json({"index": index, "split": split, "label": label, "class": ds.classes[label],
                    "pixels": image.tolist()})
        return
    console.print(f"{split}[{index}]: label {label} ({ds.classes[label]})")
    for row in image:
        print(" ".join(f"{int(v):3d}" for v in row))


@data_app.command("download")
def data_download(dataset: DatasetOpt = DEFAULT_DATASET) -> None:
    """Fetch the official files into the user cache and verify them.

    Examples:

        mnistlab data download --dataset kmnist
        MNISTLAB_CACHE=/data/cache mnistlab data download --dataset mnist
    """
    from .datasets import download_dataset

    files = download_dataset(dataset)
    console.print(f"{dataset}: verified files in {files['train_images'].parent}")


# ---------------------------------------------------------------- entry point


def main() -> None:
    """Console-script entry: known errors become one line and exit code 2."""
    from .artifacts import ModelFileError
    from .idx import DatasetError

    try:
        app()  # typer reports usage errors itself, with exit code 2
    except (DatasetError, ModelFileError, ValueError, OSError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
