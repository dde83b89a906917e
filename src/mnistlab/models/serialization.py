"""Models as arrays plus JSON — never pickle.

A model is two files: ``model.npz`` (the learned arrays, loaded with
``allow_pickle=False``) and ``model.json`` (format tag, family, hyperparameters
and which of them are tuples, dicts of int keys or not finite, array names, the
number of features it was fitted on (``n_features_in``) and their names where
it was fitted on a data frame (``feature_names_in``), the largest value it was
fitted on (``feature_max``), and the temperature its probabilities are scaled
by, when one was fitted: ``temperature``). Loading rebuilds the estimator from
its hyperparameters and hands it the arrays, so a model file can hold data but
never code.
"""

from __future__ import annotations

import contextlib
import io
import math
from numbers import Integral
from pathlib import Path

import numpy as np

from .._io import atomic_write_all, json_text, parse_json, read_regular_file
from .._npz import plain_dtype, read_npz
from .._values import is_number, is_whole_number
from ..errors import ModelFileError, ParameterError, one_line, shown_path
from . import get_family
from .base import N_FEATURES, MnistlabModel, unused_said_elsewhere
from .temperature import TemperatureScaled

MODEL_FORMAT = "mnistlab-model"
ARRAYS_FILE, META_FILE = "model.npz", "model.json"
MODEL_FORMAT_VERSION = 1
MAX_MODEL_BYTES = 512 * 1024 * 1024  # the learned arrays, in all
# save_model stores the arrays uncompressed, so they take no more than model.npz does; a file
# compressed elsewhere may inflate to this many times its size, so that a small file stays small.
MAX_INFLATION = 4
MAX_META_BYTES = 16 * 1024 * 1024  # model.json: a few kilobytes in practice


def save_model(model: MnistlabModel, directory: Path) -> None:
    """Write ``model.npz`` and ``model.json`` into ``directory``, both or neither: a model that cannot be
    written (a parameter JSON cannot hold) is a ``ParameterError``, and leaves a pair already there as it was."""
    arrays = {name: _plain(model, name, a) for name, a in model.get_arrays().items()}
    params = (model.model if isinstance(model, TemperatureScaled) else model).get_params(deep=False)
    written, int_keyed = saved_params(params)
    buffer = io.BytesIO()
    # every array is plain (``_plain``), so nothing is pickled; savez's allow_pickle=False would not do here: the
    # NumPy 1.26 this package takes has no such keyword, and stores it as one more array
    np.savez(buffer, **arrays)
    meta = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "family": model.family,
        "params": written,
        "int_key_params": int_keyed,
        # JSON has no tuples: these are read back as tuples, so that a loaded model's get_params() is the saved one's
        "tuple_params": sorted(name for name, value in params.items() if isinstance(value, tuple)),
        # nor infinity: these are written as "inf", "-inf" or "nan" (json_text) and read back as floats
        "nonfinite_params": sorted(name for name, value in params.items()
                                   if isinstance(value, float) and not math.isfinite(value)),
        "arrays": {name: {"dtype": str(a.dtype), "shape": list(a.shape)} for name, a in arrays.items()},
    }
    if hasattr(model, "n_features_in_"):  # so that a loaded model refuses images of another size as a fitted one does
        meta["n_features_in"] = int(model.n_features_in_)
    if hasattr(model, "feature_names_in_"):  # and a frame's columns in another order (read wrong, with a warning)
        meta["feature_names_in"] = [str(name) for name in model.feature_names_in_]
    if hasattr(model, "feature_max_"):  # and warns of raw 0-255 pixels given to a model fitted on pixels / 255
        meta["feature_max"] = float(model.feature_max_)
    if isinstance(model, TemperatureScaled):
        meta["temperature"] = model.temperature
    # the JSON text is made before either file is written, and the two replace theirs together: written one
    # after the other, a parameter JSON could not hold left the new model.npz beside the old model.json
    atomic_write_all({Path(directory) / ARRAYS_FILE: buffer.getvalue(),
                      Path(directory) / META_FILE: json_text(meta).encode("utf-8")})


