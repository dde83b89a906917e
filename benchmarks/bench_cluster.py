"""A sweep with `--cluster local` (2 worker processes) against the same sweep run sequentially.

The sweep: logistic regression over 8 values of C on 20,000 Fashion-MNIST
training images (each fit a few seconds). Both runs are timed end to end,
start-up of the LocalCluster included, and must give the same validation
accuracies. On this 2-core machine the ideal speed-up is 2×.
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


def timed_sweep(out: Path, **kwargs) -> tuple[float, dict]:
    start = time.perf_counter()
    sweep = ml.sweep("logreg", GRID, train_size=TRAIN_SIZE, out=out, progress=False, **kwargs)
    return time.perf_counter() - start, {r["C"]: r["val_accuracy"] for r in sweep.results}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ml.load_dataset("fashion-mnist")  # the decoded-data cache is warm for both
        sequential, expected = timed_sweep(Path(tmp), name="sequential")
        clustered, got = timed_sweep(Path(tmp), name="local-cluster", cluster="local")
    same = got == expected
    body = (f"`ml.sweep('logreg', C over {len(GRID['C'])} values, train_size={TRAIN_SIZE})`, end to end. "
            f"Sequential (this process, its BLAS on {os.cpu_count()} threads): {sequential:.1f} s. "
            f"`cluster='local'` ({os.cpu_count()} single-threaded worker processes, cluster start-up included): "
            f"{clustered:.1f} s, a speed-up of {sequential / clustered:.2f}×. Validation accuracies identical: "
            f"{'yes' if same else '**no**'}.")
    common.write_section("bench_cluster", "Sweeps on a local Dask cluster", body)
    print(body)


if __name__ == "__main__":
    main()
