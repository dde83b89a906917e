"""What an estimator checks of the data it is given, without importing scikit-learn.

The rules and the gist of the messages are scikit-learn's (``validate_data``,
``check_classification_targets``, ``check_is_fitted``), for what our families
take: dense numeric ``X``, samples × features, and one class label per sample.
Importing any part of scikit-learn costs over a second (it loads scipy.stats),
most of ``mnistlab train logreg``'s start-up and of ``mnistlab predict``; so
scikit-learn is imported only on the two paths where its own classes are the
contract — the error for a model used before ``fit`` (``NotFittedError``, which
scikit-learn's tools catch) and the warning for a column-vector ``y``
(``DataConversionWarning``, which users filter) — and there the second is spent
on a mistake, not on every run.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ..errors import ParameterError, warn


def _name(estimator) -> str:
    return type(estimator).__name__


def check_features(estimator, X) -> np.ndarray:
    """``X`` as a C-contiguous float32 samples × features array (no copy when it is one already), with as
    many features as the fitted model knows (one loaded from a file written before files held it finds out
    from its weights). A data frame's column names are checked as scikit-learn checks them
    (``feature_names_in_``): a frame of the pixel columns of a CSV in another order would otherwise be read
    wrong, silently."""
    _check_feature_names(estimator, _feature_names(X))  # first, as scikit-learn does: a frame's columns in
    # the wrong order say more than its values
    array = _numeric_samples(estimator, X)
    if array.shape[1] != getattr(estimator, "n_features_in_", array.shape[1]):
        raise ParameterError(None, f"X has {array.shape[1]} features, but {_name(estimator)} is expecting "
                                   f"{estimator.n_features_in_} features as input.")
    _check_scale(estimator, array)
    return array


# The largest value of X above which a model fitted on [0, 1] (pixels / 255) warns: raw 0–255 pixels
PIXELS_GIVEN = 10


def _check_scale(estimator, array: np.ndarray) -> None:
    """Warn where a model fitted on values in [0, 1] (``feature_max_`` at most 1: pixels / 255, as mnistlab's runs
    fit) is given X reaching past ``PIXELS_GIVEN``: raw 0–255 pixels, which it took without a word and scored lower
    (logreg 0.698 against 0.799 on 1,000 MNIST test images), where a user expects the run's accuracy. A warning, not
    a refusal. Only for a fit on [0, 1]: one on standardised pixels (StandardScaler in a pipeline) sees test values
    tens of times its largest where a pixel rare in its training subset is lit (2,403 against 44.7 on 2,000
    Fashion-MNIST images), and is given X as it should be. A model without ``feature_max_`` (a file written before
    it was kept) is not asked. One pass over X: 1–2 ms for 10,000 images."""
    fitted = getattr(estimator, "feature_max_", None)
    if fitted is None or not 0 < fitted <= 1:
        return
    given = float(array.max())
    if given > PIXELS_GIVEN:
        warn(f"X's largest value is {given:g}, but {_name(estimator)} was fitted on values up to {fitted:g}: give it "
             "pixels / 255, as its fit had them (mnistlab.data.preprocess.flatten_scale)", UserWarning)


def fit_features(estimator, X) -> tuple[np.ndarray, dict]:
    """``X`` checked as ``check_features`` does, for ``fit``: with what the fit learns of the features
    (``n_features_in_``; ``feature_names_in_``, None for none; ``feature_max_``, the largest value of X, which
    ``check_features`` warns of X far past), for ``set_learned`` once the fit is done."""
    names = _feature_names(X)
    array = _numeric_samples(estimator, X)
    return array, {"n_features_in_": array.shape[1], "feature_names_in_": names,
                   "feature_max_": float(array.max())}


def set_learned(estimator, learned: dict) -> None:
    """Set a fit's learned attributes at once, at its end, so that a fit that fails leaves the model it had
    whole; an attribute learned as None (no feature names) is removed."""
    for name, value in learned.items():
        if value is not None:
            setattr(estimator, name, value)
        elif hasattr(estimator, name):
            delattr(estimator, name)


def _numeric_samples(estimator, X) -> np.ndarray:
    if hasattr(X, "toarray") and hasattr(X, "nnz"):  # a scipy.sparse matrix or array, told apart without scipy
        raise ParameterError(None, f"{_name(estimator)} needs dense data, but sparse data was passed for X; "
                                   "convert it with X.toarray()")
    array = np.asarray(X)
    if np.iscomplexobj(array):
        raise ParameterError(None, "Complex data not supported")
    array = np.ascontiguousarray(array, dtype=np.float32)  # a value that is no number raises here
    if array.ndim != 2:
        raise ParameterError(None, f"{_name(estimator)} expects a 2-D X (samples × features), got {array.ndim}-D "
                                   "data. Reshape your data: X.reshape(1, -1) for a single sample")
    for axis, what in enumerate(("sample", "feature")):
        if array.shape[axis] == 0:
            raise ParameterError(None, f"Found array with 0 {what}(s) (shape={array.shape}) while a minimum of 1 "
                                       f"is required by {_name(estimator)}.")
    # the sum is finite unless a value is NaN or infinite, or huge ones overflow: then look at each
    if not np.isfinite(array.sum()) and not np.isfinite(array).all():
        raise ParameterError(None, "Input X contains NaN or infinity.")
    return array


def _feature_names(X) -> np.ndarray | None:
    """A data frame's column names (pandas, polars …), where they are all strings; else None."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return None
    names = np.asarray(list(columns), dtype=object)
    return names if len(names) and all(isinstance(n, str) for n in names) else None


