"""The neural-network families: mlp (scikit-learn), lenet and cnn (PyTorch).

Small on purpose (a few hundred images, one to three epochs, narrow layers),
so the whole file runs in well under a minute and a half on two cores.
"""

from __future__ import annotations

import copy
import json
import warnings
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mnistlab.data import preprocess

from mnistlab.experiments import pipeline as training
from mnistlab.errors import DatasetError, ModelFileError, ParameterError, RunExistsError
from mnistlab.models.serialization import load_model, save_model
from mnistlab.models import family_names, get_family
from mnistlab.models.torch.cnn import PRESETS, PooledConv2d, random_shift, whitening_filters
from mnistlab.models.torch.checkpoint import CHECKPOINT_FILE
from mnistlab.models.torch.muon import NEWTON_SCHULZ, NesterovSGD, orthogonalized
from mnistlab.models.torch import device
from mnistlab.models.torch.device import computes_bfloat16, free_cores
from mnistlab.models.torch.training import TorchClassifier
from conftest import RecordingProgress, run_cli

# Small versions of the PyTorch families: what is tested is the machinery, not the accuracy.
# One CPU thread: a seed fixes the weights for a given thread count, and tests compare fits.
SMALL = {
    "lenet": dict(epochs=2, batch_size=64, threads=1),
    "cnn": dict(epochs=2, widths=(8, 16, 32), batch_size=64, threads=1),
}
SMALL_MLP = dict(hidden_layer_sizes=(32, 16), max_iter=3)
TORCH_FAMILIES = tuple(SMALL)


@pytest.fixture(scope="module")
def data(fashion):
    """512 training and 64 test images, stratified, as the pipeline gives them to a model."""
    train = preprocess.subset_indices(fashion.y_train, n=512, seed=0)
    test = preprocess.subset_indices(fashion.y_test, n=64, seed=0)
    return (preprocess.flatten_scale(fashion.x_train[train]), fashion.y_train[train],
            preprocess.flatten_scale(fashion.x_test[test]), fashion.y_test[test])


def small(family, **params):
    defaults = SMALL_MLP if family == "mlp" else SMALL[family]
    return get_family(family)(**{**defaults, "random_state": 0, **params})


@pytest.fixture(scope="module")
def fitted(data):
    """One fitted model per family, shared by the tests that only read it."""
    X, y, _, _ = data
    return {family: small(family).fit(X, y) for family in ("mlp", *TORCH_FAMILIES)}


def test_families_registered():
    assert {"mlp", "lenet", "cnn"} <= set(family_names())


@pytest.mark.parametrize("family", ["mlp", *TORCH_FAMILIES])
def test_shapes_and_history(fitted, data, family):
    model = fitted[family]
    _, _, X_test, _ = data
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert set(model.predict(X_test)) <= set(range(10))
    maps = model.explain(X_test[:3])
    assert maps.shape == (3, 10, 784)
    blank = np.broadcast_to((X_test[:3] == 0)[:, None, :], maps.shape)
    assert np.all(maps[blank] == 0)  # gradient × input: nothing where the input is 0
    assert np.abs(maps).sum() > 0
    assert len(model.history_["train_loss"]) == model.n_iter_ > 0


@pytest.mark.parametrize("family", TORCH_FAMILIES)
def test_training_loss_decreases(data, family):
    X, y, _, _ = data
    model = small(family, epochs=3, validation_fraction=0.2).fit(X, y)
    history = model.history_
    assert set(history) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert all(len(curve) == 3 for curve in history.values())
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_the_training_loss_recorded_is_the_cross_entropy_not_the_objective(data):
    # The CNN's objective adds label smoothing: recorded, it drew the training loss above the validation loss
    X, y, _, _ = data
    plain = small("lenet", epochs=2).fit(X, y)
    def objective(self, logits, labels):
        return torch.nn.functional.cross_entropy(logits, labels) + 100
    offset = type("Offset", (type(plain),), {"_loss": objective})
    shifted = offset(**plain.get_params()).fit(X, y)  # the same gradients, an objective 100 higher
    assert shifted.history_["train_loss"] == plain.history_["train_loss"] and plain.history_["train_loss"][-1] < 3


@pytest.mark.parametrize("family", TORCH_FAMILIES)
def test_same_seed_same_weights(fitted, data, family):
    X, y, _, _ = data
    again, other = small(family).fit(X, y), small(family, random_state=1).fit(X, y)
    for name, array in fitted[family].get_arrays().items():
        np.testing.assert_array_equal(again.get_arrays()[name], array, err_msg=name)
    last = "state.head.weight" if family == "cnn" else "state.fc3.weight"
    assert not np.array_equal(other.get_arrays()[last], fitted[family].get_arrays()[last])


def interrupt_at_epoch(monkeypatch, epoch):
    """Make every PyTorch fit stop with KeyboardInterrupt when it starts epoch ``epoch`` (0-based)."""
    original = TorchClassifier._train_epoch

    def train_epoch(self, network, optimizer, images, labels, generator, current, *args):
        if current == epoch:
            raise KeyboardInterrupt
        return original(self, network, optimizer, images, labels, generator, current, *args)

    monkeypatch.setattr(TorchClassifier, "_train_epoch", train_epoch)


@pytest.mark.parametrize("family", TORCH_FAMILIES)
def test_resumed_run_ends_with_the_same_weights(fitted, data, family, tmp_path, monkeypatch, one_prediction_thread):
    """1 epoch, interruption, resume == 2 epochs uninterrupted (shuffling, augmentation and
    dropout are drawn from the seed and the epoch, and the optimizer state is checkpointed)."""
    X, y, X_test, _ = data
    with monkeypatch.context() as patch:
        interrupt_at_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            small(family, checkpoint_dir=str(tmp_path)).fit(X, y)
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    resumed = small(family, checkpoint_dir=str(tmp_path)).fit(X, y)
    uninterrupted = fitted[family]
    for name, array in uninterrupted.get_arrays().items():
        np.testing.assert_array_equal(resumed.get_arrays()[name], array, err_msg=name)
    assert resumed.history_ == uninterrupted.history_
    np.testing.assert_array_equal(resumed.predict_proba(X_test), uninterrupted.predict_proba(X_test))


def test_checkpoint_of_other_settings_is_neither_resumed_nor_replaced(data, tmp_path, monkeypatch):
    """A fit with other settings started afresh and overwrote it after its first epoch: `--resume` with one
    setting changed lost the epochs it was asked to resume."""
    X, y, _, _ = data
    with monkeypatch.context() as patch:
        interrupt_at_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            small("lenet", checkpoint_dir=str(tmp_path)).fit(X, y)
    saved = (tmp_path / CHECKPOINT_FILE).read_bytes()
    with pytest.raises(ModelFileError, match="a fit with other parameters or data: only that fit resumes it"):
        small("lenet", learning_rate=3e-3, checkpoint_dir=str(tmp_path)).fit(X, y)
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == saved
    resumed = small("lenet", checkpoint_dir=str(tmp_path)).fit(X, y)  # its own fit still resumes it
    assert resumed.n_iter_ == 2 and "resumed after epoch 1" in resumed.fit_message_
    # finished, it is replaced: nothing of it is lost (review: a cross-validation's second fold was refused)
    progress = RecordingProgress()
    other = small("lenet", checkpoint_dir=str(tmp_path)).fit(X[:150], y[:150], progress=progress)
    assert other.n_iter_ == 2 and any("another fit's, which it finished" in line for line in progress.lines)


