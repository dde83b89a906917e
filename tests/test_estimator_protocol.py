"""The estimator protocol without scikit-learn: parameters, data checks, and what `train logreg` imports."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.utils.estimator_checks import check_dataframe_column_names_consistency

from conftest import heavy_libraries_imported
from mnistlab.errors import ParameterError
from mnistlab.models.linear._solvers import lower_inverse
from mnistlab.models.linear.logreg import LogisticRegression
from mnistlab.models.numpy.softmax import NumpySoftmax


def test_train_logreg_imports_neither_scikit_learn_nor_scipy(fashion, tmp_path):
    """The default command: fit, interpretation, t-SNE map, figures and report (importing either would
    cost over a second; a subset, `--train-size`, is drawn without scikit-learn too)."""
    result, heavy = heavy_libraries_imported("train", "logreg", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "runs").is_dir() and heavy == {"matplotlib"}, result.stderr


def test_repr_shows_the_parameters_that_differ_from_their_defaults():
    assert repr(LogisticRegression()) == "LogisticRegression()"
    assert repr(LogisticRegression(C=1.0, solver="owlqn")) == "LogisticRegression(C=1.0, solver='owlqn')"


def test_parameters_are_set_checked_by_name_and_cloned_untouched():
    model = LogisticRegression().set_params(C=0.5, tol=1e-3)
    assert model.get_params()["C"] == 0.5 and clone(model).get_params() == model.get_params()
    with pytest.raises(ValueError, match="Invalid parameter 'c'"):
        model.set_params(c=1)


@pytest.mark.parametrize("family", [LogisticRegression, NumpySoftmax])
def test_data_checks_name_the_problem(family):
    X, y = np.random.default_rng(0).random((30, 4), dtype=np.float32), np.arange(30) % 3
    model = family()
    with pytest.raises(NotFittedError):  # scikit-learn's own, which its tools catch
        model.predict(X)
    for bad_X, message in [(X[0], "Reshape your data"), (X[:, :0], "0 feature"), (X + 1j, "Complex"),
                           (np.where(X > 0.5, np.nan, X), "NaN or infinity")]:
        with pytest.raises(ParameterError, match=message):
            family().fit(bad_X, y)
    for bad_y, message in [(None, "requires y"), (y[:-1], "inconsistent numbers of samples"),
                           (y + 0.5, "Unknown label type: continuous"), (y.reshape(3, 10), "1d array")]:
        with pytest.raises(ParameterError, match=message):
            family().fit(X, bad_y)
    model.fit(X, y)
    assert (model.predict(X.astype(np.float64)) == model.predict(X.tolist())).all()
    if family is LogisticRegression:  # the families that know their input's width from the fit
        with pytest.raises(ParameterError, match="X has 3 features, but LogisticRegression is expecting 4"):
            model.predict(X[:, :3])


@pytest.mark.parametrize("model", [LogisticRegression(), NumpySoftmax(max_epochs=2)], ids=["logreg", "softmax"])
def test_data_frame_columns_are_checked_as_scikit_learn_checks_them(model):
    """Kept at fit as ``feature_names_in_``; other names, or the same in another order, are refused at predict."""
    check_dataframe_column_names_consistency(type(model).__name__, model)


def test_a_column_vector_y_warns_as_scikit_learn_does_and_is_read_as_labels():
    X, y = np.random.default_rng(0).random((30, 4), dtype=np.float32), np.arange(30) % 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LogisticRegression().fit(X, y[:, None])
    assert [w.category for w in caught] == [DataConversionWarning]
    assert (model.classes_ == [0, 1, 2]).all()


def test_string_and_object_labels_are_classes():
    X = np.random.default_rng(0).random((30, 4), dtype=np.float32)
    labels = np.array(["shirt", "coat", "bag"] * 10)
    assert set(LogisticRegression().fit(X, labels).predict(X)) <= set(labels)
    assert set(LogisticRegression().fit(X, labels.astype(object)).predict(X)) <= set(labels)
    with pytest.raises(ParameterError, match="Unknown label type"):
        LogisticRegression().fit(X, np.array(["a", 1, 2.5] * 10, dtype=object))


@pytest.mark.parametrize("n", [1, 7, 64, 65, 200])
def test_lower_inverse_inverts_a_lower_triangular_matrix(n):
    A = np.random.default_rng(n).standard_normal((n, n))
    L = np.linalg.cholesky(A @ A.T + n * np.eye(n))
    inverse = lower_inverse(L)
    assert np.allclose(inverse @ L, np.eye(n), atol=1e-12) and np.array_equal(inverse, np.tril(inverse))


def test_a_sweep_of_logreg_imports_neither_scikit_learn_nor_scipy(tmp_path):
    """Its folds and its fresh estimators were scikit-learn's StratifiedKFold and clone: over a second to import."""
    result, heavy = heavy_libraries_imported("sweep", "logreg", "--C", "0.1,1", "--max-iter", "20", "--folds", "2",
                                             "--train-size", "500", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert heavy == {"matplotlib"}, result.stderr
