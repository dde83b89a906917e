"""Test-set metrics as plain JSON-able data, and the plain-text reading of them.

``evaluate`` turns labels and predicted probabilities into one dict (stored as
``metrics.json`` in a run directory); ``analysis`` and
``format_classification_report`` only read that dict, so they work the same on
a fresh evaluation and on a run loaded from disk.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true, y_pred, k: int) -> np.ndarray:
    """K×K counts of the labels 0…k-1: row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    return np.bincount(k * y_true + y_pred, minlength=k * k).reshape(k, k)


def _ratio(numerator, denominator) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0 (sklearn's ``zero_division=0``)."""
    return np.divide(numerator, denominator, out=np.zeros(np.shape(numerator)), where=denominator > 0)


def true_class_losses(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each image's cross-entropy: −log of the probability its true class was given, clipped as sklearn's
    log_loss clips it (at the probabilities' own float epsilon: a model certain and wrong has a finite loss).
    The log-loss is their mean, and the top losses their largest."""
    proba = np.asarray(proba)
    eps = np.finfo(proba.dtype).eps
    return -np.log(np.clip(proba[np.arange(len(y_true)), y_true], eps, 1 - eps))


def evaluate(y_true, proba, class_names) -> dict[str, Any]:
    """Metrics of the predictions ``argmax(proba)`` against ``y_true``.

    ``proba`` is N×K over all K classes of ``class_names``; classes absent from
    ``y_true`` are kept (their scores are 0, their support 0). The numbers are
    those of sklearn.metrics with ``labels=range(K)`` and ``zero_division=0``;
    rows need not sum to one (like sklearn, the log-loss does not renormalise them).
    """
    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba)
    if not np.issubdtype(proba.dtype, np.floating):
        proba = proba.astype(float)
    # Float probabilities keep their precision: the log-loss clips them at its eps, as sklearn's
    # log_loss did, so float64 copies of float32 ones would change the log-loss of stored runs.
    k = len(class_names)
    if proba.ndim != 2 or proba.shape != (len(y_true), k):
        raise ValueError(f"proba has shape {proba.shape}, expected ({len(y_true)}, {k})")
    if not np.all((0 <= y_true) & (y_true < k)):
        raise ValueError(f"y_true has labels outside 0…{k - 1}")
    if not np.all((0 <= proba) & (proba <= 1)):
        raise ValueError("proba has values outside [0, 1]")
    y_pred = proba.argmax(axis=1)

    cm = confusion_matrix(y_true, y_pred, k)
    right, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    scores = {"precision": _ratio(right, predicted), "recall": _ratio(right, support),
              "f1": _ratio(2 * right, support + predicted)}
    averages = {"macro": {name: float(np.mean(s)) for name, s in scores.items()},
                "weighted": {name: float(np.average(s, weights=support)) for name, s in scores.items()}}
    cm_normalized = _ratio(cm, support[:, None])

    return {
        "accuracy": float(np.mean(y_pred == y_true)),
        "macro_f1": averages["macro"]["f1"],
        "weighted_f1": averages["weighted"]["f1"],
        "log_loss": float(np.mean(true_class_losses(y_true, proba))),
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_normalized": cm_normalized.tolist(),
        "per_class": [
            {"class": str(name), "precision": float(p), "recall": float(r),
             "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, scores["precision"], scores["recall"], scores["f1"], support)
        ],
        "macro_avg": averages["macro"],
        "weighted_avg": averages["weighted"],
        "n_test": int(len(y_true)),
        "calibration": calibration(y_true, proba),
    }


CALIBRATION_BINS = 15


def calibration(y_true, proba, n_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """How far the top class's probability is from how often it is right: ECE, Brier score, reliability bins.

    ECE (expected calibration error) bins the test images by the probability of their predicted class
    (``n_bins`` equal-width bins over [0, 1], a bin holding its upper edge) and averages, weighted by
    the bins' image counts, |accuracy − mean confidence| of each bin. The Brier score is the mean over
    images of Σₖ (pₖ − [k is the true class])², from 0 (certain and right) to 2 (certain and wrong).
    """
    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    right = proba.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(bins, confidence, n_bins) / count
        accuracy = np.bincount(bins, right, n_bins) / count
    filled = count > 0
    ece = float(np.sum(count[filled] * np.abs(accuracy[filled] - mean_confidence[filled])) / max(len(y_true), 1))
    onehot = np.eye(proba.shape[1])[y_true]
    return {
        "ece": ece,
        "ece_binning": f"{n_bins} equal-width bins of the predicted class's probability over [0, 1]",
        "brier": float(np.mean(np.sum((proba - onehot) ** 2, axis=1))),
        "bins": {"edges": edges.tolist(), "count": count.tolist(),
                 # empty bins have no confidence or accuracy: None in JSON
                 "confidence": [float(c) if f else None for c, f in zip(mean_confidence, filled)],
                 "accuracy": [float(a) if f else None for a, f in zip(accuracy, filled)]},
    }


def confused_pairs(metrics: dict[str, Any], top: int = 3) -> list[tuple[int, int, int, int]]:
    """The ``top`` most confused class pairs as ``(a, b, a→b, b→a)``, a→b ≥ b→a."""
    cm = np.asarray(metrics["confusion_matrix"])
    pairs = []
    for i in range(len(cm)):
        for j in range(i + 1, len(cm)):
            a, b = (i, j) if cm[i, j] >= cm[j, i] else (j, i)
            if cm[a, b] + cm[b, a] > 0:
                pairs.append((a, b, int(cm[a, b]), int(cm[b, a])))
    pairs.sort(key=lambda p: (-(p[2] + p[3]), p[0], p[1]))
    return pairs[:top]


def analysis(metrics: dict[str, Any]) -> list[str]:
    """Short plain-text findings: overall scores, best and worst classes, confusions."""
    per_class = metrics["per_class"]
    names = [c["class"] for c in per_class]
    n_test = metrics["n_test"]
    n_correct = round(metrics["accuracy"] * n_test)
    lines = [
        f"Test accuracy {metrics['accuracy']:.2%} ({n_correct:,} of {n_test:,} test images "
        f"correct), macro F1 {metrics['macro_f1']:.3f}, log-loss {metrics['log_loss']:.4f}."
    ]

    # F1 as shown (three decimals): two classes of 0.98604 and 0.98596 were the best and the worst "0.986"
    present = sorted(({**c, "f1": round(c["f1"], 3)} for c in per_class if c["support"] > 0), key=lambda c: -c["f1"])
    n_show = max(1, min(3, len(present) // 2))
    if present and present[0]["f1"] == present[-1]["f1"]:  # a perfect model, say: no best, no worst
        lines.append(f"Every class has F1 {present[0]['f1']:.3f}.")
    elif present:
        def listing(classes):
            return ", ".join(f"{c['class']} {c['f1']:.3f}" for c in classes)
        # a class tied with the worst is no best one, nor one tied with the best a worst one
        best = [c for c in present[:n_show] if c["f1"] > present[-1]["f1"]]
        worst = [c for c in present[::-1][:n_show] if c["f1"] < present[0]["f1"]]
        lines.append(f"Best classes by F1: {listing(best)}.")
        lines.append(f"Worst classes by F1: {listing(worst)}.")
    absent = [c["class"] for c in per_class if c["support"] == 0]
    if absent:
        lines.append(f"No test images of: {', '.join(absent)} (their scores are 0 by convention).")

    if calibrated := metrics.get("calibration"):
        lines.append(f"Calibration: expected calibration error {calibrated['ece']:.3f} "
                     f"({calibrated['ece_binning']}), Brier score {calibrated['brier']:.3f}.")

    pairs = confused_pairs(metrics)
    if not pairs:
        lines.append("No test image was misclassified.")
    for a, b, ab, ba in pairs:
        lines.append(
            f"{names[a]} ↔ {names[b]}: {ab + ba:,} test image{'s' if ab + ba != 1 else ''} confused "
            f"({names[a]}→{names[b]} {ab:,}, {names[b]}→{names[a]} {ba:,})."
        )
    return lines


def format_classification_report(metrics: dict[str, Any], digits: int = 2) -> str:
    """A text table like sklearn's ``classification_report``, built from ``metrics``."""
    per_class = metrics["per_class"]
    n_test = metrics["n_test"]
    width = max(len("weighted avg"), *(len(c["class"]) for c in per_class))
    header = f"{'':>{width}}  {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"

    def row(name, p, r, f, support):
        return f"{name:>{width}}  {p:>9.{digits}f} {r:>9.{digits}f} {f:>9.{digits}f} {support:>9}"

    lines = [header, ""]
    lines += [row(c["class"], c["precision"], c["recall"], c["f1"], c["support"]) for c in per_class]
    lines += [
        "",
        f"{'accuracy':>{width}}  {'':>9} {'':>9} {metrics['accuracy']:>9.{digits}f} {n_test:>9}",
    ]
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        avg = metrics[key]
        lines.append(row(label, avg["precision"], avg["recall"], avg["f1"], n_test))
    return "\n".join(lines) + "\n"
