"""The command line as a shell: help with examples, runs by name or path, bad input vs bugs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

from pathlib import Path

import pytest
import typer.main

from conftest import heavy_libraries_imported, run_cli
from mnistlab.cli import app
from mnistlab.cli.common import StrictCommand
from mnistlab.errors import paths_relative, shown_path
from mnistlab.experiments.pipeline import DataChoice, train


def commands() -> dict[str, object]:
    """Every command as its words ('runs list') → its callback."""
    found = {}

    def walk(group, prefix):
        for name, command in group.commands.items():
            words = f"{prefix} {name}".strip()
            if hasattr(command, "commands"):
                walk(command, words)
            else:
                found[words] = command
    walk(typer.main.get_command(app), "")
    return found


@pytest.mark.parametrize("words", sorted(commands()))
def test_help_shows_each_example_on_its_own_line(words):
    examples = re.search(r"```\n(.*?)```", commands()[words].help or "", re.S)
    assert examples, f"`mnistlab {words} --help` has no examples"
    result = run_cli(*words.split(), "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0
    shown = [line.strip() for line in result.stdout.splitlines()]
    for example in examples.group(1).strip().splitlines():
        assert example.strip() in shown, f"{words}: {example!r} is not a line of its own"
    assert "shared" not in result.stdout  # no test-set-up folders in user text


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("shell")
    for name, c in (("a", 0.1), ("b", 0.01)):
        train("logreg", {"C": c}, DataChoice(train_size=600, test_size=200), out, name=name)
    return out


@pytest.mark.parametrize("args", [
    ["runs", "show", "{run}", "--json"],
    ["evaluate", "{run}", "--json"],
    ["predict", "{run}", "--index", "0", "--json"],
    ["explain", "{run}", "--index", "0", "--json"],
    ["compare", "{run}", "{other}", "--json"],
])
def test_every_command_takes_a_run_by_name_or_by_path(out, args):
    answers = []
    for run, other in (("a", "b"), (str(out / "runs" / "a"), str(out / "runs" / "b"))):
        result = run_cli(*[a.format(run=run, other=other) for a in args], "--out", str(out))
        assert result.returncode == 0, result.stderr
        answers.append(json.loads(result.stdout))
    drop = {"folder", "files", "run_dir", "report"}
    assert {k: v for k, v in answers[0].items() if k not in drop} == \
        {k: v for k, v in answers[1].items() if k not in drop}


def test_an_internal_bug_is_not_reported_as_bad_input(out):
    code = ("import sys, mnistlab.experiments.store as store;"
            "store.RunStore.list = lambda self: 1 / 0;"  # a deliberately injected bug
            "from mnistlab.cli import main; sys.argv = ['mnistlab', *sys.argv[1:]]; main()")
    for debug in ([], ["--debug"]):
        result = subprocess.run([sys.executable, "-c", code, *debug, "runs", "list", "--out", str(out)],
                                capture_output=True, text=True)
        assert result.returncode == 1
        assert "internal error: ZeroDivisionError" in result.stderr and "bug in mnistlab" in result.stderr
        assert ("Traceback" in result.stderr) == bool(debug)


@pytest.mark.parametrize("args, what", [
    (["data", "show"], "the data's pictures"),
    (["sweep", "logreg", "--C", "0.1", "--train-size", "100"], "sweeps"),
    (["compare", "{out}/runs/a", "{out}/runs/b"], "comparisons"),
])
def test_an_out_folder_that_cannot_be_written_is_said_before_any_work(out, tmp_path, args, what):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    result = run_cli(*[a.format(out=out) for a in args], "--out", str(not_a_folder))
    assert result.returncode == 2 and result.stderr.startswith(f"error: --out: cannot write {what} in {not_a_folder}/")


def test_a_library_parameter_is_shown_as_its_flag(tmp_path):
    result = run_cli("train", "logreg", "--train-size", "0", "--out", str(tmp_path))
    assert result.returncode == 2 and "--train-size:" in result.stderr and "Traceback" not in result.stderr
    values = ",".join(map(str, range(1, 1002)))  # a swept model option's too: it was said as --grid, no flag at all
    result = run_cli("sweep", "logreg", "--max-iter", values, "--train-size", "100", "--out", str(tmp_path))
    assert result.returncode == 2 and result.stderr == ("error: --max-iter: 1,001 values are given: at most 1,000 "
                                                        "combinations are swept at once\n")


@pytest.mark.parametrize("name", ["[/x]", "[bold]x"])
def test_what_the_user_typed_is_printed_as_typed_never_as_markup(tmp_path, name):
    result = run_cli("runs", "show", name, "--out", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: no run '{name}'")


def test_a_warning_is_one_line_and_says_where_only_under_debug(tmp_path):
    # scikit-learn warns that it raises an alpha of 0, and fits
    args = ["train", "sklearn:BernoulliNB", "--alpha", "0", "--force-alpha", "false", "--train-size", "100",
            "--test-size", "50", "--no-embedding", "--out", str(tmp_path)]
    plain, debug = run_cli(*args, "--name", "plain"), run_cli("--debug", *args, "--name", "debug")
    assert plain.returncode == debug.returncode == 0
    assert "warning: alpha too small" in plain.stderr and "UserWarning" not in plain.stderr
    assert "naive_bayes.py" in debug.stderr and "UserWarning: alpha too small" in debug.stderr


def test_a_warning_of_mnistlab_says_where_in_mnistlab_under_debug(tmp_path):
    # errors.warn names the first frame outside mnistlab, the user's call in Python: here it was typer's
    args = ["train", "logreg", "--penalty", "none", "--C", "5", "--train-size", "100", "--test-size", "50",
            "--no-embedding", "--out", str(tmp_path)]
    plain, debug = run_cli(*args, "--name", "plain"), run_cli("--debug", *args, "--name", "debug")
    assert plain.returncode == debug.returncode == 0
    assert "warning: --C: ignored (used only when penalty is" in plain.stderr and "base.py" not in plain.stderr
    said = [line for line in debug.stderr.splitlines() if "UnusedParameterWarning:" in line]
    assert len(said) == 1 and os.path.join("", "mnistlab", "models", "base.py:") in said[0], said


def test_numbers_past_float32_end_a_numpy_fit_in_one_line_not_warnings_and_a_run(tmp_path):
    # Adam's squared gradients overflow float32 at this learning rate: it warned and went on, exit code 0
    result = run_cli("train", "numpy-mlp", "--learning-rate", "1e9", "--train-size", "100", "--test-size", "50",
                     "--no-embedding", "--out", str(tmp_path))
    assert result.returncode == 2 and "warning" not in result.stderr
    assert "error: numpy-mlp diverged in training: its numbers went past float32's range in epoch" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("args", [["--help"], ["runs", "list"]])
def test_quick_commands_import_no_heavy_library(out, args):
    """`--help` and `runs list` start fast because they load neither scikit-learn, matplotlib nor PyTorch
    (benchmarks/bench_cli.py times them)."""
    result, heavy = heavy_libraries_imported(*args, *(["--out", str(out)] if args != ["--help"] else []))
    assert heavy == set(), result.stderr


CTRL_C_WHILE_LOADING = {
    # while typer loads, a tenth of a second into `mnistlab ...`
    "import": ("import builtins\n"
               "real_import = builtins.__import__\n"
               "def interrupted(name, *args, **kwargs):\n"
               "    if name == 'typer':\n"
               "        os.kill(os.getpid(), signal.SIGINT)\n"
               "    return real_import(name, *args, **kwargs)\n"
               "builtins.__import__ = interrupted\n"),
    # in a weakref callback (the import lock's), where Python prints the KeyboardInterrupt and goes on: the
    # command then ran to its end, exit code 0
    "weakref callback": ("import mnistlab.cli, weakref\n"
                         "class Lock: pass\n"
                         "def callback(ref):\n"
                         "    os.kill(os.getpid(), signal.SIGINT)\n"
                         "    for _ in range(100): pass\n"
                         "real_main, lock = mnistlab.cli.main, Lock()\n"
                         "def main(**kwargs):\n"
                         "    global lock\n"
                         "    ref = weakref.ref(lock, callback); lock = None; real_main(**kwargs)\n"
                         "mnistlab.cli.main = main\n"),
    # in cli.main before its guard, as its watchdog thread starts: a traceback
    "watchdog": ("import mnistlab.cli\n"
                 "def start(target, name):\n"
                 "    os.kill(os.getpid(), signal.SIGINT)\n"
                 "    for _ in range(100): pass\n"
                 "mnistlab.cli.start_waiting_thread = start\n"),
}


@pytest.mark.parametrize("where", sorted(CTRL_C_WHILE_LOADING))
def test_ctrl_c_while_the_command_line_loads_is_one_word_not_a_traceback(where):
    """Ctrl-C before the CLI's guard is in place ends as Ctrl-C later does, wherever Python takes it."""
    result = _python_with_ctrl_c("import os, signal, sys\n" + CTRL_C_WHILE_LOADING[where] +
                                 "from mnistlab.__main__ import main; sys.argv = ['mnistlab', '--help']; main()")
    assert (result.returncode, result.stderr) == (130, "interrupted\n")


