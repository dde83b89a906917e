"""A trained run, ready to predict: what ``Run.predict``, the CLI's `predict` and the web page share.

``Predictor.predict`` takes what a person has at hand — a photo's path or
bytes, a PIL image, a 28×28 array like the dataset's, or a batch of any of
these — and answers ``Prediction`` objects that also show themselves in a
notebook (the input the model saw, the probabilities, the evidence map).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .. import html
from .._values import is_whole_number
from ..data.preprocess import flatten_scale
from ..data.registry import IMAGE_SIDE
from ..errors import ModelFileError, ParameterError, printable
from ..models.base import N_FEATURES
from ..run_config import read_config
from .photo import Prepared, decoded_photo, prepare, prepare_photo

if TYPE_CHECKING:  # the models (and scikit-learn) load with a Predictor: the ONNX engine uses Prediction alone
    from ..models.base import MnistlabModel

FLOAT_OVERSHOOT = 2.0  # see ``as_pixels``


def top_classes(proba: np.ndarray, classes, k: int) -> list[dict]:
    """The ``k`` most probable classes, most probable first."""
    if not is_whole_number(k) or k < 1:
        raise ParameterError("k", f"how many classes to list must be a whole number ≥ 1, got {k!r}")
    order = html.most_probable_first(proba)[:k]
    return [{"class": classes[i], "label": int(i), "probability": float(proba[i])} for i in order]


@dataclass
class Prediction:
    """One image's prediction: the class, every class's probability, and the 28×28 input the model saw."""

    label: int
    class_name: str
    probabilities: np.ndarray  # (classes,)
    pixels: np.ndarray  # uint8 28×28, object bright on dark: what the model saw
    classes: list[str]
    source: str  # the file's name, or what kind of input it was
    prepared: Prepared | None = field(default=None, repr=False)  # how a photo became ``pixels``
    model: MnistlabModel | None = field(default=None, repr=False, compare=False)

    @property
    def notes(self) -> list[str]:
        """What the photo's conversion dropped or undid, one line each (none for an array)."""
        return self.prepared.notes() if self.prepared is not None else []

    def top(self, k: int = 3) -> list[dict]:
        """The ``k`` most probable classes as dicts (class, label, probability)."""
        return top_classes(self.probabilities, self.classes, k)

    @cached_property
    def contributions(self) -> np.ndarray | None:
        """Per-class, per-pixel evidence (classes × 784): the model's own, or occlusion; None without a model."""
        if self.model is None:
            return None
        return self.model.explain(flatten_scale(self.pixels[None]))[0]

    @cached_property
    def evidence(self) -> np.ndarray | None:
        """The predicted class's contributions (784,), computed for that class alone; None without a model."""
        if self.model is None:
            return None
        return self.model.explain(flatten_scale(self.pixels[None]), classes=[self.label])[0, 0]

    def explain(self):
        """A figure of why: the photo (if any), the input, the probabilities and each class's evidence map."""
        from .. import plots

        title = f"{plots.literal(self.source)}: {self.class_name} ({self.probabilities[self.label]:.1%})"
        if self.prepared is None:
            return plots.photo_explanation(None, self.pixels, self.probabilities, self.classes,
                                           title=title, contributions=self.contributions)
        return plots.photo_explanation(self.prepared.gray, self.pixels, self.probabilities, self.classes,
                                       title=title, contributions=self.contributions,
                                       found=self.prepared.found(), notes=self.prepared.notes())

    def __repr__(self) -> str:  # the dataclass's would print all 784 pixels (5 kB, and 100 kB for 20 in a list)
        return f"Prediction({self.class_name!r}, {self.probabilities[self.label]:.1%}, source={self.source!r})"

    def _repr_html_(self) -> str:
        parts = [html.image_tag(html.png_data_uri(self.pixels), 112, "the 28×28 input the model saw")]
        if self.evidence is not None:
            parts.append(html.image_tag(html.evidence_png(self.evidence), 112,
                                        f"evidence for {self.class_name}: blue for, red against"))
        images = '<div style="display:flex;gap:8px">' + "".join(parts) + "</div>"
        return html.card(f"{self.source}: {self.class_name} ({self.probabilities[self.label]:.1%})", images,
                         html.probability_bars(self.probabilities, self.classes, top=5))


