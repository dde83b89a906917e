"""Start-up of the command line: `mnistlab --help` and `mnistlab runs list` (target: each under 0.5 s).

Each command runs as a user runs it, a fresh process, 5 times; the median is
reported. The anchor is the interpreter itself (`python -c pass`), the floor
no command can beat. `runs list` reads an output folder holding 20 runs. ``--quick`` runs each
command once and prints, without writing BENCHMARKS.md.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from mnistlab.experiments.pipeline import DataChoice, train  # noqa: E402

REPEATS = 5
TARGET = 0.5
MNISTLAB = [sys.executable, "-m", "mnistlab"]


def median_seconds(command: list[str], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="each command once; print, do not write")
    args = parser.parse_args()
    repeats = 1 if args.quick else REPEATS
    out = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        train("logreg", {}, DataChoice(train_size=500, test_size=100), out, name="run-00")
        for i in range(1, 20):  # copies: listing reads each run's config and metrics
            shutil.copytree(out / "runs" / "run-00", out / "runs" / f"run-{i:02d}")
        rows = []
        for label, command in (("python -c pass (anchor: interpreter start-up)", [sys.executable, "-c", "pass"]),
                               ("mnistlab --help", [*MNISTLAB, "--help"]),
                               ("mnistlab runs list (20 runs)", [*MNISTLAB, "runs", "list", "--out", str(out)])):
            median, times = median_seconds(command, repeats)
            verdict = "" if "anchor" in label else ("met" if median < TARGET else "NOT met")
            rows.append([f"`{label}`", f"{median:.3f}", ", ".join(f"{t:.3f}" for t in times), verdict])
            print(label, f"{median:.3f} s")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    body = (f"Each command in a fresh process, {repeats} times; median in seconds. "
            f"Target: under {TARGET} s for `--help` and `runs list`.\n\n"
            + common.markdown_table(["command", "median s", "all runs s", f"< {TARGET} s"], rows))
    if why := common.partial_run(parser, args):
        print(body, why, sep="\n\n")
        return
    common.write_section("bench_cli", "Command-line start-up", body)


if __name__ == "__main__":
    main()
