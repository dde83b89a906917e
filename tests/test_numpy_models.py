"""The from-scratch NumPy models: gradients, optimum, update rules, determinism, files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from conftest import RecordingProgress
from mnistlab.data import preprocess
from mnistlab.models.serialization import load_model, save_model
from mnistlab.models import family_names, get_family
from mnistlab.errors import ParameterError, UnusedParameterWarning
from mnistlab.models.numpy.mlp import NumpyMLP
from mnistlab.models.numpy.optim import Adam, GradientDescent, Momentum, learning_rate_at
from mnistlab.models.numpy.train import one_hot

FAMILIES = ("numpy-logreg", "numpy-softmax", "numpy-mlp")


def toy_data(n=60, d=6, k=3, seed=0):
    """Float32 features in [0, 1] and labels that depend on them (so there is something to learn)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, d), dtype=np.float32)
    y = (X @ rng.standard_normal((d, k)) + 0.3 * rng.standard_normal((n, k))).argmax(axis=1)
    return X, y


# -- gradients against central finite differences (float64) ------------------------------

def objective_and_grads(model, params, X, Y, seed=None):
    """J and ∂J/∂params; a fixed seed replays the same dropout mask on every call."""
    rng = None if seed is None else np.random.default_rng(seed)
    logits, cache = model._forward(params, X, rng)
    return model._loss(params, logits, Y), model._backward(params, cache, logits, Y)


def assert_gradients_match(model, n_classes, d=5, n=7, seed=None):
    rng = np.random.default_rng(1)
    X = rng.random((n, d))
    Y = one_hot(rng.integers(0, n_classes, n), n_classes, dtype=np.float64)
    params = {name: rng.standard_normal(w.shape)
              for name, w in model._init_params(d, n_classes, rng).items()}
    _, grads = objective_and_grads(model, params, X, Y, seed)
    h = 1e-6
    for name, w in params.items():
        numeric = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            old = w[i]
            w[i] = old + h
            up, _ = objective_and_grads(model, params, X, Y, seed)
            w[i] = old - h
            down, _ = objective_and_grads(model, params, X, Y, seed)
            w[i] = old
            numeric[i] = (up - down) / (2 * h)
        assert grads[name].shape == w.shape
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_logreg_gradients(alpha):
    assert_gradients_match(get_family("numpy-logreg")(alpha=alpha), n_classes=2)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_softmax_gradients(alpha):
    assert_gradients_match(get_family("numpy-softmax")(alpha=alpha), n_classes=4)


@pytest.mark.parametrize("hidden, alpha, dropout", [
    ((4, 3), 0.0, 0.0), ((4, 3), 0.3, 0.0), ((6, 5, 4), 0.1, 0.4), ((), 0.2, 0.0),
])
def test_mlp_gradients(hidden, alpha, dropout):
    model = NumpyMLP(hidden=hidden, alpha=alpha, dropout=dropout)
    assert_gradients_match(model, n_classes=3, seed=7 if dropout else None)


def test_mlp_explain_is_gradient_times_input():
    rng = np.random.default_rng(2)
    model = NumpyMLP(hidden=(5, 4))
    model.classes_ = np.arange(3)
    model._store_params({n: rng.standard_normal(w.shape) for n, w in model._init_params(6, 3, rng).items()})
    X = rng.random((4, 6))
    explained = model.explain(X)
    assert explained.shape == (4, 3, 6)
    h = 1e-3
    for j in range(6):  # ∂logits/∂x_j for all examples and classes at once
        step = np.zeros(6)
        step[j] = h
        up, _ = model._forward(model._fitted_params(), X + step)
        down, _ = model._forward(model._fitted_params(), X - step)
        np.testing.assert_allclose(explained[:, :, j], (up - down) / (2 * h) * X[:, j:j + 1],
                                   rtol=1e-4, atol=1e-6)


def test_linear_explain_sums_to_the_logit():
    X, y = toy_data()
    softmax = get_family("numpy-softmax")(max_epochs=3, random_state=0).fit(X, y)
    logits = X @ softmax.coef_.T + softmax.intercept_
    np.testing.assert_allclose(softmax.explain(X).sum(axis=2) + softmax.intercept_, logits, rtol=1e-5)
    logreg = get_family("numpy-logreg")(max_epochs=3, random_state=0).fit(X, y % 2)
    z = (X @ logreg.coef_.T + logreg.intercept_)[:, 0]
    explained = logreg.explain(X)
    assert explained.shape == (len(X), 2, X.shape[1])
    np.testing.assert_allclose(explained[:, 1].sum(axis=1) + logreg.intercept_[0], z, rtol=1e-5)
    np.testing.assert_array_equal(explained[:, 0], -explained[:, 1])


