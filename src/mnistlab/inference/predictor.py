"""A trained run, ready to predict: what the CLI's `predict` and the web page share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.serialization import load_model
from .photo import Prepared, prepare_photo
from ..data.preprocess import flatten_scale
from ..runs.store import read_config


def top_classes(proba: np.ndarray, classes, k: int) -> list[dict]:
    """The ``k`` most probable classes, most probable first."""
    order = np.argsort(proba)[::-1][:k]
    return [{"class": classes[i], "label": int(i), "probability": float(proba[i])} for i in order]


@dataclass(frozen=True)
class Prediction:
    label: int
    class_name: str
    probabilities: np.ndarray  # (classes,)
    pixels: np.ndarray  # uint8 28×28: what the model saw
    contributions: np.ndarray | None  # (classes, 784) per-pixel explanation, when asked for and available

    def top(self, k: int, classes) -> list[dict]:
        return top_classes(self.probabilities, classes, k)


class Predictor:
    """A run's model, its class names and the dataset whose photo conversion it needs."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        config = read_config(self.run_dir)
        self.name = self.run_dir.name
        self.dataset = config["dataset"]["name"]
        self.classes: list[str] = config["dataset"]["classes"]
        self.model = load_model(self.run_dir)

    def predict_pixels(self, pixels: np.ndarray, explain: bool = False) -> Prediction:
        x = flatten_scale(pixels[None])
        proba = self.model.predict_proba(x)[0]
        contributions = self.model.explain(x)[0] if explain and hasattr(self.model, "explain") else None
        label = int(np.argmax(proba))
        return Prediction(label, self.classes[label], proba, pixels, contributions)

    def predict_photo(self, source, explain: bool = False, **overrides) -> tuple[Prepared, Prediction]:
        """A photo (path or bytes) → its 28×28 conversion and the model's answer."""
        prepared = prepare_photo(source, self.dataset, **overrides)
        return prepared, self.predict_pixels(prepared.pixels, explain=explain)
