# telemetry-core — run `make help` for the targets.
# One cargo target dir for every crate and language, so `make test` builds the workspace once.
# Each language adds its own deps/test/bench/demo steps in mk/<language>.mk.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo
ROOT := $(CURDIR)

# Filled by mk/*.mk: what `make deps`, `make test` and `make bench` run beyond Rust.
DEPS_TARGETS := deps-rust deps-system
TEST_TARGETS := test-rust
BENCH_TARGETS := bench-core

.DEFAULT_GOAL := help
.PHONY: help deps deps-rust deps-system build demo test test-rust lint bench bench-core clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

include $(sort $(wildcard mk/*.mk))

deps: $(DEPS_TARGETS) ## Install/check everything the targets need (idempotent)

deps-rust:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }
	@$(CARGO) fmt --version >/dev/null || { echo "rustfmt missing: rustup component add rustfmt"; exit 1; }
	@$(CARGO) clippy --version >/dev/null || { echo "clippy missing: rustup component add clippy"; exit 1; }

# Debian packages the tests run for real: Prometheus and promtool (they scrape and check
# /metrics), PostgreSQL (the collector's PostgreSQL store; the tests start their own server
# from /usr/lib/postgresql/*/bin), Chromium (the dashboard tests drive /usr/bin/chromium
# headless), valgrind (the C suite under memcheck). Installed when missing and this is
# root on Debian; otherwise say how.
deps-system:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null || \
		! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v openssl >/dev/null || \
		! test -x /usr/bin/chromium || ! command -v valgrind >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			DEBIAN_FRONTEND=noninteractive apt-get update && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus postgresql openssl chromium valgrind; \
		else echo "prometheus, promtool, PostgreSQL, openssl, Chromium and valgrind are needed: install Debian's prometheus, postgresql, openssl, chromium and valgrind packages"; exit 1; fi; \
	fi

build: deps-rust ## Build the whole Rust workspace (debug), once
	$(CARGO) build --workspace --all-targets

demo: build ## The main job, local only: decisions explained, events delivered to the local collector
	bash scripts/demo.sh

lint: deps-rust ## cargo fmt --check and clippy -D warnings
	$(CARGO) fmt --all -- --check
	# The fuzz crate is not a workspace member (it resolves its own dependencies).
	rustfmt --edition 2021 --check fuzz/fuzz_targets/*.rs
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust: build ## Rust tests: unit, shared vectors, end to end, doc tests (README examples included)
	$(CARGO) test --workspace
	# The repository README's Rust example names PostHog's real host: it runs with the
	# debug sink (TELEMETRY_DEBUG=1, nothing sent) and only here (--cfg telemetry_readme).
	RUSTDOCFLAGS="--cfg telemetry_readme" TELEMETRY_DEBUG=1 \
		$(CARGO) test -p telemetry-core --doc repository_readme 2>&1 | tee $(CARGO_TARGET_DIR)/readme-doctest.log
	@grep -q "test result: ok. [1-9]" $(CARGO_TARGET_DIR)/readme-doctest.log || \
		{ echo "the repository README's Rust example did not run as a doc test"; exit 1; }

test: deps lint $(TEST_TARGETS) ## Every test of every language
	@echo "make test: every suite passed ($(TEST_TARGETS))"

bench: deps $(BENCH_TARGETS) ## Benchmarks, each figure beside its floor measured in the same run

bench-core:
	$(CARGO) build --release -p telemetry-core --examples
	$(CARGO) bench -p telemetry-core --bench capture --bench delivery --bench usage --bench crash --bench otel

clean: ## Remove build outputs
	rm -rf $(CARGO_TARGET_DIR) .demo .venv
