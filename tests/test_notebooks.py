"""The tutorial notebooks in notebooks/ run top to bottom in a real Jupyter kernel.

Each notebook is executed with nbclient and an IPython kernel (ipykernel) started
from the interpreter running the tests, in a temporary working folder, with
small sizes from the environment variables the notebooks read in their first
code cell. A cell that raises fails the test. The outputs are then checked:
no terminal escape codes (progress in a notebook is a widget or plain text,
never Rich's ANSI output), the runs' cards rendered as HTML with their
accuracies, and figures rendered as PNGs.

The committed notebooks must carry no outputs and no execution counts.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "mnistlab-tests"

# Small enough that every notebook runs in seconds to a minute on two cores.
SETTINGS = {
    "MNISTLAB_NOTEBOOK_TRAIN_SIZE": "600",
    "MNISTLAB_NOTEBOOK_TEST_SIZE": "300",
    "MNISTLAB_NOTEBOOK_EPOCHS": "2",
}
CELL_TIMEOUT = 300  # seconds; a cell normally takes a few


def _source(path: Path) -> str:
    return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)


def _needs_mnist(path: Path) -> bool:
    """The notebooks on MNIST are told where it is through MNISTLAB_DATA_DIR."""
    return "MNISTLAB_DATA_DIR" in _source(path)


def _strings(value):
    """Every string inside a notebook output (nested dicts and lists)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _text(data) -> str:
    """A mime bundle entry: a string, or a list of lines in a saved notebook."""
    return "".join(data) if isinstance(data, list) else str(data)


def test_the_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) == 5, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean(path):
    """No outputs, no execution counts, the settings read first, and no test fixture named."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for i, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {i} of {path.name} has outputs: clear them before committing"
        assert cell.execution_count is None, f"code cell {i} of {path.name} has an execution count"
    first = code[0].source
    for variable in ("MNISTLAB_NOTEBOOK_TRAIN_SIZE", "MNISTLAB_NOTEBOOK_TEST_SIZE", "MNISTLAB_OUT"):
        assert variable in first, f"{path.name}: the first code cell should read {variable}"
    if _needs_mnist(path):
        assert "MNISTLAB_DATA_DIR" in first, f"{path.name}: the first code cell should read MNISTLAB_DATA_DIR"
    if any(family in _source(path) for family in ('"numpy-mlp"', '"mlp"', '"lenet"', '"cnn"')):
        assert "MNISTLAB_NOTEBOOK_EPOCHS" in first, f"{path.name}: the first code cell should read the epochs"
    text = "\n".join(cell.source for cell in nb.cells)
    assert not re.search(r"shared[/\\]", text), f"{path.name} names a test fixture folder"


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernel spec that starts an IPython kernel with the interpreter running the tests.

    Written to a temporary folder rather than installed, so that the notebooks run on
    exactly this virtual environment, whatever kernels the machine has registered.
    """
    folder = tmp_path_factory.mktemp("kernels")
    spec = folder / KERNEL_NAME
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "mnistlab tests", "language": "python",
    }))
    return folder


def _execute(path: Path, workdir: Path, kernel_dir: Path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name=KERNEL_NAME,
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    client = nbclient.NotebookClient(nb, km=km, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    finally:
        if km.has_kernel:  # a kernel manager handed in is ours to shut down
            km.shutdown_kernel(now=True)
    return nb


def _kernel_environment(monkeypatch, tmp_path: Path) -> tuple[Path, Path]:
    """The environment a test's kernel starts in; returns its output folder and its working folder."""
    import mnistlab as ml

    out = tmp_path / "out"
    monkeypatch.setenv("MNISTLAB_OUT", str(out))
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the figures
    # The kernel's connection file and IPython's profile (no startup scripts) stay in the test's folder.
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    # The kernel imports the same mnistlab as these tests.
    package_root = str(Path(ml.__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    work = tmp_path / "work"
    work.mkdir()
    return out, work


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, kernel_dir, monkeypatch, request):
    import mnistlab as ml

    if _needs_mnist(path):
        monkeypatch.setenv("MNISTLAB_DATA_DIR", str(request.getfixturevalue("mnist_dir")))
    out, work = _kernel_environment(monkeypatch, tmp_path)

    start = time.perf_counter()
    nb = _execute(path, work, kernel_dir)
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.1f} s")
    if os.environ.get("MNISTLAB_TEST_KEEP_NOTEBOOKS"):  # look at what the notebooks showed
        keep = Path(os.environ["MNISTLAB_TEST_KEEP_NOTEBOOKS"])
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / path.name)

    outputs = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]
    for output in outputs:
        for text in _strings(output):
            assert "\x1b[" not in text, f"{path.name}: terminal escape codes in an output: {text[:200]!r}"
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors

    html = [_text(o.data["text/html"]) for o in outputs if "data" in o and "text/html" in o.data]
    pngs = [o for o in outputs if "data" in o and "image/png" in o.data]
    assert len(pngs) >= 5, f"{path.name}: only {len(pngs)} figures rendered"

    runs = ml.runs(out=out)
    assert runs, f"{path.name} trained no run under MNISTLAB_OUT"
    for summary in runs:
        assert not summary.damaged, summary
        run = ml.load_run(summary.name, out=out)
        accuracy = f"{run.metrics['accuracy']:.4g}"
        assert any(run.name in h and accuracy in h for h in html), \
            f"{path.name}: no HTML card of run {run.name} showing its accuracy {accuracy}"
        assert run.config["dataset"]["n_test"] <= int(SETTINGS["MNISTLAB_NOTEBOOK_TEST_SIZE"]) \
            or run.name.startswith("recipe-"), f"{run.name} ignored MNISTLAB_NOTEBOOK_TEST_SIZE"
    assert any("McNemar" in h for h in html), f"{path.name}: no comparison card"
    assert any("<img" in h and "%" in h for h in html), f"{path.name}: no prediction card"


def test_a_fresh_notebook_shows_figures_short_reprs_and_finished_bars(tmp_path, kernel_dir, monkeypatch):
    """No pyplot anywhere: IPython shows a Figure as a picture only once something registers it."""
    _kernel_environment(monkeypatch, tmp_path)
    cells = ['import mnistlab as ml\nrun = ml.train("logreg", train_size=600, test_size=200, embedding=False)',
             'run.figure("confusion_matrix")',
             'run.predict(run.dataset.x_test[:20])',
             'run.interpretation']
    path = tmp_path / "fresh.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    nb = _execute(path, tmp_path / "work", kernel_dir)
    outputs = [[o for o in cell.outputs if o.output_type == "execute_result"] for cell in nb.cells]
    assert "image/png" in outputs[1][0].data  # was "<Figure size … with 2 Axes>" alone
    predictions = _text(outputs[2][0].data["text/plain"])
    assert predictions.count("Prediction(") == 20 and len(predictions) < 2000  # was 102,161 characters
    assert _text(outputs[3][0].data["text/plain"]).startswith("Interpretation(200 test images, ")
    bars = [model["state"] for model in nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
            .values() if model["model_name"] == "FloatProgressModel"]
    # converged before max_iter: the bar was left red, as a failure
    assert bars and all(bar["value"] == bar["max"] and bar["bar_style"] == "success" for bar in bars), bars
