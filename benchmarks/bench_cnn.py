"""Neural networks on Fashion-MNIST: mlp, the tutorial's LeNet, and our fast CNN.

Targets, on a 2-core CPU computing float32 with AVX2 only (no AVX-512, no
bfloat16 — most laptops and cloud VMs), for models trained on all 60 000
training images and tested on the 10 000 test images:

  mlp       scikit-learn MLPClassifier with the tutorial's settings
            (256-128 ReLU, Adam, alpha 1e-4, max_iter 200): accuracy >= 0.885 (tutorial: 0.8904)
  lenet     the tutorial's CNN, reproduced: 0.920 ± 0.005 (tutorial: 0.9201)
  cnn       our CNN, preset "fast": >= 0.930 (mean over the seeds) with at most 60 s of training
  cnn-long  our CNN, preset "long": >= 0.945 with at most 300 s of training
  cnn-5min, cnn-10min  the fast preset's network with SGD and as many epochs as fit
            in 5 and 10 minutes (from timed probes): the accuracy reached within each budget.
            The fast network, not the long one: on AVX2 and float32 an epoch of the long one
            takes ~64 s, and its recipe cut to the 4 epochs that fit 5 minutes reached 0.930
            (seeds 0, 1), no more than the fast preset in one minute. SGD, not the preset's
            Muon: Muon wins short runs only (19 epochs: 0.9422 against SGD's 0.9436, seed 0).

``--isa avx2`` shows the plain machine on any x86 CPU: the script restarts
itself with every library's kernels capped at AVX2 (``common.avx2_only``:
PyTorch's, oneDNN's, MKL's, OpenBLAS's and numpy's) and trains the CNN in float32; it
writes the section bench_cnn_avx2. ``--isa native`` (the default) uses what
the CPU has, bfloat16 included where it computes it, and writes bench_cnn.

LeNet is the anchor the CNN is compared with, in the same run: the speed
ratio is LeNet's median fit time over the CNN's. Each model is fitted once
per seed (0, 1, …), every fit in a fresh process, as ``mnistlab train`` makes
it (LeNet's optimiser, ``torch.optim.Adam``, imports PyTorch's compiler, after
which every training step in a process takes ~2 ms longer; a ``mnistlab train
cnn`` process never imports it). The fits are interleaved: round r fits seed r
of every row, and rows with fewer seeds (the anchors, with ``--anchor-seeds``)
fit in the middle rounds, so that the VM's speed, which drifts by 10–25 % within
the hour this takes, weighs on every row alike. Accuracy is the mean ±
standard deviation over the seeds, time the median. Libraries keep their
default thread counts (and mnistlab's OpenMP settings, which make waiting
threads spin briefly and then sleep).

``--seeds 1`` and ``--skip mlp,cnn-10min`` shorten a run (mlp takes ~8 min
per seed, LeNet ~5, the budgeted rows what they say); ``--quick`` is a smoke
run on subsets with one epoch that prints but does not write BENCHMARKS.md.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from mnistlab import load_dataset  # noqa: E402
from mnistlab.models import get_family  # noqa: E402
from mnistlab.data.preprocess import flatten_scale  # noqa: E402
# mnistlab before PyTorch, as `mnistlab train` has it: OpenMP reads mnistlab's thread settings
# (models/torch/__init__) only when PyTorch first loads
from mnistlab.models.torch.device import computes_bfloat16  # noqa: E402
import torch  # noqa: E402


@dataclass
class Bench:
    family: str
    params: dict
    settings: str
    target: str
    met: object  # (mean accuracy, median seconds) -> bool
    quick: dict = field(default_factory=dict)  # overrides for --quick
    budget: float | None = None  # seconds: run as many epochs as timed probes say fit


BENCHES = {
    "mlp": Bench("mlp", {}, "MLPClassifier(hidden_layer_sizes=(256, 128), solver='adam', alpha=1e-4, "
                 "batch_size=200, learning_rate_init=1e-3, max_iter=200); tutorial: 0.8904",
                 ">= 0.885", lambda acc, s: acc >= 0.885, quick={"max_iter": 3}),
    "lenet": Bench("lenet", {}, "conv 32@5×5 · pool · conv 64@5×5 · pool · 256 · dropout 0.5 · 128 · 10; "
                   "Adam 1e-3, batch 64, 15 epochs; tutorial: 0.9201",
                   "0.920 ± 0.005", lambda acc, s: abs(acc - 0.920) <= 0.005, quick={"epochs": 1}),
    "cnn": Bench("cnn", {"preset": "fast"}, "preset fast", ">= 0.930 in <= 60 s",
                 lambda acc, s: acc >= 0.930 and s <= 60, quick={"epochs": 1}),
    "cnn-long": Bench("cnn", {"preset": "long"}, "preset long", ">= 0.945 in <= 300 s",
                      lambda acc, s: acc >= 0.945 and s <= 300, quick={"epochs": 1}),
    # The best accuracy within 5 and within 10 minutes, against the long preset's 0.945: progress where
    # that target is not met.
    "cnn-5min": Bench("cnn", {"preset": "fast", "optimizer": "sgd"}, "preset fast with SGD, epochs to fit 5 minutes",
                      ">= 0.945 in <= 300 s (the long target)", lambda acc, s: acc >= 0.945 and s <= 300,
                      quick={"epochs": 1}, budget=300),
    "cnn-10min": Bench("cnn", {"preset": "fast", "optimizer": "sgd"}, "preset fast with SGD, epochs to fit 10 minutes",
                       ">= 0.945 in <= 600 s (the long target in twice the time)",
                       lambda acc, s: acc >= 0.945 and s <= 600, quick={"epochs": 1}, budget=600),
}
# The budget probes: fits of one and of three epochs on all the images, their difference halved. A
# one-epoch probe alone scales up what a fit costs once with the epochs (on a subset: 25 % too dear); the
# same two fits on a tenth of the images put an epoch 10 % too cheap (36 "10-minute" epochs took 660 s);
# fits of one and two epochs on all the images put it at ≤ 14.6 s once and ≥ 15.8 s minutes before
# (16.1–16.9 s in the fits: 37 "10-minute" epochs took 590–603 s). This VM's speed also drifts by the
# hour: the epochs chosen leave this fraction of the budget to spare.
BUDGET_MARGIN = 0.1


def load_data(quick: bool):
    """(X, y, X_test, y_test): Fashion-MNIST flattened and scaled, subsets with ``quick``."""
    ds = load_dataset("fashion-mnist")
    if quick:
        ds = ds.subset(n=2000, seed=0).subset(n=500, seed=0, split="test")
    return flatten_scale(ds.x_train), ds.y_train, flatten_scale(ds.x_test), ds.y_test


def fit_and_score(family: str, params: dict, seed: int, quick: bool) -> dict:
    """One fit on the training images and its test accuracy (run in a fresh process by ``fit``)."""
    X, y, X_test, y_test = load_data(quick)
    model = get_family(family)(**params, random_state=seed)
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    return {"accuracy": float(model.score(X_test, y_test)), "seconds": seconds, "epochs": int(model.n_iter_),
            "threads": getattr(model, "threads_", None), "size": len(y), "test_size": len(y_test)}


def fit(family: str, params: dict, seed: int, quick: bool) -> dict:
    """``fit_and_score`` in a fresh process (spawned: nothing imported or warmed up by earlier fits),
    with the 1-minute load average after it."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        result = child.submit(fit_and_score, family, params, seed, quick).result()
    return result | {"load": os.getloadavg()[0]}


