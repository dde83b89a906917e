"""The notebooks' preparation steps: flatten, scale, standardise, split, subset, filter."""

from __future__ import annotations

import numpy as np

from .._values import is_number, is_whole_number
from ..errors import ParameterError


def flatten_scale(images: np.ndarray) -> np.ndarray:
    """uint8 N×28×28 → float32 N×784 in [0, 1]."""
    # One pass that converts as it divides: a float32 copy first and then the division took
    # 0.5–1 s for the 60 000 training images (memory-mapped), this 0.04 s, with the same values.
    return np.divide(np.asarray(images).reshape(len(images), -1), np.float32(255), dtype=np.float32)


def standardize(x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Zero mean, unit variance per pixel, fitted on ``x_train`` only; float32.

    What scikit-learn's ``StandardScaler`` computes (without importing it, over a second): the
    population standard deviation, and a pixel that (next to) never varies centred but not scaled.
    """
    x_train = np.asarray(x_train)
    mean, scale = x_train.mean(axis=0, dtype=np.float64), x_train.std(axis=0, dtype=np.float64)
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    # the float64 mean makes each difference float64: no copy converted beforehand
    return tuple(((np.asarray(x) - mean) / scale).astype(np.float32) for x in (x_train, *others))


def validation_split(x: np.ndarray, y: np.ndarray, fraction: float = 0.1, seed: int = 0, names=None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified ``(x_fit, x_val, y_fit, y_val)``, ``ceil(fraction · n)`` rows held out (``names``: as in
    ``stratified_split``)."""
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    fit, held = stratified_split(y, int(np.ceil(fraction * len(y))), seed, names)
    return x[fit], x[held], y[fit], y[held]


def held_out(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, parameter: str, names=None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``validation_split``, where a share that cannot be held out stratified (fewer held-out or
    remaining rows than classes, a class of one) is a ``ParameterError`` of ``parameter``, as is one that is
    no fraction; a seed that is no whole number from 0 to 2**32 - 1, of ``seed``."""
    check_seed(seed)
    if not is_number(fraction) or not 0 < fraction < 1:
        raise ParameterError(parameter, f"must be a fraction between 0 and 1, got {fraction!r}")
    try:
        return validation_split(x, y, fraction=fraction, seed=seed, names=names)
    except ValueError as exc:
        raise ParameterError(parameter, f"{fraction:g} of {len(y)} examples cannot be held out stratified: "
                                        f"{exc}") from None


def stratified_split(y: np.ndarray, n_test: int, seed: int, names=None) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` of a shuffled split with ``n_test`` test rows and each class's share kept.

    The very split scikit-learn's ``train_test_split(…, test_size=n_test, stratify=y, random_state=seed)``
    makes (its ``StratifiedShuffleSplit``, step by step, from the same random stream), so that every
    subset and validation set drawn before is drawn again — without importing scikit-learn for it.
    Raises ValueError where scikit-learn does: a class of one, fewer train or test rows than classes;
    ``names`` (what each value of ``y`` stands for, where ``y`` holds a model's class codes) name the classes
    in its message.
    """
    y = np.asarray(y)
    n_train = len(y) - n_test
    classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        single = classes[counts < 2]
        raise ValueError("classes with a single member cannot be split: "
                         f"{(single if names is None else np.asarray(names)[single]).tolist()}")
    if min(n_train, n_test) < len(classes):
        raise ValueError(f"parts of {n_train} and {n_test} rows cannot each hold all {len(classes)} classes")
    members = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)  # scikit-learn's generator, for its stream
    train_counts = _apportion(counts, n_train, rng)
    test_counts = _apportion(counts - train_counts, n_test, rng)
    train, test = [], []
    for rows, n_tr, n_te in zip(members, train_counts, test_counts):
        shuffled = rows[rng.permutation(len(rows))]
        train.extend(shuffled[:n_tr])
        test.extend(shuffled[n_tr:n_tr + n_te])
    return rng.permutation(train), rng.permutation(test)


def stratified_folds(y: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Indices ``(train, test)`` of each of ``n_folds`` shuffled folds, each class spread evenly over them.

    The very folds scikit-learn's ``StratifiedKFold(n_folds, shuffle=True, random_state=seed)`` makes (its
    ``_make_test_folds``, from the same random stream), without importing scikit-learn for it. Each class
    needs at least ``n_folds`` members (checked by the caller).
    """
    y = np.asarray(y)
    _, first, codes = np.unique(y, return_index=True, return_inverse=True)
    codes = np.argsort(np.argsort(first))[codes]  # classes numbered in order of first appearance
    in_order = np.sort(codes)
    # each fold's count of each class: the sorted labels dealt round-robin to the folds
    allocation = np.array([np.bincount(in_order[i::n_folds], minlength=len(first)) for i in range(n_folds)])
    rng = np.random.RandomState(seed)  # scikit-learn's generator, for its stream
    fold_of = np.empty(len(y), dtype=int)
    for k in range(len(first)):
        folds = np.arange(n_folds).repeat(allocation[:, k])
        rng.shuffle(folds)
        fold_of[codes == k] = folds
    rows = np.arange(len(y))
    return [(rows[fold_of != i], rows[fold_of == i]) for i in range(n_folds)]


def _apportion(counts: np.ndarray, n: int, rng: np.random.RandomState) -> np.ndarray:
    """``n`` draws shared among classes in proportion to ``counts``: each its floor, then one more each in
    order of the largest remainders, ties broken at random (scikit-learn's ``_approximate_mode``)."""
    exact = counts / counts.sum() * n
    shares = np.floor(exact)
    missing = int(n - shares.sum())
    remainder = exact - shares
    for value in np.sort(np.unique(remainder))[::-1]:
        if missing == 0:
            break
        tied = np.flatnonzero(remainder == value)
        chosen = rng.choice(tied, size=min(len(tied), missing), replace=False)
        shares[chosen] += 1
        missing -= len(chosen)
    return shares.astype(int)


def check_seed(seed) -> None:
    """A ParameterError of ``seed`` unless it is a whole number from 0 to 2**32 - 1 (NumPy's seeds)."""
    if not is_whole_number(seed) or not 0 <= seed < 2**32:
        raise ParameterError("seed", f"must be a whole number from 0 to 2**32 - 1, got {seed!r}")


def subset_indices(y: np.ndarray, n: int | None = None, per_class: int | None = None,
                   seed: int = 0, parameter: str = "n", names=None) -> np.ndarray:
    """Sorted indices of a reproducible, class-stratified subset.

    ``per_class`` takes that many of each class; ``n`` takes ``n`` in total
    with the classes' proportions kept. Neither: every index. A size that cannot be drawn is a
    ``ParameterError`` of ``parameter`` (the caller's name for ``n``); ``names``: as ``stratified_split``'s.
    """
    check_seed(seed)
    for name, count in ((parameter, n), ("per_class", per_class)):
        if count is not None and (not is_whole_number(count) or count < 1):
            raise ParameterError(name, f"must be a whole number of images ≥ 1, got {count!r}")
    if n is not None and per_class is not None:
        raise ParameterError(None, "give a subset's size n or its images per_class, not both")
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    if per_class is not None:
        chosen = []
        # with names, every class they name: one without examples is refused, not left out
        for c in range(len(names)) if names is not None else np.unique(y):
            members = np.flatnonzero(y == c)
            if per_class > len(members):
                raise ParameterError("per_class", f"class {c} has {len(members)} examples, fewer than {per_class}")
            chosen.append(rng.choice(members, per_class, replace=False))
        return np.sort(np.concatenate(chosen))
    if n is not None and n > len(y):  # taken as all of them, silently
        raise ParameterError(parameter, f"{n} is more than the {len(y)} examples")
    if n is None or n == len(y):
        return np.arange(len(y))
    n_classes = len(np.unique(y))
    if n < n_classes:
        raise ParameterError(parameter, f"a stratified subset needs at least one image of each of the {n_classes} "
                                  f"classes, got a size of {n}")
    if len(y) - n < n_classes:  # the rows left out cannot hold every class, as a split's other part must;
        # leaving out so few at random keeps the proportions within as many, and one image of each class stays
        kept = np.array([rng.choice(np.flatnonzero(y == c)) for c in np.unique(y)])
        rest = np.setdiff1d(np.arange(len(y)), kept)
        return np.sort(np.concatenate([kept, rng.choice(rest, n - len(kept), replace=False)]))
    try:
        _, idx = stratified_split(y, n, seed, names)
    except ValueError as exc:  # e.g. a class with a single member cannot be stratified
        raise ParameterError(parameter, f"cannot take a stratified subset of {n}: {exc}") from None
    return np.sort(idx)


def check_classes(keep, n_classes: int | None = None) -> tuple[int, ...]:
    """``keep`` as a tuple of at least two distinct class labels, each in 0..n_classes-1 (when given)."""
    # np.array(3) too; np.ndim of a list made it an array first, and [None, []] raised NumPy's "inhomogeneous"
    if isinstance(keep, (str, bytes)) or not hasattr(keep, "__iter__") or getattr(keep, "ndim", 1) == 0:
        raise ParameterError("classes", f"must be a list of class labels, got {keep!r}")
    keep = tuple(keep)
    for k in keep:
        if not is_whole_number(k):
            raise ParameterError("classes", f"class labels are whole numbers, got {k!r}")
        if k < 0:
            raise ParameterError("classes", f"class labels are 0 or more, got {k}")
        if n_classes is not None and k >= n_classes:
            raise ParameterError("classes", f"{k} is out of range for the dataset's {n_classes} classes "
                                            f"(0 to {n_classes - 1})")
    repeated = sorted({int(k) for k in keep if keep.count(k) > 1})
    if repeated:
        raise ParameterError("classes", f"{', '.join(map(str, repeated))} listed more than once in "
                                        f"{[int(k) for k in keep]}")
    if len(keep) < 2:
        raise ParameterError("classes", f"need at least two classes, got {[int(k) for k in keep]}")
    return tuple(int(k) for k in keep)


def filter_classes(x: np.ndarray, y: np.ndarray, keep: list[int] | tuple[int, ...]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose label is in ``keep``; labels renumbered by position in ``keep``."""
    keep = np.asarray(check_classes(keep))
    mask = np.isin(y, keep)
    # Each kept label's position in ``keep``, by search rather than a table as long as the largest label.
    order = np.argsort(keep)
    return x[mask], order[np.searchsorted(keep, y[mask], sorter=order)].astype(np.uint8)
