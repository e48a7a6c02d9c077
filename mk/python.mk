# The Python package (crates/telemetry-py + python/telemetry_core), built by maturin into
# a project venv at .venv with the shared CARGO_TARGET_DIR, so the core is compiled once
# for Rust and Python alike.
.PHONY: deps-python python-develop python-release test-python test-python-abi3 bench-python

DEPS_TARGETS += deps-python
TEST_TARGETS += test-python test-python-abi3
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
# The trace tests export to the OTLP receiver (crates/otlp-receiver), built by `make build`.
export OTLP_RECEIVER_BIN ?= $(CARGO_TARGET_DIR)/debug/otlp-receiver

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

# The abi3 wheel, built by pip from the source tree, on other Pythons than the venv's: the
# oldest supported (3.9 takes the METH_VARARGS capture path and the pre-3.10 str access)
# and the newest this machine has. pyenv's, as this kind of machine carries them; with
# none, the check says it was skipped. Their venvs get pytest and prometheus_client (whose
# parser reads /metrics) only: the web framework tests skip there.
PYENV_ROOT ?= $(HOME)/.pyenv
ABI3_PYTHONS ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.9*/bin/python)) \
	$(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/3.1[2-9]*/bin/python)))
ABI3_DIR := $(CARGO_TARGET_DIR)/python-abi3

test-python-abi3: build deps-python ## Python: the abi3 wheel under Python 3.9 and the newest found
	@if [ -z "$(strip $(ABI3_PYTHONS))" ]; then \
		echo "test-python-abi3: skipped, no Python 3.9 or 3.12+ under $(PYENV_ROOT)"; exit 0; fi
	rm -rf $(ABI3_DIR)/wheel
	# Built the way `pip install .` builds it (pip, PEP 517, maturin from PyPI), with the
	# dev profile so it reuses this run's debug build; `make bench` builds release.
	MATURIN_PEP517_ARGS="--profile dev" $(VPY) -m pip wheel -q --no-deps \
		-w $(ABI3_DIR)/wheel $(ROOT)
	set -e; for py in $(ABI3_PYTHONS); do \
		v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
		venv=$(ABI3_DIR)/venv-$$v; \
		test -x $$venv/bin/python || $$py -m venv $$venv; \
		$$venv/bin/python -m pip install -q $$(grep -E '^(pytest|prometheus_client|hypothesis)' $(PY_REQUIREMENTS)); \
		$$venv/bin/python -m pip install -q --force-reinstall --no-deps $(ABI3_DIR)/wheel/*.whl; \
		echo "test-python-abi3: Python $$v"; \
		(cd $(ABI3_DIR) && $$venv/bin/python -m pytest -q -p no:cacheprovider \
			--rootdir $(ABI3_DIR) $(ROOT)/tests/python \
			--ignore=$(ROOT)/tests/python/test_chroma.py); \
	done

bench-python: python-release ## Python: ours beside posthog-python, prometheus_client, opentelemetry-sdk and pure-Python floors
	# A release collector: on 2 cores, a debug one would take CPU from the code measured.
	$(CARGO) build -q --release -p telemetry-collector -p otlp-receiver
	$(VPY) tests/python/bench_python.py --collector $(CARGO_TARGET_DIR)/release/telemetry-collector \
		--otlp-receiver $(CARGO_TARGET_DIR)/release/otlp-receiver

# The demo's Python part (scripts/demo-parts/30-python.sh) runs in the venv.
demo: python-develop
