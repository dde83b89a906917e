"""Any scikit-learn classifier as a family: ``sklearn:SVC``, ``sklearn:RandomForestClassifier``, …

``family_class("SVC")`` makes a family whose hyperparameters are exactly the
classifier's own: the same ``__init__`` signature, defaults and
``_parameter_constraints`` (so the command line types ``--C 10 --kernel rbf``
from them and a bad value fails before any work), plus ``standardize``, which
puts scikit-learn's StandardScaler before the classifier (as the tutorials'
pipelines do). The fitted estimator is ``estimator_``.

Model files. The fitted estimator is written with skops (``skops.io``), whose
format holds data but no code; its bytes are one uint8 array of ``model.npz``,
so these families' files are bounded and checked like every other's. Loading
trusts skops's default types (scikit-learn's estimators, NumPy arrays) and the
explicit list ``TRUSTED_TYPES`` — the internal types that scikit-learn's trees,
boosting and MLP keep — and nothing the file itself asks for: a file holding
any other type is refused, never loaded.

Probabilities. A classifier without ``predict_proba`` (SVC without
``probability=True``, RidgeClassifier, Perceptron, …) gets the softmax of its
``decision_function``: scores that rank classes but are not calibrated; one
with neither gives the one-hot of its prediction.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import io
import math
import tokenize
import warnings
import zipfile
import zlib
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils import all_estimators
from sklearn.utils.validation import check_is_fitted

from .._npz import npy_header
from ..callbacks import started
from ..errors import ExportError, ParameterError, one_line
from . import SKLEARN_PREFIX
from ._fitting import convergence_warnings, refusals_of, reporter, why_not_converged
from .base import N_FEATURES, MnistlabModel
from .params import MAX_THREADS, Interval
from .validation import check_features, check_labels, fit_features, set_learned


# Not in skops's default trusted set, but plain data holders of scikit-learn's own estimators.
TRUSTED_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)
MAX_STATE_BYTES = 2 * 1024**3  # what a skops file may inflate to (a large forest takes a few hundred MB)


def classifier_names() -> list[str]:
    """scikit-learn's classifiers that work on their own (no required ``estimator`` argument)."""
    return [name for name, cls in all_estimators(type_filter="classifier") if not _required(cls)]


# Classifiers whose signature gives ``estimator`` a default of None that fit refuses (unlike bagging's and
# boosting's, which then use a tree): required in all but name.
NEEDS_AN_ESTIMATOR = {"SelfTrainingClassifier"}


