"""The logreg family: its objective, our solvers against scikit-learn's, the estimator contract."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from mnistlab import DatasetError, load_dataset
from mnistlab.errors import ParameterError
from mnistlab.models.serialization import load_model, save_model
from mnistlab.models import get_family
from mnistlab.models.linear._loss import CHUNK_ROWS, Objective, SoftmaxLoss, pixels_of
from mnistlab.models.linear._solvers import pixel_covariance, whitening
from mnistlab.models.linear.logreg import LogisticRegression
from mnistlab.data.preprocess import flatten_scale


def overlapping_classes(n_samples=600, n_features=20, n_classes=3, seed=0):
    """Classes that overlap (flipped labels), so even the unpenalised optimum is finite."""
    X, y = make_classification(n_samples=n_samples, n_features=n_features, n_informative=min(8, n_features),
                               n_redundant=0, n_classes=n_classes, flip_y=0.1, random_state=seed)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def fashion():
    """2,000 real Fashion-MNIST training images, 1,000 test images (N×784 in [0, 1])."""
    try:
        ds = load_dataset("fashion-mnist", download=False)
    except DatasetError as exc:
        pytest.skip(f"Fashion-MNIST not available: {exc}")
    return (flatten_scale(ds.x_train[:2000]), np.asarray(ds.y_train[:2000]),
            flatten_scale(ds.x_test[:1000]), np.asarray(ds.y_test[:1000]))


def sklearn_objective(model, X, y, C, penalty):
    """scikit-learn's documented objective C·Σ log-loss + R(W), from public pieces only."""
    proba = model.predict_proba(X).astype(np.float64)
    total = log_loss(y, proba / proba.sum(axis=1, keepdims=True), normalize=False, labels=model.classes_)
    W = model.coef_.astype(np.float64)
    R = {"l2": 0.5 * np.sum(W * W), "l1": np.abs(W).sum(), "none": 0.0}[penalty]
    return C * total + R


# -- the objective --------------------------------------------------------------------

@pytest.mark.parametrize("penalty", ["l2", "l1", "none"])
def test_objective_is_sklearns_divided_by_C_n(penalty):
    X, y = overlapping_classes()
    model = LogisticRegression(penalty=penalty, C=0.5, max_iter=5).fit(X, y)
    expected = sklearn_objective(model, X, y, C=0.5, penalty=penalty) / (0.5 * len(X))
    assert model.objective(X, y) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("whiten", [False, True])
def test_gradient_matches_central_differences(whiten):
    X, y = overlapping_classes(n_samples=200, n_features=6)
    X = X.astype(np.float64) + 3.0         # off-centre, so the centring matters
    k, d = 3, X.shape[1]
    center = X.mean(axis=0)
    l2 = 0.05
    with ThreadPoolExecutor(1) as pool:
        P = whitening(pixel_covariance(X, center, pool), l2) if whiten else None
        objective = Objective(SoftmaxLoss(X, y, k, pool), center, l1=0.0, l2=l2, P=P)
        theta = np.random.default_rng(0).normal(scale=0.3, size=(k, d + 1))
        value, grad, _ = objective.smooth(theta)
        h = 1e-6
        numeric = np.zeros_like(theta)
        for index in np.ndindex(theta.shape):
            step = np.zeros_like(theta)
            step[index] = h
            numeric[index] = (objective.smooth(theta + step)[0] - objective.smooth(theta - step)[0]) / (2 * h)
        W, b = objective.to_model(theta)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    # ... and the value is the cross-entropy of the model (W, b) plus ½λ₂‖W‖².
    Z = X @ W.T + b
    Z -= Z.max(axis=1, keepdims=True)
    cross_entropy = np.mean(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(len(y)), y])
    assert value == pytest.approx(cross_entropy + 0.5 * l2 * np.sum(W * W), rel=1e-12)


