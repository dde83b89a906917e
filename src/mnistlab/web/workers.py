"""Predictions for the web API, computed in worker processes.

A prediction is mostly Python and NumPy that hold the GIL (decoding, the photo
conversion, the model), so threads of the server process would share one core.
A pool of processes, one per core by default, takes each photo as a process
frees up; the server process only speaks HTTP. Each worker keeps the models it
has loaded and reloads one when its run's model file changes.

Two engines compute the predictions. "native": the run's own model (NumPy,
scikit-learn or PyTorch), with explanation maps. "onnx": the run's ONNX export
(``model.onnx``) under onnxruntime, probabilities only; its workers import
neither scikit-learn nor PyTorch (a CNN's take half the memory; a logistic
regression's, which import neither anyway, take more for onnxruntime). A
run that has no export yet is exported once, in a process of its own that
ends afterwards, so that those libraries never enter the server's processes
that stay.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

import numpy as np

from .._system import keep_freed_memory, one_per_core, usable_cores
from .._values import is_whole_number
from ..errors import MnistlabError, ModelFileError, ParameterError
from ..experiments.store import folder_identity
from ..html import evidence_png, jpeg_data_uri, png_data_uri
from ..inference.onnx_file import ONNX_FILE, OnnxPredictor, require_onnx
from ..inference.predictor import Predictor

ENGINES = ("native", "onnx")
T = TypeVar("T")
# An answer takes tens of milliseconds, a worker's first load of a model a few seconds; one that takes this
# long will not end (a model file whose graph loops), and its worker is stopped so the others are answered.
ANSWER_SECONDS = 60
CLOSE_SECONDS = 5  # what the workers are given to finish when the server stops, before they are killed


def default_processes() -> int:
    """One worker per core this process may use."""
    return usable_cores()


class WorkerStopped(RuntimeError):
    """The worker process computing a prediction died (the pool has been replaced)."""


class AnswerTimedOut(WorkerStopped):
    """A prediction took longer than ANSWER_SECONDS and its worker was stopped (the pool has been replaced)."""


class PhotoWorkers:
    """A process pool for ``answer`` with one of the ENGINES: started on first use (or by ``start``),
    replaced if a worker dies."""

    def __init__(self, processes: int | None = None, engine: str = "native"):
        if engine not in ENGINES:
            raise ParameterError("engine", f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
        if engine == "onnx":
            require_onnx()
        if processes is not None and not (is_whole_number(processes) and 1 <= processes <= usable_cores()):
            # each worker computes on one thread: more than the cores would only make them compete
            raise ParameterError("workers", f"must be {one_per_core()} this server may use; got {processes!r}")
        self.processes = processes or default_processes()
        self.engine = engine
        self._pool: ProcessPoolExecutor | None = None
        # one request more than the workers: a worker that finishes finds the next waiting in the pool (handing
        # it over then would leave the worker idle ~8 % of the time under load, measured)
        self._free_workers = asyncio.Semaphore(self.processes + 1)
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        # runs whose export was refused, by folder (a run trained again is another): refused again at once, as
        # each try takes seconds in a fresh process and holds up every other run's export behind it
        self._refused: dict[tuple[Path, tuple[int, int] | None], MnistlabError] = {}

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: forking a process that runs threads (the server's) can deadlock
                self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_worker)
            return self._pool

    def start(self) -> None:
        """Start every worker now, so that the first requests don't wait for them."""
        pool = self._current()
        for future in [pool.submit(_ready) for _ in range(self.processes)]:
            future.result()

    def export_missing(self, run_dir: Path) -> None:
        """With the onnx engine, export the run to ONNX unless it has been (in a process of its own)."""
        if self.engine != "onnx" or (run_dir / ONNX_FILE).is_file():
            return
        key = (run_dir, folder_identity(run_dir))
        with self._export_lock:  # one export at a time; the requests for a run being exported wait for it
            if key in self._refused:
                raise self._refused[key]
            if not (run_dir / ONNX_FILE).is_file():
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as exporter:
                    try:
                        exporter.submit(export, run_dir).result()
                    except MnistlabError as exc:
                        self._refused[key] = exc
                        raise

    async def answer(self, run_dir: Path, data: bytes) -> dict:
        """``answer(run_dir, data, engine)`` in a worker process."""
        loop = asyncio.get_running_loop()
        if self.engine == "onnx" and not (run_dir / ONNX_FILE).is_file():
            await loop.run_in_executor(None, self.export_missing, run_dir)
        # The pool is handed a request only when a worker is free for it (or is about to be), so its clock runs
        # from then, not while it waits behind others (the pool's own queue would hold them, clocks running).
        async with self._free_workers:
            pool = self._current()
            try:
                future = pool.submit(answer, run_dir, data, self.engine)
            except RuntimeError:  # broken, or shut down by another request meanwhile (BrokenProcessPool is one)
                self._replace(pool)
                raise WorkerStopped("the worker processes were being replaced; the request can be retried") from None
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), ANSWER_SECONDS)
            except BrokenProcessPool:
                self._replace(pool)
                raise WorkerStopped("the process computing this prediction stopped; the request can be retried") \
                    from None
            except TimeoutError:
                self._replace(pool)
                raise AnswerTimedOut(f"the prediction took longer than {ANSWER_SECONDS} s and was stopped") from None

    def _replace(self, pool: ProcessPoolExecutor) -> None:
        """Stop ``pool``; the next request starts a new one. The requests its other workers compute end as
        the pool breaks (WorkerStopped: send them again), not cancelled (which no handler answers)."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        _stop(pool, 0, cancel_waiting=False)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            _stop(pool, CLOSE_SECONDS, cancel_waiting=True)


def _stop(pool: ProcessPoolExecutor, seconds: float, cancel_waiting: bool) -> None:
    """Shut ``pool`` down, killing the workers still busy after ``seconds`` in all: shutdown(wait=True)
    would wait for one that never ends. ProcessPoolExecutor names its processes publicly only from Python
    3.14 (terminate_workers)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=cancel_waiting)
    end = time.monotonic() + seconds
    for process in processes:
        process.join(max(0.0, end - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1)  # reaped, not left a zombie


def _start_worker() -> None:
    # Each worker answers one request at a time, a core each: library threads would only compete.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # BLAS, already loaded
    os.environ["OMP_NUM_THREADS"] = "1"  # PyTorch reads it when a CNN run first loads it
    keep_freed_memory()  # each request reuses the last one's memory instead of faulting in fresh pages


def _ready() -> None:
    """Nothing: a task that makes the pool start a worker (which imports this module)."""


def export(run_dir: Path) -> None:
    """The run's ONNX export, checked on its test images where they are at hand (a graph that computes
    something else, as a float32 graph may where a temperature sharpens probabilities at float32's
    resolution, is an ExportError, not served); unchecked where they are not (a server without the data)."""
    from ..api import Run
    from ..data.datasets import locate
    from ..errors import DatasetError
    from ..experiments.pipeline import run_data

    run = Run(run_dir)
    data = run_data(run.config)
    try:
        locate(data.dataset, data.data_dir, download=False)  # no download: a first request would wait for it
        run.export(check=True)
    except DatasetError:  # not there, or there but not the run's (a subset it cannot draw: load_run_data)
        run.export(check=False)


# --- in the worker processes -----------------------------------------------------

_predictors: dict[tuple[Path, str], tuple[float, Predictor | OnnxPredictor]] = {}
ONNX_THREADS = 1  # as _start_worker's: one request at a time, a core each


def while_unchanged(cache: dict[Hashable, tuple[float, T]], key: Hashable, path: Path, load: Callable[[], T]) -> T:
    """``load()``, kept in ``cache`` under ``key`` while the file ``path`` keeps its modification time (a
    run trained again rewrites it); a ModelFileError where it is missing."""
    try:
        stamp = path.stat().st_mtime
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing") from None
    cached = cache.get(key)
    if cached is None or cached[0] != stamp:
        cached = cache[key] = (stamp, load())
    return cached[1]


def _predictor(run_dir: Path, engine: str) -> Predictor | OnnxPredictor:
    """The run's predictor for ``engine``, loaded again when the file it predicts with changes."""
    if engine == "onnx":
        path, load = run_dir / ONNX_FILE, lambda: OnnxPredictor(run_dir, threads=ONNX_THREADS)
    else:
        from ..models.serialization import ARRAYS_FILE  # the models, and scikit-learn, only for this engine

        path, load = run_dir / ARRAYS_FILE, lambda: Predictor(run_dir)
    return while_unchanged(_predictors, (run_dir, engine), path, load)


def answer(run_dir: Path, data: bytes, engine: str = "native") -> dict:
    """The run's prediction for a photo with ``engine``, as /api/predict returns it (plain JSON types).

    Raises PhotoError for an unusable photo and ModelFileError for a bad model file.
    """
    predictor = _predictor(run_dir, engine)
    prediction = predictor.predict_photo(data)
    prepared = prediction.prepared
    model_input = png_data_uri(prediction.pixels)
    return {
        "run": predictor.name, "created": predictor.created, "class": prediction.class_name, "label": prediction.label,
        "probabilities": {c: float(p) for c, p in zip(predictor.classes, prediction.probabilities)},
        "top": prediction.top(3),
        "image": prediction.pixels.tolist(),
        "image_png": model_input,
        "steps": [{"title": "your photo (grayscale)", "image": jpeg_data_uri(np.round(prepared.gray * 255))},
                  {"title": "object found (green; red: dropped)", "image": jpeg_data_uri(prepared.found())},
                  {"title": "what the model saw (28×28)", "image": model_input}],
        "notes": prediction.notes,
        "explanation_png": None if prediction.evidence is None else evidence_png(prediction.evidence),
    }
