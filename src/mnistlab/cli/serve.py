"""`mnistlab serve`: the web page and its JSON API."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .common import OUT, OutOpt, app, console


@app.command("serve")
def serve_cmd(run: Annotated[Optional[str], typer.Option(
                  help="Run (name or folder) that predicts by default (default: newest).")] = None,
              host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
              port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
              workers: Annotated[Optional[int], typer.Option(min=1, help="Processes that compute predictions "
                                                             "(default: one per CPU core).")] = None,
              engine: Annotated[str, typer.Option(
                  help="What predicts: native (the run's own model, with explanation maps) or onnx (its ONNX "
                       "export under onnxruntime, exported on first use: lighter, faster-starting workers, "
                       "no explanation maps).")] = "native",
              out: OutOpt = OUT) -> None:
    """Start the web page: draw or upload an image, see the prediction and why; browse and compare runs.

    Examples:

    ```
    mnistlab serve
    mnistlab serve --run my-run --port 8080
    mnistlab serve --workers 1      # one process predicts: least memory
    mnistlab serve --engine onnx    # onnxruntime predicts: no PyTorch or scikit-learn in the workers
    ```
    """
    import uvicorn

    from ..web.app import create_app

    # an unknown --run or --engine fails here, before serving (and --engine onnx exports --run's model if need be)
    app_ = create_app(out, default_run=run, workers=workers, engine=engine)
    console.print(f"mnistlab web page on http://{host}:{port}/  (API docs: http://{host}:{port}/docs; Ctrl-C stops)")
    uvicorn.run(app_, host=host, port=port, log_level="warning")
