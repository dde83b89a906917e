"""Predicting a batch of the user's own photos, optionally against their labels.

A bad file never stops the batch: it gets a one-line error in its result and
the others are still predicted.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix

from .. import plots
from ..errors import ParameterError, PhotoError
from .predictor import Predictor

MAX_LABELS_BYTES = 5 * 1024 * 1024


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders replaced by their (non-hidden) files, sorted."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                            and p.suffix.lower() != ".csv")
        else:
            found.append(path)
    return found


def read_labels(path: Path, classes: list[str]) -> dict[str, int]:
    """``file,label`` rows → file name → class index (label as index or class name)."""
    try:
        if path.stat().st_size > MAX_LABELS_BYTES:
            raise ParameterError("labels", f"{path}: larger than {MAX_LABELS_BYTES} bytes")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError("labels", f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    rows = csv.DictReader(io.StringIO(text))
    if not rows.fieldnames or not {"file", "label"} <= set(rows.fieldnames):
        raise ParameterError("labels", f"{path}: needs a header with the columns file,label")
    by_name = {name.lower(): i for i, name in enumerate(classes)}
    labels = {}
    for line, row in enumerate(rows, start=2):
        text = (row["label"] or "").strip()
        if text.isdigit() and int(text) < len(classes):
            labels[Path(row["file"]).name] = int(text)
        elif text.lower() in by_name:
            labels[Path(row["file"]).name] = by_name[text.lower()]
        else:
            raise ParameterError("labels", f"{path}:{line}: label {text!r} is neither a class index nor one of {classes}")
    return labels


def predict_files(run_dir: Path, paths: list[Path], top: int = 3, labels: Path | None = None,
                  explain_dir: Path | None = None) -> dict:
    """Predict every photo; with ``labels``, also accuracy and the confusion matrix."""
    predictor = Predictor(run_dir)
    truth = read_labels(labels, predictor.classes) if labels else {}
    results, y_true, y_pred = [], [], []
    for path in expand(paths):
        result: dict = {"file": str(path)}
        try:
            prediction = predictor.predict_photo(path)
        except (PhotoError, OSError) as exc:
            result["error"] = str(exc) if isinstance(exc, PhotoError) else f"cannot read ({exc.strerror or exc})"
            results.append(result)
            continue
        result.update({"class": prediction.class_name, "label": prediction.label,
                       "top": prediction.top(top)})
        if path.name in truth:
            result["true_class"] = predictor.classes[truth[path.name]]
            y_true.append(truth[path.name])
            y_pred.append(prediction.label)
        if explain_dir is not None:
            result["explanation"] = str(plots.save_png(prediction.explain(), explain_dir / f"{path.stem}.png"))
        results.append(result)
    answer = {"run": predictor.name, "results": results,
              "n_failed": sum("error" in r for r in results)}
    if labels:
        answer.update(classes=predictor.classes, n_labelled=len(y_true),
                      accuracy=float(np.mean(np.array(y_true) == np.array(y_pred))) if y_true else None,
                      confusion_matrix=confusion_matrix(y_true, y_pred,
                                                        labels=range(len(predictor.classes))).tolist())
    return answer