def test_scaled_pixels_are_read_as_bytes_with_the_same_loss():
    """Data that is 8-bit pixels / 255 is recognised exactly (anything else is not), and the loss
    computed from the bytes is the loss of the float32 data."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2 * CHUNK_ROWS + 100, 30), dtype=np.uint8)
    images[:, 0] = [0, 255] * (len(images) // 2)  # both ends of the range
    X = flatten_scale(images)
    y = rng.integers(0, 4, len(X))
    with ThreadPoolExecutor(2) as pool:
        np.testing.assert_array_equal(pixels_of(X, pool), images)
        for other in (X * 1.5, X - 0.5, X.astype(np.float64)):
            assert pixels_of(other, pool) is None
        off = X.copy()
        off[-1, 3] = np.nextafter(off[-1, 3], np.float32(2))  # one value one ulp off, in the last chunk
        assert pixels_of(off, pool) is None
        W, b = rng.normal(size=(4, 30)), rng.normal(size=4)
        from_bytes = SoftmaxLoss(X, y, 4, pool, pixels=images)(W, b)
        from_floats = SoftmaxLoss(X.astype(np.float64), y, 4, pool)(W, b)
    for ours, exact in zip(from_bytes, from_floats):
        np.testing.assert_allclose(ours, exact, rtol=1e-5, atol=1e-3)


# -- our optimum is scikit-learn's -------------------------------------------------------

@pytest.mark.parametrize("penalty, sklearn_solver, C", [
    ("l2", "lbfgs", 0.1), ("none", "lbfgs", 1.0), ("l1", "saga", 0.05), ("elasticnet", "saga", 0.05)])
def test_same_optimum_as_sklearn(penalty, sklearn_solver, C):
    X, y = overlapping_classes()
    settings = dict(penalty=penalty, C=C, standardize=True)
    ours = LogisticRegression(**settings, tol=1e-6, max_iter=2000).fit(X, y)
    # saga on float32 data wanders at tighter tolerances than 1e-5
    sklearn_tol = 1e-5 if sklearn_solver == "saga" else 1e-8
    theirs = LogisticRegression(**settings, solver=sklearn_solver, tol=sklearn_tol, max_iter=20000,
                                random_state=0).fit(X, y)
    assert ours.solver == "auto" and theirs.converged_
    f_ours, f_theirs = ours.objective(X, y), theirs.objective(X, y)
    assert f_ours <= f_theirs * (1 + 1e-6)
    assert f_ours == pytest.approx(f_theirs, rel=1e-5)
    assert np.mean(ours.predict(X) == theirs.predict(X)) >= 0.99
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=2e-3 * np.abs(theirs.coef_).max())


def test_l1_gives_exact_zeros_where_sklearn_does():
    X, y = overlapping_classes()
    ours = LogisticRegression(penalty="l1", C=0.02, standardize=True, tol=1e-6).fit(X, y)
    theirs = LogisticRegression(penalty="l1", C=0.02, standardize=True, solver="saga", tol=1e-5,
                                max_iter=20000, random_state=0).fit(X, y)
    zeros = ours.coef_ == 0
    assert 0.2 < zeros.mean() < 1
    assert np.mean(zeros == (theirs.coef_ == 0)) >= 0.95


def test_real_images_reach_sklearn_lbfgs_objective(fashion):
    X, y, X_test, y_test = fashion
    ours = LogisticRegression().fit(X, y)
    # One BLAS thread: scikit-learn's lbfgs on small products with multithreaded
    # BLAS crawls (20× slower) when other jobs keep the cores busy.
    with threadpool_limits(limits=1, user_api="blas"):
        theirs = LogisticRegression(solver="lbfgs", tol=1e-6, max_iter=5000).fit(X, y)
    assert ours.coef_.shape == (10, 784) and ours.coef_.dtype == np.float32
    assert ours.objective(X, y) <= theirs.objective(X, y) * 1.001
    assert ours.score(X_test, y_test) > 0.75


@pytest.mark.parametrize("solver", ["auto", "whitened-lbfgs"])
@pytest.mark.parametrize("penalty, C", [("none", 1.0), ("l2", np.inf), ("l2", 1e9)])
def test_fewer_images_than_pixels_without_a_penalty(fashion, penalty, C, solver):
    # Whitened, the pixels' covariance is singular then, and its float32 products make some zeros negative
    X, y, _, _ = fashion
    model = LogisticRegression(penalty=penalty, C=C, solver=solver).fit(X[:200], y[:200])
    assert model.converged_ and model.score(X[:200], y[:200]) == 1.0


def test_without_a_penalty_fewer_images_than_weights_end_where_sklearn_ends(fashion):
    # Fitted perfectly by many weights: the default solver's path must not end on far worse ones
    X, y, X_test, y_test = fashion
    with threadpool_limits(limits=1, user_api="blas"):
        theirs = LogisticRegression(penalty="none", solver="lbfgs").fit(X, y).score(X_test, y_test)
    for penalty, C in (("none", 1.0), ("l2", np.inf), ("l2", 1e6)):
        ours = LogisticRegression(penalty=penalty, C=C).fit(X, y)
        assert ours.score(X, y) == 1.0 and ours.score(X_test, y_test) >= theirs - 0.02


def test_two_classes_fit_two_opposite_softmax_rows():
    X, y = overlapping_classes(n_classes=2)
    ours = LogisticRegression(C=0.1, tol=1e-6).fit(X, y)
    theirs = LogisticRegression(C=0.1, solver="lbfgs", tol=1e-8, max_iter=5000).fit(X, y)
    assert ours.coef_.shape == theirs.coef_.shape == (2, X.shape[1])
    np.testing.assert_allclose(ours.coef_[0], -ours.coef_[1], atol=1e-5)
    assert ours.objective(X, y) == pytest.approx(theirs.objective(X, y), rel=1e-5)
    # scikit-learn's binary model gives the same probabilities as its two-row copy
    binary = SklearnLogisticRegression(C=0.2, tol=1e-8, max_iter=5000).fit(X, y)
    np.testing.assert_allclose(theirs.predict_proba(X), binary.predict_proba(X), atol=1e-5)
    margin = ours.decision_function(X)
    assert margin.shape == (len(X),)
    np.testing.assert_array_equal(ours.predict(X), ours.classes_[(margin > 0).astype(int)])


# -- what the fit records --------------------------------------------------------------

def test_history_decreases_and_message_is_one_line():
    from conftest import RecordingProgress

    X, y = overlapping_classes()
    recorder = RecordingProgress()
    model = LogisticRegression(C=1.0).fit(X, y, progress=recorder)
    objective = model.history_["objective"]
    assert len(objective) == model.n_iter_[0] + 1
    assert recorder.lines[-1].startswith(f"iteration {model.n_iter_[0]:4d}")  # where it stopped, not just 20 or 50
    assert all(b <= a for a, b in zip(objective, objective[1:]))
    assert model.converged_ and model.fit_message_.startswith("converged after")
    assert objective[-1] == pytest.approx(model.objective(X, y), rel=1e-6)

    stopped = LogisticRegression(C=1.0, max_iter=2).fit(X, y)
    assert not stopped.converged_
    assert "max_iter=2" in stopped.fit_message_ and "\n" not in stopped.fit_message_


def test_sklearn_convergence_warning_becomes_the_message():
    X, y = overlapping_classes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LogisticRegression(solver="saga", max_iter=1, tol=1e-8, random_state=0).fit(X, y)
    assert not model.converged_
    assert model.fit_message_.startswith("scikit-learn saga stopped after 1 iterations")
    assert "\n" not in model.fit_message_ and len(model.history_["objective"]) == 1
    # given no iteration, saga returns its zero start without a warning: it was called converged
    for family in (LogisticRegression, get_family("sklearn:LogisticRegression")):
        untrained = family(solver="saga", max_iter=0).fit(X, y)
        assert not untrained.converged_ and "converged" not in untrained.fit_message_.replace("not converge", "")
        assert "max_iter=0" in untrained.fit_message_ and "raise" not in untrained.fit_message_


@pytest.mark.parametrize("as_8_bit_pixels", [False, True])
def test_result_does_not_depend_on_the_number_of_threads(as_8_bit_pixels):
    X, y = overlapping_classes(n_samples=9000)      # several chunks of rows
    if as_8_bit_pixels:                             # read as bytes (pixels_of)
        X = flatten_scale(np.rint((X - X.min()) / (X.max() - X.min()) * 255).astype(np.uint8))
    with threadpool_limits(limits=1, user_api="blas"):
        one_thread = LogisticRegression().fit(X, y)
    default = LogisticRegression().fit(X, y)
    np.testing.assert_array_equal(one_thread.coef_, default.coef_)


def test_explain_adds_up_to_the_logits():
    X, y = overlapping_classes()
    model = LogisticRegression(standardize=True).fit(X, y)
    contributions = model.explain(X[:5])
    assert contributions.shape == (5, 3, X.shape[1])
    np.testing.assert_allclose(contributions.sum(axis=2) + model.intercept_, model.decision_function(X[:5]),
                               rtol=1e-5, atol=1e-5)
    # so a pixel at 0 has a part too: the maps are not "gradient × input", which would give it none
    gradient_times_input = X[:5, None, :] * (model.coef_ / model.scale_)[None]
    assert not np.allclose(contributions, gradient_times_input, atol=1e-3)
    np.testing.assert_allclose(contributions, (X[:5] - model.mean_)[:, None, :] * (model.coef_ / model.scale_)[None],
                               rtol=1e-4, atol=1e-5)
    assert model.explanation_method == "gradient × (input − mean image)"
    assert LogisticRegression().fit(X, y).explanation_method == "gradient × input"


@pytest.mark.parametrize("settings", [dict(), dict(penalty="l1", C=1.0, standardize=True)])
def test_model_file_round_trip_is_bit_identical(tmp_path, settings):
    X, y = overlapping_classes()
    model = LogisticRegression(**settings).fit(X, y)
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert type(loaded) is get_family("logreg")
    assert set(loaded.get_arrays()) == set(model.get_arrays())
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_the_objective_refuses_labels_the_fit_did_not_see():
    X, y = overlapping_classes(n_classes=2)
    model = LogisticRegression().fit(X, np.where(y == 1, 7, 3))
    for unseen in (np.where(y == 1, 7, 0), np.full(len(y), 9), np.array(["a"] * len(y))):  # were read as 3, or
        with pytest.raises(ParameterError, match="labels the fit did not see"):  # as the next row's logit
            model.objective(X, unseen)


def test_bad_settings_are_refused():
    X, y = overlapping_classes()
    for settings in [dict(penalty="l3"), dict(solver="adam"), dict(C=0), dict(l1_ratio=2),
                     dict(penalty="l1", solver="whitened-lbfgs")]:
        with pytest.raises(ValueError):
            LogisticRegression(**settings).fit(X, y)
    with pytest.raises(ValueError, match="one class"):
        LogisticRegression().fit(X, np.zeros(len(X)))


def test_a_fit_that_fails_leaves_the_fitted_model_whole():
    """classes_ and the standardisation were set before the checks and the solver: a refused refit left
    the old weights answering with the new labels."""
    X, y = overlapping_classes()
    model = LogisticRegression(standardize=True).fit(X, y)
    before = model.predict(X)
    model.set_params(solver="liblinear")
    with pytest.raises(ValueError, match="'liblinear' fits two classes only"):
        model.fit(X[:, :5] * 3 + 1, y + 5)  # n_features_in_ too: 5 features, then predict refused the model's 20
    assert list(model.classes_) == [0, 1, 2] and np.array_equal(model.predict(X), before)


# -- scikit-learn compatibility ------------------------------------------------------------

def test_pipeline_and_grid_search():
    X, y = overlapping_classes()
    pipeline = make_pipeline(FunctionTransformer(lambda a: a / 4), LogisticRegression())
    search = GridSearchCV(pipeline, {"logisticregression__C": [0.01, 1.0]}, cv=3).fit(X, y)
    assert search.best_params_["logisticregression__C"] in (0.01, 1.0)
    assert search.score(X, y) > 0.6


# Every check of scikit-learn's suite applies and passes (the model works for any
# number of features, not only 784 pixels), so nothing is marked as expected to fail;
# the checks skip themselves where the array API is missing. They also
# show that the model lacks nothing of scikit-learn's BaseEstimator, which it does not
# inherit (``models.base``; pyproject.toml quiets scikit-learn's warning about that).
@parametrize_with_checks([LogisticRegression(), LogisticRegression(penalty="l1", C=1.0, standardize=True),
                          LogisticRegression(solver="lbfgs"), get_family("numpy-logreg")(max_epochs=5)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_fit_computes_the_loss_on_as_many_threads_as_blas_would_use(monkeypatch):
    """The fit limits BLAS to one thread per worker; the workers must still be BLAS's own count."""
    from mnistlab.models.linear import logreg as module

    pools = []

    class Recording(ThreadPoolExecutor):
        def __init__(self, max_workers=None):
            pools.append(max_workers)
            super().__init__(max_workers)

    monkeypatch.setattr(module, "ThreadPoolExecutor", Recording)
    X, y = make_classification(200, 20, n_informative=5, n_classes=3, random_state=0)
    with threadpool_limits(limits=2, user_api="blas"):
        LogisticRegression().fit(X.astype(np.float32), y)
    assert pools == [2]
