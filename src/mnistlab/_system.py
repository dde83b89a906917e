"""What this machine gives the process, at the bottom of the package: its cores, its free memory, and how
its C allocator hands back memory."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
PR_SET_PDEATHSIG = 1  # prctl's option (linux/prctl.h)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else all)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def one_per_core() -> str:
    """The counts of one per core ``usable_cores`` allows, in words, for a limit's help and its error: "1 to 4, the
    CPU cores this process may use", or "1, the one CPU core this process may use" (a machine or affinity of one
    core had read "1 to 1")."""
    cores = usable_cores()
    return f"1 to {cores}, the CPU cores" if cores > 1 else "1, the one CPU core"


def available_memory() -> int | None:
    """The bytes this machine can give a process now without swapping (Linux's MemAvailable, in
    /proc/meminfo), or what its memory cgroup has left where that is less; None where the OS does not say."""
    available = None
    try:
        with open("/proc/meminfo", "rb") as meminfo:
            for line in meminfo:
                if line.startswith(b"MemAvailable:"):
                    available = int(line.split()[1]) * 1024  # in kB
    except (OSError, ValueError, IndexError):
        pass
    headroom = cgroup_memory_left()
    return available if headroom is None else headroom if available is None else min(available, headroom)


CGROUP = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 60  # a cgroup v1 without a limit says 2**63 less a page


def cgroup_memory_left() -> int | None:
    """The bytes this process's memory cgroup lets it have before its OOM killer acts (its limit less its
    use, of which the file cache it has not touched lately is reclaimed first, as MemAvailable counts it),
    where a limit is set: a container's (docker --memory, systemd MemoryMax) is not in MemAvailable, which
    says the whole machine's. Its own cgroup's folder first, then the hierarchy's root (a container sees its
    own cgroup there); a limit set on a cgroup between the two is not read."""
    places = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":  # cgroup v2
                v2 = ("memory.max", "memory.current", "inactive_file")
                places += [(CGROUP / path.lstrip("/"), *v2), (CGROUP, *v2)]
            elif "memory" in controllers.split(","):  # v1
                v1 = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
                places += [(CGROUP / "memory" / path.lstrip("/"), *v1), (CGROUP / "memory", *v1)]
    except (OSError, ValueError):
        return None
    for folder, limit_file, usage_file, cache_entry in places:
        try:
            limit = (folder / limit_file).read_text().strip()
            used = int((folder / usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < UNLIMITED:  # v2's "max": none
            return max(int(limit) - used + _stat_entry(folder / "memory.stat", cache_entry), 0)
    return None


def _stat_entry(path: Path, entry: str) -> int:
    """``entry``'s bytes in a cgroup's memory.stat; 0 where it is not there."""
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == entry:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


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


def ended_with_parent() -> Callable[[], None]:
    """What a child forked from this process calls first to be killed when this process ends, however it
    ends (Linux's ``prctl``; elsewhere it does nothing). For a forked helper: with its parent killed
    outright, it would go on writing into a staging folder that no one will keep, after it was swept.
    Looked up here, in the parent: loading a library in a child forked from threads is not safe."""
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError, TypeError):  # TypeError: Windows, where CDLL takes no None
        return lambda: None

    def end_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # it ended before the request was made
            os._exit(1)
    return end_with_parent


_WAITING: weakref.WeakSet[threading.Thread] = weakref.WeakSet()  # started by start_waiting_thread


def start_waiting_thread(target: Callable[[], None], name: str) -> None:
    """Start ``target`` in a daemon thread that waits on a descriptor and holds no lock while it waits: a
    child forked beside it inherits nothing held (``other_threads`` leaves it out)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    _WAITING.add(thread)
    thread.start()


def other_threads() -> int:
    """How many Python threads besides the caller's a child forked now would inherit the locks of (held by a
    notebook's or a server's threads): all but those of ``start_waiting_thread``."""
    return sum(thread is not threading.current_thread() and thread not in _WAITING for thread in threading.enumerate())
