"""PyTorch models: the shared training loop, the tutorial's LeNet and our CNN.

Thread settings. PyTorch's OpenMP threads wait for work at the end of every
operation. Spinning while they wait, two threads on two cores fight another
busy process, and train slower than one thread (bench_threads, LeNet on the
2-core AVX2 EPYC: 0.72× one thread's speed). Sleeping at once
(``OMP_WAIT_POLICY=PASSIVE``) is safe beside a busy process but cost the fast
CNN preset's fit a sixth of its speed on a quiet 2-core Xeon held to AVX2
(73–76 s instead of 62; docs/design/cnn.md). So waiting threads spin briefly, then sleep: on Linux,
where PyTorch's wheels use GNU OpenMP, ``GOMP_SPINCOUNT=10000`` (about half a
millisecond), which trained as fast as spinning (benchmarks/bench_threads.py
measures the rest); elsewhere ``OMP_WAIT_POLICY=PASSIVE``. And a fit trains,
and a prediction runs, on the cores no other process is busy on when it starts
(``device.available_threads``), so that a busy neighbour meets one thread.

OpenMP reads these once, when PyTorch loads, so they are set here, before any of
our modules imports PyTorch, unless the environment already chose a wait
policy. A program that imports PyTorch before mnistlab keeps OpenMP's own
settings.
"""

import os
import sys

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    if sys.platform == "linux":
        os.environ["GOMP_SPINCOUNT"] = "10000"
    else:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
