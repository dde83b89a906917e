"""Model files and run folders that were tampered with: refused with one ModelFileError or
RunDamagedError naming the file, with memory bounded by what the files declare."""

from __future__ import annotations

import json
import re
import shutil
import tracemalloc

import numpy as np
import pytest

from fixtures.files import npy_bytes, npz_bytes
from mnistlab.api import Run
from mnistlab.errors import ModelFileError, ParameterError, RunDamagedError
from mnistlab.experiments.pipeline import DataChoice, evaluate_run, train
from mnistlab.experiments.store import read_predictions
from mnistlab.inference.predictor import Predictor
from mnistlab.models import get_family
from mnistlab.models.serialization import load_model, save_model


@pytest.fixture(scope="module")
def run(tmp_path_factory, fashion):
    """A small real logreg run (10 classes)."""
    return train("logreg", {"C": 0.1}, DataChoice(train_size=300, test_size=100), tmp_path_factory.mktemp("out"),
                 name="tiny")


@pytest.fixture
def copy(run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def edit_meta(run_dir, change) -> None:
    meta = json.loads((run_dir / "model.json").read_text())
    change(meta)
    (run_dir / "model.json").write_text(json.dumps(meta))


def peak_traced_bytes(fn, error) -> int:
    """The most memory Python and NumPy allocated while ``fn`` raised ``error``."""
    tracemalloc.start()
    try:
        with pytest.raises(error):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("arrays", [["coef_", "intercept_"], {"coef_": "float64"},
                                    {"coef_": {"dtype": "float64", "shape": "10,784"}},
                                    {"coef_": {"dtype": "float64", "shape": [10, -784]}}])
def test_malformed_array_declarations(copy, arrays):
    edit_meta(copy, lambda meta: meta.update(arrays=arrays))
    with pytest.raises(ModelFileError, match="model.json: .*must"):
        load_model(copy)


def run_members(copy) -> dict[str, bytes]:
    """The run's model.npz members as .npy bytes, to be tampered with one by one."""
    original = np.load(copy / "model.npz")
    return {name: npy_bytes(original[name].shape, original[name].dtype.str, original[name].tobytes())
            for name in original.files}


def test_a_header_declaring_ten_trillion_elements_is_refused_without_allocating(copy):
    coef = npy_bytes((10**13,), "<f8", bytes(2**20))
    (copy / "model.npz").write_bytes(npz_bytes({"coef_": coef}))
    edit_meta(copy, lambda meta: meta.update(arrays={"coef_": {"dtype": "float64", "shape": [10**13]}}))
    assert peak_traced_bytes(lambda: load_model(copy), ModelFileError) < 4 * 2**20
    with pytest.raises(ModelFileError, match="model.npz: arrays take more than 4 times the file.s size"):
        load_model(copy)


def test_a_member_whose_header_disagrees_with_model_json_is_refused_before_it_is_read(copy):
    # model.json says what the run wrote; the member's header claims 1.3 GB (its payload is 1 MB).
    members = run_members(copy)
    members["coef_"] = npy_bytes((325_000_000,), "<f4", bytes(2**20))
    (copy / "model.npz").write_bytes(npz_bytes(members, compress=True))
    assert peak_traced_bytes(lambda: load_model(copy), ModelFileError) < 4 * 2**20
    with pytest.raises(ModelFileError, match=r"array 'coef_' is float32 \[325000000\], expected 'float32' \[10, 784\]"):
        load_model(copy)


def test_a_member_longer_than_its_header_says_is_refused(copy):
    members = run_members(copy)
    members["coef_"] += bytes(64 * 2**20)  # 64 MB of zeros: 64 KB deflated
    (copy / "model.npz").write_bytes(npz_bytes(members, compress=True))
    assert peak_traced_bytes(lambda: load_model(copy), ModelFileError) < 4 * 2**20
    with pytest.raises(ModelFileError, match="array 'coef_': the archive says"):
        load_model(copy)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_weights_that_are_not_finite_are_refused(copy, value):
    model = load_model(copy)
    model.coef_ = model.coef_.copy()
    model.coef_[3, 100] = value
    save_model(model, copy)
    with pytest.raises(ModelFileError, match="model.npz: weights are not finite"):
        load_model(copy)


def test_a_model_of_another_class_count_than_the_run_is_refused(copy):
    rng = np.random.default_rng(0)
    twelve = get_family("logreg")(max_iter=5).fit(rng.random((120, 784), np.float32), np.arange(120) % 12)
    save_model(twelve, copy)
    with pytest.raises(ModelFileError, match="the model predicts 12 classes but the run lists 10"):
        Predictor(copy)
    with pytest.raises(ModelFileError, match="the model predicts 12 classes but the run lists 10"):
        Run(copy).model  # what the API's figures and explanations use
    with pytest.raises(ModelFileError, match="the model predicts 12 classes, the data has 10"):
        evaluate_run(copy)


def test_class_labels_other_than_the_runs_are_refused(copy):
    arrays = dict(np.load(copy / "model.npz"))
    for classes in (arrays["classes_"][::-1], np.r_[arrays["classes_"][:-1], 99]):  # reordered: wrong names shown
        np.savez(copy / "model.npz", **{**arrays, "classes_": classes})
        with pytest.raises(ModelFileError, match="classes_ are not the run's labels 0 to 9"):
            Predictor(copy)


def test_arrays_that_agree_with_model_json_but_not_with_each_other_are_refused(copy):
    model = load_model(copy)
    model.coef_ = model.coef_[:, :100].copy()  # a model of 100 pixels, in a run of 28×28 images
    save_model(model, copy)
    with pytest.raises(ModelFileError, match="cannot predict a 28×28 image"):
        Predictor(copy)


def test_predictions_that_are_a_bomb_or_inconsistent_are_run_damage(copy):
    (copy / "predictions.npz").write_bytes(npz_bytes({
        "y_true": npy_bytes((10**13,), "|u1", bytes(1000)), "y_pred": npy_bytes((0,), "|u1"),
        "proba": npy_bytes((0, 10), "<f4")}))
    assert peak_traced_bytes(lambda: read_predictions(copy, 10, 100), RunDamagedError) < 2**20
    (copy / "predictions.npz").write_bytes(npz_bytes({
        "y_true": npy_bytes((3,), "|u1", bytes(3)), "y_pred": npy_bytes((2,), "|u1", bytes(2)),
        "proba": npy_bytes((3, 10), "<f4", bytes(120))}))
    with pytest.raises(RunDamagedError, match="predictions.npz: expected integer y_true and y_pred of one length"):
        read_predictions(copy, 10, 100)


def test_predictions_that_contradict_themselves_or_the_metrics_are_run_damage(copy, run):
    from mnistlab.experiments.compare import compare_runs

    good = dict(np.load(run / "predictions.npz"))
    for change, message in [(lambda p: p.update(y_pred=(p["y_pred"] + 1) % 10), "not the most probable classes"),
                            (lambda p: p.update(proba=p["proba"][:, :3]), "a proba row of 10 classes per image"),
                            (lambda p: p.update({k: v[:50] for k, v in p.items()}), "50 test images, but the run was"),
                            (lambda p: p["proba"].__setitem__((0, 0), np.nan), "not finite")]:
        changed = {k: v.copy() for k, v in good.items()}
        change(changed)
        np.savez(copy / "predictions.npz", **changed)
        with pytest.raises(RunDamagedError, match=message):
            compare_runs([run, copy], copy.parent / "out")  # McNemar's p on made-up predictions, beside true accuracies
    changed = {k: v.copy() for k, v in good.items()}
    changed["y_true"] = changed["y_pred"]  # consistent with itself, not with metrics.json's confusion matrix
    np.savez(copy / "predictions.npz", **changed)
    with pytest.raises(RunDamagedError, match="not those metrics.json counts"):
        compare_runs([run, copy], copy.parent / "out")


def test_compressed_arrays_may_not_inflate_far_beyond_the_file(copy):
    # A consistent file, but 64 MB of weights in 64 KB: save_model never compresses, so this is foreign.
    members = run_members(copy)
    members["coef_"] = npy_bytes((10, 1_677_722), "<f4", bytes(10 * 1_677_722 * 4))
    (copy / "model.npz").write_bytes(npz_bytes(members, compress=True))
    edit_meta(copy, lambda meta: meta["arrays"]["coef_"].update(shape=[10, 1_677_722]))
    assert (copy / "model.npz").stat().st_size < 2**20
    assert peak_traced_bytes(lambda: load_model(copy), ModelFileError) < 4 * 2**20
    with pytest.raises(ModelFileError, match="arrays take more than 4 times the file's size"):
        load_model(copy)


def test_a_dtype_that_numpy_cannot_parse_is_refused(copy):
    members = run_members(copy)
    members["coef_"] = npy_bytes((10, 784), "(,)f4", bytes(4 * 7840))  # np.dtype raises SyntaxError for it
    (copy / "model.npz").write_bytes(npz_bytes(members))
    with pytest.raises(ModelFileError, match="model.npz: array 'coef_' unreadable"):
        load_model(copy)


def test_a_declared_dtype_cannot_break_a_message_into_lines(copy):
    edit_meta(copy, lambda meta: meta["arrays"]["coef_"].update(dtype="float32\n"))
    with pytest.raises(ModelFileError, match=r"array 'coef_' is float32 \[10, 784\], expected 'float32\\n'") as info:
        load_model(copy)
    assert "\n" not in str(info.value)


def test_an_unbalanced_npy_header_is_refused(copy):
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100, 10(, }"
    header += b" " * (117 - len(header)) + b"\n"  # NumPy pads the magic, version, length and dict to 128 bytes
    broken = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(4000)
    (copy / "predictions.npz").write_bytes(npz_bytes({"y_true": broken, "y_pred": broken, "proba": broken}))
    with pytest.raises(RunDamagedError, match="predictions.npz: array 'y_true' unreadable"):
        read_predictions(copy, 10, 100)


@pytest.mark.parametrize("change, message", [
    (lambda meta: meta["params"].update({"two\nlines": 1}), "bad family or parameters"),
    (lambda meta: meta.update(format_version=" \n"),
     r"unsupported format version ' \\n' \(this mnistlab reads version 1\)"),
])
def test_text_from_the_file_cannot_break_a_message_into_lines(copy, change, message):
    edit_meta(copy, change)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(copy)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content, message", [
    ("[" * 100_000, "config.json: not valid JSON"),
    ("[" * 500 + "]" * 500, "config.json: not valid JSON \\(nested deeper than 100\\)"),  # parsed, then overflowed
    ("seed", "data choice is not usable .*seed: must be an int in \\[0, 4294967295\\]"),
    ("data_dir", "data choice is not usable .*data_dir: must be a path"),
])
def test_config_json_that_nests_too_deep_or_holds_wrong_types(copy, content, message):
    from mnistlab.experiments.pipeline import run_data
    from mnistlab.run_config import read_config

    if content.startswith("["):
        (copy / "config.json").write_text(content)
    else:
        config = json.loads((copy / "config.json").read_text())
        config["data"][content] = ["not", "this"]
        config["name"] = "tiny\nrun"  # quoted in the message, which stays one line
        (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunDamagedError, match=message) as info:
        run_data(read_config(copy))
    assert "\n" not in str(info.value)


