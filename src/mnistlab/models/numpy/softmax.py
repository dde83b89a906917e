"""Multinomial (softmax) logistic regression, by gradient descent in NumPy.

One weight vector per class scores an image; softmax turns the ten scores
into probabilities; cross-entropy measures how little probability the true
class got. Read top to bottom: parameters, forward, loss, backward. The update
W ← W − lr·dW (or momentum/Adam) is the shared optimiser in optim.py.

Shapes: N examples in a batch, D = 784 pixels, K classes.
"""

from __future__ import annotations

import numpy as np

from ..onnx_graphs import dense_graph
from ..validation import check_fitted
from .train import GradientDescentClassifier


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax. Subtracting the row maximum changes nothing but avoids overflow."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """log(softmax(Z)) without taking the log of probabilities that underflowed to 0."""
    Z = Z - Z.max(axis=1, keepdims=True)
    return Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))


def cross_entropy(logits: np.ndarray, Y: np.ndarray) -> float:
    """Mean over the batch of −log p(true class); Y is one-hot (N, K)."""
    return float(-np.sum(Y * log_softmax(logits)) / len(Y))


def l2_penalty(alpha: float, weights) -> float:
    """alpha/2 · Σ‖W‖² over ``weights``, summed in float64; 0 without a penalty (alpha 0 times a ‖W‖² that
    overflowed float32 would be NaN, a loss a diverging fit does not have)."""
    if alpha == 0:
        return 0.0
    return 0.5 * alpha * sum(float(np.sum(np.square(w, dtype=np.float64))) for w in weights)


class NumpySoftmax(GradientDescentClassifier):
    """Softmax regression: P = softmax(X·Wᵀ + b), trained on mean cross-entropy + alpha/2·‖W‖².

    Fitted: ``coef_`` (K, 784) and ``intercept_`` (K,), as in scikit-learn's
    LogisticRegression. The loss is convex, so the weights start at zero and
    every optimiser heads for the same optimum. The parameters are
    GradientDescentClassifier's.
    """

    family = "numpy-softmax"
    learned_arrays = ("classes_", "coef_", "intercept_")
    can_explain = True

    def _init_params(self, n_features, n_classes, rng):
        return {"coef_": np.zeros((n_classes, n_features), dtype=np.float32),  # W: (K, D)
                "intercept_": np.zeros(n_classes, dtype=np.float32)}           # b: (K,)

    # forward: one score (logit) per class
    def _forward(self, params, X, rng=None):
        W, b = params["coef_"], params["intercept_"]
        Z = X @ W.T + b                    # Z: (N, K)
        return Z, X                        # backward needs the input

    # loss: J = −(1/N)·Σ log softmax(Z)[true class] + alpha/2·‖W‖²
    def _loss(self, params, logits, Y):
        W = params["coef_"]
        return cross_entropy(logits, Y) + l2_penalty(self.alpha, [W])

    # backward: for softmax + cross-entropy, ∂J/∂Z is simply (P − Y)/N
    def _backward(self, params, X, Z, Y):
        W = params["coef_"]
        dZ = (softmax(Z) - Y) / len(Y)     # dZ: (N, K)
        dW = dZ.T @ X + self.alpha * W     # dW: (K, D)
        db = dZ.sum(axis=0)                # db: (K,)
        return {"coef_": dW, "intercept_": db}

    def _proba(self, logits):
        return softmax(logits)

    def explain(self, X, classes=None) -> np.ndarray:
        """Each pixel's contribution to each class's logit (of ``classes``; default all), w_k ⊙ x: (N, K, 784)."""
        X = self._fitted_input(X)
        return X[:, None, :] * self.coef_[self._class_indices(classes)][None, :, :]

    def weight_images(self) -> np.ndarray:
        check_fitted(self, "classes_")
        return self.coef_

    def onnx_graph(self):
        check_fitted(self, "classes_")
        return dense_graph([(self.coef_.T, self.intercept_)])
