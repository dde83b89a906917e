"""What every family promises, checked for all of them: its hyperparameters are declared and
checked before any data is touched, it reports progress through ``fit(progress=...)`` and never
prints, and its model files load (also those written before ``verbose`` was removed)."""

from __future__ import annotations

import ast
import inspect
import io
import json
import sys
import types
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from conftest import RecordingProgress, run_cli
from mnistlab import progress as progress_mod
from mnistlab.errors import ModelFileError, ParameterError
from mnistlab.models import family_names, get_family
from mnistlab.callbacks import SILENT
from mnistlab.models.params import Interval, PositiveInts, StrOptions, satisfies
from mnistlab.models.serialization import load_model, save_model

MODELS = Path(__file__).resolve().parent.parent / "src" / "mnistlab" / "models"

# Each family small enough to fit in a second or two on the test data below.
QUICK = {
    "logreg": dict(max_iter=5),
    "numpy-logreg": dict(max_epochs=2),
    "numpy-softmax": dict(max_epochs=2),
    "numpy-mlp": dict(hidden=(8,), max_epochs=2),
    "mlp": dict(hidden_layer_sizes=(8,), max_iter=2, batch_size=32),
    "lenet": dict(epochs=1, batch_size=32),
    "cnn": dict(epochs=1, widths=(4, 8), batch_size=32),
}


@pytest.fixture(scope="module")
def images():
    """96 random 'images' (rows of 784 pixels in [0, 1]) and labels 0, 1, 2."""
    rng = np.random.default_rng(0)
    return rng.random((96, 784), dtype=np.float32), np.arange(96) % 3


def quick(family, **params):
    return get_family(family)(**{**QUICK[family], "random_state": 0, **params})


def labels_for(family, y):
    return y % 2 if family == "numpy-logreg" else y


# -- hyperparameters: declared, checked first, named ---------------------------------------------

def test_every_parameter_has_a_constraint():
    for family in family_names():
        cls = get_family(family)
        signature = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        assert set(cls._parameter_constraints) == set(signature), family
        cls().validate_params()  # the defaults are allowed


def bad_values(constraints):
    """(kind, value) pairs that break ``constraints``: a wrong type, and per constraint a value
    just outside it (out of range, an unknown option, an impossible sequence)."""
    candidates = [("wrong type", object()), ("wrong type", "abc" if StrOptions not in map(type, constraints)
                                              else 3.5)]
    for c in constraints:
        if isinstance(c, Interval):
            step = 1 if c.type is Integral else 0.5
            if c.left is not None:
                closed = c.closed in ("left", "both")
                candidates.append(("out of range", c.left - step if closed else c.left))
            if c.right is not None:
                closed = c.closed in ("right", "both")
                candidates.append(("out of range", c.right + step if closed else c.right))
        elif isinstance(c, StrOptions):
            candidates.append(("unknown option", "no-such-option"))
        elif isinstance(c, PositiveInts):
            candidates.append(("out of range", (2, 0)))
            if c.max_length is not None:
                candidates.append(("out of range", (1,) * (c.max_length + 1)))
            if c.min_length:
                candidates.append(("out of range", ()))
    # infinity where an unbounded side is open, which the interval must refuse (not left to ``satisfies``,
    # which took it: an epsilon of inf fitted to accuracy 0.1)
    infinite = [("out of range", inf) for c in constraints if isinstance(c, Interval) and c.type is not Integral
                for inf, side, closed in ((np.inf, c.right, ("right", "both")), (-np.inf, c.left, ("left", "both")))
                if side is None and c.closed not in closed]
    return [(kind, value) for kind, value in candidates if not any(satisfies(value, c) for c in constraints)] + infinite


CASES = [(family, name, kind, value)
         for family in family_names()
         for name, constraints in get_family(family)._parameter_constraints.items()
         for kind, value in bad_values(constraints)]


@pytest.mark.parametrize("family, name, kind, value", CASES,
                         ids=[f"{f}-{n}-{k.replace(' ', '_')}-{i}" for i, (f, n, k, _) in enumerate(CASES)])
def test_a_bad_value_is_refused_by_name_before_the_data_is_looked_at(family, name, kind, value):
    model = get_family(family)(**{name: value})
    with pytest.raises(ParameterError) as error:
        model.fit(None, None)  # no data at all: the parameter is checked first
    assert error.value.parameter == name
    assert str(error.value).startswith(f"{name}: must be ")


def test_every_family_is_tested_with_each_kind_of_bad_value():
    for family in family_names():
        kinds = {kind for f, _, kind, _ in CASES if f == family}
        assert {"wrong type", "out of range", "unknown option"} <= kinds, family


