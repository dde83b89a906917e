"""Dataset load times: cold (decode the .gz files) and warm (memory-mapped cache).

Anchor: the notebooks' way, gzip + np.frombuffer on the same files, in the same run.
Targets: warm load of Fashion-MNIST under 0.1 s, cold load under 1 s.
``--quick`` loads once each way and prints, without writing BENCHMARKS.md.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from mnistlab.data.datasets import load_dataset, locate  # noqa: E402 - the data layer itself, which draws no bar


def notebook_load(files):
    arrays = []
    for part, path in files.items():
        with gzip.open(path) as f:
            data = f.read()
        offset = 16 if part.endswith("images") else 8
        arrays.append(np.frombuffer(data, np.uint8, offset=offset))
    return arrays


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="one load each way; print, do not write")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    files = locate("fashion-mnist")
    rows = []
    anchor, _, _ = common.timed(lambda: notebook_load(files), repeats)
    with tempfile.TemporaryDirectory() as tmp:
        caches = iter(range(repeats))

        def cold():
            os.environ["MNISTLAB_CACHE"] = f"{tmp}/{next(caches)}"  # an empty cache each time
            return load_dataset("fashion-mnist")

        cold_s, _, _ = common.timed(cold, repeats)
        warm_s, _, ds = common.timed(lambda: load_dataset("fashion-mnist"), repeats)
    assert ds.official
    rows.append(["gzip + np.frombuffer (notebook anchor, no checks)", f"{anchor:.3f}", "—"])
    rows.append(["mnistlab cold load (decode, validate, SHA-256, write cache)", f"{cold_s:.3f}", "< 1 s"])
    rows.append(["mnistlab warm load (memory-mapped cache)", f"{warm_s:.4f}", "< 0.1 s"])
    body = (f"Fashion-MNIST from `{files['train_images'].parent}`, medians of {repeats} runs.\n\n"
            + common.markdown_table(["load", "median seconds", "target"], rows))
    print(body)
    if why := common.partial_run(parser, args):
        print(why)
        return
    common.write_section("bench_data", "Loading Fashion-MNIST", body)


if __name__ == "__main__":
    main()
