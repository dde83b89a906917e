"""Predicting a batch of the user's own photos, optionally against their labels.

A bad file never stops the batch: it gets a one-line error in its result and
the others are still predicted.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from .._io import read_at_most
from ..errors import MnistlabError, ParameterError, PhotoError, printable
from ..metrics import confusion_matrix
from .predictor import Predictor

MAX_LABELS_BYTES = 5 * 1024 * 1024
MAX_STEM_BYTES = 200


def expand(paths: list[Path]) -> list[tuple[Path, str | None]]:
    """Each photo to predict, once, with the reason it cannot be when that is known already.

    Files are taken as given; a folder stands for its non-hidden files, sorted. Folders inside
    it are not searched: one named like a photo (``shirt.jpg/``) is reported rather than
    skipped, and so is a folder that holds no file at all or cannot be listed. A photo given
    twice (by itself and in its folder, say) is predicted once: a labelled one counts once.
    """
    photo_suffixes = set(Image.registered_extensions())
    found = []
    for path in paths:
        try:
            if not path.is_dir():
                found.append((path, None))
                continue
            entries = sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.suffix.lower() != ".csv")
        except OSError as exc:  # a folder that may not be listed, a name too long
            found.append((path, f"cannot read ({exc.strerror or exc})"))
            continue
        files = [(p, None) for p in entries if p.is_file()]
        files += [(p, "a folder, not a photo (folders inside folders are not searched)")
                  for p in entries if p.is_dir() and p.suffix.lower() in photo_suffixes]
        found += sorted(files) or [(path, "no photos in this folder")]
    once: dict[str, tuple[Path, str | None]] = {}
    for path, problem in found:
        once.setdefault(os.path.abspath(path), (path, problem))
    return list(once.values())


def read_labels(path: Path, classes: list[str]) -> dict[Path, int]:
    """``file,label`` rows → each file's path (a relative one from the CSV's folder) → class index.

    A label is a class's name or its index. Where classes are named by digits other than their
    indices (MNIST's ``--classes 1,2``: index 1 is "2"), the file decides: every label a name, all
    are names; else every label an index, all are indices; else a label that could mean two classes
    is refused. A file labelled twice with different classes is refused too.
    """
    try:
        data = read_at_most(path, MAX_LABELS_BYTES)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ParameterError("labels", f"{printable(str(path))}: cannot read "
                                       f"({getattr(exc, 'strerror', None) or exc})") from None
    if len(data) > MAX_LABELS_BYTES:
        raise ParameterError("labels", f"{printable(str(path))}: larger than {MAX_LABELS_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParameterError("labels", f"{printable(str(path))}: cannot read ({exc})") from None
    rows = csv.DictReader(io.StringIO(text))
    if not rows.fieldnames or not {"file", "label"} <= set(rows.fieldnames):
        raise ParameterError("labels", f"{printable(str(path))}: needs a header with the columns file,label")
    by_name = {name.lower(): i for i, name in enumerate(classes)}
    read = []  # (line, file, label text)
    for line, row in enumerate(rows, start=2):
        file, label = ((row[column] or "").strip() for column in ("file", "label"))  # None: the row is short
        if not file:
            raise ParameterError("labels", f"{printable(str(path))}:{line}: no file name")
        read.append((line, file, label))

    def as_index(text: str) -> int | None:
        return int(text) if text.isdecimal() and text.isascii() and int(text) < len(classes) else None  # not "²"
    names_all = all(label.lower() in by_name for _, _, label in read)
    indices_all = all(as_index(label) is not None for _, _, label in read)
    labels: dict[Path, int] = {}
    for line, file, label in read:
        named, index = by_name.get(label.lower()), as_index(label)
        if named is None and index is None:
            raise ParameterError("labels", f"{printable(str(path))}:{line}: label {label!r} is neither a class index "
                                           f"nor one of {classes}")
        if named is not None and index is not None and named != index and not (names_all or indices_all):
            raise ParameterError("labels", f"{printable(str(path))}:{line}: label {label!r} names the class "
                                           f"{classes[named]!r} but is the index of {classes[index]!r}; give every "
                                           "label as a class name, or every one as an index")
        chosen = named if names_all or index is None or (named is not None and not indices_all) else index
        key = Path(os.path.abspath(path.parent / file))
        if labels.setdefault(key, chosen) != chosen:
            raise ParameterError("labels", f"{printable(str(path))}:{line}: {printable(file)} is labelled "
                                           f"{classes[labels[key]]!r} in an earlier row")
    return labels


def predict_files(run_dir: Path, paths: list[Path], top: int = 3, labels: Path | None = None,
                  explain_dir: Path | None = None) -> dict:
    """Predict every photo; with ``labels``, also accuracy and the confusion matrix."""
    predictor = Predictor(run_dir)
    truth = read_labels(labels, predictor.classes) if labels else {}
    photos = expand(paths)
    rows = _rows_of(photos, truth, Path(os.path.abspath(labels.parent))) if labels else [None] * len(photos)
    results, y_true, y_pred, failed = [], [], [], 0
    explanations: set[str] = set()
    for (path, problem), key in zip(photos, rows):
        result: dict = {"file": str(path)}
        try:
            if problem:
                raise PhotoError(f"{printable(str(path))}: {problem}")
            prediction = predictor.predict_photo(path)
        except MnistlabError as exc:  # whatever is wrong with one photo, the others are still predicted
            result["error"] = str(exc)
            results.append(result)
            failed += key is not None
            continue
        result.update({"class": prediction.class_name, "label": prediction.label,
                       "top": prediction.top(top), "notes": prediction.notes})
        if key is not None:
            result["true_class"] = predictor.classes[truth[key]]
            y_true.append(truth[key])
            y_pred.append(prediction.label)
        if explain_dir is not None:
            from .. import plots  # matplotlib only where something is drawn

            picture = explain_dir / _explanation_name(path, explanations)
            try:
                result["explanation"] = str(plots.save_png(prediction.explain(), picture))
            except OSError as exc:  # a full disk: the prediction is still the answer
                result["explanation_error"] = (f"{printable(str(path))}: its explanation could not be written to "
                                               f"{printable(str(picture))} ({exc.strerror or exc})")
        results.append(result)
    answer = {"run": predictor.name, "results": results,
              "n_failed": sum("error" in r for r in results),
              "n_explanations_failed": sum("explanation_error" in r for r in results)}
    if labels:
        answer.update(classes=predictor.classes, n_labelled=len(y_true), n_labelled_failed=failed,
                      n_labels_unmatched=len(truth) - len(set(rows) - {None}),
                      accuracy=float(np.mean(np.array(y_true) == np.array(y_pred))) if y_true else None,
                      confusion_matrix=confusion_matrix(y_true, y_pred, len(predictor.classes)).tolist())
    return answer


def _rows_of(photos: list[tuple[Path, str | None]], truth: dict[Path, int], folder: Path) -> list[Path | None]:
    """Each photo's row of ``truth`` (None: unlabelled). A row names a file by its path from the CSV's
    ``folder``; one that names a file alone (``x.png``), and names no photo given, labels the photo of that
    name elsewhere, where no other row and no other unlabelled photo has the name: no row labels two photos."""
    given = [Path(os.path.abspath(path)) for path, _ in photos]
    named = Counter(key.name for key in truth)
    alone = {key.name: key for key in set(truth) - set(given) if key.parent == folder and named[key.name] == 1}
    unlabelled = Counter(key.name for key in given if key not in truth)
    return [key if key in truth else alone.get(key.name) if unlabelled[key.name] == 1 else None for key in given]


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
