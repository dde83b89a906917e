# Two commands do everything: `make demo` (set up + main job) and `make test`.
# Both are idempotent: the virtual environment is rebuilt only when
# pyproject.toml changes, and the data step is a no-op once data is found.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= mnistlab-out
TEST_WORKERS ?= 2  # pytest-xdist processes: the 2-core machines CI runs on

.PHONY: setup data demo test bench fuzz clean

setup: $(STAMP)

# torch first, pinned: the pin takes the CPU wheel on this machine's disk,
# where an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[torch,web,onnx,test]'
	touch $(STAMP)

data: $(STAMP)
	@sh scripts/ensure-data.sh $(BIN)/python

# The main job: logistic regression on Fashion-MNIST, a run folder with report.html.
demo: data
	$(BIN)/mnistlab data show --out $(OUT)
	$(BIN)/mnistlab train logreg --name demo --overwrite --out $(OUT)

test: data
	@sh scripts/ensure-browser.sh
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# Every benchmark with this CPU's kernels, then the two timed against a plain (AVX2-only) machine again.
bench: data
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done
	$(BIN)/python benchmarks/bench_cnn.py --isa avx2
	$(BIN)/python benchmarks/bench_logreg.py --isa avx2

# The test suite's fuzzers at length (20000 inputs each), and the bombs' peak memory, into BENCHMARKS.md.
fuzz: data
	$(BIN)/python benchmarks/bench_fuzz.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
