# The Python package (crates/telemetry-py + python/telemetry_core), built by maturin into
# a project venv at .venv with the shared CARGO_TARGET_DIR, so the core is compiled once
# for Rust and Python alike.
.PHONY: deps-python python-develop python-release test-python bench-python

DEPS_TARGETS += deps-python
TEST_TARGETS += test-python
BENCH_TARGETS += bench-python

PYTHON ?= python3
VENV := $(ROOT)/.venv
VPY := $(VENV)/bin/python
PY_REQUIREMENTS := tests/python/requirements.txt
# Re-install only when the requirements change: the stamp is named after their hash.
PY_STAMP := $(VENV)/.deps-$(shell sha256sum $(PY_REQUIREMENTS) 2>/dev/null | cut -c1-16)
MATURIN := VIRTUAL_ENV=$(VENV) $(VENV)/bin/maturin
# The end-to-end tests start the real collector from here (and fail if it is missing).
export TELEMETRY_COLLECTOR_BIN ?= $(CARGO_TARGET_DIR)/debug/telemetry-collector
export TELEMETRY_CLI_BIN ?= $(CARGO_TARGET_DIR)/debug/telemetry

deps-python: $(PY_STAMP) ## Python venv (.venv) with maturin, pytest, mypy, ruff, chromadb, posthog

$(PY_STAMP): $(PY_REQUIREMENTS)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python >= 3.9"; exit 1; }
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r $(PY_REQUIREMENTS)
	rm -f $(VENV)/.deps-* && touch $@

python-develop: deps-python ## Build the extension (debug) and install the package into .venv, editable
	$(MATURIN) develop -q

python-release: deps-python
	$(MATURIN) develop -q --release

test-python: build python-develop ## Python: mypy --strict, stubtest, ruff, pytest (vectors, collector, chromadb, fork)
	$(VENV)/bin/mypy
	$(VPY) -m mypy.stubtest telemetry_core._native
	$(VENV)/bin/ruff check python tests/python
	$(VENV)/bin/ruff format --check python tests/python
	$(VPY) -m pytest -q tests/python

bench-python: python-release ## Python: ours beside posthog-python and a pure-Python floor
	# A release collector: on 2 cores, a debug one would take CPU from the code measured.
	$(CARGO) build -q --release -p telemetry-collector
	$(VPY) tests/python/bench_python.py --collector $(CARGO_TARGET_DIR)/release/telemetry-collector

# The demo's Python part (scripts/demo-parts/30-python.sh) runs in the venv.
demo: python-develop