def _required(cls: type) -> list[str]:
    required = [name for name, p in inspect.signature(cls.__init__).parameters.items()
                if name != "self" and p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return ["estimator", *required] if cls.__name__ in NEEDS_AN_ESTIMATOR else required


def _classifier_class(name: str) -> type:
    found = dict(all_estimators(type_filter="classifier")).get(name)
    if found is None:
        raise ParameterError(None, f"scikit-learn has no classifier named {name!r}; "
                                   f"its classifiers: {', '.join(classifier_names())}")
    if required := _required(found):
        raise ParameterError(None, f"sklearn:{name} needs {', '.join(required)} (another estimator) to be "
                                   "built, which the command line cannot give; it is not available as a family")
    return found


class SklearnClassifier(MnistlabModel):
    """Base of the ``sklearn:NAME`` families; ``family_class(NAME)`` makes each one."""

    estimator_class: ClassVar[type]
    learned_arrays = ("classes_", "skops_")

    def _estimator(self):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        params = self.get_params(deep=False)
        standardize = params.pop("standardize")
        fitted = getattr(self, "estimator_", None)
        if bool(params.get("warm_start")) and fitted is not None and hasattr(fitted, "steps") == standardize:
            # scikit-learn's warm start: the fitted classifier, given the new parameters, goes on from where it
            # stopped (a forest keeps its trees and adds more); a new one each fit kept nothing. A copy, so that a
            # fit that fails leaves the model whole (set_learned), as a fit of a new one does.
            fitted = copy.deepcopy(fitted)
            (fitted[-1] if standardize else fitted).set_params(**params)
            return fitted
        estimator = self.estimator_class(**params)
        return make_pipeline(StandardScaler(), estimator) if standardize else estimator

    def _classifier(self):
        """The fitted classifier itself (the last step when standardised)."""
        return self.estimator_[-1] if self.standardize else self.estimator_

    def _check_rules(self) -> None:
        params = self.get_params(deep=False)
        # (scikit-learn 1.9's default probability is the string "deprecated": only True gives probabilities)
        if params.get("decision_function_shape") == "ovo" and params.get("probability") is not True:
            raise ParameterError("decision_function_shape", "'ovo' scores pairs of classes, not each class, so no "
                                 "probabilities follow from it: use 'ovr' (the default), or probability=True")

    def fit(self, X, y, progress=None):
        self.validate_params()
        progress = reporter(progress)
        # the names of a frame's columns too: checked at predict; and the largest value, as every family's: fitted
        # on pixels / 255, as a run's model is, it scored raw 0-255 pixels without a word (SVC on 2,000 MNIST
        # images: 0.097 against 0.934 on 1,000 test images)
        X, features = fit_features(self, X)
        # one label per image, as our other families take: scikit-learn's classifiers also fit a 2-D y (several
        # outputs), after which predict_proba gives a list of arrays, and predict failed inside NumPy
        y = check_labels(self, y, len(X))
        with started(progress, None, "fit"):
            with convergence_warnings() as not_converged, refusals_of(self.family, "fit"):
                estimator = self._estimator().fit(X, y)
            progress.advance(1)  # the one fit done (the bar read "0/? fit" at the end)
        set_learned(self, {**features, "estimator_": estimator, "classes_": estimator.classes_})
        n_iter = getattr(self._classifier(), "n_iter_", None)
        if n_iter is not None:  # the iterative ones: how long they ran, and whether they stopped by their rule
            self.n_iter_ = int(np.max(n_iter))
            reason = why_not_converged(not_converged, self.get_params(deep=False).get("max_iter"))
            self.converged_ = reason is None
            self.fit_message_ = (f"converged after {'at most ' if np.size(n_iter) > 1 else ''}{self.n_iter_} "
                                 "iterations" if self.converged_ else f"did not converge: {reason}")
        return self

    def predict(self, X) -> np.ndarray:
        """The class of the highest probability (``predict_proba``), which a run's numbers and every shell
        use: it can differ from the classifier's own ``predict`` (SVC's one-vs-one vote breaks a tie by the
        first class, and its Platt probabilities need not follow the vote)."""
        # predict_proba first: before a fit, classes_ (read first in one expression) raised an AttributeError
        # where scikit-learn's tools expect predict_proba's NotFittedError
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba(self, X) -> np.ndarray:
        """The classifier's probabilities; a naive Bayes' computed in float64 (``computes_in_float64``)."""
        check_is_fitted(self, "estimator_")
        X = check_features(self, X)
        if computes_in_float64(self._classifier()):
            X = X.astype(np.float64)
        with refusals_of(self.family, "predict"):
            return self._proba(X)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        if hasattr(self.estimator_, "predict_proba"):  # SVC has it only with probability=True
            return self.estimator_.predict_proba(X)
        if hasattr(self.estimator_, "decision_function"):
            scores = np.asarray(self.estimator_.decision_function(X), np.float64)
            if scores.ndim == 1:  # two classes: the second class's score against the first's
                scores = np.stack([np.zeros_like(scores), scores], axis=1)
            scores -= scores.max(axis=1, keepdims=True)
            exp = np.exp(scores)
            return exp / exp.sum(axis=1, keepdims=True)
        return (self.estimator_.predict(X)[:, None] == self.classes_[None, :]).astype(np.float64)

    def probabilities_note(self) -> str | None:
        """What ``predict_proba`` gives where the classifier has no probabilities of its own."""
        check_is_fitted(self, "estimator_")
        name = type(self._classifier()).__name__
        if hasattr(self.estimator_, "predict_proba"):
            return None
        if hasattr(self.estimator_, "decision_function"):
            return (f"{name} gives no probabilities: these are the softmax of its decision scores, which rank "
                    "the classes but have no probabilistic scale, so the log-loss and calibration computed from "
                    "them say little about the model")
        return (f"{name} gives no probabilities nor scores: each image's predicted class has probability 1, so "
                "the log-loss and calibration say little about the model")

    def weight_images(self) -> np.ndarray | None:
        """A linear classifier's ``coef_`` where its rows are the classes' own (one per class, or one for two):
        its scores are the linear functions they define (with ``standardize``, of the standardised pixels, as
        ``logreg``'s). Else None: a linear SVC's rows, for one, weigh pairs of classes (one against one), 45
        for 10 classes, and 3 for 3 classes that would pass for theirs."""
        check_is_fitted(self, "estimator_")
        classifier = self._classifier()
        coef = getattr(classifier, "coef_", None)
        if coef is None or np.ndim(coef) != 2 or np.shape(coef)[1] != N_FEATURES:
            return None
        coef = np.asarray(coef)
        if len(coef) != (1 if len(self.classes_) == 2 else len(self.classes_)) \
                or not hasattr(classifier, "decision_function"):
            return None
        probe = np.random.default_rng(0).standard_normal((2, N_FEATURES))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fitted on a frame's named columns, it notes an array has none
            scores = np.asarray(classifier.decision_function(probe), dtype=float).reshape(len(probe), -1)
        linear = probe @ coef.T + np.asarray(getattr(classifier, "intercept_", 0.0), dtype=float)
        return coef if np.allclose(scores, linear, rtol=1e-4, atol=1e-6) else None

    def onnx_graph(self):
        """skl2onnx's converter of the fitted estimator (its StandardScaler too), where it has one.

        Only a classifier with probabilities of its own: those mnistlab makes from decision scores
        (or predictions) are computed by no converter. A naive Bayes is converted for float64, as
        ``predict_proba`` computes it, between a Cast of the float32 input and one of the probabilities
        to float32 (in float32, an MNIST GaussianNB's graph gave rows summing to 2, and the other naive
        Bayes' graphs were 1e-4 to 8e-4 from the model, so their exports were refused); the others
        for float32, as they compute.
        """
        check_is_fitted(self, "estimator_")
        if not hasattr(self.estimator_, "predict_proba"):
            raise ExportError(f"a {self.family} model cannot be exported to ONNX: it has no probabilities of its "
                              "own (mnistlab's are the softmax of its decision scores), which skl2onnx does not give")
        try:
            from skl2onnx import convert_sklearn
            from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
        except ImportError:
            raise ExportError(f"exporting {self.family} needs skl2onnx: pip install 'mnistlab[onnx]'") from None
        from .onnx_graphs import INPUT, OPSET

        estimator = copy.deepcopy(self.estimator_)
        final = estimator[-1] if self.standardize else estimator
        with contextlib.suppress(AttributeError):  # skl2onnx's label output cannot index uint8 class labels
            final.classes_ = np.asarray(final.classes_, np.int64)
        tensor_type = DoubleTensorType if computes_in_float64(final) else FloatTensorType
        try:
            model = convert_sklearn(estimator, initial_types=[(INPUT, tensor_type([None, N_FEATURES]))],
                                    target_opset={"": OPSET, "ai.onnx.ml": 3}, options={id(final): {"zipmap": False}})
        except Exception as exc:  # noqa: BLE001 - skl2onnx's refusals (no converter, a setting it lacks) share no base
            raise ExportError(f"a {self.family} model cannot be exported to ONNX: skl2onnx says "
                              f"{one_line(exc, 200)}") from None
        return _with_float32_ends(model)

    # -- model files --------------------------------------------------------------------------
    def get_arrays(self) -> dict[str, np.ndarray]:
        import skops.io

        check_is_fitted(self, "estimator_")
        state = skops.io.dumps(self.estimator_, compression=zipfile.ZIP_DEFLATED)
        # said before a run is written: one whose model could never be loaded back would be no use
        if untrusted := [t for t in skops.io.get_untrusted_types(data=state) if t not in TRUSTED_TYPES]:
            raise ParameterError(None, f"a {self.family} model of these parameters holds types mnistlab does not "
                                       f"load from a file, so it cannot be kept: {', '.join(untrusted)}")
        return {"classes_": np.asarray(self.classes_), "skops_": np.frombuffer(state, np.uint8)}

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> SklearnClassifier:
        import skops.io

        self._require_arrays(arrays, ("classes_", "skops_"))
        state = np.asarray(arrays["skops_"], np.uint8).tobytes()
        try:
            with zipfile.ZipFile(io.BytesIO(state)) as archive:  # sizes as declared: reading stops there
                inflated = sum(member.file_size for member in archive.infolist())
                _check_array_sizes(archive)
        except zipfile.BadZipFile as exc:
            raise ValueError(f"the scikit-learn model is not a skops file ({exc})") from None
        if inflated > MAX_STATE_BYTES:
            raise ValueError(f"the scikit-learn model would take {inflated} bytes, over {MAX_STATE_BYTES}")
        try:
            untrusted = [t for t in skops.io.get_untrusted_types(data=state) if t not in TRUSTED_TYPES]
            if untrusted:
                raise ValueError(f"the scikit-learn model holds types mnistlab does not load: {', '.join(untrusted)}")
            estimator = skops.io.loads(state, trusted=list(TRUSTED_TYPES))
        except (TypeError, KeyError, AttributeError, zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"the scikit-learn model cannot be read ({exc})") from None
        final = estimator[-1] if self.standardize and hasattr(estimator, "steps") else estimator
        if type(final) is not self.estimator_class:
            raise ValueError(f"the file holds a {type(final).__name__}, not a {self.estimator_class.__name__}")
        self.estimator_, self.classes_ = estimator, np.asarray(arrays["classes_"])
        self.n_features_in_ = estimator.n_features_in_
        return self


def computes_in_float64(classifier) -> bool:
    """Whether ``classifier`` predicts (and is exported) in float64: a naive Bayes keeps its statistics in its
    input's dtype, and on float32 pixels its log-likelihoods (about -3e9, where float32's step is 128–256)
    normalised to two probabilities of 1 (a GaussianNB on MNIST). The others keep float32: a KNN's 60,000
    training images turned to float64 took 2 GB more, and 2.4× as long, to predict 2,000 images."""
    return type(classifier).__module__.startswith("sklearn.naive_bayes")


def _with_float32_ends(model):
    """skl2onnx's graph behind a Cast of the float32 input ``x`` to its own input's type, and with its
    probabilities cast to float32: the contract of a family's graph. The predicted label, no part of it,
    is left out."""
    from onnx import TensorProto, helper

    from .onnx_graphs import INPUT, OUTPUT

    graph = model.graph
    (converted,) = graph.input
    own = {INPUT: f"{INPUT}_converted", OUTPUT: f"{OUTPUT}_converted"}
    for node in graph.node:
        node.input[:] = [own.get(name, name) for name in node.input]
        node.output[:] = [own.get(name, name) for name in node.output]
    graph.node.insert(0, helper.make_node("Cast", [INPUT], [own[INPUT]], to=converted.type.tensor_type.elem_type))
    graph.node.append(helper.make_node("Cast", [own[OUTPUT]], [OUTPUT], to=TensorProto.FLOAT))
    probabilities = [output for output in graph.output if output.name == OUTPUT]
    for value in (converted, *probabilities):
        value.type.tensor_type.elem_type = TensorProto.FLOAT
    del graph.output[:]
    graph.output.extend(probabilities)
    return model


def _check_array_sizes(archive: zipfile.ZipFile) -> None:
    """Every array of a skops file holds what its header declares: NumPy allocates the declared size
    before reading (a header of 10^12 elements was a MemoryError, blamed on the machine)."""
    for member in archive.infolist():
        if not member.filename.endswith(".npy"):
            continue
        try:
            with archive.open(member) as fp:
                offset, shape, dtype = npy_header(fp)
        except (ValueError, SyntaxError, EOFError, tokenize.TokenError, zlib.error) as exc:
            raise ValueError(f"the scikit-learn model's array {member.filename!r} is unreadable ({one_line(exc)})") \
                from None
        if member.file_size != offset + math.prod(shape) * dtype.itemsize:  # Python ints: no overflow
            raise ValueError(f"the scikit-learn model's array {member.filename!r} declares {list(shape)} of {dtype}, "
                             f"which its {member.file_size} bytes do not hold")


def _constraints(classifier_constraints: dict) -> dict:
    """The classifier's own parameter constraints, ``standardize``'s, and a bound on ``n_jobs`` (of which
    scikit-learn takes any int: 100,000 threads failed inside the fit, after the data was loaded)."""
    constraints = {**classifier_constraints, "standardize": ["boolean"]}
    if "n_jobs" in constraints:  # -1: every core, -2: all but one, …; 0 means nothing (joblib refuses it in the fit)
        constraints["n_jobs"] = [Interval(Integral, -MAX_THREADS, -1, closed="both"),
                                 Interval(Integral, 1, MAX_THREADS, closed="both"), None]
    return constraints


@functools.cache
def family_class(name: str) -> type[SklearnClassifier]:
    """The family ``sklearn:<name>``: scikit-learn's classifier ``name`` with its own hyperparameters."""
    classifier = _classifier_class(name)
    signature = inspect.signature(classifier.__init__)
    own = [p for n, p in signature.parameters.items() if n != "self"]
    standardize = inspect.Parameter("standardize", inspect.Parameter.KEYWORD_ONLY, default=False)
    names = [p.name for p in own] + ["standardize"]

    def __init__(self, *args, **params):  # noqa: N807 (built here, named for the class)
        if args:
            raise TypeError(f"sklearn:{name} takes keyword arguments only")
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise TypeError(f"sklearn:{name} got unexpected parameters: {', '.join(unknown)}")
        for p in [*own, standardize]:
            setattr(self, p.name, params.get(p.name, p.default))

    # scikit-learn (get_params, clone) and the command line read the parameters from the signature
    __init__.__signature__ = signature.replace(parameters=[
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own], standardize])
    # scikit-learn's own docstring, with standardize added to its numpydoc Parameters section
    doc = inspect.getdoc(classifier) or ""
    section = "Parameters\n----------\n"
    at = doc.find(section) + len(section) if section in doc else len(doc)
    doc = (f"scikit-learn's {name} as a mnistlab family (``sklearn:{name}``): its own hyperparameters, "
           f"plus ``standardize``.\n\n{doc[:at]}standardize : bool, default=False\n"
           "    Put scikit-learn's StandardScaler (fitted on the training data) before the classifier.\n"
           + doc[at:])
    return type(f"Sklearn{name}", (SklearnClassifier,), {
        "family": SKLEARN_PREFIX + name, "estimator_class": classifier, "__init__": __init__, "__doc__": doc,
        "__module__": __name__, "__qualname__": f"Sklearn{name}",
        "_parameter_constraints": _constraints(getattr(classifier, "_parameter_constraints", {})),
    })