class Predictor:
    """A run's model, its class names and the dataset whose photo conversion it needs."""

    def __init__(self, run_dir: Path, model: MnistlabModel | None = None):
        self.run_dir = Path(run_dir)
        config = read_config(self.run_dir)
        self.name = self.run_dir.name
        self.created = config["created"]  # which run of that name: one trained over it (overwrite) is another
        self.dataset = config["dataset"]["name"]
        self.classes: list[str] = config["dataset"]["classes"]
        from ..models.serialization import load_model

        # a model given is already checked against the run's classes (``Run.model``)
        self.model = model if model is not None else load_model(self.run_dir, n_classes=len(self.classes))

    def predict_pixels(self, pixels: np.ndarray, source: str = "28×28 image", prepared: Prepared | None = None
                       ) -> Prediction:
        """A 28×28 uint8 image like the dataset's (object bright on dark) → its prediction."""
        return prediction_of(self.model.predict_proba(flatten_scale(pixels[None]))[0], self.run_dir, self.classes,
                             pixels, source, prepared, self.model)

    def predict_photo(self, source, **overrides) -> Prediction:
        """A photo (path or bytes) → converted like the training data → its prediction."""
        prepared = prepare_photo(source, self.dataset, **overrides)
        return self.predict_pixels(prepared.pixels, _source_name(source), prepared)

    def predict(self, x) -> Prediction | list[Prediction]:
        """Predict a photo path or bytes, a PIL image, a 28×28 array, or a batch (list, or N×28×28 array).

        Photos and PIL images are converted like the training data; arrays are taken as they are
        (uint8 0–255, or floats in [0, 1], object bright on dark like the dataset's images).
        """
        if isinstance(x, (list, tuple)):
            return [self.predict(item) for item in x]
        # a stack of 28×28 images, not one 28×28×3 image
        if isinstance(x, np.ndarray) and x.ndim == 3 and x.shape[1:] == (IMAGE_SIDE, IMAGE_SIDE):
            return [self.predict(item) for item in x]
        if isinstance(x, (str, os.PathLike, bytes, bytearray, memoryview)):
            return self.predict_photo(x)
        if isinstance(x, Image.Image):
            # upright, as a photo's file is read (an image whose tag has been applied has none left)
            prepared = prepare(decoded_photo(x), style=self.dataset)
            return self.predict_pixels(prepared.pixels, "PIL image", prepared)
        if isinstance(x, np.ndarray):
            return self.predict_pixels(as_pixels(x))
        raise ParameterError("x", f"cannot predict a {type(x).__name__}: give a photo's path or bytes, a PIL "
                                  "image, a 28×28 array or a list of these")


def prediction_of(proba: np.ndarray, run_dir: Path, classes: list[str], pixels: np.ndarray, source: str,
                  prepared: Prepared | None = None, model: MnistlabModel | None = None) -> Prediction:
    """The prediction of run ``run_dir`` whose probabilities are ``proba``, checked (``finite_probabilities``)."""
    proba = finite_probabilities(proba, run_dir, source)
    label = int(np.argmax(proba))
    return Prediction(label, classes[label], proba, pixels, classes, source, prepared, model)


def finite_probabilities(proba: np.ndarray, run_dir: Path, source: str) -> np.ndarray:
    """``proba``, where every one is a number: weights that overflow give NaN, and no class then (argmax would
    say the first)."""
    if not np.all(np.isfinite(proba)):
        raise ModelFileError(f"{source}: the probabilities of the model of {run_dir} are not finite")
    return proba


def as_pixels(array: np.ndarray) -> np.ndarray:
    """A 28×28 (or 784) array, uint8 or floats in [0, 1], as the dataset's uint8 28×28."""
    if array.size != N_FEATURES:
        raise ParameterError("x", f"an array must hold one 28×28 image (784 values) or N of them as "
                                  f"N×28×28, got shape {array.shape}")
    array = array.reshape(IMAGE_SIDE, IMAGE_SIDE)
    if array.dtype.kind not in "buif":  # complex numbers, strings, objects
        raise ParameterError("x", f"pixel values must be real numbers, got an array of {array.dtype}")
    if array.dtype == np.uint8:
        return array
    values = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 255:
        raise ParameterError("x", "pixel values must be finite, in [0, 1] (floats) or 0–255")
    # Floats up to FLOAT_OVERSHOOT are [0, 1] with rounding or a resize's overshoot (1.0001 read as
    # 0–255 made the image black); 0–255 values that small would be black anyway.
    if values.max() <= (FLOAT_OVERSHOOT if array.dtype.kind == "f" else 1):
        values = np.minimum(values, 1) * 255
    return np.round(values).astype(np.uint8)


def _source_name(source) -> str:
    """The photo's file name as titles show it (control characters and bytes that are no UTF-8 escaped)."""
    return printable(Path(source).name) if isinstance(source, (str, os.PathLike)) else "photo"