def saved_params(params: dict) -> tuple[dict, list[str]]:
    """``params`` as model.json keeps them, and the names of those that are dicts of int keys; a
    ``ParameterError`` names one that JSON cannot hold (a run checks this before its fit: found at the save,
    it came after the whole fit).

    JSON's keys are strings: a dict of int keys (class_weight={0: 2.0}) is written with them as strings and
    read back as ints (int_key_params); read back as strings, the loaded model refused its own classes when
    refitted."""
    int_keyed = sorted(name for name, value in params.items() if _int_keyed(value))
    written = {name: {str(int(k)): v for k, v in value.items()} if name in int_keyed else value
               for name, value in params.items()}
    for name, value in written.items():
        try:
            if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
                raise TypeError("a dict's keys must be all strings or all ints, which JSON can tell apart")
            json_text(value)
        except (TypeError, ValueError) as exc:  # ValueError: a list that holds itself
            raise ParameterError(name, "cannot be saved: model files, runs and sweeps keep parameters as JSON, "
                                       f"and {one_line(exc)}") from None
    return written, int_keyed


def _int_keyed(value) -> bool:
    """Whether ``value`` is a dict whose keys are all ints (NumPy's too), as a class_weight of int labels is."""
    return isinstance(value, dict) and bool(value) and all(isinstance(k, Integral) and not isinstance(k, bool)
                                                           for k in value)


def _plain(model: MnistlabModel, name: str, a: np.ndarray) -> np.ndarray:
    """``a`` in a dtype ``read_npz`` reads: labels given as a frame's column of strings (or of ints) leave an object
    array as ``classes_``, which np.savez pickled (its default allow_pickle=True): the file saved, and no
    load_model read it back. Its strings are stored as text (its ints as int64); any other object is refused."""
    values = a.ravel().tolist() if a.dtype == object else None
    if values is not None and all(isinstance(v, str) for v in values):
        a = a.astype(str)
    elif values is not None and all(isinstance(v, Integral) and not isinstance(v, bool) for v in values):
        with contextlib.suppress(OverflowError):  # past int64: refused below
            a = a.astype(np.int64)
    if not plain_dtype(a.dtype):
        raise ParameterError(None, f"a {model.family} model whose array {name!r} holds {a.dtype} values cannot be "
                                   "kept in a model file, which holds numbers and text only (never a pickle)")
    return a


def _declared_arrays(meta: dict, meta_path: Path) -> dict[str, tuple[str, list[int]]]:
    """model.json's ``arrays``: each name's dtype string and shape, checked for form."""
    declared = meta.get("arrays")
    if not isinstance(declared, dict):
        raise ModelFileError(f"{shown_path(meta_path)}: 'arrays' must map each array's name to its dtype and shape")
    for name, spec in declared.items():
        shape = spec.get("shape") if isinstance(spec, dict) else None
        if not (isinstance(spec, dict) and isinstance(spec.get("dtype"), str) and isinstance(shape, list)
                and all(is_whole_number(d) and d >= 0 for d in shape)):
            raise ModelFileError(f"{shown_path(meta_path)}: array {name!r} must be given as "
                                 f"{{\"dtype\": …, \"shape\": [sizes]}}")
    return {name: (spec["dtype"], spec["shape"]) for name, spec in declared.items()}