def test_checkpoint_of_a_changed_preset_is_not_resumed(data, tmp_path, monkeypatch):
    """A preset's name is not enough: a checkpoint from an older definition is not resumed."""
    X, y, _, _ = data
    params = dict(preset="fast", epochs=2, batch_size=64, random_state=0, checkpoint_dir=str(tmp_path), threads=1)
    with monkeypatch.context() as patch:
        interrupt_at_epoch(patch, 1)
        patch.setitem(PRESETS, "fast", {**PRESETS["fast"], "widths": (8, 8)})
        with pytest.raises(KeyboardInterrupt):
            get_family("cnn")(**params).fit(X, y)
    monkeypatch.setitem(PRESETS, "fast", {**PRESETS["fast"], "widths": (8, 8, 16)})
    with pytest.raises(ModelFileError, match="other parameters or data"):  # the old weights would not even fit
        get_family("cnn")(**params).fit(X, y)


@pytest.mark.parametrize("family", ["mlp", *TORCH_FAMILIES])
def test_save_load_is_bit_identical(fitted, data, family, tmp_path, one_prediction_thread):
    _, _, X_test, _ = data
    model = fitted[family]
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    np.testing.assert_array_equal(loaded.explain(X_test[:2]), model.explain(X_test[:2]))


def rewrite_model_file(folder, change):
    """Apply ``change`` to the arrays and rewrite model.npz and model.json consistently,
    so that only the family's own checks can catch the damage."""
    with np.load(folder / "model.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    change(arrays)
    np.savez(folder / "model.npz", **arrays)
    meta = json.loads((folder / "model.json").read_text())
    meta["arrays"] = {name: {"dtype": str(a.dtype), "shape": list(a.shape)} for name, a in arrays.items()}
    (folder / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(("family", "key"), [("mlp", "W2"), ("lenet", "state.conv2.weight"),
                                             ("cnn", "state.head.weight")])
def test_tampered_model_file_is_rejected(fitted, family, key, tmp_path):
    model = fitted[family]
    wrong_shape, missing = tmp_path / "shape", tmp_path / "missing"
    for folder in (wrong_shape, missing):
        save_model(model, folder)
    rewrite_model_file(wrong_shape, lambda arrays: arrays.update({key: arrays[key][..., :-1]}))
    rewrite_model_file(missing, lambda arrays: arrays.pop(key))
    with pytest.raises(ModelFileError, match="shape"):
        load_model(wrong_shape)
    with pytest.raises(ModelFileError, match=key.removeprefix("state.")):
        load_model(missing)
    with pytest.raises(ValueError, match="shape"):
        get_family(family)(**model.get_params()).set_arrays(
            {**model.get_arrays(), key: np.zeros((3, 3), dtype=np.float32)})


def test_settings_in_model_json_that_imply_a_huge_network_are_refused_before_it_is_built(fitted, tmp_path,
                                                                                        monkeypatch):
    save_model(fitted["cnn"], tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["params"]["widths"] = [8, 8192, 8192]  # gigabytes of weights, from a file of kilobytes
    (tmp_path / "model.json").write_text(json.dumps(meta))
    monkeypatch.setattr(TorchClassifier, "_network", lambda *a: pytest.fail("the network was built"))
    with pytest.raises(ModelFileError, match="weights do not fit the network"):
        load_model(tmp_path)


def test_mlp_explain_is_gradient_times_input(fitted, data):
    """Our NumPy backpropagation agrees with PyTorch's autograd on the same network."""
    model = fitted["mlp"]
    x = torch.from_numpy(data[2][:4]).requires_grad_(True)
    layers, a = list(zip(model.estimator_.coefs_, model.estimator_.intercepts_)), x
    for i, (W, b) in enumerate(layers):
        a = a @ torch.from_numpy(W) + torch.from_numpy(b)
        a = torch.relu(a) if i < len(layers) - 1 else a
    expected = torch.stack([torch.autograd.grad(a[:, k].sum(), x, retain_graph=True)[0] * x
                            for k in range(10)], dim=1)
    np.testing.assert_allclose(model.explain(data[2][:4]), expected.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_mlp_through_the_pipeline(tmp_path):
    run = training.train("mlp", {**SMALL_MLP, "max_iter": 30}, training.DataChoice(train_size=500, test_size=200),
                         tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.6 and len(metrics["history"]["train_loss"]) == metrics["n_iter"]
    assert metrics["fit_message"]
    assert load_model(run).predict(np.zeros((1, 784), dtype=np.float32)).shape == (1,)


def test_checkpoint_of_flips_before_auto_names_the_flip_that_resumes_it(data, tmp_path, monkeypatch):
    """Every cnn fit flipped before flip='auto', which is False on MNIST: the same command refused an MNIST run's
    checkpoint from then as 'a fit with other parameters or data', without saying which; it names flip now."""
    from mnistlab.cli import error_line
    from mnistlab.data.registry import DATASETS
    from mnistlab.errors import OtherFitsCheckpointError

    X, y, _, _ = data
    with monkeypatch.context() as patch:
        interrupt_at_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            small("cnn", flip=True, checkpoint_dir=str(tmp_path)).fit(X, y)
    on_mnist = small("cnn", checkpoint_dir=str(tmp_path))  # flip="auto", as the command gives it
    on_mnist.suit_dataset(DATASETS["mnist"])
    with pytest.raises(OtherFitsCheckpointError) as refused:
        on_mnist.fit(X, y)
    assert refused.value.parameter == "flip"
    assert error_line(refused.value) == (
        f"--flip: {tmp_path / CHECKPOINT_FILE} holds the epochs of a fit with flip=True (the default before 'auto', "
        "which flips only where a mirror image keeps its class): resume it with flip=True, or remove it to start "
        "afresh")
    for other_fit in (dict(learning_rate=0.05), dict(flip=False)):  # flip not the cause; a flip=False given
        with pytest.raises(OtherFitsCheckpointError, match="other parameters or data") as other:
            small("cnn", **other_fit, checkpoint_dir=str(tmp_path)).fit(X, y)
        assert other.value.parameter is None
    resumed = small("cnn", flip=True, checkpoint_dir=str(tmp_path)).fit(X, y)
    assert "resumed after epoch 1" in resumed.fit_message_


def test_tta_given_in_vain_says_where_flip_auto_turned_the_flips_off():
    """--tta false on MNIST was 'ignored (used only when flip is True)', where the user gave no flip: 'auto' was."""
    from mnistlab.data.registry import DATASETS
    from mnistlab.errors import UnusedParameterWarning

    model = small("cnn", tta=False)
    model.suit_dataset(DATASETS["mnist"])
    with pytest.warns(UnusedParameterWarning, match=r"^tta: ignored \(used only when flip is True; flip='auto' "
                                                    r"is False on mnist, whose mirror images change their class\)$"):
        model.validate_params()
    given = small("cnn", tta=False, flip=False)
    given.suit_dataset(DATASETS["mnist"])
    with pytest.warns(UnusedParameterWarning, match=r"^tta: ignored \(used only when flip is True\)$"):
        given.validate_params()


def interrupted_run(monkeypatch, family, params, data, out, name, epoch) -> None:
    """Train run ``name`` into ``out`` until it is interrupted as epoch ``epoch`` (0-based) starts."""
    with monkeypatch.context() as patch, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "stopped: ")  # what was kept: said to the user, asserted elsewhere
        interrupt_at_epoch(patch, epoch)
        with pytest.raises(KeyboardInterrupt):
            training.train(family, dict(params), data, out, name=name)


def test_pipeline_checkpoints_and_resumes(tmp_path, monkeypatch, one_prediction_thread):
    data = training.DataChoice(train_size=500, test_size=200)
    params = {**SMALL["cnn"], "epochs": 3}
    interrupted_run(monkeypatch, "cnn", params, data, tmp_path, "run", 2)
    assert (tmp_path / "checkpoints" / "run" / CHECKPOINT_FILE).is_file()
    assert not (tmp_path / "runs" / "run").exists()
    # a default name, which nothing can give to resume: nothing kept
    interrupted_run(monkeypatch, "cnn", params, data, tmp_path / "unnamed", None, 2)
    assert not (tmp_path / "unnamed" / "checkpoints").exists()

    epochs_trained = []
    original = TorchClassifier._train_epoch
    monkeypatch.setattr(TorchClassifier, "_train_epoch",
                        lambda self, *args: epochs_trained.append(args[5]) or original(self, *args))
    resumed = training.train("cnn", dict(params), data, tmp_path, name="run", resume=True)
    assert epochs_trained == [2]
    assert not (tmp_path / "checkpoints" / "run").exists()
    assert json.loads((resumed / "config.json").read_text())["params"]["checkpoint_dir"] is None

    whole = training.train("cnn", dict(params), data, tmp_path / "again", name="run")
    assert epochs_trained == [2, 0, 1, 2]
    with pytest.raises(ParameterError, match="checkpoint_dir: set by mnistlab, not given"):  # sweeps' points resumed
        training.train("cnn", {**params, "checkpoint_dir": str(tmp_path / "mine")}, data, tmp_path, name="mine")
    with np.load(resumed / "predictions.npz") as a, np.load(whole / "predictions.npz") as b:
        np.testing.assert_array_equal(a["proba"], b["proba"])
    report = (whole / "report.html").read_text()
    for plot in ("learning_curves", "class_saliency"):
        assert (whole / "plots" / f"{plot}.png").is_file()
        assert report_caption(plot) in report


def test_recipe_run_again_resumes_its_interrupted_run(tmp_path, monkeypatch, one_prediction_thread):
    """A recipe's runs (and train_all's) replace their runs, but their settings are fixed: run again after an
    interruption, one continued from its checkpoint (it was deleted, and the training began at epoch 1)."""
    from mnistlab.experiments import recipes

    data = training.DataChoice(train_size=500, test_size=200)
    params = {**SMALL["cnn"], "epochs": 3}
    job = training.TrainingJob("cnn", params, data, "recipe-x-reproduction", embedding=False)
    monkeypatch.setattr(recipes, "_jobs", lambda *args: [("x", "reproduction", job)])
    epochs_trained = []
    original = TorchClassifier._train_epoch
    monkeypatch.setattr(TorchClassifier, "_train_epoch",
                        lambda self, *args: epochs_trained.append(args[5]) or original(self, *args))
    for out, run in ((tmp_path / "recipe", lambda out: recipes.run_recipe("x", out)["reproduction"]),
                     (tmp_path / "all", lambda out: next(training.train_all([job], out))[1])):
        interrupted_run(monkeypatch, "cnn", params, data, out, job.name, 2)
        epochs_trained.clear()
        folder = run(out)
        assert epochs_trained == [2], out
        assert "resumed after epoch 2" in json.loads((folder / "metrics.json").read_text())["fit_message"]
        assert not (out / "checkpoints").exists()

    # another fit's checkpoint (the recipe's settings changed since, or a user's run of its name): it was resumed,
    # which refused it ("give the settings it was written with"), and recipes run has no flag to start afresh
    interrupted_run(monkeypatch, "cnn", {**params, "learning_rate": 0.05}, data, tmp_path / "other", job.name, 2)
    epochs_trained.clear()
    said = RecordingProgress()
    training.train_job(job, tmp_path / "other", said)
    assert epochs_trained == [0, 1, 2]
    assert [line for line in said.lines if "discard" in line] == [  # one line: the discard was said twice
        f"discarding {tmp_path / 'other' / 'checkpoints' / job.name}: the checkpoint of a fit with other settings or "
        "data"]
    # a family that writes no checkpoints was asked to resume where a folder of its run's name held a file
    stray = tmp_path / "recipe" / "checkpoints" / "recipe-y-ours"
    stray.mkdir(parents=True)
    (stray / "checkpoint.safetensors").write_bytes(b"")
    training.train_job(training.TrainingJob("numpy-softmax", {"max_epochs": 1}, data, "recipe-y-ours",
                                            embedding=False), tmp_path / "recipe")


def test_an_interrupted_overwrite_says_what_it_kept_and_how_to_go_on(tmp_path, monkeypatch, one_prediction_thread):
    """An overwrite stopped after epoch 1 said only "interrupted": nothing said that the old run was kept as it
    was, nor where the stopped fit's checkpoint was; a re-run without overwrite (with resume alone too) was told
    only "choose another name or overwrite it", and overwrite then deleted that checkpoint in silence."""
    data = training.DataChoice(train_size=500, test_size=200)
    params = {**SMALL["cnn"], "epochs": 2}
    run = training.train("cnn", dict(params), data, tmp_path, name="run", embedding=False)
    old = (run / "config.json").read_bytes()
    checkpoints = tmp_path / "checkpoints" / "run"
    with monkeypatch.context() as patch:
        interrupt_at_epoch(patch, 1)
        with pytest.warns(UserWarning) as said, pytest.raises(KeyboardInterrupt):
            training.train("cnn", {**params, "learning_rate": 0.05}, data, tmp_path, name="run", overwrite=True)
    assert [str(w.message) for w in said] == [f"stopped: run 'run' is kept as it was in {run}; the stopped "
                                              f"training's checkpoint is kept in {checkpoints}"]
    assert (run / "config.json").read_bytes() == old
    for resume in (False, True):
        with pytest.raises(RunExistsError, match=re.escape(
                f"run 'run' exists in {tmp_path / 'runs'}; an interrupted training of it kept its checkpoint in "
                f"{checkpoints}: resume and overwrite it with the command that trained it to continue that training, "
                "or overwrite it to start afresh")):
            training.train("cnn", {**params, "learning_rate": 0.05}, data, tmp_path, name="run", resume=resume)
    overwritten = RecordingProgress()
    run = training.train("cnn", {**params, "learning_rate": 0.05}, data, tmp_path, name="run", overwrite=True,
                         progress=overwritten, embedding=False)
    discarded = f"discarded the checkpoint an interrupted training kept in {checkpoints}"
    assert f"{discarded}: started afresh" in json.loads((run / "metrics.json").read_text())["fit_message"]  # --json
    assert not [line for line in overwritten.lines if "discard" in line]  # said once, with the fit's message


def test_a_default_named_runs_checkpoints_are_swept_once_its_process_is_gone(tmp_path, monkeypatch,
                                                                            one_prediction_thread):
    """A run under a made-up name, killed outright (SIGKILL, out of memory), left <out>/checkpoints/<name>, which no
    later call can resume and nothing removed: now its checkpoints are in a folder of its process's, which a listing
    (and the next such run) sweeps once that process is gone, and never while it trains."""
    from mnistlab.experiments.store import RunStore

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process id that no process has now
    left = tmp_path / "checkpoints" / f".staging-{gone.pid}-cnn-fashion-mnist-20261201-101500-abcd1234"
    left.mkdir(parents=True)
    (left / CHECKPOINT_FILE).write_bytes(b"epochs")
    seen = []
    original = TorchClassifier._train_epoch

    def train_epoch(self, *args):
        if args[5] == 1:  # the first epoch's checkpoint is written
            seen.append(Path(self.checkpoint_dir))
            RunStore(tmp_path).list()  # a listing meanwhile leaves a live process's alone
            assert (seen[0] / CHECKPOINT_FILE).is_file()
        return original(self, *args)
    monkeypatch.setattr(TorchClassifier, "_train_epoch", train_epoch)
    training.train("cnn", dict(SMALL["cnn"]), training.DataChoice(train_size=500, test_size=200), tmp_path,
                   embedding=False)
    assert seen[0].parent == tmp_path / "checkpoints" and seen[0].name.startswith(f".staging-{os.getpid()}-cnn-")
    assert not (tmp_path / "checkpoints").exists()  # the leftover swept, the run's own removed with the folder
    left.mkdir(parents=True)
    RunStore(tmp_path).list()
    assert not left.exists()


def test_checkpoints_that_cannot_be_written_are_refused_before_the_data(tmp_path, monkeypatch):
    """<out>/checkpoints that takes no file (here a file in its place; a folder not writable alike) was found
    only when the first epoch's checkpoint was written."""
    (tmp_path / "checkpoints").write_text("not a folder")
    monkeypatch.setattr(training.DataChoice, "load", lambda *args: pytest.fail("the data was loaded"))
    with pytest.raises(ParameterError, match=f"out: cannot write checkpoints in {re.escape(str(tmp_path))}"
                                             "/checkpoints/c \\(Not a directory\\)"):
        training.train("cnn", dict(SMALL["cnn"]), training.DataChoice(train_size=500, test_size=200), tmp_path,
                       name="c")


def test_cnn_flips_by_default_only_a_dataset_whose_mirror_images_keep_their_class(mnist_dir, tmp_path,
                                                                                 one_prediction_thread):
    """flip="auto": a run resolves it from the dataset's description and records the value; its model loads with
    it. Flips were on for every dataset: on MNIST (5,000 images) they made 60% more errors, without a word."""
    for dataset, data_dir, flips in (("fashion-mnist", None, True), ("mnist", str(mnist_dir), False)):
        data = training.DataChoice(dataset, data_dir, train_size=200, test_size=50)
        folder = training.train("cnn", dict(SMALL["cnn"], epochs=1), data, tmp_path, name=dataset, embedding=False)
        assert json.loads((folder / "config.json").read_text())["params"]["flip"] is flips
        model = load_model(folder)
        assert model.flip is flips
        with np.load(folder / "predictions.npz") as saved:  # the loaded model predicts as the run did
            np.testing.assert_allclose(model.predict_proba(preprocess.flatten_scale(data.load().x_test)),
                                       saved["proba"], atol=1e-6)
    given = training.train("cnn", dict(SMALL["cnn"], epochs=1, flip=True), data, tmp_path, name="given",
                           embedding=False)
    assert json.loads((given / "config.json").read_text())["params"]["flip"] is True  # as given, on MNIST
    assert small("cnn")._flip()  # a fit outside a run, not told of its data, flips as before


def report_caption(plot: str) -> str:
    from mnistlab.experiments.figures import FIGURES

    return FIGURES[plot].caption[:30]


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_precisions_train(data, precision):
    X, y, _, _ = data
    model = small("cnn", epochs=3, precision=precision).fit(X, y)
    assert model.history_["train_loss"][-1] < model.history_["train_loss"][0]


def test_auto_precision_is_bfloat16_only_where_the_hardware_has_it(data):
    cnn, cpu = small("cnn"), torch.device("cpu")
    expected = torch.bfloat16 if computes_bfloat16(cpu) else None
    assert cnn._autocast_dtype(cpu) == expected
    assert small("cnn", precision="float32")._autocast_dtype(cpu) is None
    X, y, _, _ = data
    with pytest.raises(ParameterError, match="precision"):  # before the first epoch, not at it
        small("cnn", precision="fp8").fit(X, y)


def test_resume_needs_a_name_and_a_family_that_checkpoints(tmp_path):
    result = run_cli("train", "cnn", "--resume", "--out", str(tmp_path))
    assert result.returncode == 2 and "--name" in result.stderr
    with pytest.raises(ValueError, match="checkpoints"):
        training.train("mlp", dict(SMALL_MLP), training.DataChoice(train_size=500, test_size=200),
                       tmp_path, name="x", resume=True)


def test_device_auto_runs_on_the_cpu_here(data):
    X, y, X_test, _ = data
    model = small("cnn", epochs=1, device="auto").fit(X[:128], y[:128])
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(model.network_.parameters()).device.type == expected
    assert model.predict(X_test).shape == (len(X_test),)
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA") as error:
            small("cnn", device="cuda").fit(X[:128], y[:128])
        assert error.value.parameter == "device"


def test_a_model_trained_on_a_gpu_loads_on_a_cpu(data, tmp_path):
    """device="cuda" is a valid value wherever the file is read; the weights land on what is there."""
    X, y, X_test, _ = data
    model = small("cnn", epochs=1).fit(X[:128], y[:128])
    save_model(model, tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["params"]["device"] = "cuda"
    (tmp_path / "model.json").write_text(json.dumps(meta))
    loaded = load_model(tmp_path)
    assert np.allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), atol=1e-5)


def test_cnn_presets_and_widths():
    assert small("cnn", widths=(4, 8))._build_network(10).head.in_features == 8
    assert small("cnn", widths=[4, 8])._build_network(10).head.in_features == 8  # as a model.json gives it
    long = get_family("cnn")(preset="long")
    assert long._epochs() == PRESETS["long"]["epochs"]
    assert long._build_network(10).head.in_features == PRESETS["long"]["widths"][-1]
    assert get_family("cnn")(preset="long", epochs=3)._epochs() == 3  # a parameter overrides its preset
    for widths in [(4, 4, 4, 4, 4), (), "4,8", (4, 0)]:
        with pytest.raises(ParameterError, match="widths"):
            small("cnn", widths=widths).validate_params()
    with pytest.raises(ParameterError, match="preset"):
        get_family("cnn")(preset="huge").validate_params()
    with pytest.raises(ParameterError, match="at most 3 stages"):
        small("cnn", widths=(4, 4, 4, 4), pool="between").validate_params()
    # the fast preset's pool, which the user never gave, was said as if given
    with pytest.raises(ParameterError, match=r"^widths: with the fast preset's pool='between' at most 3 stages "
                                             r"\(28 → 14 → 7 → 3\), with pool='after', 4; got 4$"):
        small("cnn", widths=(4, 4, 4, 4)).validate_params()
    # and the widths given, not the preset's whitening, named as the cause: --widths 32,64 was '--whiten: …'
    with pytest.raises(ParameterError, match=r"^widths: whitening \(the fast preset's whiten=True\) fixes at most 18 "):
        small("cnn", widths=(32, 8)).validate_params()
    with pytest.raises(ParameterError, match=r"^whiten: whitening \(whiten=True\) fixes at most 18 "):
        small("cnn", widths=(32, 8), whiten=True).validate_params()
    small("cnn", widths=(4, 4, 4, 4), pool="after").validate_params()


@pytest.mark.parametrize("channels_last", [False, True])
def test_random_shift_moves_each_image_within_its_padded_frame(channels_last):
    """Every image comes out as one window of itself padded with zeros, offset by at most the
    pixels asked for; over a batch, every offset occurs."""
    images = torch.rand(400, 3, 9, 7)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    shifted = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    padded = torch.nn.functional.pad(images, (2,) * 4)
    offsets = set()
    for image, out in zip(padded, shifted):
        matches = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(image[:, dy:dy + 9, dx:dx + 7], out)]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) == 25


def test_whitening_filters_whiten_the_patches(data):
    """The 9 filters (without their negatives) turn the images' 3×3 patches into uncorrelated
    channels of unit variance, largest variance first; each filter is followed by its negative."""
    X, _, _, _ = data
    images = torch.from_numpy(X).reshape(-1, 1, 28, 28)
    filters = whitening_filters(images, 18)
    assert filters.shape == (18, 1, 3, 3)
    np.testing.assert_array_equal(filters[1::2], -filters[::2])
    channels = torch.nn.functional.conv2d(images, filters[::2], padding=1).transpose(0, 1).reshape(9, -1)
    covariance = torch.cov(channels.double()).numpy()
    # unit variance up to the floor that keeps flat directions from being blown up
    assert np.abs(covariance - np.diag(np.diag(covariance))).max() < 1e-3
    assert np.all(np.diag(covariance) <= 1) and np.all(np.diag(covariance)[:6] > 0.8)
    assert whitening_filters(images, 5).shape == (5, 1, 3, 3)


def test_whitened_first_layer_stays_fixed_while_the_rest_learns(data):
    X, y, _, _ = data
    one, two = (small("cnn", whiten=True, epochs=epochs).fit(X, y).network_.stage0 for epochs in (1, 2))
    expected = whitening_filters(torch.from_numpy(X).reshape(-1, 1, 28, 28), one[0].out_channels)
    for stage in (one, two):
        assert not stage[0].weight.requires_grad
        torch.testing.assert_close(stage[0].weight.detach().contiguous(), expected.contiguous())
    assert not torch.equal(one[4].weight, two[4].weight)  # the second convolution learned on
    with pytest.raises(ParameterError, match="whiten"):
        small("cnn", widths=(32, 64), whiten=True).validate_params()
    small("cnn", widths=(32, 64), whiten=False).validate_params()
    assert PRESETS["fast"]["whiten"] and not PRESETS["long"]["whiten"]


def newton_schulz(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Muon's iteration as written in its paper: X ← aX + (bA + cA²)X, A = XXᵀ, on the wide side."""
    a, b, c = NEWTON_SCHULZ
    x = g.reshape(len(g), -1).double()
    tall = x.shape[0] > x.shape[1]
    x = (x.T if tall else x) / x.norm()
    for _ in range(steps):
        A = x @ x.T
        x = a * x + (b * A + c * A @ A) @ x
    return (x.T if tall else x).reshape(g.shape)


@pytest.mark.parametrize("shape", [(16, 8, 3, 3), (128, 32, 3, 3), (40, 6), (6, 40)])
def test_orthogonalized_is_the_newton_schulz_iteration(shape):
    g = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.01, 1, shape[-1])
    x = orthogonalized(g)
    assert x.shape == g.shape and x.dtype == torch.float32
    torch.testing.assert_close(x.double(), newton_schulz(g), atol=1e-5, rtol=0)
    singular = torch.linalg.svdvals(x.reshape(len(x), -1))
    assert 0.6 < singular.min() and singular.max() < 1.25  # about orthogonal: all its directions alike


def test_filter_muon_state_round_trips_in_torch_optims_layout():
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.BatchNorm2d(8))
    muon = NesterovSGD.filter_muon(network, peak_lr=0.4, filter_lr=0.06, momentum=0.9, filter_momentum=0.8,
                                   weight_decay=5e-4)
    for p in network.parameters():
        p.grad = torch.randn_like(p)
    muon.step()
    saved = muon.state_dict()
    assert sorted(saved["state"]) == [0, 1, 2] and [g["params"] for g in saved["param_groups"]] == [[0], [1, 2]]
    again = NesterovSGD.filter_muon(network, peak_lr=0.4, filter_lr=0.06, momentum=0.9, filter_momentum=0.8,
                                    weight_decay=5e-4)
    again.load_state_dict(saved)
    for p in network.parameters():
        torch.testing.assert_close(again.state[p]["momentum_buffer"], muon.state[p]["momentum_buffer"], rtol=0, atol=0)
    muon.zero_grad()
    assert all(p.grad is None for p in network.parameters())
    with pytest.raises(ValueError, match="parameter groups"):
        NesterovSGD.filter_muon(network[1], peak_lr=0.4, filter_lr=0.06, momentum=0.9, filter_momentum=0.8,
                                weight_decay=5e-4).load_state_dict(saved)


