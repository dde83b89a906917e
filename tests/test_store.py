"""The run store never loses or invents a run: names, claims, overwrite, staging leftovers, damage."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from conftest import run_cli
from mnistlab.errors import ParameterError, RunDamagedError, RunExistsError, RunNotFoundError
from mnistlab.experiments.pipeline import DataChoice, train
from mnistlab.experiments.store import RunStore, validate_name

SMALL = ["--train-size", "600", "--test-size", "200"]
TINY = DataChoice(train_size=300, test_size=100)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """An output folder with two real runs, "a" and "b", and a bystander file beside runs/."""
    out = tmp_path_factory.mktemp("store")
    for name in ("a", "b"):
        train("logreg", {}, TINY, out, name=name)
    (out / "keep-me.txt").write_text("not a run")
    return out


@pytest.mark.parametrize("name", ["..", ".", "../x", "/abs/path", "a/b", ".hidden", "", "x" * 101, "tab\tname",
                                  "naïve"])
def test_invalid_names_are_refused(name):
    with pytest.raises(ParameterError) as info:
        validate_name(name)
    assert info.value.parameter == "name"


@pytest.mark.parametrize("name", ["a", "logreg-fashion-mnist-20261201-101500", "C_0.1+l1", "9" * 100])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["..", "../x", "/tmp/elsewhere"])
def test_cli_refuses_path_names_and_deletes_nothing(out, name, tmp_path):
    before = sorted(p.name for p in out.iterdir())
    result = run_cli("train", "logreg", *SMALL, "--name", name, "--overwrite", "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert "--name:" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == before
    assert {r.name for r in RunStore(out).list()} == {"a", "b"}


def test_existing_name_fails_before_fitting_in_under_a_second(out):
    start = time.perf_counter()
    with pytest.raises(RunExistsError, match="exists"):
        train("cnn", {"preset": "long"}, DataChoice(), out, name="a")  # would take minutes to fit
    assert time.perf_counter() - start < 1.0


def test_cli_existing_name_fails_before_fitting(out):
    start = time.perf_counter()
    result = run_cli("train", "lenet", "--name", "a", "--out", str(out))
    assert result.returncode == 2 and "exists" in result.stderr
    assert time.perf_counter() - start < 10  # interpreter start-up included; the fit would take minutes


def test_overwrite_replaces_exactly_that_run(out, tmp_path):
    local = tmp_path / "o"
    shutil.copytree(out, local)
    old = json.loads((local / "runs" / "a" / "config.json").read_text())["created"]
    time.sleep(1.1)
    train("logreg", {"C": 0.5}, TINY, local, name="a", overwrite=True)
    config = json.loads((local / "runs" / "a" / "config.json").read_text())
    assert config["params"]["C"] == 0.5 and config["created"] != old
    assert (local / "runs" / "b" / "model.npz").is_file() and (local / "keep-me.txt").is_file()
    assert sorted(p.name for p in (local / "runs").iterdir()) == ["a", "b"]


def test_a_stopped_overwrite_says_the_old_run_is_kept_and_a_stop_after_its_swap_does_not(out, tmp_path, monkeypatch):
    """A Ctrl-C while an overwrite fitted said only "interrupted", and left the user to guess whether the old run
    was lost; one held back until the swap (the new run whole) must not say the old one is kept."""
    import warnings

    from mnistlab import _io
    from mnistlab.experiments import pipeline

    local = tmp_path / "o"
    shutil.copytree(out, local)
    old = (local / "runs" / "a" / "config.json").read_bytes()

    def stop(*args):
        raise KeyboardInterrupt
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_run_metrics", stop)
        with pytest.warns(UserWarning, match="^stopped: run 'a' is kept as it was in ") as said, \
                pytest.raises(KeyboardInterrupt):
            train("logreg", {"C": 0.5}, TINY, local, name="a", overwrite=True)
    assert len(said) == 1 and str(said[0].message).endswith(str(local / "runs" / "a"))  # no checkpoint to name
    assert said[0].filename == __file__  # the caller's line, heard at each stop (it was the pipeline's caller's)
    assert (local / "runs" / "a" / "config.json").read_bytes() == old

    def exchange(a, b, real=_io._exchange):
        os.kill(os.getpid(), signal.SIGINT)  # held back until the new run is in place
        return real(a, b)
    monkeypatch.setattr(_io, "_exchange", exchange)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", "stopped")
            with pytest.raises(KeyboardInterrupt):
                train("logreg", {"C": 0.5}, TINY, local, name="a", overwrite=True, embedding=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert json.loads((local / "runs" / "a" / "config.json").read_text())["params"]["C"] == 0.5


def test_an_overwrite_by_a_family_without_checkpoints_discards_one_it_cannot_resume(out, tmp_path):
    """A checkpoint of run 'a' (another family's stopped fit) outlived an overwrite by logreg, which writes none:
    the completed run was then said to be an interrupted overwrite by every later command."""
    local = tmp_path / "o"
    shutil.copytree(out, local)
    checkpoints = RunStore(local).checkpoints("a")
    checkpoints.mkdir(parents=True)
    (checkpoints / "checkpoint.safetensors").write_bytes(b"epochs")
    with pytest.raises(RunExistsError, match="an interrupted training of it kept its checkpoint"):
        train("logreg", {}, TINY, local, name="a")
    run = train("logreg", {}, TINY, local, name="a", overwrite=True, embedding=False)
    assert f"discarded the checkpoint an interrupted training kept in {checkpoints}" in \
        json.loads((run / "metrics.json").read_text())["fit_message"]
    assert not checkpoints.parent.exists()  # <out>/checkpoints, empty, with it (it was left)
    with pytest.raises(RunExistsError, match="exists in .*; choose another name or overwrite it$"):
        train("logreg", {}, TINY, local, name="a")


def test_an_interrupted_trainings_checkpoint_is_refused_for_every_family_in_one_wording(tmp_path, monkeypatch):
    """A checkpoint of a name was checked by the claim where a run of it existed, and else by the pipeline for
    families that write checkpoints only, in other words: logreg trained beside another family's stopped fit, and
    the completed run was then called an interrupted overwrite by every later training of the name."""
    store = RunStore(tmp_path)
    checkpoints = store.checkpoints("a")
    checkpoints.mkdir(parents=True)
    (checkpoints / "checkpoint.safetensors").write_bytes(b"epochs")
    monkeypatch.setattr(DataChoice, "load", lambda *args: pytest.fail("the data was loaded"))
    for family in ("logreg", "lenet"):
        with pytest.raises(RunExistsError, match=f"^an interrupted training of run 'a' kept its checkpoint in "
                                                 f"{checkpoints}: resume it with the command that trained it to "
                                                 "continue that training, or overwrite it to start afresh$"):
            train(family, {}, TINY, tmp_path, name="a")
    (tmp_path / "runs" / "a").mkdir()  # a run of it beside: said in the same words, the resume needing overwrite
    with pytest.raises(RunExistsError, match=f"^run 'a' exists in {tmp_path / 'runs'}; an interrupted training of "
                                             f"it kept its checkpoint in {checkpoints}: resume and overwrite it with "
                                             "the command that trained it to continue that training, or overwrite it "
                                             "to start afresh$"):
        train("lenet", {}, TINY, tmp_path, name="a", resume=True)
    assert (checkpoints / "checkpoint.safetensors").read_bytes() == b"epochs"


def test_a_run_put_over_a_stopped_training_of_its_name_discards_the_checkpoint(tmp_path):
    """A cluster's run (recipes run X --cluster after a local X was stopped) left the checkpoint beside the complete
    run, which every later training of the name was then told was an interrupted overwrite."""
    store = RunStore(tmp_path)
    checkpoints = store.checkpoints("c")
    checkpoints.mkdir(parents=True)
    (checkpoints / "checkpoint.safetensors").write_bytes(b"epochs")
    store.put("c", {"config.json": b"{}"}, overwrite=True)
    assert (tmp_path / "runs" / "c" / "config.json").read_bytes() == b"{}" and not checkpoints.parent.exists()


def test_same_name_at_once_gives_one_clear_error(tmp_path):
    """Two processes train the same name: one wins, the other is told, nothing is replaced silently."""
    code = ("import sys; from mnistlab.experiments.pipeline import DataChoice, train;"
            "train('logreg', {'max_iter': 300, 'tol': 1e-9}, DataChoice(train_size=20000, test_size=200), "
            f"{str(tmp_path)!r}, name='same')")
    first = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (tmp_path / "runs" / ".lock-same").exists():
        assert time.time() < deadline and first.poll() is None, "the first run never claimed its name"
        time.sleep(0.05)
    with pytest.raises(RunExistsError, match="being trained right now by process"):
        train("logreg", {}, TINY, tmp_path, name="same")
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert [r.name for r in RunStore(tmp_path).list()] == ["same"]


def test_killed_run_leaves_nothing_listed_and_is_swept(tmp_path):
    """kill -9 while artifacts are written: the staging folder is never listed, and swept next time."""
    code = ("import time, mnistlab.experiments.pipeline as p, mnistlab.experiments.figures as f;"
            "f.write_figures = lambda *a, **k: time.sleep(60);"  # hold the run while its files are written
            f"p.train('logreg', {{}}, p.DataChoice(train_size=300, test_size=100), {str(tmp_path)!r}, name='k')")
    victim = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while not list((tmp_path / "runs").glob(".staging-*-k-*")):
        assert time.time() < deadline and victim.poll() is None
        time.sleep(0.05)
    assert RunStore(tmp_path).list() == []  # a live process's staging is kept, and never listed
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert list((tmp_path / "runs").iterdir())  # what kill -9 left behind
    assert RunStore(tmp_path).list() == []
    assert list((tmp_path / "runs").iterdir()) == []  # swept
    train("logreg", {}, TINY, tmp_path, name="k")  # and the name is free again
    assert [r.name for r in RunStore(tmp_path).list()] == ["k"]


def test_staging_held_by_a_writer_whose_process_id_means_nothing_here_is_not_swept(tmp_path, monkeypatch):
    """A writer in another container sharing the folder: its id names no process here, its lock is seen."""
    import fcntl

    from mnistlab._io import atomic_write_bytes, sweep_staging

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = gone.stdout.strip()
    folder, file = tmp_path / f".staging-{pid}-r-abc", tmp_path / f".staging-{pid}-f.tmp"
    folder.mkdir()
    file.write_bytes(b"half")
    held = [os.open(folder, os.O_RDONLY | os.O_DIRECTORY), os.open(file, os.O_RDONLY)]
    for fd in held:
        fcntl.flock(fd, fcntl.LOCK_EX)
    sweep_staging(tmp_path)
    assert folder.is_dir() and file.is_file()  # swept before: the run was written half, then renamed
    for fd in held:
        os.close(fd)
    sweep_staging(tmp_path)
    assert not folder.exists() and not file.exists()
    atomic_write_bytes(tmp_path / "x", b"whole")
    assert (tmp_path / "x").read_bytes() == b"whole" and list(tmp_path.iterdir()) == [tmp_path / "x"]
    from mnistlab._io import atomic_directory

    with atomic_directory(tmp_path / "run") as staging:  # a writer holds its own while it writes
        (staging / "config.json").write_text("{}")
        foreign = staging.rename(folder)  # as another container's writer would name it: a pid not alive here
        sweep_staging(tmp_path)
        assert (foreign / "config.json").is_file()
        foreign.rename(staging)
    assert (tmp_path / "run" / "config.json").is_file()
    real_flock = fcntl.flock

    def nfs_flock(fd, operation):  # NFS: an exclusive lock needs a file open for writing, which no folder is
        if operation & fcntl.LOCK_EX and stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, "Bad file descriptor")
        return real_flock(fd, operation)
    folder.mkdir()
    monkeypatch.setattr(fcntl, "flock", nfs_flock)
    sweep_staging(tmp_path)  # whether anyone holds it cannot be told: taken as held, never deleted
    assert folder.is_dir()


def test_damaged_run_is_listed_as_damaged_and_the_others_stay(out, tmp_path):
    local = tmp_path / "o"
    shutil.copytree(out, local)
    config = local / "runs" / "a" / "config.json"
    broken = json.loads(config.read_text())
    del broken["created"]
    config.write_text(json.dumps(broken))
    (local / "runs" / "junk").mkdir()
    rows = {r.name: r for r in RunStore(local).list()}
    assert rows["b"].damaged is None and rows["b"].accuracy > 0.5
    assert "'created' is missing" in rows["a"].damaged and str(config) in rows["a"].damaged
    assert "config.json: missing" in rows["junk"].damaged
    with pytest.raises(RunDamagedError, match="config.json"):
        from mnistlab.run_config import read_config

        read_config(local / "runs" / "a")
    result = run_cli("runs", "list", "--out", str(local), "--json")
    assert result.returncode == 0, result.stderr
    listed = {r["name"]: r for r in json.loads(result.stdout)}
    assert listed["b"]["damaged"] is None and listed["a"]["damaged"]
    broken["created"] = "not a date"  # sorted as the newest: the page's default run
    config.write_text(json.dumps(broken))
    shutil.copytree(local / "runs" / "b", local / "runs" / "nomodel")
    (local / "runs" / "nomodel" / "model.npz").unlink()
    rows = {r.name: r for r in RunStore(local).list()}
    assert "'created' must be a date and time" in rows["a"].damaged
    assert "model.npz: missing" in rows["nomodel"].damaged  # listed as healthy, then failed to predict
    for dataset in ("nope", "mnist"):  # converted photos by an unknown style: "--style: unknown style 'nope'"
        broken = json.loads((local / "runs" / "b" / "config.json").read_text())
        broken["dataset"]["name"] = dataset  # "mnist": its data choice still says fashion-mnist
        (local / "runs" / "a" / "config.json").write_text(json.dumps(broken))
        damaged = {r.name: r.damaged for r in RunStore(local).list()}["a"]
        assert "config.json: the dataset must be one of fashion-mnist, mnist" in damaged and repr(dataset) in damaged
    broken = json.loads((local / "runs" / "b" / "config.json").read_text())
    broken["model"] = "nosuch"  # listed as healthy; compare said "unknown model 'nosuch'", naming no file
    (local / "runs" / "a" / "config.json").write_text(json.dumps(broken))
    damaged = {r.name: r.damaged for r in RunStore(local).list()}["a"]
    assert "config.json: 'model' must be a model family, got 'nosuch'" in damaged
    result = run_cli("runs", "list", "--out", str(config))  # a file: an empty table before
    assert result.returncode == 2 and "is a file, not a folder of runs" in result.stderr


def test_resolve_takes_a_name_or_a_path(out):
    store = RunStore(out)
    assert store.resolve("a") == out / "runs" / "a"
    assert store.resolve(str(out / "runs" / "b")) == out / "runs" / "b"
    with pytest.raises(RunNotFoundError):
        store.resolve("nope")
    with pytest.raises(RunNotFoundError, match=r": a folder, but not a run's \(it has no config.json\)$"):
        store.resolve(str(out))  # a sweep's folder, say: "no run …" read as a typo in the path
    assert store.resolve(str(out / "runs" / "a" / "plots" / "..")) == out / "runs" / "a" / "plots" / ".."
    with pytest.raises(RunNotFoundError):
        store.resolve("../store")  # not a valid name, and not a run folder as a path either


def test_a_folder_renamed_to_no_run_name_is_listed_as_damaged_and_said_so_when_named(out, tmp_path):
    local = tmp_path / "o"
    shutil.copytree(out, local)
    (local / "runs" / "b").rename(local / "runs" / "my run")  # listed as a run that `runs show "my run"` said was none
    rows = {r.name: r for r in RunStore(local).list()}
    assert rows["a"].damaged is None and rows["my run"].accuracy is None
    assert rows["my run"].damaged == (f"{local / 'runs' / 'my run'}: not a valid run name (use ASCII letters, digits "
                                      "and . _ + - (not first), at most 100 characters): rename it to 'my-run'")
    (local / "runs" / "a").rename(local / "runs" / "Schuh-Modell-\u00e4t\u00e9")  # offered 'Schuh-Modell-t'
    assert {r.name: r for r in RunStore(local).list()}["Schuh-Modell-\u00e4t\u00e9"].damaged.endswith(
        "rename it to 'Schuh-Modell-ate'")
    (local / "runs" / "my-run").mkdir()
    assert {r.name: r for r in RunStore(local).list()}["my run"].damaged.endswith(": rename it")  # not onto another
    with pytest.raises(RunDamagedError, match="my run: not a valid run name"):
        RunStore(local).resolve("my run")
    assert RunStore(local).resolve(str(local / "runs" / "my run")).name == "my run"  # as any run folder's path
    result = run_cli("runs", "show", "my run", "--out", str(local))
    assert result.returncode == 2 and "my run: not a valid run name" in result.stderr, result.stderr


def test_listing_a_folder_that_holds_no_output_folder_is_one_line_not_an_empty_table(out, tmp_path):
    # each had been an empty table and exit code 0, as if no run had been trained there
    for given, message in [(out / "runs", f"--out: {out / 'runs'} holds runs itself, as a runs/ folder does: give "
                                          f"the folder above it, {out}"),
                           (out / "runs" / "a", f"--out: {out / 'runs' / 'a'} is a run's folder, not an output "
                                                f"folder: give the one above its runs/ folder, {out}")]:
        result = run_cli("runs", "list", "--out", str(given), "--json")
        assert result.returncode == 2 and result.stderr == f"error: {message}\n" and result.stdout == "", result.stderr
    with pytest.raises(ParameterError, match="holds runs itself"):
        RunStore(out / "runs").list()
    # nothing trained yet, where every user starts (review): said, not an error; an output folder named "runs" too
    result = run_cli("runs", "list", "--out", str(tmp_path / "nope"), "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert result.stderr == f"warning: no runs in {tmp_path / 'nope'}: the folder does not exist\n"
    assert RunStore(tmp_path / "nope").list() == []  # ml.runs() before any training: none yet
    (tmp_path / "e" / "runs" / "sweeps").mkdir(parents=True)
    for empty in (tmp_path, tmp_path / "e" / "runs"):  # an output folder with no runs yet
        result = run_cli("runs", "list", "--out", str(empty), "--json")
        assert result.returncode == 0 and json.loads(result.stdout) == [] and result.stderr == "", result.stderr


def test_an_unwritable_output_folder_is_said_before_anything_is_fitted(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    start = time.perf_counter()
    result = run_cli("train", "cnn", "--preset", "long", "--out", str(blocker / "out"))
    assert result.returncode == 2 and "--out: cannot write runs in" in result.stderr
    assert time.perf_counter() - start < 15  # start-up only: a long CNN fit would take many minutes


def test_a_numbered_claim_takes_the_first_free_name(tmp_path):
    store = RunStore(tmp_path)
    with store.claim("x") as writer, writer.staging() as staging:
        (staging / "config.json").write_text("{}")
    with store.claim("x-2"):  # held by a run training right now
        with store.claim("x", numbered=True) as writer:
            assert writer.path.name == "x-3"
        with pytest.raises(RunExistsError):
            with store.claim("x"):
                pass
    assert not list(tmp_path.glob("runs/.lock*"))


def test_atomic_writes_keep_what_is_not_a_regular_file_and_follow_links(tmp_path):
    from mnistlab._io import atomic_write_bytes

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(OSError, match="not a regular file"):  # a rename would replace it (as /dev/null once was)
        atomic_write_bytes(pipe, b"x")
    assert pipe.is_fifo()
    target, link = tmp_path / "target", tmp_path / "link"
    target.write_bytes(b"old")
    link.symlink_to(target)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"


def test_files_written_together_are_all_written_or_none(tmp_path, monkeypatch):
    from mnistlab import _io

    first, second = tmp_path / "a_probabilities.png", tmp_path / "a_contributions.png"
    real = _io.staged_file

    def full_disk_at_the_second(path):
        if path.name == second.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path)

    monkeypatch.setattr(_io, "staged_file", full_disk_at_the_second)
    with pytest.raises(OSError, match="No space left on device: .*a_contributions.png"):
        _io.atomic_write_all({first: b"1", second: b"2"})  # explain left the first of its pair
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    _io.atomic_write_all({first: b"1", second: b"2"})
    assert first.read_bytes() == b"1" and second.read_bytes() == b"2"


def test_runs_are_as_readable_as_the_umask_says(tmp_path):
    from mnistlab._io import FILE_MODE, FOLDER_MODE

    mask = os.umask(0)
    os.umask(mask)
    assert (FILE_MODE, FOLDER_MODE) == (0o666 & ~mask, 0o777 & ~mask)  # not tempfile's private 0600 / 0700
    folder = train("logreg", {"max_iter": 5}, TINY, tmp_path, name="shared", embedding=False)
    modes = {str(p.relative_to(folder)): p.stat().st_mode & 0o777 for p in [folder, *folder.rglob("*")]}
    assert modes["."] == FOLDER_MODE and modes["config.json"] == modes["model.npz"] == FILE_MODE
    assert set(modes.values()) == {FILE_MODE, FOLDER_MODE}, modes


def test_a_folder_is_replaced_in_one_step_or_not_at_all(tmp_path, monkeypatch):
    import os

    from mnistlab import _io

    final = tmp_path / "run"
    final.mkdir()
    (final / "version").write_text("old")
    exchanged = []
    monkeypatch.setattr(_io, "_exchange",
                        lambda a, b, real=_io._exchange: exchanged.append(real(a, b)) or exchanged[-1])
    with _io.atomic_directory(final) as staging:
        (staging / "version").write_text("new")
    assert (final / "version").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert exchanged == [True]  # Linux: one swap, so no moment without a whole folder for a reader
    # Where no swap is to be had: interrupted between its two renames, the old folder is put back (it was lost).
    monkeypatch.setattr(_io, "_exchange", lambda a, b: False)
    real_replace, calls = os.replace, []

    def interrupted(src, dst):
        calls.append(src)
        if len(calls) == 2:  # the staging folder's rename into place
            raise KeyboardInterrupt
        return real_replace(src, dst)
    monkeypatch.setattr(_io.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt), _io.atomic_directory(final) as staging:
        (staging / "version").write_text("newer")
    monkeypatch.setattr(_io.os, "replace", real_replace)
    assert (final / "version").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_old_folder_that_cannot_be_removed_is_warned_of(tmp_path, monkeypatch):
    """A replaced folder whose files may not be deleted (another user's, a folder chmod 555) stayed hidden under its
    staging name for good, and the overwrite said nothing: now a warning names it."""
    from mnistlab import _io

    final = tmp_path / "run"
    final.mkdir()
    (final / "locked").write_text("old")
    real_unlink = os.unlink
    tries = []

    def unlink(path, *args, **kwargs):
        if os.path.basename(path) == "locked":
            tries.append(path)
            raise PermissionError(errno.EPERM, "Operation not permitted", path)
        return real_unlink(path, *args, **kwargs)
    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.warns(UserWarning, match=r"could not remove .*\.staging-.*, the old .*run, which the new one replaced "
                                         r"\(Operation not permitted\); remove it yourself") as record:
        with _io.atomic_directory(final) as staging:
            (staging / "version").write_text("new")
    assert record[0].filename == __file__  # the with block's: it had been "contextlib.py:144"
    assert (final / "version").read_text() == "new"
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".staging-")]
    assert len(left) == 1 and (left[0] / "locked").read_text() == "old"
    assert len(tries) == 1  # one walk of the old folder: a second had been made to find the first error again


def test_a_folder_moved_aside_by_a_writer_killed_between_its_renames_is_put_back(tmp_path):
    """Where no swap is to be had, the old folder waits aside: swept as staging, it was lost with the new one."""
    import subprocess
    import sys

    final = tmp_path / "run"
    final.mkdir()
    (final / "version").write_text("old")
    code = ("import os; from pathlib import Path; from mnistlab import _io\n"
            "_io._exchange = lambda a, b: False\n"
            "real, calls = os.replace, []\n"
            "def replace(src, dst):\n"
            "    calls.append(src)\n"
            "    if len(calls) == 2: os._exit(9)  # killed outright between the two renames\n"
            "    real(src, dst)\n"
            "_io.os.replace = replace\n"
            f"with _io.atomic_directory(Path({str(final)!r})) as staging:\n"
            "    (staging / 'version').write_text('new')\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    assert not final.exists()
    from mnistlab._io import sweep_staging

    sweep_staging(tmp_path)
    assert (final / "version").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_full_disk_names_what_could_not_be_written(tmp_path, monkeypatch):
    """numpy's and a file's writes raise ENOSPC naming no file: the one line said only "No space left"."""
    import errno

    from mnistlab import _io

    with pytest.raises(OSError) as info, _io.atomic_directory(tmp_path / "run"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.filename == str(tmp_path / "run") and list(tmp_path.iterdir()) == []
    real_fdopen = _io.os.fdopen
    monkeypatch.setattr(_io.os, "fdopen", lambda fd, mode: _FullFile(real_fdopen(fd, mode)))
    with pytest.raises(OSError) as info:
        _io.atomic_write_bytes(tmp_path / "x.json", b"{}")
    assert info.value.filename == str(tmp_path / "x.json") and list(tmp_path.iterdir()) == []


def test_a_file_written_sweeps_what_writers_killed_outright_left_beside_it(tmp_path):
    """A run's model.onnx, a predict folder's PNGs: their leftovers stayed for good (only runs/ was swept)."""
    import subprocess
    import sys

    from mnistlab._io import STAGING_PREFIX, atomic_write_bytes

    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    leftover = tmp_path / f"{STAGING_PREFIX}{gone.pid}-model.onnx-q8mae6jk.tmp"
    leftover.write_bytes(b"half")
    atomic_write_bytes(tmp_path / "model.onnx", b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_a_run_replaced_while_it_is_read_is_read_again_from_one_folder(tmp_path):
    """A comparison or a listing read config.json of one run and metrics or predictions of the next (trained
    again with overwrite): the pair was called damaged, or written into a comparison."""
    import shutil

    from mnistlab.errors import RunDamagedError
    from mnistlab.experiments.store import READ_ATTEMPTS, read_whole

    run = tmp_path / "run"
    run.mkdir()
    (run / "version").write_text("old")
    reads = []

    def read(folder):
        reads.append((folder / "version").read_text())
        if len(reads) == 1:  # trained again over it between two of its files
            staging = tmp_path / "staging"
            staging.mkdir()
            (staging / "version").write_text("new")
            shutil.rmtree(run)
            staging.rename(run)
            raise RunDamagedError("the predictions are not those metrics.json counts")
        return reads[-1]
    value, identity = read_whole(run, read)
    assert value == "new" and reads == ["old", "new"] and identity == (run.stat().st_dev, run.stat().st_ino)
    with pytest.raises(RunDamagedError, match="really damaged"):  # damage of a folder left alone is damage
        read_whole(run, lambda folder: (_ for _ in ()).throw(RunDamagedError("really damaged")))
    attempts = []

    def always_replaced(folder):
        attempts.append(1)
        shutil.copytree(run, tmp_path / "copy")
        shutil.rmtree(run)
        (tmp_path / "copy").rename(run)
    with pytest.raises(RunDamagedError, match="replaced while it was read"):
        read_whole(run, always_replaced)
    assert len(attempts) == READ_ATTEMPTS


def test_a_sweep_follows_no_link_opens_no_pipe_and_never_fails_the_write(tmp_path, monkeypatch):
    """Entries named like leftovers, planted in a shared folder: a link's target was moved into the folder,
    a pipe hung every write there, and one that could not be removed failed it as an internal error."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from mnistlab import _io

    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "notes.txt").write_text("precious")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / f"{_io.ASIDE_PREFIX}{gone.pid}-old-x").symlink_to(victim)
    os.mkfifo(shared / f"{_io.STAGING_PREFIX}{gone.pid}-x.json-abc.tmp")
    (shared / f"{_io.ASIDE_PREFIX}{gone.pid}-a-file").write_text("not a folder moved aside")
    _io.sweep_staging(shared)  # returns: the pipe is never opened
    assert (victim / "notes.txt").read_text() == "precious" and not (shared / "notes.txt").exists()
    leftover = shared / f"{_io.STAGING_PREFIX}{gone.pid}-y.json-abc.tmp"
    leftover.write_text("half")
    real_unlink = Path.unlink
    monkeypatch.setattr(Path, "unlink", lambda self, *a, **k: (_ for _ in ()).throw(PermissionError(1, "not ours"))
                        if self == leftover else real_unlink(self, *a, **k))
    _io.atomic_write_bytes(shared / "mine.txt", b"written")  # another user's leftover stays; the write is done
    assert (shared / "mine.txt").read_bytes() == b"written" and leftover.exists()


