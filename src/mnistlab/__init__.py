"""mnistlab: train, understand, compare and use classifiers on MNIST-family data."""

from .datasets import Dataset, load_dataset
from .idx import DatasetError
from .registry import DATASETS

__version__ = "0.1.0"
__all__ = ["DATASETS", "Dataset", "DatasetError", "load_dataset", "__version__"]
