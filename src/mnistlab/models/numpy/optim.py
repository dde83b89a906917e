"""Optimisers and the learning-rate schedule shared by the NumPy models.

An optimiser takes the parameters (a dict name -> array) and their gradients
(the same names and shapes) and moves the parameters in place. The models
never update weights themselves, so every model can use every optimiser.

Update rules, for one parameter W with gradient dW at step t (1, 2, …):

- ``"gd"`` and ``"sgd"``: W ← W − lr·dW. They differ only in how much data
  each gradient sees (all of it, or one mini-batch), which the training loop
  decides, not the optimiser.
- ``"momentum"``: v ← β·v + (1 − β)·dW;  W ← W − lr·v.
  The exponentially weighted form (as in Andrew Ng's course): v averages the
  recent gradients, so a learning rate that suits SGD also suits momentum.
- ``"adam"``: m ← β₁·m + (1 − β₁)·dW;  s ← β₂·s + (1 − β₂)·dW²;
  m̂ = m / (1 − β₁ᵗ);  ŝ = s / (1 − β₂ᵗ);  W ← W − lr·m̂ / (√ŝ + ε).
  The bias corrections undo the zero start of m and s in the first steps.
"""

from __future__ import annotations

import math

import numpy as np

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
STATE_ARRAYS = {"gd": 0, "sgd": 0, "momentum": 1, "adam": 2}  # what each keeps of the weights' size: v; m and s


def learning_rate_at(epoch: int, learning_rate: float, lr_decay: float) -> float:
    """Inverse-time decay per epoch: lr / (1 + lr_decay·epoch); epoch counts from 0.

    ``lr_decay=0`` keeps the learning rate constant.
    """
    return learning_rate / (1.0 + lr_decay * epoch)


class GradientDescent:
    """W ← W − lr·dW (used for both "gd" and "sgd")."""

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        for name, w in params.items():
            w -= lr * grads[name]


class Momentum:
    """v ← β·v + (1 − β)·dW;  W ← W − lr·v."""

    def __init__(self, params: dict[str, np.ndarray], beta: float = 0.9):
        self.beta = beta
        self.velocity = {name: np.zeros_like(w) for name, w in params.items()}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        for name, w in params.items():
            v = self.velocity[name]
            v *= self.beta
            v += (1 - self.beta) * grads[name]
            w -= lr * v


class Adam:
    """Momentum on the gradient (m) and per-weight scaling by its RMS (s), both bias-corrected."""

    def __init__(self, params: dict[str, np.ndarray], beta1: float = 0.9,
                 beta2: float = 0.999, epsilon: float = 1e-8):
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.t = 0
        self.m = {name: np.zeros_like(w) for name, w in params.items()}
        self.s = {name: np.zeros_like(w) for name, w in params.items()}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        self.t += 1
        # Folding both bias corrections into the step size saves two array passes:
        # lr·m̂/(√ŝ + ε) = lr_t·m/(√s + ε·√(1 − β₂ᵗ)) with lr_t = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ).
        c1, c2 = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
        # (math.sqrt keeps these Python floats, so float32 arrays stay float32.)
        lr_t = lr * math.sqrt(c2) / c1
        eps_t = self.epsilon * math.sqrt(c2)
        for name, w in params.items():
            g, m, s = grads[name], self.m[name], self.s[name]
            m *= self.beta1
            m += (1 - self.beta1) * g
            s *= self.beta2
            s += (1 - self.beta2) * g * g
            w -= lr_t * m / (np.sqrt(s) + eps_t)


def make_optimizer(name: str, params: dict[str, np.ndarray], momentum: float,
                   beta1: float, beta2: float, epsilon: float):
    """The optimiser ``name``, one of OPTIMIZERS (the estimators' constraints have checked it)."""
    factories = {
        "gd": GradientDescent,
        "sgd": GradientDescent,
        "momentum": lambda: Momentum(params, beta=momentum),
        "adam": lambda: Adam(params, beta1=beta1, beta2=beta2, epsilon=epsilon),
    }
    return factories[name]()
