"""Thread settings on a shared machine: a LeNet training step with 1 thread, with all cores, and with
all cores and OMP_WAIT_POLICY=PASSIVE, on a quiet machine and beside one busy process.

Each setting runs in a fresh process (OpenMP reads its settings once, when PyTorch starts it):
20 warm-up steps, then the median of 60 steps of batch 64 (forward, backward, Adam), float32.
The busy neighbour is one Python process spinning on a core. What mnistlab does is the row
"mnistlab's default" (it sets OMP_WAIT_POLICY=PASSIVE unless the environment sets it); the
target is that it is never slower than 1 thread, quiet or not.
"""

from __future__ import annotations

import json
import os
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
from mnistlab.models.torch.lenet import LeNet
threads = int(sys.argv[1])
if threads:
    torch.set_num_threads(threads)
net = LeNet()._build_network(10)
opt = torch.optim.Adam(net.parameters(), 1e-3)
x = torch.from_numpy(np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32))
y = torch.randint(0, 10, (64,))
times = []
for i in range(80):
    start = time.perf_counter()
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    if i >= 20:
        times.append(time.perf_counter() - start)
print(json.dumps({"ms": statistics.median(times) * 1000, "threads": torch.get_num_threads(),
                  "wait_policy": os.environ.get("OMP_WAIT_POLICY")}))
"""

SETTINGS = [  # (label, threads (0: PyTorch's default), environment changes)
    ("1 thread", 1, {"OMP_WAIT_POLICY": None}),
    ("all cores, OpenMP's default wait policy", 0, {"OMP_WAIT_POLICY": "ACTIVE"}),
    ("all cores, OMP_WAIT_POLICY=PASSIVE", 0, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ("mnistlab's default", 0, {"OMP_WAIT_POLICY": None}),
]


def step_ms(threads: int, changes: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in changes or changes[k] is not None}
    env.update({k: v for k, v in changes.items() if v is not None})
    env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", STEP, str(threads)], capture_output=True, text=True, env=env,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    rows, results = [], {}
    for busy in (False, True):
        neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            for label, threads, changes in SETTINGS:
                results[label, busy] = step_ms(threads, changes)
        finally:
            if neighbour:
                neighbour.kill()
    one = {busy: results["1 thread", busy]["ms"] for busy in (False, True)}
    for label, _, _ in SETTINGS:
        quiet, busy = results[label, False], results[label, True]
        rows.append([label, f"{quiet['threads']} / {busy['threads']}", quiet["wait_policy"] or "unset", f"{quiet['ms']:.0f}",
                     f"{busy['ms']:.0f}", f"{one[False] / quiet['ms']:.2f}×", f"{one[True] / busy['ms']:.2f}×"])
    ours = results["mnistlab's default", False]["ms"], results["mnistlab's default", True]["ms"]
    met = ours[0] <= one[False] * 1.05 and ours[1] <= one[True] * 1.05
    body = ("LeNet (the tutorial's CNN) training step, batch 64, float32, median of 60 steps after 20 warm-up "
            f"steps, each setting in a fresh process; {os.cpu_count()} cores. \"Busy\": one other process "
            "spinning on a core. Target: mnistlab's default never slower than 1 thread (5 % tolerance): "
            f"{'met' if met else 'NOT met'}.\n\n"
            + common.markdown_table(["setting", "threads (quiet / busy)", "OMP_WAIT_POLICY", "quiet ms", "busy ms",
                                     "speed vs 1 thread, quiet", "busy"], rows))
    common.write_section("bench_threads", "Thread settings on a shared machine", body)
    print(body)


if __name__ == "__main__":
    main()
