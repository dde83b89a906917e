"""`mnistlab predict` and `mnistlab explain`: a run's model applied to photos or stored images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..errors import ParameterError, printable
from .common import (
    OUT,
    RUN_INDEX_HELP,
    RunIndexOpt,
    JsonOpt,
    OutOpt,
    RunArg,
    SplitOpt,
    TopOpt,
    app,
    console,
    emit_json,
    err_console,
    print_top,
    stored_image,
)


@app.command("predict")
def predict_cmd(run: RunArg,
                files: Annotated[Optional[list[Path]], typer.Argument(
                    help="Photos or folders of photos (JPEG, PNG, …).", show_default=False)] = None,
                index: Annotated[Optional[int], typer.Option(
                    "--index", "-i", help=f"Predict a stored image instead. {RUN_INDEX_HELP}")] = None,
                split: SplitOpt = "test", top: TopOpt = 3,
                explain: Annotated[bool, typer.Option(
                    help="Write a PNG per photo: its steps (photo, object found, what was dropped, 28×28), "
                         "the probabilities and why.")] = False,
                labels: Annotated[Optional[Path], typer.Option(
                    metavar="FILE", help="CSV with columns file,label (class index or name): report accuracy.")] = None,
                out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Predict your own photos, or a stored image, with a run's saved model.

    Photos are converted like the training data (orientation, grayscale, polarity,
    background and shadows, contrast, the object apart from stray marks, tilt, crop,
    centring); what was dropped or undone is printed under the photo, and --explain
    draws the steps. A bad file gets a one-line error and the
    others are still predicted; the exit code is 2 if any file failed.

    Examples:

    ```
    mnistlab predict my-run shirt.jpg
    mnistlab predict my-run photos/ --labels photos/labels.csv --explain
    mnistlab predict mnistlab-out/runs/my-run digit.png --top 5 --json
    mnistlab predict my-run --index 0
    ```
    """
    from .. import api

    if index is not None and (files or labels or explain):
        raise ParameterError("index", "predicts a stored image: give it without photos, --labels or --explain")
    loaded = api.load_run(run, out=out)
    if index is not None:
        _predict_stored(loaded, index, split, top, as_json)
        return
    if not files:
        raise ParameterError(None, "give photo files or folders, or --index for a stored image")
    from ..inference.batch import predict_files

    answer = predict_files(loaded.path, files, top=top, labels=labels,
                           explain_dir=out / "predict" / loaded.name if explain else None)
    for result in answer["results"]:  # on stderr under --json too, as every command's errors
        for problem in ("error", "explanation_error"):  # the library's message names the file already
            if problem in result:
                err_console.print(Text(result[problem], style="red"), highlight=False, soft_wrap=True)
    if as_json:
        emit_json(answer)
    else:
        for result in answer["results"]:
            if "error" in result:
                continue
            probs = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in result["top"])
            truth = f"  (true: {result['true_class']})" if result.get("true_class") else ""
            console.print(Text.assemble(f"{printable(result['file'])}: ", (result["class"], "bold"),
                                        f"{truth}  [{probs}]"), highlight=False, soft_wrap=True)
            for note in result["notes"]:
                console.print(f"  {note}", highlight=False, soft_wrap=True)
            if result.get("explanation"):
                console.print(f"  explanation: {printable(result['explanation'])}", highlight=False, soft_wrap=True)
        if "accuracy" in answer:  # labels were given
            _print_accuracy(answer)
    if answer["n_failed"] or answer["n_explanations_failed"]:
        raise typer.Exit(2)  # bad input or a full disk, as everywhere (1 is a bug's)


def _print_accuracy(answer: dict) -> None:
    """The accuracy on the labelled photos and their confusion matrix, or why there is none; and the labels
    that counted for nothing (rows naming no photo given, labelled photos that could not be predicted)."""
    left_out = [f"{n} {what}" for n, what in ((answer["n_labels_unmatched"], "label rows named no photo given"),
                                              (answer["n_labelled_failed"], "labelled photos failed")) if n]
    if left_out:
        console.print("not counted: " + "; ".join(left_out))
    if answer["accuracy"] is None:
        console.print("accuracy: none of the photos predicted has a label")
        return
    console.print(f"accuracy on {answer['n_labelled']} labelled photos: {answer['accuracy']:.3f}")
    table = Table(title="Confusion matrix (rows: true class)")
    table.add_column("")
    for name in answer["classes"]:
        table.add_column(name, justify="right")
    for name, row in zip(answer["classes"], answer["confusion_matrix"]):
        table.add_row(name, *map(str, row))
    console.print(table)


def _predict_stored(run, index: int, split: str, top: int, as_json: bool) -> None:
    image, label = stored_image(run.dataset, index, split)
    prediction = run.predict(image)
    answer = {"index": index, "split": split, "true_class": run.classes[label],
              "class": prediction.class_name, "label": prediction.label, "top": prediction.top(top)}
    if as_json:
        emit_json(answer)
        return
    console.print(Text.assemble(f"{split}[{index}]: predicted ", (answer["class"], "bold"),
                                f" (true: {answer['true_class']})"))
    print_top(answer["top"])


@app.command("explain")
def explain_cmd(run: RunArg, index: RunIndexOpt, split: SplitOpt = "test", top: TopOpt = 3,
                out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Why a run's model predicts what it does for one image: probabilities and per-pixel maps.

    Examples:

    ```
    mnistlab explain my-run --index 0
    mnistlab explain mnistlab-out/runs/my-run --index 7 --out /tmp/why
    ```
    """
    from .. import api, plots
    from .._io import atomic_write_all
    from ..experiments.figures import explanation_figures

    loaded = api.load_run(run, out=out)
    image, label = stored_image(loaded.dataset, index, split)
    prediction = loaded.predict(image)
    pictures = {out / "explain" / f"{loaded.name}-{split}-{index}_{kind}.png": plots.png_bytes(fig)
                for kind, fig in explanation_figures(prediction, true_label=label).items()}
    atomic_write_all(pictures)  # both or neither
    paths = list(pictures)
    if as_json:
        emit_json({"index": index, "split": split, "true_class": loaded.classes[label], "class": prediction.class_name,
                   "label": prediction.label, "top": prediction.top(top), "files": [str(p) for p in paths]})
        return
    console.print(f"{split}[{index}] (true: {loaded.classes[label]}):")
    print_top(prediction.top(top))
    for p in paths:
        console.print(str(p))
