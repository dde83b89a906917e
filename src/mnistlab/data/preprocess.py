"""The notebooks' preparation steps: flatten, scale, standardise, split, subset, filter."""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

# scikit-learn is imported inside the functions that use it: it costs most of
# a second, and `mnistlab --help` or a warm data load should not pay it.


def flatten_scale(images: np.ndarray) -> np.ndarray:
    """uint8 N×28×28 → float32 N×784 in [0, 1]."""
    return np.asarray(images, dtype=np.float32).reshape(len(images), -1) / np.float32(255)


def standardize(x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Zero mean, unit variance per pixel, fitted on ``x_train`` only."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    return tuple(scaler.transform(x).astype(np.float32) for x in (x_train, *others))


def validation_split(x: np.ndarray, y: np.ndarray, fraction: float = 0.1,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified ``(x_fit, x_val, y_fit, y_val)``."""
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=fraction, stratify=y, random_state=seed)


def subset_indices(y: np.ndarray, n: int | None = None, per_class: int | None = None,
                   seed: int = 0) -> np.ndarray:
    """Sorted indices of a reproducible, class-stratified subset.

    ``per_class`` takes that many of each class; ``n`` takes ``n`` in total
    with the classes' proportions kept. Neither: every index.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    if per_class is not None:
        chosen = []
        for c in np.unique(y):
            members = np.flatnonzero(y == c)
            if per_class > len(members):
                raise ParameterError("per_class", f"class {c} has {len(members)} examples, fewer than {per_class}")
            chosen.append(rng.choice(members, per_class, replace=False))
        return np.sort(np.concatenate(chosen))
    if n is None or n >= len(y):
        return np.arange(len(y))
    if n <= 0:
        raise ParameterError("n", f"subset size must be positive, got {n}")
    from sklearn.model_selection import train_test_split

    _, idx = train_test_split(np.arange(len(y)), test_size=n, stratify=y, random_state=seed)
    return np.sort(idx)


def filter_classes(x: np.ndarray, y: np.ndarray, keep: list[int] | tuple[int, ...]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose label is in ``keep``; labels renumbered by position in ``keep``."""
    keep = list(keep)
    if len(set(keep)) != len(keep) or len(keep) < 2:
        raise ParameterError("classes", f"need at least two distinct classes, got {keep}")
    mask = np.isin(y, keep)
    mapping = np.full(max(max(keep), int(y.max(initial=0))) + 1, -1, dtype=np.int64)
    mapping[keep] = np.arange(len(keep))
    return x[mask], mapping[y[mask]].astype(np.uint8)
