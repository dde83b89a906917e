"""What this machine gives the process, at the bottom of the package: its cores, and how its C
allocator hands back memory."""

from __future__ import annotations

import ctypes
import os

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else all)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def keep_freed_memory(mapped_from: int = 16 << 20, kept: int = 64 << 20) -> bool:
    """Make glibc's malloc keep the memory a process frees, for the next request to reuse: blocks
    under ``mapped_from`` bytes come from the heap, and up to ``kept`` bytes free at its top stay
    there. False where the C library has no ``mallopt`` (not glibc): nothing changed.

    For a process that does the same work again and again (a web worker). By default glibc gives
    back most of a photo's working memory after each request, and the next request touches it
    afresh: ~1,600 page faults per photo in a worker, ~4 ms of its 26 ms on this project's VM
    (docs/design/web.md); kept, next to none.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already has loaded
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, mapped_from)) and bool(mallopt(M_TRIM_THRESHOLD, kept))