def test_a_cnn_fit_does_not_import_the_compiler():
    """torch.optim's optimisers import torch._dynamo on first use (~0.9 s, and ~2 ms a step after); the CNN's
    do not, with Muon (the fast preset) or SGD."""
    code = ("import sys, numpy as np\n"
            "from mnistlab.models.torch.cnn import CNN\n"
            "X = np.random.default_rng(0).random((64, 784), dtype=np.float32)\n"
            "for optimizer in ('muon', 'sgd'):\n"
            "    CNN(epochs=1, batch_size=32, widths=(8, 16, 32), threads=1, optimizer=optimizer)"
            ".fit(X, np.arange(64) % 4)\n"
            "print('torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_filter_muon_steps_the_filters_orthogonally_and_the_rest_as_sgd():
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.BatchNorm2d(8))
    twin = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.BatchNorm2d(8))
    twin.load_state_dict(network.state_dict())
    muon = NesterovSGD.filter_muon(network, peak_lr=0.4, filter_lr=0.06, momentum=0.9, filter_momentum=0.8,
                                   weight_decay=5e-4)
    sgd = torch.optim.SGD(list(twin[1].parameters()), lr=0.0, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for step in range(3):
        for optimizer in (muon, sgd):
            for group in optimizer.param_groups:
                group["lr"] = 0.2  # what a schedule sets: the filters then step by 0.2 × 0.06 / 0.4
        gradients = [torch.randn_like(p) for p in network.parameters()]
        for model in (network, twin):
            for p, g in zip(model.parameters(), gradients):
                p.grad = g.clone()
        before = network[0].weight.detach().clone()
        muon.step()
        sgd.step()
        filters = network[0].weight.detach()
        assert filters.norm().item() == pytest.approx(8 ** 0.5, rel=1e-3)  # held at √(out channels) …
        if step == 0:  # … and moved along the orthogonalised gradient (the first momentum is the gradient)
            expected = before * 8 ** 0.5 / before.norm() - 0.2 * 0.06 / 0.4 * orthogonalized(gradients[0] * 1.8)
            torch.testing.assert_close(filters, expected)
    for mine, reference in zip(network[1].parameters(), twin[1].parameters()):
        torch.testing.assert_close(mine, reference, rtol=0, atol=0)


def test_cnn_optimizer_follows_the_preset():
    assert PRESETS["fast"]["optimizer"] == "muon" and PRESETS["long"]["optimizer"] == "sgd"
    network = small("cnn")._build_network(10)
    settings = {"fast": {}, "long": {"preset": "long"}, "sgd": {"optimizer": "sgd"}}
    orthogonal = {name: [group["orthogonal"]
                         for group in get_family("cnn")(**params)._make_optimizer(network).param_groups]
                  for name, params in settings.items()}
    assert orthogonal == {"fast": [True, False], "long": [False], "sgd": [False]}
    with pytest.raises(ParameterError, match="optimizer"):
        small("cnn", optimizer="adam").validate_params()


def test_sgd_steps_and_resumes_as_torch_optim_sgd():
    """Its arithmetic and state layout are torch.optim.SGD's (nesterov=True), frozen parameters included in
    the indices, so the two step alike and a checkpoint of either resumes in the other."""
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.BatchNorm2d(8), torch.nn.Linear(4, 2))
    network[0].weight.requires_grad_(False)
    twin = copy.deepcopy(network)
    ours = NesterovSGD.sgd(network, momentum=0.9, weight_decay=5e-4)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.0, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for step in range(3):
        for optimizer in (ours, theirs):
            for group in optimizer.param_groups:
                group["lr"] = 0.1 * (step + 1)
        gradients = [torch.randn_like(p) for p in network.parameters()]
        for model in (network, twin):
            for p, g in zip(model.parameters(), gradients):
                p.grad = g.clone() if p.requires_grad else None
        ours.step()
        theirs.step()
    for mine, reference in zip(network.parameters(), twin.parameters()):
        torch.testing.assert_close(mine, reference, rtol=0, atol=0)
    saved = theirs.state_dict()
    assert sorted(saved["state"]) == sorted(ours.state_dict()["state"]) == [1, 2, 3, 4]
    again = NesterovSGD.sgd(network, momentum=0.9, weight_decay=5e-4)
    again.load_state_dict(saved)
    for p, reference in zip(network.parameters(), twin.parameters()):
        if p.requires_grad:
            torch.testing.assert_close(again.state[p]["momentum_buffer"], theirs.state[reference]["momentum_buffer"],
                                       rtol=0, atol=0)