# -- the optimum of the L2-penalised objective matches scikit-learn's --------------------

def sklearn_objective(coef, intercept, X, y, C):
    """C·Σ log-loss + ½‖W‖² (scikit-learn's LogisticRegression, intercept unpenalised)."""
    logits = X.astype(np.float64) @ coef.T.astype(np.float64) + intercept
    if coef.shape[0] == 1:  # binary: the logits (0, z)
        logits = np.hstack([np.zeros_like(logits), logits])
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return C * -log_p[np.arange(len(y)), y].sum() + 0.5 * np.sum(coef.astype(np.float64) ** 2)


@pytest.mark.parametrize("family, n_classes", [("numpy-softmax", 3), ("numpy-logreg", 2)])
def test_l2_optimum_matches_sklearn(family, n_classes):
    X, y = toy_data(n=200, d=8, k=n_classes)
    C = 0.5
    # sklearn minimises C·Σ loss + ½‖W‖²; divided by C·N that is ours, mean loss + alpha/2·‖W‖².
    ours = get_family(family)(optimizer="gd", learning_rate=1.0, max_epochs=3000,
                              alpha=1 / (C * len(X))).fit(X, y)
    # In float64: given float32, scikit-learn would stop short of the optimum we reach.
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X.astype(np.float64), y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-5)
    # The softmax intercepts are fixed only up to a common shift: compare them centred.
    np.testing.assert_allclose(ours.intercept_ - ours.intercept_.mean(),
                               ref.intercept_ - ref.intercept_.mean(), atol=2e-5)
    J_ours = sklearn_objective(ours.coef_, ours.intercept_, X, y, C)
    J_ref = sklearn_objective(ref.coef_, ref.intercept_, X, y, C)
    assert J_ours == pytest.approx(J_ref, rel=1e-9)


# -- update rules against hand-computed steps ---------------------------------------------

def run_steps(optimizer, grads, lr=0.1, w0=1.0):
    params = {"w": np.array([w0], dtype=np.float64)}
    trace = []
    for g in grads:
        optimizer.step(params, {"w": np.array([g])}, lr)
        trace.append(float(params["w"][0]))
    return trace


def test_gradient_descent_step():
    # w = 1 − 0.1·0.5 = 0.95, then 0.95 − 0.1·(−0.25) = 0.975
    assert run_steps(GradientDescent(), [0.5, -0.25]) == pytest.approx([0.95, 0.975], abs=1e-15)


def test_momentum_steps():
    params = {"w": np.zeros(1)}
    # v1 = 0.1·0.5 = 0.05, w1 = 1 − 0.1·0.05 = 0.995
    # v2 = 0.9·0.05 + 0.1·(−0.25) = 0.02, w2 = 0.995 − 0.1·0.02 = 0.993
    assert run_steps(Momentum(params, beta=0.9), [0.5, -0.25]) == pytest.approx([0.995, 0.993], abs=1e-15)


def test_adam_steps():
    params = {"w": np.zeros(1)}
    # t=1: m = 0.05, s = 0.001·0.25 = 0.00025; m̂ = 0.5, ŝ = 0.25 → w = 1 − 0.1·0.5/(0.5 + 1e-8)
    # t=2: m = 0.9·0.05 + 0.1·(−0.25) = 0.02,  s = 0.999·0.00025 + 0.001·0.0625 = 0.00031225
    #      m̂ = 0.02/(1 − 0.81) = 0.1052632,  ŝ = 0.00031225/(1 − 0.998001) = 0.1562031
    #      w = w1 − 0.1·0.1052632/(√0.1562031 + 1e-8) = w1 − 0.0266337
    w1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    w2 = w1 - 0.1 * (0.02 / 0.19) / (math.sqrt(0.00031225 / 0.001999) + 1e-8)
    trace = run_steps(Adam(params, beta1=0.9, beta2=0.999, epsilon=1e-8), [0.5, -0.25])
    assert trace == pytest.approx([w1, w2], rel=1e-12)
    assert trace == pytest.approx([0.9, 0.9 - 0.0266337], abs=1e-7)


def test_inverse_time_learning_rate_decay():
    assert learning_rate_at(0, 0.1, 0.5) == 0.1
    assert learning_rate_at(4, 0.1, 0.5) == pytest.approx(0.1 / 3)
    assert learning_rate_at(9, 0.1, 0.0) == 0.1


