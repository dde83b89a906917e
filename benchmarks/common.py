"""Shared by the benchmark scripts: machine description, timing, BENCHMARKS.md sections.

Each script owns one section of BENCHMARKS.md, delimited by
``<!-- bench:NAME -->`` … ``<!-- /bench:NAME -->``, and rewrites only that
section, so scripts can be run one at a time or all together.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import mnistlab
from mnistlab._io import atomic_write_text

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
# Held while a script reads, changes and writes BENCHMARKS.md: scripts run side by side would each
# write back the file as they read it, and one's section would be lost.
BENCHMARKS_LOCK = BENCHMARKS_MD.with_name("BENCHMARKS.md.lock")
# MNIST as the tests have it (the official test set and a 5,000-image training subset), beside the checkout
MNIST_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
MNIST_DIR_ENV = "MNISTLAB_MNIST_DIR"
HEADER = (
    "# Benchmarks\n\n"
    "Every number below is written by a script in `benchmarks/` (`make bench` runs them all),\n"
    "which runs our code and its anchor in the same process. Machines are shared and noisy:\n"
    "times are medians of repeated runs, and ratios are taken within one run.\n"
)


def machine() -> str:
    """One line: CPU (model name, family and model numbers, vector features), cores, OS, Python and key
    library versions."""
    fields = {}  # the first processor's /proc/cpuinfo fields
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    cpu = fields.get("model name") or platform.processor() or platform.machine()
    # A name such as "AMD EPYC" covers generations as far apart as Zen 2 (family 23) and Zen 4 (25, 17).
    if "cpu family" in fields and "model" in fields:
        cpu += f", family {fields['cpu family']} model {fields['model']}"
    flags = set(fields.get("flags", "").split())
    vector = [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX-512 BF16"),
                                      ("amx_bf16", "AMX-BF16")) if flag in flags] or ["no AVX2"]
    versions = []
    for dist in ("numpy", "scikit-learn", "torch"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    versions.append(f"mnistlab {mnistlab.__version__}")  # the code that ran, not an install's metadata
    return (f"{cpu} ({', '.join(vector)}), {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, " + ", ".join(versions))


def parser(doc: str) -> argparse.ArgumentParser:
    """A script's parser, its docstring the help. Every script parses its options before any work: a
    misspelled option or ``--help`` would otherwise run the whole benchmark and replace its section."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_mnist_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mnist-dir", type=Path,
                        help=f"MNIST's folder (default: ${MNIST_DIR_ENV}, else {MNIST_DIR})")


def mnist_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """The MNIST folder ``--mnist-dir``, ``$MNISTLAB_MNIST_DIR`` or the default names, loaded once before
    any work (which checks its files are MNIST's and whole, and leaves them decoded in the cache for the
    script): one found wrong half-way cost the work before it."""
    from mnistlab.data.datasets import load_dataset
    from mnistlab.errors import MnistlabError

    folder = args.mnist_dir or Path(os.environ.get(MNIST_DIR_ENV) or MNIST_DIR)
    try:
        load_dataset("mnist", data_dir=folder, download=False)
    except MnistlabError as exc:
        parser.error(f"MNIST (--mnist-dir, ${MNIST_DIR_ENV}): {exc}")
    return folder


def names(parser: argparse.ArgumentParser, option: str, text: str, allowed) -> list[str]:
    """The comma-separated ``text`` of ``option`` as a list, each among ``allowed``; else one error line
    before any work (a misspelled one was found after the others had run, or silently left out)."""
    given = [name.strip() for name in text.split(",")]
    if unknown := [name for name in given if name not in allowed]:
        parser.error(f"{option}: no {', '.join(map(repr, unknown))} (there are {', '.join(allowed)})")
    return given


def partial_run(parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str) -> str | None:
    """Why ``args`` ask for less than the full run (``--quick``, or options among ``names`` other than
    their defaults), or None: such a run prints its results but leaves the full run's section alone."""
    changed = ["--quick"] if getattr(args, "quick", False) else []
    changed += [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) != parser.get_default(name)]
    return f"{', '.join(changed)}: not the full run, BENCHMARKS.md left as it is" if changed else None


def avx2_only() -> dict[str, str]:
    """Environment variables that cap each library's kernels at AVX2, float32 (no AVX-512, no bfloat16,
    no AMX) on any x86 CPU, as on most laptops and cloud VMs: PyTorch's own kernels, oneDNN's (its
    convolutions), MKL's (PyTorch's float32 matrix products), OpenBLAS's (numpy's and scipy's matrix
    products) and numpy's own loops."""
    # numpy objects to disabling what it has no kernels for: ask it which targets its functions
    # dispatch to on this CPU.
    from numpy.lib.introspect import opt_func_info

    targets = {target for loops in opt_func_info().values() for loop in loops.values()
               for target in [loop["current"], *loop["available"].split()]}
    beyond_avx2 = sorted(t for t in targets if t == "X86_V4" or t.startswith("AVX512"))
    return {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
            "OPENBLAS_CORETYPE": "Haswell", "NPY_DISABLE_CPU_FEATURES": " ".join(beyond_avx2)}


def restart_avx2_only() -> str:
    """Make this script run with ``avx2_only()``: each library reads its variable once, when it loads,
    so the script starts again with them set unless they are set already. Returns them as one line."""
    env = avx2_only()
    if any(os.environ.get(name) != value for name, value in env.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **env})
    return ", ".join(f"{name}={value}" for name, value in env.items())


def cnn_settings(params: dict) -> dict:
    """The settings a CNN with ``params`` trains with: its preset (default "fast") resolved, then the overrides."""
    from mnistlab.models.torch.cnn import PRESETS  # PyTorch: only for the scripts that train a CNN

    return {**PRESETS[params.get("preset", "fast")], **{k: v for k, v in params.items() if k != "preset"}}


def timed(fn, repeats: int = 3):
    """Run ``fn`` ``repeats`` times; return (median seconds, all seconds, last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def now() -> str:
    """The time a section says it was run at."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write_section(name: str, title: str, body: str, script: str | None = None, *,
                  stamp: str | None = None, on: str | None = None) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md, written by ``script`` (default: ``name``.py).

    ``stamp`` and ``on`` say when and on what the numbers were measured (default: now, here), for a
    section built from results measured on another machine."""
    block = (f"<!-- bench:{name} -->\n## {title}\n\n"
             f"Run {stamp or now()} by `benchmarks/{script or name + '.py'}` on: {on or machine()}\n\n"
             f"{body.strip()}\n<!-- /bench:{name} -->")
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    with open(BENCHMARKS_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed, by the process's end at the latest
        text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
        text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
        atomic_write_text(BENCHMARKS_MD, text)  # a temporary file of its own: never a half-written BENCHMARKS.md


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