@pytest.mark.parametrize("family, params, name", [
    ("logreg", dict(penalty="l1", solver="whitened-lbfgs"), "solver"),
    ("logreg", dict(penalty="elasticnet", solver="lbfgs"), "solver"),
    ("logreg", dict(penalty="none", solver="liblinear"), "solver"),
    ("numpy-softmax", dict(early_stopping=True, validation_fraction=0.0), "validation_fraction"),
    ("numpy-mlp", dict(early_stopping=True, validation_fraction=0.0), "validation_fraction"),
])
def test_rules_across_parameters_are_checked_up_front(family, params, name):
    with pytest.raises(ParameterError) as error:
        get_family(family)(**params).fit(None, None)
    assert error.value.parameter == name


def test_every_switched_off_parameter_is_declared_against_real_parameters_and_values():
    for family in family_names():
        cls = get_family(family)
        for name, conditions in cls._used_only_when.items():
            assert name in cls._parameter_constraints, (family, name)
            for other, values in conditions.items():
                assert all(any(satisfies(v, c) for c in cls._parameter_constraints[other]) for v in values), \
                    (family, name, other)


def test_a_familys_parameters_are_named_and_resolved_by_public_methods():
    """The command line and a sweep read a family through the base class's public methods, not its private ones
    (``_get_param_names``, ``_settings`` before): parameter_names on the class, resolved_params on a model."""
    assert get_family("cnn").parameter_names()[:2] == ["preset", "epochs"]
    assert "standardize" in get_family("sklearn:GaussianNB").parameter_names()
    cnn = get_family("cnn")(preset="long", crop=0)
    resolved = cnn.resolved_params()
    assert (resolved["epochs"], resolved["crop"], resolved["flip"]) == (20, 0, True)  # the preset's, given, "auto"
    assert cnn.get_params(deep=False)["epochs"] is None  # as given: untouched
    logreg = get_family("logreg")(C=0.5)
    assert logreg.resolved_params() == logreg.get_params(deep=False)


def test_a_family_declares_whether_it_writes_checkpoints_as_it_takes_checkpoint_dir():
    """Runs ask ``can_checkpoint`` (on the class: a recipe asks before a model is made), which the families that
    take ``checkpoint_dir`` declare: the pipeline had looked for the parameter two ways, in get_params and in
    ``__init__``'s signature."""
    for family in [*family_names(), "sklearn:GaussianNB"]:
        cls = get_family(family)
        assert cls.can_checkpoint is ("checkpoint_dir" in cls.parameter_names()), family
    assert {f for f in family_names() if get_family(f).can_checkpoint} == {"lenet", "cnn"}


@pytest.mark.parametrize("family, params, unused", [
    ("logreg", dict(l1_ratio=0.2), "l1_ratio"),  # an L2 penalty has no L1 share
    ("logreg", dict(penalty="none", C=1.0), "C"),
    ("numpy-softmax", dict(optimizer="sgd", beta1=0.5), "beta1"),
    ("numpy-mlp", dict(optimizer="gd", batch_size=32), "batch_size"),  # a full batch
    ("numpy-softmax", dict(patience=5), "patience"),  # without early stopping
    ("mlp", dict(solver="lbfgs", learning_rate_init=0.1), "learning_rate_init"),
    ("mlp", dict(solver="lbfgs", early_stopping=True, validation_fraction=0.2), "early_stopping validation_fraction"),
    ("cnn", dict(preset="long", filter_momentum=0.5), "filter_momentum"),  # the long preset trains by SGD
    ("cnn", dict(flip=False, tta=True), None),  # tta=True is the default: not given, not warned
])
def test_a_parameter_other_settings_switch_off_is_warned_of_by_name(family, params, unused, recwarn):
    import warnings

    from mnistlab.errors import UnusedParameterWarning

    warnings.simplefilter("always")
    get_family(family)(**params).validate_params()
    warned = [w.message for w in recwarn if w.category is UnusedParameterWarning]
    assert [w.parameter for w in warned] == (unused.split() if unused else []), [str(w) for w in warned]
    assert all("ignored (used only when" in str(w) for w in warned)


