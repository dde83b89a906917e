"""Fuzzing the readers of user input: the only exceptions out of them are mnistlab's own.

Each fuzzer runs a few seconds' worth of inputs (``MNISTLAB_FUZZ_EXAMPLES`` sets how many
each; ``benchmarks/bench_fuzz.py`` runs them at length and records the counts).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fixtures import fuzz
from mnistlab.experiments.pipeline import DataChoice, train

EXAMPLES = {"idx": 300, "photo": 150, "model": 150, "store": 200}  # each about 2-4 s here


def examples(name: str) -> int:
    return int(os.environ.get("MNISTLAB_FUZZ_EXAMPLES") or EXAMPLES[name])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, fashion):
    return train("logreg", {"C": 0.1}, DataChoice(train_size=300, test_size=100), tmp_path_factory.mktemp("out"),
                 name="fuzzed")


def test_idx_reader(tmp_path):
    assert fuzz.run("idx", examples("idx"), tmp_path) == examples("idx")


def test_photo_loader(tmp_path, fashion):
    sneaker = np.asarray(fashion.x_test[np.flatnonzero(fashion.y_test == 7)[0]])
    assert fuzz.run("photo", examples("photo"), tmp_path, image28=sneaker) == examples("photo")


def test_model_file_loader(tmp_path, run_dir):
    assert fuzz.run("model", examples("model"), tmp_path, run_dir=run_dir) == examples("model")


def test_run_folder_readers(tmp_path, run_dir):
    assert fuzz.run("store", examples("store"), tmp_path, run_dir=run_dir) == examples("store")