def _python_with_ctrl_c(code: str, handler=signal.SIG_DFL) -> subprocess.CompletedProcess:
    """``code`` run by Python with Ctrl-C's ``handler`` as a terminal (SIG_DFL) or a script's & (SIG_IGN) leave it:
    a test runner's worker may have handed down Ctrl-C ignored."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, handler))


def test_ctrl_c_while_loading_in_ipython_is_a_keyboardinterrupt_not_the_end_of_the_kernel():
    """Run in a kernel (runpy, %run -m), the handler that ends the process ended the kernel and its notebook."""
    result = _python_with_ctrl_c("import os, signal, sys, types\n" + CTRL_C_WHILE_LOADING["import"] +
                                 "sys.modules['IPython'] = types.ModuleType('IPython')\n"
                                 "from mnistlab.__main__ import main; sys.argv = ['mnistlab', '--help']\n"
                                 "try:\n    main()\nexcept (KeyboardInterrupt, SystemExit):\n"
                                 "    print('the kernel lives')")
    assert (result.returncode, result.stdout) == (0, "the kernel lives\n"), result.stderr


def test_ctrl_c_is_left_ignored_where_it_was():
    """A command started with & by a script has Ctrl-C ignored (the terminal's Ctrl-C is for the script)."""
    result = _python_with_ctrl_c("import os, signal, sys\n"
                                 "from mnistlab.cli import common\n"
                                 "@common.app.command('kill-self')\n"
                                 "def kill_self():\n"
                                 "    os.kill(os.getpid(), signal.SIGINT); print('ran on')\n"
                                 "from mnistlab.__main__ import main; sys.argv = ['mnistlab', 'kill-self']; main()",
                                 signal.SIG_IGN)
    assert (result.returncode, result.stdout) == (0, "ran on\n"), result.stderr


def test_help_starts_without_numpy():
    """36 ms more at every start once a module every command imports (store, through _values) loaded it."""
    code = ("import sys; from mnistlab.cli import main; sys.argv = ['mnistlab', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint('numpy' in sys.modules, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stderr.strip().splitlines()[-1] == "False", result.stderr


@pytest.mark.parametrize("error, expected", [
    ("OSError(errno.ENOSPC, 'No space left on device', '/x/runs/a/plots/map.png')",
     (2, "error: No space left on device: /x/runs/a/plots/map.png\n")),
    ("OSError(errno.EROFS, 'Read-only file system', '/x/runs')", (2, "error: Read-only file system: /x/runs\n")),
    ("OSError(errno.EBADF, 'Bad file descriptor')", (1, "internal error: OSError: [Errno 9] Bad file descriptor")),
    # another user's run in a sticky shared folder; a file-size limit (ulimit -f), in a run's staging folder
    ("PermissionError(errno.EPERM, 'Operation not permitted', '/x/runs/a')", (2, "error: Operation not permitted: "
                                                                               "/x/runs/a\n")),
    ("OSError(errno.EFBIG, 'File too large', f'/x/runs/.staging-{os.getpid()}-a-b-3pn4nopj/report.html')",
     (2, "error: File too large: /x/runs/a-b/report.html\n")),
    ("OSError(errno.ENOSPC, 'No space left on device', '.')", (2, "error: No space left on device: .\n")),
    # without a file (os.kill, sched_setaffinity): more likely a bug than the machine's state
    ("PermissionError(errno.EPERM, 'Operation not permitted')", (1, "internal error: PermissionError: ")),
])
def test_a_full_or_read_only_disk_is_one_line_not_a_bug(out, error, expected):
    code = ("import errno, os, sys, mnistlab.experiments.store as store\n"
            f"def fail(self): raise {error}\n"
            "store.RunStore.list = fail\n"
            "from mnistlab.cli import main; sys.argv = ['mnistlab', *sys.argv[1:]]; main()")
    result = subprocess.run([sys.executable, "-c", code, "runs", "list", "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == expected[0] and result.stderr.startswith(expected[1])


def test_recipes_run_all_says_each_run_of_how_many_as_it_ends(tmp_path):
    """A bar alone, showing the last run's state: on a file or a pipe nothing said which of the recipes' runs were
    done until the end (hours). Under --json stderr has none of these lines."""
    from mnistlab.experiments.recipes import RECIPES

    code = ("import sys\nfrom mnistlab.errors import MnistlabError\nfrom mnistlab.experiments import pipeline\n"
            "def fail(job, out, progress=None):\n    raise MnistlabError('no data here')\n"
            "pipeline.train_job = fail\n"
            "from mnistlab.cli import main; sys.argv = ['mnistlab', *sys.argv[1:]]; main()")
    runs = 2 * len(RECIPES)
    for json_flag in ([], ["--json"]):
        result = subprocess.run([sys.executable, "-c", code, "recipes", "run", "--all", "--out", str(tmp_path),
                                 *json_flag], capture_output=True, text=True)
        assert result.returncode == 2 and "recipes failed" in result.stderr, result.stderr
        said = [line for line in result.stderr.splitlines() if line.startswith("[")]
        if json_flag:
            assert not said and json.loads(result.stdout)
        else:
            first = next(iter(RECIPES))
            assert said[0] == f"[1/{runs}] recipe-{first}-reproduction: failed: no data here" and len(said) == runs, \
                said


def test_an_error_line_names_a_path_as_given_relative_to_the_working_folder(tmp_path):
    """Run and DataChoice keep absolute paths (they work after a notebook's %cd), and the layers below said them
    whole: 'error: /home/…/o/runs/d/config.json: not valid JSON' for --out o. A value the user gave is quoted as
    given: the working folder cut from the finished line (1220b16, reverted) had cut it from --name $PWD/myrun."""
    damaged = tmp_path / "o" / "runs" / "d"
    damaged.mkdir(parents=True)
    (damaged / "config.json").write_text("{")
    (tmp_path / "d").mkdir()
    for args, said in [(("runs", "show", "d", "--out", "o"), "error: o/runs/d/config.json: not valid JSON"),
                       (("runs", "show", str(damaged)), "error: o/runs/d/config.json: not valid JSON"),
                       (("runs", "show", "../" + tmp_path.name + "/o/runs/d"),
                        f"error: ../{tmp_path.name}/o/runs/d/config.json: not valid JSON"),
                       (("data", "show", "--data-dir", "d"), "error: d: does not hold fashion-mnist's four IDX files"),
                       (("train", "logreg", "--name", f"{tmp_path}/myrun", "--out", "o"),
                        f"error: --name: '{tmp_path}/myrun' is not a run name")]:
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.startswith(said), (args, result.stderr)


def test_paths_are_said_relative_on_the_command_line_only_and_never_to_the_root(tmp_path, monkeypatch):
    """The API's messages, a notebook's after %cd and a cluster worker's (another working folder) name whole
    paths; relative to / a path had lost only its slash ('error: tmp/…/metrics.json')."""
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "o" / "runs"
    assert shown_path(inside) == inside
    with paths_relative():
        assert shown_path(inside) == Path("o/runs") and shown_path("/elsewhere/x") == Path("/elsewhere/x")
        monkeypatch.chdir("/")
        assert shown_path(inside) == inside
    (inside / "d").mkdir(parents=True)
    (inside / "d" / "config.json").write_text("{")
    result = run_cli("runs", "show", str(inside / "d"), cwd="/")
    assert result.returncode == 2 and result.stderr.startswith(f"error: {inside}/d/config.json: not valid"), \
        result.stderr


def test_runs_json_under_a_folder_whose_name_is_not_utf8_is_text_a_strict_reader_takes(tmp_path):
    """A run's path under --out $'o\\xfe' held a surrogate, which json.dumps wrote as a lone "\\udcfe" escape (jq
    refuses it); a folder whose own name is not UTF-8 is renamed by the command its row gives, byte for byte."""
    runs = tmp_path / os.fsdecode(b"o\xfe") / "runs"
    (runs / "x").mkdir(parents=True)
    (runs / os.fsdecode(b"bad\xff")).mkdir()
    result = run_cli("runs", "list", "--out", os.fsdecode(b"o\xfe"), "--json", cwd=tmp_path)
    assert result.returncode == 0 and not re.search(r"\\ud[89a-f]", result.stdout, re.I), result.stdout
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["x"]["path"] == "o\ufffd/runs/x" and rows["x"]["damaged"] == "o\ufffd/runs/x/config.json: missing"
    hint = rows["bad\ufffd"]["damaged"]
    assert hint.endswith(": its name is not UTF-8: rename it to 'bad' (in its folder: "
                         """mv "$(printf 'bad\\377')" bad)"""), hint
    subprocess.run(["sh", "-c", hint.rpartition("folder: ")[2][:-1]], cwd=runs, check=True)  # dash, not only bash
    assert sorted(os.listdir(runs)) == ["bad", "x"]


def test_json_output_is_strict_json_even_with_an_infinite_setting():
    result = run_cli("recipes", "list", "--json")  # the tutorial's unpenalised fit is C=inf
    assert result.returncode == 0, result.stderr

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    answer = json.loads(result.stdout, parse_constant=refuse)
    assert "inf" in result.stdout and answer


def test_json_output_writes_numpy_values_as_the_files_do(capsys):
    """--json wrote NumPy's values as str() did: "3" and "[0 1 2]", where the run's files (json_text) hold
    3 and [0, 1, 2]; now the same text as json_text, indented and ending in one newline."""
    import numpy as np

    from mnistlab._io import json_text
    from mnistlab.cli.common import emit_json

    answer = {"label": np.int64(3), "labels": np.arange(3), "score": np.float32(0.5), "C": float("inf")}
    emit_json(answer)
    printed = capsys.readouterr().out
    assert json.loads(printed) == {"label": 3, "labels": [0, 1, 2], "score": 0.5, "C": "inf"}
    assert printed == json_text(answer) and printed.startswith('{\n  "label": 3,') and printed.endswith("}\n")
    emit_json({"runs": Path(os.fsdecode(b"o\xfe")) / "runs"})  # a Path's surrogates too: a lone "\udcfe" for jq
    assert json.loads(capsys.readouterr().out) == {"runs": "o\ufffd/runs"}


def test_runs_show_says_what_is_wrong_with_a_damaged_run(out, tmp_path):
    import shutil

    for edit, message in [(lambda m: m.pop("log_loss"), "'log_loss' is missing or not float"),
                          (lambda m: m.update(analysis=123), "'analysis' must be a list of sentences"),
                          (lambda m: m.update(robustness="x"), "'robustness' must hold the clean accuracy"),
                          (lambda m: m.update(predict_seconds_per_10k="x"), "'predict_seconds_per_10k' must be")]:
        damaged = tmp_path / "runs" / "d"
        shutil.rmtree(damaged, ignore_errors=True)
        shutil.copytree(out / "runs" / "a", damaged)
        metrics = json.loads((damaged / "metrics.json").read_text())
        edit(metrics)
        (damaged / "metrics.json").write_text(json.dumps(metrics))
        result = run_cli("runs", "show", "d", "--out", str(tmp_path))
        assert result.returncode == 2 and message in result.stderr and result.stdout == ""
    (damaged / "config.json").unlink()
    result = run_cli("runs", "show", "d", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "config.json: missing (or not a file), so 'd' is not a complete run" in result.stderr
    piped = tmp_path / "runs" / "p"
    shutil.copytree(out / "runs" / "a", piped)
    (piped / "metrics.json").unlink()
    os.mkfifo(piped / "metrics.json")  # a pipe would block the reading forever
    result = run_cli("runs", "list", "--out", str(tmp_path), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert "metrics.json: not a regular file" in listed["p"]["damaged"]


def test_runs_show_warns_of_what_the_list_calls_damaged_and_the_model_still_serves(out, tmp_path):
    """`runs show` presented a run as fine where `runs list` called it damaged; refusing it (review) stopped its
    intact model from predicting and exporting, which need no predictions.npz."""
    import shutil

    damaged = tmp_path / "runs" / "d"
    shutil.copytree(out / "runs" / "a", damaged)
    (damaged / "predictions.npz").unlink()
    listed = json.loads(run_cli("runs", "list", "--out", str(tmp_path), "--json").stdout)
    assert listed[0]["damaged"] == f"{damaged / 'predictions.npz'}: missing (or not a file)"
    result = run_cli("runs", "show", "d", "--out", str(tmp_path))
    assert result.returncode == 0 and result.stderr == f"warning: damaged: {listed[0]['damaged']}\n", result.stderr
    assert run_cli("predict", "d", "--index", "0", "--out", str(tmp_path)).returncode == 0


def test_a_usage_error_is_one_line_naming_the_help_to_read(tmp_path):
    for args, message in [(["data", "pixels", "--index", "1e3"], "Input should be a valid integer"),
                          (["runs", "show", "--out", str(tmp_path)], "Missing argument 'run'"),
                          (["bogus"], "No such command 'bogus'")]:
        result = run_cli(*args)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ") and message in result.stderr and "--help`)" in result.stderr


def test_help_asked_for_beside_json_is_printed_on_stdout():
    result = run_cli("runs", "list", "--json", "--help")  # it went to stderr, set apart for the JSON
    assert result.returncode == 0 and "Usage:" in result.stdout and result.stderr == ""


def test_json_training_says_it_started_once_the_checks_passed(tmp_path):
    refused = run_cli("train", "logreg", "--C", "-1", "--out", str(tmp_path), "--json")
    assert refused.returncode == 2 and refused.stderr == "error: --C: must be a number > 0; got -1.0\n"  # one line
    trained = run_cli("train", "logreg", "--train-size", "300", "--test-size", "100", "--no-embedding",
                      "--out", str(tmp_path), "--json")
    assert trained.returncode == 0 and trained.stderr == "training logreg on fashion-mnist…\n"


def test_json_is_the_only_thing_on_stdout_even_where_a_model_prints(tmp_path):
    result = run_cli("train", "sklearn:LinearSVC", "--verbose", "1", "--max-iter", "50", "--train-size", "300",
                     "--test-size", "100", "--no-embedding", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accuracy"] > 0.5  # liblinear's own lines went to stderr
    assert "[LibLinear]" in result.stderr


def test_an_option_given_twice_is_refused_as_a_model_option_is(tmp_path):
    def commands(group):
        for command in group.commands.values():
            yield from commands(command) if hasattr(command, "commands") else [command]

    # every command, new ones too
    assert all(isinstance(c, StrictCommand) for c in commands(typer.main.get_command(app)))
    for args, message in [(["train", "logreg", "--train-size", "300", "--train-size", "400"], "--train-size is given"),
                          (["train", "logreg", "-d", "mnist", "--dataset", "fashion"], "--dataset is given twice"),
                          (["train", "logreg", "--C", "1", "--C", "2"], "--C: C is given twice")]:
        result = run_cli(*args, "--out", str(tmp_path))  # was: the last --train-size, without a word
        assert result.returncode == 2 and result.stderr.startswith("error: ") and message in result.stderr, args
    assert not (tmp_path / "runs").exists()
    twice = run_cli("train", "--help", "--help")  # the same help, asked twice
    assert twice.returncode == 0 and "Usage:" in twice.stdout and "train" in twice.stdout


def test_an_empty_path_is_refused_not_read_as_the_current_folder(tmp_path):
    for args, message in [(["train", "logreg", "--train-size", "100", "--out", ""], "--out: an empty path"),
                          (["train", "logreg", "--train-size", "100", "--out="], "--out: an empty path"),
                          (["data", "info", "--data-dir", ""], "--data-dir: an empty path"),
                          (["predict", "some-run", "a.png", ""], "an empty path among the files")]:
        result = run_cli(*args, cwd=tmp_path)  # was: a run written into the current folder's runs/
        assert result.returncode == 2 and result.stderr.startswith("error: ") and message in result.stderr, args
    assert list(tmp_path.iterdir()) == []


def test_an_empty_path_is_refused_in_the_words_of_what_the_option_takes(tmp_path):
    # --output and --labels take a file: "give a file or folder (. for this one)", and '.' was then no file name
    for args, message in [(["export", "some-run", "--output", ""], "--output: an empty path; give a file"),
                          (["predict", "some-run", "a.png", "--labels", ""], "--labels: an empty path; give a file"),
                          (["train", "logreg", "--out", ""], "--out: an empty path; give a folder (. for this one)"),
                          # a run named '' was looked for as the folder '.'
                          (["export", ""], "an empty run name; give a run's name or its folder's path"),
                          (["evaluate", ""], "an empty run name; give a run's name or its folder's path")]:
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr == f"error: {message}\n", (args, result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_value_given_is_refused_not_taken_for_none(tmp_path):
    for args, message in [(["train", "logreg", "--name", "", "--train-size", "100"], "--name: a run name must be"),
                          (["models", ""], "unknown model ''"),
                          (["benchmark", "zalando", "--classifiers", ""], "--classifiers: an empty name among them"),
                          (["sweep", "logreg", "--C", "1", "--cluster", "", "--train-size", "100"],
                           "--cluster: must be")]:
        result = run_cli(*args, "--out", str(tmp_path)) if args[0] != "models" else run_cli(*args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sweeps").exists()


def test_the_command_line_s_own_thread_leaves_the_figures_two_processes():
    """The thread that ends a stuck command after a signal made every `train` draw its figures in one process
    (a child is forked only beside no other thread, whose locks it would inherit held): 1.3 s became 2.4."""
    probe = ("import threading; import mnistlab.cli as cli; from mnistlab._system import other_threads; "
             "cli._end_if_stuck(); print(threading.active_count(), other_threads())")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.split() == ["2", "0"], result.stderr  # its thread, not counted