def test_updates_keep_float32():
    params = {"w": np.ones(3, dtype=np.float32)}
    grads = {"w": np.full(3, 0.5, dtype=np.float32)}
    for opt in (GradientDescent(), Momentum(params), Adam(params)):
        opt.step(params, grads, 0.01)
        assert params["w"].dtype == np.float32


# -- training behaviour -------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["gd", "sgd", "momentum", "adam"])
def test_every_optimizer_lowers_the_loss(optimizer):
    X, y = toy_data(n=300)
    model = NumpyMLP(hidden=(16,), optimizer=optimizer, learning_rate=0.05 if optimizer == "adam" else 0.5,
                     batch_size=32, max_epochs=15, random_state=0).fit(X, y)
    loss = model.history_["train_loss"]
    assert loss[-1] < 0.8 * loss[0]
    assert model.n_iter_ == 15 and len(model.history_["train_accuracy"]) == 15
    expected_steps = 15 if optimizer == "gd" else 15 * math.ceil(300 / 32)
    assert len(model.history_["step_loss"]) == expected_steps


def test_same_seed_gives_identical_runs():
    X, y = toy_data(n=200)
    kwargs = dict(hidden=(16, 8), dropout=0.2, early_stopping=True, max_epochs=5, batch_size=32)
    a = NumpyMLP(random_state=3, **kwargs).fit(X, y)
    b = NumpyMLP(random_state=3, **kwargs).fit(X, y)
    c = NumpyMLP(random_state=4, **kwargs).fit(X, y)
    for name, array in a.get_arrays().items():
        assert np.array_equal(array, b.get_arrays()[name]), name
    assert a.history_ == b.history_
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def random_labels():
    """300 rows of 20 features with random labels: a validation loss soon rises."""
    rng = np.random.default_rng(0)
    return rng.random((300, 20), dtype=np.float32), rng.integers(0, 3, 300)


def test_early_stopping_stops_and_keeps_the_best_weights():
    X, y = random_labels()
    model = NumpyMLP(hidden=(64,), learning_rate=0.01, max_epochs=200, early_stopping=True,
                     validation_fraction=0.2, patience=3, random_state=0).fit(X, y)
    val_loss = model.history_["val_loss"]
    assert model.n_iter_ < 200 and len(val_loss) == model.n_iter_
    assert int(np.argmin(val_loss)) == model.n_iter_ - 1 - 3
    # Rebuild the same validation split (the first draw of the seeded generator).
    seed = int(np.random.default_rng(0).integers(2**31))
    _, X_val, _, y_val = preprocess.validation_split(X, y, fraction=0.2, seed=seed)
    logits, _ = model._forward(model._fitted_params(), X_val)
    assert model._loss(model._fitted_params(), logits, one_hot(y_val, 3)) == pytest.approx(min(val_loss))
    best = int(np.argmin(val_loss)) + 1  # the run's report said how many epochs ran, not whose weights it kept
    assert model.fit_message_.startswith(f"stopped early after {model.n_iter_} epochs; the weights kept are "
                                         f"epoch {best}'s")


def test_early_stopping_needs_a_validation_split():
    X, y = toy_data()
    with pytest.raises(ParameterError, match="validation_fraction"):
        NumpyMLP(early_stopping=True, validation_fraction=0.0).fit(X, y)


def test_validation_curves_without_early_stopping():
    X, y = toy_data(n=200)
    model = get_family("numpy-softmax")(max_epochs=4, validation_fraction=0.25, random_state=0).fit(X, y)
    assert set(model.history_) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "step_loss"}
    assert len(model.history_["val_accuracy"]) == 4
    assert set(get_family("numpy-softmax")(max_epochs=1).fit(X, y).history_) == {
        "train_loss", "train_accuracy", "step_loss"}


@pytest.mark.parametrize("init, std", [("he", math.sqrt(2 / 784)),
                                       ("xavier", math.sqrt(2 / (784 + 256))), ("small", 0.01)])
def test_initialisations(init, std):
    params = NumpyMLP(hidden=(256,), init=init)._init_params(784, 10, np.random.default_rng(0))
    assert params["W1"].dtype == np.float32 and params["W1"].shape == (784, 256)
    assert params["W1"].std() == pytest.approx(std, rel=0.02)
    assert not params["b1"].any()


def test_hidden_is_a_sequence_of_layer_sizes():
    X, y = toy_data()
    for hidden in [(8, 4), [8, 4], ()]:
        model = NumpyMLP(hidden=hidden, max_epochs=1, random_state=0).fit(X, y)
        assert [W.shape[1] for W in model.coefs_] == [*hidden, 3]
        assert clone(model).hidden == hidden
    # the estimator parses no command-line text: "8,4" is the CLI's to read (cli.model_options)
    for hidden in ["8,4", 8, (8, -1), (8, 0), (8.0,), (True,)]:
        with pytest.raises(ParameterError, match="hidden") as error:
            NumpyMLP(hidden=hidden).fit(X, y)
        assert error.value.parameter == "hidden"


