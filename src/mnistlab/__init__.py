"""mnistlab: train, understand, compare and use classifiers on MNIST-family data."""

from .data.datasets import Dataset, load_dataset
from .errors import DatasetError
from .data.registry import DATASETS

__version__ = "0.1.0"
__all__ = ["DATASETS", "Dataset", "DatasetError", "load_dataset", "__version__"]
