"""The NumPy t-SNE behind the run's map: scikit-learn's algorithm with the exact gradient, as good a map."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.experiments import tsne as tsne_mod
from mnistlab.experiments.interpret import MIN_EMBEDDED, embed
from mnistlab.experiments.tsne import tsne
from mnistlab.models.base import MnistlabModel


def clusters(n: int = 400, k: int = 8, dims: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` overlapping Gaussian clusters of different widths (about 70 % of each point's 10 nearest
    neighbours share its cluster), float32, and each point's cluster."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    centres = rng.normal(0, 1, (k, dims))
    x = centres[labels] + rng.normal(0, 1, (n, dims)) * rng.uniform(0.5, 1.5, k)[labels, None]
    return x.astype(np.float32), labels


def neighbours_agree(xy: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """The share of each point's ``k`` nearest neighbours in ``xy`` that have its label."""
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(d, np.inf)
    return float((labels[np.argsort(d, axis=1)[:, :k]] == labels[:, None]).mean())


def test_the_map_keeps_neighbours_as_well_as_scikit_learns():
    from sklearn.manifold import TSNE, trustworthiness

    x, labels = clusters()
    ours = tsne(x, perplexity=15.0, iterations=300)
    theirs = TSNE(2, init="pca", random_state=0, perplexity=15, max_iter=300, angle=0.8).fit_transform(x)
    assert ours.shape == (400, 2) and ours.dtype == np.float32
    # measured: trustworthiness 0.922 and 0.922, neighbours of the same cluster 74.6 % and 74.3 % (70.7 % in x)
    assert trustworthiness(x, ours, n_neighbors=10) >= trustworthiness(x, theirs, n_neighbors=10) - 0.01
    assert neighbours_agree(ours, labels) >= neighbours_agree(theirs, labels) - 0.02
    assert neighbours_agree(ours, labels) > neighbours_agree(x, labels)  # clusters drawn apart


def test_each_point_has_the_perplexity_asked_for_and_p_is_a_symmetric_distribution():
    x, _ = clusters(n=200)
    n, k = len(x), 46  # 3 · 15 + 1 neighbours, as scikit-learn takes
    neighbours, sqdist = tsne_mod._nearest_neighbours(x.astype(np.float64), k)
    brute = ((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(brute, np.inf)
    assert np.array_equal(np.sort(neighbours, axis=1), np.sort(np.argsort(brute, axis=1)[:, :k], axis=1))
    assert np.allclose(sqdist, np.take_along_axis(brute, neighbours, axis=1))
    conditional = tsne_mod._conditional_probabilities(sqdist, 15.0)
    assert np.allclose(conditional.sum(axis=1), 1)
    entropy = -(conditional * np.log(np.maximum(conditional, 1e-300))).sum(axis=1)
    assert np.allclose(np.exp(entropy), 15.0, rtol=1e-4)
    counts, starts, columns, p = tsne_mod._joint_probabilities(neighbours, conditional)
    dense = np.zeros((n, n))
    dense[np.repeat(np.arange(n), counts), columns] = p
    assert np.allclose(dense, dense.T) and dense.sum() == pytest.approx(1)
    assert np.array_equal(starts, np.r_[0, np.cumsum(counts)[:-1]])


def test_the_gradient_is_the_exact_one():
    rng = np.random.default_rng(1)
    n = 60
    y = rng.normal(0, 5, (n, 2))
    p = rng.random((n, n)) * (rng.random((n, n)) < 0.2)
    p = p + p.T
    np.fill_diagonal(p, 0)
    p /= p.sum()
    rows, columns = np.nonzero(p)
    counts = np.bincount(rows, minlength=n)
    edges = counts, np.cumsum(counts) - counts, columns, p[rows, columns].astype(np.float32)
    ours = tsne_mod._gradient(y.T.astype(np.float32), edges, np.empty((n, n), np.float32)).T

    def kl(y):
        w = 1 / (1 + ((y[:, None, :] - y[None, :, :]) ** 2).sum(axis=-1))
        np.fill_diagonal(w, 0)
        q = w / w.sum()
        return (p[p > 0] * np.log(p[p > 0] / q[p > 0])).sum()

    step = 1e-6  # central differences of KL(P‖Q), in float64
    numeric = np.zeros_like(y)
    for i in range(n):
        for axis in range(2):
            moved = y.copy()
            moved[i, axis] += step
            numeric[i, axis] = kl(moved)
            moved[i, axis] -= 2 * step
            numeric[i, axis] = (numeric[i, axis] - kl(moved)) / (2 * step)
    assert np.abs(ours - numeric).max() < 1e-3 * np.abs(numeric).max()


def test_the_same_features_give_the_same_map():
    x, _ = clusters(n=150)
    first = tsne(x, 10.0, 300)
    assert np.array_equal(first, tsne(x.copy(), 10.0, 300))
    assert np.array_equal(first, tsne(x.astype(np.float64), 10.0, 300))  # computed in float64 either way


@pytest.mark.parametrize("n", [MIN_EMBEDDED, 11, 20, 30])
def test_a_few_points_are_mapped_with_two_groups_apart(n):
    rng = np.random.default_rng(n)
    labels = np.arange(n) % 2
    x = labels[:, None] * 6.0 + rng.normal(0, 1, (n, 10))
    xy = tsne(x, min(15.0, (n - 1) / 3), 300)  # the perplexity embed caps it at
    assert xy.shape == (n, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    # a few points spread far (as in scikit-learn's map: the learning rate is at least 50), but each group keeps
    # together: the mean distance within one is under 0.8 of that between them (0.2–0.46 here, at most 0.78
    # over 80 other such sets)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=-1))
    same = labels[:, None] == labels[None, :]
    assert d[same].sum() / (same.sum() - n) < 0.8 * d[~same].mean()


def test_degenerate_features_give_a_finite_map_and_a_bad_perplexity_an_error():
    assert np.array_equal(tsne(np.zeros((12, 3)), 3.0, 300), np.zeros((12, 2), np.float32))
    repeated = tsne(np.repeat(np.random.default_rng(0).normal(size=(4, 3)), 5, axis=0), 3.0, 300)
    assert np.isfinite(repeated).all() and np.array_equal(repeated[0], repeated[4])  # copies stay together
    line = tsne(np.arange(20.0)[:, None], 5.0, 300)  # one feature: a map on a line
    assert np.isfinite(line).all() and np.all(line[:, 1] == 0)
    for perplexity in (0, 12, 20):
        with pytest.raises(ValueError, match="perplexity"):
            tsne(np.zeros((12, 3)), perplexity, 300)


class Fixed(MnistlabModel):
    family = "fixed"

    def predict_proba(self, X):
        return np.full((len(X), 3), 1 / 3)


def test_embed_maps_the_log_probabilities_of_a_small_test_set():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=MIN_EMBEDDED)
    mapped = embed(Fixed(), np.zeros((MIN_EMBEDDED, 784), np.float32), proba)
    assert set(mapped) == {"index", "xy", "of"} and mapped["of"] == "log-probabilities"
    assert list(mapped["index"]) == list(range(MIN_EMBEDDED))
    assert mapped["xy"].shape == (MIN_EMBEDDED, 2) and mapped["xy"].dtype == np.float32
    assert embed(Fixed(), np.zeros((MIN_EMBEDDED - 1, 784), np.float32), proba[1:]) is None