def load_model(directory: Path, n_classes: int | None = None) -> MnistlabModel | TemperatureScaled:
    """Rebuild a fitted model from ``directory``; any inconsistency is a ``ModelFileError``.

    With ``n_classes`` (the class names a run lists), a model that predicts another number of
    classes is refused too: its probabilities would be shown under other classes' names.

    Nothing is allocated that model.json and the arrays' own headers do not bound (at most
    MAX_MODEL_BYTES in all, and MAX_INFLATION times the file's size), and floating-point
    weights must be finite.
    """
    directory = Path(directory)
    meta_path, arrays_path = directory / META_FILE, directory / ARRAYS_FILE
    if not arrays_path.is_file():
        raise ModelFileError(f"{shown_path(arrays_path)}: missing")
    data = read_regular_file(meta_path, MAX_META_BYTES, ModelFileError)
    try:
        meta = parse_json(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is one
        raise ModelFileError(f"{shown_path(meta_path)}: not valid JSON ({one_line(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{shown_path(meta_path)}: not an mnistlab model file")
    if meta.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(f"{shown_path(meta_path)}: unsupported format version {meta.get('format_version')!r} "
                             f"(this mnistlab reads version {MODEL_FORMAT_VERSION})")
    try:
        cls = get_family(meta["family"])
        params = dict(meta["params"])
        for name in meta.get("tuple_params", []):  # absent from files written before it was recorded
            if isinstance(params.get(name), list):
                params[name] = tuple(params[name])
        for name in meta.get("int_key_params", []):  # absent from files written before it was recorded
            if isinstance(params.get(name), dict):
                params[name] = {int(key): value for key, value in params[name].items()}
        for name in meta.get("nonfinite_params", []):  # files written before hold JSON's Infinity, read as floats
            if params.get(name) in ("inf", "-inf", "nan"):
                params[name] = float(params[name])
        # Files written before fits reported progress through fit(progress=...) carry the
        # hyperparameter "verbose" that replaced; it never changed what a model computes.
        params.pop("verbose", None)
        model = cls(**params)
        with unused_said_elsewhere():  # a setting given in vain was said when the model was fitted
            model.validate_params()
    except (KeyError, TypeError, ValueError) as exc:  # ParameterError is a ValueError
        raise ModelFileError(f"{shown_path(meta_path)}: bad family or parameters ({one_line(exc)})") from None
    arrays = read_npz(arrays_path, _declared_arrays(meta, meta_path), MAX_MODEL_BYTES, ModelFileError,
                      max_inflation=MAX_INFLATION)
    for name, a in arrays.items():
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise ModelFileError(f"{shown_path(arrays_path)}: weights are not finite (array {name!r} holds NaN or "
                                 "infinity)")
    try:
        model.set_arrays(arrays)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{shown_path(directory)}: {one_line(exc)}") from None
    if "n_features_in" in meta:  # absent from files written before it was recorded
        n_features = meta["n_features_in"]
        if not is_whole_number(n_features) or n_features < 1:
            raise ModelFileError(f"{shown_path(meta_path)}: 'n_features_in' must be a positive integer, got "
                                 f"{n_features!r}")
        model.n_features_in_ = n_features
    if "feature_names_in" in meta:  # a frame's column names, where the model was fitted on a frame
        names = meta["feature_names_in"]
        if not (isinstance(names, list) and all(isinstance(name, str) for name in names)
                and len(names) == getattr(model, "n_features_in_", len(names))):
            raise ModelFileError(f"{shown_path(meta_path)}: 'feature_names_in' must list one name (a string) per "
                                 "feature")
        model.feature_names_in_ = np.asarray(names, dtype=object)  # as scikit-learn keeps them
    if "feature_max" in meta:  # absent from files written before it was recorded: those do not warn
        if not is_number(meta["feature_max"]) or not math.isfinite(meta["feature_max"]):
            raise ModelFileError(f"{shown_path(meta_path)}: 'feature_max' must be a finite number, got "
                                 f"{meta['feature_max']!r}")
        model.feature_max_ = float(meta["feature_max"])
    if "temperature" in meta:
        try:
            model = TemperatureScaled(model, meta["temperature"])
        except ParameterError as exc:
            raise ModelFileError(f"{shown_path(meta_path)}: 'temperature' {exc.problem}") from None
    if n_classes is not None and (predicts := predicted_classes(model, arrays_path)) != n_classes:
        raise ModelFileError(f"{shown_path(directory)}: the model predicts {predicts} classes but the run lists "
                             f"{n_classes}")
    if n_classes is not None and not np.array_equal(getattr(model, "classes_", np.arange(n_classes)),
                                                    np.arange(n_classes)):  # a run's labels are 0 … n - 1
        raise ModelFileError(f"{shown_path(directory)}: the model's classes_ are not the run's labels 0 to "
                             f"{n_classes - 1}, in order")
    return model


def predicted_classes(model: MnistlabModel, path: Path) -> int:
    """How many classes ``model`` gives probabilities for, asked with one blank 28×28 image.

    Arrays can agree with model.json and still not fit together (or not take 28×28 images):
    such a model is refused as a ``ModelFileError`` naming ``path``, before its first real prediction.
    """
    try:
        proba = model.predict_proba(np.zeros((1, N_FEATURES), np.float32))
    except (ValueError, KeyError, IndexError, TypeError, RuntimeError, AttributeError) as exc:
        # AttributeError: parameters that need a learned array the file does not hold (as NotFittedError is one)
        raise ModelFileError(f"{shown_path(path)}: the model cannot predict a 28×28 image ({one_line(exc)})") from None
    if np.ndim(proba) != 2 or len(proba) != 1 or not np.isfinite(proba).all():
        raise ModelFileError(f"{shown_path(path)}: the model gives no finite probabilities for a 28×28 image")
    return int(np.shape(proba)[1])
