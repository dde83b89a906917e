"""Shared fixtures: real data, an isolated cache, and a CLI runner."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnistlab.callbacks import FitProgress

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/mnistlab."""
    cache = tmp_path_factory.mktemp("mnistlab-cache")
    old = {k: os.environ.get(k) for k in ("MNISTLAB_CACHE", "MNISTLAB_DATA_DIR", "MNISTLAB_OUT")}
    os.environ["MNISTLAB_CACHE"] = str(cache)
    os.environ.pop("MNISTLAB_DATA_DIR", None)
    os.environ.pop("MNISTLAB_OUT", None)
    yield cache
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def fashion():
    from mnistlab import load_dataset

    return load_dataset("fashion-mnist", download=False)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"{SHARED_MNIST} not present")
    return SHARED_MNIST


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from mnistlab import load_dataset

    return load_dataset("mnist", data_dir=mnist_dir)


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m mnistlab ARGS` as a user would; capture text output."""
    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    return subprocess.run([sys.executable, "-m", "mnistlab", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture
def one_prediction_thread(monkeypatch):
    """PyTorch's predictions on one thread whatever else runs: the count can change their last bits,
    and the tests that compare two models' predictions bit for bit mean the same count for both."""
    from mnistlab.models.torch import device  # PyTorch: only for the tests that ask for this

    monkeypatch.setattr(device, "free_cores", lambda readings=1: 1)


HEAVY_LIBRARIES = {"sklearn", "matplotlib", "torch", "scipy"}


def heavy_libraries_imported(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `mnistlab ARGS` in a fresh interpreter; the result and which HEAVY_LIBRARIES it had imported
    by the end."""
    code = ("import sys; from mnistlab.cli import main; sys.argv = ['mnistlab', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(sorted(set({sorted(HEAVY_LIBRARIES)}) & {{m.split('.')[0] for m in sys.modules}}), "
            "file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    return result, set(ast.literal_eval(result.stderr.strip().splitlines()[-1]))  # the list printed last


class RecordingProgress(FitProgress):
    """A ``FitProgress`` that keeps everything a fit tells it."""

    def __init__(self):
        self.starts, self.done, self.descriptions, self.lines, self.ends = [], [], [], [], 0
        self.ended_by_error: list[bool] = []

    def start(self, total, unit):
        self.starts.append((total, unit))

    def advance(self, done, description=""):
        self.done.append(done)
        self.descriptions.append(description)

    def log(self, line):
        self.lines.append(line)

    def end(self):
        self.ends += 1
        self.ended_by_error.append(sys.exc_info()[0] is not None)  # a renderer draws those as failed
