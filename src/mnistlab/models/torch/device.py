"""Where and how reproducibly the PyTorch families compute: the device, bfloat16, seeds, determinism."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from ...errors import ParameterError

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


def computes_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` has bfloat16 arithmetic in hardware (a recent GPU; a CPU with
    AVX-512 BF16 or AMX); elsewhere bfloat16 is emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


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