@pytest.mark.parametrize("pool", ["after", "between"])
def test_cnn_pooling_places(pool):
    """"after": each stage's two convolutions at its input's resolution, pooled after (the last stage
    not); "between": the first convolution pooled before its batch norm, so the second runs at half."""
    network = small("cnn", widths=(4, 8, 16), pool=pool)._build_network(10)
    sizes = []
    for stage in (network.stage0, network.stage1, network.stage2):
        for conv in (m for m in stage if isinstance(m, torch.nn.Conv2d)):
            conv.register_forward_hook(lambda module, inputs, output: sizes.append(output.shape[-1]))
    network.eval()(torch.zeros(1, 1, 28, 28))
    # a 7×7 → 3×3 pool reads 6×6: the convolution before it computes no more (PooledConv2d)
    assert sizes == ([28, 28, 14, 14, 7, 7] if pool == "after" else [28, 14, 14, 7, 6, 3])
    assert network.head.in_features == 16


@pytest.mark.parametrize("size", [28, 7, 6, 5])
def test_pooled_convolution_computes_what_the_pool_reads(size):
    """PooledConv2d then a 2×2 max-pool gives what a padded 3×3 Conv2d then the pool gives, with the same weights."""
    pooled = PooledConv2d(3, 4)
    plain = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    plain.load_state_dict(pooled.state_dict())
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(size))
    expected = torch.nn.functional.max_pool2d(plain(x), 2)
    assert torch.allclose(torch.nn.functional.max_pool2d(pooled(x), 2), expected, atol=1e-6)
    assert pooled(x).shape[-1] == size // 2 * 2


