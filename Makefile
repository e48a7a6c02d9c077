# telemetry-core — run `make help` for the targets.
# One cargo target dir for every crate and language, so `make test` builds the workspace once.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo
DEMO_DIR := $(CURDIR)/.demo

.DEFAULT_GOAL := help
.PHONY: help deps build demo test test-rust lint bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

deps: ## Check the toolchains every target needs (installs nothing by hand)
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }
	@$(CARGO) fmt --version >/dev/null || { echo "rustfmt missing: rustup component add rustfmt"; exit 1; }
	@$(CARGO) clippy --version >/dev/null || { echo "clippy missing: rustup component add clippy"; exit 1; }

build: deps ## Build the whole workspace (debug), once
	$(CARGO) build --workspace --all-targets

demo: build ## The main job: decisions explained, then real delivery to the local collector
	$(CARGO) run -q -p telemetry-core --example explain

lint: deps ## cargo fmt --check and clippy -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust: build ## Rust tests (unit, vectors, end to end)
	$(CARGO) test --workspace

test: lint test-rust ## Every test of every language
	@echo "make test: all suites passed"

bench: deps ## Benchmarks, each figure beside its floor measured in the same run
	$(CARGO) bench -p telemetry-core --bench capture

clean: ## Remove build outputs
	rm -rf $(CARGO_TARGET_DIR) $(DEMO_DIR)
