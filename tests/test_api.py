"""The Python API: every function, every display, and the docstring examples, on small subsets."""

from __future__ import annotations

import doctest
import io
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import mnistlab as ml
from conftest import run_cli
from fixtures.photos import make_photo

SMALL = dict(train_size=1000, test_size=300)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("api-out")


@pytest.fixture(scope="module")
def run(out):
    return ml.train("logreg", C=0.1, name="api", out=out, progress=False, **SMALL)


def test_train_returns_a_complete_run(run, out):
    assert run.name == "api" and run.path == out / "runs" / "api"
    assert run.config["model"] == "logreg" and run.config["params"]["C"] == 0.1
    assert run.config["command"].startswith("mnistlab.train('logreg'")
    assert 0.7 < run.metrics["accuracy"] <= 1
    assert run.classes[0] == "T-shirt/top" and len(run.classes) == 10
    assert run.report_path.is_file()
    assert run.model.coef_.shape == (10, 784)  # the fitted estimator itself
    p = run.predictions
    assert p.proba.shape == (300, 10) and np.array_equal(p.y_pred, p.proba.argmax(axis=1))
    assert len(run.dataset.y_test) == 300 and np.array_equal(run.dataset.y_test, p.y_true)


def test_load_run_by_name_or_path_gives_the_same_run(run, out):
    for key in ("api", str(run.path), run.path):
        loaded = ml.load_run(key, out=out)
        assert loaded.path == run.path and loaded.metrics == run.metrics
    with pytest.raises(ml.RunNotFoundError):
        ml.load_run("nope", out=out)


def test_every_figure_is_a_matplotlib_figure(run):
    names = run.figure_names()
    assert {"confusion_matrix", "wrong", "coefficients", "learning_curves"} <= set(names)
    for name in names:
        assert isinstance(run.figure(name), Figure), name
    with pytest.raises(ml.ParameterError, match="no figure"):
        run.figure("nonsense")


def test_the_figures_listed_are_those_figure_draws_not_the_files_training_wrote(run, tmp_path):
    import shutil

    copy = tmp_path / "runs" / "api"
    shutil.copytree(run.path, copy)
    shutil.rmtree(copy / "plots")  # it had listed ['embedding'] alone, while figure() drew every one
    names = ml.load_run(copy).figure_names()
    assert names == run.figure_names() and {"confusion_matrix", "coefficients", "learning_curves"} <= set(names)
    assert "sparsity" not in names and all(isinstance(ml.load_run(copy).figure(n), Figure) for n in names[:3])


def test_the_figures_are_listed_without_loading_the_model_where_the_run_says_what_it_has(run, tmp_path,
                                                                                         monkeypatch):
    """The list asked each figure's own test, two of them the model's, so listing loaded the model (an sklearn run's
    file: seconds); the run's metrics say whether it has weight images now, and a run written before they said so
    asks its model, and lists the same."""
    import shutil

    from mnistlab.models import serialization

    names = run.figure_names()
    older = tmp_path / "runs" / "older"
    shutil.copytree(run.path, older)
    metrics = json.loads((older / "metrics.json").read_text())
    assert metrics.pop("has_weight_images") is True
    (older / "metrics.json").write_text(json.dumps(metrics))
    assert ml.load_run(older).figure_names() == names and "coefficients" in names
    monkeypatch.setattr(serialization, "load_model", lambda *args, **kwargs: pytest.fail("the model was loaded"))
    assert ml.load_run(run.path).figure_names() == names


def test_a_dollar_in_a_name_is_drawn_as_it_is_not_as_maths(run, tmp_path):
    import dataclasses
    import shutil

    from matplotlib.text import Text

    from mnistlab.plots import png_bytes

    folders = [tmp_path / "x$y$_z", tmp_path / "a$\\foo$"]  # runs compared by their folders' paths, any name
    for folder in folders:
        shutil.copytree(run.path, folder)
    comparison = ml.compare(*folders, out=tmp_path)  # rendering "a$\foo$" as maths was a ValueError: "a bug"
    labels = [t.get_text() for t in comparison.figure("accuracy").findobj(Text) if "$" in t.get_text()]
    assert {"a\\$\\foo\\$", "x\\$y\\$_z"} <= set(labels)  # each $ escaped, which matplotlib draws as $
    page = comparison.report_path.read_text()
    assert "minus x$y$_z" in page and "\\$" not in page  # the captions, HTML, have names as they are
    prediction = dataclasses.replace(run.predict(run.dataset.x_test[0]), source="p$\\foo$.png")
    assert png_bytes(prediction.explain())  # a photo's name, in the title


def test_a_fit_that_did_not_converge_is_warned_of_and_shown_on_the_card(out):
    # the command line printed the fit message; a notebook showed a finished bar and a card without it
    with pytest.warns(ml.NotConvergedWarning, match=r"^short: stopped at max_iter=3 "):
        run = ml.train("logreg", max_iter=3, train_size=500, test_size=100, name="short", out=out,
                       progress=False, embedding=False)
    assert '<span style="color:#b45309">stopped at max_iter=3' in run._repr_html_()
    result = run_cli("train", "logreg", "--max-iter", "3", "--train-size", "500", "--test-size", "100",
                     "--no-embedding", "--name", "short-cli", "--out", str(out))
    assert result.returncode == 0 and "stopped at max_iter=3" in result.stdout and "warning" not in result.stderr


