"""What every model family shares: the contract the pipeline relies on.

A family is an estimator in scikit-learn's style (hyperparameters stored untouched in
``__init__``, work in ``fit``, learned attributes ending in ``_``) that takes
``X`` as float32 N×784 in [0, 1] and ``y`` as integer labels, and that can
give its learned state as named NumPy arrays and take it back. The CLI, runs,
reports, compare and the web page use nothing else, so they never
special-case a family.

What a family can show beyond predictions it declares here, so that figures,
reports, compare and the web ask the contract rather than test for a family's
attributes: ``can_explain`` (it has its own ``explain``, gradient × input; any
other family explains itself by occlusion sensitivity, which needs nothing but
``predict_proba``; either way ``explain`` computes only the classes asked for),
``weight_images`` (one weight per pixel and class), how its training history
reads (``history_x_label``, ``history_per_step``), ``can_checkpoint`` (it
writes checkpoints, below), and ``onnx_graph`` (itself as an ONNX graph, for
export).

Besides ``classes_`` and ``history_``, a fit may set ``n_iter_``, ``converged_``
and ``fit_message_``, which runs record where they are set; and a family that
``can_checkpoint`` takes ``checkpoint_dir`` and writes a checkpoint there after
every epoch, which a run points at a folder of its own and resumes from. A fit keeps the largest value
of ``X`` (``feature_max_``, by ``validation.fit_features``), and a prediction
warns of ``X`` far past it: raw 0–255 pixels given to a model fitted on [0, 1].

A family's hyperparameters are named by ``parameter_names()`` (a classmethod: the command line's options) and
given by ``get_params``; ``resolved_params()`` gives them as the fit uses them (a preset's values in place of its
None), which the layers above read rather than a family's own methods.

Every family declares its hyperparameters' allowed values in
``_parameter_constraints`` (scikit-learn's style; ``models.params`` has the
constraints and says how they are checked), and every ``fit`` starts with
``validate_params()``, so a bad value fails before any data is touched. Which
parameters other settings switch off a family declares in ``_used_only_when`` (a fit
warns of one given in vain; a sweep does not fit its values apart). A family whose
network a parameter sizes says what its fit needs (``_fit_memory``), and a fit or a run
refuses a network beyond the machine's free memory first (``check_fit_memory``). A parameter
whose right value depends on the data (cnn's flips) a family resolves from the dataset's
description, which a run hands it (``suit_dataset``): the family, not the run, names it. A fit
reports how it goes through ``fit(X, y, progress=...)`` (``mnistlab.callbacks``)
and never prints.

``MnistlabModel`` speaks scikit-learn's estimator protocol (``get_params``,
``set_params``, ``score``, ``__sklearn_tags__``) without inheriting it:
importing any part of scikit-learn costs over a second, which every
``mnistlab`` command would pay for a logistic regression that does not use
it. scikit-learn's tools (``clone``, ``Pipeline``, ``GridSearchCV``, its
estimator checks) need nothing more; ``models.validation`` checks the data.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._system import available_memory
from ..data.registry import IMAGE_SIDE, DatasetSpec
from ..errors import ExportError, ParameterError, UnusedParameterWarning, warn
from .params import check, unused
from .validation import check_features, check_fitted, check_labels

N_FEATURES = IMAGE_SIDE * IMAGE_SIDE  # a run's model takes an image's pixels in a row
# Where a run's checkpoints go is the run's to choose (the folder its resume looks in), not its user's: given
# to a sweep, its points resumed one another's checkpoints.
RUN_SET_PARAMETERS = frozenset({"checkpoint_dir"})
N_CLASSES = 10  # what a fit's memory is reckoned for before its data is seen: every dataset mnistlab knows has 10
# Whether validate_params warns of a parameter given in vain, in this thread (or task) alone: see unused_said_elsewhere
_WARN_UNUSED = contextvars.ContextVar("mnistlab_warn_unused", default=True)


@contextlib.contextmanager
def unused_said_elsewhere() -> Iterator[None]:
    """Within it, ``validate_params`` (a fit's too) does not warn of parameters given in vain: a model file's
    loading (its fit said so) and a sweep's points (its table's "unused" column says so) ask it. It holds for
    this thread or task alone; warnings.catch_warnings, used before, changes the process's filters: a thread
    beside it (another point of a sweep on a Dask worker's threads, a user's fit) lost its warnings meanwhile,
    and a filter the user set meanwhile was undone at its end."""
    token = _WARN_UNUSED.set(False)
    try:
        yield
    finally:
        _WARN_UNUSED.reset(token)


def dense_weights(sizes) -> int:
    """The weights and biases of fully connected layers of ``sizes`` units, input first."""
    return sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


@dataclass(frozen=True)
class Curves:
    """A fit's history, ready to plot: series of floats against ``x_label``."""

    title: str
    x_label: str
    series: dict[str, list[float]]


