"""Our CNN on a CUDA GPU: the best test accuracy reached within 3 and within 30 seconds of training.

Targets (on an H200-class GPU, Fashion-MNIST, 60 000 training and 10 000 test images, mean of the
seeds): >= 0.94 within 3 s, >= 0.95 within 30 s.

Each recipe (a preset of ``CNN`` with overrides, below or from ``--recipes``) is fitted at each
epoch count of its ladder, once per seed. Before the timed fits, one fit of each recipe on 2 000
images warms the GPU up (the CUDA context, cuDNN's and cuBLAS's handles and kernels, PyTorch's
first-use imports). A fit is timed with CUDA events recorded just before ``fit`` and just after
it returns: everything a user waits for (the images copied to the GPU, where they stay for the
whole fit, the first layer's whitening, every epoch), not only the steps. The table gives each
rung's mean accuracy and median seconds; a budget's figure is the best mean accuracy among the
rungs whose median fits it.

Without a CUDA GPU it prints one line and writes nothing (``make bench`` runs it everywhere);
``--quick`` is a smoke run of the whole script on subsets with ladders of 1 and 2 epochs, on the GPU
or, without one, on the CPU, and writes nothing. ``--json FILE`` also writes the results to FILE:
once before the first fit (a FILE that cannot be written ends the script before any GPU time is
spent), then after every rung and every failure, each time whole (a run cut short keeps what it
measured). ``--from-json FILE`` writes the section from such a file, on any machine: a lent GPU's
call gives back only the files it wrote, so a call cut short never returns BENCHMARKS.md; the
section names the rungs the file lacks.

It is meant to run unattended on a lent GPU, whose time is short: the recipes climb their ladders
side by side (every recipe's first rung, then every recipe's second, …), a rung starts only if it
is predicted to end within ``--time-limit`` seconds of the first rung's start (its seeds at the
recipe's last median fit time scaled by the epochs, plus the last rung's time besides the fits:
building and evaluating; a recipe's first rung, with nothing to predict from, starts if the limit
has not passed), the rungs not started are listed as not run, a recipe stops climbing once a rung
takes longer than the largest budget, and a recipe whose fit fails is reported (the error's one
line in the table and the JSON) while the others run on.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from mnistlab import load_dataset  # noqa: E402
from mnistlab._io import atomic_write_text, read_regular_file  # noqa: E402
from mnistlab.data.preprocess import flatten_scale  # noqa: E402
from mnistlab.models.torch.cnn import CNN, PRESETS  # noqa: E402
import torch  # noqa: E402

BUDGETS = {3.0: 0.94, 30.0: 0.95}  # seconds of training: the mean accuracy to reach within them
# name: (CNN parameters, epochs to try). Not yet tuned on a GPU: the presets as they are on the CPU
# (the fast one with its Muon for a few epochs, with SGD for more: on the CPU Muon won 3 epochs and
# lost 10 and 19, docs/design/cnn.md), the fast network with 4 times the batch (fewer, larger steps
# keep a GPU busier) and the long one twice as wide (what a GPU can afford, for 0.95).
RECIPES = {
    "fast": ({"preset": "fast"}, [3, 4, 6]),
    "fast-sgd": ({"preset": "fast", "optimizer": "sgd"}, [8, 12, 16, 24]),
    "fast-batch-1024": ({"preset": "fast", "batch_size": 1024, "learning_rate": 1.2}, [8, 16, 24, 32]),
    "long": ({"preset": "long"}, [10, 20, 40]),
    "long-wide": ({"preset": "long", "widths": [32, 128, 256, 512], "batch_size": 256, "learning_rate": 0.4},
                  [15, 30]),
}
WARM_UP_IMAGES = 2000
# seconds after the first rung's start: no rung is started that is predicted to end later (a lent GPU's call
# is limited to 10 minutes, its start and the warm-ups included)
TIME_LIMIT = 360
RESULTS_KEYS = ("device", "torch", "cuda_version", "timer", "machine", "started", "quick", "seeds", "train_images",
                "test_images", "finished", "results")


def timed_fit(params: dict, epochs: int, seed: int, data, device: str) -> tuple[float, float]:
    """(seconds, test accuracy) of one fit; on a GPU the seconds are CUDA events' around ``fit``."""
    X, y, X_test, y_test = data
    model = CNN(**params, epochs=epochs, random_state=seed, device=device)
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        model.fit(X, y)
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1000
    else:
        began = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - began
    return seconds, float(model.score(X_test, y_test))


