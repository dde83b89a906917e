"""Photos of test images: does the model still see what it was trained on?

For Fashion-MNIST and MNIST, a stratified sample of real test images is turned
into "user photos" by ``tests/fixtures/photos.py`` (enlarged, dark on a tinted,
unevenly lit surface, noisy, off-centre; saved as JPEG, PNG, cut-out RGBA PNG and
EXIF-rotated JPEG), then back into 28×28 inputs by ``mnistlab.inference.photo.prepare_photo``.
Target: the model's accuracy on each kind of photo is within 3 percentage
points of its accuracy on the same raw test images.

The model is our ``logreg`` family with its defaults, trained on Fashion-MNIST
(a stratified subset, to keep the run short) and on the 5,000-image MNIST subset
in /work/shared/data/mnist. BLAS runs on one thread (see bench_numpy.py).
``--quick`` is a smoke run on a few images that prints but does not write
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the photo fixtures
import common  # noqa: E402

from mnistlab import load_dataset  # noqa: E402
from mnistlab.models import get_family  # noqa: E402
from mnistlab.inference.photo import prepare_photo  # noqa: E402
from fixtures.photos import FORMATS, make_photo_set  # noqa: E402
from mnistlab.data.preprocess import flatten_scale, subset_indices  # noqa: E402

MNIST_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
TARGET_PP = 3.0
FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "rgba": "RGBA PNG, transparent background",
                "exif": "JPEG stored rotated, EXIF orientation"}
SEED = 0


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def evaluate(name: str, data_dir: Path | None, model_name: str, n_images: int,
             train_size: int | None) -> tuple[str, bool]:
    """Markdown for one dataset, and whether every format met the target."""
    ds = load_dataset(name, data_dir=data_dir)
    if train_size is not None and train_size < len(ds.y_train):
        ds = ds.subset(n=train_size, seed=SEED)
    model = get_family(model_name)()
    started = time.perf_counter()
    model.fit(flatten_scale(ds.x_train), ds.y_train)
    fit_seconds = time.perf_counter() - started

    idx = subset_indices(ds.y_test, n=n_images, seed=SEED)
    images, labels = np.asarray(ds.x_test[idx]), np.asarray(ds.y_test[idx])
    raw = float(np.mean(model.predict(flatten_scale(images)) == labels))

    photos = make_photo_set(images, labels, seed=SEED)
    prepared, seconds, scores = {fmt: [] for fmt in FORMATS}, [], {fmt: [] for fmt in FORMATS}
    for photo in photos:
        started = time.perf_counter()
        pixels = prepare_photo(photo.data, name).pixels
        seconds.append(time.perf_counter() - started)
        prepared[photo.fmt].append(pixels)
        scores[photo.fmt].append(corr(pixels, images[photo.index]))

    rows = [["raw test images", f"{raw:.4f}", "—", "—", "—"]]
    met = True
    all_correct = []
    for fmt in FORMATS:
        correct = model.predict(flatten_scale(np.stack(prepared[fmt]))) == labels
        all_correct.append(correct)
        accuracy = float(correct.mean())
        delta = 100 * (accuracy - raw)
        met &= delta >= -TARGET_PP
        rows.append([FORMAT_NAMES[fmt], f"{accuracy:.4f}", f"{delta:+.1f}",
                     f"{statistics.median(scores[fmt]):.3f}", "yes" if delta >= -TARGET_PP else "**no**"])
    overall = float(np.mean(all_correct))
    rows.append(["all photos", f"{overall:.4f}", f"{100 * (overall - raw):+.1f}",
                 f"{statistics.median(s for fmt in FORMATS for s in scores[fmt]):.3f}",
                 "yes" if met else "**no**"])
    table = common.markdown_table(
        ["input", "accuracy", "Δ vs raw (points)", "median correlation with the test image",
         f"within {TARGET_PP:g} points"], rows)
    trained = f"{len(ds.y_train)} training images" + (" (stratified subset)" if train_size else "")
    text = (f"### {name}: {n_images} test images × {len(FORMATS)} kinds of photo\n\n"
            f"`{model_name}` (defaults) fitted on {trained} in {fit_seconds:.1f} s. "
            f"`prepare_photo`: median {1000 * statistics.median(seconds):.0f} ms per photo "
            "(decode + preparation).\n\n" + table)
    print(text + "\n", flush=True)
    return text, met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="logreg", help="model family (default: logreg)")
    parser.add_argument("--images", type=int, default=500, help="test images per dataset")
    parser.add_argument("--fashion-train", type=int, default=20000,
                        help="Fashion-MNIST training images (stratified subset)")
    parser.add_argument("--quick", action="store_true", help="40 images; print, do not write")
    args = parser.parse_args()
    n_images = 40 if args.quick else args.images

    sections, all_met = [], True
    with threadpool_limits(1):
        for name, data_dir, train_size in (("fashion-mnist", None, args.fashion_train),
                                           ("mnist", MNIST_DIR, None)):
            text, met = evaluate(name, data_dir, args.model, n_images, train_size)
            sections.append(text)
            all_met &= met
    if args.quick:
        return
    summary = (f"Target: accuracy on every kind of photo within {TARGET_PP:g} percentage points "
               f"of the same model on the raw test images: **{'met' if all_met else 'not met'}**.\n\n"
               "Photos are made by `tests/fixtures/photos.py` from real test images (enlarged to "
               "200–400 px, dark on a tinted surface with a lighting gradient, vignetting and "
               "noise, off-centre in a larger frame) and prepared by `mnistlab.photo.prepare_photo`.")
    common.write_section("bench_photo", "Photos of test images → model inputs",
                         summary + "\n\n" + "\n\n".join(sections))


if __name__ == "__main__":
    main()