def occlusion_maps(model, X, classes=None) -> np.ndarray:
    """``model.explain`` by occlusion: how much covering each patch lowers each class's ``predict_proba``
    (of ``classes``, indices into ``classes_``; default: all), N×len(classes)×784."""
    from .occlusion import occlusion_sensitivity

    check_fitted(model, "classes_")
    X = check_features(model, X)
    if X.shape[1] != N_FEATURES:
        raise ParameterError(None, f"occlusion covers patches of {IMAGE_SIDE}×{IMAGE_SIDE}-pixel images; X has "
                                   f"{X.shape[1]} features")
    maps = occlusion_sensitivity(model.predict_proba, X)  # every class's at once
    return maps if classes is None else maps[:, model._class_indices(classes)]


class MnistlabModel:
    """Base class of the model families.

    Subclasses set ``family`` (the name used on the command line and in model
    files) and ``learned_arrays`` (the ``*_`` attributes that make up a fitted
    model), and may override ``get_arrays``/``set_arrays`` when the state is
    not a flat list of arrays (e.g. a PyTorch ``state_dict``).

    Fitted models may have ``history_``: a dict of per-iteration or per-epoch
    curves (lists of floats).

    ``fit(X, y, progress=None)`` takes a ``callbacks.FitProgress``; None or False: silent
    (``_fitting.reporter``: an estimator draws no bar itself).
    """

    family: ClassVar[str]
    learned_arrays: ClassVar[tuple[str, ...]] = ()
    can_explain: ClassVar[bool] = False  # its own explain(X) (gradient × input); else occlusion
    # it takes checkpoint_dir, writes a checkpoint there every epoch and resumes from it: what a run asks, on the
    # class before a model is made, rather than looking for the parameter (three ways, in two places)
    can_checkpoint: ClassVar[bool] = False
    history_x_label: ClassVar[str] = "epoch"  # what one entry of a history series stands for
    history_per_step: ClassVar[tuple[str, ...]] = ()  # series recorded per optimiser step, not per x
    # parameter name -> list of constraints, one of which a value must meet (see models.params)
    _parameter_constraints: ClassVar[dict[str, list]] = {}
    # parameter name -> {another parameter: the values with which the first is used}: one that other settings
    # switch off (l1_ratio is used only with an elastic net), which a fit warns of and a sweep does not vary
    _used_only_when: ClassVar[dict[str, dict[str, frozenset]]] = {}

    # -- scikit-learn's estimator protocol ------------------------------------------------

    @classmethod
    def parameter_names(cls) -> list[str]:
        """The hyperparameters' names: the keyword parameters of ``__init__``, in order, which ``get_params`` reads.
        Public, as the command line builds a family's options from its class: scikit-learn's ``_get_param_names``,
        which this was named after, is private to it, and a generic layer reading it reached into a family."""
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        if any(p.kind is p.VAR_POSITIONAL for p in parameters):
            raise TypeError(f"{cls.__name__}.__init__ must name its parameters (no *args), as scikit-learn requires")
        return [p.name for p in parameters if p.kind is not p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict:
        """The hyperparameters as given; with ``deep``, also those of any estimator among them (``name__param``)."""
        params = {name: getattr(self, name) for name in self.parameter_names()}
        if deep:
            for name, value in list(params.items()):
                if hasattr(value, "get_params") and not isinstance(value, type):
                    params.update((f"{name}__{key}", v) for key, v in value.get_params().items())
        return params

    def set_params(self, **params) -> MnistlabModel:
        """Set hyperparameters (``name__param`` sets one of a nested estimator's); checked at ``fit``."""
        valid = self.parameter_names()
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, _, inner = key.partition("__")
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {self}. Valid parameters are: {valid!r}.")
            if inner:
                nested.setdefault(name, {})[inner] = value
            else:
                setattr(self, name, value)
        for name, inner_params in nested.items():
            getattr(self, name).set_params(**inner_params)
        return self

    @classmethod
    def _defaults(cls) -> dict:
        return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()}

    def __repr__(self) -> str:
        defaults = self._defaults()
        changed = [f"{name}={value!r}" for name, value in self.get_params(deep=False).items()
                   if repr(value) != repr(defaults.get(name))]
        return f"{type(self).__name__}({', '.join(changed)})"

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy of ``predict(X)`` against ``y`` (weighted by ``sample_weight``)."""
        predicted = self.predict(X)
        return float(np.average(predicted == check_labels(self, y, len(predicted)), weights=sample_weight))

    def __sklearn_tags__(self):
        """A classifier's tags, for scikit-learn's tools (which have imported scikit-learn already)."""
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags())

    # -- what mnistlab adds -------------------------------------------------------------

    def validate_params(self) -> None:
        """Check each hyperparameter against ``_parameter_constraints``, before any work is done.

        Raises ``ParameterError`` naming the offending parameter; a family's rules that relate
        parameters (which one constraint cannot express) are its ``_check_rules``. Then, the
        settings being valid, warns (``UnusedParameterWarning``) of each parameter given that the
        others switch off (not within ``unused_said_elsewhere``): before, a refused setting came after a
        warning of another.
        """
        for name, value in self.get_params(deep=False).items():
            if name in self._parameter_constraints:
                check(name, value, self._parameter_constraints[name])
        self._check_rules()
        if not _WARN_UNUSED.get():
            return
        defaults = self._defaults()
        for name, why in self.unused_parameters().items():
            if repr(getattr(self, name)) != repr(defaults[name]):  # given, not left at its default
                warn(UnusedParameterWarning(name, f"ignored ({why})"))  # at the user's fit, train or sweep

    def _check_rules(self) -> None:
        """Raise ``ParameterError`` where parameters that each meet their constraints do not go together."""

    def suit_dataset(self, dataset: DatasetSpec) -> None:
        """Resolve the parameters left to the data ("auto") from the description of the dataset the model is to be
        fitted on (``data.registry``), with ``set_params``: a run's files then record the values the fit used, and
        its model file loads with them. A run and a sweep call it for every family before the fit; a family with
        nothing left to the data (the default) does nothing."""

    def resolved_params(self) -> dict:
        """``get_params(deep=False)`` as the fit uses them: a family with presets or values left to it (cnn's
        preset's None, its flip "auto" that no run resolved) resolves them here. What tells two settings apart
        that fit alike (a sweep fits them once; a checkpoint resumes either), and what ``unused_parameters``
        reads; a family with nothing to resolve (the default) gives ``get_params(deep=False)``."""
        return self.get_params(deep=False)

    def unused_parameters(self) -> dict[str, str]:
        """The hyperparameters that the others switch off (``_used_only_when``), each with why."""
        return unused(self.resolved_params(), self._used_only_when)

    def _fit_memory(self) -> tuple[str, int, int] | None:
        """The parameter that sizes the network (layer sizes, channel widths), how many weights it makes for a
        run's 784 pixels and 10 classes, and the bytes a fit holds for each (the weight, its gradient and the
        optimiser's state); None for a family no parameter makes large."""
        return None

    def check_fit_memory(self) -> None:
        """Refuse a network whose fit cannot fit in the memory this machine has free, naming the parameter that
        sizes it, before any data is loaded or any weight allocated. Called with ``validate_params`` by a fit
        and by a run, not by a model file's loading, which holds the weights alone.

        Without it a fit allocated its arrays one at a time, each less than the machine's memory (which
        Linux grants, however little is free), and the kernel's OOM killer ended the process without a word
        once they were written to (numpy-mlp with hidden=(20000, 20000): exit 137 in a 4 GiB cgroup)."""
        sized, available = self._fit_memory(), available_memory()
        if sized is None or available is None:
            return
        name, weights, per_weight = sized
        if weights * per_weight > available:
            raise ParameterError(name, f"a network of {weights:,} weights needs at least "
                                       f"{weights * per_weight / 2**30:,.1f} GiB to fit ({per_weight} bytes a "
                                       "weight: the weight, its gradient and the optimiser's state), and this "
                                       f"machine has {available / 2**30:,.1f} GiB available to it; "
                                       "give smaller sizes")

    def get_arrays(self) -> dict[str, np.ndarray]:
        for name in self.learned_arrays:  # before fit: scikit-learn's NotFittedError, not an AttributeError
            check_fitted(self, name)
        return {name: np.asarray(getattr(self, name)) for name in self.learned_arrays}

    def n_parameters(self) -> int | None:
        """How many numbers the fit learned; here every float array the model keeps but its class labels
        (a family that keeps others, such as what standardises its input, counts its own). None where its
        state is not float arrays (a scikit-learn model's skops bytes)."""
        return int(sum(a.size for name, a in self.get_arrays().items()
                       if name != "classes_" and np.issubdtype(a.dtype, np.floating))) or None

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> MnistlabModel:
        self._require_arrays(arrays, self.learned_arrays)
        for name in self.learned_arrays:
            setattr(self, name, arrays[name])
        return self

    @staticmethod
    def _require_arrays(arrays: dict[str, np.ndarray], names, why: str = "") -> None:
        """A ValueError naming those of ``names`` that a model file's ``arrays`` lack (``why``: the setting that
        needs them). Every family's rule: arrays beyond ``names`` are ignored, not refused (a newer version may
        keep more); model.json's settings say which are read, and load_model then has the model predict once,
        which fails where those do not fit together."""
        if missing := [name for name in names if name not in arrays]:
            raise ValueError(f"model file lacks arrays: {', '.join(missing)}" + (f" ({why})" if why else ""))

    def explain(self, X, classes=None) -> np.ndarray:
        """Per-pixel contributions to each of ``classes`` (indices into ``classes_``; default: all),
        N×len(classes)×784; here by occlusion, for families without gradients."""
        return occlusion_maps(self, X, classes)

    def _class_indices(self, classes) -> np.ndarray:
        """``explain``'s ``classes`` as an array of indices into ``classes_`` (None: all of them)."""
        n = len(self.classes_)
        if classes is None:
            return np.arange(n)
        indices = np.asarray(classes)
        in_range = (indices.ndim == 1 and np.issubdtype(indices.dtype, np.integer)
                    and ((0 <= indices) & (indices < n)).all())
        if not in_range:
            raise ParameterError("classes", f"a list of class indices from 0 to {n - 1}; got {classes!r}")
        return indices

    @property
    def explanation_method(self) -> str:
        """How ``explain`` reads each pixel's part, for captions."""
        return "gradient × input" if self.can_explain else "occlusion sensitivity"

    def features(self, X) -> np.ndarray | None:
        """The penultimate layer's activations (N×features), for maps of the test set; None without layers."""
        return None

    def probabilities_note(self) -> str | None:
        """None where ``predict_proba`` gives the model's own probabilities; else one sentence on what it
        gives instead, which a run says beside the numbers computed from them (log-loss, calibration)."""
        return None

    def weight_images(self) -> np.ndarray | None:
        """The fitted weights as one 784-pixel image per class (rows), or None if the model has none.

        A standardising model's are its weights on the standardised pixels, each a pixel's effect per
        its usual variation: on raw pixels, a rarely lit pixel's small spread makes its weight huge.

        A binary model with one weight vector gives one row: the second class against the first.
        """
        return None

    def onnx_graph(self):
        """The fitted model as an ``onnx.ModelProto`` that computes ``predict_proba``.

        Its input ``x`` is float32 N×784 in [0, 1], its output ``probabilities`` float32
        N×classes (names and building blocks: ``models.onnx_graphs``); whatever the family does
        to ``x`` before its weights (e.g. standardisation) is part of the graph. A family that
        cannot describe itself so raises ExportError naming itself.
        """
        raise ExportError(f"a {self.family} model cannot be exported to ONNX")

    def training_curves(self, history: dict | None = None) -> Curves | None:
        """``history`` (default: ``history_``) as curves to plot, or None when nothing was recorded (and only then:
        a run lists its learning curves from its recorded history, without loading its model)."""
        history = getattr(self, "history_", None) if history is None else history
        if not history:
            return None
        title = "Convergence" if self.history_x_label == "iteration" else "Learning curves"
        return Curves(title, self.history_x_label, dict(history))

    @classmethod
    def comparable_curves(cls, history: dict | None) -> dict[str, list[float]]:
        """The series of ``history`` that runs of any family can share an axis on: per-epoch ones."""
        if cls.history_x_label != "epoch" or not history:
            return {}
        return {k: v for k, v in history.items() if k not in cls.history_per_step}
