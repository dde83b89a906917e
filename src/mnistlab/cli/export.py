"""`mnistlab export`: a run's model as a file other runtimes read (ONNX)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.text import Text

from ..errors import shown_path
from .common import OUT, JsonOpt, OutOpt, RunArg, app, console, emit_json, err_console


@app.command("export")
def export_cmd(run: RunArg,
               file_format: Annotated[str, typer.Option("--format", help="File format: onnx.")] = "onnx",
               output: Annotated[Optional[Path], typer.Option(
                   "--output", "-o", metavar="FILE",
                   help="File to write (default: model.onnx in the run's folder).")] = None,
               check: Annotated[bool, typer.Option(
                   help="First check the export against the model on the run's test images.")] = True,
               out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Write the run's model as an ONNX file for onnxruntime (also in browsers and on phones).

    The graph takes uint8 pixels N×1×28×28 (0–255, object bright on dark: the dataset's images, or a
    photo converted by mnistlab) and gives the probabilities of the run's classes; the class names,
    the dataset and its photo convention are in the file's metadata. With --check (the default) the
    file is written only if, under onnxruntime, it predicts the model's class (or a tie) for every test image
    and probabilities within 1e-4 of the model's, summing to 1 (so too for a few probe images).

    Examples:

    ```
    mnistlab export my-run
    mnistlab export my-run --output shirt-classifier.onnx
    mnistlab export mnistlab-out/runs/my-run --no-check --json
    ```
    """
    from .. import api
    from ..inference.onnx_file import read_onnx

    loaded = api.load_run(run, out=out)
    with err_console.status(f"exporting {loaded.name}" + (" and checking it on its test images" if check else "")):
        path = loaded.export(output, format=file_format, check=check)
    exported = read_onnx(path)  # as any reader will: checked, and its metadata
    info = {"path": str(path), "bytes": path.stat().st_size, "format": file_format, "run": loaded.name,
            "family": exported.metadata["family"], "dataset": exported.dataset, "classes": exported.classes,
            "input": exported.metadata["input"], "check": exported.metadata["check"]}
    if as_json:
        emit_json(info)
        return
    console.print(Text.assemble("wrote ", (str(shown_path(path)), "bold"), f" ({info['bytes'] / 1024:,.0f} kB): the "
                                f"{info['family']} model of {loaded.name}, {len(info['classes'])} classes of "
                                f"{info['dataset']}"), highlight=False)
    console.print(f"input {info['input']}", highlight=False)
    console.print(f"checked: {info['check']}", highlight=False)