def best_within(rungs: list[dict], budget: float) -> dict | None:
    """The rung with the best mean accuracy among those whose median time fits ``budget``."""
    fitting = [rung for rung in rungs if rung["median_seconds"] <= budget]
    return max(fitting, key=lambda rung: rung["accuracy"], default=None)


def parse_recipes(text: str) -> dict:
    """``--recipes``' JSON as {name: (CNN parameters, epochs)}; ValueError says what is wrong."""
    try:
        given = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(given, dict) or not given:
        raise ValueError("not a JSON object of recipes")
    recipes = {}
    for name, recipe in given.items():
        if not (isinstance(recipe, list) and len(recipe) == 2 and isinstance(recipe[0], dict)
                and isinstance(recipe[1], list)):
            raise ValueError(f"{name}: not [{{CNN parameters}}, [epochs, ...]]")
        params, ladder = recipe
        if not ladder or not all(type(e) is int and e >= 1 for e in ladder):
            raise ValueError(f"{name}: the epochs must be a non-empty list of whole numbers >= 1, got {ladder}")
        if params.get("preset", "fast") not in PRESETS:
            raise ValueError(f"{name}: no preset {params['preset']!r} (there are {', '.join(PRESETS)})")
        recipes[name] = (params, ladder)
    return recipes


def read_results(path: Path) -> dict:
    """The results ``--json`` saved in ``path``; ValueError says why they cannot be read."""
    data = read_regular_file(path, 2**24, ValueError)  # its message names the file
    try:
        saved = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    missing = [key for key in RESULTS_KEYS if not isinstance(saved, dict) or key not in saved]
    if missing:
        raise ValueError(f"{path}: not bench_gpu's --json results (no {', '.join(missing)})")
    if saved["quick"]:
        raise ValueError(f"{path}: the results of a --quick smoke run, not for BENCHMARKS.md")
    if not isinstance(saved["results"], dict) or not saved["results"]:
        raise ValueError(f"{path}: holds no recipe's results")
    return saved


def section_body(saved: dict, source: str | None = None) -> str:
    """The section's text from the results, whole or cut short (``source``: the file they were read from)."""
    rows, missing = [], []
    for name, result in saved["results"].items():
        described = ", ".join(f"{k}={v}" for k, v in common.cnn_settings(result["params"]).items() if k != "epochs")
        recipe_rows = [[rung["epochs"], f"{rung['accuracy']:.4f}", " ".join(f"{a:.4f}" for a in rung["accuracies"]),
                        f"{rung['median_seconds']:.2f}"] for rung in result["rungs"]]
        if "error" in result:
            recipe_rows.append(["—", f"failed: {result['error']}", "", ""])
        recipe_rows += [[", ".join(map(str, rungs)), f"not run: {why}", "", ""]
                        for why, rungs in result["not_run"].items()]
        accounted = {rung["epochs"] for rung in result["rungs"]}
        accounted |= {epochs for rungs in result["not_run"].values() for epochs in rungs}
        if lacking := [] if "error" in result else [e for e in result["ladder"] if e not in accounted]:
            recipe_rows.append([", ".join(map(str, lacking)), "missing: the run was cut short", "", ""])
            missing.append(f"{name} ({', '.join(map(str, lacking))} epochs)")
        rows += [[f"**{name}**: {described}" if i == 0 else "", *row] for i, row in enumerate(recipe_rows)]
    verdicts = []
    for budget, target in BUDGETS.items():
        best = max((best_within(r["rungs"], budget) or {"accuracy": 0.0} for r in saved["results"].values()),
                   key=lambda rung: rung["accuracy"])
        reached = f"{best['accuracy']:.4f}" if best["accuracy"] else "nothing finished"
        verdicts.append(f"within {budget:g} s: {reached} (>= {target}: "
                        f"{'met' if best['accuracy'] >= target else 'NOT met'})")
    cut_short = ""
    if not saved["finished"]:
        cut_short = ("**The run was cut short**" + (f": missing {'; '.join(missing)}" if missing else "")
                     + ". The verdicts below are on the rungs it finished.\n\n")
    return (cut_short + f"GPU: **{saved['device']}**, PyTorch {saved['torch']} (CUDA {saved['cuda_version']}). "
            f"Fashion-MNIST, {saved['train_images']} training and {saved['test_images']} test images; seeds "
            f"0..{saved['seeds'] - 1}; seconds: {saved['timer']} around `fit` (data to the device, whitening, "
            f"every epoch), median over the seeds, after a warm-up fit of each recipe. Best mean accuracy "
            f"{'; '.join(verdicts)}."
            + (f" Written from `{source}` (`--from-json`)." if source else "") + "\n\n"
            + common.markdown_table(["recipe", "epochs", "test accuracy (mean)", "per seed", "fit s (median)"],
                                    rows))


