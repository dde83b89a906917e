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

from ..data.preprocess import flatten_scale
from ..data.registry import IMAGE_SIDE

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
    p = int(pixels)
    steps = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])[rng.integers(0, 4, len(images))] * p
    height, width = images.shape[1:]
    padded = np.pad(images, ((0, 0), (p, p), (p, p)))
    out = np.empty_like(images)
    for (dy, dx) in np.unique(steps, axis=0):
        chosen = np.all(steps == (dy, dx), axis=1)
        # an image moved by (dy, dx) is its black-bordered copy seen through a window moved by (-dy, -dx)
        out[chosen] = padded[chosen, p - dy:p - dy + height, p - dx:p - dx + width]
    return out


def _rotate(images, degrees, rng):
    """Each image turned ``degrees`` about its centre, clockwise or anticlockwise (its own seeded choice)."""
    out = np.empty_like(images)
    clockwise = rng.random(len(images)) < 0.5
    for chosen, angle in ((clockwise, -degrees), (~clockwise, degrees)):
        out[chosen] = _turned(images[chosen], angle)
    return np.clip(out, 0.0, 1.0)


def _turned(images, degrees):
    """``images`` (N×H×W) turned ``degrees`` anticlockwise about their centre, with bilinear interpolation.

    The same as ``scipy.ndimage.rotate(images, degrees, axes=(2, 1), reshape=False, order=1)`` to float32
    rounding, without importing scipy.ndimage, which alone takes a third of a second.
    """
    height, width = images.shape[1:]
    cy, cx = (height - 1) / 2, (width - 1) / 2  # scipy turns about the middle of the pixel centres
    y, x = np.mgrid[:height, :width]
    cos, sin = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    # each output pixel is sampled where the turn carries it from; rows count downwards, hence the signs
    sy = cy + cos * (y - cy) + sin * (x - cx)
    sx = cx - sin * (y - cy) + cos * (x - cx)
    # scipy's mode="constant" blacks out any sample beyond the outermost pixel centres, not only those a
    # whole pixel outside, so the corners go black rather than fading. The slack is for quarter turns, where
    # np.cos and np.sin (unlike scipy's exact cosdg and sindg) are a rounding error off and would push a whole
    # edge row of samples just outside.
    slack = 1e-9
    inside = (-slack <= sy) & (sy <= height - 1 + slack) & (-slack <= sx) & (sx <= width - 1 + slack)
    # clipped so both neighbours exist: a sample on the last row (column) then takes all its weight from the
    # lower (right) one, which is that row itself
    y0 = np.clip(np.floor(sy).astype(int), 0, height - 2)
    x0 = np.clip(np.floor(sx).astype(int), 0, width - 2)
    fy, fx = sy - y0, sx - x0
    top = images[:, y0, x0] * (1 - fx) + images[:, y0, x0 + 1] * fx
    bottom = images[:, y0 + 1, x0] * (1 - fx) + images[:, y0 + 1, x0 + 1] * fx
    return np.where(inside, top * (1 - fy) + bottom * fy, 0.0).astype(images.dtype)


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
    x = flatten_scale(images[idx]).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
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
