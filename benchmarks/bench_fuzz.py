"""Fuzzing at length, and the memory each "bomb" input costs.

1. Each fuzzer of ``tests/fixtures/fuzz.py`` (IDX reader, photo loader, model-file
   loader, run-folder readers) runs on many generated inputs; the property is that
   only mnistlab's own errors come out, each in one line. Recorded: how many inputs
   each tried, and whether any exception escaped (the first one, shrunk, if so).
2. Bombs — small files that claim or inflate to far more than they are — are each
   read in a fresh subprocess, whose peak resident memory (``getrusage``) is
   recorded against the same process's after importing mnistlab. Target: under
   300 MB for any input under 20 MB.

``--examples N`` sets the inputs per fuzzer (default 20000); ``--quick`` runs 200
each and prints without writing BENCHMARKS.md.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the fuzzers and file makers
import common  # noqa: E402

from fixtures import fuzz  # noqa: E402
from fixtures.files import idx_header, npy_bytes  # noqa: E402
from mnistlab import load_dataset  # noqa: E402
from mnistlab.experiments.pipeline import DataChoice, train  # noqa: E402

TARGET_MB = 300
MB = 2**20


# --- bombs ------------------------------------------------------------------------

def _zeros_deflated(out, n: int, chunk: int = 64 * MB) -> None:
    """Write ``n`` zero bytes to the writable ``out`` a chunk at a time."""
    zeros = bytes(chunk)
    while n > 0:
        out.write(zeros[:min(chunk, n)])
        n -= chunk


def idx_gzip(path: Path, dims: tuple[int, ...], payload_bytes: int) -> Path:
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(idx_header(0x08, *dims))
        _zeros_deflated(out, payload_bytes)
    return path


def model_bomb(run_dir: Path, folder: Path, declared: tuple[int, ...], payload_bytes: int) -> Path:
    """A copy of ``run_dir`` whose coef_ is a deflated member declaring ``declared`` float32 values
    (in model.json too) and holding ``payload_bytes`` of zeros."""
    import shutil

    shutil.copytree(run_dir, folder)
    with np.load(run_dir / "model.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    with zipfile.ZipFile(folder / "model.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            if name != "coef_":
                archive.writestr(f"{name}.npy", npy_bytes(array.shape, array.dtype.str, array.tobytes()))
        with archive.open("coef_.npy", "w", force_zip64=True) as out:
            out.write(npy_bytes(declared, "<f4"))
            _zeros_deflated(out, payload_bytes)
    meta = json.loads((folder / "model.json").read_text())
    meta["arrays"]["coef_"] = {"dtype": "float32", "shape": list(declared)}
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


def png(path: Path, mode: str, size: tuple[int, int]) -> Path:
    Image.new(mode, size).save(path, "PNG", compress_level=9)
    return path


def make_bombs(folder: Path, run_dir: Path) -> list[tuple[str, str, Path, str]]:
    """(reader, description, input, what mnistlab should do) for each bomb."""
    return [
        ("idx", "gzip IDX claiming 2,000,000 images (1.5 GB), holding them (zeros)",
         idx_gzip(folder / "claims-2m.gz", (2_000_000, 28, 28), 2_000_000 * 784), "refused from its header"),
        ("idx", "gzip IDX claiming 3 images, holding 1.5 GB of zeros",
         idx_gzip(folder / "claims-3.gz", (3, 28, 28), 2_000_000 * 784), "refused one byte past the claim"),
        ("idx", "gzip IDX claiming and holding 240,000 images (180 MB, just under the cap)",
         idx_gzip(folder / "claims-240k.gz", (240_000, 28, 28), 240_000 * 784), "read: within the cap"),
        ("model", "model.npz member declaring 10^13 elements (1 MB)",
         model_bomb(run_dir, folder / "model-1e13", (10**13,), MB), "refused from its header (> 4× the file)"),
        ("model", "model.npz member inflating to 1.3 GB (model.json agrees)",
         model_bomb(run_dir, folder / "model-1.3g", (325_000_000,), 325_000_000 * 4),
         "refused from its header (> 4× the file)"),
        ("model", "model.npz member inflating to 400 MB (under the 512 MB cap; model.json agrees)",
         model_bomb(run_dir, folder / "model-400m", (100_000_000,), 100_000_000 * 4),
         "refused: more than 4× the file"),
        ("photo", "50000×1000 bilevel PNG", png(folder / "banner.png", "1", (50000, 1000)), "refused: elongated"),
        ("photo", "7000×7000 RGBA PNG (zeros)", png(folder / "rgba-49mp.png", "RGBA", (7000, 7000)),
         "refused: decoding takes 374 MB"),
        ("photo", "7000×7000 progressive JPEG in full colour (4:4:4)", progressive_jpeg(folder / "progressive.jpg"),
         "refused: its coefficients take 281 MB"),
        ("photo", "7000×7000 bilevel PNG (49 MP, the most pixels allowed)", png(folder / "bilevel-49mp.png", "1",
                                                                               (7000, 7000)), "decoded, reduced"),
        ("photo", "7000×7000 RGB PNG (49 MP, the most pixels, in RGB)", png(folder / "rgb-49mp.png", "RGB",
                                                                            (7000, 7000)), "decoded, reduced"),
        ("photo", "5000×5000 RGBA PNG (25 MP, the most RGBA allowed)",
         png(folder / "rgba-25mp.png", "RGBA", (5000, 5000)), "decoded, reduced"),
    ]


def progressive_jpeg(path: Path) -> Path:
    Image.new("RGB", (7000, 7000)).save(path, "JPEG", progressive=True, subsampling=0)
    return path


# One reader per kind, run in a fresh interpreter so that its peak is its own.
PROBE = r"""
import json, resource, sys
kind, path = sys.argv[1], sys.argv[2]
from mnistlab.errors import MnistlabError
from mnistlab.data.idx import read_idx
from mnistlab.inference.photo import prepare_photo
from mnistlab.inference.predictor import Predictor
readers = {"idx": lambda: read_idx(path), "photo": lambda: prepare_photo(path, "fashion-mnist"),
           "model": lambda: Predictor(path)}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    readers[kind]()
    outcome = "no error"
