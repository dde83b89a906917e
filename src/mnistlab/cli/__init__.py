"""The `mnistlab` command line: data, train, evaluate, explain, predict, runs, sweep.

Every command that writes puts its files under one folder, ``./mnistlab-out``
by default (``--out`` or ``MNISTLAB_OUT``). Bad input ends in one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..data.registry import DATASETS, DEFAULT_DATASET
from ..errors import MnistlabError, ParameterError

app = typer.Typer(
    help="Train, understand, compare and use image classifiers on MNIST-family data.",
    no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Look at the data: info, sample images, pixels, download.", no_args_is_help=True)
app.add_typer(data_app, name="data")

_options = {"debug": False}


@app.callback()
def _global_options(debug: Annotated[bool, typer.Option(
        "--debug", help="Show the full traceback of an unexpected error.")] = False) -> None:
    _options["debug"] = debug


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
    from ..data.datasets import load_dataset

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
    from .. import plots
    from ..data.preprocess import subset_indices

    ds = _load(dataset, data_dir)
    folder = out / "data" / ds.name
    idx = subset_indices(ds.y_train, per_class=per_class, seed=seed)
    paths = [
        plots.save_png(plots.sample_grid(ds.x_train[idx], ds.y_train[idx], ds.classes, per_class=per_class),
                       folder / "samples.png"),
        plots.save_png(plots.class_distribution(ds.y_train, ds.y_test, ds.classes), folder / "class_distribution.png"),
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
    from ..data.datasets import download_dataset

    files = download_dataset(dataset)
    console.print(f"{dataset}: verified files in {files['train_images'].parent}")


# ---------------------------------------------------------------- models and training

runs_app = typer.Typer(help="List and inspect training runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

ModelArg = Annotated[str, typer.Argument(help="Model family, e.g. logreg (see `mnistlab models`).")]
RunArg = Annotated[str, typer.Argument(help="Run name (under OUT/runs) or path to a run folder.")]
SeedOpt = Annotated[int, typer.Option(help="Seed for subsets, splits and the model.")]
ClassesOpt = Annotated[Optional[str], typer.Option(
    help="Keep only these class labels, e.g. 0,1 (T-shirt/top vs Trouser); relabelled in order.")]
TrainSizeOpt = Annotated[Optional[int], typer.Option(help="Stratified training subset of this size.")]
TestSizeOpt = Annotated[Optional[int], typer.Option(help="Stratified test subset of this size.")]
MODEL_OPTIONS = {"allow_extra_args": True, "ignore_unknown_options": True}


def _data_choice(dataset, data_dir, classes, train_size, test_size, seed):
    from ..runs.pipeline import DataChoice

    keep = tuple(int(c) for c in classes.split(",")) if classes else None
    return DataChoice(dataset=dataset, data_dir=str(data_dir) if data_dir else None, classes=keep,
                      train_size=train_size, test_size=test_size, seed=seed)


@app.command("models")
def models_cmd(family: Annotated[Optional[str], typer.Argument(help="Show one family's options.")] = None,
               as_json: JsonOpt = False) -> None:
    """List the model families and their hyperparameters (the options of `train`).

    Examples:

        mnistlab models
        mnistlab models logreg
    """
    from . import model_options
    from ..models import family_names, get_family

    names = [family] if family else family_names()
    listing = {}
    for name in names:
        cls = get_family(name)
        listing[name] = {"summary": (cls.__doc__ or "").strip().splitlines()[0],
                         "options": [option.as_dict() for option in model_options.describe(cls)]}
    if as_json:
        _emit_json(listing)
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


@app.command("train", context_settings=MODEL_OPTIONS)
def train_cmd(ctx: typer.Context, model: ModelArg,
              dataset: DatasetOpt = DEFAULT_DATASET, data_dir: DataDirOpt = None,
              classes: ClassesOpt = None, train_size: TrainSizeOpt = None, test_size: TestSizeOpt = None,
              seed: SeedOpt = 0,
              name: Annotated[Optional[str], typer.Option(help="Run name (default: model-dataset-time).")] = None,
              overwrite: Annotated[bool, typer.Option(help="Replace a run of the same name.")] = False,
              resume: Annotated[bool, typer.Option(
                  help="Continue an interrupted run from its last epoch checkpoint (needs --name).")] = False,
              out: OutOpt = DEFAULT_OUT, as_json: JsonOpt = False) -> None:
    """Train a model and write a run: model, metrics, plots and report.html.

    Model hyperparameters follow the model name as `--option value`
    (`mnistlab models MODEL` lists them).

    Examples:

        mnistlab train logreg
        mnistlab train logreg --penalty l1 --C 0.01 --standardize --train-size 5000
        mnistlab train logreg --classes 0,1 --name tshirt-vs-trouser
        mnistlab train logreg --dataset mnist --data-dir ../shared/data/mnist --json
        mnistlab train cnn --preset long --name long-cnn    # interrupted? add --resume:
        mnistlab train cnn --preset long --name long-cnn --resume
    """
    from . import model_options
    from ..runs import pipeline as training
    from ..models import get_family
    from ..models.callbacks import SILENT
    from ..progress import RichProgress

    if resume and not name:
        raise typer.BadParameter("--resume needs the --name of the interrupted run")

    params = model_options.parse(get_family(model), list(ctx.args))
    data = _data_choice(dataset, data_dir, classes, train_size, test_size, seed)
    # A progress bar on stderr, unless --json asked for quiet; then a spinner there.
    progress = SILENT if as_json else RichProgress(err_console)
    with err_console.status(f"training {model} on {dataset}…") if as_json else contextlib.nullcontext():
        run_dir = training.train(model, params, data, out, name=name, overwrite=overwrite, resume=resume,
                                 progress=progress)
    _print_run_summary(run_dir, as_json)


def _print_run_summary(run_dir: Path, as_json: bool) -> None:
    from ..runs.store import read_metrics

    metrics = read_metrics(run_dir)
    summary = {key: metrics.get(key) for key in
               ("accuracy", "macro_f1", "log_loss", "fit_seconds", "n_iter", "converged", "fit_message")}
    summary.update(run=run_dir.name, run_dir=str(run_dir), report=str(run_dir / "report.html"))
    if as_json:
        _emit_json(summary)
        return
    if metrics.get("fit_message"):
        console.print(metrics["fit_message"])
    console.print(f"[bold]test accuracy {metrics['accuracy']:.4f}[/bold]  macro F1 {metrics['macro_f1']:.4f}  "
                  f"log-loss {metrics['log_loss']:.4f}  fit {metrics['fit_seconds']:.2f} s")
    for line in metrics.get("analysis", []):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    console.print(f"run: {run_dir}")
    console.print(f"report: {run_dir / 'report.html'}")


@app.command("evaluate")
def evaluate_cmd(run: RunArg, dataset: Annotated[Optional[str], typer.Option(
                     "--dataset", "-d", help="Evaluate on another dataset's test set.")] = None,
                 data_dir: DataDirOpt = None, out: OutOpt = DEFAULT_OUT, as_json: JsonOpt = False) -> None:
    """Reload a run's saved model and evaluate it on the test set.

    Examples:

        mnistlab evaluate logreg-fashion-mnist-20261125-101500
        mnistlab evaluate my-run --json
    """

    from ..runs.store import RunStore, read_config
    import dataclasses

    from ..runs import metrics as metrics_mod
    from ..runs import pipeline as training

    run_dir = RunStore(out).resolve(run)
    data = training.run_data(read_config(run_dir))
    if dataset or data_dir:
        data = dataclasses.replace(data, dataset=dataset or data.dataset,
                                   data_dir=str(data_dir) if data_dir else None)
    result = training.evaluate_run(run_dir, data)
    if as_json:
        _emit_json(result)
        return
    console.print(f"{run_dir.name} on {data.dataset}: accuracy {result['accuracy']:.4f}, "
                  f"macro F1 {result['macro_f1']:.4f}, log-loss {result['log_loss']:.4f}")
    console.print(metrics_mod.format_classification_report(result), highlight=False)


def _stored_image(run_dir: Path, index: int, split: str):
    """The run's model, class names, and image ``index`` of its dataset's ``split``."""
    from ..runs.store import read_config
    from ..models.serialization import load_model
    from ..runs import pipeline as training

    if split not in ("train", "test"):
        raise typer.BadParameter("--split must be train or test")
    ds = training.run_data(read_config(run_dir)).load()
    x, y = (ds.x_train, ds.y_train) if split == "train" else (ds.x_test, ds.y_test)
    if not 0 <= index < len(x):
        raise typer.BadParameter(f"--index must be in 0..{len(x) - 1}")
    return load_model(run_dir), ds.classes, x[index], int(y[index])


IndexOpt = Annotated[int, typer.Option("--index", "-i", help="Image index in the split.")]
SplitOpt = Annotated[str, typer.Option(help="train or test.")]
TopOpt = Annotated[int, typer.Option(help="How many classes to list.")]


@app.command("predict")
def predict_cmd(run: RunArg,
                files: Annotated[Optional[list[Path]], typer.Argument(
                    help="Photos or folders of photos (JPEG, PNG, …).", show_default=False)] = None,
                index: Annotated[Optional[int], typer.Option(
                    "--index", "-i", help="Predict a stored image of the run's dataset instead.")] = None,
                split: SplitOpt = "test", top: TopOpt = 3,
                explain: Annotated[bool, typer.Option(help="Write a PNG per photo: input, probabilities, why.")] = False,
                labels: Annotated[Optional[Path], typer.Option(
                    help="CSV with columns file,label (class index or name): report accuracy.")] = None,
                out: OutOpt = DEFAULT_OUT, as_json: JsonOpt = False) -> None:
    """Predict your own photos, or a stored image, with a run's saved model.

    Photos are converted like the training data (orientation, grayscale, polarity,
    background, contrast, crop, centring). A bad file gets a one-line error and the
    others are still predicted; the exit code is 1 if any file failed.

    Examples:

        mnistlab predict my-run shirt.jpg
        mnistlab predict my-run photos/ --labels photos/labels.csv --explain
        mnistlab predict my-run digit.png --top 5 --json
        mnistlab predict my-run --index 0
    """
    from ..runs.store import RunStore
    from ..runs import pipeline as training

    run_dir = RunStore(out).resolve(run)
    if index is not None:
        _predict_stored(run_dir, index, split, top, as_json)
        return
    if not files:
        raise typer.BadParameter("give photo files or folders, or --index for a stored image")
    from ..inference.batch import predict_files

    answer = predict_files(run_dir, files, top=top, labels=labels,
                           explain_dir=out / "predict" / run_dir.name if explain else None)
    if as_json:
        _emit_json(answer)
    else:
        for result in answer["results"]:
            if "error" in result:
                err_console.print(f"[red]{result['file']}: {result['error']}[/red]", highlight=False, soft_wrap=True)
                continue
            probs = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in result["top"])
            truth = f"  (true: {result['true_class']})" if result.get("true_class") else ""
            console.print(f"{result['file']}: [bold]{result['class']}[/bold]{truth}  [{probs}]",
                          highlight=False, soft_wrap=True)
            if result.get("explanation"):
                console.print(f"  explanation: {result['explanation']}", highlight=False, soft_wrap=True)
        if "accuracy" in answer:
            console.print(f"accuracy on {answer['n_labelled']} labelled photos: {answer['accuracy']:.3f}")
            table = Table(title="Confusion matrix (rows: true class)")
            table.add_column("")
            for name in answer["classes"]:
                table.add_column(name, justify="right")
            for name, row in zip(answer["classes"], answer["confusion_matrix"]):
                table.add_row(name, *map(str, row))
            console.print(table)
    if answer["n_failed"]:
        raise typer.Exit(1)


def _predict_stored(run_dir: Path, index: int, split: str, top: int, as_json: bool) -> None:
    from ..inference.predictor import top_classes
    from ..data.preprocess import flatten_scale

    model, classes, image, label = _stored_image(run_dir, index, split)
    proba = model.predict_proba(flatten_scale(image[None]))[0]
    answer = {"index": index, "split": split, "true_class": classes[label],
              "class": classes[int(proba.argmax())], "label": int(proba.argmax()),
              "top": top_classes(proba, classes, top)}
    if as_json:
        _emit_json(answer)
        return
    console.print(f"{split}[{index}]: predicted [bold]{answer['class']}[/bold] (true: {answer['true_class']})")
    for row in answer["top"]:
        console.print(f"  {row['class']:<14} {row['probability']:7.2%}", highlight=False)


@app.command("explain")
def explain_cmd(run: RunArg, index: IndexOpt, split: SplitOpt = "test", top: TopOpt = 3,
                out: OutOpt = DEFAULT_OUT, as_json: JsonOpt = False) -> None:
    """Why a run's model predicts what it does for one image: probabilities and per-pixel maps.

    Examples:

        mnistlab explain my-run --index 0
        mnistlab explain my-run --index 7 --out /tmp/why
    """
    from .. import plots
    from ..data.preprocess import flatten_scale
    from ..inference.predictor import top_classes
    from ..runs.figures import explanation_figures
    from ..runs.store import RunStore

    run_dir = RunStore(out).resolve(run)
    model, classes, image, label = _stored_image(run_dir, index, split)
    paths = [plots.save_png(fig, out / "explain" / f"{run_dir.name}-{split}-{index}_{kind}.png")
             for kind, fig in explanation_figures(model, image, classes, true_label=label).items()]
    proba = model.predict_proba(flatten_scale(image[None]))[0]
    if as_json:
        _emit_json({"index": index, "split": split, "top": top_classes(proba, classes, top),
                    "files": [str(p) for p in paths]})
        return
    console.print(f"{split}[{index}] (true: {classes[label]}):")
    for row in top_classes(proba, classes, top):
        console.print(f"  {row['class']:<14} {row['probability']:7.2%}", highlight=False)
    for p in paths:
        console.print(str(p))


@runs_app.command("list")
def runs_list(out: OutOpt = DEFAULT_OUT, as_json: JsonOpt = False) -> None:
    """Table of runs: dataset, model, accuracy, macro F1, fit time, date.

    Examples:

        mnistlab runs list
        mnistlab runs list --out /data/experiments --json
    """
    from ..runs.store import RunStore

    store = RunStore(out)
    rows = store.list()
    if as_json:
        _emit_json([r.as_dict() for r in rows])
        return
    table = Table(title=f"Runs in {store.root}")
    for col in ("run", "dataset", "model", "accuracy", "macro F1", "fit s", "created"):
        table.add_column(col, justify="right" if col in ("accuracy", "macro F1", "fit s") else "left")
    for r in rows:
        if r.damaged:
            table.add_row(r.name, f"[red]damaged: {r.damaged}[/red]")
        else:
            table.add_row(r.name, r.dataset, r.model, f"{r.accuracy:.4f}", f"{r.macro_f1:.4f}",
                          f"{r.fit_seconds:.2f}", r.created)
    console.print(table)


@runs_app.command("show")
def runs_show(run: RunArg, out: OutOpt = DEFAULT_OUT, as_json: JsonOpt = False) -> None:
    """A run's configuration, results and files.

    Examples:

        mnistlab runs show my-run
        mnistlab runs show mnistlab-out/runs/my-run --json
    """
    from ..runs.store import RunStore, read_config, read_metrics

    run_dir = RunStore(out).resolve(run)
    config = read_config(run_dir)
    metrics = read_metrics(run_dir)
    if as_json:
        metrics.pop("history", None)
        _emit_json({"config": config, "metrics": metrics, "files": sorted(
            str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())})
        return
    console.print(f"[bold]{config['name']}[/bold]: {config['model']} on {config['dataset']['name']} "
                  f"({config['dataset']['n_train']} train / {config['dataset']['n_test']} test), "
                  f"created {config['created']}")
    console.print("params: " + ", ".join(f"{k}={v!r}" for k, v in config["params"].items()), highlight=False)
    _print_run_summary(run_dir, as_json=False)


@app.command("sweep", context_settings=MODEL_OPTIONS)
def sweep_cmd(ctx: typer.Context, model: ModelArg,
              dataset: DatasetOpt = DEFAULT_DATASET, data_dir: DataDirOpt = None,
              classes: ClassesOpt = None, train_size: TrainSizeOpt = None, seed: SeedOpt = 0,
              cv: Annotated[Optional[int], typer.Option(help="k-fold cross-validation instead of one split.")] = None,
              val_fraction: Annotated[float, typer.Option(help="Validation share when not using --cv.")] = 0.2,
              name: Annotated[Optional[str], typer.Option(help="Sweep name (folder under OUT/sweeps).")] = None,
              out: OutOpt = DEFAULT_OUT, as_json: JsonOpt = False) -> None:
    """Fit a grid of hyperparameters; table and plot of validation accuracy (and sparsity).

    Each model option takes comma-separated values; the first one swept is the plot's x axis.

    Examples:

        mnistlab sweep logreg --C 0.001,0.01,0.1,1,10 --penalty l1,l2 --train-size 10000
        mnistlab sweep logreg --C 0.01,0.1,1 --cv 5 --train-size 5000 --json
    """
    from rich.progress import Progress

    from . import model_options
    from ..models import get_family
    from ..runs.sweep import run_sweep

    grid = model_options.parse(get_family(model), list(ctx.args), multi=True)
    data = _data_choice(dataset, data_dir, classes, train_size, None, seed)
    with Progress(console=err_console, transient=True, disable=as_json) as progress:
        folder, rows = run_sweep(model, grid, data, out, name=name, cv=cv, val_fraction=val_fraction,
                                 progress=progress)
    if as_json:
        _emit_json({"folder": str(folder), "results": rows})
        return
    table = Table(title=f"{model} sweep on {dataset} ({'%d-fold CV' % cv if cv else 'validation split'})")
    for col in rows[0]:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()))
    console.print(table)
    best = max(rows, key=lambda r: r["val_accuracy"])
    console.print("best: " + ", ".join(f"{k}={best[k]}" for k in grid) + f" ({best['val_accuracy']:.4f})")
    console.print(f"table: {folder / 'sweep.csv'}\nplot: {folder / 'sweep.png'}")


@app.command("compare")
def compare_cmd(runs: Annotated[list[str], typer.Argument(help="Two or more runs; the first is the baseline.")],
                alpha: Annotated[float, typer.Option(help="Significance level of McNemar's test.")] = 0.05,
                name: Annotated[Optional[str], typer.Option(help="Folder name under OUT/compare.")] = None,
                out: OutOpt = DEFAULT_OUT, as_json: JsonOpt = False) -> None:
    """Compare runs on the same test set: table, plots, McNemar's exact test, compare.html.

    Examples:

        mnistlab compare logreg-run cnn-run
        mnistlab compare adam-run sgd-run --json
    """
    from ..runs.compare import compare_runs
    from ..runs.store import RunStore

    store = RunStore(out)
    folder, result = compare_runs([store.resolve(r) for r in runs], out, name=name, alpha=alpha)
    if as_json:
        _emit_json({"folder": str(folder), **result})
        return
    table = Table(title="Runs")
    for col in ("run", "model", "accuracy", "macro F1", "log-loss", "fit s", "predict s/10k", "parameters"):
        table.add_column(col, justify="left" if col in ("run", "model") else "right")
    for r in result["runs"]:
        table.add_row(r["run"], r["model"], f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}", f"{r['log_loss']:.4f}",
                      f"{r['fit_seconds']:.2f}", f"{r['predict_seconds_per_10k'] or 0:.3f}", str(r["n_parameters"]))
    console.print(table)
    for p in result["pairs"]:
        verdict = "significant" if p["significant"] else "not significant"
        console.print(f"{p['b']} vs {p['a']}: accuracy {p['accuracy_delta']:+.4f}; only A right {p['a_only']}, "
                      f"only B right {p['b_only']}; McNemar p = {p['p_value']:.3g} ({verdict} at {alpha:g})",
                      highlight=False, soft_wrap=True)
    console.print(f"report: {folder / 'compare.html'}")


@app.command("serve")
def serve_cmd(run: Annotated[Optional[str], typer.Option(help="Run that predicts by default (default: newest).")] = None,
              host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
              port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
              workers: Annotated[Optional[int], typer.Option(min=1, help="Processes that compute predictions "
                                                             "(default: one per CPU core).")] = None,
              out: OutOpt = DEFAULT_OUT) -> None:
    """Start the web page: draw or upload an image, see the prediction and why; browse and compare runs.

    Examples:

        mnistlab serve
        mnistlab serve --run my-run --port 8080
        mnistlab serve --workers 1      # one process predicts: least memory
    """
    import uvicorn

    from ..web.app import create_app

    app_ = create_app(out, default_run=run, workers=workers)
    console.print(f"mnistlab web page on http://{host}:{port}/  (API docs: http://{host}:{port}/docs; Ctrl-C stops)")
    uvicorn.run(app_, host=host, port=port, log_level="warning")


recipes_app = typer.Typer(help="The classic tutorial experiments, reproduced on current libraries.",
                          no_args_is_help=True)
app.add_typer(recipes_app, name="recipes")


@recipes_app.command("list")
def recipes_list(as_json: JsonOpt = False) -> None:
    """The recipes and the published results they reproduce.

    Examples:

        mnistlab recipes list
    """
    from ..runs.recipes import RECIPES

    if as_json:
        _emit_json({name: {"title": r.title, "model": r.family, "params": r.params,
                           "dataset": r.data.dataset, "published": r.published,
                           "published_note": r.published_note, "notes": r.notes}
                    for name, r in RECIPES.items()})
        return
    table = Table(title="Recipes (`mnistlab recipes run NAME`)")
    for col in ("name", "experiment", "model", "published"):
        table.add_column(col, justify="right" if col == "published" else "left")
    for name, r in RECIPES.items():
        table.add_row(name, r.title, r.family, f"{r.published:.4g}")
    console.print(table)


@recipes_app.command("run")
def recipes_run(name: Annotated[str, typer.Argument(help="Recipe name (see `mnistlab recipes list`).")],
                data_dir: DataDirOpt = None, out: OutOpt = DEFAULT_OUT, as_json: JsonOpt = False) -> None:
    """Run one tutorial experiment and print our result next to the published one.

    Examples:

        mnistlab recipes run fashion-logreg-saga
        mnistlab recipes run mnist-l1-5000 --data-dir ../shared/data/mnist
    """
    from ..runs.recipes import get_recipe, run_recipe

    recipe = get_recipe(name)
    if recipe.notes and not as_json:
        console.print(recipe.notes, highlight=False, soft_wrap=True)
    run_dir = run_recipe(name, out, data_dir=str(data_dir) if data_dir else None)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    ours = metrics["accuracy"]
    answer = {"recipe": name, "ours": ours, "published": recipe.published,
              "published_note": recipe.published_note, "difference": ours - recipe.published,
              "fit_seconds": metrics["fit_seconds"], "run_dir": str(run_dir),
              "report": str(run_dir / "report.html")}
    if as_json:
        _emit_json(answer)
        return
    console.print(f"[bold]{recipe.title}[/bold]")
    console.print(f"ours: test accuracy {ours:.4f} in {metrics['fit_seconds']:.1f} s "
                  f"| published: {recipe.published_note} | difference {ours - recipe.published:+.4f}",
                  highlight=False, soft_wrap=True)
    console.print(f"report: {run_dir / 'report.html'}")


# ---------------------------------------------------------------- entry point


def error_line(exc: MnistlabError) -> str:
    """The one line a user sees for bad input; a parameter is named by its flag."""
    if isinstance(exc, ParameterError) and exc.parameter:
        return f"--{exc.parameter.replace('_', '-')}: {exc.problem}"
    return str(exc)


def main() -> None:
    """Console-script entry: bad input becomes one line and exit code 2; anything else is a bug,
    said to be one (with its traceback under --debug), exit code 1."""
    try:
        app()  # typer reports usage errors itself, with exit code 2
    except MnistlabError as exc:
        err_console.print(f"[red]error:[/red] {error_line(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, not bad input
        if _options["debug"]:
            traceback.print_exc()
        err_console.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc}\n"
                          "This is a bug in mnistlab, not a problem with your input: please report it, "
                          "with the traceback that --debug shows.", highlight=False, soft_wrap=True)
        sys.exit(1)