def test_an_infinite_setting_is_written_as_strict_json_and_read_back_as_a_float(tmp_path, fashion):
    run_dir = train("logreg", {"C": float("inf"), "max_iter": 3}, DataChoice(train_size=300, test_size=100),
                    tmp_path, name="unpenalised")

    def refuse(constant):
        raise ValueError(f"{constant} is not strict JSON")
    for name in ("config.json", "metrics.json", "model.json"):  # jq and browsers refuse Infinity
        json.loads((run_dir / name).read_text(), parse_constant=refuse)
    assert load_model(run_dir).get_params()["C"] == float("inf")
    edit_meta(run_dir, lambda meta: (meta["params"].update(C=float("inf")), meta.pop("nonfinite_params")))
    assert "Infinity" in (run_dir / "model.json").read_text()  # as written before: read as it was
    assert load_model(run_dir).get_params()["C"] == float("inf")


@pytest.mark.parametrize("names", [["a"] * 783, "pixel0", [0] * 784])
def test_feature_names_that_are_not_one_string_per_feature_are_refused(copy, names):
    edit_meta(copy, lambda meta: meta.update(feature_names_in=names))
    with pytest.raises(ModelFileError, match="model.json: 'feature_names_in' must list one name"):
        load_model(copy)


STRINGS, INTS = np.array(["T-shirt", "Trouser", "Bag"], object), np.array([3, 7, 9], object)