def test_evaluate_reproduces_the_metrics(run):
    assert run.evaluate()["accuracy"] == pytest.approx(run.metrics["accuracy"])
    for arguments in ({"data_dir": ""}, {"data_dir": 0}, {"dataset": ""}):  # were the run's own data, silently
        with pytest.raises((ml.ParameterError, ml.DatasetError)):
            run.evaluate(**arguments)


def test_evaluate_on_a_dataset_of_other_classes_is_refused(run, mnist_dir):
    # scored the model's T-shirt/top against the digit 0: "accuracy 0.0668", exit code 0
    with pytest.raises(ml.ParameterError, match=r"^dataset: mnist's classes \(0, 1, 2, …\) are not the run's "
                                                r"\(T-shirt/top, Trouser, Pullover, …\)"):
        run.evaluate(dataset="mnist", data_dir=mnist_dir)
    assert run.evaluate(dataset="fashion-mnist")["accuracy"] == pytest.approx(run.metrics["accuracy"])


def test_an_opened_photo_is_predicted_as_its_file_is_and_left_as_it_was(run, tmp_path):
    from PIL import ImageFilter

    big = Image.fromarray(255 - run.dataset.x_test[1]).resize((1400, 1400), Image.BICUBIC)
    photo = Image.new("RGB", (2400, 1800), (228, 222, 210))
    photo.paste(Image.merge("RGB", [big.filter(ImageFilter.GaussianBlur(3))] * 3), (500, 200))
    path = tmp_path / "big.jpg"
    photo.save(path, quality=90)
    from_file = run.predict(path).pixels
    # decoded in full and reduced here, where the file's JPEG is reduced by its decoder: 7 grey levels apart
    for opened in (Image.open(path), Image.open(io.BytesIO(path.read_bytes()))):
        assert np.array_equal(run.predict(opened).pixels, from_file)
        opened.load()  # the caller's image is still the whole photo
        assert opened.size == (2400, 1800) and opened.mode == "RGB"
    frames = [Image.fromarray(255 - run.dataset.x_test[i]).resize((280, 280)) for i in (0, 1)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    second = Image.open(buffer)
    second.seek(1)  # the frame asked for, not the file's first
    assert np.array_equal(run.predict(second).pixels, run.predict(frames[1].convert("P").convert("L")).pixels)
    buffer = io.BytesIO()
    frames[0].save(buffer, "TGA")  # a format of Pillow's that photos are not read in: taken as an image
    assert run.predict(Image.open(buffer)).label == run.predict(frames[0]).label
    with Image.open(path) as closed:
        pass
    with pytest.raises(ml.PhotoError, match="file was closed before it was decoded"):  # Pillow's AssertionError
        run.predict(closed)


def test_predict_takes_every_kind_of_input(run, tmp_path):
    image = run.dataset.x_test[0]
    expected = run.predictions.y_pred[0]
    assert run.predict(image).label == expected
    assert run.predict(image / 255.0).label == expected  # floats in [0, 1]
    assert run.predict(image.reshape(784)).label == expected
    batch = run.predict(run.dataset.x_test[:4])
    assert [p.label for p in batch] == list(run.predictions.y_pred[:4])
    photo = make_photo(image, np.random.default_rng(0), "jpeg")
    path = tmp_path / "shirt.jpg"
    path.write_bytes(photo)
    answers = [run.predict(path), run.predict(str(path)), run.predict(photo),
               run.predict(Image.open(io.BytesIO(photo)))]
    assert len({a.label for a in answers}) == 1 and answers[0].source == "shirt.jpg"
    assert [p.label for p in run.predict([path, image])] == [answers[0].label, expected]
    prediction = answers[0]
    assert prediction.class_name == run.classes[prediction.label]
    assert prediction.probabilities.shape == (10,) and prediction.pixels.shape == (28, 28)
    assert prediction.contributions.shape == (10, 784)
    titles = [ax.get_title() for ax in prediction.explain().axes]
    assert "your photo (grayscale)" in titles and "object found" in titles
    # an image given as the input: shown once, as what the model sees, not also as "your photo"
    titles = [ax.get_title() for ax in run.predict(image).explain().axes]
    assert "your photo (grayscale)" not in titles and "what the model sees (28×28)" in titles
    assert [t["label"] for t in prediction.top(10)] == list(np.argsort(-prediction.probabilities, kind="stable"))
    from mnistlab.inference.predictor import top_classes

    tied = np.array([0.5, 0.0, 0.0, 0.5])  # KNN's two neighbours: argmax, the prediction, picks class 0
    assert [t["label"] for t in top_classes(tied, list("abcd"), 2)] == [0, 3]  # [3, 0]: led by another class
    card = ml.Prediction(0, "a", tied, prediction.pixels, list("abcd"), "tie")._repr_html_()
    assert card.index(">a<") < card.index(">d<")  # the bar drawn as the prediction's is the prediction's
    for k in (0, -3):  # a slice would give none, or all but 3
        with pytest.raises(ml.ParameterError, match="whole number ≥ 1"):
            prediction.top(k)
    with pytest.raises(ml.ParameterError):
        run.predict(np.zeros((5, 5)))
    with pytest.raises(ml.PhotoError):
        run.predict(b"not an image")


def test_displays_render_with_their_key_numbers(run, out):
    card = run._repr_html_()
    assert f"{run.metrics['accuracy']:#.4g}" in card and "report.html" in card and "T-shirt/top" in card
    from mnistlab import html

    assert ">0.7300<" in html.table(["accuracy"], [[0.73]])  # as many digits as 0.7633 beside it: not "0.73"
    assert ">1523<" in html.table(["fit s"], [[1523.0]])  # not "1523."
    prediction = run.predict(run.dataset.x_test[0])
    card = prediction._repr_html_()
    assert prediction.class_name in card and f"{prediction.probabilities.max():.1%}" in card
    assert card.count("data:image/png;base64,") == 2  # the input and the evidence map
    card = run.dataset._repr_html_()
    assert "1,000 training and 300 test images" in card and "T-shirt/top" in card and "data:image/png" in card
    assert "fashion-mnist" in repr(run.dataset) and len(repr(run.dataset)) < 400
    listing = ml.runs(out=out)
    assert "api" in [r.name for r in listing] and listing["api"].path == run.path
    assert "api" in listing._repr_html_()


def test_compare_and_sweep(run, out):
    other = ml.train("logreg", C=0.001, name="api-strong", out=out, progress=False, **SMALL)
    comparison = ml.compare(run, "api-strong", out=out)
    pair = comparison.pairs[0]
    assert pair["a"] == "api" and pair["b"] == "api-strong" and 0 <= pair["p_value"] <= 1
    assert comparison.report_path.is_file()
    assert f"{pair['p_value']:.4g}" in comparison._repr_html_()
    assert isinstance(comparison.figure("confusion_delta_1"), Figure)
    assert other.metrics["accuracy"] != run.metrics["accuracy"]

    sweep = ml.sweep("logreg", {"C": [0.01, 0.1], "penalty": ["l2", "l1"]}, train_size=600, out=out,
                     progress=False)
    assert len(sweep.results) == 4 and sweep.best["val_accuracy"] == max(r["val_accuracy"] for r in sweep.results)
    assert "★" in sweep._repr_html_() and isinstance(sweep.figure(), Figure)
    assert "0.01</td>" in sweep._repr_html_() and "0.01000" not in sweep._repr_html_()  # as given, in every column
    with pytest.raises(ml.ParameterError):
        ml.sweep("logreg", {"C": []}, out=out)


def test_a_grid_takes_an_array_or_a_range_as_parameter_grid_does(out):
    """np.logspace(-2, 0, 3) and range(…) were refused as "give a dict of hyperparameter → non-empty list of
    values"; NumPy's numbers are swept as Python's (0.01 in sweep.json, not np.float64(0.01))."""
    sweep = ml.sweep("logreg", {"C": np.logspace(-2, 0, 3), "max_iter": range(500, 501)}, train_size=300, out=out,
                     progress=False)
    assert [(type(r["C"]), r["C"], r["max_iter"]) for r in sweep.results] == [(float, 0.01, 500), (float, 0.1, 500),
                                                                               (float, 1.0, 500)]
    for values, got in [(0.1, "a float"), ("0.1", "a str"), ({0.1, 1.0}, "a set"), (np.ones((2, 2)), "a 2-D array"),
                        (np.array([]), "empty")]:
        with pytest.raises(ml.ParameterError, match=f"non-empty list of values; C's is {got}$"):
            ml.sweep("logreg", {"C": values}, out=out)
    with pytest.raises(ml.ParameterError, match="^weights: cannot be saved: model files, runs and sweeps keep "):
        ml.sweep("sklearn:KNeighborsClassifier", {"weights": ["uniform", lambda d: 1 / (d + 1e-9)]}, out=out)
    priors = ml.sweep("sklearn:GaussianNB", {"priors": [None, np.full(10, 0.1)]}, train_size=300, out=out,
                      progress=False)  # an array as a value: "the truth value of an array … is ambiguous" before
    assert [r["priors"] is None for r in priors.results] == [True, False]
    with pytest.raises(ml.ParameterError, match="is given twice"):
        ml.sweep("sklearn:GaussianNB", {"priors": [np.full(10, 0.1), np.full(10, 0.1)]}, out=out)
    with pytest.raises(ml.ParameterError, match="^max_iter: 999,999,999 values are given: at most 1,000") as info:
        ml.sweep("logreg", {"max_iter": range(1, 10**9)}, out=out)  # made a list of first: 40 GB
    assert info.value.parameter == "max_iter"  # was "grid": the command line said --grid, which it has not
    values = [(x, round(y, 4)) for x, y in zip(*sweep.figure().axes[0].lines[0].get_data())]
    sweep.results.sort(key=lambda r: -r["val_accuracy"])  # in a notebook, say: each score stays at its own C
    assert [(x, round(y, 4)) for x, y in zip(*sweep.figure().axes[0].lines[0].get_data())] == values


@pytest.mark.parametrize("setting, message", [
    (dict(cv=1), "k ≥ 2 folds, got 1"),
    (dict(cv=61), "61 folds need 61 training images of each class, and one class has 60"),
    (dict(val_fraction=1.5), "a fraction between 0 and 1, got 1.5"),
    (dict(val_fraction=0.01), "0.01 of 600 examples cannot be held out stratified: parts of 594 and 6 rows"),
    (dict(val_fraction=0.5, cv=3), "a sweep cross-validated in folds holds out no share"),  # it was ignored
])
def test_a_sweeps_validation_that_cannot_be_made_is_refused_before_any_fit(setting, message, out, monkeypatch):
    from mnistlab.models import get_family

    monkeypatch.setattr(get_family("logreg"), "fit", lambda *args, **kwargs: pytest.fail("a model was fitted"))
    with pytest.raises(ml.ParameterError, match=message) as info:
        ml.sweep("logreg", {"C": [0.1]}, train_size=600, out=out, progress=False, **setting)
    assert info.value.parameter == next(iter(setting))


def test_models_and_recipes_listings():
    assert {"logreg", "cnn", "numpy-mlp"} <= set(ml.families())
    # a docstring's first paragraph, whole: its first line stopped at "trained on mean"
    assert ml.families()["numpy-logreg"].endswith("trained on mean binary cross-entropy + alpha/2·‖w‖².")
    assert "fashion-logreg-saga" in ml.recipes.list()
    assert "logreg" in ml.train.__doc__ and "cnn" in ml.train.__doc__
    # which train takes, as `mnistlab models` lists it: below the families, not one of them
    assert ml.train.__doc__.count("- ``sklearn:NAME``: any scikit-learn classifier") == 1
    assert "sklearn:NAME" in ml.families.__doc__ and not any(":" in name for name in ml.families())


@pytest.mark.parametrize("names, message", [
    ([], "a non-empty list of recipe names"),  # was every recipe: 14 full-size trainings
    ("lenet", "a non-empty list of recipe names"),  # was its letters, 'l' unknown
    (["lenet", "lenet"], "named twice"),
    ([["lenet"]], "unknown recipe"),
])
def test_recipes_to_run_are_a_list_of_distinct_names(names, message, out, monkeypatch):
    from mnistlab.experiments import recipes

    monkeypatch.setattr(recipes, "train_all", lambda *args, **kwargs: pytest.fail("a recipe was run"))
    with pytest.raises(ml.ParameterError, match=message):
        ml.recipes.run_all(names, out=out, progress=False)
    with pytest.raises(ml.ParameterError, match="unknown recipe"):
        ml.recipes.run(["lenet"], out=out, progress=False)  # a bare TypeError (unhashable) before


def test_a_recipes_data_dir_is_the_data_of_each_recipe_of_its_dataset(out, tmp_path, mnist_dir, monkeypatch):
    """Only the MNIST recipes took data_dir: a Fashion-MNIST recipe given a folder of its files elsewhere, or
    one that does not exist, trained on the default data without a word."""
    from mnistlab.data.datasets import locate
    from mnistlab.experiments import recipes

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for path in locate("fashion-mnist", download=False).values():
        (elsewhere / path.name).symlink_to(path)
    given = []

    def train_all(jobs, *args):  # each job's data taken note of, none trained
        given.extend(jobs)
        return ((i, ml.MnistlabError("not trained")) for i in range(len(jobs)))
    monkeypatch.setattr(recipes, "train_all", train_all)
    ml.recipes.run_all(["numpy-binary", "mnist-l1-5000"], data_dir=elsewhere, out=out, progress=False)
    assert [(job.data.dataset, job.data.data_dir) for job in given] == [("fashion-mnist", str(elsewhere))] * 2 \
        + [("mnist", None)] * 2  # MNIST's recipes find theirs as usual
    given.clear()
    ml.recipes.run_all(["numpy-binary", "mnist-l1-5000"], data_dir=mnist_dir, out=out, progress=False)
    assert [job.data.data_dir for job in given] == [None, None, str(mnist_dir), str(mnist_dir)]
    with pytest.raises(ml.ParameterError, match=f"^data_dir: {mnist_dir} holds mnist's files, not fashion-mnist's, "
                                                "which the recipe trains on$"):
        ml.recipes.run("numpy-binary", data_dir=mnist_dir, out=out, progress=False)
    with pytest.raises(ml.DatasetError, match="no such folder"):  # before any fit
        ml.recipes.run("numpy-binary", data_dir=tmp_path / "nowhere", out=out, progress=False)
    # with recipes of several datasets, a folder of other images was every run's: digits as Fashion-MNIST results
    custom = tmp_path / "custom"
    custom.mkdir()
    mnist = ml.load_dataset("mnist", data_dir=mnist_dir, progress=False)
    (custom / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 100) + mnist.y_test[:100].tobytes())
    (custom / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, 100, 28, 28)
                                                     + mnist.x_test[:100].tobytes())
    for path in locate("mnist", data_dir=str(mnist_dir), download=False).values():
        if "train" in path.name:
            (custom / path.name).symlink_to(path)
    given.clear()
    with pytest.raises(ml.ParameterError, match=f"^data_dir: {custom} holds none of the official files of "
                                                "fashion-mnist, mnist, which these recipes train on: "):
        ml.recipes.run_all(["numpy-binary", "mnist-l1-5000"], data_dir=custom, out=out, progress=False)
    with pytest.raises(ml.DatasetError, match="nowhere: no such folder"):  # once, not by each of the 4 runs
        ml.recipes.run_all(["numpy-binary", "mnist-l1-5000"], data_dir=tmp_path / "nowhere", out=out, progress=False)
    assert given == []
    ml.recipes.run_all(["mnist-l1-5000"], data_dir=custom, out=out, progress=False)  # of one dataset: its data
    assert [job.data.data_dir for job in given] == [str(custom)] * 2


