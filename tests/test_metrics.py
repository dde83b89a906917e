import json
import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import classification_report, log_loss, precision_recall_fscore_support

from mnistlab.experiments.metrics import analysis, confused_pairs, evaluate, format_classification_report


def one_hot_proba(pred, k):
    """Probabilities putting 0.9 + 0.1/k on ``pred``."""
    return np.eye(k)[pred] * 0.9 + 0.1 / k


def test_evaluate_matches_hand_computation():
    y_true = [0, 0, 0, 1, 1, 2]
    # predictions 0, 0, 1, 1, 0, 2: right ones get 0.8, wrong ones 0.6 (pred) / 0.3 (true)
    proba = np.array([
        [0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.3, 0.6, 0.1],
        [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8],
    ])
    m = evaluate(y_true, proba, ["a", "b", "c"])

    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert m["confusion_matrix_normalized"][0] == pytest.approx([2 / 3, 1 / 3, 0])
    assert [c["f1"] for c in m["per_class"]] == pytest.approx([2 / 3, 1 / 2, 1])
    assert [c["precision"] for c in m["per_class"]] == pytest.approx([2 / 3, 1 / 2, 1])
    assert [c["support"] for c in m["per_class"]] == [3, 2, 1]
    assert m["macro_f1"] == pytest.approx(13 / 18)
    assert m["weighted_f1"] == pytest.approx(4 / 6)
    assert m["log_loss"] == pytest.approx(-(4 * math.log(0.8) + 2 * math.log(0.3)) / 6)
    assert m["n_test"] == 6
    assert m["per_class"][1]["class"] == "b"
    json.dumps(m)  # plain Python types only


def test_absent_class_keeps_all_labels_without_warnings():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 50)  # class 3 never occurs
    proba = rng.dirichlet(np.ones(4), 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = evaluate(y_true, proba, ["w", "x", "y", "z"])
    y_pred = proba.argmax(1)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    assert [c["f1"] for c in m["per_class"]] == pytest.approx(f)
    assert [c["recall"] for c in m["per_class"]] == pytest.approx(r)
    assert m["per_class"][3]["support"] == 0
    assert len(m["confusion_matrix"]) == 4
    assert m["confusion_matrix_normalized"][3] == [0, 0, 0, 0]
    assert m["log_loss"] == pytest.approx(log_loss(y_true, proba, labels=range(4)))
    assert any("No test images of: z" in line for line in analysis(m))


def test_float32_probabilities_give_no_warning():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(500, 10)).astype(np.float32)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = evaluate(rng.integers(0, 10, 500), proba, [str(i) for i in range(10)])
    assert isinstance(m["log_loss"], float)


def test_evaluate_rejects_mismatched_proba():
    with pytest.raises(ValueError, match="shape"):
        evaluate([0, 1], np.full((2, 3), 1 / 3), ["a", "b"])


def test_analysis_names_the_most_confused_pair():
    names = ["T-shirt/top", "Trouser", "Shirt"]
    y_true = [0] * 10 + [1] * 10 + [2] * 10
    pred = ([0] * 6 + [2] * 3 + [1]) + [1] * 10 + ([2] * 5 + [0] * 5)
    m = evaluate(y_true, one_hot_proba(pred, 3), names)
    lines = analysis(m)

    assert confused_pairs(m)[0] == (2, 0, 5, 3)
    assert ("Shirt ↔ T-shirt/top: 8 test images confused "
            "(Shirt→T-shirt/top 5, T-shirt/top→Shirt 3).") in lines
    assert lines[0].startswith("Test accuracy 70.00% (21 of 30")
    assert "Best classes by F1: Trouser 0.952." in lines
    assert "Worst classes by F1: Shirt 0.556." in lines


def test_analysis_without_errors_and_with_one():
    m = evaluate([0, 1, 1], one_hot_proba([0, 1, 1], 2), ["a", "b"])
    assert "No test image was misclassified." in analysis(m)
    m = evaluate([0, 1, 1], one_hot_proba([0, 0, 1], 2), ["a", "b"])
    assert "b ↔ a: 1 test image confused (b→a 1, a→b 0)." in analysis(m)


def test_classification_report_text_matches_sklearn():
    rng = np.random.default_rng(1)
    names = ["T-shirt/top", "Trouser", "Pullover", "Ankle boot"]
    y_true = rng.integers(0, 3, 80)
    proba = rng.dirichlet(np.ones(4), 80)
    m = evaluate(y_true, proba, names)
    for digits in (2, 3):
        expected = classification_report(y_true, proba.argmax(1), labels=range(4),
                                         target_names=names, zero_division=0, digits=digits)
        assert format_classification_report(m, digits=digits) == expected
