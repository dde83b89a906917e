"""Shared by the benchmark scripts: machine description, timing, BENCHMARKS.md sections.

Each script owns one section of BENCHMARKS.md, delimited by
``<!-- bench:NAME -->`` … ``<!-- /bench:NAME -->``, and rewrites only that
section, so scripts can be run one at a time or all together.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\n"
    "Every number below is written by a script in `benchmarks/` (`make bench` runs them all),\n"
    "which runs our code and its anchor in the same process. Machines are shared and noisy:\n"
    "times are medians of repeated runs, and ratios are taken within one run.\n"
)


def machine() -> str:
    """One line: CPU, cores, OS, Python and key library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    vector = [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX-512 BF16"),
                                      ("amx_bf16", "AMX-BF16")) if flag in flags] or ["no AVX2"]
    versions = []
    for dist in ("numpy", "scikit-learn", "torch", "mnistlab"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return (f"{cpu} ({', '.join(vector)}), {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, " + ", ".join(versions))


def timed(fn, repeats: int = 3):
    """Run ``fn`` ``repeats`` times; return (median seconds, all seconds, last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def write_section(name: str, title: str, body: str, script: str | None = None) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md, written by ``script`` (default: ``name``.py)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (f"<!-- bench:{name} -->\n## {title}\n\n"
             f"Run {stamp} by `benchmarks/{script or name + '.py'}` on: {machine()}\n\n"
             f"{body.strip()}\n<!-- /bench:{name} -->")
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    tmp = BENCHMARKS_MD.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, BENCHMARKS_MD)


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
