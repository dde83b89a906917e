"""McNemar's exact test against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.experiments.compare import mcnemar_exact


def test_mcnemar_hand_computed():
    # 20 images: both right on 8, both wrong on 2, only A right on 1, only B right on 9.
    y = np.zeros(20, dtype=int)
    a = np.array([0] * 8 + [1] * 2 + [0] * 1 + [1] * 9)
    b = np.array([0] * 8 + [1] * 2 + [1] * 1 + [0] * 9)
    result = mcnemar_exact(y, a, b)
    assert (result["a_only"], result["b_only"]) == (1, 9)
    # two-sided exact binomial: 2 · P(X ≤ 1 | n=10, p=½) = 2 · (1 + 10) / 1024
    assert result["p_value"] == pytest.approx(22 / 1024)


def test_mcnemar_identical_predictions():
    y = np.array([0, 1, 2])
    assert mcnemar_exact(y, y, y) == {"a_only": 0, "b_only": 0, "p_value": 1.0}
