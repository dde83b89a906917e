"""A real `mnistlab train` killed by a signal while it fits: nothing is listed, and --resume continues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_cli
from mnistlab.experiments.store import RunStore

# Small enough for CI, long enough that the first epoch's checkpoint lands well before the end.
CNN = ["train", "cnn", "--train-size", "1500", "--test-size", "200", "--epochs", "4", "--batch-size", "64",
       "--learning-rate", "0.05", "--widths", "8,16"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_while_fitting_then_resumed(tmp_path, sig):
    command = [sys.executable, "-m", "mnistlab", *CNN, "--name", "k", "--out", str(tmp_path), "--json"]
    victim = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    checkpoint = tmp_path / "checkpoints" / "k" / "checkpoint.safetensors"
    deadline = time.time() + 240
    while not checkpoint.exists():
        assert victim.poll() is None, victim.stderr.read().decode()
        assert time.time() < deadline, "no checkpoint was written"
        time.sleep(0.1)
    victim.send_signal(sig)
    victim.wait(timeout=60)
    assert victim.returncode == 128 + sig or victim.returncode == -sig
    if sig == signal.SIGTERM:  # said, as Ctrl-C's "interrupted" is: it ended in silence
        assert victim.stderr.read().decode().endswith("terminated\n")
    assert RunStore(tmp_path).list() == []  # nothing half-written is listed
    assert not [p for p in (tmp_path / "runs").iterdir()]  # and the lock and staging are swept

    resumed = run_cli(*CNN, "--name", "k", "--out", str(tmp_path), "--resume", env={"OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stderr
    run = tmp_path / "runs" / "k"
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert len(history["train_loss"]) == 4  # the epochs before the kill are kept, not run again
    assert not (tmp_path / "checkpoints").exists()  # removed once the run is complete
    assert [r.name for r in RunStore(tmp_path).list()] == ["k"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_while_writing_its_artifacts_then_resumed(tmp_path, sig):
    """Killed after the last epoch, while the run folder is being written: the staging folder is
    never listed, and --resume has nothing left to train but writes the run from the checkpoint."""
    command = [sys.executable, "-m", "mnistlab", *CNN, "--name", "w", "--out", str(tmp_path), "--json"]
    victim = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    runs = tmp_path / "runs"
    deadline = time.time() + 240
    while not any(p.name.startswith(".staging-") and (p / "model.json").exists()
                  for p in (runs.iterdir() if runs.is_dir() else [])):
        assert victim.poll() is None, "finished before it could be killed: " + victim.stderr.read().decode()
        assert time.time() < deadline, "no staging folder was written"
        time.sleep(0.01)
    victim.send_signal(sig)
    victim.wait(timeout=60)
    assert victim.returncode != 0
    if sig == signal.SIGTERM:  # unwound as Ctrl-C is: nothing left for a later command to sweep, no drawing child
        assert victim.returncode == 128 + signal.SIGTERM and not list(runs.iterdir())
        assert processes_naming(str(tmp_path)) == []
    assert RunStore(tmp_path).list() == []
    assert not list(runs.iterdir())

    resumed = run_cli(*CNN, "--name", "w", "--out", str(tmp_path), "--resume", env={"OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 4" in resumed.stderr
    assert len(json.loads((runs / "w" / "metrics.json").read_text())["history"]["train_loss"]) == 4
    assert [r.name for r in RunStore(tmp_path).list()] == ["w"]


def processes_naming(text: str) -> list[int]:
    """The processes whose command line holds ``text`` (a forked child has its parent's)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and text.encode() in open(f"/proc/{entry}/cmdline", "rb").read():
                found.append(int(entry))
        except OSError:  # gone meanwhile
            pass
    return found


def test_a_helper_process_ends_with_its_parent_killed_outright(tmp_path):
    """The child that draws half of a run's figures went on writing into the swept staging folder."""
    pid_file = tmp_path / "child.pid"
    code = ("import os, time\n"
            "from mnistlab._system import ended_with_parent\n"
            "end_with_parent = ended_with_parent()\n"
            "if os.fork() == 0:\n"
            "    end_with_parent()\n"
            f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
            "    time.sleep(60)\n"
            "    os._exit(0)\n"
            "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.time() < deadline
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while _alive(child) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie (reaped by init soon) counts as ended
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


STUCK_COMMAND = '''
import ctypes, signal, sys
import mnistlab.cli as cli
from mnistlab.cli.common import app
cli.STOP_GRACE = 1.0
# as started from a terminal: a test runner's worker may have handed down Ctrl-C ignored (as a shell's
# background job is), and an ignored signal reaches no handler at all
signal.signal(signal.SIGINT, signal.default_int_handler)

@app.command("stuck")
def stuck():
    print("started", flush=True)
    # a C call that lets other threads run and goes on past a signal, as libsvm's solver does
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    ctypes.CDLL(None).sleep(60)

sys.argv = ["mnistlab", "stuck"]
cli.main()
'''


@pytest.mark.parametrize("sig, code, line", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_command_stuck_in_c_code_ends_soon_after_a_signal(tmp_path, sig, code, line):
    """Python runs a signal's handler between bytecodes only: `train sklearn:SVC` went on 65 s past a SIGTERM,
    and `benchmark zalando --classifiers SVC` past one for ever."""
    script = tmp_path / "stuck.py"
    script.write_text(STUCK_COMMAND)
    victim = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert victim.stdout.readline() == "started\n"
        time.sleep(0.2)
        sent = time.monotonic()
        victim.send_signal(sig)
        _, err = victim.communicate(timeout=30)
        assert victim.returncode == code and err == f"{line}\n" and time.monotonic() - sent < 15
    finally:
        victim.kill()  # it blocks both signals: where the test fails, nothing else would end it


INTERRUPTED_CELL = '''
import os, signal, sys, threading, time
import mnistlab as ml
module, family, out = sys.argv[1:]
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a kernel, whatever the test runner handed down

def interrupt():  # Jupyter's "interrupt kernel", sent as the library starts importing
    while module not in sys.modules:
        time.sleep(0.001)
    os.kill(os.getpid(), signal.SIGINT)

def cell():
    return ml.train(family, name="cell", overwrite=True, train_size=500, test_size=200, embedding=False, out=out,
                    progress=False, **({"epochs": 1} if family == "lenet" else {}))

threading.Thread(target=interrupt, daemon=True).start()
try:
    cell()
except KeyboardInterrupt:
    print("interrupted")
print("again:", cell())
'''


@pytest.mark.parametrize("module, family", [("matplotlib.colors", "logreg"),  # the report's first figure
                                            ("torch.nn", "lenet"),  # the family's module
                                            ("sympy.matrices", "lenet")])  # torch.optim.Adam's torch._dynamo
def test_an_interrupt_while_a_library_is_first_imported_leaves_it_whole(tmp_path, fashion, module, family):
    """Jupyter's interrupt during a fit's first import of a library left it half-imported, and every later call
    in the kernel failed: "module 'matplotlib' has no attribute 'get_data_path'", "partially initialized module
    'torch' has no attribute 'cuda'", "module 'sympy' has no attribute 'printing'"."""
    if family == "lenet":
        pytest.importorskip("torch")
    script = tmp_path / "cell.py"
    script.write_text(INTERRUPTED_CELL)
    done = subprocess.run([sys.executable, str(script), module, family, str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("interrupted\nagain: ")
