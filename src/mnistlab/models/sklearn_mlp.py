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
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.validation import check_array, check_is_fitted

from .base import MnistlabModel

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


class MLP(MnistlabModel):
    """scikit-learn MLPClassifier (tutorial settings: 256-128 ReLU, Adam, alpha 1e-4, max_iter 200).

    The parameters are MLPClassifier's own, with the same meaning; ``batch_size`` is
    a number (200 is what "auto" gives for training sets of 200 or more), and
    ``verbose`` shows a progress bar on stderr instead of printing to stdout.

    Fitted: ``estimator_`` (the MLPClassifier), ``classes_``, ``n_iter_`` (epochs),
    ``converged_``, ``fit_message_`` and ``history_``: per-epoch "train_loss" (the
    objective, cross-entropy + L2) and, with early stopping, "val_accuracy".
    """

    family = "mlp"
    can_explain = True

    def __init__(self, hidden_layer_sizes=(256, 128), activation="relu", solver="adam", alpha=1e-4,
                 batch_size=200, learning_rate_init=1e-3, max_iter=200, tol=1e-4, n_iter_no_change=10,
                 early_stopping=False, validation_fraction=0.1, random_state=None, verbose=False):
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
        self.verbose = verbose

    def _estimator(self) -> MLPClassifier:
        params = self.get_params(deep=False)
        params["hidden_layer_sizes"] = tuple(int(h) for h in np.atleast_1d(self.hidden_layer_sizes))
        return MLPClassifier(**params)

    def fit(self, X, y, progress=None):
        X = check_array(X, dtype=np.float32)
        estimator = self._estimator()
        with warnings.catch_warnings(record=True) as caught, _progress_from_prints(self.verbose, self.max_iter):
            warnings.simplefilter("always", ConvergenceWarning)
            estimator.fit(X, y)
        self.estimator_, self.classes_, self.n_iter_ = estimator, estimator.classes_, estimator.n_iter_
        self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        self.fit_message_ = (f"stopped after {self.n_iter_} epochs: no improvement of at least tol={self.tol} "
                             f"for {self.n_iter_no_change} epochs" if self.converged_ else
                             f"reached max_iter={self.max_iter} epochs before the stopping rule was met")
        self.history_ = {}
        if getattr(estimator, "loss_curve_", None):  # lbfgs records none
            self.history_["train_loss"] = [float(v) for v in estimator.loss_curve_]
        if self.early_stopping:
            self.history_["val_accuracy"] = [float(v) for v in estimator.validation_scores_]
        for w in caught:  # pass on what we did not turn into fit_message_
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(check_array(X, dtype=np.float32))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(check_array(X, dtype=np.float32))

    def explain(self, X) -> np.ndarray:
        """Gradient × input of each class's logit (the output layer before softmax), N×classes×784.

        Backpropagation through the fitted network, for all classes at once. For two
        classes MLPClassifier has one logistic output z, the log-odds of the second
        class; the maps are then −∂z/∂x·x and ∂z/∂x·x.
        """
        check_is_fitted(self, "estimator_")
        X = check_array(X, dtype=np.float32)
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
        return grad * X[:, None, :]

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
        missing = [name for name in names if name not in arrays]
        if missing:
            raise ValueError(f"model file lacks arrays: {', '.join(missing)}")
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
        estimator._label_binarizer = LabelBinarizer().fit(classes)  # what predict maps outputs back with
        self.estimator_, self.classes_ = estimator, classes
        return self


@contextlib.contextmanager
def _progress_from_prints(verbose: bool, max_iter: int):
    """MLPClassifier reports progress by printing "Iteration N, loss = L" to stdout;
    turn those lines into a progress bar on stderr (stdout stays clean for results)."""
    if not verbose:
        yield
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("epoch 0", total=max_iter)
        with contextlib.redirect_stdout(_IterationReader(progress, task)):
            yield


class _IterationReader(io.TextIOBase):
    LINE = re.compile(r"Iteration (\d+), loss = ([-+.\deE]+)")

    def __init__(self, progress: Progress, task):
        self.progress, self.task = progress, task

    def write(self, text: str) -> int:
        for match in self.LINE.finditer(text):
            epoch, loss = int(match[1]), float(match[2])
            self.progress.update(self.task, completed=epoch, description=f"epoch {epoch}  loss {loss:.4f}")
        return len(text)
