"""Binary logistic regression (sigmoid + binary cross-entropy), by gradient descent in NumPy.

The first model of the exercise: T-shirt (0) against Trouser (1). One weight
per pixel and a bias give a score z; the sigmoid turns it into the
probability of the second class. Read top to bottom: parameters, forward,
loss, backward. The update W ← W − lr·dW (or momentum/Adam) is the shared
optimiser in optim.py.

Shapes: N examples in a batch, D = 784 pixels.
"""

from __future__ import annotations

import numpy as np

from ..onnx_graphs import dense_graph
from ..validation import check_fitted
from .softmax import l2_penalty
from .train import GradientDescentClassifier


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^(−z)), written with tanh so that no exp overflows for very negative z."""
    return 0.5 * (1 + np.tanh(0.5 * z))


class NumpyLogReg(GradientDescentClassifier):
    """Two-class logistic regression: p = sigmoid(X·wᵀ + b), trained on mean
    binary cross-entropy + alpha/2·‖w‖².

    Fitted: ``coef_`` (1, 784) and ``intercept_`` (1,), as in scikit-learn;
    ``predict_proba`` gives (N, 2) = [1 − p, p]. For more than two classes use
    numpy-softmax. The loss is convex, so the weights start at zero. The
    parameters are GradientDescentClassifier's.
    """

    family = "numpy-logreg"
    learned_arrays = ("classes_", "coef_", "intercept_")
    can_explain = True
    binary_only = True

    def _init_params(self, n_features, n_classes, rng):
        return {"coef_": np.zeros((1, n_features), dtype=np.float32),  # w: (1, D)
                "intercept_": np.zeros(1, dtype=np.float32)}           # b: (1,)

    # forward: one score z per example; p = sigmoid(z) is P(second class)
    def _forward(self, params, X, rng=None):
        w, b = params["coef_"], params["intercept_"]
        z = X @ w.T + b                    # z: (N, 1)
        return z, X                        # backward needs the input

    # loss: J = (1/N)·Σ −[y·log p + (1 − y)·log(1 − p)] + alpha/2·‖w‖²
    # With p = sigmoid(z) the bracket simplifies to log(1 + e^z) − y·z, which
    # np.logaddexp computes without overflow or log(0).
    def _loss(self, params, z, Y):
        w = params["coef_"]
        y = Y[:, 1:]                       # y: (N, 1), 1 for the second class
        data = float(np.mean(np.logaddexp(0, z) - y * z))
        return data + l2_penalty(self.alpha, [w])

    # backward: ∂J/∂z = (p − y)/N, then the chain rule through z = X·wᵀ + b
    def _backward(self, params, X, z, Y):
        w = params["coef_"]
        dz = (sigmoid(z) - Y[:, 1:]) / len(Y)  # dz: (N, 1)
        dw = dz.T @ X + self.alpha * w         # dw: (1, D)
        db = dz.sum(axis=0)                    # db: (1,)
        return {"coef_": dw, "intercept_": db}

    def _proba(self, z):
        p = sigmoid(z)                         # p: (N, 1)
        return np.hstack([1 - p, p])           # (N, 2)

    def explain(self, X, classes=None) -> np.ndarray:
        """Each pixel's evidence, w ⊙ x: for the second class, and its negative for the first
        (what the first class gains when z falls): (N, 2, 784), or the ``classes`` asked for."""
        X = self._fitted_input(X)
        signs = np.array([-1, 1], dtype=np.float32)[self._class_indices(classes)]
        return signs[None, :, None] * (X * self.coef_[0])[:, None, :]

    def weight_images(self) -> np.ndarray:
        check_fitted(self, "classes_")
        return self.coef_

    def onnx_graph(self):
        check_fitted(self, "classes_")
        return dense_graph([(self.coef_.T, self.intercept_)], binary=True)  # [1 − p, p], as _proba