def test_a_refused_setting_comes_without_a_warning_of_another_and_a_model_file_loads_without_one(images, tmp_path,
                                                                                                 recwarn):
    """The warning came before a family's own rules refused the settings, and again at every load of a model
    file fitted with such a setting (evaluate, predict, export, serve)."""
    import pickle
    import warnings

    from mnistlab.errors import UnusedParameterWarning

    warnings.simplefilter("always")
    for family, params in [("logreg", dict(penalty="l1", solver="lbfgs", l1_ratio=0.3)),
                           ("numpy-softmax", dict(optimizer="sgd", beta1=0.5, early_stopping=True,
                                                  validation_fraction=0.0))]:
        with pytest.raises(ParameterError):
            get_family(family)(**params).validate_params()
    assert not [str(w.message) for w in recwarn]
    with pytest.warns(UnusedParameterWarning):
        model = get_family("logreg")(l1_ratio=0.2, max_iter=5).fit(*images)
    save_model(model, tmp_path / "model")
    recwarn.clear()
    load_model(tmp_path / "model")
    assert not [str(w.message) for w in recwarn]
    warning = pickle.loads(pickle.dumps(UnusedParameterWarning("l1_ratio", "ignored")))  # from a worker process
    assert (warning.parameter, warning.problem) == ("l1_ratio", "ignored")


