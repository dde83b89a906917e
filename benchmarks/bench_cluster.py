"""A sweep with `--cluster local` (2 worker processes) against the same sweep run sequentially.

The sweep: logistic regression over 8 values of C on 20,000 Fashion-MNIST
training images (each fit a few seconds). Both runs are timed end to end,
start-up of the LocalCluster included, and must give the same validation
accuracies. On this 2-core machine the ideal speed-up is 2×. ``--quick``
sweeps 2 values of C on 2,000 images and prints, without writing BENCHMARKS.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import mnistlab as ml  # noqa: E402

GRID = {"C": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]}
TRAIN_SIZE = 20_000


def timed_sweep(out: Path, grid: dict, train_size: int, **kwargs) -> tuple[float, dict]:
    start = time.perf_counter()
    sweep = ml.sweep("logreg", grid, train_size=train_size, out=out, progress=False, **kwargs)
    return time.perf_counter() - start, {r["C"]: r["val_accuracy"] for r in sweep.results}


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="2 values of C, 2,000 images; print, do not write")
    args = parser.parse_args()
    grid, train_size = ({"C": GRID["C"][:2]}, 2000) if args.quick else (GRID, TRAIN_SIZE)
    with tempfile.TemporaryDirectory() as tmp:
        ml.load_dataset("fashion-mnist")  # the decoded-data cache is warm for both
        sequential, expected = timed_sweep(Path(tmp), grid, train_size, name="sequential")
        clustered, got = timed_sweep(Path(tmp), grid, train_size, name="local-cluster", cluster="local")
    same = got == expected
    body = (f"`ml.sweep('logreg', C over {len(grid['C'])} values, train_size={train_size})`, end to end. "
            f"Sequential (this process, its BLAS on {os.cpu_count()} threads): {sequential:.1f} s. "
            f"`cluster='local'` ({os.cpu_count()} single-threaded worker processes, cluster start-up included): "
            f"{clustered:.1f} s, a speed-up of {sequential / clustered:.2f}×. Validation accuracies identical: "
            f"{'yes' if same else '**no**'}.")
    print(body)
    if why := common.partial_run(parser, args):
        print(why)
        return
    common.write_section("bench_cluster", "Sweeps on a local Dask cluster", body)


if __name__ == "__main__":
    main()