def _check_feature_names(estimator, names: np.ndarray | None) -> None:
    """scikit-learn's rules and words: a warning where one side has names and the other not, an error
    where the names differ."""
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is None and names is None:
        return
    if fitted is None or names is None:
        warn(f"X has feature names, but {_name(estimator)} was fitted without feature names" if fitted is None else
             f"X does not have valid feature names, but {_name(estimator)} was fitted with feature names", UserWarning)
        return
    if list(fitted) == list(names):
        return
    unseen, missing = sorted(set(names) - set(fitted)), sorted(set(fitted) - set(names))

    def listed(some):
        return "".join(f"- {n}\n" for n in some[:5]) + ("- ...\n" if len(some) > 5 else "")

    message = "The feature names should match those that were passed during fit.\n"
    if unseen:
        message += "Feature names unseen at fit time:\n" + listed(unseen)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listed(missing)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ParameterError(None, message)


def check_labels(estimator, y, n_samples: int) -> np.ndarray:
    """``y`` as a 1-D array of ``n_samples`` class labels (ints, integral floats or strings)."""
    if y is None:
        raise ParameterError(None, f"{_name(estimator)} requires y to be passed, but the target y is None.")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        from sklearn.exceptions import DataConversionWarning

        warn("A column-vector y was passed when a 1d array was expected; it is read as one.", DataConversionWarning)
        y = y.ravel()
    if y.ndim != 1:
        raise ParameterError(None, f"y should be a 1d array, got an array of shape {y.shape} instead.")
    if len(y) != n_samples:
        raise ParameterError(None, f"Found input variables with inconsistent numbers of samples: "
                                   f"[{n_samples}, {len(y)}]")
    if not _are_class_labels(y):
        raise ParameterError(None, f"Unknown label type: {_label_kind(y)}; y must hold class labels "
                                   "(ints or strings), not measurements")
    return y


def class_codes(estimator, y, n_samples: int) -> np.ndarray:
    """``y``'s labels as indices into the fitted ``classes_``; a label the fit did not see is refused."""
    y = check_labels(estimator, y, n_samples)
    classes = estimator.classes_
    try:
        codes = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
        seen = classes[codes] == y
    except TypeError:  # strings against numbers: none of them seen
        seen = np.zeros(len(y), dtype=bool)
    if not np.all(seen):
        unseen = ", ".join(map(repr, np.unique(y[~seen])[:5].tolist()))
        raise ParameterError("y", f"labels the fit did not see ({unseen}); {_name(estimator)} knows "
                                  f"{len(classes)} classes: {', '.join(map(repr, classes[:10].tolist()))}")
    return codes


def _are_class_labels(y: np.ndarray) -> bool:
    if y.dtype.kind in "biuU":
        return True
    if y.dtype.kind == "f":
        return bool(np.isfinite(y).all() and (y == np.round(y)).all())
    if y.dtype.kind == "O":  # all ints or all strings, not a mix
        return (all(isinstance(v, Integral) for v in y.flat) or all(isinstance(v, str) for v in y.flat))
    return False


def _label_kind(y: np.ndarray) -> str:
    if y.dtype.kind == "f":
        return "continuous (values that are not whole numbers)" if np.isfinite(y).all() else "NaN or infinity"
    return f"values of dtype {y.dtype}"


def check_fitted(estimator, attribute: str) -> None:
    """Raise scikit-learn's ``NotFittedError`` unless ``estimator`` has ``attribute`` (set by ``fit``)."""
    if not hasattr(estimator, attribute):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(f"This {_name(estimator)} instance is not fitted yet. Call 'fit' with appropriate "
                             "arguments before using this estimator.")
