"""A fully connected ReLU network with a softmax output, by backpropagation in NumPy.

Each hidden layer computes A = ReLU(A_prev·W + b); the last layer is softmax
regression on the last hidden activations. Read top to bottom: parameters
(and their initialisation), forward, loss, backward. The update
W ← W − lr·dW (or momentum/Adam) is the shared optimiser in optim.py.

Shapes, for hidden=(256, 128): N examples in a batch, D = 784 pixels, K classes;
W1: (784, 256), W2: (256, 128), W3: (128, K), and b1: (256,), b2: (128,), b3: (K,).
Layer l maps its input A(l−1) (A0 = X) to A(l).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from ..base import N_CLASSES, N_FEATURES, dense_weights
from ..params import Interval, PositiveInts, StrOptions
from ..onnx_graphs import dense_graph
from ..validation import check_fitted
from .optim import STATE_ARRAYS
from .softmax import cross_entropy, l2_penalty, softmax
from .train import GradientDescentClassifier

INITS = ("he", "xavier", "small")


class NumpyMLP(GradientDescentClassifier):
    """Multi-layer perceptron: ReLU hidden layers, softmax output, cross-entropy loss.

    Its own parameters are below; the others are GradientDescentClassifier's.

    Parameters
    ----------
    hidden : sequence of int, default=(256, 128)
        The sizes of the hidden layers, input side first; () is softmax regression.
    init : {"he", "xavier", "small"}, default="he"
        How the weights start. "he" (std √(2/n_in)) keeps the scale of ReLU activations layer
        after layer; "xavier" (Glorot, std √(2/(n_in + n_out))) is made for symmetric
        activations; "small" (std 0.01) is the naive start whose signal shrinks with depth.
    dropout : float in [0, 1), default=0.0
        The probability of zeroing each hidden unit while training. Inverted dropout: the
        survivors are scaled by 1/(1 − dropout), so inference needs no change.

    Attributes
    ----------
    ``coefs_`` and ``intercepts_``, lists of the layers' W (n_in, n_out) and b
    (n_out,), as in scikit-learn's MLPClassifier; in model files they are the
    arrays W1, b1, W2, b2, …
    """

    family = "numpy-mlp"
    can_explain = True
    _parameter_constraints = {
        **GradientDescentClassifier._parameter_constraints,
        "hidden": [PositiveInts()],
        "init": [StrOptions(set(INITS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(self, hidden=(256, 128), init="he", dropout=0.0, optimizer="adam",
                 learning_rate=0.001, lr_decay=0.0, batch_size=128, max_epochs=20, momentum=0.9,
                 beta1=0.9, beta2=0.999, epsilon=1e-8, alpha=0.0, early_stopping=False,
                 validation_fraction=None, patience=3, random_state=None):
        self.hidden = hidden
        self.init = init
        self.dropout = dropout
        super().__init__(optimizer=optimizer, learning_rate=learning_rate, lr_decay=lr_decay,
                         batch_size=batch_size, max_epochs=max_epochs, momentum=momentum,
                         beta1=beta1, beta2=beta2, epsilon=epsilon, alpha=alpha,
                         early_stopping=early_stopping, validation_fraction=validation_fraction,
                         patience=patience, random_state=random_state)

    def _fit_memory(self):
        # float32 weights and gradients, the optimiser's arrays, and the best weights early stopping keeps
        copies = 2 + STATE_ARRAYS[self.optimizer] + bool(self.early_stopping)
        return "hidden", dense_weights((N_FEATURES, *map(int, self.hidden), N_CLASSES)), 4 * copies

    # parameters: random weights (zeros would make every unit of a layer identical), zero biases
    def _init_params(self, n_features, n_classes, rng):
        sizes = (n_features, *self.hidden, n_classes)
        params = {}
        for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            std = {"he": math.sqrt(2 / n_in),
                   "xavier": math.sqrt(2 / (n_in + n_out)),
                   "small": 0.01}[self.init]
            params[f"W{l}"] = std * rng.standard_normal((n_in, n_out), dtype=np.float32)
            params[f"b{l}"] = np.zeros(n_out, dtype=np.float32)
        return params

    # forward: A(l) = ReLU(A(l−1)·Wl + bl) for the hidden layers, then logits = A·W + b.
    # The cache keeps what backward needs: each layer's input, pre-activation and dropout mask.
    def _forward(self, params, X, rng=None):
        n_layers = len(params) // 2
        A, cache = X, []                                  # A0 = X: (N, D)
        for l in range(1, n_layers):
            Z = A @ params[f"W{l}"] + params[f"b{l}"]     # Zl: (N, hidden[l−1])
            A_next = np.maximum(Z, 0)                     # Al: (N, hidden[l−1])
            mask = None
            if rng is not None and self.dropout > 0:      # training only
                keep = 1 - self.dropout
                mask = (rng.random(Z.shape, dtype=Z.dtype) < keep).astype(Z.dtype) / keep
                A_next *= mask
            cache.append((A, Z, mask))
            A = A_next
        logits = A @ params[f"W{n_layers}"] + params[f"b{n_layers}"]  # (N, K)
        cache.append((A, None, None))
        return logits, cache

    # loss: J = mean cross-entropy of softmax(logits) + alpha/2·Σ_l ‖Wl‖²
    def _loss(self, params, logits, Y):
        return cross_entropy(logits, Y) + l2_penalty(self.alpha, [w for name, w in params.items() if name[0] == "W"])

    # backward: start from ∂J/∂logits = (P − Y)/N and apply the chain rule layer by layer
    def _backward(self, params, cache, logits, Y):
        dZ = (softmax(logits) - Y) / len(Y)               # (N, K)
        grads, _ = self._backpropagate(params, cache, dZ)
        return grads

    def _backpropagate(self, params, cache, dZ, input_gradient=False):
        """Gradients of the weights (and, if asked, of the input X) given dZ = ∂J/∂logits."""
        grads, dX = {}, None
        for l in range(len(cache), 0, -1):
            A_in = cache[l - 1][0]                        # A(l−1): (N, n_in)
            W = params[f"W{l}"]                           # Wl: (n_in, n_out)
            grads[f"W{l}"] = A_in.T @ dZ + self.alpha * W  # dWl: (n_in, n_out)
            grads[f"b{l}"] = dZ.sum(axis=0)               # dbl: (n_out,)
            if l == 1:
                if input_gradient:
                    dX = dZ @ W.T                         # ∂J/∂X: (N, D)
                break
            dA = dZ @ W.T                                 # dA(l−1): (N, n_in)
            _, Z_in, mask = cache[l - 2]                  # the layer that produced A(l−1)
            if mask is not None:
                dA *= mask                                # dropped units pass no gradient
            dZ = dA * (Z_in > 0)                          # ReLU'(Z) is 1 where Z > 0, else 0
        return grads, dX

    def _proba(self, logits):
        return softmax(logits)

    def features(self, X) -> np.ndarray | None:
        """The last hidden layer's activations (N×units): what the output layer separates; None without one."""
        X = self._fitted_input(X)  # first: it says so when the model is not fitted
        if len(self.coefs_) == 1:  # no hidden layer: the output layer's input is the pixels themselves
            return None
        _, cache = self._forward(self._fitted_params(), X)
        return cache[-1][0]

    def explain(self, X, classes=None) -> np.ndarray:
        """Gradient × input: ∂logit_k/∂x ⊙ x for each class k (of ``classes``; default all), one
        backward pass each: (N, K, 784)."""
        X = self._fitted_input(X)
        params = self._fitted_params()
        logits, cache = self._forward(params, X)
        per_class = []
        for k in self._class_indices(classes):
            dZ = np.zeros_like(logits)
            dZ[:, k] = 1                                  # seed: ∂logit_k/∂logits
            _, dX = self._backpropagate(params, cache, dZ, input_gradient=True)
            per_class.append(dX * X)
        return np.stack(per_class, axis=1)

    def onnx_graph(self):
        check_fitted(self, "classes_")
        return dense_graph(list(zip(self.coefs_, self.intercepts_)), activation="relu")

    # -- model files: the arrays W1, b1, W2, b2, … ----------------------------------------
    def _fitted_params(self):
        params = {}
        for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_), start=1):
            params[f"W{l}"], params[f"b{l}"] = W, b
        return params

    def _store_params(self, params):
        n_layers = len(params) // 2
        self.coefs_ = [params[f"W{l}"] for l in range(1, n_layers + 1)]
        self.intercepts_ = [params[f"b{l}"] for l in range(1, n_layers + 1)]

    def get_arrays(self):
        return {"classes_": np.asarray(self.classes_), **self._fitted_params()}

    def set_arrays(self, arrays):
        n_layers = len(self.hidden) + 1
        names = ["classes_"] + [f"{p}{l}" for l in range(1, n_layers + 1) for p in "Wb"]
        # hidden says how many layers are read: more arrays (a newer version's) are ignored, as in every family,
        # but not a layer more, which says the file and model.json disagree: where its sizes fit (hidden 10,10 given
        # as 10 on ten classes) the model loaded and predicted nonsense (accuracy 0.05)
        self._require_arrays(arrays, names, f"hidden={self.hidden!r}")
        if f"W{n_layers + 1}" in arrays:
            raise ValueError(f"model file holds more layers than hidden={self.hidden!r} says")
        self.classes_ = arrays["classes_"]
        self._store_params({name: arrays[name] for name in names[1:]})
        return self
