"""The objective of multinomial logistic regression, and the softmax loss it is built from.

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

All the work is two float32 matrix products per evaluation, X·Wᵀ and
(P − Y)ᵀ·X, done block by block so each block of X is read from memory once,
by one worker thread per BLAS thread, each calling single-threaded BLAS
(multithreaded OpenBLAS spins while other jobs hold the cores, and was many
times slower on a shared machine). Results do not depend on the number of
threads. Reading X from memory is much of that work: when X is 8-bit pixels
scaled to [0, 1] (every value a whole number of 255ths, as ``flatten_scale``
gives them), it is kept as those bytes, a quarter of the memory, and each
block is turned back into float32 in the cache (the 1/255 goes into W). The
solvers work on the intercept of the centred data, b' = b + W·x̄, an exact
change of variables that decouples it from W (``Objective``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Rows of X per matrix product: a block stays in cache for both. Each block also has a fixed cost (two
# dozen short numpy calls, two BLAS calls): with 1,024 rows instead of 512, an evaluation on the AVX2
# EPYC took 53.7 instead of 57.5 ms on one worker, 29.0 instead of 32.5 on two (docs/design/logreg.md).
BLOCK_ROWS = 1024
CHUNK_ROWS = 4 * BLOCK_ROWS  # rows per task handed to a worker thread (whole blocks)
# (P − Y)ᵀ·X is computed with P − Y padded by zero columns to a multiple of this many classes:
# OpenBLAS's kernels take the narrow side that many columns at a time, and 10 classes padded to 12
# made a default fit's iteration ~10 % faster (AVX2 EPYC: 44 against 49 ms; padded to 16: 46)
CLASS_MULTIPLE = 4
PIXEL_LEVELS = 255           # 8-bit pixels scaled to [0, 1] are whole numbers of 255ths


def l1_share(penalty: str, l1_ratio: float) -> float:
    """ρ, the L1 share of the penalty R: 0 for l2 (and none), 1 for l1, ``l1_ratio`` for elasticnet."""
    return {"none": 0.0, "l2": 0.0, "l1": 1.0, "elasticnet": float(l1_ratio)}[penalty]


def penalty_strengths(penalty: str, C: float, l1_ratio: float, n: int) -> tuple[float, float]:
    """(λ₁, λ₂) of R/(C·n) on the mean-loss scale: ρ/(C·n) and (1 − ρ)/(C·n)."""
    if penalty == "none":
        return 0.0, 0.0
    rho = l1_share(penalty, l1_ratio)
    return rho / (C * n), (1 - rho) / (C * n)


def row_max(Z: np.ndarray) -> np.ndarray:
    """The largest entry of each row of Z (n × few columns), as a column: one vectorised maximum
    per column (numpy's max along a short last axis loops per row: 4× slower at 512 × 10)."""
    largest = Z[:, 0].copy()
    for column in range(1, Z.shape[1]):
        np.maximum(largest, Z[:, column], out=largest)
    return largest[:, None]


def softmax_rows(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float32 logits, in place."""
    Z -= row_max(Z)
    np.exp(Z, out=Z)
    Z /= Z.sum(axis=1, keepdims=True)
    return Z


def pixels_of(X: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray | None:
    """The 8-bit pixels p (uint8) that X was scaled from, X == p / 255 exactly in float32; None where a
    value is not a whole number of 255ths in [0, 1]. One pass over X in cache-sized blocks, chunks on
    the pool's workers (the first alone: data that is not pixels mostly shows it there)."""
    if X.dtype != np.float32 or X.ndim != 2:
        return None
    pixels = np.empty(X.shape, dtype=np.uint8)
    levels = np.float32(PIXEL_LEVELS)

    def encode(start: int, stop: int) -> bool:
        buffer = np.empty((BLOCK_ROWS, X.shape[1]), dtype=np.float32)
        exact = True
        # Whatever the cast to uint8 makes of a value outside [0, 255] or of NaN, the round trip
        # back to X then fails: only exact pixels pass.
        with np.errstate(invalid="ignore"):
            for a in range(start, stop, BLOCK_ROWS):
                z = min(a + BLOCK_ROWS, stop)
                block = buffer[:z - a]
                np.rint(np.multiply(X[a:z], levels, out=block), out=block)
                pixels[a:z] = block
                exact &= np.array_equal(np.divide(pixels[a:z], levels, out=block, dtype=np.float32), X[a:z])
        return exact

    if not encode(0, min(CHUNK_ROWS, len(X))):
        return None
    encoded = [pool.submit(encode, a, min(a + CHUNK_ROWS, len(X))) for a in range(CHUNK_ROWS, len(X), CHUNK_ROWS)]
    return pixels if all(part.result() for part in encoded) else None


class SoftmaxLoss:
    """Σ_i cross-entropy of a linear softmax model, with (P − Y)ᵀX and (P − Y)ᵀ1.

    Computed in X's precision: float32 in the estimator, float64 for exact
    checks; from ``pixels`` (``pixels_of(X)``) where given. The rows
    are cut into fixed chunks that idle workers take in turn (so one
    descheduled thread does not hold up the others); each chunk is walked in
    blocks, and the partial sums are added in chunk order, so the result
    depends neither on scheduling nor on the number of workers.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, n_classes: int, pool: ThreadPoolExecutor,
                 pixels: np.ndarray | None = None):
        self.X, self.n_classes, self.pool, self.pixels = X, n_classes, pool, pixels
        self.blocks = threading.local()  # each worker's float32 block, where the pixels are converted
        # sums along the short rows and down the columns as products with ones: numpy's sums loop per row
        self.ones_classes, self.ones_rows = np.ones(n_classes, X.dtype), np.ones(BLOCK_ROWS, X.dtype)
        self.chunks = [(a, min(a + CHUNK_ROWS, len(X))) for a in range(0, len(X), CHUNK_ROWS)]
        # where each row's true-class logit sits in its flattened block of logits
        self.true_class = (np.arange(len(X)) % BLOCK_ROWS) * n_classes + y
        self.padded_classes = -(-n_classes // CLASS_MULTIPLE) * CLASS_MULTIPLE

    def _block(self, a: int, z: int) -> np.ndarray:
        """Rows a:z of X, or of the pixels (0 … 255) as float32."""
        if self.pixels is None:
            return self.X[a:z]
        if not hasattr(self.blocks, "buffer"):
            self.blocks.buffer = np.empty((BLOCK_ROWS, self.X.shape[1]), dtype=np.float32)
        block = self.blocks.buffer[:z - a]
        block[...] = self.pixels[a:z]
        return block

    def _chunk(self, W: np.ndarray, b: np.ndarray, start: int, stop: int):
        """The three sums over rows start:stop (with the pixels, RtX is 255 times X's)."""
        total = 0.0
        RtX = np.zeros((self.padded_classes, W.shape[1]), dtype=self.X.dtype)
        residual = np.zeros((BLOCK_ROWS, self.padded_classes), dtype=self.X.dtype)  # extra columns stay 0
        Rt1 = np.zeros(self.n_classes)
        for a in range(start, stop, BLOCK_ROWS):
            Xb, true_class = self._block(a, min(a + BLOCK_ROWS, stop)), self.true_class[a:min(a + BLOCK_ROWS, stop)]
            Z = Xb @ W.T
            Z += b
            Z -= row_max(Z)
            flat = Z.reshape(-1)
            true_logits = flat[true_class].sum(dtype=np.float64)
            np.exp(Z, out=Z)
            sums = Z @ self.ones_classes
            total += float(np.log(sums).sum(dtype=np.float64) - true_logits)
            Z /= sums[:, None]          # Z is now P,
            flat[true_class] -= 1       # and now the residual P − Y
            R = residual[:len(Z)]
            R[:, :self.n_classes] = Z
            RtX += R.T @ Xb
            Rt1 += self.ones_rows[:len(Z)] @ Z
        return total, RtX[:self.n_classes].astype(np.float64), Rt1

    def __call__(self, W: np.ndarray, b: np.ndarray):
        unit = 1.0 if self.pixels is None else 1.0 / PIXEL_LEVELS  # X = unit · blocks
        W_x, b_x = (W * unit).astype(self.X.dtype), b.astype(self.X.dtype)
        parts = [f.result() for f in [self.pool.submit(self._chunk, W_x, b_x, a, z) for a, z in self.chunks]]
        return (sum(p[0] for p in parts), unit * sum(p[1] for p in parts), sum(p[2] for p in parts))


class Objective:
    """F in the solvers' coordinates θ = [V | b'] (k × (d + 1), float64).

    W = V·Pᵀ with P = L⁻ᵀ when whitened (P is None otherwise, and V = W);
    b = b' − W·x̄. The gradient with respect to V is then (∂F/∂W)·P.
    """

    def __init__(self, loss: SoftmaxLoss, center: np.ndarray, l1: float, l2: float, P: np.ndarray | None):
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


def objective_value(X: np.ndarray, codes: np.ndarray, n_classes: int, W: np.ndarray, b: np.ndarray,
                    l1: float, l2: float) -> float:
    """F(W, b) on (X, codes), on one thread: for a fitted model, not inside a solver."""
    W = W.astype(np.float64)
    with ThreadPoolExecutor(1) as pool:
        total, _, _ = SoftmaxLoss(X, codes, n_classes, pool)(W, b)
    return total / len(X) + l1 * float(np.abs(W).sum()) + 0.5 * l2 * float(np.vdot(W, W))