def write_section(saved: dict, body: str) -> None:
    """BENCHMARKS.md's section, saying when and on what machine the results were measured."""
    common.write_section("bench_gpu", "Our CNN on a GPU: accuracy within 3 and 30 seconds", body,
                         stamp=saved["started"], on=saved["machine"])


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="fits per rung (seeds 0..N-1)")
    parser.add_argument("--recipes", help="JSON: {name: [CNN parameters, [epochs, ...]]}, instead of the built-in")
    parser.add_argument("--json", type=Path, help="also write the results to this file, after every rung")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="measure nothing: write the section from the results --json saved in FILE")
    parser.add_argument("--quick", action="store_true", help="smoke run on subsets, 1 and 2 epochs; writes nothing")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT,
                        help=f"seconds after the first rung's start by which every rung must be predicted to end "
                             f"(default {TIME_LIMIT})")
    args = parser.parse_args()
    if args.from_json:
        measuring = [f"--{name.replace('_', '-')}" for name in ("quick", "json", "recipes", "seeds", "time_limit")
                     if getattr(args, name) != parser.get_default(name)]
        if measuring:
            parser.error(f"--from-json measures nothing: it takes no {', '.join(measuring)}")
        try:
            saved = read_results(args.from_json)  # its errors name the file
        except ValueError as exc:
            parser.error(str(exc))
        try:
            body = section_body(saved, args.from_json.name)  # the name alone: a local download folder means nothing
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            parser.error(f"{args.from_json}: not bench_gpu's --json results ({type(exc).__name__}: {exc})")
        print(body)
        write_section(saved, body)
        return
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    if not args.time_limit > 0:
        parser.error("--time-limit must be > 0")
    recipes = RECIPES
    if args.recipes:
        try:
            recipes = parse_recipes(args.recipes)
        except ValueError as exc:
            parser.error(f"--recipes takes JSON like '{{\"fast\": [{{\"preset\": \"fast\"}}, [4, 8]]}}': {exc}")
    if args.json and not args.json.parent.is_dir():
        parser.error(f"--json {args.json}: no folder {args.json.parent}")
    cuda = torch.cuda.is_available()
    if not cuda and not args.quick:
        print("bench_gpu: no CUDA GPU here (torch.cuda.is_available() is False): nothing measured, "
              "BENCHMARKS.md unchanged")
        return
    device = "cuda" if cuda else "cpu"

    ds = load_dataset("fashion-mnist")
    if args.quick:
        ds = ds.subset(n=2000, seed=0).subset(n=500, seed=0, split="test")
        recipes = {name: (params, [1, 2]) for name, (params, _) in recipes.items()}
    data = flatten_scale(ds.x_train), ds.y_train, flatten_scale(ds.x_test), ds.y_test
    warm_up = data[0][:WARM_UP_IMAGES], data[1][:WARM_UP_IMAGES], data[2][:500], data[3][:500]

    results = {name: {"params": params, "ladder": list(ladder), "rungs": [], "not_run": {}}
               for name, (params, ladder) in recipes.items()}
    saved = {"device": torch.cuda.get_device_name() if cuda else "no GPU (CPU smoke run)", "torch": torch.__version__,
             "cuda_version": torch.version.cuda, "timer": "CUDA events" if cuda else "wall-clock",
             "machine": common.machine(), "started": common.now(), "quick": args.quick, "seeds": args.seeds,
             "train_images": len(data[1]), "test_images": len(data[3]), "finished": False, "results": results}

    def save() -> None:
        if args.json:  # whole each time, through a temporary file: a run killed while saving keeps the last
            atomic_write_text(args.json, json.dumps(saved, indent=1))

    try:
        save()  # before any fit: a file that cannot be written costs no GPU time
    except OSError as exc:
        parser.error(f"--json {args.json}: {exc.strerror or exc}")

    def failed(name: str, exc: Exception) -> None:
        results[name]["error"] = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"  {name} failed: {results[name]['error']}", file=sys.stderr, flush=True)
        save()

    ladders = {}  # each recipe's rungs still to run
    for name, (params, ladder) in recipes.items():
        try:  # unattended on a lent GPU: a recipe that fails is reported, and the others still run
            timed_fit(params, 1, 0, warm_up, device)
            ladders[name] = list(ladder)
        except Exception as exc:  # noqa: BLE001 - any failure of a fit; its message goes in the table
            failed(name, exc)
    paces = {}  # recipe: (epochs, median fit seconds, seconds besides the fits) of its last rung
    first_rung = time.perf_counter()
    while ladders:
        for name in list(ladders):  # one rung of each recipe in turn: a time limit cuts every ladder short
            params, epochs = results[name]["params"], ladders[name][0]
            predicted = 0.0
            if name in paces:
                last_epochs, last_median, besides = paces[name]
                predicted = args.seeds * last_median * epochs / last_epochs + besides
            if time.perf_counter() - first_rung + predicted > args.time_limit:
                results[name]["not_run"][f"it would end past the {args.time_limit:g} s time limit"] = ladders.pop(name)
                save()
                continue
            ladders[name].pop(0)
            began = time.perf_counter()
            try:
                fits = [timed_fit(params, epochs, seed, data, device) for seed in range(args.seeds)]
            except Exception as exc:  # noqa: BLE001
                failed(name, exc)
                del ladders[name]
                continue
            seconds, accuracies = [s for s, _ in fits], [a for _, a in fits]
            rung = {"epochs": epochs, "seconds": seconds, "accuracies": accuracies,
                    "median_seconds": statistics.median(seconds), "accuracy": statistics.mean(accuracies)}
            paces[name] = epochs, rung["median_seconds"], time.perf_counter() - began - sum(seconds)
            results[name]["rungs"].append(rung)
            print(f"  {name}, {epochs} epochs: accuracy {rung['accuracy']:.4f} "
                  f"({' '.join(f'{a:.4f}' for a in accuracies)}), {rung['median_seconds']:.2f} s",
                  file=sys.stderr, flush=True)
            if ladders[name] and rung["median_seconds"] > max(BUDGETS):
                results[name]["not_run"][f"the {epochs}-epoch rung took longer than {max(BUDGETS):g} s"] = ladders[name]
                ladders[name] = []
            if not ladders[name]:
                del ladders[name]
            save()  # after every rung: what was measured survives a run cut short

    saved["finished"] = True
    save()
    body = section_body(saved)
    print(body)
    if not args.quick:
        write_section(saved, body)


if __name__ == "__main__":
    main()
