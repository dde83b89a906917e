"""Multinomial logistic regression with our own float32 quasi-Newton solvers.

The objective
-------------
For X (n×d), labels y, coefficients W (k×d) and intercepts b (k), z_i = W x_i + b::

    F(W, b) = 1/n Σ_i [log Σ_c exp(z_ic) − z_{i,y_i}]  +  R(W) / (C·n)

    R(W) = ½‖W‖²                        penalty="l2"
           ‖W‖₁                         penalty="l1"
           ρ‖W‖₁ + (1 − ρ)/2 ‖W‖²        penalty="elasticnet", ρ = l1_ratio
           0                            penalty="none"

This is scikit-learn 1.9's ``LogisticRegression`` objective, C·Σ loss + R(W),
divided by C·n: the mean-loss scale its lbfgs minimises internally
(``l2_reg_strength = 1/(C·n)``) and its saga works on (``alpha = 1/C`` per
sample). The same C therefore gives the same optimum, and ``history_`` values
compare directly with scikit-learn's. The intercept is not penalised. With
λ₂ = (1 − ρ)/(C·n), P = softmax(Z) and Y the one-hot labels, the gradient of
the smooth part is ∂F/∂W = (P − Y)ᵀX/n + λ₂W and ∂F/∂b = (P − Y)ᵀ1/n.

The solvers
-----------
Both are limited-memory quasi-Newton methods (L-BFGS two-loop recursion,
backtracking Armijo line search). All the work is two float32 matrix products
per step, X·Wᵀ and (P − Y)ᵀ·X, done block by block so each block of X is read
from memory once, by one worker thread per BLAS thread, each calling
single-threaded BLAS (multithreaded OpenBLAS spins while other jobs hold the
cores, and was many times slower on a shared machine). Results do not depend
on the number of threads. Both solvers work on the intercept of the centred
data, b' = b + W·x̄, an exact change of variables that decouples it from W.

* ``"whitened-lbfgs"`` (penalty none/l2) runs L-BFGS on V = W·L, where
  L Lᵀ = Σ + εI is the Cholesky factor of the pixel covariance (estimated on
  at most 10,000 rows; ε = λ₂/0.01, the penalty's curvature relative to a
  typical softmax curvature). Neighbouring pixels are strongly correlated,
  which makes the problem ill-conditioned for L-BFGS; whitened, it needs
  ~2.5x fewer iterations than on the centred pixels (Fashion-MNIST, C=1: ~175
  to come within 0.05 % of the optimum, where scikit-learn's lbfgs takes
  ~1,400 to converge). Only the coordinates change, not the objective.
* ``"owlqn"`` (any penalty, meant for l1/elasticnet) is orthant-wise L-BFGS
  (Andrew & Gao, 2007): it steps along the pseudo-gradient of F, keeps each
  step inside one orthant and sets coefficients that would cross zero to
  exactly zero, so L1 solutions are truly sparse. Whitening would mix
  coordinates and break that, so it works on W directly.

Stopping rule (ours): the largest absolute entry of the gradient of F with
respect to (W, b') — for L1, of the minimum-norm subgradient — is at most
``tol``. scikit-learn's lbfgs applies the same test, on the same scale, to the
gradient with respect to (W, b), so ``tol`` means much the same for both.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import scipy.linalg
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_info, threadpool_limits

from ..base import MnistlabModel

PENALTIES = ("none", "l2", "l1", "elasticnet")
OUR_SOLVERS = ("auto", "whitened-lbfgs", "owlqn")
SKLEARN_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga", "liblinear")

BLOCK_ROWS = 512             # rows of X per matrix product: a block stays in cache for both
CHUNK_ROWS = 8 * BLOCK_ROWS  # rows per task handed to a worker thread (whole blocks)
WHITENING_ROWS = 10_000      # rows used to estimate the pixel covariance
WHITENING_MAX_FEATURES = 4096  # beyond this the d×d factorisation costs more than it saves
TYPICAL_CURVATURE = 0.01     # softmax curvature the penalty is compared with (tuned on Fashion-MNIST)
MEMORY = 20                  # L-BFGS correction pairs
ARMIJO = 1e-4                # sufficient-decrease constant of the line search
MAX_BACKTRACKS = 20


def _blas_threads() -> int:
    """How many threads BLAS would use now (honours OPENBLAS_NUM_THREADS and the like)."""
    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return max(counts) if counts else (os.cpu_count() or 1)


def _softmax_rows(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float32 logits, in place."""
    Z -= Z.max(axis=1, keepdims=True)
    np.exp(Z, out=Z)
    Z /= Z.sum(axis=1, keepdims=True)
    return Z


