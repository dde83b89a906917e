"""`mnistlab serve`: the web page and its JSON API."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Optional

import typer

from .._system import one_per_core
from ..errors import MnistlabError
from .common import OUT, OutOpt, app, console, warn_if_no_out


@app.command("serve")
def serve_cmd(run: Annotated[Optional[str], typer.Option(
                  help="Run (name or folder) that predicts by default (default: newest).")] = None,
              host: Annotated[str, typer.Option(
                  help="Address to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
              port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
              # the upper limit said as the server enforces it (its message, for 0 too): the help said x>=1
              workers: Annotated[Optional[int], typer.Option(
                  help=f"Processes that compute predictions: {one_per_core()} this server may use (default: one "
                       "per core).")] = None,
              engine: Annotated[str, typer.Option(
                  help="What predicts: native (the run's own model, with explanation maps) or onnx (its ONNX "
                       "export under onnxruntime, exported on first use: lighter, faster-starting workers, "
                       "no explanation maps).")] = "native",
              allow_host: Annotated[Optional[list[str]], typer.Option(
                  help="A name the page is also reached by, through a reverse proxy (repeatable): requests naming "
                       "another host, and forms posted from another site, are refused (403).")] = None,
              out: OutOpt = OUT) -> None:
    """Start the web page: draw or upload an image, see the prediction and why; browse and compare runs.

    Examples:

    ```
    mnistlab serve
    mnistlab serve --run my-run --port 8080
    mnistlab serve --workers 1      # one process predicts: least memory
    mnistlab serve --engine onnx    # onnxruntime predicts: no PyTorch or scikit-learn in the workers
    mnistlab serve --allow-host mnist.example.com   # behind a reverse proxy of that name
    ```
    """
    import uvicorn

    from ..web.app import allowed_host, create_app, is_loopback

    for name in allow_host or ():  # before anything starts
        allowed_host(name)
    if not host.strip():  # the socket would take it as every address of the machine
        raise MnistlabError("--host is empty: give an address (127.0.0.1 keeps the server on this machine, 0.0.0.0 "
                            "opens it to the network)")
    listening = _listening_socket(host, port)  # before anything starts
    # an unknown --run or --engine fails here, before serving (and --engine onnx exports --run's model if need be)
    app_ = create_app(out, default_run=run, workers=workers, engine=engine, loopback=is_loopback(host),
                      hosts=frozenset(allow_host or ()))
    if run is None or not Path(run).is_dir():  # a --run folder elsewhere is served: it is not "no runs"
        warn_if_no_out(out)  # as `runs list` does: the page alone showed no runs, as if none were trained there
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"  # an IPv6 address in brackets, as URLs have it
    console.print(f"mnistlab web page on {url}/  (API docs: {url}/docs; Ctrl-C stops)")
    uvicorn.Server(uvicorn.Config(app_, log_level="warning")).run(sockets=[listening])


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, listening; a port in use or an address not of this machine is one line."""
    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's: a restart rebinds at once
        listening.bind((host, port))
        listening.listen(2048)  # uvicorn's backlog
    except OSError as exc:
        listening.close()
        raise MnistlabError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return listening