@functools.cache
def epoch_cost(settings: tuple) -> tuple[float, float]:
    """(an epoch, what a fit costs once: start-up, the whitening, the first steps' set-up) in seconds,
    for the CNN with ``settings`` (its params' items): half the difference between fits of three
    epochs and of one, and the rest of the one-epoch fit. Rows with the same settings share them."""
    one, three = (fit("cnn", {**dict(settings), "epochs": epochs}, 0, quick=False)["seconds"] for epochs in (1, 3))
    epoch = max((three - one) / 2, 1e-3)
    return epoch, max(one - epoch, 0.0)


def epochs_within(params: dict, seconds: float) -> int:
    """How many epochs of ``params`` fit in ``seconds``, BUDGET_MARGIN spared."""
    epoch, once = epoch_cost(tuple(sorted(params.items())))
    return max(1, int(((1 - BUDGET_MARGIN) * seconds - once) // epoch))


def describe(family: str, params: dict) -> str:
    """The settings a model actually ran with (the CNN's presets resolved)."""
    if family != "cnn":
        return ""
    return "; " + ", ".join(f"{k}={v}" for k, v in common.cnn_settings(params).items())


def summary(fits: list[dict]) -> dict:
    accuracies = [f["accuracy"] for f in fits]
    return {"accuracies": accuracies, "accuracy": statistics.mean(accuracies),
            "std": statistics.stdev(accuracies) if len(fits) > 1 else 0.0,
            "median_seconds": statistics.median(f["seconds"] for f in fits),
            "epochs": [f["epochs"] for f in fits], "loads": [f["load"] for f in fits],
            "threads": [f["threads"] for f in fits]}


def rounds(seeds: dict[str, int]) -> list[tuple[str, int]]:
    """(row, seed) in the order they are fitted: round r fits seed r of every row, a row with fewer
    seeds than the most in the middle rounds (3 rounds, 1 seed: the second)."""
    most = max(seeds.values())
    order = []
    for r in range(most):
        for name, count in seeds.items():
            seed = r - (most - count) // 2
            if 0 <= seed < count:
                order.append((name, seed))
    return order


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run on subsets; do not write")
    parser.add_argument("--seeds", type=int, default=3, help="fits per model (seeds 0..N-1)")
    parser.add_argument("--anchor-seeds", type=int, help="fits of mlp and lenet (default: --seeds)")
    parser.add_argument("--skip", default="", help=f"comma-separated, from: {', '.join(BENCHES)}")
    parser.add_argument("--isa", choices=("native", "avx2"), default="native",
                        help="avx2: AVX2 and float32 only, as on most laptops (restarts this script)")
    args = parser.parse_args()
    kernels = common.restart_avx2_only() if args.isa == "avx2" else None
    skip = {name for name in args.skip.split(",") if name}
    anchor_seeds = args.anchor_seeds or args.seeds
    if skip - set(BENCHES) or skip == set(BENCHES) or min(args.seeds, anchor_seeds) < 1:
        parser.error(f"--skip takes some of {', '.join(BENCHES)}; --seeds and --anchor-seeds must be >= 1")

    params, seeds = {}, {}
    for name, bench in BENCHES.items():
        if name in skip:
            continue
        params[name] = {**bench.params, **(bench.quick if args.quick else {})}
        if args.isa == "avx2" and bench.family == "cnn":
            params[name]["precision"] = "float32"
        if bench.budget and not args.quick:
            params[name]["epochs"] = epochs_within(params[name], bench.budget)
        seeds[name] = args.seeds if bench.family == "cnn" else anchor_seeds
        print(f"{name}: {seeds[name]} seed(s), {params[name]}", file=sys.stderr, flush=True)

    fits: dict[str, list[dict]] = {name: [] for name in seeds}
    for name, seed in rounds(seeds):
        result = fit(BENCHES[name].family, params[name], seed, args.quick)
        fits[name].append(result)
        print(f"  {name} seed {seed}: accuracy {result['accuracy']:.4f}, fit {result['seconds']:.1f} s, "
              f"{result['epochs']} epochs, load {result['load']:.1f}", file=sys.stderr, flush=True)
    results = {name: summary(fits[name]) | {"params": params[name]} for name in seeds}
    sizes = next(iter(fits.values()))[0]

    lenet = results.get("lenet")
    rows = []
    for name in (name for name in BENCHES if name in results):  # in BENCHES' order, LeNet first
        bench, r = BENCHES[name], results[name]
        ratio = (f"{lenet['median_seconds'] / r['median_seconds']:.1f}×" if lenet and bench.family == "cnn"
                 else "anchor" if name == "lenet" else "—")
        met = bench.met(r["accuracy"], r["median_seconds"])
        rows.append([f"**{name}**: {bench.settings}{describe(bench.family, r['params'])}",
                     f"{r['accuracy']:.4f} ± {r['std']:.4f}", " ".join(f"{a:.4f}" for a in r["accuracies"]),
                     f"{r['median_seconds']:.1f}", ratio, "/".join(map(str, sorted(set(r["epochs"])))),
                     bench.target, "met" if met else "**NOT met**"])
    table = common.markdown_table(
        ["model and settings", "test accuracy (mean ± std)", "per seed", "fit s (median)",
         "speed vs LeNet", "epochs", "target", ""], rows)
    loads = [load for r in results.values() for load in r["loads"]]
    used_threads = {t for r in results.values() for t in r["threads"] if t is not None}
    isa = (f"**AVX2 and float32 only** ({kernels}, the CNN at precision=float32), whatever the CPU below has"
           if args.isa == "avx2"
           else "the CPU's own kernels (the CNN's precision 'auto': bfloat16 where the CPU computes it, "
                f"which this one {'does' if computes_bfloat16(torch.device('cpu')) else 'does not'})")
    skipped = [f"{name} (target: {BENCHES[name].target})" for name in BENCHES if name in skip]
    body = (f"Kernels: {isa}.\n\n"
            f"Fashion-MNIST, {sizes['size']} training and {sizes['test_size']} test images; "
            f"seeds 0..{args.seeds - 1} for the CNN rows, 0..{anchor_seeds - 1} for mlp and LeNet, each fit in a "
            f"fresh process, the rows interleaved by seed; fit times are wall-clock; the PyTorch fits chose "
            f"{'/'.join(map(str, sorted(used_threads))) or 'no'} of "
            f"{torch.get_num_threads()} CPU threads (mnistlab's choice: the cores no other process is busy on). "
            f"Load average (1 min) after each fit: {min(loads):.1f}–{max(loads):.1f}"
            f"{' (a busy machine: times are upper bounds)' if max(loads) > 2.5 else ''}.\n\n"
            + (f"Not run this time (--skip), so not in the table: {', '.join(skipped)}.\n\n" if skipped else "")
            + table)
    print(body)
    if not args.quick:
        section, title = (("bench_cnn_avx2", "Neural networks on a plain CPU: AVX2, float32") if args.isa == "avx2"
                          else ("bench_cnn", "Neural networks: mlp, LeNet (tutorial) and our CNN"))
        common.write_section(section, title, body, script=f"bench_cnn.py --isa {args.isa}")


if __name__ == "__main__":
    main()
