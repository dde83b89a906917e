"""Predicting a batch of the user's own photos, optionally against their labels.

A bad file never stops the batch: it gets a one-line error in its result and
the others are still predicted.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import MnistlabError, ParameterError, PhotoError
from ..experiments.metrics import confusion_matrix
from .predictor import Predictor

MAX_LABELS_BYTES = 5 * 1024 * 1024
MAX_STEM_BYTES = 200


def expand(paths: list[Path]) -> list[tuple[Path, str | None]]:
    """Each photo to predict, with the reason it cannot be when that is known already.

    Files are taken as given; a folder stands for its non-hidden files, sorted. Folders inside
    it are not searched: one named like a photo (``shirt.jpg/``) is reported rather than
    skipped, and so is a folder that holds no file at all.
    """
    photo_suffixes = set(Image.registered_extensions())
    found = []
    for path in paths:
        if not path.is_dir():
            found.append((path, None))
            continue
        entries = sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.suffix.lower() != ".csv")
        files = [(p, None) for p in entries if p.is_file()]
        files += [(p, "a folder, not a photo (folders inside folders are not searched)")
                  for p in entries if p.is_dir() and p.suffix.lower() in photo_suffixes]
        found += sorted(files) or [(path, "no photos in this folder")]
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
        file, text = ((row[column] or "").strip() for column in ("file", "label"))  # None: the row is short
        if not file:
            raise ParameterError("labels", f"{path}:{line}: no file name")
        if text.isdecimal() and text.isascii() and int(text) < len(classes):  # not "²", which int() refuses
            labels[Path(file).name] = int(text)
        elif text.lower() in by_name:
            labels[Path(file).name] = by_name[text.lower()]
        else:
            raise ParameterError("labels", f"{path}:{line}: label {text!r} is neither a class index nor one of {classes}")
    return labels


def predict_files(run_dir: Path, paths: list[Path], top: int = 3, labels: Path | None = None,
                  explain_dir: Path | None = None) -> dict:
    """Predict every photo; with ``labels``, also accuracy and the confusion matrix."""
    predictor = Predictor(run_dir)
    truth = read_labels(labels, predictor.classes) if labels else {}
    results, y_true, y_pred = [], [], []
    explanations: set[str] = set()
    for path, problem in expand(paths):
        result: dict = {"file": str(path)}
        try:
            if problem:
                raise PhotoError(f"{path}: {problem}")
            prediction = predictor.predict_photo(path)
        except MnistlabError as exc:  # whatever is wrong with one photo, the others are still predicted
            result["error"] = str(exc)
            results.append(result)
            continue
        result.update({"class": prediction.class_name, "label": prediction.label,
                       "top": prediction.top(top), "notes": prediction.notes})
        if path.name in truth:
            result["true_class"] = predictor.classes[truth[path.name]]
            y_true.append(truth[path.name])
            y_pred.append(prediction.label)
        if explain_dir is not None:
            from .. import plots  # matplotlib only where something is drawn

            result["explanation"] = str(plots.save_png(prediction.explain(),
                                                       explain_dir / _explanation_name(path, explanations)))
        results.append(result)
    answer = {"run": predictor.name, "results": results,
              "n_failed": sum("error" in r for r in results)}
    if labels:
        answer.update(classes=predictor.classes, n_labelled=len(y_true),
                      accuracy=float(np.mean(np.array(y_true) == np.array(y_pred))) if y_true else None,
                      confusion_matrix=confusion_matrix(y_true, y_pred, len(predictor.classes)).tolist())
    return answer


def _explanation_name(path: Path, taken: set[str]) -> str:
    """The file name of ``path``'s explanation: its stem, cut to leave room in a file name (255 bytes),
    numbered where another photo of the batch has it (``a.jpg`` and ``a.png``, or two folders' ``a.png``;
    ``A.JPG`` too, which is the same file on a filesystem that ignores case)."""
    # the bytes the name has, UTF-8 or not (a byte that is none becomes �); a name of dots alone would hide it
    stem = os.fsencode(path.stem)[:MAX_STEM_BYTES].decode(errors="replace").lstrip(".") or "photo"
    name = stem
    for number in itertools.count(2):
        if name.casefold() not in taken:
            break
        name = f"{stem}-{number}"
    taken.add(name.casefold())
    return f"{name}.png"
