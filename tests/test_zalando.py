"""Zalando's benchmark: the grid as data, today's names for 2017's settings, the paper's numbers,
resumable runs and recorded failures."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run_cli
from mnistlab.experiments import zalando
from mnistlab.experiments.store import RunStore


def test_the_grid_translated_to_todays_scikit_learn():
    configurations = zalando.configurations()
    assert len(configurations) == 137  # 143 in the grid; LogisticRegression's ovr and multinomial are one run now
    lr = [c for c in configurations if c.classifier == "LogisticRegression"]
    assert len(lr) == 6 and {c.params["l1_ratio"] for c in lr} == {0.0, 1.0}
    assert all("multi_class" not in c.params and "penalty" not in c.params and c.params["solver"] == "saga" for c in lr)
    assert "multi_class='ovr' is gone" in lr[0].mapping
    gb = [c for c in configurations if c.classifier == "GradientBoostingClassifier"]
    assert {c.params["loss"] for c in gb} == {"log_loss"} and {c.original["loss"] for c in gb} == {"deviance"}
    mlp = next(c for c in configurations if c.classifier == "MLPClassifier")
    assert isinstance(mlp.params["hidden_layer_sizes"], tuple)
    assert all(c.params["standardize"] for c in configurations)


def test_the_papers_numbers():
    svc = next(c for c in zalando.configurations(["SVC"]) if c.original == {"C": 10.0, "kernel": "rbf"})
    assert zalando.paper_accuracy(svc, "fashion-mnist") == 0.897 and zalando.paper_accuracy(svc, "mnist") == 0.973
    assert zalando.paper_best("SVC", "fashion-mnist") == (0.897, {"C": 10, "kernel": "rbf"})
    assert zalando.paper_best("GaussianProcessClassifier", "fashion-mnist") == (None, {})
    quick = zalando.quick_configurations()
    assert len(quick) == 13 and "GaussianProcessClassifier" not in {c.classifier for c in quick}


def test_failures_are_recorded_the_rest_go_on_and_a_rerun_skips_what_finished(tmp_path, monkeypatch):
    import mnistlab as ml

    data = zalando._data()
    small = {"LinearSVC": {"loss": ["hinge", "squared_hinge"], "penalty": ["l1", "l2"], "C": [1.0],
                           "multi_class": ["ovr"]},
             "GaussianProcessClassifier": data["grid"]["GaussianProcessClassifier"]}
    monkeypatch.setattr(zalando, "_data", lambda: {**data, "grid": small})  # 4 LinearSVC runs, not 24

    def benchmark():
        return ml.zalando_benchmark(classifiers=["LinearSVC", "GaussianProcessClassifier"], train_size=300,
                                    test_size=100, out=tmp_path, progress=False).rows

    rows = benchmark()
    by_status = {s: [r for r in rows if r["status"].startswith(s)] for s in ("not run", "failed", "done")}
    assert len(rows) == 6 and len(by_status["not run"]) == 2 and "29 GB" in by_status["not run"][0]["error"]
    # LinearSVC's dual problem, 2017's default, refuses l1 with either loss (nor has the paper a result there)
    assert [(r["params"]["loss"], r["params"]["penalty"]) for r in by_status["failed"]] == [
        ("hinge", "l1"), ("squared_hinge", "l1")]
    assert all("penalty" in r["error"] and "dual=True, 2017's default" in r["mapping"] for r in by_status["failed"])
    assert len(by_status["done"]) == 2 and all(0 < r["accuracy"] <= 1 and r["paper_best"] == 0.836
                                               for r in by_status["done"])
    # a solver stopped at its iteration limit says so (the paper's runs converged): LinearSVC's, on 300 images
    assert {r["status"] for r in by_status["done"]} <= {"done", "done (did not converge)"}
    assert all(("did not converge" in r["status"]) == (not ml.load_run(r["run"], out=tmp_path).metrics["converged"])
               for r in by_status["done"])
    names = {r["run"] for r in by_status["done"]}
    assert names <= {s.name for s in RunStore(tmp_path).list()}
    table = (tmp_path / "benchmarks" / "zalando-fashion-mnist" / "results.md").read_text()
    assert table.count("\n") == 10 and "failed: " in table
    # a subset's accuracies beside the paper's full sets' say so
    assert table.startswith("Training / test images: ours 300 / 100, the paper's 60,000 / 10,000.")

    again = benchmark()
    assert {r["run"] for r in again if r["status"].startswith("done (earlier)")} == names
    assert [r["status"] for r in again if r["run"] not in names] == [r["status"] for r in rows if r["run"] not in names]


def test_a_failure_not_of_a_configuration_stops_the_grid_and_a_failed_one_is_exit_code_2(tmp_path, monkeypatch):
    """A full disk was recorded as every configuration's failure, and the command exited 0."""
    import errno

    import mnistlab as ml
    from mnistlab.experiments import pipeline

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path))
    monkeypatch.setattr(pipeline, "train", full_disk)
    with pytest.raises(OSError, match="No space left"):
        ml.zalando_benchmark(quick=True, classifiers=["GaussianNB", "SVC"], train_size=300, test_size=100,
                             out=tmp_path, progress=False)
    monkeypatch.undo()
    # a configuration failed by its own settings is recorded, the rest go on, and the exit code says so
    from typer.testing import CliRunner

    from mnistlab.cli import app

    [configuration] = zalando.quick_configurations(["LinearSVC"])
    failed = {**zalando._row(configuration, "fashion-mnist", "x"), "status": "failed", "error": "ParameterError: …"}
    monkeypatch.setattr(ml.api, "zalando_benchmark", lambda **kwargs: ml.api.Benchmark(tmp_path, [failed]))
    for json_flag in ([], ["--json"]):
        result = CliRunner().invoke(app, ["benchmark", "zalando", "--out", str(tmp_path), *json_flag])
        assert result.exit_code == 2 and "failed" in result.output, result.output
        # exit code 2 with nothing on stderr said why: the reasons were in the table, or the JSON, alone
        assert "1 of 1 configurations failed; the first, LinearSVC " in result.stderr and \
            result.stderr.rstrip().endswith(": ParameterError: …"), result.stderr


