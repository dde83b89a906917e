"""mnistlab: train, understand, compare and use classifiers on MNIST-family data.

>>> import mnistlab as ml
>>> run = ml.train("logreg", train_size=5000)        # doctest: +SKIP
>>> run                                              # a card in Jupyter    # doctest: +SKIP
>>> run.predict("shirt.jpg")                         # doctest: +SKIP

Names are imported on first use, so ``import mnistlab`` (and the command
line's start-up) loads neither scikit-learn, matplotlib nor PyTorch.
"""

from __future__ import annotations

import importlib

from ._version import __version__

_EXPORTS = {
    # the API
    **{name: "api" for name in ("load_dataset", "train", "load_run", "runs", "compare", "sweep", "families", "recipes",
                                "zalando_benchmark", "Run", "RunList", "Comparison", "Sweep", "Predictions",
                                "RecipeResult", "Benchmark")},
    # data
    "Dataset": "data.datasets", "DATASETS": "data.registry",
    # predictions, and the photo conversion they start with
    "Prediction": "inference.predictor", "prepare_photo": "inference.photo",
    # errors
    **{name: "errors" for name in ("MnistlabError", "DatasetError", "ParameterError", "ModelFileError",
                                   "PhotoError", "BlankPhotoError", "RunNotFoundError", "RunExistsError",
                                   "RunDamagedError", "DivergedError", "NotConvergedWarning",
                                   "UnusedParameterWarning", "SchedulerLostWarning")},
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