def test_test_fraction_pools_and_splits_again(out):
    run = ml.train("logreg", train_size=800, test_fraction=0.25, name="api-pool", out=out, progress=False)
    assert run.config["data"]["resplit_test_fraction"] == 0.25
    assert len(run.predictions.y_true) == 70000 // 4  # a quarter of the pooled 70,000 images


def test_existing_name_is_refused_at_once(run, out):
    with pytest.raises(ml.RunExistsError):
        ml.train("logreg", name="api", out=out, progress=False, **SMALL)


def test_import_is_light():
    """`import mnistlab` loads none of the heavy libraries (the CLI and web workers start fast)."""
    code = ("import sys, mnistlab; heavy = {'sklearn', 'matplotlib', 'torch', 'scipy'} & "
            "{m.split('.')[0] for m in sys.modules}; print(sorted(heavy))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_docstring_examples_run(tmp_path, monkeypatch):
    """Every example in the API's docstrings runs and gives what it shows."""
    monkeypatch.setenv("MNISTLAB_OUT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import mnistlab.api

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = sorted(finder.find(mnistlab.api, globs={"ml": ml}), key=lambda t: t.lineno or 0)
    globs = {"ml": ml}
    for test in tests:  # in source order, sharing names, as a reader would run them
        test.globs = globs
        runner.run(test, clear_globs=False)
    assert runner.failures == 0 and runner.tries >= 8


def test_mistaken_arguments_are_refused_before_anything_is_written(run, out, tmp_path, monkeypatch):
    from mnistlab.models import get_family

    before = (run.path / "config.json").read_text()
    for mistake, parameter in [(dict(overwrite="no"), "overwrite"), (dict(calibrate="x"), "calibrate"),
                               (dict(embedding=None), "embedding"), (dict(command=5), "command")]:
        with pytest.raises(ml.ParameterError) as info:  # "no" is truthy: it would have replaced the run
            ml.train("logreg", name="api", out=out, progress=False, **SMALL, **mistake)
        assert info.value.parameter == parameter
    assert (run.path / "config.json").read_text() == before
    with pytest.raises(ml.ParameterError) as info:  # a bar drawn for "no"
        ml.train("logreg", name="api", out=out, progress="no", **SMALL)
    assert info.value.parameter == "progress" and (run.path / "config.json").read_text() == before
    with pytest.raises(ml.ParameterError) as info:  # it downloaded
        ml.load_dataset("kmnist", download="no")
    assert info.value.parameter == "download"
    for classes in ([], 0, [3]):  # an empty list is not "every class"
        with pytest.raises(ml.ParameterError) as info:
            ml.train("logreg", classes=classes, out=tmp_path, progress=False)
        assert info.value.parameter == "classes"
    with pytest.raises(ml.ParameterError, match="unknown model None"):
        ml.train(None, out=tmp_path, progress=False)
    for data_dir in (5, 0, ""):  # read as the folder "5", or as none
        with pytest.raises(ml.ParameterError, match="data_dir: must be a path"):
            ml.train("logreg", data_dir=data_dir, out=tmp_path, progress=False)
    for call in (lambda: ml.train("logreg", data_dir="/tmp/a\0b", out=tmp_path, progress=False),
                 lambda: ml.runs(out="a\0b"),  # a bare ValueError ("embedded null byte"); runs: [] as if none
                 lambda: ml.Run("/tmp/a\0b"),  # the same ValueError
                 lambda: ml.load_run("/tmp/a\0b", out=tmp_path)):  # "no run …", the byte printed
        with pytest.raises(ml.ParameterError, match="a path cannot hold a null byte"):
            call()
    for mistake, parameter in [(dict(path=5), "path"), (dict(check="no"), "check")]:  # pathlib's TypeError; a check
        with pytest.raises(ml.ParameterError) as info:
            run.export(**mistake)
        assert info.value.parameter == parameter
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setattr(get_family("logreg"), "fit", lambda *args, **kwargs: pytest.fail("a model was fitted"))
    for name in ("../escaped", "a/b", 5):
        with pytest.raises(ml.ParameterError, match="sweep name"):
            ml.sweep("logreg", {"C": [0.1]}, train_size=600, out=tmp_path, name=name, progress=False)
        with pytest.raises(ml.ParameterError, match="comparison name"):
            ml.compare(run, run.path, out=tmp_path, name=name)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ml.ParameterError, match="cannot be held out stratified") as info:  # once the data is known
        ml.train("logreg", test_fraction=1e-6, out=tmp_path, progress=False)
    assert info.value.parameter == "test_fraction" and list(tmp_path.glob("runs/*")) == []


def test_classes_may_be_an_array(tmp_path):
    binary = ml.train("logreg", classes=np.array([0, 1]), train_size=200, test_size=100, out=tmp_path,
                      progress=False, embedding=False)
    assert binary.classes == ["T-shirt/top", "Trouser"] and binary.config["dataset"]["class_subset"] == [0, 1]


def test_a_run_without_its_metrics_is_refused_when_loaded(run, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(run.path, damaged)
    (damaged / "metrics.json").unlink()
    with pytest.raises(ml.RunDamagedError, match="metrics.json"):
        ml.load_run(damaged)  # not later, when a notebook shows it


def test_a_run_is_not_paired_with_test_images_other_than_its_own(run, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(run.path, moved)
    config = json.loads((moved / "config.json").read_text())
    config["data"]["seed"] += 1  # the same as changed files: another subset is drawn than was tested on
    (moved / "config.json").write_text(json.dumps(config))
    other = ml.load_run(moved)
    for use in (lambda: other.dataset, other.evaluate, lambda: other.figure("wrong")):
        with pytest.raises(ml.DatasetError, match="not the ones the run 'api' was tested on"):
            use()
    config["data"]["test_size"] = 10**6  # refused as the user's --test-size before, a flag never given
    (moved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ml.DatasetError, match="cannot give the run 'api' its images again"):
        ml.load_run(moved).dataset


def test_interpretation_refuses_counts_and_indices_out_of_range(run):
    interpretation = run.interpretation
    for ask, parameter in [(lambda: interpretation.top_losses(-1), "k"), (lambda: interpretation.top_losses(2.5), "k"),
                           (lambda: interpretation.most_confused(0), "top"),
                           (lambda: interpretation.confused_examples(99, 0), "true"),
                           (lambda: interpretation.confused_examples(0, "Shirt"), "predicted"),
                           (lambda: interpretation.explanations([-1]), "indices"),
                           (lambda: interpretation.explanations([10**6]), "indices"),
                           (lambda: interpretation.explanations([0.5]), "indices")]:
        with pytest.raises(ml.ParameterError) as info:
            ask()
        assert info.value.parameter == parameter
    assert len(interpretation.top_losses(3)) == 3 and interpretation.explanations([]).shape[0] == 0


def test_predict_refuses_arrays_it_cannot_read_as_images(run):
    for array, message in [(np.zeros((28, 28, 3), np.uint8), r"shape \(28, 28, 3\)"),
                           (np.zeros((28, 28), complex), "real numbers, got an array of complex128"),
                           (np.full((28, 28), "a"), "real numbers, got an array of <U1")]:
        with pytest.raises(ml.ParameterError, match=message):
            run.predict(array)
    with pytest.raises(ml.PhotoError, match="0×0 pixels: the image is empty"):
        run.predict(Image.new("L", (0, 0)))


def test_a_pil_image_meets_the_limits_a_photo_file_does(run):
    from PIL import Image

    for image, message in [(Image.new("L", (8000, 7000)), "more than the limit of 50 megapixels"),
                           (Image.new("L", (3000, 100)), "more elongated than 10:1")]:
        with pytest.raises(ml.PhotoError, match=message):  # 4.6 GB of float copies for 12000² before
            run.predict(image)


def test_predict_reads_what_a_photo_or_an_image_array_comes_as(run):
    import io

    from fixtures.photos import ORIENTATION_TAG, STORED_FOR_ORIENTATION

    image = run.dataset.x_test[0]
    floats = image.astype(np.float32) / 255
    floats[image == 255] = 1.0001  # a resize's overshoot or rounding: one such value made the image 0–255, black
    assert (image == 255).any() and np.array_equal(run.predict(floats).pixels, image)
    photo = Image.fromarray(255 - np.kron(image, np.ones((10, 10), np.uint8)))  # dark on light, as photographed
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    stored = io.BytesIO()
    photo.transpose(STORED_FOR_ORIENTATION[6]).save(stored, "JPEG", exif=exif.tobytes())
    from_file = run.predict(stored.getvalue())
    assert np.array_equal(run.predict(Image.open(stored)).pixels, from_file.pixels)  # was not turned upright
    for data in (bytearray(stored.getvalue()), memoryview(stored.getvalue())):  # were refused
        assert np.array_equal(run.predict(data).pixels, from_file.pixels)


def test_a_run_replaced_since_it_was_loaded_is_not_exported_into_the_new_one(run, out):
    old = ml.train("logreg", C=0.1, name="api-replaced", out=out, progress=False, embedding=False, **SMALL)
    image = old.dataset.x_test[0]
    old.model  # loaded before the folder is replaced: predictions named the new run's classes
    old.interpretation  # its map is read when first drawn: the new run's was drawn as this one's
    comparison = ml.compare(old, run, out=out)
    ml.train("logreg", C=0.001, name="api-replaced", out=out, progress=False, overwrite=True, **SMALL)
    for use in (lambda: old.export(check=False), lambda: old.predict(image), old.evaluate, old.figure_names,
                lambda: comparison.figure("accuracy"), lambda: old.figure("embedding"),
                lambda: ml.compare(old, run, out=out)):  # compared the new model silently
        with pytest.raises(ml.MnistlabError, match="'api-replaced' was replaced after it was loaded"):
            use()
    assert not (out / "runs" / "api-replaced" / "model.onnx").exists()


def test_a_run_deleted_since_it_was_loaded_is_said_gone(run, out):
    shutil.copytree(run.path, out / "runs" / "api-gone")
    gone = ml.load_run("api-gone", out=out)
    shutil.rmtree(gone.path)
    for use in (gone.evaluate, lambda: gone.predict(run.dataset.x_test[0]),  # "was replaced … load it again"
                lambda: ml.compare(run, gone, out=out)):  # "runs/api-gone/config.json: missing"
        with pytest.raises(ml.RunNotFoundError, match=r"^run 'api-gone' is gone \(its folder .*api-gone was deleted"):
            use()


def test_default_names_of_sweeps_and_comparisons_do_not_replace_others(run, out, tmp_path, monkeypatch):
    first = ml.sweep("logreg", {"C": [0.1]}, train_size=300, out=tmp_path, progress=False)
    from datetime import datetime, timezone

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2030, 1, 1, tzinfo=timezone.utc)
    monkeypatch.setattr("mnistlab.experiments.sweep.datetime", Later)
    second = ml.sweep("logreg", {"C": [1.0]}, train_size=300, out=tmp_path, progress=False)
    assert first.path != second.path and first.path.is_dir()  # the same parameter swept: once replaced the other
    from mnistlab.experiments.compare import _default_name

    def default_name(runs):  # of runs of these names in a store's folder
        return _default_name([{"name": name, "dir": tmp_path / "runs" / name} for name in runs], none)

    long, none = ["x" * 60, "y" * 58], tmp_path / "no-comparisons"
    names = {default_name([long[0], long[1] + end]) for end in ("ab", "cd")}
    assert len(names) == 2 and all(len(n) == 100 for n in names)  # cut to a name's length, yet apart
    assert default_name(["a-vs-b", "c"]) != default_name(["a", "b-vs-c"])  # both were a-vs-b-vs-c
    assert default_name(["a", "b"]) == "a-vs-b"
    assert default_name(["a-vs-b", "c"]).startswith("a-vs-b-vs-c-")
    other = ml.train("logreg", C=1.0, name="other", out=tmp_path, progress=False, **SMALL)
    ml.train("logreg", C=0.1, name="api", out=tmp_path, progress=False, **SMALL)
    named = ml.compare("api", "other", name="api-vs-b", out=tmp_path)  # named by hand as another's default
    ml.train("logreg", C=0.01, name="b", out=tmp_path, progress=False, **SMALL)
    default = ml.compare("api", "b", out=tmp_path)
    assert default.path != named.path and default.path.name.startswith("api-vs-b-")
    assert json.loads((named.path / "compare.json").read_text())["runs"][1]["run"] == other.name  # not replaced
    assert ml.compare("api", "b", out=tmp_path).path == default.path  # and the same runs' comparison again


def test_a_relative_data_folder_is_kept_as_where_it_was_given(tmp_path, monkeypatch):
    from mnistlab.experiments.pipeline import DataChoice

    monkeypatch.chdir(tmp_path)
    assert DataChoice(data_dir="fm").data_dir == str(tmp_path / "fm")  # a cluster's worker starts elsewhere


def test_objects_of_the_default_relative_out_work_after_the_working_folder_changes(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNISTLAB_OUT", raising=False)  # ./mnistlab-out
    rel = ml.train("logreg", C=0.1, name="rel", progress=False, embedding=False, **SMALL)
    comparison = ml.compare(rel, run)
    listed = ml.runs()
    assert rel.path == tmp_path / "mnistlab-out" / "runs" / "rel" and comparison.path.is_absolute()
    monkeypatch.chdir(tmp_path.parent)  # a notebook's %cd: every call said "'rel' was replaced after it was loaded"
    assert rel.model.coef_.shape == (10, 784) and len(rel.predictions.y_pred) == SMALL["test_size"]
    assert "confusion_matrix" in rel.figure_names() and comparison.figure("accuracy")
    assert listed["rel"].path == rel.path and os.path.isabs(listed[0].path)  # "no run 'rel'" in the new folder


def test_a_run_list_holds_the_names_and_runs_it_loads(run, out, tmp_path):
    listed = ml.runs(out)
    assert "api" in listed and listed["api"].path == run.path  # "api" in ml.runs() was False
    assert run in listed and listed[0] in listed and "nothing" not in listed and None not in listed
    # by its path too, as runs[path] loads it, however reached (review)
    (tmp_path / "link").symlink_to(out, target_is_directory=True)
    assert str(run.path) in listed and ml.load_run("api", out=tmp_path / "link") in listed
    assert ml.load_run(run.path / ".." / "api") in listed
    other = ml.train("logreg", C=0.1, name="api", out=tmp_path, progress=False, embedding=False, **SMALL)
    assert other not in listed and run not in ml.runs(tmp_path)  # another out folder's run of the same name
    (tmp_path / "runs" / "broken").mkdir()  # listed as damaged: in, and loading it says why
    assert "broken" in ml.runs(tmp_path)
    with pytest.raises(ml.RunDamagedError):
        ml.runs(tmp_path)["broken"]


def test_a_sweep_or_comparison_name_given_that_exists_is_refused_before_any_work(run, tmp_path, monkeypatch):
    from mnistlab.models import get_family

    first = ml.sweep("logreg", {"C": [0.1]}, train_size=300, out=tmp_path, name="mine", progress=False)
    kept = (first.path / "sweep.json").read_bytes()
    other = ml.train("logreg", C=0.01, name="api-other", out=tmp_path, progress=False, embedding=False, **SMALL)
    ml.compare(run, other, out=tmp_path, name="mine")
    compared = (tmp_path / "compare" / "mine" / "compare.json").read_bytes()
    monkeypatch.setattr(get_family("logreg"), "fit", lambda *args, **kwargs: pytest.fail("a model was fitted"))
    with pytest.raises(ml.RunExistsError, match="sweep 'mine' exists in .*; choose another name or overwrite it"):
        ml.sweep("logreg", {"C": [1.0]}, train_size=300, out=tmp_path, name="mine", progress=False)
    with pytest.raises(ml.RunExistsError, match="comparison 'mine' exists in "):
        ml.compare(other, run, out=tmp_path, name="mine")
    assert (first.path / "sweep.json").read_bytes() == kept  # was replaced silently
    assert (tmp_path / "compare" / "mine" / "compare.json").read_bytes() == compared
    with pytest.raises(ml.ParameterError, match="overwrite"):
        ml.compare(other, run, out=tmp_path, name="mine", overwrite="no")
    monkeypatch.undo()
    assert ml.sweep("logreg", {"C": [1.0]}, train_size=300, out=tmp_path, name="mine", progress=False,
                    overwrite=True).results[0]["C"] == 1.0
    assert ml.compare(other, run, out=tmp_path, name="mine", overwrite=True).result["runs"][0]["run"] == "api-other"
    again = ml.compare(run, other, out=tmp_path)  # the default name: the same runs' comparison, brought up to date
    assert ml.compare(run, other, out=tmp_path).path == again.path


def test_what_a_notebook_is_handed_is_checked_and_shown_briefly(run, tmp_path):
    import shutil

    from conftest import RecordingProgress
    from mnistlab.experiments.pipeline import DataChoice
    from mnistlab.experiments.sweep import run_sweep

    for call, parameter in [(lambda: ml.load_run(5), "run"), (lambda: ml.runs(out=5), "out"),
                            (lambda: ml.runs(out=""), "out"),  # was: the current folder's runs
                            (lambda: ml.compare(run, None), "run"), (lambda: run.figure(["a"]), "name"),
                            (lambda: ml.zalando_benchmark(classifiers=[], out=tmp_path), "classifiers"),
                            (lambda: ml.zalando_benchmark(classifiers="GaussianNB", out=tmp_path), "classifiers")]:
        with pytest.raises(ml.ParameterError) as info:  # TypeErrors from pathlib or a set; [] ran the whole grid
            call()
        assert info.value.parameter == parameter
    progress = RecordingProgress()
    with pytest.raises(ml.ParameterError, match="10 folds"):  # found once the points run, after the bar started
        run_sweep("logreg", {"C": [0.1, 1]}, DataChoice(train_size=50), tmp_path, cv=10, progress=progress)
    assert progress.starts and progress.ends == 1  # a notebook's bar was left open
    assert repr(run.predict(run.dataset.x_test[0])).startswith("Prediction(")
    assert len(repr(run.predict(run.dataset.x_test[:20]))) < 2000 and len(repr(run.interpretation)) < 300
    for change, problem in [({"calibration": None}, "'calibration' must be an object"),
                            ({"confusion_matrix": []}, "'confusion_matrix' must be counts"),
                            ({"confusion_matrix": [[None] * 10] * 10}, "'confusion_matrix' must be counts"),
                            ({"calibration": {"ece": "x"}}, "'ece' and 'brier' must be numbers"),
                            ({"history": "x"}, "'history' must be an object"),
                            ({"has_weight_images": "false"}, "'has_weight_images' must be true or false")]:
        damaged = tmp_path / "damaged"
        shutil.rmtree(damaged, ignore_errors=True)
        shutil.copytree(run.path, damaged)
        metrics = json.loads((damaged / "metrics.json").read_text())
        (damaged / "metrics.json").write_text(json.dumps({**metrics, **change}))
        with pytest.raises(ml.RunDamagedError, match=problem):  # failed when the notebook showed the run
            ml.load_run(damaged)


def test_a_figure_a_run_cannot_draw_says_why(tmp_path):
    tiny = ml.train("logreg", C=0.1, classes=(0, 1), train_size=200, test_size=4, name="tiny", out=tmp_path,
                    progress=False)
    with pytest.raises(ml.ParameterError, match="no 'embedding' figure: its test set is too small for a map"):
        tiny.figure("embedding")  # said before: "a logreg model has no 'embedding' figure"
    if (tiny.predictions.y_pred == tiny.predictions.y_true).all():  # T-shirts against trousers: likely
        with pytest.raises(ml.ParameterError, match="no 'wrong' figure: no test image was misclassified"):
            tiny.figure("wrong")  # was "First 0 wrong test predictions", drawn empty


def test_a_sweep_after_the_data_files_changed_scores_the_new_data(mnist_dir, tmp_path):
    """The training arrays were kept per process by the data's settings alone: a notebook (or a cluster's
    worker) sweeping again after the labels were fixed scored the old ones."""
    import gzip
    import shutil

    data = tmp_path / "data"
    shutil.copytree(mnist_dir, data)
    settings = dict(dataset="mnist", data_dir=data, train_size=600, out=tmp_path, progress=False)
    before = ml.sweep("logreg", {"C": [0.1]}, **settings).results[0]["val_accuracy"]
    path = data / "train-labels-idx1-ubyte.gz"
    labels = bytearray(gzip.open(path).read())
    labels[8:] = np.random.default_rng(1).integers(0, 10, len(labels) - 8, dtype=np.uint8).tobytes()  # all noise
    path.write_bytes(gzip.compress(bytes(labels)))
    after = ml.sweep("logreg", {"C": [0.1]}, **settings).results[0]["val_accuracy"]
    assert before > 0.7 and after < 0.3


def test_a_model_whose_probabilities_are_not_numbers_names_no_class(run):
    """Weights that overflow gave NaN probabilities, "class 0", and a 500 'bug' from the web page (NaN is no JSON)."""
    fresh = ml.load_run(run.path)
    largest = np.finfo(fresh.model.coef_.dtype).max  # finite, as loading asks; its sums are not
    fresh.model.coef_ = np.where(np.arange(len(fresh.model.coef_))[:, None] % 2, largest, -largest) \
        * np.ones_like(fresh.model.coef_)
    with pytest.raises(ml.ModelFileError, match="28×28 image: the probabilities of the model of .* are not finite"):
        fresh.predict(run.dataset.x_test[0])


def test_a_sweep_says_which_points_stopped_before_converging(out):
    # a sweep over C with a tight max_iter could call best a fit that never converged, without a word
    with pytest.warns(ml.NotConvergedWarning, match=r"^1 of 2 fits stopped before they converged \(the "
                                                    r"first, max_iter=3\)"):
        sweep = ml.sweep("logreg", {"max_iter": [3, 500]}, train_size=500, out=out, progress=False)
    assert [r["converged"] for r in sweep.results] == [False, True]
    assert ml.sweep("sklearn:GaussianNB", {"var_smoothing": [1e-9]}, train_size=500, out=out,
                    progress=False).results[0]["converged"] is None  # a family that says nothing of it