def test_a_sweep_point_or_a_model_file_that_does_not_warn_leaves_other_threads_their_warnings(images, monkeypatch):
    """load_model and a sweep's points silenced the warning with warnings.catch_warnings, which changes the
    process's filters: a fit on another thread (another point, on a Dask worker's threads) lost its warning
    while one ran."""
    import threading
    import warnings

    from mnistlab.errors import UnusedParameterWarning
    from mnistlab.experiments import sweep
    from mnistlab.experiments.pipeline import DataChoice

    inside, other_done = threading.Event(), threading.Event()
    family = get_family("logreg")
    real_fit = family.fit

    def held_fit(self, *args, **kwargs):  # the sweep's point waits, inside its fit, for the other thread's
        if threading.current_thread() is not threading.main_thread():
            inside.set()
            assert other_done.wait(30)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(family, "fit", held_fit)
    monkeypatch.setattr(sweep, "_training_arrays", lambda data: (*images, tuple("0123456789")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        point = threading.Thread(target=sweep.score_point,
                                 args=("logreg", dict(penalty="l2", l1_ratio=0.5, max_iter=5), DataChoice(), None,
                                       0.2))
        point.start()
        assert inside.wait(30)
        family(l1_ratio=0.2, max_iter=5).fit(*images)  # this thread's own fit, while the point's runs
        other_done.set()
        point.join(30)
    warned = [str(w.message) for w in caught if w.category is UnusedParameterWarning]
    assert warned == ["l1_ratio: ignored (used only when penalty is 'elasticnet')"], warned  # this fit's, once


@pytest.mark.parametrize("family", sorted(set(QUICK) - {"mlp"}))  # mlp: scikit-learn's MLPClassifier warns itself
def test_a_fits_warnings_point_at_the_users_call(family, images):
    """A fixed stacklevel pointed into mnistlab or contextlib, as the calls between differed: a PyTorch family's fit,
    under a context manager used as its decorator, said "contextlib.py:81: DataConversionWarning", and a setting
    given in vain was "base.py:217: UnusedParameterWarning" in every family."""
    import warnings

    import pandas as pd

    X, y = images
    unused = {"logreg": dict(l1_ratio=0.3), "cnn": dict(flip=False, tta=False)}.get(family, {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = quick(family, **unused).fit(X, labels_for(family, y)[:, None])  # a column vector y
        model.predict(pd.DataFrame(X[:4], columns=[f"p{i}" for i in range(X.shape[1])]))  # names it was fitted without
    said = {w.category.__name__: w.filename for w in caught}
    assert {"DataConversionWarning", "UserWarning"} <= set(said) and ("UnusedParameterWarning" in said) == bool(unused)
    assert set(said.values()) == {__file__}, said


def test_an_mlp_fitted_by_lbfgs_with_early_stopping_fits(images):
    """lbfgs has no epochs, so no validation scores: the fit read them and ended in an AttributeError."""
    with pytest.warns(UserWarning, match="early_stopping: ignored"):
        model = quick("mlp", solver="lbfgs", early_stopping=True).fit(*images)
    assert "val_accuracy" not in model.history_


def test_a_parameter_in_use_is_not_warned_of(recwarn):
    import warnings

    warnings.simplefilter("always")
    for family, params in [("logreg", dict(penalty="elasticnet", l1_ratio=0.2)), ("logreg", dict(C=1.0)),
                           ("numpy-softmax", dict(optimizer="momentum", momentum=0.5)),
                           ("numpy-softmax", dict(early_stopping=True, patience=5)),
                           ("cnn", dict(filter_momentum=0.5)),  # the fast preset trains its filters by Muon
                           ("mlp", dict(solver="sgd", early_stopping=True, validation_fraction=0.2))]:
        get_family(family)(**params).validate_params()
    assert not [str(w.message) for w in recwarn]


@pytest.mark.parametrize("family, params, name, needed", [
    ("numpy-mlp", dict(hidden=(4096, 4096)), "hidden", "0.3 GiB"),  # 20,037,642 weights × 16 bytes (adam)
    ("numpy-mlp", dict(hidden=(4096, 4096), optimizer="sgd"), "hidden", "0.1 GiB"),  # × 8
    ("mlp", dict(hidden_layer_sizes=(4096, 4096)), "hidden_layer_sizes", "0.4 GiB"),  # × 20
    ("mlp", dict(hidden_layer_sizes=(4096,), solver="lbfgs"), "hidden_layer_sizes", "0.7 GiB"),  # 3,256,330 × 244
    ("cnn", dict(widths=(16, 4096), pool="after"), "widths", "1.7 GiB"),  # 151,644,624 weights × 12
])
def test_a_network_too_large_for_the_free_memory_is_refused_by_name_before_the_data(family, params, name, needed,
                                                                                   monkeypatch):
    # each of its arrays was less than the machine's memory, which Linux grants: the OOM killer ended the fit
    monkeypatch.setattr("mnistlab.models.base.available_memory", lambda: 2**26)
    with pytest.raises(ParameterError) as error:
        get_family(family)(**params).fit(None, None)
    assert error.value.parameter == name
    assert f"needs at least {needed} to fit" in str(error.value)
    assert "0.1 GiB available to it" in str(error.value)


def test_a_memory_cgroups_limit_counts_as_what_the_machine_has(tmp_path, monkeypatch):
    """A container's limit (docker --memory) is not in MemAvailable, which says the whole machine's: a fit the
    check let through was still killed in a 4 GiB cgroup."""
    from mnistlab import _system

    (tmp_path / "memory").mkdir()  # cgroup v1's hierarchy and v2's, whichever this machine has
    for folder, limit, used in [(tmp_path / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"),
                                (tmp_path, "memory.max", "memory.current")]:
        (folder / limit).write_text(f"{4 << 30}\n")
        (folder / used).write_text(f"{1 << 30}\n")
    monkeypatch.setattr(_system, "CGROUP", tmp_path)
    assert _system.cgroup_memory_left() == 3 << 30 and _system.available_memory() <= 3 << 30
    (tmp_path / "memory" / "memory.stat").write_text(f"total_cache {1 << 30}\ntotal_inactive_file {1 << 29}\n")
    (tmp_path / "memory.stat").write_text(f"file {1 << 30}\ninactive_file {1 << 29}\n")
    assert _system.cgroup_memory_left() == (3 << 30) + (1 << 29)  # file cache not touched lately is reclaimed
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(f"{2**63 - 4096}\n")  # no limit: v1's word for it
    (tmp_path / "memory.max").write_text("max\n")  # and v2's
    assert _system.cgroup_memory_left() is None


def test_the_free_memory_is_not_asked_of_a_model_file_nor_of_a_small_network(images, tmp_path, monkeypatch):
    model = quick("numpy-mlp").fit(*images)
    save_model(model, tmp_path / "model")
    monkeypatch.setattr("mnistlab.models.base.available_memory", lambda: 1)  # its weights are loaded, not fitted
    assert load_model(tmp_path / "model").predict(images[0]).shape == (len(images[0]),)
    monkeypatch.setattr("mnistlab.models.base.available_memory", lambda: 2**26)
    quick("numpy-mlp").fit(*images)


def test_the_command_line_refuses_layers_too_large_before_loading_data(tmp_path):
    result = run_cli("train", "numpy-mlp", "--hidden", "1048576x1048576", "--out", str(tmp_path),
                     env={"MNISTLAB_DATA_DIR": str(tmp_path / "no-data")})
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--hidden: a network of 1,100,346,294,282 weights needs at least 16,396.4 GiB to fit" in result.stderr
    assert "GiB available to it; give smaller sizes" in result.stderr


def test_data_dependent_refusals_are_parameter_errors(images):
    X, y = images
    with pytest.raises(ParameterError, match="two classes"):
        get_family("logreg")(solver="liblinear").fit(X, y)
    with pytest.raises(ParameterError, match="at least 2 classes"):
        get_family("logreg")().fit(X, np.zeros(len(X)))
    with pytest.raises(ParameterError, match="784"):
        quick("lenet").fit(X[:, :100], y)
    for family in ("numpy-softmax", "lenet"):  # 1 held-out image cannot stand for 3 classes
        with pytest.raises(ParameterError, match="cannot be held out") as error:
            quick(family, validation_fraction=0.01).fit(X, y)
        assert error.value.parameter == "validation_fraction"


def test_the_command_line_shows_a_parameter_as_its_flag(tmp_path):
    result = run_cli("train", "logreg", "--C", "-1", "--out", str(tmp_path))
    assert result.returncode == 2 and "--C: must be a number > 0; got -1.0" in result.stderr
    result = run_cli("train", "cnn", "--widths", "8,x", "--out", str(tmp_path))
    assert result.returncode == 2 and "--widths: expected" in result.stderr
    result = run_cli("train", "logreg", "--l1-ratio", "0.2", "--max-iter", "-1", "--out", str(tmp_path))
    assert result.returncode == 2 and "--max-iter" in result.stderr and "l1-ratio" not in result.stderr
    result = run_cli("train", "logreg", "--l1-ratio", "0.2", "--max-iter", "5", "--train-size", "300", "--test-size",
                     "100", "--no-embedding", "--out", str(tmp_path))  # said once, though checked twice
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("warning: --l1-ratio: ignored (used only when penalty is 'elasticnet')") == 1, \
        result.stderr


# -- progress, never printing ---------------------------------------------------------------------

def _sources():
    return sorted([*MODELS.rglob("*.py"), *(MODELS.parent / "data").rglob("*.py")])


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(MODELS.parent)))
def test_no_model_or_data_module_imports_rich_or_prints(path):
    """They report to a FitProgress (mnistlab.callbacks); the layers above decide who draws it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] in ("rich", "tqdm") for a in node.names), path
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in ("rich", "tqdm"), path
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "print", f"{path}:{node.lineno} prints"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys":
            assert node.attr not in ("stdout", "stderr"), f"{path}:{node.lineno} writes to the terminal"


@pytest.mark.parametrize("family, params", [*QUICK.items(), ("logreg", dict(solver="lbfgs", max_iter=5)),
                                            ("mlp", dict(solver="lbfgs", max_iter=3))])
def test_each_family_reports_progress(images, family, params, capsys):
    X, y = images
    recorder = RecordingProgress()
    model = get_family(family)(**{**QUICK[family], **params, "random_state": 0})
    model.fit(X, labels_for(family, y), progress=recorder)
    assert len(recorder.starts) == 1 and recorder.ends == 1
    total, unit = recorder.starts[0]
    assert unit in ("step", "epoch", "iteration") and (total is None or total > 0)
    assert recorder.done, "no advance"
    assert recorder.done == sorted(recorder.done) and (total is None or recorder.done[-1] <= total)
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # a fit never prints, with or without progress
    model.fit(X, labels_for(family, y))  # progress=None is silence
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("family", [*QUICK, "sklearn:GaussianNB"])
def test_a_fit_refuses_a_progress_it_cannot_report_to(images, family):
    """progress=True was "'bool' object has no attribute 'start'" in every family; an estimator draws no bar
    itself (it never prints), so True is refused with the way to one, as any other value that is no reporter."""
    X, y = images
    model = get_family(family)(**QUICK.get(family, {}))
    model.fit(X, labels_for(family, y), progress=False)
    with pytest.raises(ParameterError, match=r"^progress: must be a FitProgress, or None or False for none; got "
                                             r"True \(an estimator draws no bar itself: "
                                             r"mnistlab\.progress\.fit_progress\(\) is ml\.train's\)$"):
        model.fit(X, labels_for(family, y), progress=True)
    with pytest.raises(ParameterError, match=r"^progress: must be a FitProgress, or None or False for none; got "
                                             r"'yes' \(an estimator"):
        model.fit(X, labels_for(family, y), progress="yes")
    recorder = RecordingProgress()
    model.fit(X, labels_for(family, y), progress=progress_mod.fit_progress(recorder))  # the way the message says
    assert len(recorder.starts) == 1 and recorder.ends == 1


def test_a_failing_fit_still_ends_its_progress(images, monkeypatch):
    X, y = images
    recorder = RecordingProgress()
    model = quick("numpy-softmax")
    monkeypatch.setattr(type(model), "_backward", lambda *args: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        model.fit(X, y, progress=recorder)
    assert recorder.starts and recorder.ends == 1


# -- the renderers (mnistlab.progress) ------------------------------------------------------------

def test_rich_progress_draws_a_bar_and_keeps_the_logged_lines(images):
    X, y = images
    buffer = io.StringIO()
    quick("numpy-softmax").fit(X, y, progress=progress_mod.RichProgress(Console(file=buffer, width=100)))
    text = buffer.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text and "steps" in text


def test_a_rich_bar_of_work_that_ended_early_ends_full_and_without_its_first_words():
    for total, done, description in ((500, 68, "objective 0.39"), (None, 1, "")):  # converged; a fit of unknown length
        buffer = io.StringIO()
        bar = progress_mod.RichProgress(Console(file=buffer, width=100))
        bar.start(total, "iteration")
        bar.advance(done, description)
        bar.end()  # "68/500 iterations … left 0:00:38"; "1/? iterations … left  starting"
        assert f"{done}/{done} iterations" in buffer.getvalue() and "starting" not in buffer.getvalue()


def test_a_bar_that_cannot_be_drawn_says_how_far_it_got_now_and_then():
    """On a file or a pipe Rich draws no bar until the end: a benchmark of many hours said nothing in its log."""
    said = ["2/137 configurations, 0:00:00 elapsed: SVC C=1: accuracy 0.81"]
    for terminal, dumb, said in ((False, False, said), (True, True, said), (True, False, [])):  # TERM=dumb draws none
        buffer = io.StringIO()
        console = Console(file=buffer, width=100, force_terminal=terminal, _environ={"TERM": "dumb"} if dumb else {})
        bar = progress_mod.RichProgress(console)
        bar.start(137, "configuration")
        bar.advance(1, "SVC C=1: accuracy 0.81")  # under a minute in: nothing said
        bar._last_line -= progress_mod.QUIET_LINE_SECONDS  # a minute on
        bar.advance(2, "SVC C=1: accuracy 0.81")
        bar.advance(3, "SVC C=1: accuracy 0.81")  # said a moment ago: not again
        bar._progress.stop()  # not end(): its last drawing of the bar is not in question
        assert [line for line in buffer.getvalue().splitlines() if "elapsed" in line] == said


def test_notebook_progress_uses_tqdm(images):
    pytest.importorskip("tqdm")
    X, y = images
    bar = progress_mod.NotebookProgress(file=io.StringIO())
    quick("numpy-softmax").fit(X, y, progress=bar)
    assert bar._bar is None  # closed


def test_a_notebook_without_ipywidgets_gets_a_text_bar_on_stdout_and_no_warning(monkeypatch, capsys):
    import importlib.util
    import warnings

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm.auto's "IProgress not found. Please update jupyter and ipywidgets"
        bar = progress_mod.NotebookProgress()
        bar.start(10, "epoch")
        bar.advance(10)
        bar.end()
    out, err = capsys.readouterr()
    assert "10/10" in out and err == ""


def test_a_notebook_bar_completes_an_early_converged_fit_but_not_a_download_cut_short():
    pytest.importorskip("tqdm")
    totals = []
    for unit in ("iteration", "byte"):
        bar = progress_mod.NotebookProgress(file=io.StringIO())
        bar.start(100, unit)
        bar.advance(40)
        inner = bar._bar
        bar.end()
        totals.append(inner.total)
    assert totals == [40, 100]  # the fit done at 40; the download's 40 of 100 bytes stay that (drawn as failed)


def test_a_notebook_bar_ended_by_an_error_is_drawn_as_failed_even_when_full(monkeypatch):
    """tqdm's notebook bar judges by its count: a download that failed its checksum had all its bytes, and
    ended green ("success") above the error."""
    notebook = pytest.importorskip("tqdm.notebook")
    pytest.importorskip("ipywidgets")
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", notebook.tqdm)
    styles = []
    for fails in (False, True):
        bar = progress_mod.NotebookProgress(display=False)
        bar.start(10, "byte")
        bar.advance(10)
        widget = bar._bar.container.children[1]
        try:
            if fails:
                raise ValueError("checksum mismatch")
        except ValueError:
            bar.end()
        else:
            bar.end()
        styles.append(widget.bar_style)
    assert styles == ["success", "danger"]


def test_fit_progress_chooses_by_where_it_runs(monkeypatch):
    assert progress_mod.fit_progress(False) is SILENT
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert isinstance(progress_mod.fit_progress(True), progress_mod.RichProgress)

    class ZMQInteractiveShell:  # what IPython's get_ipython() returns in a Jupyter kernel
        pass

    class TerminalInteractiveShell:
        pass

    fake = types.ModuleType("IPython")
    monkeypatch.setitem(sys.modules, "IPython", fake)
    fake.get_ipython = lambda: type("ColabShell", (ZMQInteractiveShell,), {})()
    assert isinstance(progress_mod.fit_progress(True), progress_mod.NotebookProgress)
    fake.get_ipython = lambda: TerminalInteractiveShell()
    assert isinstance(progress_mod.fit_progress(True), progress_mod.RichProgress)
    fake.get_ipython = lambda: None
    assert not progress_mod.in_notebook()


# -- model files -------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["logreg", "numpy-mlp", "lenet"])
def test_a_model_file_with_the_legacy_verbose_parameter_loads(images, family, tmp_path, one_prediction_thread):
    X, y = images
    model = quick(family).fit(X, y)
    save_model(model, tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["params"]["verbose"] = True  # as written before progress moved out of the estimators
    (tmp_path / "model.json").write_text(json.dumps(meta))
    loaded = load_model(tmp_path)
    assert "verbose" not in loaded.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))

    meta["params"]["colour"] = "blue"  # any other unknown parameter is still an error
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="bad family or parameters"):
        load_model(tmp_path)


@pytest.mark.parametrize("family", list(QUICK))
def test_a_loaded_model_refuses_another_number_of_features_as_the_fitted_one_does(images, family, tmp_path,
                                                                                one_prediction_thread):
    X, y = images
    model = quick(family).fit(X, labels_for(family, y))
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.n_features_in_ == 784
    for estimator in (model, loaded):
        with pytest.raises(ValueError, match="783 features"):
            estimator.predict_proba(X[:, :783])

    assert loaded.get_params() == model.get_params()  # as given: a tuple of layer sizes is no list after loading
    assert [type(v) for v in loaded.get_params().values()] == [type(v) for v in model.get_params().values()]

    meta = json.loads((tmp_path / "model.json").read_text())
    meta["n_features_in"] = "784"
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="'n_features_in' must be a positive integer"):
        load_model(tmp_path)



@pytest.mark.parametrize("family", [*QUICK, "sklearn:LogisticRegression"])
def test_raw_pixels_given_to_a_model_fitted_on_scaled_ones_are_warned_of_not_refused(images, family, tmp_path,
                                                                                     one_prediction_thread):
    """Pixels of 0-255 to a model fitted on [0, 1] (a run's model.score(X, y) before X / 255) had been taken
    without a word, and scored lower (logreg 0.698 against 0.799 on 1,000 MNIST test images); data within ten
    (X * 5 - 2), or given to a fit on other values (standardised), is taken as meant; sklearn:NAME too (it did not
    warn: SVC scored 0.097 against 0.934). Not a model file written before the largest value was kept."""
    X, y = images
    model = quick(family).fit(X, labels_for(family, y)) if family in QUICK else get_family(family)().fit(X, y)
    save_model(model, tmp_path)
    for estimator in (model, load_model(tmp_path)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            proba = estimator.predict_proba(X * 255)
            estimator.predict_proba(X * 5 - 2)  # as a fit on standardised data may be given
        assert proba.shape == (96, len(estimator.classes_))  # a warning, not a refusal
        said = [str(w.message) for w in caught if "largest value" in str(w.message)]
        assert said == [f"X's largest value is {(X * 255).max():g}, but {type(model).__name__} was fitted on "
                        f"values up to {X.max():g}: give it pixels / 255, as its fit had them "
                        "(mnistlab.data.preprocess.flatten_scale)"]
        assert caught[0].filename == __file__  # at this call

    if family == "logreg":  # fitted on standardised pixels, whose test values reach tens of times the fit's largest
        # where a pixel rare in the training subset is lit (2,403 against 44.7): given as meant (review)
        standardised = (X - X.mean(axis=0)) / (X.std(axis=0) + 0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            quick(family).fit(standardised, y).predict_proba(standardised * 50)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["feature_max"] == pytest.approx(X.max())
    del meta["feature_max"]  # as a file written before it was kept
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tmp_path).predict_proba(X * 255)
    meta["feature_max"] = "1"
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="'feature_max' must be a finite number"):
        load_model(tmp_path)


# -- what a family shows: explanations and features ------------------------------------------------

LAYERED = {"numpy-mlp": 8, "mlp": 8, "lenet": 128, "cnn": 8}  # families with hidden layers: their last one's width


@pytest.mark.parametrize("family", list(QUICK))
def test_each_family_explains_and_gives_features_where_it_has_layers(images, family):
    X, y = images
    model = quick(family).fit(X, labels_for(family, y))
    n_classes = len(np.unique(labels_for(family, y)))
    maps = model.explain(X[:3])
    assert maps.shape == (3, n_classes, 784)
    # asked for some classes, in any order, a family computes those alone and gives the same maps
    np.testing.assert_allclose(model.explain(X[:3], classes=[1, 0]), maps[:, [1, 0]], rtol=1e-5, atol=1e-7)
    for bad in ([n_classes], [-1], [0.5], [[0]]):
        with pytest.raises(ParameterError, match="classes"):
            model.explain(X[:3], classes=bad)
    features = model.features(X[:5])
    if family in LAYERED:
        assert features.shape == (5, LAYERED[family]) and np.isfinite(features).all()
        assert not np.allclose(features[0], features[1])  # of the image, not a constant
    else:
        assert features is None


def test_an_mlp_without_hidden_layers_has_no_features(images):
    X, y = images  # its last layer's input is the pixels: a map of them was called "penultimate features"
    assert quick("numpy-mlp", hidden=()).fit(X, y).features(X[:5]) is None


@pytest.mark.parametrize("family, params", [("sklearn:SVC", {}), ("sklearn:SVC", {"probability": True}),
                                            ("sklearn:KNeighborsClassifier", {}), *((f, {}) for f in QUICK)])
def test_a_model_predicts_the_class_of_its_highest_probability(images, family, params):
    # what a run's numbers, its predictions and the page use: SVC's own vote gave another class for 1 image
    # in 100 (and its Platt probabilities for most), so run.model.score() was not the run's accuracy
    X, y = images
    model = (quick(family) if family in QUICK else get_family(family)(**params)).fit(X, labels_for(family, y))
    X_new = np.random.default_rng(1).random((200, 784), dtype=np.float32)
    proba = model.predict_proba(X_new)
    np.testing.assert_array_equal(model.predict(X_new), model.classes_[np.argmax(proba, axis=1)])


@pytest.mark.parametrize("family", [*QUICK, "sklearn:LogisticRegression"])
def test_explain_and_features_check_the_images_as_predictions_do(images, family):
    X, y = images
    model = (quick(family) if family in QUICK else get_family(family)(max_iter=20)).fit(X, labels_for(family, y))
    nan = X[:2].copy()
    nan[0, 0] = np.nan
    for method in (model.explain, model.features) if family in LAYERED else (model.explain,):
        with pytest.raises(ParameterError, match="783 features"):
            method(X[:2, :783])
        with pytest.raises(ParameterError, match="NaN"):
            method(nan)


@pytest.mark.parametrize("family", [*QUICK, "sklearn:LogisticRegression"])
def test_what_needs_a_fitted_model_says_it_is_not_fitted(images, family):
    from sklearn.exceptions import NotFittedError

    model = quick(family) if family in QUICK else get_family(family)()
    X = images[0][:2]
    asks = [lambda: model.explain(X), lambda: model.predict_proba(X)]
    if family in ("logreg", "numpy-logreg", "numpy-softmax", "sklearn:LogisticRegression"):
        asks.append(model.weight_images)  # one weight per pixel and class; the others have none to show
    for ask in asks:
        with pytest.raises(NotFittedError):
            ask()
    if family != "sklearn:LogisticRegression":  # its converter is skl2onnx's
        with pytest.raises(NotFittedError):
            model.onnx_graph()


@pytest.mark.parametrize("family", list(QUICK))
def test_score_refuses_labels_of_another_length(images, family):
    X, y = images
    model = quick(family).fit(X, labels_for(family, y))
    with pytest.raises(ParameterError, match=r"inconsistent numbers of samples: \[10, 1\]"):
        model.score(X[:10], y[:1])  # one label would be broadcast against all ten predictions


def test_a_refused_fit_leaves_the_model_unfitted(images):
    from sklearn.exceptions import NotFittedError

    X, y = images
    model = quick("numpy-logreg")
    with pytest.raises(ParameterError, match="Only binary classification is supported: .* not 3 classes"):
        model.fit(X, y)
    with pytest.raises(NotFittedError):
        model.predict(X)


def test_the_parameter_count_is_what_the_fit_learned(images):
    """The standardisation's means and scales and a batch norm's running statistics were counted too."""
    X, y = images
    plain = get_family("logreg")(max_iter=5).fit(X, y)
    standardized = get_family("logreg")(max_iter=5, standardize=True).fit(X, y)
    assert plain.n_parameters() == standardized.n_parameters() == 784 * 3 + 3
    cnn = quick("cnn").fit(X, y)
    stored = sum(a.size for a in cnn.get_arrays().values() if np.issubdtype(a.dtype, np.floating))
    assert cnn.n_parameters() == sum(p.numel() for p in cnn.network_.parameters()) < stored
    assert quick("numpy-softmax").fit(X, y).n_parameters() == 784 * 3 + 3
