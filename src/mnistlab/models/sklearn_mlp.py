"""scikit-learn's MLPClassifier with the tutorial's settings, as a mnistlab family.

Our defaults are the tutorial's: two hidden ReLU layers of 256 and 128 units,
Adam with learning rate 1e-3 on batches of 200 (scikit-learn's "auto" for
60 000 examples), L2 penalty alpha = 1e-4, at most 200 epochs, and
scikit-learn's stopping rule (the training loss has not improved by
tol = 1e-4 for 10 epochs). It reaches about 0.89 test accuracy on
Fashion-MNIST.

The fitted MLPClassifier is ``estimator_``; model files hold its weights
as the arrays W1, b1, W2, b2, … and loading rebuilds a working
MLPClassifier from them (no pickle).

Progress. MLPClassifier tells how its epochs go only by printing
("Iteration N, loss = L", with ``verbose``). Rather than read that back from
stdout, ``_ReportingMLPClassifier`` overrides the one method scikit-learn
calls once per epoch of its sgd and adam solvers, right after recording the
epoch's loss and validation score: ``_update_no_improvement_count``. It is
private, so a future scikit-learn may rename it; the tests check that progress
arrives, and a rename costs the progress bar, never the fit. The public
alternatives change what is computed: ``partial_fit`` epoch by epoch has
neither the stopping rule nor early stopping, and ``warm_start`` with
``max_iter=1`` starts a new Adam state every call. The lbfgs solver has no
epochs; it reports only when it ends.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.validation import check_is_fitted

from ..callbacks import SILENT, FitProgress, ThinnedLog, started
from ._fitting import convergence_warnings, refusals_of, reporter, why_not_converged
from .base import N_CLASSES, N_FEATURES, MnistlabModel, dense_weights
from .onnx_graphs import dense_graph
from .params import SEED_OR_NONE, Interval, PositiveInts, StrOptions
from .validation import check_features, fit_features, set_learned

# d activation / d z, from z (pre-activation) and a = activation(z)
DERIVATIVES = {
    "relu": lambda z, a: (z > 0).astype(a.dtype),
    "tanh": lambda z, a: 1 - a**2,
    "logistic": lambda z, a: a * (1 - a),
    "identity": lambda z, a: np.ones_like(a),
}
ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "logistic": lambda z: 1 / (1 + np.exp(-z)),
    "identity": lambda z: z,
}
SOLVERS = ("adam", "sgd", "lbfgs")
# the bytes a fit holds per weight: MLPClassifier's float32 weights, a copy of the best and gradients, with adam's
# two moments or sgd's velocities; lbfgs's scipy L-BFGS-B, 10 float64 pairs of corrections and 9 other vectors
FIT_BYTES = {"adam": 4 * 5, "sgd": 4 * 4, "lbfgs": 4 * 3 + 8 * (2 * 10 + 9)}


class _ReportingMLPClassifier(MLPClassifier):
    """MLPClassifier that tells ``progress`` and ``log`` (attributes, not parameters) about each epoch."""

    progress: FitProgress = SILENT
    log: ThinnedLog | None = None

    # Private in scikit-learn (see the module docstring): called once per sgd/adam epoch,
    # after loss_curve_ (and, with early stopping, validation_scores_) got the epoch's value.
    def _update_no_improvement_count(self, *args, **kwargs):
        super()._update_no_improvement_count(*args, **kwargs)
        line = f"epoch {self.n_iter_}/{self.max_iter}  loss {self.loss_:.4f}"
        if self.early_stopping and self.validation_scores_:
            line += f"  val_acc {self.validation_scores_[-1]:.4f}"
        self.progress.advance(self.n_iter_, line)
        if self.log is not None:
            self.log.add(self.n_iter_, line)


class MLP(MnistlabModel):
    """scikit-learn MLPClassifier (tutorial settings: 256-128 ReLU, Adam, alpha 1e-4, max_iter 200).

    The parameters are MLPClassifier's own, with the same meaning, except that
    ``batch_size`` is a number (200 is what "auto" gives for training sets of
    200 or more).

    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default=(256, 128)
        The sizes of the hidden layers, input side first.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        The hidden layers' activation function.
    solver : {"adam", "sgd", "lbfgs"}, default="adam"
        The weight optimiser; lbfgs works on the whole training set and has no epochs.
    alpha : float ≥ 0, default=1e-4
        L2 penalty on the weights.
    batch_size : int ≥ 1, default=200
        Examples per step of adam and sgd.
    learning_rate_init : float > 0, default=1e-3
        The initial step size of adam and sgd.
    max_iter : int ≥ 1, default=200
        The most epochs (adam, sgd) or iterations (lbfgs).
    tol : float ≥ 0, default=1e-4
        The improvement of the loss (or validation score) that counts for the stopping rule.
    n_iter_no_change : int ≥ 1, default=10
        Epochs without an improvement of at least tol after which training stops.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data and stop when its accuracy stops
        improving.
    validation_fraction : float in (0, 1), default=0.1
        The share held out for early stopping.
    random_state : int or None, default=None
        Seed of the initial weights, the shuffling and the validation split.

    Attributes
    ----------
    ``estimator_`` (the MLPClassifier), ``classes_``, ``n_iter_`` (epochs),
    ``converged_``, ``fit_message_`` and ``history_``: per-epoch "train_loss"
    (the objective, cross-entropy + L2) and, with early stopping, "val_accuracy".
    """

    family = "mlp"
    can_explain = True
    _parameter_constraints = {
        "hidden_layer_sizes": [PositiveInts(min_length=1)],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": SEED_OR_NONE,
    }
    # what scikit-learn's lbfgs, which has no epochs, leaves unused
    _used_only_when = {**dict.fromkeys(("batch_size", "learning_rate_init", "n_iter_no_change", "early_stopping"),
                                       {"solver": frozenset({"adam", "sgd"})}),
                       "validation_fraction": {"solver": frozenset({"adam", "sgd"}),
                                               "early_stopping": frozenset({True})}}

    def __init__(self, hidden_layer_sizes=(256, 128), activation="relu", solver="adam", alpha=1e-4,
                 batch_size=200, learning_rate_init=1e-3, max_iter=200, tol=1e-4, n_iter_no_change=10,
                 early_stopping=False, validation_fraction=0.1, random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _fit_memory(self):
        sizes = (N_FEATURES, *map(int, self.hidden_layer_sizes), N_CLASSES)
        return "hidden_layer_sizes", dense_weights(sizes), FIT_BYTES[self.solver]

    def _estimator(self, kind: type[MLPClassifier] = MLPClassifier) -> MLPClassifier:
        params = self.get_params(deep=False)
        params["hidden_layer_sizes"] = tuple(int(h) for h in self.hidden_layer_sizes)
        return kind(**params)

    def fit(self, X, y, progress=None):
        self.validate_params()
        self.check_fit_memory()
        progress = reporter(progress)
        X, features = fit_features(self, X)  # the names of a frame's columns too: checked at predict
        estimator = self._estimator(_ReportingMLPClassifier)
        estimator.progress, estimator.log = progress, ThinnedLog(progress, self.max_iter)
        with started(progress, self.max_iter, "epoch" if self.solver != "lbfgs" else "iteration"):
            try:
                with convergence_warnings() as not_converged, refusals_of(self.family, "fit"):
                    estimator.fit(X, y)
                estimator.log.flush()
                if self.solver == "lbfgs":
                    progress.advance(estimator.n_iter_, f"loss {estimator.loss_:.4f}")
            finally:
                estimator.progress, estimator.log = SILENT, None  # it keeps no reference to the caller's display
        set_learned(self, {**features, "estimator_": estimator, "classes_": estimator.classes_,
                           "n_iter_": estimator.n_iter_})
        reason = why_not_converged(not_converged, self.max_iter)
        self.converged_ = reason is None
        self.fit_message_ = self._fit_message(reason)
        self.history_ = {}
        if getattr(estimator, "loss_curve_", None):  # lbfgs records none
            self.history_["train_loss"] = [float(v) for v in estimator.loss_curve_]
        if getattr(estimator, "validation_scores_", None):  # early stopping's; lbfgs keeps none even with it (it
            # has no epochs): read unasked, a fit of lbfgs with early_stopping=True ended in an AttributeError
            self.history_["val_accuracy"] = [float(v) for v in estimator.validation_scores_]
        return self

    def _fit_message(self, not_converged: str | None) -> str:
        """How the fit stopped, in its solver's terms: lbfgs counts iterations (it has no epochs, and stops by
        scipy's rules, its warning saying which it missed), and early stopping watches the validation accuracy
        where the others watch the training loss."""
        if self.solver == "lbfgs":
            return (f"lbfgs converged after {self.n_iter_} iterations" if not_converged is None
                    else f"did not converge: {not_converged}")  # scikit-learn's: "lbfgs failed to converge after …"
        if not_converged is not None:
            return f"reached max_iter={self.max_iter} epochs before the stopping rule was met"
        watched = "the validation accuracy" if self.early_stopping else "the training loss"
        return (f"stopped after {self.n_iter_} epochs: {watched} did not improve by at least tol={self.tol} "
                f"for {self.n_iter_no_change} epochs")

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(check_features(self, X))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(check_features(self, X))

    def features(self, X) -> np.ndarray:
        """The last hidden layer's activations (N×units): what the output layer separates."""
        check_is_fitted(self, "estimator_")
        a = check_features(self, X)
        activation = ACTIVATIONS[self.estimator_.activation]
        for W, b in zip(self.estimator_.coefs_[:-1], self.estimator_.intercepts_[:-1]):
            a = activation(a @ W + b)
        return a

    def explain(self, X, classes=None) -> np.ndarray:
        """Gradient × input of each class's logit (the output layer before softmax), N×classes×784
        (or the ``classes`` asked for).

        Backpropagation through the fitted network, for all classes at once. For two
        classes MLPClassifier has one logistic output z, the log-odds of the second
        class; the maps are then −∂z/∂x·x and ∂z/∂x·x.
        """
        check_is_fitted(self, "estimator_")
        X = check_features(self, X)
        coefs, intercepts = self.estimator_.coefs_, self.estimator_.intercepts_
        activation, derivative = ACTIVATIONS[self.estimator_.activation], DERIVATIVES[self.estimator_.activation]
        a, slopes = X, []
        for W, b in zip(coefs[:-1], intercepts[:-1]):
            z = a @ W + b
            a = activation(z)
            slopes.append(derivative(z, a))
        grad = np.broadcast_to(coefs[-1].T, (len(X), *coefs[-1].T.shape))  # ∂logit_k/∂a_last: N×K×units
        for W, slope in zip(reversed(coefs[:-1]), reversed(slopes)):
            grad = (grad * slope[:, None, :]) @ W.T
        if len(self.classes_) == 2:
            grad = np.concatenate([-grad, grad], axis=1)
        return grad[:, self._class_indices(classes)] * X[:, None, :]

    def onnx_graph(self):
        """The fitted network's layers; for two classes its one logistic output z gives [1 − σ(z), σ(z)],
        as MLPClassifier.predict_proba does. (Built from ``coefs_``/``intercepts_`` rather than with
        skl2onnx: the graph is a few nodes, and it saves a dependency.)"""
        check_is_fitted(self, "estimator_")
        estimator = self.estimator_
        return dense_graph(list(zip(estimator.coefs_, estimator.intercepts_)), activation=estimator.activation,
                           binary=estimator.n_outputs_ == 1)

    # -- model files --------------------------------------------------------------------------
    def get_arrays(self) -> dict[str, np.ndarray]:
        check_is_fitted(self, "estimator_")
        arrays = {"classes_": np.asarray(self.classes_)}
        for layer, (W, b) in enumerate(zip(self.estimator_.coefs_, self.estimator_.intercepts_), start=1):
            arrays[f"W{layer}"], arrays[f"b{layer}"] = W, b
        return arrays

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> MLP:
        """Rebuild the fitted MLPClassifier from W1, b1, …; shapes must chain and match the parameters."""
        estimator = self._estimator()
        n_layers = len(estimator.hidden_layer_sizes) + 1
        names = ["classes_"] + [f"{kind}{layer}" for layer in range(1, n_layers + 1) for kind in "Wb"]
        self._require_arrays(arrays, names)
        classes = np.asarray(arrays["classes_"])
        coefs = [np.asarray(arrays[f"W{layer}"]) for layer in range(1, n_layers + 1)]
        intercepts = [np.asarray(arrays[f"b{layer}"]) for layer in range(1, n_layers + 1)]
        n_outputs = 1 if len(classes) == 2 else len(classes)
        sizes = [coefs[0].shape[0] if coefs[0].ndim == 2 else -1, *estimator.hidden_layer_sizes, n_outputs]
        for layer, (W, b) in enumerate(zip(coefs, intercepts), start=1):
            if W.shape != (sizes[layer - 1], sizes[layer]) or b.shape != (sizes[layer],):
                raise ValueError(f"W{layer}/b{layer} have shapes {W.shape}/{b.shape}, expected "
                                 f"({sizes[layer - 1]}, {sizes[layer]})/({sizes[layer]},)")
        estimator.coefs_, estimator.intercepts_ = coefs, intercepts
        estimator.classes_, estimator.n_features_in_ = classes, sizes[0]
        estimator.n_layers_, estimator.n_outputs_ = n_layers + 1, n_outputs
        estimator.out_activation_ = "logistic" if n_outputs == 1 else "softmax"
        # MLPClassifier.predict maps its outputs back to labels with the private _label_binarizer,
        # which only fit sets: scikit-learn has no public way to give a rebuilt model its classes
        # (partial_fit(..., classes=...) would also take a training step), so we set it here.
        estimator._label_binarizer = LabelBinarizer().fit(classes)
        self.estimator_, self.classes_, self.n_features_in_ = estimator, classes, sizes[0]
        return self