def test_bad_arguments():
    X, y = toy_data()
    with pytest.raises(ParameterError, match="optimizer"):
        NumpyMLP(optimizer="rmsprop").fit(X, y)
    with pytest.raises(ParameterError, match="init"):
        NumpyMLP(init="zeros").fit(X, y)
    with pytest.raises(ParameterError, match="dropout"):
        NumpyMLP(dropout=1.0).fit(X, y)
    with pytest.raises(ParameterError, match="binary"):
        get_family("numpy-logreg")().fit(X, y)


def test_progress_reports_steps_and_epochs():
    X, y = toy_data()
    recorder = RecordingProgress()
    NumpyMLP(hidden=(8,), max_epochs=2, batch_size=16, validation_fraction=0.2, random_state=0).fit(
        X, y, progress=recorder)
    steps = 2 * math.ceil(48 / 16)
    assert recorder.starts == [(steps, "step")] and recorder.ends == 1
    assert recorder.done == list(range(1, steps + 1))
    assert "epoch 2/2" in recorder.lines[-1] and "val_acc" in recorder.lines[-1]


def test_a_long_fit_logs_a_line_for_a_few_epochs_only():
    X, y = toy_data()
    recorder = RecordingProgress()
    NumpyMLP(hidden=(8,), max_epochs=300, batch_size=48, random_state=0).fit(X, y, progress=recorder)
    # 300 lines before: the 1,000 steps of a recipe's gradient descent printed 1,000
    assert [int(line.split()[1].split("/")[0]) for line in recorder.lines] == [1, 2, 5, 10, 20, 50, 100, 200, 300]
    recorder = RecordingProgress()  # stopped early, at epoch 13 of 100: that epoch's line too, before the stop's
    model = NumpyMLP(hidden=(64,), max_epochs=100, early_stopping=True, validation_fraction=0.25, patience=3,
                     random_state=0).fit(*random_labels(), progress=recorder)
    assert recorder.lines[-2].startswith(f"epoch {model.n_iter_}/100") and "early stopping" in recorder.lines[-1]


def test_a_fit_that_diverges_stops_at_the_epoch_with_one_error_and_no_numpy_warnings():
    import pickle
    import warnings

    from mnistlab.errors import DivergedError

    X, y = toy_data()
    for optimizer, learning_rate, epoch in [("gd", 1e200, 1), ("sgd", 1e20, 1)]:
        recorder = RecordingProgress()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # NumPy's "overflow encountered in matmul" reached a notebook, line and all
            with pytest.raises(DivergedError, match=rf"^numpy-mlp diverged in training: its numbers went past "
                                                    rf"float32's range in epoch {epoch} \(overflow ") as error:
                # on Fashion-MNIST at 1e9, Adam's squared gradients overflowed and the fit went on with a warning
                NumpyMLP(hidden=(8,), optimizer=optimizer, learning_rate=learning_rate,
                         **({} if optimizer == "gd" else {"batch_size": 16}),  # gd takes the whole batch
                         max_epochs=50, random_state=0).fit(X, y, progress=recorder)
        assert len(recorder.done) < 8 and recorder.ended_by_error == [True]  # stopped there; the bar ended
    copy = pickle.loads(pickle.dumps(error.value))  # as it comes back from a worker process
    assert type(copy) is DivergedError and str(copy) == str(error.value)


@pytest.mark.parametrize("epsilon, beta2", [(1e-50, 0.999), (1e-38, 0.9999999999999999)])
def test_an_epsilon_whose_first_step_is_0_in_float32_is_refused_up_front(epsilon, beta2):
    """Adam's first step divides by epsilon·√(1 − beta2): 0 in float32 was 0/0 at a pixel no image lights, and
    the fit "diverged in training", a learning rate too high being said the usual cause."""
    X, y = toy_data()
    X[:, 0] = 0  # a pixel no image lights: its gradient and RMS are 0
    with pytest.raises(ParameterError, match=f"^epsilon: with beta2={beta2!r}, Adam's first step divides by "):
        get_family("numpy-softmax")(epsilon=epsilon, beta2=beta2).fit(X, y)
    model = get_family("numpy-softmax")(epsilon=1e-40, random_state=0).fit(X, y)  # a float32 subnormal: taken
    assert np.isfinite(model.predict_proba(X)).all()
    with pytest.warns(UnusedParameterWarning, match="epsilon: ignored"):  # no Adam: nothing divided by it
        get_family("numpy-softmax")(epsilon=epsilon, beta2=beta2, optimizer="sgd").fit(X, y)