def test_the_command_line_prints_the_table_and_json(tmp_path):
    args = ["benchmark", "zalando", "--quick", "--classifiers", "GaussianNB", "--train-size", "300",
            "--test-size", "100", "--out", str(tmp_path)]
    table = run_cli(*args)
    assert table.returncode == 0, table.stderr
    assert "GaussianNB" in table.stdout and "0.511" in table.stdout and "results.md" in table.stdout
    (row,) = json.loads(run_cli(*args, "--json").stdout)["rows"]
    assert row["status"] == "done (earlier)" and row["paper"] == 0.511


@pytest.mark.parametrize("names, message", [
    ("", "--classifiers: an empty name among them; the grid's classifiers: PassiveAggressiveClassifier, "),
    ("SVC,,LinearSVC", "--classifiers: an empty name among them"),  # was run as SVC,LinearSVC
    ("SVC, SVC", "--classifiers: 'SVC' is given twice"),  # was run once
])
def test_the_command_line_refuses_an_empty_classifier_and_one_given_twice(tmp_path, names, message):
    result = run_cli("benchmark", "zalando", "--quick", "--classifiers", names, "--out", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith(f"error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "benchmarks").exists()


def test_a_classifier_given_twice_is_refused_by_the_api():
    import mnistlab as ml

    with pytest.raises(ml.ParameterError, match="^classifiers: 'GaussianNB' is given twice$"):
        zalando.configurations(["GaussianNB", "SVC", "GaussianNB"])
    for classifiers in ([1], [["SVC"]]):  # a bare TypeError (sequence item 0: expected str; unhashable list)
        with pytest.raises(ml.ParameterError, match="^classifiers: give the classifiers' names as strings"):
            zalando.configurations(classifiers)


def test_a_configuration_on_other_data_is_run_again_not_taken_from_earlier(tmp_path, mnist_dir):
    """Its run's name held the parameters and sizes alone: a benchmark on another folder of the dataset
    reported the earlier folder's accuracy as "done (earlier)"."""
    import shutil

    import mnistlab as ml

    other = tmp_path / "other-mnist"
    shutil.copytree(mnist_dir, other)

    def benchmark(folder):
        return ml.zalando_benchmark(dataset="mnist", quick=True, classifiers=["GaussianNB"], train_size=300,
                                    test_size=100, data_dir=folder, out=tmp_path / "out", progress=False).rows[0]

    first, second = benchmark(mnist_dir), benchmark(other)
    assert first["run"] != second["run"] and second["status"] == "done"
    assert ml.load_run(first["run"], out=tmp_path / "out").config["command"] == (  # the CLI's, made up, before
        "mnistlab.zalando_benchmark(dataset='mnist', classifiers=['GaussianNB'], train_size=300, test_size=100, "
        "quick=True)")
    for path in other.iterdir():  # the same bytes, touched (copied again, reinstalled): nothing to run again
        os.utime(path)
    assert benchmark(other)["status"] == "done (earlier)"
    before = ml.load_run(second["run"], out=tmp_path / "out").config["dataset"]["test_images_sha256"]
    for part in ("images-idx3", "labels-idx1"):  # another test set in the same folder: its training images
        shutil.copyfile(other / f"train-{part}-ubyte.gz", other / f"t10k-{part}-ubyte.gz")
    changed = benchmark(other)  # was "done (earlier)", with the accuracy on the test set the files held before
    assert changed["status"] == "done" and changed["run"] == second["run"]
    assert ml.load_run(changed["run"], out=tmp_path / "out").config["dataset"]["test_images_sha256"] != before


def test_settings_the_grid_leaves_to_defaults_changed_since_2017_get_2017s_values():
    """scikit-learn's defaults have moved (SVC's gamma, the SGD-style classifiers' passes and tolerance,
    Perceptron's elasticnet mix, MLPClassifier's patience, LinearSVC's dual): the grid's runs used the old ones."""
    expected = {"SVC": {"gamma": "auto"}, "Perceptron": {"max_iter": 5, "tol": None, "l1_ratio": 0.0},
                "MLPClassifier": {"n_iter_no_change": 2}, "LinearSVC": {"dual": True}}
    for classifier, values in expected.items():
        for configuration in zalando.configurations([classifier]):
            assert values.items() <= configuration.params.items()
            assert all(f"{k}={v!r}, 2017's default" in configuration.mapping for k, v in values.items())


def test_a_quick_benchmark_refuses_a_size_of_0_as_the_full_one_does(tmp_path):
    import mnistlab as ml

    for sizes in ({"train_size": 0}, {"test_size": 0}):  # taken for "not given": 2,000 / 1,000 images
        with pytest.raises(ml.ParameterError, match=f"{next(iter(sizes))}: "):
            ml.zalando_benchmark(quick=True, classifiers=["GaussianNB"], out=tmp_path, progress=False, **sizes)


def test_the_data_and_sizes_are_checked_before_any_configuration(tmp_path, mnist_dir):
    """Each configuration failed on its own with the same error (13 of 13 rows written as failed)."""
    import mnistlab as ml

    for problem, kwargs in (("DatasetError", dict(dataset="fashion-mnist", data_dir=str(mnist_dir))),
                            ("ParameterError", dict(train_size=10**9))):
        with pytest.raises(getattr(ml, problem)):
            ml.zalando_benchmark(classifiers=["GaussianNB", "SVC"], out=tmp_path, progress=False, **kwargs)
        assert not (tmp_path / "benchmarks").exists() and not (tmp_path / "runs").exists()
