# make soak (tests/soak): SOAK_SECONDS (default 600) of Rust, Go and Python clients
# capturing, forking and flushing against a collector killed (SIGKILL) and restarted every
# 30 s behind a flapping proxy (429, 500, hangs), every client's RSS, descriptors and
# threads sampled each second. Not part of `make test`; CI runs the short mode,
# `make soak SOAK_SECONDS=60`. Everything runs from the workspace's debug build: the Rust
# client and the proxy are workspace binaries (tests/soak), the Go client links
# target/debug/libtelemetry_ffi.a, the Python client runs on .venv's extension.
.PHONY: soak

SOAK_SECONDS ?= 600
SOAK_DIR := $(ROOT)/tests/soak
SOAK_GO_CLIENT := $(CARGO_TARGET_DIR)/soak/soak-go-client

soak: build deps-go python-develop ## Soak: SOAK_SECONDS (600) of mixed load, collector killed every 30 s, flapping endpoint; RSS, fds, threads and counts checked
	$(check-go-target)
	@unformatted="$$(cd $(SOAK_DIR)/go && gofmt -l .)"; [ -z "$$unformatted" ] || { echo "gofmt needed: $$unformatted"; exit 1; }
	cd $(SOAK_DIR)/go && $(GO) vet -tags telemetry_ffi_debug .
	$(VENV)/bin/ruff check $(SOAK_DIR)
	$(VENV)/bin/ruff format --check $(SOAK_DIR)
	mkdir -p $(dir $(SOAK_GO_CLIENT))
	cd $(SOAK_DIR)/go && $(GO) build -tags telemetry_ffi_debug -o $(SOAK_GO_CLIENT) .
	SOAK_SECONDS=$(SOAK_SECONDS) $(VPY) $(SOAK_DIR)/soak.py
