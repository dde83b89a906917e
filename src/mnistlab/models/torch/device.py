"""Where and how reproducibly the PyTorch families compute: the device, bfloat16, CPU threads, seeds,
determinism."""

from __future__ import annotations

import os
import statistics
import time
from contextlib import contextmanager

import numpy as np
import torch

from ..._system import usable_cores
from ...errors import ParameterError, one_line

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """"auto" is CUDA when present, else the CPU; asking for absent CUDA is a ``ParameterError``."""
    if name not in DEVICES:
        raise ParameterError("device", f"must be one of {', '.join(map(repr, DEVICES))}; got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", "'cuda' but PyTorch sees no CUDA GPU; use 'auto' or 'cpu'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@contextmanager
def allocation_failures_as_memory_error():
    """PyTorch's failed allocations (a RuntimeError on the CPU, OutOfMemoryError on a GPU) raised as Python's
    MemoryError: too little memory for what was asked (a layer of 10^8 channels), which shells say as such."""
    try:
        yield
    except RuntimeError as exc:
        if isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc):
            raise MemoryError(one_line(exc)) from None
        raise


def computes_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` has bfloat16 arithmetic in hardware (a recent GPU; a CPU with
    AVX-512 BF16 or AMX); elsewhere bfloat16 is emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def free_cores(readings: int = 1) -> int:
    """This process's cores that no other task is running on now (at least 1).

    On a machine where something else is busy, PyTorch's threads share a core with it and
    each step waits for the slowest of them: beside one busy process, two threads on two
    cores are slower than one (benchmarks/bench_threads.py). Linux counts the tasks running
    now in /proc/stat (procs_running), less this process's own running threads: PyTorch's
    OpenMP threads spin for a while after each parallel region, and were counted as a busy
    neighbour right after a fit or a prediction until 2026-12-05. ``readings`` > 1 takes
    the median of readings 5 ms apart, so that a moment's blip does not decide. Elsewhere: all
    cores.
    """
    cores = usable_cores()
    counts = []
    for reading in range(readings):
        if reading:
            time.sleep(0.005)
        try:
            own = _own_running_threads()  # first: a thread that stops meanwhile is not counted busy
            with open("/proc/stat", "rb") as stat:
                line = next(line for line in stat if line.startswith(b"procs_running"))
        except (OSError, StopIteration):
            return cores
        counts.append(int(line.split()[1]) - own)
    return max(1, cores - round(statistics.median(counts)))


def _own_running_threads() -> int:
    """This process's threads that are running now (the calling one included), from /proc/self/task."""
    running = 0
    for task in os.scandir("/proc/self/task"):
        try:
            with open(os.path.join(task.path, "stat"), "rb") as stat:
                fields = stat.read()
        except OSError:  # the thread has ended
            continue
        # the state is the field after the command, which is in parentheses and may hold spaces
        running += fields[fields.rindex(b")") + 2:][:1] == b"R"
    return max(1, running)


def available_threads(readings: int = 1) -> int:
    """PyTorch's CPU threads (its default, or what OMP_NUM_THREADS or the caller set) less those
    whose cores other processes are busy on now (``free_cores``)."""
    threads = torch.get_num_threads()
    return 1 if threads == 1 else min(threads, free_cores(readings))  # one thread: nothing to read


@contextmanager
def cpu_threads(count: int):
    """PyTorch's CPU threads set to ``count`` for the duration."""
    saved = torch.get_num_threads()
    if count != saved:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count != saved:
            torch.set_num_threads(saved)


@contextmanager
def prediction_threads():
    """PyTorch's CPU threads for one prediction: ``available_threads`` now. The count can change
    the last bits of the results (how sums are split), not more."""
    with cpu_threads(available_threads()):
        yield


def derived_seed(seed: int, purpose: int, epoch: int = 0) -> int:
    """An independent 63-bit seed for one purpose (and epoch) of a run."""
    return int(np.random.SeedSequence([seed, purpose, epoch]).generate_state(2, np.uint64)[0] >> 1)


@contextmanager
def reproducible():
    """cuDNN's deterministic kernels for the duration, so that a seed fixes the result on a
    GPU as it does on the CPU (where this changes nothing)."""
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


@contextmanager
def seeded(seed: int, device: torch.device):
    """Seed PyTorch's global generator (used by weight init and dropout) without
    disturbing the caller's random state."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
