"""Multinomial logistic regression with our own float32 quasi-Newton solvers.

The objective — scikit-learn's, on the mean-loss scale — and the softmax loss
are in ``_loss``; the solvers (whitened L-BFGS, OWL-QN) and their stopping
rule in ``_solvers``; this module is the estimator: its parameters, the choice
of solver, scikit-learn's solvers on the same objective, and what a fitted
model offers. The split follows scikit-learn's ``linear_model`` (``_linear_loss``
for the loss, ``_glm`` for the solvers).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real

import numpy as np
from threadpoolctl import threadpool_limits

from ...callbacks import started
from ...errors import ParameterError
from .._fitting import convergence_warnings, reporter, why_not_converged
from ..base import MnistlabModel
from ..params import SEED_OR_NONE, Interval, StrOptions
from ..validation import check_features, check_fitted, check_labels, class_codes, fit_features, set_learned
from ._loss import (
    Objective,
    SoftmaxLoss,
    l1_share,
    objective_value,
    penalty_strengths,
    pixels_of,
    softmax_rows,
)
from ._solvers import WHITENING_MAX_FEATURES, blas_threads, minimize, penalty_damps, pixel_covariance, whitening

PENALTIES = ("none", "l2", "l1", "elasticnet")
OUR_SOLVERS = ("auto", "whitened-lbfgs", "owlqn")
SKLEARN_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga", "liblinear")
SMOOTH = ("none", "l2")
# The penalties each solver handles; scikit-learn's own refuse the others.
SOLVER_PENALTIES = {"auto": PENALTIES, "owlqn": PENALTIES, "saga": PENALTIES, "liblinear": ("l2", "l1"),
                    **{solver: SMOOTH for solver in ("whitened-lbfgs", "lbfgs", "newton-cg", "newton-cholesky",
                                                     "sag")}}


def _sklearn_settings(penalty: str, C: float, l1_ratio: float, n_classes: int) -> tuple[float, float]:
    """(C, l1_ratio) for scikit-learn that minimise our objective.

    With two classes scikit-learn fits one binomial vector β instead of two
    softmax rows; the softmax optimum is (−β/2, β/2), and matching the
    penalties of the two forms gives C' = 2C/(1 + ρ), ρ' = 2ρ/(1 + ρ).
    """
    if penalty == "none":
        return np.inf, 0.0
    rho = l1_share(penalty, l1_ratio)
    if n_classes == 2:
        return 2 * C / (1 + rho), 2 * rho / (1 + rho)
    return C, rho


def _standardized(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """X (float32) less the features' means, over their scales."""
    return (X - mean.astype(np.float32)) / scale.astype(np.float32)


