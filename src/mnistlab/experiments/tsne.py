"""A 2-D t-SNE map (van der Maaten & Hinton, 2008) in plain NumPy, with the exact gradient.

It follows scikit-learn's ``TSNE(init="pca", learning_rate="auto")``: each point's Gaussian over its
3·perplexity nearest neighbours, its width found by binary search to the perplexity; those conditional
probabilities symmetrised and normalised into P; a PCA start scaled to a standard deviation of 1e-4;
gradient descent with momentum and per-coordinate gains, P exaggerated 12× for the first 250 iterations.
Where scikit-learn approximates the repulsion between all pairs with a Barnes–Hut tree, this computes it
exactly, as two N×N float32 passes of BLAS and a few of NumPy per iteration: for the hundreds of points
of a map that is faster than the tree (it is meant for no more than a few thousand).

It runs on one BLAS thread whatever the caller's setting: its matrix products are too small for BLAS
threads, which only wait on each other (or spin beside a busy machine's other work, the other figures):
10× slower than one thread on a loaded 2-core machine.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

EXAGGERATION = 12.0  # P is multiplied by this at first, so that clusters form before they spread out
EXAGGERATED_ITERATIONS = 250
MOMENTUM = 0.5, 0.8  # while exaggerated, then after
MIN_GAIN = 0.01
INITIAL_STD = 1e-4  # of the first coordinate of the PCA start
SEARCH_STEPS = 100  # binary search of each point's Gaussian width
ENTROPY_TOLERANCE = 1e-5  # nats


@threadpool_limits.wrap(limits=1, user_api="blas")
def tsne(features: np.ndarray, perplexity: float = 30.0, iterations: int = 1000) -> np.ndarray:
    """A 2-D t-SNE map of the rows of ``features`` (N×anything), N×2 float32.

    ``perplexity`` (about how many neighbours each point keeps close) must be less than N. There is
    nothing random in it (the start is the data's first two principal components), so the same
    features give the same map.
    """
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n = len(x)
    if not 0 < perplexity < n:
        raise ValueError(f"t-SNE needs 0 < perplexity < the number of points ({n}), not {perplexity}")
    neighbours, sqdist = _nearest_neighbours(x, min(n - 1, int(3 * perplexity + 1)))
    counts, starts, columns, p = _joint_probabilities(neighbours, _conditional_probabilities(sqdist, perplexity))
    y = _pca_start(x).T.copy()  # 2×N: each coordinate's values side by side
    learning_rate = max(n / EXAGGERATION / 4, 50.0)
    pairs = np.empty((n, n), dtype=np.float32)  # reused by every gradient
    exaggerated = min(iterations, EXAGGERATED_ITERATIONS)
    for steps, momentum, exaggeration in ((exaggerated, MOMENTUM[0], EXAGGERATION),
                                          (iterations - exaggerated, MOMENTUM[1], 1.0)):
        edges = counts, starts, columns, (exaggeration * p).astype(np.float32)
        update, gains = np.zeros_like(y), np.ones_like(y)  # each stage starts afresh, as scikit-learn's
        for _ in range(steps):
            gradient = _gradient(y, edges, pairs)
            downhill = update * gradient < 0  # the last step still goes downhill: a bigger one
            gains = np.maximum(np.where(downhill, gains + 0.2, gains * 0.8), MIN_GAIN)
            update = momentum * update - learning_rate * gains * gradient
            y += update
    return y.T.copy()


def _nearest_neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's ``k`` nearest other points (N×k indices, in no order) and their squared distances."""
    x = x - x.mean(axis=0)
    sq = np.einsum("ij,ij->i", x, x)
    d = sq[:, None] + sq[None, :] - 2 * (x @ x.T)
    np.fill_diagonal(d, np.inf)
    neighbours = np.argpartition(d, k - 1, axis=1)[:, :k]
    return neighbours, np.maximum(np.take_along_axis(d, neighbours, axis=1), 0)


def _conditional_probabilities(sqdist: np.ndarray, perplexity: float) -> np.ndarray:
    """Each row's Gaussian over its neighbours, exp(−β·d²) normalised, with β searched for (all rows at
    once) until the entropy is log(perplexity): N×k."""
    n = len(sqdist)
    beta, low, high = np.ones(n), np.full(n, -np.inf), np.full(n, np.inf)
    p = np.empty_like(sqdist)
    searching = np.ones(n, dtype=bool)
    for _ in range(SEARCH_STEPS):
        q = np.exp(-sqdist * beta[:, None])
        total = q.sum(axis=1)
        total[total == 0] = 1e-8  # every neighbour far beyond the width: widen it next
        q /= total[:, None]
        excess = np.log(total) + beta * np.einsum("ij,ij->i", sqdist, q) - np.log(perplexity)
        p[searching] = q[searching]
        searching &= np.abs(excess) > ENTROPY_TOLERANCE
        if not searching.any():
            break
        wider = searching & (excess > 0)  # too flat: narrow the Gaussian (raise β)
        narrower = searching & (excess <= 0)
        low[wider], high[narrower] = beta[wider], beta[narrower]
        beta = np.where(wider, np.where(np.isinf(high), beta * 2, (beta + high) / 2), beta)
        beta = np.where(narrower, np.where(np.isinf(low), beta / 2, (beta + low) / 2), beta)
    return p


def _pca_start(x: np.ndarray) -> np.ndarray:
    """The first two principal components, signed as scikit-learn's PCA signs them (each component's
    largest loading positive), scaled so the first has standard deviation ``INITIAL_STD``: N×2 float32."""
    x = x - x.mean(axis=0)
    _, _, components = np.linalg.svd(x, full_matrices=False)
    components = components[:2]
    largest = components[np.arange(len(components)), np.abs(components).argmax(axis=1)]
    y = np.zeros((len(x), 2))
    y[:, :len(components)] = x @ (components * np.sign(largest)[:, None]).T
    spread = y[:, 0].std()
    return (y / spread * INITIAL_STD if spread > 0 else y).astype(np.float32)


def _joint_probabilities(neighbours: np.ndarray, conditional: np.ndarray) -> tuple[np.ndarray, ...]:
    """P = (C + Cᵀ) / its sum, where C holds each row's ``conditional`` probabilities of its ``neighbours``,
    over the pairs of neighbours (either way round), by row: how many pairs each row has, where they start,
    their columns and pᵢⱼ."""
    n = len(neighbours)
    c = np.zeros((n, n))
    np.put_along_axis(c, neighbours, conditional, axis=1)
    paired = np.zeros((n, n), dtype=bool)
    np.put_along_axis(paired, neighbours, True, axis=1)  # every row keeps its k pairs, even one of p = 0
    rows, columns = np.nonzero(paired | paired.T)
    p = c + c.T
    counts = np.bincount(rows, minlength=n)
    return counts, np.cumsum(counts) - counts, columns, p[rows, columns] / p.sum()


def _gradient(y: np.ndarray, edges: tuple[np.ndarray, ...], pairs: np.ndarray) -> np.ndarray:
    """∂KL(P‖Q)/∂y = 4 Σⱼ (pᵢⱼ − qᵢⱼ) wᵢⱼ (yᵢ − yⱼ), wᵢⱼ = 1 / (1 + |yᵢ − yⱼ|²), qᵢⱼ = wᵢⱼ / Σ w, for ``y``
    2×N: the attraction over the pairs of neighbours, the only ones where P is not 0 (``edges``, as
    ``_joint_probabilities`` gives them), the repulsion over all pairs (``pairs``: an N×N buffer). 2×N."""
    counts, starts, columns, p = edges
    y = y - y.mean(axis=1, keepdims=True)  # the map's place does not matter; centred, the product below is exacter
    # attraction: Σⱼ pᵢⱼ wᵢⱼ (yᵢ − yⱼ)
    apart = np.repeat(y, counts, axis=1)
    apart -= np.take(y, columns, axis=1)
    apart *= p / (1 + apart[0] * apart[0] + apart[1] * apart[1])
    force = np.add.reduceat(apart, starts, axis=1)
    # repulsion: Σⱼ wᵢⱼ² (yᵢ − yⱼ) / Σ w, with 1 + |yᵢ − yⱼ|² = (1 + |yᵢ|²) + |yⱼ|² − 2 yᵢ·yⱼ as one product
    sq = y[0] * y[0] + y[1] * y[1]
    ones = np.ones_like(sq)
    np.matmul(np.stack([y[0], y[1], 1 + sq, ones]).T, np.stack([-2 * y[0], -2 * y[1], ones, sq]), out=pairs)
    w = np.reciprocal(pairs, out=pairs)
    np.fill_diagonal(w, 0)  # no point repels itself
    z = float((w @ ones).sum())
    w2 = np.square(w, out=w)
    push = np.stack([y[0], y[1], ones, ones]) @ w2  # Σⱼ wᵢⱼ² yⱼ and Σⱼ wᵢⱼ² (w2 is symmetric)
    force -= (push[2] * y - push[:2]) / z
    return 4 * force
