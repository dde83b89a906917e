"""A run folder's ``config.json``: its name, and its reading, checked.

Below both what makes and lists runs (``experiments``, whose ``store`` knows the rest of a run folder) and what
applies a run to new images (``inference``, which needs the run's family, dataset and classes): neither imports the
other.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from ._io import parse_json, read_regular_file
from .data.registry import DATASETS
from .errors import ParameterError, RunDamagedError, one_line, shown_path
from .models import check_family_name

CONFIG = "config.json"  # all that is needed to reproduce a run, and what it is: family, dataset, classes
MAX_JSON_BYTES = 64 * 1024 * 1024


def read_json(path: Path) -> Any:
    """A JSON file of a run; any problem is a RunDamagedError naming the file."""
    data = read_regular_file(path, MAX_JSON_BYTES, RunDamagedError)
    try:
        return parse_json(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is one
        raise RunDamagedError(f"{shown_path(path)}: not valid JSON ({one_line(exc)})") from None


def require_keys(path: Path, obj: Any, keys: dict[str, type]) -> dict:
    """``obj``, read from ``path``, if it is a JSON object with ``keys`` of their types (a bool is no number)."""
    if not isinstance(obj, dict):
        raise RunDamagedError(f"{shown_path(path)}: expected a JSON object, got {type(obj).__name__}")
    for key, kind in keys.items():
        if not isinstance(obj.get(key), kind) or isinstance(obj.get(key), bool) and kind is not bool:
            raise RunDamagedError(f"{shown_path(path)}: {key!r} is missing or not {kind.__name__}")
    return obj


def read_config(run_dir: Path) -> dict:
    """config.json, checked for what the rest of mnistlab reads from it."""
    path = Path(run_dir) / CONFIG
    config = require_keys(path, read_json(path), {"name": str, "model": str, "params": dict, "dataset": dict,
                                                  "data": dict, "created": str})
    require_keys(path, config["dataset"], {"name": str, "classes": list, "n_train": int, "n_test": int})
    if not all(isinstance(name, str) for name in config["dataset"]["classes"]):
        raise RunDamagedError(f"{shown_path(path)}: the dataset's classes must be names (strings)")
    try:  # compare and the listings read it as the family
        check_family_name(config["model"])
    except ParameterError:
        raise RunDamagedError(f"{shown_path(path)}: 'model' must be a model family, got {config['model']!r}") from None
    dataset = config["dataset"]["name"]  # how its photos are converted; which data evaluation loads again
    if dataset not in DATASETS or config["data"].get("dataset", dataset) != dataset:
        raise RunDamagedError(f"{shown_path(path)}: the dataset must be one of {', '.join(DATASETS)}, the same in "
                              f"'dataset' and 'data', got {dataset!r} and {config['data'].get('dataset')!r}")
    if not isinstance(config["dataset"].get("test_images_sha256", ""), str):  # absent from runs written before
        raise RunDamagedError(f"{shown_path(path)}: the dataset's 'test_images_sha256' must be a string")
    try:  # listings sort by it: any text would do, and be taken for the newest run (the page's default)
        datetime.fromisoformat(config["created"])
    except ValueError:
        raise RunDamagedError(f"{shown_path(path)}: 'created' must be a date and time, got "
                              f"{config['created']!r}") from None
    return config
