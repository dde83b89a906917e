"""PyTorch models: the shared training loop, the tutorial's LeNet and our CNN.

Thread settings. PyTorch's OpenMP threads spin while they wait for work, so
beside any other busy process two threads on two cores fight it and a step
gets several times slower than with one thread (a LeNet step on a 2-core VM:
61 ms quiet, 790 ms beside one busy process; 1 thread: 90 and 189 ms). With
``OMP_WAIT_POLICY=PASSIVE`` waiting threads sleep instead, which keeps the
second core's speed-up when it is free and loses little when it is not
(benchmarks/bench_threads.py measures it). OpenMP reads the setting once, when
PyTorch first starts its threads, so it is set here, before any of our modules
imports PyTorch, unless the environment already chose one.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
