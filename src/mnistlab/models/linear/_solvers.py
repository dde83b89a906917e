"""Our float32 quasi-Newton solvers for the objective in ``_loss``: L-BFGS, OWL-QN, whitening.

Both are limited-memory quasi-Newton methods (L-BFGS two-loop recursion,
backtracking Armijo line search) on ``_loss.Objective``:

* ``"whitened-lbfgs"`` (penalty none/l2) runs L-BFGS on V = W·L, where
  L Lᵀ = Σ + εI is the Cholesky factor of the pixel covariance (estimated on
  at most 10,000 rows; ε = λ₂/0.01, the penalty's curvature relative to a
  typical softmax curvature). Neighbouring pixels are strongly correlated,
  which makes the problem ill-conditioned for L-BFGS; whitened, it needs
  ~2.5x fewer iterations than on the centred pixels (Fashion-MNIST, C=1: ~175
  to come within 0.05 % of the optimum, where scikit-learn's lbfgs takes
  ~1,400 to converge). Only the coordinates change, not the objective.
* ``"owlqn"`` (any penalty) is orthant-wise L-BFGS (Andrew & Gao, 2007): it
  steps along the pseudo-gradient of F, keeps each step inside one orthant and
  sets coefficients that would cross zero to exactly zero, so L1 solutions are
  truly sparse. Whitening would mix coordinates and break that, so it works on
  W directly. Without an L1 part it is L-BFGS on W, from zero: without any
  penalty, where fewer images than weights are fitted perfectly by many
  weights, its path ends on ones that predict new images as scikit-learn's
  lbfgs does, and the whitened path does not (``LogisticRegression``'s
  ``solver="auto"``).

Stopping rule (ours): the largest absolute entry of the gradient of F with
respect to (W, b') — for L1, of the minimum-norm subgradient — is at most
``tol``. scikit-learn's lbfgs applies the same test, on the same scale, to the
gradient with respect to (W, b), so ``tol`` means much the same for both.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_info

from ..._system import usable_cores
from ...callbacks import FitProgress, ThinnedLog
from ._loss import CHUNK_ROWS, Objective

WHITENING_ROWS = 10_000      # rows used to estimate the pixel covariance
WHITENING_MAX_FEATURES = 4096  # beyond this the d×d factorisation costs more than it saves
TYPICAL_CURVATURE = 0.01     # softmax curvature the penalty is compared with (tuned on Fashion-MNIST)
# The covariance's float32 products leave its eigenvalues off by up to ~1e-8 of its trace (Fashion-MNIST,
# 50–500 rows): with fewer rows than pixels, some of its zeros come out negative. The damping is kept
# well above that, so that the factorisation succeeds without a penalty.
DAMPING_FLOOR = 1e-6         # times the covariance's trace
MEMORY = 20                  # L-BFGS correction pairs
ARMIJO = 1e-4                # sufficient-decrease constant of the line search
MAX_BACKTRACKS = 20


def blas_threads() -> int:
    """How many threads BLAS would use now (honours OPENBLAS_NUM_THREADS and the like)."""
    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return max(counts) if counts else usable_cores()


def pixel_covariance(X: np.ndarray, center: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray:
    """Σ, the covariance of (a sample of) the rows of X, in float64."""
    step = -(-len(X) // WHITENING_ROWS)
    sample = X[::step] - center.astype(np.float32)
    chunks = [sample[a:a + CHUNK_ROWS] for a in range(0, len(sample), CHUNK_ROWS)]
    parts = [pool.submit(lambda rows: rows.T @ rows, rows) for rows in chunks]
    return sum(part.result() for part in parts).astype(np.float64) / len(sample)


def penalty_damps(cov: np.ndarray, l2: float) -> bool:
    """Whether the L2 penalty, rather than the floor, sets the whitening's damping ε. Where it does not (no
    penalty, or one so weak it is next to none) and fewer images than weights are fitted perfectly, the
    whitened path ends on weights that lean on rarely lit pixels (docs/design/logreg.md)."""
    return l2 / TYPICAL_CURVATURE > DAMPING_FLOOR * float(np.trace(cov))


def whitening(cov: np.ndarray, l2: float) -> np.ndarray:
    """P = L⁻ᵀ with L Lᵀ = Σ + εI, Σ = ``cov`` (``pixel_covariance``)."""
    # ε damps directions the penalty already controls; the floor keeps L invertible without one
    epsilon = max(l2 / TYPICAL_CURVATURE, DAMPING_FLOOR * float(np.trace(cov)))
    return lower_inverse(np.linalg.cholesky(cov + epsilon * np.eye(len(cov)))).T


def lower_inverse(L: np.ndarray) -> np.ndarray:
    """L⁻¹ of a lower-triangular L, by halves: [[A, 0], [C, B]]⁻¹ = [[A⁻¹, 0], [−B⁻¹CA⁻¹, B⁻¹]].

    NumPy has no triangular inverse (its ``inv`` factorises L again, 100 ms at 784 × 784 on one core);
    this is matrix products, 26 ms, and spares importing scipy.linalg (0.2 s) for it.
    """
    n = len(L)
    if n <= 64:
        return np.linalg.inv(L)
    h = n // 2
    inverse = np.zeros_like(L)
    inverse[:h, :h], inverse[h:, h:] = lower_inverse(L[:h, :h]), lower_inverse(L[h:, h:])
    inverse[h:, :h] = -inverse[h:, h:] @ (L[h:, :h] @ inverse[:h, :h])
    return inverse


@dataclass
class Result:
    theta: np.ndarray
    n_iter: int
    grad_norm: float
    stop: str                      # "converged", "max_iter" or "line_search"
    objective: list[float] = field(default_factory=list)


def two_loop(grad: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
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


def minimize(objective: Objective, theta: np.ndarray, tol: float, max_iter: int, progress: FitProgress) -> Result:
    """L-BFGS, orthant-wise (OWL-QN) when the objective has an L1 part.

    Each iteration advances ``progress``; iterations 0, 1, 2, 5, 10, 20, 50, … and the last are logged.
    """
    f, grad, g_model = objective.smooth(theta)
    F = f + objective.l1_value(theta)
    result = Result(theta, 0, 0.0, "max_iter", [F])
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
    orthant_wise = objective.l1 > 0
    log = ThinnedLog(progress, max_iter)
    for iteration in range(max_iter + 1):
        pg = objective.pseudo_gradient(theta, grad)
        result.grad_norm = float(np.abs(pg if orthant_wise else g_model).max())
        state = f"objective {F:.8f}  gradient norm {result.grad_norm:.2e}"
        progress.advance(iteration, state)
        log.add(iteration, f"iteration {iteration:4d}  {state}")
        if result.grad_norm <= tol:
            result.stop = "converged"
            break
        if iteration == max_iter:
            break
        direction = -two_loop(pg, pairs)
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
    log.flush()
    result.theta = theta
    return result