@pytest.mark.parametrize("family, params", [("numpy-softmax", {"learning_rate": 1e38}),
                                            ("numpy-mlp", {"learning_rate": 1e30, "hidden": (8,)})])
def test_a_last_step_that_diverges_is_one_error_not_a_model_that_predicts_nan(family, params):
    import warnings

    from mnistlab.errors import DivergedError

    X, y = toy_data(d=50)
    model = get_family(family)(optimizer="gd", max_epochs=1, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the check's own overflow is not a warning either
        # its weights were finite: the fit returned a model whose every probability was NaN
        with pytest.raises(DivergedError, match=f"^{family} diverged in training: its probabilities are not finite"):
            model.fit(X, y)
    assert not hasattr(model, "classes_")  # not fitted


# -- model files and the family contract ----------------------------------------------------

@pytest.mark.parametrize("family, params", [
    ("numpy-logreg", {}), ("numpy-softmax", {}),
    ("numpy-mlp", {"hidden": (8, 4)}), ("numpy-mlp", {"hidden": (6,), "dropout": 0.1}),
])
def test_save_load_round_trip(tmp_path, family, params):
    X, y = toy_data(n=80)
    if family == "numpy-logreg":
        y = np.where(y == 0, 3, 7)  # any two labels
    model = get_family(family)(max_epochs=2, random_state=0, **params).fit(X, y)
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert type(loaded) is type(model)
    expected, got = model.get_params(), loaded.get_params()
    if "hidden" in expected:  # JSON turns a tuple into a list
        assert tuple(got.pop("hidden")) == tuple(expected.pop("hidden"))
    assert got == expected
    before, after = model.get_arrays(), loaded.get_arrays()
    assert before.keys() == after.keys()
    for name in before:
        assert before[name].dtype == after[name].dtype and np.array_equal(before[name], after[name]), name
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert set(np.unique(model.predict(X))) <= set(np.unique(y))


def test_families_are_registered():
    assert set(FAMILIES) <= set(family_names())
    for family in FAMILIES:
        assert get_family(family).family == family


def test_binary_logreg_on_tshirt_vs_trouser(fashion):
    binary = fashion.filter_classes([0, 1]).subset(per_class=500, seed=0)
    X_test, y_test = preprocess.flatten_scale(binary.x_test), binary.y_test
    model = get_family("numpy-logreg")(max_epochs=10, random_state=0)
    model.fit(preprocess.flatten_scale(binary.x_train), binary.y_train)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert model.score(X_test, y_test) > 0.95


def test_an_unpenalised_loss_is_finite_where_the_weights_square_past_float32():
    from mnistlab.models.numpy.softmax import NumpySoftmax, l2_penalty

    W = np.full((2, 3), 1e30, np.float32)  # W·W is inf in float32; alpha 0 times it was NaN
    assert l2_penalty(0.0, [W]) == 0.0 and math.isfinite(l2_penalty(1.0, [W]))
    model = NumpySoftmax(alpha=0.0)
    Y = one_hot(np.array([0, 1]), 2)
    assert math.isfinite(model._loss({"coef_": W, "intercept_": np.zeros(2, np.float32)},
                                     np.array([[0.0, 1.0], [1.0, 0.0]], np.float32), Y))


def test_parameters_are_counted_without_the_class_labels_and_not_before_fit():
    from sklearn.exceptions import NotFittedError

    X, y = toy_data()
    model = get_family("numpy-softmax")(max_epochs=1)
    with pytest.raises(NotFittedError):
        model.n_parameters()
    model.fit(X, y.astype(float))  # float labels are kept as floats, and are no parameters
    assert model.n_parameters() == model.coef_.size + model.intercept_.size


def test_a_refused_refit_leaves_the_fitted_model_whole():
    """The features were recorded before the labels were checked: a refit refused for its labels left a
    model that refused images of the 20 features it was fitted on."""
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 20), dtype=np.float32), np.arange(60) % 3
    model = get_family("numpy-softmax")(max_epochs=2, random_state=0).fit(X, y)
    before = model.predict(X)
    with pytest.raises(ParameterError, match="Unknown label type"):
        model.fit(X[:, :5], np.full(60, np.nan))
    assert model.n_features_in_ == 20 and np.array_equal(model.predict(X), before)
