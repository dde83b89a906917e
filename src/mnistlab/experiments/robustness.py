"""Accuracy under controlled shifts of the test images: how much does a model rely on exact pixels?

Each shift is applied at a few strengths to the same sample of test images
(at most ``MAX_IMAGES``, so that it costs a few predictions, not a re-test):
translation by whole pixels, rotation by degrees, added Gaussian noise and a
contrast change. A pixel-based model (logistic regression, an MLP) loses
accuracy fast under translation; a CNN keeps far more of it. The random parts
(each image's direction and noise) are seeded, so every run and every model
sees the very same shifted images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..data.preprocess import flatten_scale

MAX_IMAGES = 1000
SEED = 0


@dataclass(frozen=True)
class Shift:
    name: str
    unit: str  # of the strengths, for tables and axes
    unshifted: float  # the strength that leaves an image as it is
    strengths: tuple[float, ...]
    apply: Callable[[np.ndarray, float, np.random.Generator], np.ndarray]  # float N×28×28 in [0, 1] → same


def _translate(images, pixels, rng):
    """Each image moved ``pixels`` up, down, left or right (its own seeded choice); the edge fills with black."""
    out = np.zeros_like(images)
    steps = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])[rng.integers(0, 4, len(images))] * int(pixels)
    for (dy, dx) in np.unique(steps, axis=0):
        chosen = np.all(steps == (dy, dx), axis=1)
        out[chosen] = ndimage.shift(images[chosen], (0, dy, dx), order=0, mode="constant", cval=0.0)
    return out


def _rotate(images, degrees, rng):
    """Each image turned ``degrees`` about its centre, clockwise or anticlockwise (its own seeded choice)."""
    out = np.empty_like(images)
    clockwise = rng.random(len(images)) < 0.5
    for chosen, angle in ((clockwise, -degrees), (~clockwise, degrees)):
        out[chosen] = ndimage.rotate(images[chosen], angle, axes=(2, 1), reshape=False, order=1, mode="constant")
    return np.clip(out, 0.0, 1.0)


def _noise(images, sigma, rng):
    """Gaussian noise of standard deviation ``sigma`` (in units of the full 0–1 range), clipped to [0, 1]."""
    return np.clip(images + np.float32(sigma) * rng.standard_normal(images.shape, dtype=np.float32), 0.0, 1.0)


def _contrast(images, factor, rng):
    """Each image's pixels pulled towards its own mean: ``factor`` 1 is the original, 0 a flat grey."""
    mean = images.mean(axis=(1, 2), keepdims=True)
    return mean + factor * (images - mean)


SHIFTS: dict[str, Shift] = {s.name: s for s in [
    Shift("translation", "px", 0, (1, 2, 3, 4), _translate),
    Shift("rotation", "°", 0, (5, 10, 15, 20), _rotate),
    Shift("noise", "σ", 0, (0.1, 0.2, 0.3), _noise),
    Shift("contrast", "× contrast", 1, (0.75, 0.5, 0.25), _contrast),
]}


def sample(n: int, max_images: int = MAX_IMAGES) -> np.ndarray:
    """The (sorted, seeded) indices of the test images robustness is measured on."""
    return np.sort(np.random.default_rng(SEED).permutation(n)[:max_images])


def robustness(predict_proba: Callable[[np.ndarray], np.ndarray], images: np.ndarray, y_true: np.ndarray,
               max_images: int = MAX_IMAGES) -> dict:
    """Accuracy on a sample of ``images`` (uint8 N×28×28) as it is and under each shift at each strength.

    Returns ``{"n_images", "clean", "shifts": {name: {"unit", "unshifted", "strengths", "accuracy"}}}``
    (JSON-able; ``clean`` is the accuracy at every shift's ``unshifted`` strength).
    """
    idx = sample(len(images), max_images)
    x = flatten_scale(images[idx]).reshape(-1, 28, 28)
    y = np.asarray(y_true)[idx]

    def accuracy(shifted: np.ndarray) -> float:
        proba = predict_proba(shifted.reshape(len(shifted), -1).astype(np.float32, copy=False))
        return float(np.mean(np.argmax(proba, axis=1) == y))

    shifts = {}
    for shift in SHIFTS.values():
        # a fresh generator per strength: the same directions and noise draws, only the strength changes
        shifts[shift.name] = {"unit": shift.unit, "unshifted": shift.unshifted, "strengths": list(shift.strengths),
                              "accuracy": [accuracy(shift.apply(x, s, np.random.default_rng(SEED)))
                                           for s in shift.strengths]}
    return {"n_images": int(len(idx)), "clean": accuracy(x), "shifts": shifts}
