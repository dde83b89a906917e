"""The one pipeline, end to end on small subsets: train → run folder → reload → predict."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import RecordingProgress, run_cli
from mnistlab.errors import MnistlabError, ModelFileError, ParameterError
from mnistlab.models.serialization import load_model, save_model
from mnistlab.models import get_family
from mnistlab.data.preprocess import flatten_scale
from mnistlab.experiments.compare import holm
from mnistlab.experiments.pipeline import DataChoice, train
from mnistlab.experiments.store import RunStore

SMALL = ["--train-size", "1500", "--test-size", "400"]
METRIC_KEYS = {"accuracy", "macro_f1", "log_loss", "fit_seconds", "n_iter", "confusion_matrix", "per_class"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One logreg run through the CLI, shared by the tests below."""
    out = tmp_path_factory.mktemp("out")
    result = run_cli("train", "logreg", *SMALL, "--C", "0.1", "--name", "small", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def test_run_folder_is_complete(trained):
    out, summary = trained
    run = out / "runs" / "small"
    assert summary["run_dir"] == str(run) and 0.7 < summary["accuracy"] <= 1
    assert summary["analysis"] and summary["analysis"][0].startswith("Test accuracy")  # the text's lines, too
    shown = json.loads(run_cli("runs", "show", "small", "--out", str(out), "--json").stdout)
    assert shown["run_dir"] == str(run) and shown["report"] == str(run / "report.html")  # files were relative to?
    for name in ("model.npz", "model.json", "config.json", "metrics.json", "predictions.npz", "report.html"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert len(metrics["per_class"]) == 10 and metrics["per_class"][0]["class"] == "T-shirt/top"
    config = json.loads((run / "config.json").read_text())
    assert config["params"]["C"] == 0.1 and config["seed"] == 0
    assert {"numpy", "scikit-learn", "python"} <= set(config["versions"])
    for png in ("confusion_matrix", "confusion_matrix_normalized", "correct", "wrong", "coefficients",
                "learning_curves", "sample_probabilities", "sample_contributions"):
        with Image.open(run / "plots" / f"{png}.png") as image:
            assert image.format == "PNG" and min(image.size) > 100, png
    html = (run / "report.html").read_text()
    assert "data:image/png;base64," in html and "T-shirt/top" in html
    assert "<h1>logreg on Fashion-MNIST (Zalando Research)</h1>" in html  # the title config.json records
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_run_under_the_working_folder_is_shown_by_its_relative_path(tmp_path):
    result = run_cli("train", "logreg", "--train-size", "300", "--test-size", "100", "--no-embedding", "--name",
                     "here", cwd=tmp_path, env={"MNISTLAB_OUT": ""})  # the default ./mnistlab-out
    assert result.returncode == 0, result.stderr
    # the API's Run keeps an absolute path (it works after a notebook's %cd); the line shows it as given
    assert result.stdout.endswith("run: mnistlab-out/runs/here\nreport: mnistlab-out/runs/here/report.html\n")


def test_a_path_is_shown_whole_where_the_working_folder_is_gone(tmp_path, monkeypatch):
    """Path.cwd() raises there: a command that had written its run ended in 'internal error: FileNotFoundError'."""
    from mnistlab.errors import paths_relative, shown_path

    def gone():
        raise FileNotFoundError(2, "No such file or directory")
    monkeypatch.setattr(Path, "cwd", staticmethod(gone))
    with paths_relative():  # the command line's
        assert shown_path(tmp_path / "runs" / "a") == tmp_path / "runs" / "a"


def test_reloaded_model_predicts_bit_identically(fashion, tmp_path):
    ds = fashion.subset(n=1000, seed=1)
    x_train, x_test = flatten_scale(ds.x_train), flatten_scale(ds.x_test[:500])
    model = get_family("logreg")(C=0.1).fit(x_train, ds.y_train)
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert np.array_equal(model.predict_proba(x_test), loaded.predict_proba(x_test))


def test_tampered_model_file_is_rejected(trained, tmp_path):
    out, _ = trained
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(out / "runs" / "small", run)
    meta = json.loads((run / "model.json").read_text())
    meta["family"] = "os.system"
    (run / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="bad family"):
        load_model(run)
    (run / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(run)
    (run / "model.npz").write_bytes(b"\x80\x04pickle")  # a pickle is never loaded
    (run / "model.json").write_text((out / "runs" / "small" / "model.json").read_text())
    with pytest.raises(ModelFileError, match="unreadable"):
        load_model(run)


def test_predict_evaluate_explain_runs(trained):
    out, summary = trained
    predictions = np.load(out / "runs" / "small" / "predictions.npz")
    result = run_cli("predict", "small", "--index", "0", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["label"] == int(predictions["y_pred"][0])
    assert answer["top"][0]["probability"] == pytest.approx(float(predictions["proba"][0].max()), abs=1e-5)

    result = run_cli("evaluate", "small", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(summary["accuracy"])

    result = run_cli("explain", "small", "--index", "3", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    explained = json.loads(result.stdout)
    files = explained["files"]
    assert len(files) == 2 and all(Image.open(f).format == "PNG" for f in files)
    assert explained["label"] == int(predictions["y_pred"][3]) and explained["true_class"]  # as predict's answer

    result = run_cli("runs", "list", "--out", str(out), "--json")
    assert [r["name"] for r in json.loads(result.stdout)] == ["small"]
    result = run_cli("runs", "show", "small", "--out", str(out))
    assert result.returncode == 0 and "report.html" in result.stdout


@pytest.fixture(scope="module")
def binary(trained):
    """A two-class run beside the shared one (a fixture, not a test's side effect: with pytest-xdist the
    tests that use it may run in different processes)."""
    out, _ = trained
    result = run_cli("train", "logreg", "--classes", "0,1", "--train-size", "1000", "--name", "binary",
                     "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_binary_task_and_existing_name(trained, binary):
    out, _ = trained
    result = run_cli("train", "logreg", "--classes", "0,1", "--train-size", "1000", "--name", "small",
                     "--out", str(out))
    assert result.returncode == 2 and "exists" in result.stderr
    assert binary["accuracy"] > 0.95
    config = json.loads((out / "runs" / "binary" / "config.json").read_text())
    assert config["dataset"]["classes"] == ["T-shirt/top", "Trouser"]


@pytest.mark.parametrize("args, message", [
    (["train", "nosuchmodel"], "unknown model"),
    (["train", "logreg", "--gamma", "1"], "has an option --gamma"),
    (["train", "logreg", "--C", "x"], "--C"),
    (["predict", "no-such-run", "--index", "0"], "no run"),
])
def test_bad_input_is_one_line(args, message, tmp_path):
    result = run_cli(*args, "--out", str(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_sweep_writes_table_and_plot(tmp_path):
    result = run_cli("sweep", "logreg", "--C", "0.01,1", "--penalty", "l1,l2", "--train-size", "800",
                     "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert len(answer["results"]) == 4
    l1_strong = next(r for r in answer["results"] if r["penalty"] == "l1" and r["C"] == 0.01)
    l2_weak = next(r for r in answer["results"] if r["penalty"] == "l2" and r["C"] == 1)
    assert l1_strong["sparsity"] > l2_weak["sparsity"]  # stronger L1 → more zero weights
    assert all(r["val_accuracy_std"] is None for r in answer["results"])  # of one split: none, not 0.0
    folder = answer["folder"]
    assert json.loads(open(f"{folder}/sweep.json").read())["data"]["train_size"] == 800  # the data, as runs record it
    assert Image.open(f"{folder}/sweep.png").format == "PNG"
    assert open(f"{folder}/sweep.csv").read().startswith("C,penalty,val_accuracy")


def test_failed_training_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        train("logreg", {"penalty": "bogus"}, DataChoice(train_size=300, test_size=100), tmp_path,
              name="broken")
    assert RunStore(tmp_path).list() == [] and not (tmp_path / "runs" / "broken").exists()


def test_a_fit_that_diverges_is_one_clear_error_and_leaves_no_run(tmp_path):
    with pytest.raises(MnistlabError, match="cnn diverged in training: .* not finite") as error:
        train("cnn", {"epochs": 3, "learning_rate": 1e12}, DataChoice(train_size=200, test_size=50), tmp_path,
              name="diverged", embedding=False)
    assert "\n" not in str(error.value)
    assert RunStore(tmp_path).list() == [] and not (tmp_path / "runs" / "diverged").exists()
    from mnistlab.experiments.sweep import run_sweep

    with np.errstate(all="ignore"):  # the diverged point is not scored as chance; the other's score is kept
        folder, rows = run_sweep("numpy-mlp", {"learning_rate": [0.01, 1e300], "max_epochs": [1], "hidden": [(8,)]},
                                 DataChoice(train_size=300), tmp_path)
    assert rows[0]["val_accuracy"] > 0.1 and rows[0]["error"] is None  # it was lost with the failed one's error
    assert rows[1]["val_accuracy"] is None and "diverged in training" in rows[1]["error"]
    written = json.loads((folder / "sweep.json").read_text())["results"]
    assert [r["error"] for r in written] == [r["error"] for r in rows] and (folder / "sweep.png").is_file()
    assert [line.split(",")[2] for line in (folder / "sweep.csv").read_text().splitlines()] == ["hidden", "8", "8"]
    result = run_cli("sweep", "numpy-mlp", "--learning-rate", "0.01,1e300", "--max-epochs", "1", "--hidden", "8",
                     "--train-size", "300", "--out", str(tmp_path))
    assert result.returncode == 2 and "1 of 2 points failed; the first, learning_rate=1e+300, max_epochs=1, " \
                                      "hidden=8: numpy-mlp diverged" in result.stderr  # as --hidden takes it
    assert "best: learning_rate=0.01" in result.stdout and "—" in result.stdout  # the failed row, beside the other
    with pytest.raises(MnistlabError, match=r"all 1 sweep points failed; the first, learning_rate=1e\+300, "):
        run_sweep("numpy-mlp", {"learning_rate": [1e300], "max_epochs": [1], "hidden": [(8,)]},
                  DataChoice(train_size=300), tmp_path)
    with pytest.raises(ParameterError, match="10,000 combinations to sweep: at most 1,000"):  # counted, not built
        run_sweep("logreg", {"C": list(range(1, 101)), "tol": list(range(1, 101))}, DataChoice(), tmp_path)
    with pytest.raises(ParameterError, match="is more than the") as info:  # the sweep's data: said once, as itself
        run_sweep("logreg", {"C": [0.1, 1.0]}, DataChoice(train_size=10**6), tmp_path)
    assert info.value.parameter == "train_size"


def test_compare_two_runs(trained, binary):
    out, _ = trained
    result = run_cli("train", "logreg", *SMALL, "--penalty", "l1", "--C", "0.05", "--name", "small-l1",
                     "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    result = run_cli("compare", "small", "small-l1", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    pair = answer["pairs"][0]
    a = np.load(out / "runs" / "small" / "predictions.npz")
    b = np.load(out / "runs" / "small-l1" / "predictions.npz")
    assert pair["a_only"] == int(np.sum((a["y_pred"] == a["y_true"]) & (b["y_pred"] != b["y_true"])))
    assert 0 <= pair["p_value"] <= 1
    folder = answer["folder"]
    html = open(f"{folder}/compare.html").read()
    assert "McNemar" in html and html.count("data:image/png;base64,") >= 3
    result = run_cli("compare", "small", "binary", "--out", str(out))
    assert result.returncode == 2 and "same test set" in result.stderr
    result = run_cli("train", "logreg", *SMALL, "--C", "0.003", "--name", "small-c", "--out", str(out))
    assert result.returncode == 0, result.stderr
    result = run_cli("compare", "small", "small-l1", "small-c", "--out", str(out), "--json")
    pairs = json.loads(result.stdout)["pairs"]  # each pair a test: judged as one of two, by Holm's adjustment
    assert [p["p_holm"] for p in pairs] == holm([p["p_value"] for p in pairs]) != [p["p_value"] for p in pairs]
    assert [p["significant"] for p in pairs] == [p["p_holm"] < 0.05 for p in pairs]
    result = run_cli("compare", "small", "small-l1", "small-c", "--out", str(out), "--overwrite", "--name", "three")
    assert result.stdout.count("adjusted for 2 pairs (Holm)") == 2, result.stdout
    result = run_cli("compare", "small", "small-l1", "--alpha", "5", "--out", str(out))
    assert result.returncode == 2 and result.stderr.startswith("error: --alpha: the significance level must be")
    result = run_cli("compare", "small", str(out / "runs" / "small"), "--out", str(out))
    assert result.returncode == 2
    assert result.stderr == "error: the run 'small' is given twice: compare needs different runs\n"


@pytest.mark.parametrize("choice, parameter, message", [
    (dict(classes=(0, 10)), "classes", "10 is out of range for the dataset's 10 classes"),
    (dict(classes=(99999999999, 1)), "classes", "99999999999 is out of range"),
    (dict(classes=(0, 1, 1)), "classes", "1 listed more than once"),
    (dict(train_size=5), "train_size", "at least the number of classes, 10, got 5"),
    (dict(classes=(0, 1, 2), test_size=2), "test_size", "at least the number of classes, 3, got 2"),
    (dict(resplit_test_fraction=1.5), "test_fraction", "between 0 and 1"),  # the API's name for it
    (dict(seed=-1), "seed", r"an int in \[0, 4294967295\]; got -1"),
    (dict(seed=True), "seed", r"an int in \[0, 4294967295\]; got True"),
])
def test_data_choices_are_checked_before_any_data_is_loaded(choice, parameter, message, monkeypatch):
    from mnistlab.experiments import pipeline

    monkeypatch.setattr(pipeline, "load_dataset", lambda *a, **k: pytest.fail("data was loaded"))
    with pytest.raises(ParameterError, match=message) as info:
        DataChoice(**choice).load()
    assert info.value.parameter == parameter


@pytest.mark.parametrize("args, message", [
    (["--classes", "0,10"], "--classes: 10 is out of range"),
    (["--classes", "99999999999,1"], "--classes: 99999999999 is out of range"),
    (["--train-size", "5"], "--train-size: must be at least the number of classes"),
    # "(or None for all)": Python's word, where the flag takes no none
    (["--test-size", "0"], "--test-size: must be a whole number of images ≥ 1, got 0; leave it out for all of them"),
    (["--classes", ""], "--classes: takes comma-separated class labels, e.g. 0,1; got ''"),  # was every class
    (["--classes", "0,x"], "--classes: takes comma-separated class labels"),  # was a box of typer's
])
def test_bad_data_options_are_one_line_naming_the_flag(args, message, tmp_path):
    result = run_cli("train", "logreg", *args, "--out", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_a_sweep_figure_places_every_value_none_and_infinity_too():
    from mnistlab.experiments.sweep import sweep_figure

    def swept(name, values):
        """The rows of a sweep of ``name`` over ``values``, and its grid."""
        return [{name: v, "val_accuracy": 0.5 + i / 10, "sparsity": None} for i, v in enumerate(values)], {name: values}

    figure = sweep_figure(*swept("C", [1.0, 0.1]))
    assert list(figure.axes[0].lines[0].get_xdata()) == [0.1, 1.0] and figure.axes[0].get_xscale() == "log"
    figure = sweep_figure(*swept("C", [0.1, float("inf")]))  # inf had no place on the log axis: not drawn
    assert list(figure.axes[0].lines[0].get_xdata()) == ["0.1", "inf"]
    figure = sweep_figure(*swept("random_state", [None, 1]))  # None < 1 failed after every fit
    assert list(figure.axes[0].lines[0].get_xdata()) == ["1", "None"]
    # the x axis is the first parameter of two or more values (max_iter=50 was one x, C three one-dot "lines"),
    # one of one value a fixed setting, said once above the plots, wrapped (in each title, several ran together)
    rows = [{"max_iter": 50, "C": c, "val_accuracy": 0.5, "sparsity": None} for c in (1.0, 0.01, 0.1)]
    figure = sweep_figure(rows, {"max_iter": [50], "C": [1.0, 0.01, 0.1]})
    axes = figure.axes[0]
    assert [list(line.get_xdata()) for line in axes.lines] == [[0.01, 0.1, 1.0]]
    assert axes.get_title() == "Validation accuracy against C" and figure.get_suptitle() == "fixed: max_iter=50"
    many = {name: ["x" * 12] for name in ("solver", "penalty", "tol", "standardize", "random_state", "l1_ratio")}
    rows = [{**{n: v[0] for n, v in many.items()}, "C": c, "val_accuracy": 0.5, "sparsity": None} for c in (1.0, 2.0)]
    assert max(map(len, sweep_figure(rows, {**many, "C": [1.0, 2.0]}).get_suptitle().splitlines())) <= 60
    # layer sizes as the command line writes them, in the order given (not "(32, 16)", "(64,)", "(8,)" as text)
    figure = sweep_figure(*swept("hidden", [(32, 16), (64,), (8,)]))
    assert list(figure.axes[0].lines[0].get_xdata()) == ["32x16", "64", "8"]
    # a line whose every point failed is no line of zeros beside the others' sparsity: nothing was measured
    failed = [{"C": c, "solver": solver, "val_accuracy": None if solver == "lbfgs" else 0.8,
               "sparsity": None if solver == "lbfgs" else 0.3, "error": "x" if solver == "lbfgs" else None}
              for c in (0.1, 1.0) for solver in ("lbfgs", "saga")]
    sparsity = sweep_figure(failed, {"C": [0.1, 1.0], "solver": ["lbfgs", "saga"]}).axes[1]
    assert [np.isnan(line.get_ydata()).all() for line in sparsity.lines] == [True, False]


@pytest.fixture
def own_out(trained, tmp_path):
    """An output folder of this test's own holding a copy of the shared run "small" (the shared folder's
    listing is what other tests check)."""
    import shutil

    out, _ = trained
    shutil.copytree(out / "runs" / "small", tmp_path / "own" / "runs" / "small")
    return tmp_path / "own"


def _copy_run(out, name, copy, change=None):
    """A copy of run ``name`` as ``copy``, with ``change(metrics)`` applied to its metrics.json."""
    import shutil

    shutil.copytree(out / "runs" / name, out / "runs" / copy)
    if change:
        path = out / "runs" / copy / "metrics.json"
        metrics = json.loads(path.read_text())
        change(metrics)
        path.write_text(json.dumps(metrics))


def test_compare_refuses_runs_tested_on_other_images_that_carry_the_same_labels(own_out):
    """Labels alone do not say which images: a paired test on other images would be a wrong p-value."""
    import hashlib

    from mnistlab.experiments.compare import compare_runs
    from mnistlab.errors import ParameterError

    out = own_out
    config = json.loads((out / "runs" / "small" / "config.json").read_text())
    test_images = DataChoice(train_size=1500, test_size=400).load().x_test
    assert config["dataset"]["test_images_sha256"] == hashlib.sha256(test_images).hexdigest()
    _copy_run(out, "small", "small-inverted")  # as if tested on the same labels' images inverted
    path = out / "runs" / "small-inverted" / "config.json"
    inverted_digest = hashlib.sha256(255 - test_images).hexdigest()
    path.write_text(json.dumps({**config, "dataset": {**config["dataset"], "test_images_sha256": inverted_digest}}))
    with pytest.raises(ParameterError, match="small-inverted was tested on other images than small"):
        compare_runs([out / "runs" / "small", out / "runs" / "small-inverted"], out)


@pytest.mark.parametrize("change, message", [
    (lambda m: m["per_class"][0].update(f1="x"), "per_class entry 0 must hold"),
    (lambda m: m["per_class"][3].pop("f1"), "per_class entry 3 must hold"),
    (lambda m: m.update(per_class=[{**row, "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
                                   for row in m["per_class"][:2]],
                        confusion_matrix=[[1, 0], [0, 1]], accuracy=1.0, macro_f1=1.0, top_losses=[]),
     "scores 2 classes, but config.json lists 10"),  # a metrics file consistent in itself, of 2 classes
])
def test_a_damaged_metrics_file_is_run_damage_in_comparisons_and_listings(own_out, change, message):
    """Internal errors in compare before (a TypeError, a broadcast ValueError), and healthy in `runs list`."""
    out = own_out
    copy = "damaged"
    _copy_run(out, "small", copy, change)
    result = run_cli("compare", "small", copy, "--out", str(out))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    listed = json.loads(run_cli("runs", "list", "--out", str(out), "--json").stdout)
    assert message in next(r["damaged"] for r in listed if r["name"] == copy)


def test_a_run_without_its_predictions_is_listed_as_damaged(own_out):
    out = own_out
    _copy_run(out, "small", "no-predictions")
    (out / "runs" / "no-predictions" / "predictions.npz").unlink()
    listed = json.loads(run_cli("runs", "list", "--out", str(out), "--json").stdout)
    assert "predictions.npz: missing" in next(r["damaged"] for r in listed if r["name"] == "no-predictions")


def test_the_runs_table_fits_the_terminal_and_names_each_run_whole(own_out):
    out = own_out
    _copy_run(out, "small", "sklearn-GaussianNB-fashion-mnist-20261207-004449")  # a default name's length
    for width in (80, 100):  # a minimum width for names made it 97 and 110 wide: each row wrapped
        table = run_cli("runs", "list", "--out", str(out), env={"COLUMNS": str(width)}).stdout
        rows = [line for line in table.splitlines() if line[:1] in "┏┃┡│└"]  # the title's path is printed whole
        assert rows and max(map(len, rows)) <= width, table
        names = "".join(line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│"))
        assert "sklearn-GaussianNB-fashion-mnist-20261207-004449" in names and "logreg" in table


def test_a_comparison_reads_each_run_from_one_folder(own_out, monkeypatch):
    import shutil

    from mnistlab.experiments import compare

    out = own_out
    _copy_run(out, "small", "b")
    run, read = out / "runs" / "small", []

    def replaced_first(run_dir, *args):  # as a run trained again with overwrite, just before its predictions
        read.append(run_dir.name)
        if read == ["small"]:
            shutil.copytree(run, out / "again")
            shutil.rmtree(run)
            (out / "again").rename(run)
        return real(run_dir, *args)
    real = compare.read_predictions
    monkeypatch.setattr(compare, "read_predictions", replaced_first)
    compare.compare_runs([run, out / "runs" / "b"], out)
    assert read == ["small", "small", "b"]  # read again: its config and metrics were the old folder's


def test_the_shells_name_the_files_the_writers_write(own_out, tmp_path):
    """The CLI, the API and the server typed a comparison's and a sweep's file names out again ("compare.html",
    "sweep.csv") beside the modules that write them: one renamed there would leave them naming files that are
    not written. Now each is a constant of the writer's (the store's for a comparison, which the server serves
    without importing the plotting)."""
    import shutil

    import mnistlab as ml
    from mnistlab.experiments.store import COMPARE_HTML, COMPARE_JSON, COMPARISONS
    from mnistlab.experiments.sweep import SWEEP_CSV, SWEEP_JSON, SWEEP_PNG, SWEEPS

    shutil.copytree(own_out / "runs" / "small", own_out / "runs" / "again")
    comparison = ml.compare("small", "again", out=own_out, name="named")
    assert comparison.path == own_out / COMPARISONS / "named"
    assert comparison.report_path == comparison.path / COMPARE_HTML and comparison.report_path.is_file()
    assert (comparison.path / COMPARE_JSON).is_file()
    result = run_cli("sweep", "logreg", "--C", "0.1", "--train-size", "200", "--name", "s", "--out", "out",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = Path("out", SWEEPS, "s")
    assert f"table: {folder / SWEEP_CSV}\nplot: {folder / SWEEP_PNG}\n" in result.stdout
    assert all((tmp_path / folder / name).is_file() for name in (SWEEP_JSON, SWEEP_CSV, SWEEP_PNG))


def test_a_sweep_or_comparison_name_in_the_making_is_not_taken_by_another(own_out, tmp_path):
    """Both were checked only at the start and replaced at the end: the second one's results were lost."""
    import os

    from mnistlab.errors import RunExistsError
    from mnistlab.experiments.compare import compare_runs
    from mnistlab.experiments.store import claim_folder
    from mnistlab.experiments.sweep import run_sweep

    out = own_out
    with claim_folder(tmp_path / "sweeps", "same", "sweep"):  # another sweep of that name, still fitting
        with pytest.raises(RunExistsError, match=f"sweep 'same' is being written right now by process {os.getpid()}"):
            run_sweep("logreg", {"C": [0.1]}, DataChoice(train_size=300), tmp_path, name="same")
    _copy_run(out, "small", "small-twin")
    with claim_folder(out / "compare", "held", "comparison"):
        with pytest.raises(RunExistsError, match="comparison 'held' is being written right now"):
            compare_runs([out / "runs" / "small", out / "runs" / "small-twin"], out, name="held")


def test_a_comparison_sweeps_what_a_killed_one_left(own_out):
    import subprocess
    import sys

    from mnistlab.experiments.compare import compare_runs

    out = own_out
    _copy_run(out, "small", "small-again")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = out / "compare" / f".staging-{int(gone.stdout)}-killed-abc123"
    left.mkdir(parents=True)
    (left / "figure.png").write_bytes(b"half")
    compare_runs([out / "runs" / "small", out / "runs" / "small-again"], out, name="after-a-kill")
    assert not left.exists() and (out / "compare" / "after-a-kill" / "compare.html").is_file()


def test_sweep_values_lists_flags_and_repeats(tmp_path):
    import mnistlab as ml
    from mnistlab.errors import ParameterError

    sweep = ml.sweep("numpy-mlp", {"hidden": [[8], [4]], "max_epochs": [1]}, train_size=300, out=tmp_path,
                     progress=False)  # lists crashed drawing the plot, after every fit
    assert [r["hidden"] for r in sweep.results] == [(8,), (4,)] and (sweep.path / "sweep.png").is_file()
    with pytest.raises(ParameterError, match="the value 1 is given twice") as info:
        ml.sweep("logreg", {"C": [1, 0.1, 1]}, train_size=300, out=tmp_path, progress=False)
    assert info.value.parameter == "C"
    result = run_cli("sweep", "logreg", "--C", "0.1,1", "--standardize", "--max-iter", "20", "--train-size", "300",
                     "--out", str(tmp_path), "--json")  # "--grid: give a dict …" before: a flag is one fixed value
    assert result.returncode == 0, result.stderr
    assert [(r["C"], r["standardize"]) for r in json.loads(result.stdout)["results"]] == [(0.1, True), (1.0, True)]


def test_points_that_differ_only_in_values_they_do_not_use_are_one_fit(tmp_path):
    """l1_ratio is used only with an elastic net: with l1 or l2 its values were fitted apart, and the sweep
    picked a "best" among identical fits."""
    import mnistlab as ml
    from mnistlab.errors import ParameterError

    progress = RecordingProgress()
    # the merged point was counted as a fit of its own ("4 of 4 points stopped"), with the fit's time as its own
    with pytest.warns(ml.NotConvergedWarning, match=r"^3 of 3 fits stopped before they converged \(the first, "
                                                    r"penalty=l2, max_iter=2\)"):
        sweep = ml.sweep("logreg", {"penalty": ["l2", "elasticnet"], "l1_ratio": [0.2, 0.8], "max_iter": [2]},
                         train_size=300, out=tmp_path, progress=progress)
    assert progress.starts == [(3, "fit")]  # l2 once, each elastic net
    l2 = [r for r in sweep.results if r["penalty"] == "l2"]
    assert [r["unused"] for r in sweep.results] == ["l1_ratio", "l1_ratio", None, None]
    assert [r["same_fit_as"] for r in sweep.results] == [None, "l1_ratio=0.2", None, None]
    assert l2[0]["fit_seconds"] > 0 and l2[1]["fit_seconds"] is None  # no fit was timed for it
    shared = {"l1_ratio", "fit_seconds", "same_fit_as"}
    assert {k: v for k, v in l2[0].items() if k not in shared} == {k: v for k, v in l2[1].items() if k not in shared}
    csv = (sweep.path / "sweep.csv").read_text().splitlines()
    assert csv[0].endswith(",fit_seconds,converged,unused,same_fit_as") and csv[1].endswith(",False,l1_ratio,")
    assert csv[2].endswith(",,False,l1_ratio,l1_ratio=0.2") and csv[3].endswith(",False,,")
    with pytest.raises(ParameterError,
                       match=r"no point of this sweep uses it \(used only when penalty is 'elasticnet'\)") as info:
        ml.sweep("logreg", {"penalty": ["l1", "l2"], "l1_ratio": [0.2, 0.8]}, train_size=300, out=tmp_path,
                 progress=False)
    assert info.value.parameter == "l1_ratio"
    result = run_cli("sweep", "numpy-softmax", "--optimizer", "sgd,adam", "--beta1", "0.5,0.9", "--max-epochs", "1",
                     "--train-size", "300", "--out", str(tmp_path))
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr  # the table says it
    assert re.search(r"best: optimizer=(sgd|adam, beta1=0\.\d), max_epochs=1 \(", result.stdout), result.stdout


def test_a_sweep_takes_values_that_are_no_dict_keys(tmp_path):
    """class_weight={0: 5.0}, as GridSearchCV takes it: every point was fitted, then the sweep failed on
    "unhashable type: 'dict'" (its values keyed the fits and the plot) and wrote nothing."""
    import mnistlab as ml

    sweep = ml.sweep("sklearn:DecisionTreeClassifier", {"class_weight": [None, {0: 5.0}], "max_depth": [2, 3]},
                     train_size=300, out=tmp_path, progress=False)
    assert [(r["class_weight"], r["max_depth"]) for r in sweep.results] == [(None, 2), (None, 3), ({0: 5.0}, 2),
                                                                            ({0: 5.0}, 3)]
    assert (sweep.path / "sweep.png").is_file() and len(sweep.figure().axes[0].lines) == 2


def test_a_count_and_a_fraction_of_the_same_number_are_two_settings(tmp_path):
    """max_features 1 (one feature) and 1.0 (all of them) were refused as "given twice"; True and 1, which
    scikit-learn reads alike, still are."""
    import mnistlab as ml
    from mnistlab.errors import ParameterError

    sweep = ml.sweep("sklearn:DecisionTreeClassifier", {"max_features": [1, 1.0]}, train_size=300, out=tmp_path,
                     progress=False)
    assert [type(r["max_features"]) for r in sweep.results] == [int, float]
    assert list(sweep.figure().axes[0].lines[0].get_xdata()) == ["1", "1.0"]  # not one place on an axis of numbers
    with pytest.raises(ParameterError, match="the value 1 is given twice"):
        ml.sweep("logreg", {"fit_intercept": [True, 1]}, train_size=300, out=tmp_path, progress=False)


def test_values_that_are_one_setting_as_the_fit_takes_them_are_one_fit(tmp_path):
    """C=[1, 1.0] and cnn's flip=['auto', True] on Fashion-MNIST (where 'auto' is True) were fitted twice each;
    their rows stay, the second with the first's scores."""
    import mnistlab as ml

    for family, grid, fixed, same in [
            ("logreg", {"C": [1, 1.0]}, {"max_iter": [5]}, "C=1"),
            ("cnn", {"flip": ["auto", True]}, {"epochs": [1], "widths": [(8, 16)], "learning_rate": [0.05],
                                               "batch_size": [64], "threads": [1]}, "flip=auto")]:
        progress = RecordingProgress()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # not converged in so few steps
            sweep = ml.sweep(family, {**grid, **fixed}, train_size=300, out=tmp_path, progress=progress)
        assert progress.starts == [(1, "fit")], family
        first, second = sweep.results
        assert [first["same_fit_as"], second["same_fit_as"]] == [None, same]
        assert second["val_accuracy"] == first["val_accuracy"] and second["fit_seconds"] is None
    # stay two fits: max_features 1 (one feature) and 1.0 (all of them); LogisticRegressionCV's Cs=2 (a grid of two
    # values of C) and Cs=(2,) (C=2 alone), which its constraints both take
    for family, grid in [("sklearn:DecisionTreeClassifier", {"max_features": [1, 1.0]}),
                         ("sklearn:LogisticRegressionCV", {"Cs": [2, (2,)], "cv": [2], "max_iter": [20]})]:
        progress = RecordingProgress()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # not converged in so few steps
            ml.sweep(family, grid, train_size=300, out=tmp_path, progress=progress)
        assert progress.starts == [(2, "fit")], family


def test_a_swept_none_is_shown_as_a_setting_not_as_a_gap(tmp_path):
    """max_depth=None was "—" in the table and an empty cell in sweep.csv, as a missing score is."""
    result = run_cli("sweep", "sklearn:DecisionTreeClassifier", "--max-depth", "None,2", "--train-size", "300",
                     "--out", str(tmp_path), "--name", "depth")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "│" in line and "0." in line]
    assert len(rows) == 2 and [row.split("│")[1].strip() for row in rows] == ["None", "2"], result.stdout
    assert rows[0].split("│")[3].strip() == "—"  # the spread of one split's score: none
    lines = (tmp_path / "sweeps" / "depth" / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("max_depth,val_accuracy,val_accuracy_std,")
    assert lines[1].startswith("None,0.") and lines[2].startswith("2,0.") and ",," in lines[1]


def test_cv_is_the_models_own_in_a_sweep_as_in_train_and_the_sweeps_folds_are_folds(tmp_path):
    """`sweep sklearn:LogisticRegressionCV --cv 3` was the sweep's outer folds (train's --cv is the model's):
    the model's cv could not be swept nor set, and nothing said so."""
    result = run_cli("sweep", "sklearn:RidgeClassifierCV", "--cv", "2,3", "--train-size", "100", "--out",
                     str(tmp_path), "--name", "inner", "--json")
    assert result.returncode == 0, result.stderr
    assert [row["cv"] for row in json.loads(result.stdout)["results"]] == [2, 3]
    assert json.loads((tmp_path / "sweeps" / "inner" / "sweep.json").read_text())["cv"] is None  # one split
    folds_of_1 = ("Invalid value for '--folds': Input should be greater than or equal to 2 (see `python -m "
                  "mnistlab sweep --help`)")
    for args, line in ((["logreg", "--C", "1", "--cv", "2"], "--cv: logreg has no cv of its own; the sweep's k-fold "
                                                             "cross-validation is --folds"),
                       (["logreg", "--C", "1", "--folds", "1"], folds_of_1),
                       # beside a swept model cv, not said as --cv's (review)
                       (["sklearn:RidgeClassifierCV", "--cv", "2,3", "--folds", "1"], folds_of_1)):
        result = run_cli("sweep", *args, "--train-size", "100", "--out", str(tmp_path))
        assert result.returncode == 2 and result.stderr.strip() == f"error: {line}", result.stderr
    # more folds than a class has images, beside a swept model cv: it was said as --cv's
    result = run_cli("sweep", "sklearn:RidgeClassifierCV", "--cv", "2,3", "--folds", "50", "--train-size", "100",
                     "--out", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("error: --folds: 50 folds need 50 training images of "
                                                               "each class, and one class has "), result.stderr


def test_runs_given_by_folders_of_any_name_are_compared_under_a_default_name(own_out):
    """The runs' names joined were the default name unchecked: a folder "my run" failed the name's check."""
    import shutil

    from mnistlab.experiments.compare import compare_runs

    elsewhere = own_out / "elsewhere" / "my run"
    shutil.copytree(own_out / "runs" / "small", elsewhere)
    folder, _ = compare_runs([own_out / "runs" / "small", elsewhere], own_out)
    assert re.fullmatch(r"small-vs-my_run-[0-9a-f]{8}", folder.name) and (folder / "compare.html").is_file()


def test_runs_of_the_same_names_in_other_folders_do_not_replace_their_comparison(own_out):
    """The default name knew the runs by name only: comparing another store's runs "a" and "b" replaced the
    comparison of this store's "a" and "b" in silence."""
    import shutil

    from mnistlab.experiments.compare import compare_runs

    _copy_run(own_out, "small", "other", lambda m: m.update(probabilities_note="these are scores"))
    other_store = own_out / "other-store" / "runs"
    for name, copy in (("small", "other"), ("other", "small")):  # the same names, the runs swapped
        shutil.copytree(own_out / "runs" / name, other_store / copy)
    first, result = compare_runs([own_out / "runs" / "small", own_out / "runs" / "other"], own_out)
    second, _ = compare_runs([other_store / "small", other_store / "other"], own_out)
    again, _ = compare_runs([own_out / "runs" / "small", own_out / "runs" / "other"], own_out)
    assert first.name == again.name == "small-vs-other" and re.fullmatch(r"small-vs-other-[0-9a-f]{8}", second.name)
    assert json.loads((first / "compare.json").read_text())["runs"][0]["run_dir"] == str(
        (own_out / "runs" / "small").resolve())
    # a log-loss of scores, not probabilities, is marked and its note said beside the table
    assert [r["probabilities_note"] for r in result["runs"]] == [None, "these are scores"]
    assert "* other: these are scores." in (first / "compare.html").read_text()


def test_the_runs_seed_fills_random_state_unless_one_is_given_none_too():
    from mnistlab.experiments.pipeline import build_model

    assert build_model("logreg", {}, 3).random_state == 3
    assert build_model("logreg", {"random_state": None}, 3).random_state is None  # unseeded, as asked


def test_the_same_comparison_asked_for_at_once_is_brought_up_to_date_not_refused(own_out):
    """Under its default name it waits for the one being written (three threads: two were refused, as were
    two browser tabs comparing the same runs)."""
    import shutil
    import threading

    from mnistlab.experiments.compare import compare_runs

    shutil.copytree(own_out / "runs" / "small", own_out / "runs" / "other")
    runs = [own_out / "runs" / "small", own_out / "runs" / "other"]
    outcomes = []

    def compare():
        try:
            outcomes.append(compare_runs(runs, own_out)[0].name)
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            outcomes.append(exc)

    threads = [threading.Thread(target=compare) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert outcomes == ["small-vs-other"] * 3


def test_a_comparison_waits_for_its_name_a_bounded_while(own_out, monkeypatch):
    """One held longer (a process stopped with Ctrl-Z) is refused in the end, not waited for for ever."""
    import shutil

    from mnistlab.errors import RunExistsError
    from mnistlab.experiments import store
    from mnistlab.experiments.compare import compare_runs

    shutil.copytree(own_out / "runs" / "small", own_out / "runs" / "held")
    monkeypatch.setattr(store, "WAIT_ATTEMPTS", 3)
    with store.claim_folder(own_out / "compare", "small-vs-held", "comparison"):
        with pytest.raises(RunExistsError, match="comparison 'small-vs-held' is being written right now"):
            compare_runs([own_out / "runs" / "small", own_out / "runs" / "held"], own_out)


def test_a_runs_log_loss_and_top_losses_follow_from_its_predictions_file(tmp_path):
    """GaussianNB's float64 probabilities of 0 were clipped at float64's epsilon for the log-loss (a loss of 36
    each), at 1e-12 for the top losses (27.6), and stored as float32 (15.9 from the file)."""
    from sklearn.metrics import log_loss

    import mnistlab as ml

    run = ml.load_run(train("sklearn:GaussianNB", {}, DataChoice(train_size=500, test_size=200), tmp_path,
                            name="nb", embedding=False))
    stored = np.load(run.path / "predictions.npz")
    expected = log_loss(stored["y_true"], stored["proba"], labels=range(10))
    assert run.metrics["log_loss"] == pytest.approx(expected, rel=1e-5)
    assert run.evaluate()["log_loss"] == pytest.approx(expected, rel=1e-5)
    worst = run.metrics["top_losses"][0]
    assert worst["loss"] == pytest.approx(-np.log(max(stored["proba"][worst["index"], worst["true"]],
                                                      np.finfo(np.float32).eps)), rel=1e-5)


def test_a_sparse_model_draws_its_zero_weights_and_a_dense_one_does_not(tmp_path):
    for penalty, C, drawn in (("l1", 0.05, True), ("l2", 1.0, False)):
        folder = train("logreg", {"penalty": penalty, "C": C}, DataChoice(train_size=500, test_size=100), tmp_path,
                       name=penalty, embedding=False)
        fraction = json.loads((folder / "metrics.json").read_text())["zero_weight_fraction"]
        assert (fraction > 0.01) is drawn and any(folder.rglob("sparsity.png")) is drawn, (penalty, fraction)


def test_a_data_choice_refuses_an_empty_data_dir_as_the_api_does():
    with pytest.raises(ParameterError, match="data_dir: must be a path"):  # it became the current folder
        DataChoice(data_dir="")


def test_runs_of_long_names_are_compared_with_their_names_shortened_in_the_figures_only(own_out):
    long_a, long_b = "a" * 89 + "-20261207-1", "a" * 89 + "-20261207-2"  # 100 characters, the most allowed
    for name, C in ((long_a, 0.1), (long_b, 1.0)):
        train("logreg", {"C": C}, DataChoice(train_size=300, test_size=100), own_out, name=name, embedding=False)
    result = run_cli("compare", long_a, long_b, "--out", str(own_out), "--json")
    # 100 characters left the figures no room: "constrained_layout not applied because axes sizes collapsed"
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["pairs"][0]["a"] == long_a  # whole where there is room
    from mnistlab.experiments.compare import _label

    assert len(_label(long_a)) <= 40 and _label(long_a) != _label(long_b) and _label(long_a).endswith("20261207-1")


def test_a_run_of_a_scikit_learn_classifier_that_is_gone_is_damage_in_a_comparison(own_out):
    import shutil

    from mnistlab.errors import RunDamagedError
    from mnistlab.experiments.compare import compare_runs

    shutil.copytree(own_out / "runs" / "small", own_out / "runs" / "gone")
    config = json.loads((own_out / "runs" / "gone" / "config.json").read_text())
    config["model"] = "sklearn:NoSuchClassifier"  # trained with a classifier a later scikit-learn removed
    (own_out / "runs" / "gone" / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunDamagedError, match="gone/config.json: .*NoSuchClassifier"):  # named no file
        compare_runs([own_out / "runs" / "small", own_out / "runs" / "gone"], own_out)