class LogisticRegression(MnistlabModel):
    """Multinomial (softmax) logistic regression.

    Always multinomial: ``coef_`` is n_classes × n_features, also for two
    classes (then the rows are opposite at the L2 optimum), and
    ``decision_function`` follows scikit-learn: N × n_classes logits, or for
    two classes the 1-D margin z₁ − z₀.

    Parameters
    ----------
    penalty : {"l2", "none", "l1", "elasticnet"}, default="l2"
        The penalty R(W) added to the mean cross-entropy; the intercept is never
        penalised. The objective is written out in ``_loss``.
    C : float > 0, default=0.1
        Inverse regularisation strength, with scikit-learn's meaning: the
        penalty is R(W)/(C·n). 0.1 reaches ~0.846 test accuracy on Fashion-MNIST.
    l1_ratio : float in [0, 1], default=0.5
        The L1 share ρ of the elastic-net penalty (used only with penalty="elasticnet").
    solver : str, default="auto"
        Which solver minimises the objective. Ours: ``"auto"``
        (``"whitened-lbfgs"`` for l2, but L-BFGS on the weights as ``"owlqn"`` runs it
        where the penalty is too weak to damp the whitening — none, C=inf or next to it:
        fewer images than weights are fitted perfectly by many weights, and the
        whitened path ends on ones that lean on rarely lit pixels; ``"owlqn"`` for
        l1/elasticnet),
        ``"whitened-lbfgs"`` (none/l2 only), ``"owlqn"`` (any penalty). A name
        equal to one of scikit-learn's — ``"lbfgs"``, ``"newton-cg"``,
        ``"newton-cholesky"``, ``"sag"`` (none/l2), ``"saga"`` (any),
        ``"liblinear"`` (l1/l2, two classes) — runs scikit-learn's solver on the
        same objective and copies its result (``tol`` and ``max_iter`` then mean
        what they mean there; liblinear also penalises the intercept).
    tol : float > 0, default=1e-4
        Stop once the gradient's largest entry is at most tol (our solvers; see
        ``_solvers``). 1e-4, scikit-learn's default, is reached in ~80
        iterations on Fashion-MNIST at C=0.1.
    max_iter : int ≥ 0, default=500
        The most solver iterations to run.
    standardize : bool, default=False
        Centre and scale each pixel with the training mean and standard
        deviation inside the estimator (``mean_``, ``scale_``).
    random_state : int or None, default=None
        Seed for scikit-learn's sag, saga and liblinear; our solvers are deterministic.

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
    _parameter_constraints = {
        "penalty": [StrOptions(set(PENALTIES))],
        "C": [Interval(Real, 0, None, closed="right")],  # up to and with inf: no penalty
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "solver": [StrOptions(set(OUR_SOLVERS + SKLEARN_SOLVERS))],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 0, 2**31 - 1, closed="both")],  # scikit-learn's solvers count in a C int
        "standardize": ["boolean"],
        "random_state": SEED_OR_NONE,
    }
    _used_only_when = {"C": {"penalty": frozenset({"l2", "l1", "elasticnet"})},
                       "l1_ratio": {"penalty": frozenset({"elasticnet"})}}

    def __init__(self, penalty="l2", C=0.1, l1_ratio=0.5, solver="auto", tol=1e-4, max_iter=500,
                 standardize=False, random_state=None):
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.standardize = standardize
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------

    def _check_rules(self) -> None:
        """That the solver handles the penalty."""
        handled = SOLVER_PENALTIES[self.solver]
        if self.penalty not in handled:
            raise ParameterError("solver", f"{self.solver!r} handles penalty {' or '.join(map(repr, handled))}, "
                                           f"not {self.penalty!r}; 'auto', 'owlqn' and 'saga' handle every penalty")

    def _resolved_solver(self) -> str:
        if self.solver == "auto":
            # whitened unless the penalty is too weak to damp the whitening (_fit_ours: penalty_damps)
            return "whitened-lbfgs" if self.penalty in SMOOTH else "owlqn"
        return self.solver

    def fit(self, X, y, progress=None):
        self.validate_params()
        progress = reporter(progress)
        solver = self._resolved_solver()
        X, features = fit_features(self, X)
        y = check_labels(self, y, len(X))
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ParameterError(None, f"needs samples of at least 2 classes, but the data contains only one "
                                       f"class: {classes[0]!r}")
        if solver == "liblinear" and len(classes) > 2:
            raise ParameterError("solver", f"'liblinear' fits two classes only, and the data has "
                                           f"{len(classes)}; 'auto' and 'saga' fit any number")
        # every learned attribute is set at the end: a fit that fails leaves the model it had whole
        learned = {**features, "classes_": classes}
        if self.standardize:
            std = X.std(axis=0, dtype=np.float64)
            learned |= {"mean_": X.mean(axis=0, dtype=np.float64),
                        "scale_": np.where(std < 10 * np.finfo(np.float32).eps, 1.0, std)}
            X = _standardized(X, learned["mean_"], learned["scale_"])
        with started(progress, self.max_iter, "iteration"):
            fit = self._fit_sklearn if solver in SKLEARN_SOLVERS else self._fit_ours
            learned |= fit(X, codes, len(classes), solver, progress)
        set_learned(self, learned)
        return self

    def _penalty_strengths(self, n: int) -> tuple[float, float]:
        """(λ₁, λ₂) on the mean-loss scale."""
        return penalty_strengths(self.penalty, self.C, self.l1_ratio, n)

    def _fit_ours(self, X: np.ndarray, codes: np.ndarray, k: int, solver: str, progress) -> dict:
        n, d = X.shape
        l1, l2 = self._penalty_strengths(n)
        workers = blas_threads()  # read before the limit below, which would make it 1
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            center = (np.ones(n, dtype=np.float32) @ X / np.float32(n)).astype(np.float64)
            P = None
            if solver == "whitened-lbfgs" and d <= WHITENING_MAX_FEATURES:
                cov = pixel_covariance(X, center, pool)
                if self.solver != "auto" or penalty_damps(cov, l2):  # else L-BFGS on W, as "owlqn" runs it
                    P = whitening(cov, l2)
            loss = SoftmaxLoss(X, codes, k, pool, pixels=pixels_of(X, pool))
            objective = Objective(loss, center, l1, l2, P)
            theta = np.zeros((k, d + 1))
            log_prior = np.log(np.bincount(codes, minlength=k) / n)
            theta[:, -1] = log_prior - log_prior.mean()     # the optimum of F for W = 0
            result = minimize(objective, theta, self.tol, self.max_iter, progress)
        W, b = objective.to_model(result.theta)
        norm = f"gradient norm {result.grad_norm:.1e}"
        return {
            "coef_": W.astype(np.float32), "intercept_": b.astype(np.float32),
            "n_iter_": np.array([result.n_iter], dtype=np.int32),
            "history_": {"objective": result.objective},
            "converged_": result.stop == "converged",
            "fit_message_": {
                "converged": f"converged after {result.n_iter} iterations ({norm} ≤ tol={self.tol:g})",
                "max_iter": f"stopped at max_iter={self.max_iter} with {norm} > tol={self.tol:g}; "
                            "raise max_iter or tol",
                "line_search": f"stopped after {result.n_iter} iterations at the limit of float32 precision "
                               f"({norm} > tol={self.tol:g}); raise tol",
            }[result.stop],
        }

    def _fit_sklearn(self, X: np.ndarray, codes: np.ndarray, k: int, solver: str, progress) -> dict:
        """scikit-learn's solver on our objective; it reports no iterations, so progress jumps at the end."""
        from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression

        C, l1_ratio = _sklearn_settings(self.penalty, self.C, self.l1_ratio, k)
        estimator = SklearnLogisticRegression(C=C, l1_ratio=l1_ratio, solver=solver, tol=self.tol,
                                              max_iter=self.max_iter, random_state=self.random_state)
        with convergence_warnings() as not_converged:
            estimator.fit(X, codes)
        coef, intercept = estimator.coef_, estimator.intercept_
        if k == 2:
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        coef, intercept = coef.astype(np.float32), intercept.astype(np.float32)
        value = objective_value(X, codes, k, coef, intercept, *self._penalty_strengths(len(X)))
        n_iter = int(np.max(estimator.n_iter_))
        progress.advance(n_iter, f"objective {value:.8f}")
        reason = why_not_converged(not_converged, self.max_iter)
        return {
            "coef_": coef, "intercept_": intercept, "n_iter_": np.array([n_iter], dtype=np.int32),
            "converged_": reason is None, "history_": {"objective": [value]},
            "fit_message_": (
                f"scikit-learn {solver} converged after {n_iter} iterations (tol={self.tol:g})" if reason is None
                else f"scikit-learn {solver} stopped after {n_iter} iterations without reaching tol={self.tol:g}; "
                     "raise max_iter or tol" if not_converged
                else f"scikit-learn {solver} did not converge: {reason}"),
        }

    # -- using a fitted model -------------------------------------------------

    def _model_input(self, X: np.ndarray) -> np.ndarray:
        """X as the coefficients see it: float32, standardised when standardize=True."""
        return _standardized(X, self.mean_, self.scale_) if self.standardize else X

    def _logits(self, X) -> np.ndarray:
        check_fitted(self, "coef_")
        X = check_features(self, X)
        return self._model_input(X) @ self.coef_.T + self.intercept_

    def decision_function(self, X) -> np.ndarray:
        """N × n_classes logits; for two classes the margin z₁ − z₀ (scikit-learn's convention)."""
        Z = self._logits(X)
        return Z[:, 1] - Z[:, 0] if len(self.classes_) == 2 else Z

    def predict_proba(self, X) -> np.ndarray:
        return softmax_rows(self._logits(X))

    def predict(self, X) -> np.ndarray:
        labels = np.argmax(self._logits(X), axis=1)
        return self.classes_[labels]

    def explain(self, X, classes=None) -> np.ndarray:
        """Per-class, per-pixel contributions w_k ⊙ x (input after standardisation), N × classes × n_features,
        for every class or the ``classes`` asked for (indices into ``classes_``); they add up to the class
        scores less the intercepts. Standardised, a black pixel has a part too (``explanation_method``)."""
        check_fitted(self, "coef_")
        X = self._model_input(check_features(self, X))
        return X[:, None, :] * self.coef_[self._class_indices(classes)][None, :, :]

    @property
    def explanation_method(self) -> str:
        """Gradient × input; with ``standardize``, the weights times the standardised pixels are the gradient
        times each pixel's difference from the training images' mean."""
        return "gradient × (input − mean image)" if self.standardize else super().explanation_method

    def objective(self, X, y) -> float:
        """F(coef_, intercept_) on (X, y): the quantity the solvers minimise, on the scale of ``history_``."""
        check_fitted(self, "coef_")
        X = self._model_input(check_features(self, X))
        return self._objective_value(X, class_codes(self, y, len(X)))

    def _objective_value(self, X: np.ndarray, codes: np.ndarray) -> float:
        return objective_value(X, codes, len(self.classes_), self.coef_, self.intercept_,
                               *self._penalty_strengths(len(X)))

    def weight_images(self) -> np.ndarray:
        check_fitted(self, "coef_")
        return self.coef_

    def onnx_graph(self):
        """Standardisation (when standardize=True), the logits and softmax, as ``_logits`` computes them."""
        from ..onnx_graphs import dense_graph

        check_fitted(self, "coef_")
        standardisation = dict(mean=self.mean_, scale=self.scale_) if self.standardize else {}
        return dense_graph([(self.coef_.T, self.intercept_)], **standardisation)

    # -- model files --------------------------------------------------------------

    def n_parameters(self) -> int:
        """The weights and intercepts (not the standardisation's means and scales)."""
        check_fitted(self, "coef_")
        return int(self.coef_.size + self.intercept_.size)

    def get_arrays(self) -> dict[str, np.ndarray]:
        arrays = super().get_arrays()
        if self.standardize:
            arrays.update(mean_=self.mean_, scale_=self.scale_)
        return arrays

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> LogisticRegression:
        super().set_arrays(arrays)
        if self.standardize:
            self._require_arrays(arrays, ("mean_", "scale_"), "standardize=True")
            self.mean_, self.scale_ = arrays["mean_"], arrays["scale_"]
        k = len(self.classes_)
        if self.coef_.ndim != 2 or len(self.coef_) != k or self.intercept_.shape != (k,):
            raise ValueError(f"coef_ {self.coef_.shape} and intercept_ {self.intercept_.shape} "
                             f"do not fit {k} classes")
        self.n_features_in_ = self.coef_.shape[1]
        return self
