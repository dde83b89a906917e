"""Occlusion sensitivity: a per-pixel explanation for any model that gives probabilities.

A family without gradients or per-pixel weights of its own still answers
"which pixels made it say that?": cover one small patch of the image at a
time with the background value (0, the datasets' black) and see how much each
class's probability falls. A pixel's contribution to class k is the mean fall
over the patches that cover it — positive where the pixels speak for k,
negative where hiding them makes k more likely — on the same N×classes×784
layout as the families' own gradient × input maps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data.registry import IMAGE_SIDE

PATCH = 4  # pixels on a side: about a stroke's width, so that hiding one patch changes something
STRIDE = 2  # patches overlap, so that the map is not a coarse 4-pixel checkerboard


def occlusion_sensitivity(predict_proba: Callable[[np.ndarray], np.ndarray], X, patch: int = PATCH,
                          stride: int = STRIDE) -> np.ndarray:
    """Per-class, per-pixel contributions (N×classes×784) of ``X`` (N×784 in [0, 1]) by occluding patches."""
    X = np.asarray(X, dtype=np.float32).reshape(-1, IMAGE_SIDE * IMAGE_SIDE)
    starts = range(0, IMAGE_SIDE - patch + 1, stride)
    masks = np.zeros((len(starts) ** 2, IMAGE_SIDE, IMAGE_SIDE), dtype=bool)
    for m, (r, c) in enumerate((r, c) for r in starts for c in starts):
        masks[m, r:r + patch, c:c + patch] = True
    masks = masks.reshape(len(masks), -1)
    coverage = masks.sum(axis=0)  # how many patches cover each pixel (all ≥ 1 with these sizes)
    maps = []
    for x in X:  # one image's occluded copies per call: bounded memory, one batch for the model
        occluded = np.where(masks, 0.0, x).astype(np.float32)
        proba = np.asarray(predict_proba(np.vstack([x[None], occluded])), dtype=np.float64)
        fall = proba[0] - proba[1:]  # patches × classes
        maps.append((fall.T @ masks) / np.maximum(coverage, 1))
    return np.asarray(maps).reshape(len(X), -1, IMAGE_SIDE * IMAGE_SIDE)
