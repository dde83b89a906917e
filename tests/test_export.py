"""ONNX export: every family's export computes what the model does, files are checked when read,
and `mnistlab export` and `mnistlab serve --engine onnx` use them."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_cli
from fixtures import probe
from fixtures.photos import make_photo
from mnistlab import api
from mnistlab.data.preprocess import flatten_scale
from mnistlab.errors import ExportError, ModelFileError, ParameterError
from mnistlab.experiments.pipeline import DataChoice, train
from mnistlab.inference.onnx_file import INPUT, ONNX_FILE, PARITY_TOLERANCE, export_onnx, probe_images, read_onnx
from mnistlab.models import family_names, get_family
from mnistlab.models.base import MnistlabModel
from mnistlab.models.onnx_graphs import dense_graph
from mnistlab.web.workers import PhotoWorkers

onnx = pytest.importorskip("onnx")

N_TRAIN = 1000
# Each family, and the variants whose graphs differ (standardisation, one logistic output, tanh),
# fitted in a few seconds; the parity test runs each on the whole test set.
VARIANTS = {
    "logreg": ("logreg", dict(max_iter=50), None),
    "logreg-standardized": ("logreg", dict(max_iter=50, standardize=True), None),
    "logreg-binary": ("logreg", dict(max_iter=50), (0, 1)),
    "numpy-logreg": ("numpy-logreg", dict(max_epochs=3), (0, 1)),
    "numpy-softmax": ("numpy-softmax", dict(max_epochs=3), None),
    "numpy-mlp": ("numpy-mlp", dict(hidden=(32, 16), max_epochs=2), None),
    "mlp": ("mlp", dict(hidden_layer_sizes=(32,), max_iter=5), None),
    "mlp-tanh-binary": ("mlp", dict(hidden_layer_sizes=(16, 8), activation="tanh", max_iter=5), (0, 1)),
    "lenet": ("lenet", dict(epochs=1), None),
    "cnn": ("cnn", dict(epochs=1, widths=(8, 16), batch_size=64, learning_rate=0.1), None),  # with mirror-image TTA
    # sklearn:NAME, through skl2onnx's converters
    "sklearn:LogisticRegression": ("sklearn:LogisticRegression", dict(max_iter=50, standardize=True), None),
    "sklearn:RandomForestClassifier": ("sklearn:RandomForestClassifier",
                                       dict(n_estimators=10, max_depth=8, random_state=0), None),
    "sklearn:KNeighborsClassifier": ("sklearn:KNeighborsClassifier", {}, (0, 1)),
}


def test_every_family_has_a_parity_test():
    assert {family for family, _, _ in VARIANTS.values()} >= set(family_names())


def fitted(fashion, variant):
    family, params, classes = VARIANTS[variant]
    x, y, x_test, y_test = fashion.x_train[:N_TRAIN], fashion.y_train[:N_TRAIN], fashion.x_test, fashion.y_test
    if classes:
        x, y = x[np.isin(y, classes)], y[np.isin(y, classes)]
        x_test = x_test[np.isin(y_test, classes)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few epochs do not converge, on purpose
        seeded = {} if family.startswith("sklearn:") else {"random_state": 0}  # theirs take it where they have one
        model = get_family(family)(**{**seeded, **params}).fit(flatten_scale(x), y)
    names = [fashion.classes[c] for c in classes] if classes else list(fashion.classes)
    return model, names, x_test


@pytest.mark.parametrize("variant", VARIANTS)
def test_export_computes_what_the_model_does_on_the_test_set(fashion, variant, tmp_path):
    model, classes, x_test = fitted(fashion, variant)
    path = export_onnx(model, classes, "fashion-mnist", variant, tmp_path / "m.onnx")
    exported = read_onnx(path)
    got = exported.predict_proba(x_test)  # raw uint8 pixels: the scaling is in the graph
    expected = model.predict_proba(flatten_scale(x_test))
    assert got.dtype == np.float32 and got.shape == expected.shape == (len(x_test), len(classes))
    other = np.flatnonzero(got.argmax(axis=1) != expected.argmax(axis=1))
    assert len(other) == 0, f"{len(other)} of {len(x_test)} test images get another class"
    difference = np.abs(got - expected).max()
    assert difference <= PARITY_TOLERANCE, difference
    assert exported.classes == classes and exported.dataset == "fashion-mnist"


def test_the_check_refuses_an_export_that_computes_something_else(fashion, tmp_path):
    model, classes, x_test = fitted(fashion, "logreg")
    other = get_family("logreg")(max_iter=3).fit(flatten_scale(fashion.x_train[:300]), fashion.y_train[:300])
    model.onnx_graph = other.onnx_graph  # a wrong graph, as a bug in a family's onnx_graph would give
    with pytest.raises(ExportError, match=r"does not compute what the logreg model does: another class for \d+"):
        export_onnx(model, classes, "fashion-mnist", "r", tmp_path / "m.onnx", check_images=x_test[:500])
    assert not (tmp_path / "m.onnx").exists()


def test_the_check_refuses_probabilities_that_are_not_numbers(fashion, tmp_path):
    """Weights that overflow make NaN of both sides: NaN > tolerance is False, and the export was "checked"."""
    model, classes, x_test = fitted(fashion, "numpy-softmax")
    signs = np.where(np.arange(model.coef_.shape[0]) % 2, 1, -1).reshape(-1, *[1] * (model.coef_.ndim - 1))
    model.coef_ = (3e38 * signs * np.ones_like(model.coef_)).astype(model.coef_.dtype)  # finite, as loading asks
    with pytest.raises(ExportError, match="probabilities up to nan apart"):
        export_onnx(model, classes, "fashion-mnist", "r", tmp_path / "m.onnx", check_images=x_test[:50])
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("family", ["sklearn:GaussianNB", "sklearn:MultinomialNB", "sklearn:ComplementNB",
                                    "sklearn:BernoulliNB"])
def test_a_naive_bayes_export_computes_probabilities_summing_to_1_as_the_model_does(mnist, family, tmp_path):
    """Converted in float32, a GaussianNB's log-likelihoods (about -3e9, in steps of 128-256) gave rows
    summing to 2 on a few digits and on a few bright pixels on black, the model's own too; the other
    naive Bayes' exports were refused, 2e-4 to 8e-4 from the model."""
    x, y = mnist.x_train[::5], mnist.y_train[::5]  # 100 of each digit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BernoulliNB: the pixels' default binarisation threshold
        model = get_family(family)().fit(flatten_scale(x), y)
    path = export_onnx(model, list(mnist.classes), "mnist", "nb", tmp_path / "m.onnx", check_images=mnist.x_test[:300])
    images = np.concatenate([mnist.x_test, probe_images()])  # a few bright pixels on black among them
    got, expected = read_onnx(path).predict_proba(images), model.predict_proba(flatten_scale(images))
    assert np.abs(got.sum(axis=1) - 1).max() <= PARITY_TOLERANCE
    assert np.abs(expected.sum(axis=1) - 1).max() <= 1e-9
    assert np.abs(got - expected).max() <= PARITY_TOLERANCE
    assert read_onnx(path).session.get_outputs()[0].type == "tensor(float)"  # the file's contract as before