class _SoftmaxLoss:
    """Σ_i cross-entropy of a linear softmax model, with (P − Y)ᵀX and (P − Y)ᵀ1.

    Computed in X's precision: float32 in the estimator, float64 for exact
    checks. The rows are cut into fixed chunks that idle workers take in turn
    (so one descheduled thread does not hold up the others); each chunk is
    walked in blocks, and the partial sums are added in chunk order, so the
    result depends neither on scheduling nor on the number of workers.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, n_classes: int, pool: ThreadPoolExecutor):
        self.X, self.n_classes, self.pool = X, n_classes, pool
        self.chunks = [(a, min(a + CHUNK_ROWS, len(X))) for a in range(0, len(X), CHUNK_ROWS)]
        # where each row's true-class logit sits in its flattened block of logits
        self.true_class = (np.arange(len(X)) % BLOCK_ROWS) * n_classes + y

    def _chunk(self, W: np.ndarray, b: np.ndarray, start: int, stop: int):
        """The three sums over rows start:stop."""
        total = 0.0
        RtX = np.zeros(W.shape, dtype=self.X.dtype)
        Rt1 = np.zeros(self.n_classes)
        for a in range(start, stop, BLOCK_ROWS):
            Xb, true_class = self.X[a:min(a + BLOCK_ROWS, stop)], self.true_class[a:min(a + BLOCK_ROWS, stop)]
            Z = Xb @ W.T
            Z += b
            Z -= Z.max(axis=1, keepdims=True)
            flat = Z.reshape(-1)
            true_logits = flat[true_class].sum(dtype=np.float64)
            np.exp(Z, out=Z)
            sums = Z.sum(axis=1)
            total += float(np.log(sums).sum(dtype=np.float64) - true_logits)
            Z /= sums[:, None]          # Z is now P,
            flat[true_class] -= 1       # and now the residual P − Y
            RtX += Z.T @ Xb
            Rt1 += Z.sum(axis=0, dtype=np.float64)
        return total, RtX.astype(np.float64), Rt1

    def __call__(self, W: np.ndarray, b: np.ndarray):
        W_x, b_x = W.astype(self.X.dtype), b.astype(self.X.dtype)
        parts = [f.result() for f in [self.pool.submit(self._chunk, W_x, b_x, a, z) for a, z in self.chunks]]
        return (sum(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts))


class _Objective:
    """F in the solvers' coordinates θ = [V | b'] (k × (d + 1), float64).

    W = V·Pᵀ with P = L⁻ᵀ when whitened (P is None otherwise, and V = W);
    b = b' − W·x̄. The gradient with respect to V is then (∂F/∂W)·P.
    """

    def __init__(self, loss: _SoftmaxLoss, center: np.ndarray, l1: float, l2: float, P: np.ndarray | None):
        self.loss, self.center, self.l1, self.l2, self.P = loss, center, l1, l2, P
        self.n = len(loss.X)
        d = len(center)
        self.penalised = np.zeros((loss.n_classes, d + 1), dtype=bool)
        self.penalised[:, :d] = l1 > 0

    def to_model(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        W = theta[:, :-1] if self.P is None else theta[:, :-1] @ self.P.T
        return W, theta[:, -1] - W @ self.center

    def smooth(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Loss + λ₂ term; its gradient in θ coordinates and in (W, b') coordinates."""
        W, b = self.to_model(theta)
        total, RtX, Rt1 = self.loss(W, b)
        g_b = Rt1 / self.n
        g_W = RtX / self.n - np.outer(g_b, self.center) + self.l2 * W
        value = total / self.n + 0.5 * self.l2 * float(np.vdot(W, W))
        g_model = np.hstack([g_W, g_b[:, None]])
        g_theta = g_model if self.P is None else np.hstack([g_W @ self.P, g_b[:, None]])
        return value, g_theta, g_model

    def l1_value(self, theta: np.ndarray) -> float:
        return self.l1 * float(np.abs(theta[self.penalised]).sum()) if self.l1 > 0 else 0.0

    def pseudo_gradient(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Minimum-norm subgradient of F (the gradient itself without an L1 part)."""
        if self.l1 == 0:
            return grad
        up, down = grad + self.l1, grad - self.l1
        at_zero = np.where(up < 0, up, np.where(down > 0, down, 0.0))
        pg = np.where(theta > 0, up, np.where(theta < 0, down, at_zero))
        return np.where(self.penalised, pg, grad)


def _whitening(X: np.ndarray, center: np.ndarray, l2: float, pool: ThreadPoolExecutor) -> np.ndarray:
    """P = L⁻ᵀ with L Lᵀ = Σ + εI, Σ the covariance of (a sample of) the rows of X."""
    step = -(-len(X) // WHITENING_ROWS)
    sample = X[::step] - center.astype(np.float32)
    chunks = [sample[a:a + CHUNK_ROWS] for a in range(0, len(sample), CHUNK_ROWS)]
    parts = [pool.submit(lambda rows: rows.T @ rows, rows) for rows in chunks]
    cov = sum(part.result() for part in parts).astype(np.float64) / len(sample)
    # ε damps directions the penalty already controls; the floor keeps L invertible without one
    epsilon = max(l2 / TYPICAL_CURVATURE, 1e-6 * float(np.trace(cov)) / len(cov))
    cov[np.diag_indices_from(cov)] += epsilon
    L = scipy.linalg.cholesky(cov, lower=True)
    return scipy.linalg.solve_triangular(L, np.eye(len(cov)), lower=True).T


@dataclass
class _Result:
    theta: np.ndarray
    n_iter: int
    grad_norm: float
    stop: str                      # "converged", "max_iter" or "line_search"
    objective: list[float] = field(default_factory=list)


def _two_loop(grad: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """L-BFGS approximation of H⁻¹·grad from the stored (s, y, 1/sᵀy) pairs."""
    q = grad.copy()
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * np.vdot(s, q)
        q -= alpha * y
        alphas.append(alpha)
    if pairs:
        s, y, rho = pairs[-1]
        q *= 1.0 / (rho * np.vdot(y, y))
    else:
        q /= np.linalg.norm(grad)
    for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
        q += (alpha - rho * np.vdot(y, q)) * s
    return q


def _minimize(objective: _Objective, theta: np.ndarray, tol: float, max_iter: int, verbose: bool) -> _Result:
    """L-BFGS, orthant-wise (OWL-QN) when the objective has an L1 part.

    ``verbose`` prints progress at iterations 0, 1, 2, 5, 10, 20, 50, 100, …
    """
    f, grad, g_model = objective.smooth(theta)
    F = f + objective.l1_value(theta)
    result = _Result(theta, 0, 0.0, "max_iter", [F])
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
    orthant_wise = objective.l1 > 0
    for iteration in range(max_iter + 1):
        pg = objective.pseudo_gradient(theta, grad)
        result.grad_norm = float(np.abs(pg if orthant_wise else g_model).max())
        if verbose and (iteration == 0 or iteration / 10 ** (len(str(iteration)) - 1) in (1, 2, 5)):
            print(f"iteration {iteration:4d}  objective {F:.8f}  gradient norm {result.grad_norm:.2e}", flush=True)
        if result.grad_norm <= tol:
            result.stop = "converged"
            break
        if iteration == max_iter:
            break
        direction = -_two_loop(pg, pairs)
        if orthant_wise:
            direction[objective.penalised & (direction * pg >= 0)] = 0.0
            orthant = np.where(theta != 0, np.sign(theta), -np.sign(pg))
        step = 1.0
        for _ in range(MAX_BACKTRACKS):
            trial = theta + step * direction
            if orthant_wise:
                trial[objective.penalised & (np.sign(trial) != orthant)] = 0.0
            f_trial, grad_trial, g_model_trial = objective.smooth(trial)
            F_trial = f_trial + objective.l1_value(trial)
            if F_trial <= F + ARMIJO * np.vdot(pg, trial - theta):
                break
            step *= 0.5
        else:
            result.stop = "line_search"
            break
        s, y = trial - theta, grad_trial - grad
        sy = np.vdot(s, y)
        if sy > np.finfo(np.float64).eps * np.vdot(y, y):
            pairs = [*pairs[-(MEMORY - 1):], (s, y, 1.0 / sy)]
        theta, grad, g_model, F = trial, grad_trial, g_model_trial, F_trial
        result.objective.append(F)
        result.n_iter = iteration + 1
    result.theta = theta
    return result


def _sklearn_settings(penalty: str, C: float, l1_ratio: float, n_classes: int) -> tuple[float, float]:
    """(C, l1_ratio) for scikit-learn that minimise our objective.

    With two classes scikit-learn fits one binomial vector β instead of two
    softmax rows; the softmax optimum is (−β/2, β/2), and matching the
    penalties of the two forms gives C' = 2C/(1 + ρ), ρ' = 2ρ/(1 + ρ).
    """
    if penalty == "none":
        return np.inf, 0.0
    rho = {"l2": 0.0, "l1": 1.0, "elasticnet": float(l1_ratio)}[penalty]
    if n_classes == 2:
        return 2 * C / (1 + rho), 2 * rho / (1 + rho)
    return C, rho


class LogisticRegression(MnistlabModel):
    """Multinomial (softmax) logistic regression.

    Always multinomial: ``coef_`` is n_classes × n_features, also for two
    classes (then the rows are opposite at the L2 optimum), and
    ``decision_function`` follows scikit-learn: N × n_classes logits, or for
    two classes the 1-D margin z₁ − z₀.

    Parameters
    ----------
    penalty : {"l2", "none", "l1", "elasticnet"}
    C : float
        Inverse regularisation strength, with scikit-learn's meaning (see the
        module docstring for the objective). 0.1 reaches ~0.846 test accuracy
        on Fashion-MNIST.
    l1_ratio : float
        ρ of the elastic-net penalty (used only with penalty="elasticnet").
    solver : str
        Ours: ``"auto"`` (``"whitened-lbfgs"`` for none/l2, ``"owlqn"`` for
        l1/elasticnet), ``"whitened-lbfgs"`` (none/l2 only), ``"owlqn"`` (any
        penalty). A name equal to one of scikit-learn's — ``"lbfgs"``,
        ``"newton-cg"``, ``"newton-cholesky"``, ``"sag"``, ``"saga"``,
        ``"liblinear"`` — runs scikit-learn's solver on the same objective and
        copies its result (``tol`` and ``max_iter`` then mean what they mean
        there; liblinear also penalises the intercept).
    tol : float
        Ours: stop when the gradient's max-norm is ≤ tol (see the module
        docstring); 1e-4, scikit-learn's default, is reached in ~80 iterations
        on Fashion-MNIST at C=0.1.
    max_iter : int
    standardize : bool
        Centre and scale each pixel with the training mean and standard
        deviation inside the estimator (``mean_``, ``scale_``).
    random_state : int or None
        Passed to scikit-learn's sag/saga/liblinear; our solvers are deterministic.
    verbose : bool

    Attributes
    ----------
    coef_, intercept_, classes_, n_iter_, mean_ and scale_ (standardize=True),
    history_ (``{"objective": [...]}``, per iteration, on the scale above; one
    value when scikit-learn solved), converged_, fit_message_ (one line).
    """

    family = "logreg"
    learned_arrays = ("coef_", "intercept_", "classes_", "n_iter_")
    can_explain = True
    history_x_label = "iteration"

    def __init__(self, penalty="l2", C=0.1, l1_ratio=0.5, solver="auto", tol=1e-4, max_iter=500,
                 standardize=False, random_state=None, verbose=False):
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.standardize = standardize
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting -----------------------------------------------------------

    def _resolved_solver(self) -> str:
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {self.penalty!r}")
        if self.solver not in OUR_SOLVERS + SKLEARN_SOLVERS:
            raise ValueError(f"solver must be one of {OUR_SOLVERS + SKLEARN_SOLVERS}, got {self.solver!r}")
        if not (isinstance(self.C, Real) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        if not 0 <= self.l1_ratio <= 1:
            raise ValueError(f"l1_ratio must be in [0, 1], got {self.l1_ratio!r}")
        if not (isinstance(self.tol, Real) and self.tol > 0) or not (isinstance(self.max_iter, Integral)
                                                                     and self.max_iter >= 0):
            raise ValueError(f"need tol > 0 and an integer max_iter ≥ 0, got {self.tol!r}, {self.max_iter!r}")
        smooth = self.penalty in ("none", "l2")
        if self.solver == "auto":
            return "whitened-lbfgs" if smooth else "owlqn"
        if self.solver == "whitened-lbfgs" and not smooth:
            raise ValueError(f"solver 'whitened-lbfgs' handles penalty none/l2; use 'owlqn' for {self.penalty!r}")
        return self.solver

    def fit(self, X, y, progress=None):
        solver = self._resolved_solver()
        X, y = validate_data(self, X, y, dtype=np.float32, order="C")
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"needs samples of at least 2 classes, but the data contains only one class: "
                             f"{self.classes_[0]!r}")
        if self.standardize:
            self.mean_ = X.mean(axis=0, dtype=np.float64)
            std = X.std(axis=0, dtype=np.float64)
            self.scale_ = np.where(std < 10 * np.finfo(np.float32).eps, 1.0, std)
        X = self._model_input(X)
        if solver in SKLEARN_SOLVERS:
            self._fit_sklearn(X, codes, solver)
        else:
            self._fit_ours(X, codes, solver)
        return self

    def _penalty_strengths(self, n: int) -> tuple[float, float]:
        """(λ₁, λ₂) on the mean-loss scale."""
        if self.penalty == "none":
            return 0.0, 0.0
        rho = {"l2": 0.0, "l1": 1.0, "elasticnet": float(self.l1_ratio)}[self.penalty]
        return rho / (self.C * n), (1 - rho) / (self.C * n)

    def _fit_ours(self, X: np.ndarray, codes: np.ndarray, solver: str) -> None:
        n, d = X.shape
        k = len(self.classes_)
        l1, l2 = self._penalty_strengths(n)
        workers = _blas_threads()
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            center = (np.ones(n, dtype=np.float32) @ X / np.float32(n)).astype(np.float64)
            whiten = solver == "whitened-lbfgs" and d <= WHITENING_MAX_FEATURES
            P = _whitening(X, center, l2, pool) if whiten else None
            objective = _Objective(_SoftmaxLoss(X, codes, k, pool), center, l1, l2, P)
            theta = np.zeros((k, d + 1))
            log_prior = np.log(np.bincount(codes, minlength=k) / n)
            theta[:, -1] = log_prior - log_prior.mean()     # the optimum of F for W = 0
            result = _minimize(objective, theta, self.tol, self.max_iter, self.verbose)
        W, b = objective.to_model(result.theta)
        self.coef_, self.intercept_ = W.astype(np.float32), b.astype(np.float32)
        self.n_iter_ = np.array([result.n_iter], dtype=np.int32)
        self.history_ = {"objective": result.objective}
        self.converged_ = result.stop == "converged"
        norm = f"gradient norm {result.grad_norm:.1e}"
        self.fit_message_ = {
            "converged": f"converged after {result.n_iter} iterations ({norm} ≤ tol={self.tol:g})",
            "max_iter": f"stopped at max_iter={self.max_iter} with {norm} > tol={self.tol:g}; "
                        "raise --max-iter or --tol",
            "line_search": f"stopped after {result.n_iter} iterations at the limit of float32 precision "
                           f"({norm} > tol={self.tol:g}); raise --tol",
        }[result.stop]

    def _fit_sklearn(self, X: np.ndarray, codes: np.ndarray, solver: str) -> None:
        k = len(self.classes_)
        C, l1_ratio = _sklearn_settings(self.penalty, self.C, self.l1_ratio, k)
        estimator = SklearnLogisticRegression(C=C, l1_ratio=l1_ratio, solver=solver, tol=self.tol,
                                              max_iter=self.max_iter, random_state=self.random_state,
                                              verbose=int(self.verbose))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            estimator.fit(X, codes)
        for w in caught:
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        coef, intercept = estimator.coef_, estimator.intercept_
        if k == 2:
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        self.coef_, self.intercept_ = coef.astype(np.float32), intercept.astype(np.float32)
        self.n_iter_ = np.asarray(estimator.n_iter_, dtype=np.int32).reshape(1)
        self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        self.history_ = {"objective": [self._objective_value(X, codes)]}
        n_iter = int(self.n_iter_[0])
        self.fit_message_ = (
            f"scikit-learn {solver} converged after {n_iter} iterations (tol={self.tol:g})" if self.converged_
            else f"scikit-learn {solver} stopped after {n_iter} iterations without reaching tol={self.tol:g}; "
                 "raise --max-iter or --tol")

    # -- using a fitted model -------------------------------------------------

    def _model_input(self, X: np.ndarray) -> np.ndarray:
        """X as the coefficients see it: float32, standardised when standardize=True."""
        if not self.standardize:
            return X
        return (X - self.mean_.astype(np.float32)) / self.scale_.astype(np.float32)

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float32, order="C", reset=False)
        return self._model_input(X) @ self.coef_.T + self.intercept_

    def decision_function(self, X) -> np.ndarray:
        """N × n_classes logits; for two classes the margin z₁ − z₀ (scikit-learn's convention)."""
        Z = self._logits(X)
        return Z[:, 1] - Z[:, 0] if len(self.classes_) == 2 else Z

    def predict_proba(self, X) -> np.ndarray:
        return _softmax_rows(self._logits(X))

    def predict(self, X) -> np.ndarray:
        labels = np.argmax(self._logits(X), axis=1)
        return self.classes_[labels]

    def explain(self, X) -> np.ndarray:
        """Per-class, per-pixel contributions w_k ⊙ x, N × n_classes × n_features (input after standardisation)."""
        check_is_fitted(self, "coef_")
        X = self._model_input(validate_data(self, X, dtype=np.float32, order="C", reset=False))
        return X[:, None, :] * self.coef_[None, :, :]

    def objective(self, X, y) -> float:
        """F(coef_, intercept_) on (X, y): the quantity the solvers minimise, on the scale of ``history_``."""
        check_is_fitted(self, "coef_")
        X = self._model_input(validate_data(self, X, dtype=np.float32, order="C", reset=False))
        return self._objective_value(X, np.searchsorted(self.classes_, y))

    def _objective_value(self, X: np.ndarray, codes: np.ndarray) -> float:
        n = len(X)
        l1, l2 = self._penalty_strengths(n)
        W = self.coef_.astype(np.float64)
        with ThreadPoolExecutor(1) as pool:
            total, _, _ = _SoftmaxLoss(X, codes, len(self.classes_), pool)(W, self.intercept_)
        return total / n + l1 * float(np.abs(W).sum()) + 0.5 * l2 * float(np.vdot(W, W))

    def weight_images(self) -> np.ndarray:
        return self.coef_

    # -- model files --------------------------------------------------------------

    def get_arrays(self) -> dict[str, np.ndarray]:
        arrays = super().get_arrays()
        if self.standardize:
            arrays.update(mean_=self.mean_, scale_=self.scale_)
        return arrays

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> LogisticRegression:
        super().set_arrays(arrays)
        if self.standardize:
            if "mean_" not in arrays or "scale_" not in arrays:
                raise ValueError("model file lacks arrays: mean_, scale_ (standardize=True)")
            self.mean_, self.scale_ = arrays["mean_"], arrays["scale_"]
        k = len(self.classes_)
        if self.coef_.ndim != 2 or len(self.coef_) != k or self.intercept_.shape != (k,):
            raise ValueError(f"coef_ {self.coef_.shape} and intercept_ {self.intercept_.shape} "
                             f"do not fit {k} classes")
        self.n_features_in_ = self.coef_.shape[1]
        return self