class _FullFile:
    """A file on a full disk: opened, but no byte can be written."""

    def __init__(self, file):
        self.file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def write(self, data):
        import errno

        raise OSError(errno.ENOSPC, "No space left on device")


def test_what_follows_a_commit_is_done_even_when_a_signal_comes_during_the_swap(tmp_path, monkeypatch):
    """A Ctrl-C during the swap was raised just after it: the run was written, its checkpoints left for good."""
    import os
    import signal

    from mnistlab import _io

    final = tmp_path / "run"
    final.mkdir()
    done = []

    def exchange(a, b, real=_io._exchange):
        os.kill(os.getpid(), signal.SIGINT)
        return real(a, b)
    monkeypatch.setattr(_io, "_exchange", exchange)
    # Python's own Ctrl-C, whatever an earlier test in this process left (a library that ignores SIGINT:
    # the signal, held back and raised again, was then ignored as it would have been)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), _io.atomic_directory(final, committed=lambda: done.append(1)) as staging:
            (staging / "version").write_text("new")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (final / "version").read_text() == "new" and done == [1]


def test_a_signal_between_the_renames_of_a_model_file_waits_for_both(tmp_path, monkeypatch):
    """save_model renames model.npz and model.json in turn: a Ctrl-C between them left the new model.json
    beside the old model.npz, a pair that is neither model."""
    import numpy as np

    from mnistlab import _io
    from mnistlab.models import get_family
    from mnistlab.models.serialization import load_model, save_model

    rng = np.random.default_rng(0)
    x, y = rng.random((60, 784), dtype=np.float32), np.arange(60) % 3
    old, new = (get_family("logreg")(C=c, max_iter=3).fit(x, y) for c in (0.01, 1.0))
    save_model(old, tmp_path)
    renamed = []

    def replace(source, target, real=os.replace):
        real(source, target)
        renamed.append(target)
        if len(renamed) == 1:  # Ctrl-C after the first file's rename
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(_io.os, "replace", replace)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own Ctrl-C (see above)
    try:
        with pytest.raises(KeyboardInterrupt):
            save_model(new, tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    assert len(renamed) == 2 and np.array_equal(load_model(tmp_path).coef_, new.coef_)


def test_signals_wait_for_the_end_of_a_deferred_block():
    import os
    import signal

    from mnistlab._io import signals_deferred

    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # a handler would run at any of these steps
                pass
            assert received == []
        for _ in range(1000):
            pass
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
    # SIGTERM's default action, which ends the process, waits too (masking the signal in the main thread
    # did not: the kernel gave it to a BLAS thread, and the process ended inside the block)
    code = ("import os, signal, numpy\nfrom mnistlab._io import signals_deferred\n"
            "with signals_deferred():\n    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    sum(range(10**6))\n    print('the block ended', flush=True)\nprint('after the block')")
    ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ended.returncode == -signal.SIGTERM and ended.stdout == "the block ended\n"


@contextmanager
def claimed_elsewhere(out, name: str, overwrite: bool = False):
    """Another live process holding the run ``name`` in ``out`` (``RunStore.claim``) while the block runs."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from mnistlab.experiments.store import RunStore\n"
        f"with RunStore({str(out)!r}).claim({name!r}, overwrite={overwrite}):\n"
        "    print('holding', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_is_held_by_a_live_process_not_by_whose_id_it_names(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / ".lock-reused").write_text(str(os.getpid()))  # left by a killed process whose id is reused
    with store.claim("reused") as writer:  # was "being trained right now by process <this one>"
        assert writer.path.name == "reused"
    with claimed_elsewhere(tmp_path, "held") as holder:
        with pytest.raises(RunExistsError, match=f"run 'held' is being trained right now by process {holder.pid}"):
            with store.claim("held"):
                pass
        from mnistlab.experiments import store as store_module

        with monkeypatch.context() as patch:  # a listing passes a held lock at once (claims try it again)
            patch.setattr(store_module.time, "sleep", lambda seconds: pytest.fail("a listing waited on a lock"))
            assert store.list() == [] and (tmp_path / "runs" / ".lock-held").exists()  # a live holder's lock stays
    with store.claim("held"):  # the kernel let go of it with the process: nothing stale to judge
        pass
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == []


def test_an_empty_checkpoints_folder_goes_but_never_one_in_use(tmp_path, monkeypatch):
    """<out>/checkpoints was left empty for good where a listing swept a default-named run's scratch folder (its
    process killed outright); it goes where empty, never while another run's folder is in it, and a run that has
    just made it makes it again where another removes it before its own folder is in it."""
    from mnistlab import _io

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process id that no process has now
    checkpoints = tmp_path / "checkpoints"
    left = checkpoints / f".staging-{gone.pid}-cnn-mnist-20261201-101500-abcd1234"
    left.mkdir(parents=True)
    (left / "checkpoint.safetensors").write_bytes(b"epochs")
    (checkpoints / "named").mkdir()  # a named run's, kept
    (tmp_path / "runs").mkdir()
    RunStore(tmp_path).list()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["named"]
    (checkpoints / "named").rmdir()
    RunStore(tmp_path).list()
    assert not checkpoints.exists()

    mkdir = os.mkdir
    def removed_meanwhile(path, *args, **kwargs):  # another run's end removes <out>/checkpoints, empty, at once
        mkdir(path, *args, **kwargs)
        if path == checkpoints and not removed_meanwhile.done:
            removed_meanwhile.done = True
            os.rmdir(path)
    removed_meanwhile.done = False
    monkeypatch.setattr(os, "mkdir", removed_meanwhile)
    _io.make_folder(checkpoints / "mine")
    assert removed_meanwhile.done and (checkpoints / "mine").is_dir()


def test_a_checkpoint_beside_a_run_is_judged_with_the_name_held(tmp_path):
    """A run and a checkpoint of it are an interrupted overwrite only where no live process holds the name: one
    overwriting it now writes that checkpoint (a check made before the claim called it interrupted)."""
    store = RunStore(tmp_path)
    (tmp_path / "runs" / "held").mkdir(parents=True)
    store.checkpoints("held").mkdir(parents=True)
    (store.checkpoints("held") / "checkpoint.safetensors").write_bytes(b"")
    with claimed_elsewhere(tmp_path, "held", overwrite=True) as holder:
        with pytest.raises(RunExistsError, match=f"^run 'held' is being trained right now by process {holder.pid}$"):
            with store.claim("held"):
                pass
    with pytest.raises(RunExistsError, match="an interrupted training of it kept its checkpoint in "):
        with store.claim("held"):
            pass
    with store.claim("held", overwrite=True) as writer:
        assert writer.path == tmp_path / "runs" / "held"


def test_a_claim_the_disk_is_too_full_for_leaves_no_lock(tmp_path, monkeypatch):
    from mnistlab.experiments import store as store_module

    write = os.write

    def full_disk(fd, data):  # for the lock's file only: os.write is every module's
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".lock-full"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(fd, data)

    monkeypatch.setattr(store_module.os, "write", full_disk)
    with pytest.raises(ParameterError, match="No space left on device"):
        with RunStore(tmp_path).claim("full"):
            pass
    assert list((tmp_path / "runs").iterdir()) == []  # an empty .lock-full stayed


def test_metrics_that_do_not_follow_from_their_confusion_matrix_are_damage(out, tmp_path):
    from mnistlab.experiments.store import read_metrics

    def per_class(metrics, **change):
        return [{**metrics["per_class"][0], **change}, *metrics["per_class"][1:]]
    for key, edit in (("accuracy", lambda m: {"accuracy": 0.95}), ("macro_f1", lambda m: {"macro_f1": 0.95}),
                      ("f1", lambda m: {"per_class": per_class(m, f1=0.999)}),
                      ("support", lambda m: {"per_class": per_class(m, support=1)})):
        local = tmp_path / key  # a comparison showed an accuracy of +0.155 beside 17 / 18 images
        shutil.copytree(out / "runs" / "b", local)
        metrics = json.loads((local / "metrics.json").read_text())
        (local / "metrics.json").write_text(json.dumps({**metrics, **edit(metrics)}))
        with pytest.raises(RunDamagedError, match="not those its confusion matrix gives"):
            read_metrics(local)
    read_metrics(out / "runs" / "b")  # a run's own, as written
