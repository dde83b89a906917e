"""McNemar's exact test against hand computation; per-class accuracy differences with bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.experiments.compare import class_accuracy_deltas, fair_coin_p_value, judge, mcnemar_exact, verdict


def test_mcnemar_hand_computed():
    # 20 images: both right on 8, both wrong on 2, only A right on 1, only B right on 9.
    y = np.zeros(20, dtype=int)
    a = np.array([0] * 8 + [1] * 2 + [0] * 1 + [1] * 9)
    b = np.array([0] * 8 + [1] * 2 + [1] * 1 + [0] * 9)
    result = mcnemar_exact(y, a, b)
    assert (result["a_only"], result["b_only"]) == (1, 9)
    # two-sided exact binomial: 2 · P(X ≤ 1 | n=10, p=½) = 2 · (1 + 10) / 1024
    assert result["p_value"] == pytest.approx(22 / 1024)


@pytest.mark.parametrize("n", [1, 2, 7, 30, 101, 1000, 10000])
def test_fair_coin_p_value_is_scipys_binomial_test(n):
    from scipy.stats import binomtest

    for k in sorted({0, 1, n // 3, n // 2 - 1, n // 2} - {-1}):
        assert fair_coin_p_value(k, n) == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-9, abs=1e-300)


def test_mcnemar_identical_predictions():
    y = np.array([0, 1, 2])
    assert mcnemar_exact(y, y, y) == {"a_only": 0, "b_only": 0, "p_value": 1.0}


def test_class_accuracy_deltas_with_bootstrap_intervals():
    # class 0: A right on all 40, B on 20; class 1: both right on the same 30 of 40; class 2: no test images
    y = np.array([0] * 40 + [1] * 40)
    a = np.array([0] * 40 + [1] * 30 + [0] * 10)
    b = np.array([0] * 20 + [1] * 20 + [1] * 30 + [0] * 10)
    worse, same, absent = class_accuracy_deltas(y, a, b, n_classes=3)
    assert worse["delta"] == pytest.approx(-0.5) and worse["n"] == 40
    # the resampled share of B's misses among 40 images: its 95% interval is about ±0.15 around −0.5
    assert -0.7 < worse["low"] < -0.5 < worse["high"] < -0.3
    assert same == {"delta": 0.0, "low": 0.0, "high": 0.0, "n": 40, "p_value": 1.0, "p_holm": 1.0,
                    "significant": False}  # identical predictions: no uncertainty
    assert absent == {"delta": None, "low": None, "high": None, "n": 0, "p_value": None, "p_holm": None,
                      "significant": None}  # every row has the same keys
    assert worse["p_value"] == fair_coin_p_value(0, 20) and worse["p_holm"] == 2 * worse["p_value"]  # 2 classes tested
    assert worse["significant"]
    assert class_accuracy_deltas(y, a, b, 3) == class_accuracy_deltas(y, a, b, 3)  # seeded


def test_a_class_where_the_runs_differ_on_a_few_images_is_not_called_significant():
    """5 of 40 images right for A alone: the bootstrap interval excludes 0, the exact test (p = 1/16) does not."""
    y = np.zeros(40, dtype=int)
    a, b = np.zeros(40, dtype=int), np.r_[np.ones(5, dtype=int), np.zeros(35, dtype=int)]
    (row,) = class_accuracy_deltas(y, a, b, n_classes=1)
    assert row["high"] < 0 and row["p_value"] == pytest.approx(0.0625) and not row["significant"]
    # at the level itself it is: p ≤ α rejects, as scipy's and statsmodels' tests do (it was p < α)
    (row,) = class_accuracy_deltas(y, a, b, n_classes=1, alpha=0.0625)
    assert row["significant"]
    pair = {"a": "A", "b": "B", **mcnemar_exact(y, b, a)}  # the same for a pair of runs, and said so
    judge([pair], 0.0625)
    assert pair["significant"] and verdict(pair, 0.0625) == "B is better (p ≤ 0.0625)"


def test_holm_adjusts_in_steps_and_keeps_the_order():
    from mnistlab.experiments.compare import holm

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == [] and holm([0.6]) == [0.6]
