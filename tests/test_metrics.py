import json
import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.metrics import classification_report, log_loss, precision_recall_fscore_support

from mnistlab.metrics import (analysis, confusion_matrix, confused_pairs, evaluate,
                                          format_classification_report)


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


def random_predictions(dtype, normalised, k=10, n=400, seed=0):
    """Labels without classes 3 and 7, probabilities that never predict class 5 (and give it 0 where true),
    plus rows of exact 0s and 1s, so both ends of the log-loss's clipping are used."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice([c for c in range(k) if c not in (3, 7)], n)
    proba = rng.dirichlet(np.full(k, 0.3), n)
    proba[:, 5] = 0
    proba /= proba.sum(axis=1, keepdims=True)
    y_true[:3] = [0, 1, 5]
    proba[:3] = np.eye(k)[[0, 9, 9]]  # certain: once right, twice wrong
    if not normalised:
        proba *= rng.uniform(0.5, 1.0, (n, 1))
    return y_true, proba.astype(dtype)


@pytest.mark.parametrize("normalised", [True, False])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_evaluate_matches_sklearn_on_random_predictions(dtype, normalised):
    k = 10
    y_true, proba = random_predictions(dtype, normalised, k)
    y_pred = proba.argmax(axis=1)
    assert 5 in y_true and 5 not in y_pred
    labels = range(k)
    m = evaluate(y_true, proba, [f"c{c}" for c in labels])

    def close(ours, theirs):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    close([c["precision"] for c in m["per_class"]], p)
    close([c["recall"] for c in m["per_class"]], r)
    close([c["f1"] for c in m["per_class"]], f)
    assert [c["support"] for c in m["per_class"]] == s.tolist()
    assert s[3] == s[7] == 0 and p[5] == 0
    for average in ("macro", "weighted"):
        expected = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                   zero_division=0)[:3]
        close([m[f"{average}_avg"][name] for name in ("precision", "recall", "f1")], expected)
        close(m[f"{average}_f1"], expected[2])
    assert m["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    close(m["accuracy"], skm.accuracy_score(y_true, y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn's "do not sum to one", for the unnormalised rows
        close(m["log_loss"], log_loss(y_true, proba, labels=labels))


def test_log_loss_clips_at_the_probabilities_own_precision():
    y_true, proba = [0, 1], np.array([[1.0, 0.0], [1.0, 0.0]])
    for dtype in (np.float32, np.float64):
        eps = np.finfo(dtype).eps
        expected = -(np.log(1 - eps) + np.log(eps)) / 2
        assert evaluate(y_true, proba.astype(dtype), ["a", "b"])["log_loss"] == pytest.approx(expected, rel=1e-6)


def test_confusion_matrix_matches_sklearn():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 4, 100), rng.integers(1, 5, 100)
    expected = skm.confusion_matrix(y_true, y_pred, labels=range(6))
    assert np.array_equal(confusion_matrix(y_true, y_pred, 6), expected)
    assert confusion_matrix([], [], 3).tolist() == [[0] * 3] * 3


@pytest.mark.parametrize("y_true, proba, match", [
    ([0, 2], np.full((2, 2), 0.5), "labels outside"),
    ([0, -1], np.full((2, 2), 0.5), "labels outside"),
    ([0, 1], np.array([[1.5, -0.5], [0.5, 0.5]]), r"outside \[0, 1\]"),
    ([0, 1], np.array([[np.nan, 0.5], [0.5, 0.5]]), r"outside \[0, 1\]"),
])
def test_evaluate_rejects_impossible_labels_and_probabilities(y_true, proba, match):
    with pytest.raises(ValueError, match=match):
        evaluate(y_true, proba, ["a", "b"])


def test_analysis_lists_no_class_tied_with_the_worst_among_the_best():
    """A model of one class: classes of F1 0 were listed as the best, beside others of F1 0 as the worst."""
    names = [str(i) for i in range(6)]
    y_true = np.repeat(np.arange(6), 5)
    lines = analysis(evaluate(y_true, one_hot_proba([0] * 30, 6), names))
    assert "Best classes by F1: 0 0.286." in lines
    assert next(line for line in lines if line.startswith("Worst")).count(" 0.000") == 3
    lines = analysis(evaluate(y_true, one_hot_proba(list(y_true), 6), names))
    assert "Every class has F1 1.000." in lines and not any(line.startswith("Best") for line in lines)
    metrics = evaluate(y_true, one_hot_proba(list(y_true), 6), names)
    for row, f1 in zip(metrics["per_class"], [0.98604, 0.98596] + [0.98601] * 4):  # all "0.986" as shown
        row["f1"] = f1
    lines = analysis(metrics)  # were the best and the worst class, both "0.986"
    assert "Every class has F1 0.986." in lines and not any(line.startswith("Best") for line in lines)