@pytest.mark.parametrize("family, labels, dtype", [("logreg", STRINGS, "<U7"), ("sklearn:SVC", STRINGS, "<U7"),
                                                   ("logreg", INTS, "int64")])  # (scikit-learn refuses object ints)
def test_labels_of_an_object_column_are_saved_as_text_or_ints_and_load(tmp_path, family, labels, dtype):
    """A frame's column of strings (dtype object) left an object classes_, which np.savez pickled into model.npz:
    the file saved, and load_model refused it (dtype object is not a plain numeric type)."""
    X = np.random.default_rng(0).random((60, 784), dtype=np.float32)
    model = get_family(family)().fit(X, labels[np.arange(60) % 3])
    assert model.classes_.dtype == object
    save_model(model, tmp_path)
    again = load_model(tmp_path)
    assert again.classes_.dtype == dtype and again.classes_.tolist() == model.classes_.tolist()
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_an_array_of_other_objects_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    model = get_family("logreg")(max_iter=5).fit(np.zeros((4, 784), np.float32), [0, 1, 0, 1])
    monkeypatch.setattr(model, "classes_", np.array([0, None], object))
    with pytest.raises(ParameterError, match="array 'classes_' holds object values cannot be kept in a model file"):
        save_model(model, tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("family, params, needed, said", [
    ("numpy-mlp", {"hidden": (8,), "max_epochs": 1}, "W2", "W2 (hidden=(8,))"),
    ("logreg", {"standardize": True, "max_iter": 5}, "scale_", "scale_ (standardize=True)"),
    ("mlp", {"hidden_layer_sizes": (8,), "max_iter": 5}, "b1", "b1"),
    ("sklearn:GaussianNB", {}, "skops_", "skops_"),
    ("lenet", {"epochs": 1}, "classes_", "classes_")])
def test_every_family_refuses_a_missing_array_and_ignores_an_extra_one(tmp_path, monkeypatch, family, params,
                                                                       needed, said):
    """Each family checked its model file's arrays with its own copy of the check, and numpy-mlp with another
    rule: an array more (a newer version's) was "model file arrays [...] do not match hidden=(8,)" there, and
    ignored by the others. Now one rule, one message."""
    import warnings

    X = np.random.default_rng(0).random((40, 784), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in so few iterations
        model = get_family(family)(**params).fit(X, np.arange(40) % 2)
    arrays = model.get_arrays()
    monkeypatch.setattr(model, "get_arrays", lambda: {**arrays, "newer_": np.zeros(3, np.float32)})
    save_model(model, tmp_path / "more")
    np.testing.assert_array_equal(load_model(tmp_path / "more").predict(X), model.predict(X))
    monkeypatch.setattr(model, "get_arrays", lambda: {k: v for k, v in arrays.items() if k != needed})
    save_model(model, tmp_path / "fewer")
    with pytest.raises(ModelFileError, match=rf"fewer: model file lacks arrays: {re.escape(said)}$"):
        load_model(tmp_path / "fewer")


def test_a_numpy_mlp_file_with_more_layers_than_its_settings_say_is_refused(tmp_path):
    """hidden=(10, 10) given as (10,) in model.json fits ten classes' shapes: it loaded and predicted nonsense."""
    X = np.random.default_rng(0).random((40, 784), dtype=np.float32)
    model = get_family("numpy-mlp")(hidden=(10, 10), max_epochs=1).fit(X, np.arange(40) % 10)
    save_model(model, tmp_path)
    settings = json.loads((tmp_path / "model.json").read_text())
    settings["params"]["hidden"] = [10]
    (tmp_path / "model.json").write_text(json.dumps(settings))
    with pytest.raises(ModelFileError, match=r"model file holds more layers than hidden=\(10,\) says"):
        load_model(tmp_path)