@pytest.mark.parametrize("family", ["mlp", *TORCH_FAMILIES])
def test_progress_reports_each_epoch(data, family):
    X, y, _, _ = data
    recorder = RecordingProgress()
    model = small(family, **({"max_iter": 2} if family == "mlp" else {"epochs": 1})).fit(X, y, progress=recorder)
    assert len(recorder.starts) == 1 and recorder.ends == 1
    assert recorder.done and recorder.done == sorted(recorder.done)
    total, unit = recorder.starts[0]
    assert recorder.done[-1] == (total if unit == "step" else model.n_iter_)
    assert len(recorder.lines) == model.n_iter_ and "loss" in recorder.lines[-1]


def test_resumed_fit_reports_where_it_resumes(data, tmp_path, monkeypatch):
    X, y, _, _ = data
    with monkeypatch.context() as patch:
        interrupt_at_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            small("lenet", checkpoint_dir=str(tmp_path)).fit(X, y, progress=RecordingProgress())
    recorder = RecordingProgress()
    small("lenet", checkpoint_dir=str(tmp_path)).fit(X, y, progress=recorder)
    steps = -(-len(y) // SMALL["lenet"]["batch_size"])
    assert recorder.starts == [(2 * steps, "step")] and recorder.done[0] == steps
    assert recorder.lines[0].startswith("resuming after epoch 1")


def test_a_rerun_without_resume_keeps_the_interrupted_run_s_checkpoint(tmp_path, monkeypatch):
    """It was deleted before the data was loaded: even a re-run that then failed (a data folder mistyped)
    lost the interrupted run's epochs, without a word."""
    data = training.DataChoice(train_size=300, test_size=100)
    params = {**SMALL["lenet"], "epochs": 2}
    interrupted_run(monkeypatch, "lenet", params, data, tmp_path, "lost", 1)
    checkpoint = tmp_path / "checkpoints" / "lost" / CHECKPOINT_FILE
    saved = checkpoint.read_bytes()
    result = run_cli("train", "lenet", "--name", "lost", "--epochs", "2", "--train-size", "300", "--test-size", "100",
                     "--out", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr == (f"error: an interrupted training of run 'lost' kept its checkpoint in "
                             f"{checkpoint.parent}: resume it with the command that trained it to continue that "
                             "training, or overwrite it to start afresh\n")  # the claim's words, as beside a run of it
    assert checkpoint.read_bytes() == saved and not (tmp_path / "runs" / "lost").exists()
    elsewhere = training.DataChoice(train_size=300, test_size=100, data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError):  # overwritten, but failing on its data: kept (review)
        training.train("lenet", dict(params), elsewhere, tmp_path, name="lost", overwrite=True)
    assert checkpoint.read_bytes() == saved
    overwritten = training.train("lenet", dict(params), data, tmp_path, name="lost", overwrite=True)
    assert "resumed" not in json.loads((overwritten / "metrics.json").read_text())["fit_message"]
    assert not checkpoint.parent.exists()
    # what a process killed while writing one leaves is no checkpoint: nothing refused, nothing to resume
    checkpoint.parent.mkdir(parents=True)
    (checkpoint.parent / ".staging-99999-checkpoint.safetensors-x.tmp").write_bytes(b"half")
    training.train("lenet", dict(params), data, tmp_path / "again", name="lost")
    (tmp_path / "again" / "checkpoints" / "lost").mkdir(parents=True)
    (tmp_path / "again" / "checkpoints" / "lost" / ".staging-99999-checkpoint.safetensors-x.tmp").write_bytes(b"h")
    run = training.train("lenet", dict(params), data, tmp_path / "again", name="lost", overwrite=True, resume=True)
    assert "nothing to resume" in json.loads((run / "metrics.json").read_text())["fit_message"]


def test_resume_says_why_it_starts_afresh(tmp_path):
    from conftest import RecordingProgress

    data = training.DataChoice(train_size=300, test_size=100)
    params = {"preset": "fast", "epochs": 1, "batch_size": 64, "learning_rate": 0.05, "widths": (4, 8)}
    progress = RecordingProgress()
    run = training.train("cnn", dict(params), data, tmp_path, name="r", resume=True, progress=progress)
    # with the result, which reaches every caller (the command's summary, --json, a notebook's run card), once: a
    # line logged too said it twice on `train --resume`
    assert "nothing to resume in " in json.loads((run / "metrics.json").read_text())["fit_message"]
    assert not any("nothing to resume" in line for line in progress.lines)
    folder = tmp_path / "checkpoints" / "r2"
    folder.mkdir(parents=True)
    (folder / CHECKPOINT_FILE).write_bytes(b"truncated")
    progress = RecordingProgress()
    training.train("cnn", dict(params), data, tmp_path, name="r2", resume=True, progress=progress)
    assert any("not resuming" in line and "unreadable" in line for line in progress.lines)


def _rewritten(path, change) -> None:
    """The checkpoint at ``path`` with ``change(tensors, meta)`` applied, its fingerprint kept."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())
    change(tensors, meta)
    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize("change, problem", [
    (lambda t, m: t.update({"model.conv1.weight": torch.zeros(3, 3)}), "weights do not fit the network"),
    (lambda t, m: t.pop("model.fc3.weight"), "weights do not fit the network"),
    (lambda t, m: m.update(epoch="99"), "epoch '99' of 2"),  # trained nothing, and wrote a run
    (lambda t, m: m.update(epoch="x"), "epoch 'x' of 2"),
    (lambda t, m: m.pop("epoch"), "epoch None of 2"),
    (lambda t, m: m.update(threads="0"), "seed or thread count"),  # trained on another count: not exact
    (lambda t, m: m.update(history="{bad"), "its history"),
    (lambda t, m: m.update(history="[" * 100_000), "its history"),  # a RecursionError
    (lambda t, m: m.update(seconds="nan"), "seconds 'nan'"),
    (lambda t, m: m.update(seconds="-1"), "seconds '-1'"),
    (lambda t, m: t.update({"optimizer.999.exp_avg": torch.zeros(1)}), "optimizer state 'optimizer.999.exp_avg'"),
    (lambda t, m: t.update({"optimizer.x": torch.zeros(1)}), "optimizer state 'optimizer.x'"),
    (lambda t, m: t.update({"optimizer.0.exp_avg": torch.zeros(3, 3)}), "'optimizer.0.exp_avg' does not fit"),
    (lambda t, m: t.update({"optimizer.0.step": torch.tensor(-5.0)}), "'optimizer.0.step' does not fit"),
    (lambda t, m: t.update({"model.fc3.bias": torch.full_like(t["model.fc3.bias"], float("nan"))}),
     "'model.fc3.bias' is not finite"),  # blamed the settings: "diverged in training"
    (lambda t, m: m.update(history=json.dumps({"train_loss": [1.0], "train_accuracy": ["x"]})), "its history"),
    (lambda t, m: m.update(history=json.dumps({"train_accuracy": [0.5]})), "its history"),
    (lambda t, m: m.update(history=json.dumps({"train_loss": [1.0] * 5, "train_accuracy": [0.5] * 5})),
     "its history"),  # "6 epochs" of 2
])
def test_a_checkpoint_of_the_same_fingerprint_that_does_not_fit_is_not_resumed(data, tmp_path, monkeypatch,
                                                                               change, problem):
    """Internal errors before (a ValueError, KeyError, IndexError or JSONDecodeError from restoring it)."""
    X, y, _, _ = data
    with monkeypatch.context() as patch:
        interrupt_at_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            small("lenet", checkpoint_dir=str(tmp_path)).fit(X, y)
    _rewritten(tmp_path / CHECKPOINT_FILE, change)
    progress = RecordingProgress()
    model = small("lenet", checkpoint_dir=str(tmp_path)).fit(X, y, progress=progress)
    assert any(line.startswith("not resuming: ") and problem in line for line in progress.lines), progress.lines
    assert model.n_iter_ == 2 and "not resumed" in model.fit_message_ and problem in model.fit_message_


def test_resuming_refuses_another_thread_count_and_what_is_no_checkpoint(data, tmp_path, monkeypatch):
    X, y, _, _ = data
    with monkeypatch.context() as patch:
        interrupt_at_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            small("lenet", checkpoint_dir=str(tmp_path), threads=1).fit(X, y)
    with pytest.raises(ParameterError, match="ran on 1 CPU threads, and resuming them exactly needs as many"):
        small("lenet", checkpoint_dir=str(tmp_path), threads=2).fit(X, y)  # ran on 1, recorded as 2
    (tmp_path / CHECKPOINT_FILE).unlink()
    (tmp_path / CHECKPOINT_FILE).mkdir()
    with pytest.raises(ModelFileError, match="not a file, so no checkpoint can be read or written there"):
        small("lenet", checkpoint_dir=str(tmp_path)).fit(X, y)  # was a FileExistsError at the first save
    data_choice = training.DataChoice(train_size=300, test_size=100)
    with pytest.raises(ParameterError, match="resuming needs the name of the run") as info:
        training.train("lenet", {"epochs": 1}, data_choice, tmp_path / "o", resume=True)  # trained afresh silently
    assert info.value.parameter == "resume"
    (tmp_path / "o" / "checkpoints").mkdir(parents=True)
    (tmp_path / "o" / "checkpoints" / "r").write_text("")
    with pytest.raises(ParameterError, match="is not a folder of checkpoints: remove it"):
        training.train("lenet", {"epochs": 1}, data_choice, tmp_path / "o", name="r")


def test_threads_follow_the_free_cores_and_a_resumed_fit_keeps_the_checkpoints(data, tmp_path, monkeypatch):
    """threads=None: the fit takes the cores no one else is busy on, and a resumed fit the count its
    checkpoint was trained with (a seed fixes the weights for a given thread count)."""
    X, y, _, _ = data
    params = {**SMALL["lenet"], "threads": None, "checkpoint_dir": str(tmp_path)}
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    monkeypatch.setattr(device, "free_cores", lambda readings=1: 1)  # a busy neighbour
    with monkeypatch.context() as patch:
        interrupt_at_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            small("lenet", **params).fit(X, y)
    monkeypatch.setattr(device, "free_cores", lambda readings=1: 2)  # the neighbour has gone
    progress = RecordingProgress()
    resumed = small("lenet", **params).fit(X, y, progress=progress)
    assert resumed.threads_ == 1
    # the run's fit time is the resumed part's; the message tells what the epoch before it took
    assert re.fullmatch(r"2 epochs on 1 CPU thread, resumed after epoch 1 \(\d+\.\d s of training before\)",
                        resumed.fit_message_.split(";")[0]), resumed.fit_message_
    assert any("1 of 2 CPU threads" in line for line in progress.lines)
    fresh = small("lenet", **{**params, "checkpoint_dir": None}).fit(X, y)
    assert fresh.threads_ == 2 and fresh.fit_message_.split(";")[0] == "2 epochs on 2 CPU threads"
    # this small fit's few steps are said (the fast CNN on 2,000 images, 24 steps, scored near chance silently)
    steps = 2 * -(-len(y) // fresh.batch_size)
    assert fresh.fit_message_.endswith(f"; only {steps} optimiser steps, too few to learn much: more images or "
                                       "epochs, or a smaller batch_size")


def test_a_count_of_threads_as_numpys_int_is_taken_as_an_int(data):
    X, y, _, _ = data
    # GridSearchCV's grids and ml.train hand out np.int64: its fit message's plural was a TypeError after the fit
    model = small("lenet", epochs=1, threads=np.int64(2)).fit(X[:128], y[:128])
    assert type(model.threads_) is int and model.fit_message_.startswith("1 epoch on 2 CPU threads")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux's /proc")
def test_free_cores_does_not_count_its_own_spinning_threads():
    """PyTorch's OpenMP threads spin a while after a parallel region: they are this process's, not a
    busy neighbour (counted as one, they made each prediction right after a fit or another prediction
    take 1 thread). free_cores subtracts what this count sees."""
    x = torch.rand(512, 512)
    with device.cpu_threads(2):
        after_work = []
        for _ in range(10):
            x @ x  # noqa: B018 - a parallel region; its second thread spins after it
            after_work.append(device._own_running_threads())
        time.sleep(0.5)  # long past the spin: the second thread sleeps
        after_rest = []
        for _ in range(20):  # spread out: another thread of the test runner's may wake and
            after_rest.append(device._own_running_threads())  # wait a while for a core
            time.sleep(0.01)
    # each a few readings' worth, so that a busy machine's delays do not decide
    assert max(after_work) >= 2 and min(after_rest) == 1


def test_free_cores_sees_busy_processes():
    cores = len(os.sched_getaffinity(0))
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(0.5)
        assert free_cores(readings=10) == 1
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@pytest.mark.parametrize("family", TORCH_FAMILIES)
def test_a_refit_that_fails_leaves_the_fitted_model_as_it_was(fitted, data, family):
    from sklearn.exceptions import NotFittedError

    X, y, X_test, _ = data
    model = copy.deepcopy(fitted[family])
    before = model.predict(X_test)
    relabelled = y.astype(int) + 100
    relabelled[0] = 999  # a class of one image cannot be split for validation
    with pytest.raises(ParameterError, match=r"single member cannot be split: \[999\]"):  # the label, not its code
        model.set_params(validation_fraction=0.5).fit(X, relabelled)
    assert np.array_equal(model.predict(X_test), before)  # not the old network answering with the new labels
    with pytest.raises(NotFittedError):
        small(family).predict(X_test)  # not an AttributeError
    assert model.n_parameters() == sum(p.numel() for p in model.network_.parameters())


def test_an_allocation_pytorch_cannot_make_is_a_memory_error(data, monkeypatch):
    X, y, _, _ = data
    monkeypatch.setattr("mnistlab.models.base.available_memory", lambda: None)  # not refused by name up front
    with pytest.raises(MemoryError):
        small("cnn", widths=(8, 16, 2**20), epochs=1).fit(X[:64], y[:64])  # 10^12 weights


@pytest.mark.parametrize("learning_rate", [1e30, 1e38])  # 1e38: Adam's first step, lr / 0.1, is past float32
def test_a_torch_fit_that_diverges_stops_at_that_epoch_with_one_error(data, learning_rate):
    from mnistlab.errors import DivergedError

    X, y, _, _ = data
    recorder = RecordingProgress()
    with pytest.raises(DivergedError, match="^lenet diverged in training: its loss in epoch 1 is not finite"):
        small("lenet", learning_rate=learning_rate, epochs=4, batch_size=128).fit(X, y, progress=recorder)
    assert max(recorder.done, default=0) <= 512 // 128 and recorder.ended_by_error == [True]  # not the 3 epochs after


@pytest.mark.parametrize("family, params", [("lenet", {"learning_rate": 1e20}),
                                            ("cnn", {"learning_rate": 1e30, "warmup": 0.0})])
def test_a_last_step_that_diverges_is_one_error_not_a_model_that_predicts_nan(data, family, params):
    from mnistlab.errors import DivergedError

    X, y, _, _ = data
    recorder, model = RecordingProgress(), small(family, epochs=1, batch_size=len(X), **params)  # one step
    # the epoch's loss, computed before its step, was finite: the fit returned a model that predicted NaN
    with pytest.raises(DivergedError, match=f"^{family} diverged in training: its probabilities are not finite"):
        model.fit(X, y, progress=recorder)
    assert not hasattr(model, "network_") and recorder.ended_by_error == [True]


def test_a_diverging_scikit_learn_mlp_is_said_to_diverge_not_to_refuse_the_data(data):
    from mnistlab.errors import MnistlabError

    X, y, _, _ = data
    with pytest.raises(MnistlabError, match="mlp diverged in training") as error, np.errstate(all="ignore"):
        small("mlp", solver="sgd", learning_rate_init=1e6, max_iter=3).fit(X, y)
    assert not isinstance(error.value, ParameterError)  # "may contain large values and need to be preprocessed"
