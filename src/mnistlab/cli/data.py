"""`mnistlab data …`: look at a dataset — info, sample images, pixels, download."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..data.registry import DATASETS, DEFAULT_DATASET
from ..errors import DatasetError
from .common import (
    OUT,
    Commands,
    DataDirOpt,
    DatasetOpt,
    IndexOpt,
    JsonOpt,
    OutOpt,
    SplitOpt,
    app,
    console,
    emit_json,
    stored_image,
)

data_app = Commands(help="Look at the data: info, sample images, pixels, download.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _load(dataset: str, data_dir: Path | None):
    from ..data.datasets import load_dataset
    from ..progress import RichProgress

    return load_dataset(dataset, data_dir=data_dir, progress=RichProgress())


@data_app.command("info")
def data_info(dataset: DatasetOpt = DEFAULT_DATASET, data_dir: DataDirOpt = None,
              as_json: JsonOpt = False) -> None:
    """Shapes, dtypes, source, checksum status and class counts.

    Examples:

    ```
    mnistlab data info
    mnistlab data info --dataset mnist --json
    ```
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
        emit_json(info)
        return
    console.print(Text.assemble((DATASETS[ds.name].title, "bold"), f"  ({ds.name})"))
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
              per_class: Annotated[Optional[int], typer.Option(
                  min=1, max=50, help="Images per class in the grid [default: 10, or as many as the smallest "
                                      "class has]")] = None,
              seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Which images are sampled.")] = 0,
              out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Write the labelled sample grid and the class-distribution chart as PNGs.

    Examples:

    ```
    mnistlab data show
    mnistlab data show --dataset mnist --per-class 8 --out /tmp/look
    ```
    """
    import numpy as np

    from .. import plots
    from ..data.preprocess import subset_indices
    from ..experiments.store import output_folder

    ds = _load(dataset, data_dir)
    folder = output_folder(out / "data" / ds.name, "the data's pictures")
    counts = np.bincount(ds.y_train, minlength=len(ds.classes))
    if (missing := np.flatnonzero(counts == 0)).size:  # its row would be left empty under "N images of each class"
        raise DatasetError(f"{ds.source}: no training image of class {missing[0]} ({ds.classes[missing[0]]}), "
                           "so there is no grid of each class's images to draw")
    if per_class is None:  # a small dataset of one's own is shown too, not refused for a number not given
        per_class = min(10, int(counts.min()))
    idx = subset_indices(ds.y_train, per_class=per_class, seed=seed, names=ds.classes)
    grid = plots.sample_grid(ds.x_train[idx], ds.y_train[idx], ds.classes, per_class=per_class)
    paths = [
        # a picture of its own, not narrowed to a report's column: 50 images a row were drawn 20 pixels wide each
        plots.save_png(grid, folder / "samples.png", dpi=plots.DPI),
        plots.save_png(plots.class_distribution(ds.y_train, ds.y_test, ds.classes), folder / "class_distribution.png"),
    ]
    if as_json:
        emit_json({"files": [str(p) for p in paths]})
    else:
        for p in paths:
            console.print(str(p))


@data_app.command("pixels")
def data_pixels(index: IndexOpt, split: SplitOpt = "train", dataset: DatasetOpt = DEFAULT_DATASET,
                data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Print one image's 28×28 pixel values, aligned.

    Examples:

    ```
    mnistlab data pixels --index 0
    mnistlab data pixels --index 42 --split test --json
    ```
    """
    ds = _load(dataset, data_dir)
    image, label = stored_image(ds, index, split)
    if as_json:
        emit_json({"index": index, "split": split, "label": label, "class": ds.classes[label],
                   "pixels": image.tolist()})
        return
    console.print(f"{split}[{index}]: label {label} ({ds.classes[label]})")
    for row in image:
        print(" ".join(f"{int(v):3d}" for v in row))


@data_app.command("download")
def data_download(dataset: DatasetOpt = DEFAULT_DATASET) -> None:
    """Fetch the official files into the user cache and verify them.

    Examples:

    ```
    mnistlab data download --dataset kmnist
    MNISTLAB_CACHE=/data/cache mnistlab data download --dataset mnist
    ```
    """
    from ..data.datasets import download_dataset
    from ..progress import RichProgress

    files = download_dataset(dataset, RichProgress())
    console.print(f"{dataset}: verified files in {files['train_images'].parent}")
