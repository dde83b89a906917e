"""Models as arrays plus JSON — never pickle.

A model is two files: ``model.npz`` (the learned arrays, loaded with
``allow_pickle=False``) and ``model.json`` (format tag, family,
hyperparameters, array names). Loading rebuilds the estimator from its
hyperparameters and hands it the arrays, so a model file can hold data
but never code.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes, write_json
from ..errors import ModelFileError
from . import MnistlabModel, get_family

MODEL_FORMAT = "mnistlab-model"
MODEL_FORMAT_VERSION = 1
MAX_MODEL_BYTES = 512 * 1024 * 1024


def save_model(model: MnistlabModel, directory: Path) -> None:
    """Write ``model.npz`` and ``model.json`` into ``directory``."""
    arrays = model.get_arrays()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    meta = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "family": model.family,
        "params": model.get_params(deep=False),
        "arrays": {name: {"dtype": str(a.dtype), "shape": list(a.shape)} for name, a in arrays.items()},
    }
    atomic_write_bytes(Path(directory) / "model.npz", buffer.getvalue())
    write_json(Path(directory) / "model.json", meta)


def load_model(directory: Path) -> MnistlabModel:
    """Rebuild a fitted model from ``directory``; any inconsistency is a ``ModelFileError``."""
    directory = Path(directory)
    meta_path, arrays_path = directory / "model.json", directory / "model.npz"
    for path in (meta_path, arrays_path):
        if not path.is_file():
            raise ModelFileError(f"{path}: missing")
        if path.stat().st_size > MAX_MODEL_BYTES:
            raise ModelFileError(f"{path}: larger than {MAX_MODEL_BYTES} bytes")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{meta_path}: not an mnistlab model file")
    if meta.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(f"{meta_path}: unsupported format version {meta.get('format_version')}")
    try:
        cls = get_family(meta["family"])
        params = dict(meta["params"])
        # Files written before fits reported progress through fit(progress=...) carry the
        # hyperparameter "verbose" that replaced; it never changed what a model computes.
        params.pop("verbose", None)
        model = cls(**params)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{meta_path}: bad family or parameters ({exc})") from None
    try:
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{arrays_path}: unreadable ({exc})") from None
    declared = meta.get("arrays", {})
    for name, spec in declared.items():
        a = arrays.get(name)
        if a is None or str(a.dtype) != spec.get("dtype") or list(a.shape) != spec.get("shape"):
            raise ModelFileError(f"{arrays_path}: array {name!r} does not match model.json")
    if set(arrays) != set(declared):
        raise ModelFileError(f"{arrays_path}: arrays differ from those model.json lists")
    try:
        return model.set_arrays(arrays)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{directory}: {exc}") from None
