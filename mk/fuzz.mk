# Coverage-guided fuzzing (fuzz/, cargo-fuzz on nightly). Not part of `make test`: each
# target runs for FUZZ_SECONDS and prints its executions and coverage (libFuzzer's DONE
# line). The corpus grows outside the source tree; seeds and regressions are committed.
.PHONY: fuzz fuzz-smoke deps-fuzz test-sanitizers

FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 12
FUZZ_TARGETS := collector_body collector_routing scrub_text ffi_text consent_inputs hash_and_round \
	otel_config usage_query
FUZZ_CORPUS := $(CARGO_TARGET_DIR)/fuzz-corpus

deps-fuzz:
	@rustup toolchain list | grep -q '^nightly' || { echo "nightly Rust is needed: rustup toolchain install nightly"; exit 1; }
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

fuzz: deps-fuzz ## Fuzz every target (cargo-fuzz, then Go's) for FUZZ_SECONDS each (regressions first), print executions and coverage
	@# Every target built in one cargo run (then each `fuzz run` finds it up to date).
	cd fuzz && CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/fuzz cargo +nightly fuzz build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_CORPUS)/$$t; \
		if [ -d fuzz/regressions/$$t ]; then \
			(cd fuzz && CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/fuzz cargo +nightly fuzz run $$t regressions/$$t -- -runs=0) \
				|| { echo "fuzz: a regression input of $$t fails"; exit 1; }; \
		fi; \
		(cd fuzz && CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/fuzz cargo +nightly fuzz run $$t $(FUZZ_CORPUS)/$$t seeds/$$t \
			-- -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_CORPUS)/$$t-) 2>&1 | tee $(FUZZ_CORPUS)/$$t.log | grep -E 'DONE|panicked|SUMMARY' | sed "s/^/$$t: /"; \
		grep -q '^Done' $(FUZZ_CORPUS)/$$t.log || { echo "fuzz: $$t failed (see $(FUZZ_CORPUS)/$$t.log)"; exit 1; }; \
	done
	@# Go's own fuzzer over the JSON Capture hands to C (bindings/go/telemetry/fuzz_test.go),
	@# on the workspace's debug library; its corpus stays in Go's cache. Go minimizes each
	@# new interesting input for up to 60 s by default, counting none of those runs: a 20 s
	@# run made 4.4k executions and then stood still; with 1 s it makes ~30k.
	@test -f $(FFI_DEBUG_LIB) || $(CARGO) build -q --workspace --all-targets
	cd $(GO_DIR) && $(GO) test -count=1 -tags telemetry_ffi_debug -run '^$$' \
		-fuzz FuzzEventJSONCrossesToC -fuzztime $(FUZZ_SECONDS)s -fuzzminimizetime 1s ./telemetry

# The CI smoke: the same, FUZZ_SMOKE_SECONDS (12) per target, on top of the seeds and the
# regressions; a crash or a failing regression fails it. From a warm target/fuzz (what CI
# caches) about 2.5 minutes; a cold build of the fuzz crate adds ~10 minutes on 2 cores.
fuzz-smoke: ## CI smoke: every fuzz target (cargo-fuzz, then Go's) for FUZZ_SMOKE_SECONDS (12) each
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

# Memory checks beyond test-c's (which runs the C suite plain, under ASan and valgrind):
# LeakSanitizer on telemetry-ffi's own tests (nightly, a target dir of its own so the shared
# stable build is untouched; no suppressions needed), and the Go package's tests built with
# -asan (the cgo side and Go's heap are instrumented; the Rust static library is not, but
# ASan's allocator still catches a bad or double free across the boundary). Not in `make
# test`: the nightly build costs ~4 minutes cold, and -asan as much again as the -race run.
SANITIZER_TARGET_DIR := $(CARGO_TARGET_DIR)/sanitizers
test-sanitizers: deps-fuzz ## LeakSanitizer on the Rust FFI tests (nightly) and the Go tests under -asan
	RUSTFLAGS="-Zsanitizer=leak" RUSTDOCFLAGS="-Zsanitizer=leak" CARGO_TARGET_DIR=$(SANITIZER_TARGET_DIR) \
		cargo +nightly test -p telemetry-ffi --target x86_64-unknown-linux-gnu
	$(check-go-target)
	# The workspace build, as `make build` makes it: a build of telemetry-ffi alone has no
	# gRPC, and its staticlib would replace the one the Go tests link (mk/ship.mk).
	$(CARGO) build -q --workspace --all-targets
	cd $(GO_DIR) && $(GO_COLLECTOR) $(GO_TEST) -asan -skip '$(GO_PROGRAM_TESTS)' ./telemetry
