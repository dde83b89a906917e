"""Thread settings on a shared machine: a LeNet training step and a prediction batch with 1 thread,
with all cores spinning while they wait (OMP_WAIT_POLICY=ACTIVE), with all cores sleeping at once
(OMP_WAIT_POLICY=PASSIVE), and with mnistlab's choice, on a quiet machine and beside one busy process.

Each setting runs in a fresh process (OpenMP reads its settings once, when PyTorch starts it):
20 warm-up steps, then the median of 60 training steps of batch 64 (forward, backward, Adam) and of
30 predictions of 1024 images (forward, no gradients), float32. The busy neighbour is one Python
process spinning on a core. "mnistlab's choice" is what a fit and a prediction do: OpenMP's threads
spin briefly, then sleep (GOMP_SPINCOUNT=10000 on Linux, set unless the environment chose a wait
policy; see ``mnistlab.models.torch``), a fit trains on the threads ``available_threads`` gives when
it starts — the cores no other process is busy on — and a prediction runs on those it gives at each
call. The target is that it is never slower than 1 thread, quiet or not. ``--rounds`` (default 3)
runs every setting that many times, interleaved, and compares medians: single runs on a shared VM
compare moments.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

STEP = r"""
import json, os, statistics, sys, time
import numpy as np
import mnistlab.models.torch  # applies mnistlab's thread settings, as training does
import torch
from mnistlab.models.torch.device import available_threads, cpu_threads, prediction_threads
from mnistlab.models.torch.lenet import LeNet
threads = int(sys.argv[1])  # 0: PyTorch's default; -1: mnistlab's choice
waiting_variables = sys.argv[2:]  # WAITING
if threads > 0:
    torch.set_num_threads(threads)
net = LeNet()._build_network(10)
opt = torch.optim.Adam(net.parameters(), 1e-3)
rng = np.random.default_rng(0)
x = torch.from_numpy(rng.random((64, 1, 28, 28), dtype=np.float32))
y = torch.randint(0, 10, (64,))
batch = torch.from_numpy(rng.random((1024, 1, 28, 28), dtype=np.float32))

def train_step():
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()

def predict():
    with torch.no_grad():
        net(batch)

def predict_as_mnistlab():  # what TorchClassifier.predict_proba does
    with torch.no_grad(), prediction_threads():
        net(batch)

def median_ms(fn, warm_up, measured):
    times = []
    for i in range(warm_up + measured):
        start = time.perf_counter()
        fn()
        if i >= warm_up:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000

with cpu_threads(available_threads(readings=10) if threads < 0 else torch.get_num_threads()):
    used = torch.get_num_threads()
    train = median_ms(train_step, 20, 60)
net.eval()
predict_ms = median_ms(predict_as_mnistlab if threads < 0 else predict, 3, 30)
waiting = [f"{k}={os.environ[k]}" for k in waiting_variables if k in os.environ]
print(json.dumps({"train_ms": train, "predict_ms": predict_ms, "threads": used,
                  "waiting": ", ".join(waiting) or "OpenMP's default"}))
"""

WAITING = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # how OpenMP's threads wait: each setting's row names what it had
SETTINGS = [  # (label, threads (0: PyTorch's default, -1: mnistlab's choice), environment changes)
    ("1 thread", 1, dict.fromkeys(WAITING)),
    ("all cores, spinning while they wait", 0, {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": None}),
    ("all cores, sleeping at once", 0, {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": None}),
    ("mnistlab's choice", -1, dict.fromkeys(WAITING)),
]


def step_ms(threads: int, changes: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in changes or changes[k] is not None}
    env.update({k: v for k, v in changes.items() if v is not None})
    env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", STEP, str(threads), *WAITING], capture_output=True, text=True, env=env,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(rounds: int) -> dict:
    """Each setting quiet and busy, ``rounds`` times in turn; the medians of its rounds.

    A shared VM's speed drifts by a quarter within an hour, so one run of each setting after the
    other compares moments more than settings: rounds interleave them, and the median of each
    setting's rounds is what it is compared by.
    """
    runs: dict = {}
    for _ in range(rounds):
        for busy in (False, True):
            neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                for label, threads, changes in SETTINGS:
                    runs.setdefault((label, busy), []).append(step_ms(threads, changes))
            finally:
                if neighbour:
                    neighbour.kill()
    return {key: {"threads": "/".join(sorted({str(r["threads"]) for r in rs})), "waiting": rs[0]["waiting"],
                  **{kind: statistics.median(r[kind] for r in rs) for kind in ("train_ms", "predict_ms")}}
            for key, rs in runs.items()}


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of every setting; medians are compared")
    rounds = parser.parse_args().rounds
    results = measure(rounds)
    rows, met = [], True
    for label, _, _ in SETTINGS:
        quiet, busy = results[label, False], results[label, True]
        row = [label, f"{quiet['threads']} / {busy['threads']}", quiet["waiting"]]
        for kind in ("train_ms", "predict_ms"):
            one = results["1 thread", False][kind], results["1 thread", True][kind]
            row += [f"{quiet[kind]:.0f}", f"{busy[kind]:.0f}",
                    f"{one[0] / quiet[kind]:.2f}× / {one[1] / busy[kind]:.2f}×"]
            if label == "mnistlab's choice":
                met &= quiet[kind] <= one[0] * 1.05 and busy[kind] <= one[1] * 1.05
        rows.append(row)
    body = ("LeNet (the tutorial's CNN), float32, each setting in a fresh process; "
            f"{os.cpu_count()} cores. Training: median of 60 steps of batch 64 after 20 warm-up steps. "
            "Prediction: median of 30 forward passes of 1024 images. \"Busy\": one other process "
            f"spinning on a core. Every setting ran {rounds} times, quiet and busy, the rounds interleaved; "
            "the table gives the median of its rounds. Target: mnistlab's choice never slower than 1 thread "
            "(5 % tolerance), "
            f"training and prediction, quiet and busy: {'met' if met else 'NOT met'}.\n\n"
            + common.markdown_table(["setting", "threads (quiet / busy)", "OpenMP's waiting",
                                     "train ms, quiet", "busy", "vs 1 thread (quiet / busy)",
                                     "predict ms, quiet", "busy", "vs 1 thread (quiet / busy)"], rows))
    common.write_section("bench_threads", "Thread settings on a shared machine", body)
    print(body)


if __name__ == "__main__":
    main()
