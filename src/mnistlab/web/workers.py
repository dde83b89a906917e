"""Predictions for the web API, computed in worker processes.

A prediction is mostly Python and NumPy that hold the GIL (decoding, the photo
conversion, the model), so threads of the server process would share one core.
A pool of processes, one per core by default, takes each photo as a process
frees up; the server process only speaks HTTP. Each worker keeps the models it
has loaded and reloads one when its run's model file changes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from ..html import evidence_rgb, png_data_uri
from ..inference.predictor import Predictor
from ..models.serialization import ARRAYS_FILE


def default_processes() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class WorkerStopped(RuntimeError):
    """The worker process computing a prediction died (the pool has been replaced)."""


class PhotoWorkers:
    """A process pool for ``answer``: started on first use (or by ``start``), replaced if a worker dies."""

    def __init__(self, processes: int | None = None):
        self.processes = processes or default_processes()
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

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

    async def answer(self, run_dir: Path, data: bytes) -> dict:
        """``answer(run_dir, data)`` in a worker process."""
        pool = self._current()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, answer, run_dir, data)
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise WorkerStopped("the process computing this prediction stopped; the request can be retried") from None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _start_worker() -> None:
    # Each worker answers one request at a time, a core each: library threads would only compete.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # BLAS, already loaded
    os.environ["OMP_NUM_THREADS"] = "1"  # PyTorch reads it when a CNN run first loads it


def _ready() -> None:
    """Nothing: a task that makes the pool start a worker (which imports this module)."""


# --- in the worker processes -----------------------------------------------------

_predictors: dict[Path, tuple[float, Predictor]] = {}


def _predictor(run_dir: Path) -> Predictor:
    stamp = (run_dir / ARRAYS_FILE).stat().st_mtime
    cached = _predictors.get(run_dir)
    if cached is None or cached[0] != stamp:
        cached = _predictors[run_dir] = (stamp, Predictor(run_dir))
    return cached[1]


def explanation_png(contributions: np.ndarray, label: int) -> str:
    """The predicted class's contribution map as a red/blue PNG (blue: for, red: against)."""
    return png_data_uri(evidence_rgb(contributions[label].reshape(28, 28)))


def answer(run_dir: Path, data: bytes) -> dict:
    """The run's prediction for a photo, as /api/predict returns it (plain JSON types).

    Raises PhotoError for an unusable photo and ModelFileError for a bad model file.
    """
    predictor = _predictor(run_dir)
    prediction = predictor.predict_photo(data)
    prepared = prediction.prepared
    return {
        "run": predictor.name, "class": prediction.class_name, "label": prediction.label,
        "probabilities": {c: float(p) for c, p in zip(predictor.classes, prediction.probabilities)},
        "top": prediction.top(3),
        "image": prediction.pixels.tolist(),
        "image_png": png_data_uri(prediction.pixels),
        "steps": [{"title": "your photo (grayscale)", "png": png_data_uri(np.round(prepared.gray * 255))},
                  {"title": "object found (green; red: dropped)", "png": png_data_uri(prepared.found())},
                  {"title": "what the model saw (28×28)", "png": png_data_uri(prediction.pixels)}],
        "notes": prediction.notes,
        "explanation_png": None if prediction.contributions is None
        else explanation_png(prediction.contributions, prediction.label),
    }