except MnistlabError as exc:
    outcome = f"{type(exc).__name__}: {str(exc).split(': ', 1)[-1]}"
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before": before / 1024, "peak": after / 1024, "outcome": outcome}))
"""


# Linux starts a process's peak-RSS count at its parent's peak when it forks: the probe is
# started by a small launcher, so that what it reports is its own.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def measure(kind: str, path: Path) -> dict:
    source = str(Path(__file__).resolve().parent.parent / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-c", PROBE, kind, str(path)],
                          capture_output=True, text=True, env=env, check=True, timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def input_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.name.startswith("model.")) if path.is_dir() \
        else path.stat().st_size


# --- fuzzing ----------------------------------------------------------------------

def run_fuzzers(examples: int, workdir: Path, sneaker: np.ndarray, run_dir: Path) -> list[list]:
    rows = []
    what = {"idx": "IDX reader (`read_idx`): mutated headers and payloads, 0–2 gzip layers, random bytes",
            "photo": "photo loader (`prepare_photo`): 14 real PNG/JPEG/GIF/TIFF/BMP/WebP files mutated, random bytes",
            "model": "model-file loader (`Predictor`): mutated model.json and model.npz of a logreg run",
            "store": "run-folder readers: mutated config.json, metrics.json, predictions.npz"}
    for name in fuzz.FUZZERS:
        started = time.perf_counter()
        try:
            tried = fuzz.run(name, examples, workdir, image28=sneaker, run_dir=run_dir)
            escaped = "none"
        except Exception as exc:  # the first escape, shrunk by Hypothesis: what the benchmark reports
            tried, escaped = "stopped", f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        rows.append([what[name], tried, escaped, f"{time.perf_counter() - started:.0f}"])
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    examples = 200 if args.quick else args.examples

    ds = load_dataset("fashion-mnist")
    sneaker = np.asarray(ds.x_test[np.flatnonzero(ds.y_test == 7)[0]])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_dir = train("logreg", {"C": 0.1}, DataChoice(train_size=300, test_size=100), tmp / "out", name="fuzzed")
        fuzz_rows = run_fuzzers(examples, tmp, sneaker, run_dir)
        bomb_rows, met = [], True
        for kind, description, path, expected in make_bombs(tmp, run_dir):
            size = input_size(path)
            result = measure(kind, path)
            ok = result["peak"] < TARGET_MB and size < 20 * MB
            met &= ok
            bomb_rows.append([description, f"{size / MB:.2f}", expected, result["outcome"][:110],
                              f"{result['before']:.0f}", f"{result['peak']:.0f}", "yes" if ok else "**no**"])
            print(bomb_rows[-1], flush=True)

    body = (
        f"### Fuzzing: {examples} generated inputs per fuzzer\n\n"
        "Property: only mnistlab's own errors (`MnistlabError`) come out, each with a one-line message. "
        "Generators in `tests/fixtures/fuzz.py`; `tests/test_fuzz.py` runs them briefly in the test suite "
        "(`MNISTLAB_FUZZ_EXAMPLES` sets how many).\n\n"
        + common.markdown_table(["fuzzer", "inputs tried", "escaped", "seconds"], fuzz_rows)
        + f"\n\n### Bombs: peak resident memory, each in a fresh process\n\n"
        f"Target: under {TARGET_MB} MB for any input under 20 MB ({'met' if met else '**not met**'}). "
        "\"after import\" is the process's peak before the input is read.\n\n"
        + common.markdown_table(["input", "MB on disk", "expected", "outcome", "MB after import", "peak MB",
                                 f"< {TARGET_MB} MB"], bomb_rows))
    if args.quick:
        print(body)
    else:
        common.write_section("bench_fuzz", "Fuzzing and bombs", body)


if __name__ == "__main__":
    main()