def test_the_check_refuses_probabilities_that_do_not_sum_to_1_even_off_the_test_images(fashion, tmp_path):
    """A graph that agrees with the model on the test images but doubles a nearly black image's
    probabilities, as GaussianNB's float32 graph did: the probe images catch it."""
    from onnx import TensorProto, helper, numpy_helper

    from mnistlab.models.onnx_graphs import INPUT as X, OUTPUT, model_of

    weights = np.random.default_rng(0).normal(0, 0.01, (784, 10)).astype(np.float32)

    class Doubling(MnistlabModel):
        family = "doubling"

        def predict_proba(self, x):
            z = np.exp(x @ weights)
            return z / z.sum(axis=1, keepdims=True)

        def onnx_graph(self):
            nodes = [helper.make_node("MatMul", [X, "W"], ["z"]), helper.make_node("Softmax", ["z"], ["p"], axis=1),
                     helper.make_node("ReduceSum", [X, "axis"], ["ink"], keepdims=1),
                     helper.make_node("Less", ["ink", "five"], ["dark"]),
                     helper.make_node("Cast", ["dark"], ["extra"], to=TensorProto.FLOAT),
                     helper.make_node("Add", ["extra", "one"], ["factor"]),
                     helper.make_node("Mul", ["p", "factor"], [OUTPUT])]
            constants = [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(np.array([1]), "axis"),
                         numpy_helper.from_array(np.array(5, np.float32), "five"),
                         numpy_helper.from_array(np.array(1, np.float32), "one")]
            return model_of(helper.make_graph(
                nodes, "doubling", [helper.make_tensor_value_info(X, TensorProto.FLOAT, ["N", 784])],
                [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", 10])], initializer=constants))

    with pytest.raises(ExportError) as caught:
        export_onnx(Doubling(), list(fashion.classes), "fashion-mnist", "r", tmp_path / "m.onnx",
                    check_images=fashion.x_test[:300])
    assert str(caught.value) == (
        "the ONNX graph of the doubling model gives probabilities that do not sum to 1: 1 of 304 rows "
        "(300 test images, 4 probe images), up to 1 off (allowed: 0.0001); nothing was written")
    assert not (tmp_path / "m.onnx").exists()


def test_a_tie_of_the_models_broken_the_other_way_by_rounding_is_the_same_answer(fashion, tmp_path):
    """A random forest of 20 trees gives .35 to two classes; float32 made the graph's second one larger by
    1e-7, and the export was refused: "another class for 22 of 10000 images, probabilities up to 1.2e-07 apart"."""
    tied = np.array([0.35, 0.35, 0.30])

    class Tied(MnistlabModel):
        family = "tied"

        def predict_proba(self, x):
            return np.tile(tied, (len(x), 1))

        def onnx_graph(self):  # the same, but for 2e-7 more for the second class
            return dense_graph([(np.zeros((784, 3), np.float32), np.log(tied + [0, 2e-7, 0]).astype(np.float32))])

    path = export_onnx(Tied(), ["a", "b", "c"], "fashion-mnist", "r", tmp_path / "m.onnx",
                       check_images=fashion.x_test[:50])
    assert (read_onnx(path).predict_proba(fashion.x_test[:50]).argmax(axis=1) == 1).all()  # the model's: 0
    assert read_onnx(path).metadata["check"].startswith("50 test images under onnxruntime: the model's class")


def test_onnxruntime_writes_nothing_on_stderr_when_it_reads_an_export(fashion, tmp_path, capfd):
    """Its warnings are coloured lines on stderr: a ComplementNB's export gave one at every read."""
    model = get_family("sklearn:ComplementNB")().fit(flatten_scale(fashion.x_train[:300]), fashion.y_train[:300])
    path = export_onnx(model, list(fashion.classes), "fashion-mnist", "r", tmp_path / "m.onnx",
                       check_images=fashion.x_test[:50])
    read_onnx(path).predict_proba(fashion.x_test[:5])
    assert "onnxruntime" not in capfd.readouterr().err


@pytest.mark.parametrize("family, params, reason", [
    ("sklearn:RidgeClassifier", {}, "it has no probabilities of its own"),
    ("sklearn:LabelPropagation", {}, "skl2onnx says Unable to find a shape calculator"),  # no converter
])
def test_an_sklearn_family_skl2onnx_cannot_convert_is_named(fashion, family, params, reason):
    x, y = flatten_scale(fashion.x_train[:300]), fashion.y_train[:300]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_family(family)(**params).fit(x, y)
    with pytest.raises(ExportError, match=f"a {family} model cannot be exported to ONNX: {reason}") as caught:
        export_onnx(model, list(fashion.classes), "fashion-mnist", "r", Path("never-written.onnx"))
    assert "\n" not in str(caught.value)


def test_a_family_without_a_graph_is_named():
    class Constant(MnistlabModel):
        family = "constant"

    with pytest.raises(ExportError, match="a constant model cannot be exported to ONNX"):
        export_onnx(Constant(), ["a", "b"], "fashion-mnist", "r", Path("never-written.onnx"))
    assert not Path("never-written.onnx").exists()


# -- files: validated when read -------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("export-out")
    return train("logreg", {"C": 0.1}, DataChoice(train_size=1000, test_size=300), out, name="small")


@pytest.fixture(scope="module")
def exported(run_dir):
    return api.Run(run_dir).export()


def test_run_export_writes_a_checked_file_with_its_metadata(run_dir, exported):
    assert exported == run_dir / ONNX_FILE
    model = read_onnx(exported)
    meta = model.metadata
    assert meta["family"] == "logreg" and meta["run"] == "small" and meta["dataset"] == "fashion-mnist"
    assert json.loads(meta["classes"])[1] == "Trouser"
    assert json.loads(meta["photo_convention"])["dataset"] == "fashion-mnist"
    assert re.fullmatch(r"300 test images under onnxruntime: the model's class \(or one it ties with within "
                        r"0.0001\) for every one, probabilities "
                        r"at most \S+ from the model's; probabilities summing to 1 for them and 4 probe images",
                        meta["check"])
    run = api.Run(run_dir)
    assert list(model.predict_proba(run.dataset.x_test).argmax(axis=1)) == list(run.predictions.y_pred)


def test_a_damaged_foreign_or_tampered_file_is_one_clear_error(exported, tmp_path):
    data = exported.read_bytes()
    model = onnx.load_model_from_string(data)

    def variant(change) -> bytes:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        change(copy)
        return copy.SerializeToString()

    def weights_changed(m):
        weights = next(t for t in m.graph.initializer if t.name == "W1")
        values = onnx.numpy_helper.to_array(weights).copy()
        values[400, 1] += 0.5
        weights.CopyFrom(onnx.numpy_helper.from_array(values, "W1"))

    def classes_renamed(m):
        next(p for p in m.metadata_props if p.key == "classes").value = json.dumps([f"c{i}" for i in range(10)])

    def version_changed(m):
        next(p for p in m.metadata_props if p.key == "mnistlab.format_version").value = "2\nor so"

    def external_data(m):
        weights = next(t for t in m.graph.initializer if t.name == "W1")
        weights.ClearField("raw_data")
        weights.data_location = onnx.TensorProto.EXTERNAL
        weights.external_data.add(key="location", value="/etc/passwd")

    def custom_operator(m):
        m.graph.node[-1].domain = "com.example\nnext line"  # quoted in the message, which stays one line
        m.opset_import.add(domain="com.example\nnext line", version=1)

    def data_type_unknown(m):
        m.graph.initializer[0].data_type = 35

    def resealed(**changes) -> bytes:  # as anyone can: the digest guards against accidents, not intent
        from mnistlab.inference.onnx_file import DIGEST, _seal

        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return _seal(copy, {**{p.key: p.value for p in model.metadata_props if p.key != DIGEST}, **changes})

    foreign = dense_graph([(np.zeros((784, 3), np.float32), np.zeros(3, np.float32))]).SerializeToString()
    at = data.find(b'"object": "bright')
    cases = [
        (data[:at] + b"\xff" + data[at + 1:], "metadata is not text|not a valid ONNX model"),  # a TypeError before
        (variant(data_type_unknown), "not a valid ONNX model"),  # a ValueError before
        (b"PK\x03\x04 a zip, say", "not an ONNX file"),
        (data[: len(data) // 2], "not an ONNX file|not a valid ONNX model"),  # cut short
        (b"\x08\x07", "not a valid ONNX model"),  # a protobuf message, but no model: no opset
        (foreign, "not an ONNX file exported by mnistlab"),
        (variant(weights_changed), "changed after export"),
        (variant(classes_renamed), "changed after export"),
        (variant(version_changed),
         r"unsupported mnistlab ONNX format version '2\\nor so' \(this mnistlab reads version "),
        (variant(external_data), "external data"),
        (variant(custom_operator), "outside ONNX's standard set"),
        (resealed(classes="[" * 100_000), "'classes' must be a JSON list"),  # a RecursionError, a 500 on the web
    ]
    for content, expected in cases:
        path = tmp_path / "x.onnx"
        path.write_bytes(content)
        with pytest.raises(ModelFileError) as caught:
            read_onnx(path)
        assert re.search(expected, str(caught.value)) and "\n" not in str(caught.value), (expected, caught.value)
    with pytest.raises(ModelFileError, match="missing"):
        read_onnx(tmp_path / "none.onnx")


# -- the command line and the README ------------------------------------------------------------------

def test_cli_export(run_dir, tmp_path):
    target = tmp_path / "shirts.onnx"
    result = run_cli("export", str(run_dir), "--output", str(target), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["path"] == str(target) and target.is_file() and info["family"] == "logreg"
    assert info["check"].startswith("300 test images under onnxruntime")
    bad = run_cli("export", str(run_dir), "--format", "tflite")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: --format: cannot export as 'tflite'; choose one of: onnx"]
    bad = run_cli("export", str(run_dir), "--output", str(run_dir / "model.npz"))  # it replaced the run's model
    assert bad.returncode == 2 and bad.stderr.endswith("model.npz: an export's file name ends in .onnx\n")
    assert (run_dir / "model.npz").read_bytes()[:2] == b"PK"
    # into another run's folder: it replaced that run's model.onnx, which serve then refused (a 500 for each photo)
    import shutil

    other = tmp_path / "runs" / "other"
    shutil.copytree(run_dir, other)
    before = (other / "model.onnx").read_bytes() if (other / "model.onnx").exists() else None
    link = tmp_path / "latest.onnx"
    link.symlink_to(other / "model.onnx")
    for target in (other / "model.onnx", link):  # a link too: the export writes through it
        bad = run_cli("export", str(run_dir), "--output", str(target))
        assert bad.returncode == 2 and "that is run 'other''s export, not 'small''s" in bad.stderr, bad.stderr
    assert ((other / "model.onnx").read_bytes() if (other / "model.onnx").exists() else None) == before
    # its own folder, another name there, or a folder that merely holds a config.json: written
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text("{}")
    for target in (run_dir / "model.onnx", other / "mine.onnx", project / "model.onnx"):
        assert run_cli("export", str(run_dir), "--output", str(target)).returncode == 0 and target.is_file()
    # a folder of its own among the runs: it was made, and listed as a damaged run
    bad = run_cli("export", str(run_dir), "--output", str(run_dir.parent / "ghost" / "model.onnx"))
    assert bad.returncode == 2 and "'ghost' is none; write it elsewhere" in bad.stderr, bad.stderr
    assert not (run_dir.parent / "ghost").exists()


def test_a_file_where_the_export_needs_a_folder_is_named_as_one(run_dir, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for target in (notes / "model.onnx", notes / "sub" / "model.onnx"):  # were "(File exists)", "(Not a directory)"
        bad = run_cli("export", str(run_dir), "--output", str(target), "--no-check")
        assert bad.returncode == 2 and bad.stderr == f"error: cannot write {target} ({notes} is a file, not a folder)\n"
    bad = run_cli("train", "logreg", "--out", str(notes / "out"))  # the same words for every folder made
    assert bad.returncode == 2
    assert bad.stderr == f"error: --out: cannot write runs in {notes}/out/runs ({notes} is a file, not a folder)\n"
    assert notes.read_text() == "mine"
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    bad = run_cli("train", "logreg", "--out", str(tmp_path / "gone" / "out"))  # was "(File exists)"
    assert bad.returncode == 2 and f"({tmp_path / 'gone'} is a link to nowhere, not a folder)" in bad.stderr


def test_a_file_where_a_folder_is_made_is_said_once_by_every_writer(tmp_path):
    """make_folder's error said the path twice where it was itself the file ("[Errno 20] x is a file, not a
    folder: 'x'", on the command line "x is a file, not a folder: x"); a download folder and the benchmark's
    results folder were made by mkdir, whose "File exists" did not say what was wrong."""
    from mnistlab._io import make_folder
    from mnistlab.data.download import fetch_verified
    from mnistlab.errors import DatasetError
    from mnistlab.experiments.pipeline import DataChoice
    from mnistlab.experiments.zalando import _write_results

    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    for folder, in_the_way in [(notes, "a file"), (tmp_path / "gone", "a link to nowhere"), (notes / "sub", "a file")]:
        with pytest.raises(NotADirectoryError) as info:
            make_folder(folder)
        said = f"{folder if in_the_way == 'a link to nowhere' else notes} is {in_the_way}, not a folder"
        assert (str(info.value), info.value.filename) == (said, str(folder))
    with pytest.raises(DatasetError, match=f"^{notes}: cannot hold the download \\({notes} is a file, not a folder"):
        fetch_verified("x.gz", ["http://127.0.0.1:9/"], notes, "0" * 64)  # was "(File exists)"
    with pytest.raises(NotADirectoryError, match=f"^{notes} is a file, not a folder$"):  # was "File exists: …"
        _write_results(notes, "fashion-mnist", DataChoice(), [])
    assert notes.read_text() == "mine"
    results = tmp_path / "out" / "benchmarks" / "zalando-fashion-mnist"
    results.parent.mkdir(parents=True)
    results.write_text("mine")
    bad = run_cli("benchmark", "zalando", "--classifiers", "GaussianNB", "--quick", "--train-size", "300",
                  "--test-size", "100", "--out", str(tmp_path / "out"))
    assert bad.returncode == 2 and bad.stderr == f"error: {results} is a file, not a folder\n"  # "File exists: …"


def test_a_link_named_onnx_to_another_runs_model_file_is_refused_not_written_through(run_dir, tmp_path):
    """The .onnx rule read the name given, and the export wrote through the link: the other run's model.npz
    was replaced by the ONNX file, and that run could not be loaded any more."""
    other = tmp_path / "runs" / "other"
    shutil.copytree(run_dir, other)
    model_file = (other / "model.npz").read_bytes()
    link = tmp_path / "odd" / "link.onnx"
    link.parent.mkdir()
    link.symlink_to(other / "model.npz")
    result = run_cli("export", str(run_dir), "--output", str(link), "--no-check")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: {link}: an export's file name ends in .onnx (a link to {link.resolve()})"], result.stderr
    assert (other / "model.npz").read_bytes() == model_file and link.is_symlink()
    assert api.Run(other).model.family == "logreg"


def test_another_runs_export_copied_into_a_run_is_refused(run_dir, exported, tmp_path):
    """It was served as this run's model (another family's probabilities under this run's name)."""
    import shutil

    from mnistlab.inference.onnx_file import OnnxPredictor

    twin = tmp_path / "twin"
    shutil.copytree(run_dir, twin)
    with pytest.raises(ModelFileError, match=r"exported from run 'small' \(logreg\), not from this run"):
        OnnxPredictor(twin)
    api.Run(twin).export(check=False)
    assert OnnxPredictor(twin).model.metadata["run"] == "twin"
    odd = tmp_path / os.fsdecode(b"bad\xffname")  # a UnicodeEncodeError in protobuf before
    shutil.copytree(run_dir, odd)
    api.Run(odd).export(check=False)
    assert OnnxPredictor(odd).model.metadata["run"] == "bad\\udcffname"


def test_a_link_planted_in_a_run_folder_is_replaced_not_written_through(run_dir, tmp_path):
    import shutil

    twin, victim, outside = tmp_path / "twin", tmp_path / "victim.txt", tmp_path / "elsewhere.onnx"
    shutil.copytree(run_dir, twin)
    victim.write_text("precious")
    (twin / ONNX_FILE).unlink(missing_ok=True)
    (twin / ONNX_FILE).symlink_to(victim)
    api.Run(twin).export(check=False)
    assert victim.read_text() == "precious" and not (twin / ONNX_FILE).is_symlink()
    outside.symlink_to(tmp_path / "target.onnx")  # a path the user gives is theirs: written through
    api.Run(twin).export(outside, check=False)
    assert outside.is_symlink() and (tmp_path / "target.onnx").stat().st_size > 1000


def test_readme_onnxruntime_snippet_runs(run_dir, exported, fashion, tmp_path, monkeypatch):
    """The README's snippet, as written, predicts a converted photo with the exported file alone."""
    readme = (REPO / "README.md").read_text()
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S)
                   if "onnxruntime.InferenceSession" in block)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.onnx").write_bytes(exported.read_bytes())
    trouser = int(np.flatnonzero(fashion.y_test == 1)[0])
    (tmp_path / "shirt.jpg").write_bytes(make_photo(fashion.x_test[trouser], np.random.default_rng(3), "jpeg"))
    names = {}
    exec(compile(snippet, "README.md", "exec"), names)  # noqa: S102 - our own README
    assert names["classes"][int(names["probabilities"].argmax())] == "Trouser"


# -- serving with onnxruntime -------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve-onnx")
    params = {"epochs": 1, "widths": [8, 16], "batch_size": 64, "learning_rate": 0.1}
    return train("cnn", params, DataChoice(train_size=500, test_size=100), out, name="cnn-small")


def test_onnx_workers_predict_like_the_model_without_torch_or_sklearn(cnn_run, fashion):
    photos = [make_photo(fashion.x_test[i], np.random.default_rng(i), "jpeg") for i in range(3)]
    answers = {}
    for engine in ("onnx", "native"):
        workers = PhotoWorkers(1, engine)
        try:
            answers[engine] = [asyncio.run(workers.answer(cnn_run, photo)) for photo in photos]
            loaded = workers._current().submit(probe.top_level_modules).result()
        finally:
            workers.close()
        if engine == "onnx":
            assert (cnn_run / ONNX_FILE).is_file()  # exported on first use
            assert {"onnxruntime"} <= loaded and not {"torch", "sklearn"} & loaded, sorted(loaded)
        else:
            assert "torch" in loaded  # the probe does see it where it is
    for onnx_answer, native in zip(answers["onnx"], answers["native"]):
        assert onnx_answer["class"] == native["class"] and onnx_answer["image"] == native["image"]
        assert max(abs(onnx_answer["probabilities"][c] - p) for c, p in native["probabilities"].items()) < 1e-4
        assert onnx_answer["explanation_png"] is None and native["explanation_png"]


def test_web_onnx_engine_answers_and_reports_a_tampered_file(cnn_run, fashion):
    from fastapi.testclient import TestClient

    from mnistlab.web.app import create_app

    photo = make_photo(fashion.x_test[0], np.random.default_rng(0), "png")
    broken = cnn_run.parent / "cnn-broken"  # a run whose model file is gone: its export fails in its own process
    shutil.copytree(cnn_run, broken, ignore=shutil.ignore_patterns(ONNX_FILE, "model.npz"))
    with TestClient(create_app(cnn_run.parent.parent, default_run="cnn-small", workers=1, engine="onnx"),
                    raise_server_exceptions=False) as client:
        response = client.post("/api/predict", files={"file": ("p.png", photo)})
        assert response.status_code == 200, response.text
        assert response.json()["run"] == "cnn-small"
        response = client.post("/api/predict", files={"file": ("p.png", photo)}, data={"run": "cnn-broken"})
        assert response.status_code == 500 and response.json()["detail"].endswith("model.npz: missing")
        path = cnn_run / ONNX_FILE
        original = path.read_bytes()
        try:
            path.write_bytes(original.replace(b"mnistlab-onnx", b"mnistlab-xxxx"))
            response = client.post("/api/predict", files={"file": ("p.png", photo)})
            assert response.status_code == 500 and "not an ONNX file exported by mnistlab" in response.json()["detail"]
        finally:
            path.write_bytes(original)


def test_a_parameter_error_crosses_processes_as_itself():
    """What an export's process raises comes back to the server as the same error."""
    error = pickle.loads(pickle.dumps(ParameterError("format", "cannot export as 'x'")))
    assert type(error) is ParameterError and (error.parameter, error.problem) == ("format", "cannot export as 'x'")


def test_serve_refuses_an_unknown_engine(tmp_path):
    result = run_cli("serve", "--engine", "tensorrt", "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --engine: unknown engine 'tensorrt'; choose one of: native, onnx"


def test_pixels_input_is_uint8_images(exported):
    model = onnx.load(str(exported))
    (only,) = model.graph.input
    assert only.name == INPUT and only.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value or d.dim_param for d in only.type.tensor_type.shape.dim] == ["N", 1, 28, 28]


def test_missing_onnx_packages_are_said_with_what_to_install(monkeypatch):
    import importlib.util

    from mnistlab.inference import onnx_file

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(ExportError, match=r"onnxruntime missing\): pip install 'mnistlab\[onnx\]'"):
        PhotoWorkers(1, "onnx")
    with pytest.raises(ExportError, match="onnxruntime missing"):
        onnx_file.read_onnx(b"")


def test_a_temperature_scaled_model_exports_with_its_temperature(fashion, tmp_path):
    from mnistlab.models.temperature import TemperatureScaled

    for variant in ("logreg", "cnn"):  # one graph of ours, one of PyTorch's exporter
        model, classes, x_test = fitted(fashion, variant)
        scaled = TemperatureScaled(model, 2.5)
        path = export_onnx(scaled, classes, "fashion-mnist", variant, tmp_path / "t.onnx", check_images=x_test)
        got, expected = read_onnx(path).predict_proba(x_test), scaled.predict_proba(flatten_scale(x_test))
        assert np.abs(got - expected).max() <= PARITY_TOLERANCE
        assert np.abs(got - model.predict_proba(flatten_scale(x_test))).max() > 0.01  # the temperature is in it


def test_serve_exports_checked_where_the_test_images_are_at_hand(run_dir, tmp_path, monkeypatch):
    """Unchecked before: a float32 graph that computes other probabilities (a temperature sharpening them
    at float32's resolution) was served as the model."""
    import shutil

    from mnistlab.web import workers

    copy = tmp_path / "served"
    shutil.copytree(run_dir, copy)
    (copy / ONNX_FILE).unlink(missing_ok=True)
    workers.export(copy)
    assert read_onnx(copy / ONNX_FILE).metadata["check"].startswith("300 test images under onnxruntime")
    (copy / ONNX_FILE).unlink()
    monkeypatch.setenv("MNISTLAB_DATA_DIR", str(tmp_path / "no-data-here"))  # a server without the data
    workers.export(copy)
    assert read_onnx(copy / ONNX_FILE).metadata["check"] == "not checked"


def test_a_run_whose_export_was_refused_is_refused_again_without_another_try(tmp_path, monkeypatch):
    """serve --engine onnx started a process of its own for every request to such a run (4 s each), one
    after another, holding up every other run's export."""
    from mnistlab.web import workers

    run_dir = train("sklearn:RidgeClassifier", {}, DataChoice(train_size=300, test_size=100), tmp_path,
                    name="ridge", embedding=False)
    started = []
    real = workers.ProcessPoolExecutor
    monkeypatch.setattr(workers, "ProcessPoolExecutor",
                        lambda *args, **kwargs: started.append(1) or real(*args, **kwargs))
    pool = PhotoWorkers(1, "onnx")
    for _ in range(2):
        with pytest.raises(ExportError, match="it has no probabilities of its own"):
            pool.export_missing(run_dir)
    assert started == [1]
    train("sklearn:RidgeClassifier", {}, DataChoice(train_size=300, test_size=100), tmp_path, name="ridge",
          embedding=False, overwrite=True)
    with pytest.raises(ExportError):  # trained again: another run, tried again
        pool.export_missing(run_dir)
    assert started == [1, 1]


def test_the_onnx_engine_names_no_class_for_probabilities_that_are_not_numbers(run_dir, exported, fashion, tmp_path):
    """Served by the ONNX engine, NaN probabilities were answered as 'class 0' and a 500 'bug' (NaN is no JSON)."""
    from mnistlab.inference.onnx_file import OnnxPredictor

    predictor = OnnxPredictor(run_dir)
    predictor.model.predict_proba = lambda pixels: np.full((len(pixels), len(predictor.classes)), np.nan, np.float32)
    photo = tmp_path / "shirt.jpg"
    photo.write_bytes(make_photo(fashion.x_test[0], np.random.default_rng(0), "jpeg"))
    with pytest.raises(ModelFileError, match="shirt.jpg: the probabilities of the model of .* are not finite"):
        predictor.predict_photo(photo)
