"""The training loop shared by the NumPy models.

A model file (logreg.py, softmax.py, mlp.py) says only what the
model *is*: how to initialise its parameters, the forward pass, the loss and
the backward pass. This base class does everything else the same way for all
of them: shuffling into mini-batches, the optimiser step (optim.py), the
learning-rate schedule, the validation split and early stopping, the
per-epoch history, the progress display, and predict/score/save.

Hooks a model implements (``params`` is a dict name -> array; ``Y`` is the
one-hot target, (batch, classes)):

``_init_params(n_features, n_classes, rng)``  -> params
``_forward(params, X, rng=None)``             -> (logits, cache); ``rng`` given means training
                                                 (dropout on), None means inference
``_loss(params, logits, Y)``                  -> the objective, a float: mean cross-entropy + L2
``_backward(params, cache, logits, Y)``       -> grads, same names and shapes as params
``_proba(logits)``                            -> class probabilities, (N, classes)
``_fitted_params()`` / ``_store_params(params)``: params <-> the fitted ``*_`` attributes
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import ClassVar

import numpy as np

from ...callbacks import ThinnedLog, started
from ...errors import DivergedError, ParameterError
from ...data.preprocess import held_out
from .._fitting import finite_proba, reporter
from ..base import MnistlabModel
from ..params import SEED_OR_NONE, Interval, StrOptions
from ..validation import check_features, check_fitted, check_labels, fit_features, set_learned
from .optim import OPTIMIZERS, learning_rate_at, make_optimizer


def one_hot(y: np.ndarray, n_classes: int, dtype=np.float32) -> np.ndarray:
    """Integer labels (N,) -> (N, n_classes) with a single 1 per row."""
    Y = np.zeros((len(y), n_classes), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y


class GradientDescentClassifier(MnistlabModel):
    """Base class of the NumPy models; see the module docstring for the hooks.

    Its ``__init__`` is the whole of the linear models'. numpy-mlp repeats these
    parameters in its own next to its extra ones, because scikit-learn reads an
    estimator's parameters from its ``__init__`` signature.

    Parameters
    ----------
    optimizer : {"gd", "sgd", "momentum", "adam"}, default="adam"
        The update rule (see ``optim``): "gd" steps on the full batch, the others on mini-batches.
    learning_rate : float > 0
        The step size at the first epoch.
    lr_decay : float ≥ 0, default=0.0
        Inverse-time decay: the step size at epoch e is learning_rate / (1 + lr_decay·e).
    batch_size : int ≥ 1, default=128
        Examples per step (ignored by "gd", which uses all of them).
    max_epochs : int ≥ 1, default=20
        Passes over the training data, fewer if early stopping ends the fit.
    momentum : float in [0, 1), default=0.9
        β of "momentum": the weight of the past in its average of the gradients.
    beta1 : float in [0, 1), default=0.9
        Adam's decay rate of the mean of the gradients.
    beta2 : float in [0, 1), default=0.999
        Adam's decay rate of the mean of the squared gradients.
    epsilon : float > 0, default=1e-8
        Adam's guard against division by zero.
    alpha : float ≥ 0, default=0.0
        L2 penalty: the objective is mean cross-entropy + alpha/2·‖W‖² (biases unpenalised).
    early_stopping : bool, default=False
        Stop once the validation loss has not improved for ``patience`` epochs, and keep the
        best weights.
    validation_fraction : float in [0, 1) or None, default=None
        The stratified share of the training data held out, whose loss and accuracy are
        recorded each epoch. None means 0.1 with early stopping and none without.
    patience : int ≥ 1, default=3
        Epochs without improvement of the validation loss that early stopping waits.
    random_state : int or None, default=None
        Seed of initialisation, split, shuffling and dropout; same seed, same bits on the same
        number of BLAS threads (their sums round by how they are shared).

    Attributes
    ----------
    classes_, the model's weights, ``n_iter_`` (epochs run) and ``history_``:
    per-epoch "train_loss", "train_accuracy" (running means over the epoch's
    mini-batches, as Keras reports them), "val_loss", "val_accuracy" (when there
    is a validation split), and per-step "step_loss"; ``fit_message_``: with early
    stopping, the epoch whose weights were kept (None without it).
    """

    history_per_step = ("step_loss",)
    binary_only: ClassVar[bool] = False  # the model fits exactly two classes
    _parameter_constraints = {
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "beta1": [Interval(Real, 0, 1, closed="left")],
        "beta2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "random_state": SEED_OR_NONE,
    }
    _used_only_when = {"batch_size": {"optimizer": frozenset({"sgd", "momentum", "adam"})},
                       "momentum": {"optimizer": frozenset({"momentum"})},
                       **dict.fromkeys(("beta1", "beta2", "epsilon"), {"optimizer": frozenset({"adam"})}),
                       "patience": {"early_stopping": frozenset({True})}}

    def __init__(self, optimizer="adam", learning_rate=0.01, lr_decay=0.0, batch_size=128,
                 max_epochs=20, momentum=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8, alpha=0.0,
                 early_stopping=False, validation_fraction=None, patience=3, random_state=None):
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.momentum = momentum
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.alpha = alpha
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state

    def __sklearn_tags__(self):
        """The classifier's tags, saying where it takes two classes only (scikit-learn's tools read them)."""
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = not self.binary_only
        return tags

    def _check_rules(self) -> None:
        """That early stopping has a validation split to watch, and that Adam's first step divides by no 0."""
        if self.early_stopping and self.validation_fraction == 0:
            raise ParameterError("validation_fraction", "must be > 0 with early_stopping=True "
                                                        "(None holds out 0.1)")
        # Adam's first step divides by √s + epsilon·√(1 − beta2) (optim.Adam), in float32: where that is 0, a pixel
        # no image lights is 0/0, NaN (epsilon=1e-50 "diverged in training", a learning rate too high was said)
        if self.optimizer == "adam" and np.float32(self.epsilon * math.sqrt(1 - self.beta2)) == 0:
            raise ParameterError("epsilon", f"with beta2={self.beta2!r}, Adam's first step divides by "
                                            f"epsilon × √(1 − beta2), 0 in float32 for {self.epsilon!r}: give a larger "
                                            "epsilon")

    # -- hooks (see the module docstring) -------------------------------------------------
    def _init_params(self, n_features, n_classes, rng):
        raise NotImplementedError

    def _forward(self, params, X, rng=None):
        raise NotImplementedError

    def _loss(self, params, logits, Y):
        raise NotImplementedError

    def _backward(self, params, cache, logits, Y):
        raise NotImplementedError

    def _proba(self, logits):
        raise NotImplementedError

    def _fitted_params(self) -> dict[str, np.ndarray]:
        """By default the params are the ``learned_arrays`` other than ``classes_``."""
        return {name: getattr(self, name) for name in self.learned_arrays if name != "classes_"}

    def _store_params(self, params: dict[str, np.ndarray]) -> None:
        for name, value in params.items():
            setattr(self, name, value)

    # -- training ---------------------------------------------------------------------------
    def fit(self, X, y, progress=None):
        self.validate_params()
        self.check_fit_memory()
        progress = reporter(progress)
        X, features = fit_features(self, X)
        y = check_labels(self, y, len(X))
        classes, y = np.unique(y, return_inverse=True)  # classes_ is set last: a fit that fails leaves none
        n_classes = len(classes)
        if self.binary_only and n_classes != 2:
            # scikit-learn's words for it, which its checks of a binary-only classifier look for
            raise ParameterError(None, f"Only binary classification is supported: {self.family} takes 2 classes, "
                                       f"not {n_classes} class{'es' * (n_classes != 1)} (numpy-softmax takes more)")
        rng = np.random.default_rng(self.random_state)

        X_val = y_val = None
        fraction = self.validation_fraction
        if fraction is None:
            fraction = 0.1 if self.early_stopping else 0.0
        if fraction > 0:
            X, X_val, y, y_val = held_out(X, y, fraction, int(rng.integers(2**31)), "validation_fraction", classes)
        Y = one_hot(y, n_classes)
        n = len(X)

        params = self._init_params(X.shape[1], n_classes, rng)
        optimizer = make_optimizer(self.optimizer, params, self.momentum,
                                   self.beta1, self.beta2, self.epsilon)
        batch_size = n if self.optimizer == "gd" else min(self.batch_size, n)
        n_steps = -(-n // batch_size)

        history = {"train_loss": [], "train_accuracy": [], "step_loss": []}
        if X_val is not None:
            history.update(val_loss=[], val_accuracy=[])
        best_loss, best_params, best_epoch, waited = np.inf, None, 0, 0

        log = ThinnedLog(progress, self.max_epochs)
        # Numbers past float32's range (Adam's squared gradients, a product of weights) leave every later step
        # meaningless: the fit stops there, with one error, where NumPy would warn and go on.
        with started(progress, self.max_epochs * n_steps, "step"), \
                np.errstate(over="raise", invalid="raise", divide="raise"):
            for epoch in range(self.max_epochs):
                try:
                    loss, accuracy = self._train_epoch(params, optimizer, X, Y, y, rng, epoch, batch_size,
                                                       history["step_loss"], progress)
                    validation = None if X_val is None else self._evaluate(params, X_val, y_val, n_classes)
                except FloatingPointError as exc:
                    raise DivergedError(self.family, f"its numbers went past float32's range in epoch {epoch + 1} "
                                                     f"({exc})") from None
                history["train_loss"].append(loss)
                history["train_accuracy"].append(accuracy)
                summary = f"epoch {epoch + 1}/{self.max_epochs}  loss {loss:.4f}  acc {accuracy:.4f}"
                if validation is not None:
                    val_loss, val_accuracy = validation
                    history["val_loss"].append(val_loss)
                    history["val_accuracy"].append(val_accuracy)
                    summary += f"  val_loss {val_loss:.4f}  val_acc {val_accuracy:.4f}"
                log.add(epoch + 1, summary)
                if validation is None or not self.early_stopping:
                    continue
                if val_loss < best_loss:
                    best_loss, best_epoch, waited = val_loss, epoch + 1, 0
                    best_params = {name: w.copy() for name, w in params.items()}
                else:
                    waited += 1
                    if waited >= self.patience:
                        log.flush()
                        progress.log(f"early stopping: no better validation loss for {self.patience} epochs")
                        break
            log.flush()

        kept = best_params if best_params is not None else params
        # a product's overflow in BLAS's other threads raises no floating-point error: the last step's is seen here
        if not all(np.isfinite(w).all() for w in kept.values()):
            raise DivergedError(self.family, "its weights after the last step are not finite")
        # finite weights can still overflow what they compute (numpy-softmax with gd at learning_rate=1e38 for one
        # epoch predicted NaN, said nothing): a batch of the training images tells, NaN being what is looked for
        with np.errstate(all="ignore"):
            finite_proba(self._proba(self._forward(kept, X[:batch_size])[0]), self.family)
        ran = len(history["train_loss"])
        message = None
        if best_params is not None:  # early stopping keeps the best epoch's weights, which need not be the last's
            message = (f"{'stopped early after' if waited >= self.patience else 'ran'} {ran} epochs; the weights "
                       f"kept are epoch {best_epoch}'s, of the lowest validation loss ({best_loss:.4f})")
        self._store_params(kept)
        set_learned(self, {**features, "classes_": classes, "n_iter_": ran, "history_": history,
                           "fit_message_": message})
        return self

    def _train_epoch(self, params, optimizer, X, Y, y, rng, epoch: int, batch_size: int, step_losses: list[float],
                     progress) -> tuple[float, float]:
        """One pass over ``X`` in shuffled batches, a step of ``optimizer`` each: the epoch's mean loss and
        accuracy (each step's loss is appended to ``step_losses``)."""
        n = len(X)
        lr = learning_rate_at(epoch, self.learning_rate, self.lr_decay)
        order = rng.permutation(n)
        first_step, title = epoch * -(-n // batch_size), f"epoch {epoch + 1}/{self.max_epochs}"
        loss_sum, correct = 0.0, 0
        for step, start in enumerate(range(0, n, batch_size)):
            batch = order[start:start + batch_size]
            X_batch, Y_batch = X[batch], Y[batch]
            logits, cache = self._forward(params, X_batch, rng)
            loss = self._loss(params, logits, Y_batch)
            if not math.isfinite(loss):  # an overflow in BLAS's other threads raises nothing itself
                raise FloatingPointError("the loss is not finite")
            grads = self._backward(params, cache, logits, Y_batch)
            optimizer.step(params, grads, lr)

            step_losses.append(loss)
            loss_sum += loss * len(batch)
            correct += int(np.sum(self._proba(logits).argmax(axis=1) == y[batch]))
            seen = min(start + batch_size, n)
            progress.advance(first_step + step + 1, f"{title}  loss {loss_sum / seen:.4f}  acc {correct / seen:.4f}")
        return loss_sum / n, correct / n

    def _evaluate(self, params, X, y, n_classes: int) -> tuple[float, float]:
        """Loss and accuracy on held-out data, dropout off."""
        logits, _ = self._forward(params, X)
        loss = self._loss(params, logits, one_hot(y, n_classes))
        return loss, float(np.mean(self._proba(logits).argmax(axis=1) == y))

    # -- inference --------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        X = self._fitted_input(X)  # first: it says so when the model is not fitted
        logits, _ = self._forward(self._fitted_params(), X)
        return self._proba(logits)

    def _fitted_input(self, X) -> np.ndarray:
        """``X`` checked against the fitted model, for everything that reads it (predictions, maps, features)."""
        check_fitted(self, "classes_")
        return check_features(self, X)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # first: it says so when the model is not fitted
        return self.classes_[proba.argmax(axis=1)]
