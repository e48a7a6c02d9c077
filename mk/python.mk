# The Python package (crates/telemetry-py + python/telemetry_core), built by maturin into
# a project venv at .venv with the shared CARGO_TARGET_DIR, so the core is compiled once
# for Rust and Python alike.
.PHONY: deps-python python-develop python-release test-python test-python-abi3 bench-python \
	python-wheel-dev test-python-wheel test-python-sdist wheel

DEPS_TARGETS += deps-python
TEST_TARGETS += test-python test-python-abi3 test-python-wheel test-python-sdist
BENCH_TARGETS += bench-python

PYTHON ?= python3
VENV := $(ROOT)/.venv
VPY := $(VENV)/bin/python
PY_REQUIREMENTS := tests/python/requirements.txt
# Re-install only when the requirements change: the stamp is named after their hash.
PY_STAMP := $(VENV)/.deps-$(shell sha256sum $(PY_REQUIREMENTS) 2>/dev/null | cut -c1-16)
MATURIN := VIRTUAL_ENV=$(VENV) $(VENV)/bin/maturin
# The builds the tests use carry gRPC export, which the trace tests exercise against the
# OTLP receiver; the release wheel (`make wheel`) ships without it unless
# WHEEL_FEATURES="--features grpc" (docs/ARCHITECTURE.md "Decisions").
PY_TEST_FEATURES := --features grpc
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
	$(MATURIN) develop -q $(PY_TEST_FEATURES)

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

# Built the way `pip install .` builds it (pip, PEP 517, maturin from PyPI), with the dev
# profile so it reuses this run's debug build; `make wheel` builds release. Once per make
# run, for the abi3 venvs and the fresh-venv tests alike.
python-wheel-dev: build deps-python
	rm -rf $(ABI3_DIR)/wheel
	MATURIN_PEP517_ARGS="--profile dev $(PY_TEST_FEATURES)" $(VPY) -m pip wheel -q --no-deps \
		-w $(ABI3_DIR)/wheel $(ROOT)

test-python-abi3: python-wheel-dev ## Python: the abi3 wheel under Python 3.9 and the newest found
	@if [ -z "$(strip $(ABI3_PYTHONS))" ]; then \
		echo "test-python-abi3: skipped, no Python 3.9 or 3.12+ under $(PYENV_ROOT)"; exit 0; fi
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

# The wheel as an end user gets it (tests/python/test_wheel.py): installed into fresh venvs,
# the `telemetry` console script and `python -m telemetry_core` against the Rust binary, the
# fixture integrator package's `acme-telemetry`, an install without its native module.
test-python-wheel: python-wheel-dev ## Python: the wheel in fresh venvs: its command against the Rust binary, an integrator's command, a broken install
	TELEMETRY_WHEEL=$$(ls $(ABI3_DIR)/wheel/*.whl) $(VPY) -m pytest -q -p no:cacheprovider \
		tests/python/test_wheel.py

# Release artifacts (not in `make test`: ~13 min here, a fat-LTO release build for zig's
# target triple, which shares no build with the host's): the abi3
# wheel, linked by zig against glibc 2.28 so it is manylinux_2_28 whatever this machine's
# glibc (2.36 here would make it manylinux_2_34), checked by auditwheel; the sdist, and a
# wheel built from it by pip as `pip install telemetry-core` from source would.
# Not target/wheels: maturin writes there by default, and other builds would mix in.
DIST_DIR := $(CARGO_TARGET_DIR)/python-dist
MANYLINUX ?= manylinux_2_28
wheel: deps-python ## Python release artifacts in target/python-dist: the abi3 manylinux_2_28 wheel (auditwheel show) and the sdist (built by pip)
	$(VPY) -m pip install -q 'ziglang>=0.13,<1'
	rm -rf $(DIST_DIR) && mkdir -p $(DIST_DIR)
	# The venv first on PATH: maturin runs zig as `python3 -m ziglang`.
	PATH="$(VENV)/bin:$$PATH" $(MATURIN) build -q --release --zig --compatibility $(MANYLINUX) $(WHEEL_FEATURES) \
		--sdist -o $(DIST_DIR)
	$(VENV)/bin/auditwheel show $(DIST_DIR)/*.whl | tee $(DIST_DIR)/auditwheel.txt
	# auditwheel wraps its lines; the tag it accepts must be manylinux_2_28 or older.
	@tag=$$(tr -s ' \n' ' ' < $(DIST_DIR)/auditwheel.txt | \
		grep -oE 'consistent with the following platform tag: "manylinux_2_[0-9]+' | \
		grep -oE '[0-9]+$$'); \
	if [ -n "$$tag" ] && [ "$$tag" -le 28 ]; then echo "wheel: auditwheel accepts manylinux_2_$$tag"; \
	else echo "wheel: auditwheel does not accept it as manylinux_2_28 or older"; exit 1; fi
	@ls -l $(DIST_DIR)/*.whl $(DIST_DIR)/*.tar.gz
	$(call sdist-test,$(DIST_DIR))

# The sdist as pip builds it (isolated, maturin from PyPI), installed into a fresh venv,
# imported and its command run (tests/python/test_sdist.py). In `make test` (~30 s): a
# file or a path dependency the sdist leaves out breaks `pip install` on every platform
# without a wheel, and nothing else would notice before a release. The dev profile and the
# shared target dir keep it to a debug build of our own crates.
sdist-test = TELEMETRY_SDIST=$$(ls $(1)/telemetry_core-*.tar.gz) $(VPY) -m pytest -q \
	-p no:cacheprovider tests/python/test_sdist.py
test-python-sdist: deps-python ## Python: a fresh sdist builds with pip install into a fresh venv and works
	rm -rf $(ABI3_DIR)/sdist
	$(MATURIN) sdist -o $(ABI3_DIR)/sdist >/dev/null
	$(call sdist-test,$(ABI3_DIR)/sdist)

bench-python: python-release ## Python: ours beside posthog-python, prometheus_client, opentelemetry-sdk and pure-Python floors
	# A release collector: on 2 cores, a debug one would take CPU from the code measured.
	$(CARGO) build -q --release -p telemetry-collector -p otlp-receiver
	$(VPY) tests/python/bench_python.py --collector $(CARGO_TARGET_DIR)/release/telemetry-collector \
		--otlp-receiver $(CARGO_TARGET_DIR)/release/otlp-receiver

# The demo's Python part (scripts/demo-parts/30-python.sh) runs in the venv.
demo: python-develop
