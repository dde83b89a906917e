"""Side-by-side comparison of runs on the same test set, with a significance test.

The first run is the baseline A; every other run B is compared with it on
the paired test predictions: the difference of confusion matrices (B − A),
per-class F1 deltas, per-class accuracy deltas with bootstrap confidence
intervals, and McNemar's exact test — of the images exactly one of the two gets
right, is the split further from 50/50 than chance allows? Runs that measured
their robustness to shifted images have their curves drawn on shared axes.
"""

from __future__ import annotations

import hashlib
import re
import html
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import plots
from ..plots import Figure  # matplotlib's, imported by plots alone: whole (see there)
from .._io import atomic_directory, atomic_write_text, write_json
from .._values import is_number
from ..errors import ParameterError, RunDamagedError, one_line
from ..metrics import confusion_matrix
from ..models import get_family
from ..models.params import check as check_parameter
from ..run_config import CONFIG, read_json
from . import report
from .store import (
    COMPARE_HTML,
    COMPARE_JSON,
    COMPARISONS,
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    PREDICTIONS,
    claim_folder,
    output_folder,
    read_config_and_metrics,
    read_predictions,
    read_whole,
    validate_name,
)


def mcnemar_exact(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    """McNemar's exact (binomial) test on paired predictions.

    ``a_only``: images A gets right and B wrong; ``b_only``: the reverse. Under
    the null hypothesis (equal accuracy) each discordant image is a fair coin.
    """
    a_right, b_right = pred_a == y_true, pred_b == y_true
    a_only, b_only = int(np.sum(a_right & ~b_right)), int(np.sum(~a_right & b_right))
    n = a_only + b_only
    return {"a_only": a_only, "b_only": b_only, "p_value": fair_coin_p_value(min(a_only, b_only), n)}


def fair_coin_p_value(k: int, n: int) -> float:
    """Two-sided p-value of k heads or fewer in n fair tosses (scipy's ``binomtest(k, n, 0.5)``, k ≤ n/2).

    The distribution is symmetric, so it is twice the lower tail, summed in exact integers (the terms are
    binomial coefficients over 2ⁿ): no rounding for any test set, and no second of importing scipy.stats.
    """
    coefficient = tail = 1
    for i in range(1, k + 1):
        coefficient = coefficient * (n - i + 1) // i
        tail += coefficient
    return min(1.0, 2 * tail / 2**n)


BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


def class_accuracy_deltas(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_classes: int,
                          alpha: float = 0.05, resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE,
                          seed: int = 0) -> list[dict]:
    """Per class, B's accuracy minus A's on that class's test images, with a paired bootstrap interval,
    and whether the difference is significant.

    Each resample draws the class's images with replacement, the same draw for both runs (they
    were tested on the same images), and the interval is the central ``confidence`` share of the
    resampled differences (percentile bootstrap): a picture of the spread, which with few images
    where the runs differ is too narrow to judge by. The verdict is McNemar's exact test on the
    class's images, its p-values Holm-adjusted over the classes (``holm``): ten classes tested at
    once would find a "difference" by chance in four comparisons of ten. A class without test
    images has None throughout.
    """
    rng = np.random.default_rng(seed)
    gain = (pred_b == y_true).astype(np.int8) - (pred_a == y_true).astype(np.int8)  # +1, 0 or −1 per image
    tail = (1 - confidence) / 2 * 100
    rows = []
    for k in range(n_classes):
        members = gain[y_true == k]
        if len(members) == 0:
            rows.append({"delta": None, "low": None, "high": None, "n": 0, "p_value": None, "p_holm": None,
                         "significant": None})
            continue
        resampled = members[rng.integers(0, len(members), (resamples, len(members)))].mean(axis=1)
        low, high = np.percentile(resampled, [tail, 100 - tail])
        of_k = y_true == k
        rows.append({"delta": float(members.mean()), "low": float(low), "high": float(high), "n": int(len(members)),
                     "p_value": mcnemar_exact(y_true[of_k], pred_a[of_k], pred_b[of_k])["p_value"]})
    judge([row for row in rows if row["delta"] is not None], alpha)
    return rows


def judge(tests: list[dict], alpha: float) -> None:
    """Set each test's ``p_holm`` (its ``p_value`` Holm-adjusted over ``tests``) and whether it is
    ``significant`` at ``alpha``: p ≤ α, as scipy's and statsmodels' tests reject."""
    for test, adjusted in zip(tests, holm([test["p_value"] for test in tests])):
        test["p_holm"], test["significant"] = adjusted, adjusted <= alpha


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (in their order): the smallest times m, the next times
    m − 1 …, each at least the one before it, at most 1; rejecting where the adjusted p ≤ α keeps the chance
    of any false finding among them at most α."""
    m, adjusted, running = len(p_values), [0.0] * len(p_values), 0.0
    for rank, i in enumerate(sorted(range(m), key=p_values.__getitem__)):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def load_for_comparison(run_dir: Path) -> dict:
    """What a comparison reads of a run: name, config, metrics, test labels and predictions, all of one
    folder (``read_whole``: a run trained again meanwhile is read again)."""
    return read_whole(run_dir, _comparison_files)[0]


def _comparison_files(run_dir: Path) -> dict:
    config, metrics = read_config_and_metrics(run_dir)
    n_classes = len(config["dataset"]["classes"])
    predictions = read_predictions(run_dir, n_classes, config["dataset"]["n_test"])
    # McNemar's counts come from the predictions, the accuracies from metrics.json: the table would contradict itself
    counts = confusion_matrix(predictions["y_true"], predictions["y_pred"], n_classes)
    if counts.tolist() != metrics["confusion_matrix"]:
        raise RunDamagedError(f"{run_dir}: the predictions in {PREDICTIONS} are not those metrics.json counts")
    try:
        family = get_family(config["model"])
    except ParameterError as exc:  # a classifier that this scikit-learn no longer has, say
        raise RunDamagedError(f"{run_dir / CONFIG}: {one_line(exc)}") from None
    return {"name": run_dir.name, "dir": run_dir, "config": config, "metrics": metrics, "family": family,
            "y_true": predictions["y_true"], "y_pred": predictions["y_pred"]}


def compare_runs(run_dirs: list[Path], out: Path, name: str | None = None, alpha: float = 0.05,
                 overwrite: bool = False, read_from: Callable[[list], None] | None = None) -> tuple[Path, dict]:
    """Write compare.html, compare.json and the PNGs for the runs in ``run_dirs`` (first = baseline).

    A comparison ``name`` that exists is refused before any work unless ``overwrite``; under the
    default name (the runs' names) the same runs' comparison is brought up to date. ``read_from`` is given
    the identities (``folder_identity``) of the folders read, before anything is written: a caller that read
    the runs before raises there if one was trained again since.
    """
    if len(run_dirs) < 2:
        raise ParameterError(None, "compare needs at least two runs")
    check_parameter("overwrite", overwrite, ["boolean"])
    if name is not None:
        validate_name(name, "comparison")
    if not is_number(alpha) or not 0 < alpha < 1:  # also NaN
        raise ParameterError("alpha", f"the significance level must be between 0 and 1, got {alpha!r}")
    names = [Path(r).name for r in run_dirs]
    if repeated := next((n for i, n in enumerate(names) if n in names[:i]), None):
        # the names label the tables and key the figures' curves, so even two stores' runs of one name would mix
        raise ParameterError(None, f"the run {repeated!r} is given twice: compare needs different runs")
    reads = [read_whole(Path(r), _comparison_files) for r in run_dirs]
    if read_from is not None:
        read_from([identity for _, identity in reads])
    loaded = [files for files, _ in reads]
    base = loaded[0]
    classes = base["config"]["dataset"]["classes"]
    for other in loaded[1:]:
        # the images' digest where both runs recorded it (runs written before it did: their classes and labels)
        digests = {r["config"]["dataset"].get("test_images_sha256") for r in (base, other)}
        if (other["config"]["dataset"]["classes"] != classes or not np.array_equal(other["y_true"], base["y_true"])
                or None not in digests and len(digests) > 1):
            raise ParameterError(None, f"{other['name']} was tested on other images than {base['name']}: "
                             "compare needs the same test set (dataset, classes and test subset)")
    comparisons = output_folder(Path(out) / COMPARISONS, "comparisons")  # once the runs are known to be comparable
    # under the default name, the same runs' comparison is brought up to date: after one being written, not refused
    default = name is None
    if default:
        name, overwrite = _default_name(loaded, comparisons), True
    with claim_folder(comparisons, name, "comparison", overwrite, wait=default) as final:
        return final, _write(loaded, alpha, final)


def _write(loaded: list[dict], alpha: float, final: Path) -> dict:
    """The comparison of ``loaded`` (first = baseline) in ``final``: compare.json, compare.html, PNGs."""
    base, classes = loaded[0], loaded[0]["config"]["dataset"]["classes"]

    rows = [{"run": r["name"], "model": r["config"]["model"],
             "accuracy": r["metrics"]["accuracy"], "macro_f1": r["metrics"]["macro_f1"],
             "log_loss": r["metrics"]["log_loss"], "fit_seconds": r["metrics"]["fit_seconds"],
             "predict_seconds_per_10k": r["metrics"].get("predict_seconds_per_10k"),
             "n_parameters": r["metrics"].get("n_parameters"),
             # where the probabilities are not the model's own (a ridge's softmaxed scores), its log-loss says little
             "probabilities_note": r["metrics"].get("probabilities_note"),
             "run_dir": str(Path(r["dir"]).resolve())} for r in loaded]  # which runs: two stores hold runs of one name
    pairs = []
    for other in loaded[1:]:
        test = mcnemar_exact(base["y_true"], base["y_pred"], other["y_pred"])
        f1_a = [c["f1"] for c in base["metrics"]["per_class"]]
        f1_b = [c["f1"] for c in other["metrics"]["per_class"]]
        pairs.append({"a": base["name"], "b": other["name"], **test,
                      "accuracy_delta": other["metrics"]["accuracy"] - base["metrics"]["accuracy"],
                      "f1_delta": {c: b - a for c, a, b in zip(classes, f1_a, f1_b)},
                      "class_accuracy_delta": dict(zip(classes, class_accuracy_deltas(
                          base["y_true"], base["y_pred"], other["y_pred"], len(classes), alpha))),
                      "confusion_delta": (np.array(other["metrics"]["confusion_matrix"])
                                          - np.array(base["metrics"]["confusion_matrix"])).tolist()})
    # Each pair is a test: with several, one would find a "difference" by chance, as with classes (above)
    judge(pairs, alpha)
    result = {"runs": rows, "pairs": pairs, "alpha": alpha, "classes": classes,
              "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "confidence": CONFIDENCE,
                            "method": "paired percentile bootstrap over each class's test images"}}
    with atomic_directory(final) as staging:
        figures = _plots(loaded, pairs, classes, staging)
        write_json(staging / COMPARE_JSON, result)
        atomic_write_text(staging / COMPARE_HTML, _html(result, figures))
    return result


def _default_name(loaded: list[dict], comparisons: Path) -> str:
    """``a-vs-b`` of the runs' names; one too long for a name is cut, and told apart from others cut the same
    by a digest of the runs' folders, as is one whose runs' own names hold "-vs-" (runs ``a-vs-b`` and ``c``
    against ``a`` and ``b-vs-c``) or characters no name has (runs given by the path of a folder named
    ``my run``, say: its characters become ``_``), or one that ``comparisons`` holds as a comparison of other
    runs (named so by hand, or runs of the same names in another folder): the same name is the same runs'
    comparison, brought up to date."""
    runs = [r["name"] for r in loaded]
    folders = [str(Path(r["dir"]).resolve()) for r in loaded]
    joined = "-vs-".join(runs)
    if (len(joined) <= MAX_NAME_LENGTH and not any("-vs-" in run for run in runs) and NAME_PATTERN.fullmatch(joined)
            and _compares_other_runs(comparisons / joined, runs, folders) is False):
        return joined
    named = re.sub(r"[^A-Za-z0-9._+-]", "_", joined).lstrip("._+-")
    # NUL is in no path: the folders joined are told apart
    digest = hashlib.sha256("\0".join(folders).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{named[:MAX_NAME_LENGTH - 9]}-{digest}" if named else digest


def _compares_other_runs(folder: Path, runs: list[str], folders: list[str]) -> bool:
    """Whether the comparison in ``folder`` (if any) is of other runs than ``runs`` in ``folders``: other
    names, or other folders where its compare.json records them (those written before it did: by name),
    or a compare.json that cannot say."""
    if not folder.exists():
        return False
    try:
        rows = read_json(folder / COMPARE_JSON)["runs"]
        return ([row["run"] for row in rows] != runs
                or any(row.get("run_dir", here) != here for row, here in zip(rows, folders)))
    except (RunDamagedError, TypeError, KeyError, AttributeError):
        return True


def _plots(loaded: list[dict], pairs: list[dict], classes: list[str], folder: Path) -> list[tuple[Path, str]]:
    """The comparison's PNGs as (path, caption), in reading order."""
    return [(plots.save_png(fig, folder / f"{name}.png"), caption)
            for name, (fig, caption) in comparison_figures(loaded, pairs, classes).items()]


LABEL_LENGTH = 40  # of a run's name in a figure: a default name (family, dataset, time) fits whole


def _label(name: str) -> str:
    """A run's name as a figure shows it: shortened in the middle, where 100 characters left no room for the
    plot (the time that ends a default name, which tells runs apart, stays); the tables have it whole."""
    half = (LABEL_LENGTH - 1) // 2
    return name if len(name) <= LABEL_LENGTH else f"{name[:half]}…{name[-half:]}"


def comparison_figures(loaded: list[dict], pairs: list[dict], classes: list[str]) -> dict[str, tuple[Figure, str]]:
    """The comparison's figures by name, with their captions, in reading order."""
    labels = {r["name"]: _label(r["name"]) for r in loaded}
    if len(set(labels.values())) < len(labels):  # two shortened alike: each figure keys its runs by name
        labels = {name: name for name in labels}
    loaded = [{**r, "name": labels[r["name"]]} for r in loaded]
    pairs = [{**pair, "a": labels[pair["a"]], "b": labels[pair["b"]]} for pair in pairs]
    literal = plots.literal  # a name in a figure's text (not in a caption, which is HTML): x$y$ was drawn as maths
    names = [literal(r["name"]) for r in loaded]
    figures = {"accuracy": (plots.metric_bars(names, [r["metrics"]["accuracy"] for r in loaded],
                                              title="Test accuracy", ylabel="accuracy"),
                            "Test accuracy of each run.")}
    for i, pair in enumerate(pairs, start=1):
        figures[f"confusion_delta_{i}"] = (
            plots.confusion_matrix_plot(pair["confusion_delta"], classes, difference=True,
                                        title=literal(f"Confusion matrix {pair['b']} − {pair['a']}")),
            f"Difference of confusion matrices, {pair['b']} minus {pair['a']}: on the diagonal, "
            "positive means B gets more of that class right; off it, positive means B makes that mistake more.")
        figures[f"f1_delta_{i}"] = (
            plots.metric_bars(classes, list(pair["f1_delta"].values()),
                              title=literal(f"Per-class F1: {pair['b']} − {pair['a']}"), ylabel="F1 change"),
            f"Per-class F1 change from {pair['a']} to {pair['b']}.")
        shown = [(c, d) for c, d in pair["class_accuracy_delta"].items() if d["delta"] is not None]
        figures[f"class_accuracy_delta_{i}"] = (
            plots.metric_bars([c for c, _ in shown], [d["delta"] for _, d in shown],
                              title=literal(f"Per-class accuracy: {pair['b']} − {pair['a']}"), ylabel="accuracy change",
                              intervals=[(d["low"], d["high"]) for _, d in shown]),
            f"Per-class accuracy change from {pair['a']} to {pair['b']}, with {CONFIDENCE:.0%} bootstrap "
            "intervals, their spread: whether a class's change is a difference at all is its exact test's, "
            "in the table (an interval clear of 0 may still be chance where the runs differ on a few images).")
    histories = {literal(f"{r['name']}: {key}"): values for r in loaded
                 for key, values in r["family"].comparable_curves(
                     r["metrics"].get("history")).items()}
    if histories:
        figures["learning_curves"] = (plots.curves(histories, title="Learning curves", xlabel="epoch"),
                                      "Learning curves of the runs, on shared axes.")
    measured = [r for r in loaded if r["metrics"].get("robustness")]
    shifts = set(measured[0]["metrics"]["robustness"]["shifts"]) if measured else set()
    robust = {literal(r["name"]): r["metrics"]["robustness"] for r in measured
              if set(r["metrics"]["robustness"]["shifts"]) == shifts}
    if len(robust) >= 2:  # runs from before robustness was measured, or with other shifts, are left out
        figures["robustness"] = (plots.robustness_curves(robust),
                                 "Accuracy of each run on the same shifted test images: the flatter its curve, the "
                                 "less it depends on exact pixel positions and values.")
    return figures


def _html(result: dict, figures: list[tuple[Path, str]]) -> str:
    runs_table = report.table(
        ["run", "model", "accuracy", "macro F1", "log-loss", "fit s", "predict s / 10k", "parameters"],
        [[r["run"], r["model"], r["accuracy"], r["macro_f1"],
          f"{r['log_loss']:.6g}*" if r.get("probabilities_note") else r["log_loss"], r["fit_seconds"],
          r["predict_seconds_per_10k"], r["n_parameters"]] for r in result["runs"]])
    runs_table += "".join(f"<p class=\"note\">{html.escape(note)}</p>\n" for note in probabilities_notes(result))
    tests = report.table(
        ["A (baseline)", "B", "accuracy B − A", "only A right", "only B right", "McNemar p", "p (Holm)", "verdict"],
        [[p["a"], p["b"], p["accuracy_delta"], p["a_only"], p["b_only"], p["p_value"], p["p_holm"],
          verdict(p, result["alpha"])] for p in result["pairs"]])
    body = (f"<h1>Comparison of {len(result['runs'])} runs</h1>\n<h2>Runs</h2>\n{runs_table}"
            f"<h2>Is the difference significant?</h2>\n{tests}"
            "<p>McNemar's exact test looks only at the test images that exactly one of the two runs "
            "classifies correctly; if both were equally good, each of those would be a coin toss. The verdict "
            "goes by p adjusted for testing every pair at once (Holm; with one pair, p itself).</p>\n"
            + _class_accuracy_tables(result)
            + "<h2>Figures</h2>\n" + "".join(report.figure(path, caption) for path, caption in figures))
    return report.page("mnistlab comparison", body)


def _class_accuracy_tables(result: dict) -> str:
    """Per pair, each class's accuracy change with its bootstrap interval and its exact test's verdict."""
    boot = result["bootstrap"]
    parts = []
    for pair in result["pairs"]:
        deltas = pair["class_accuracy_delta"]
        rows = [[c, d["n"], "—" if d["delta"] is None else f"{d['delta']:+.2%}",
                 "—" if d["delta"] is None else f"[{d['low']:+.2%}, {d['high']:+.2%}]",
                 "—" if d["delta"] is None else d["p_holm"],
                 "" if d["delta"] is None else "yes" if d["significant"] else "no"]
                for c, d in deltas.items()]
        parts.append(f"<h3>Per-class accuracy, {html.escape(pair['b'])} − {html.escape(pair['a'])}</h3>\n"
                     + report.table(["class", "test images", "accuracy B − A", f"{boot['confidence']:.0%} interval",
                                     "McNemar p (Holm)", f"significant at {result['alpha']:g}"], rows))
    return (f"<h2>Per-class accuracy differences</h2>\n<p>Intervals: {boot['method']}, "
            f"{boot['resamples']:,} resamples (their spread, too narrow to judge by where the runs differ on few "
            "images). Significance: McNemar's exact test on each class's images, its p-values adjusted for "
            "testing every class at once (Holm).</p>\n" + "".join(parts))


def log_loss_text(row: dict) -> str:
    """A run's log-loss to 4 places, marked * where its probabilities are not the model's own."""
    return f"{row['log_loss']:.4f}" + ("*" if row.get("probabilities_note") else "")


def probabilities_notes(result: dict) -> list[str]:
    """What the * beside a run's log-loss means, one line a marked run."""
    return [f"* {r['run']}: {r['probabilities_note']}." for r in result["runs"] if r.get("probabilities_note")]


def p_text(pair: dict, n_pairs: int) -> str:
    """The pair's McNemar p, and where there are several pairs, its Holm-adjusted p that decides."""
    return f"McNemar p = {pair['p_value']:.3g}" + (f", {pair['p_holm']:.3g} adjusted for {n_pairs} pairs (Holm)"
                                                   if n_pairs > 1 else "")


def verdict(pair: dict, alpha: float) -> str:
    if not pair["significant"]:
        return f"not significant at {alpha:g}"
    better = pair["b"] if pair["b_only"] > pair["a_only"] else pair["a"]
    return f"{better} is better (p ≤ {alpha:g})"
