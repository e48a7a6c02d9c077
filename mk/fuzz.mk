# Coverage-guided fuzzing (fuzz/, cargo-fuzz on nightly). Not part of `make test`: each
# target runs for FUZZ_SECONDS and prints its executions and coverage (libFuzzer's DONE
# line). The corpus grows outside the source tree; seeds and regressions are committed.
.PHONY: fuzz deps-fuzz

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := collector_body scrub_text ffi_text consent_inputs hash_and_round
FUZZ_CORPUS := $(CARGO_TARGET_DIR)/fuzz-corpus

deps-fuzz:
	@rustup toolchain list | grep -q '^nightly' || { echo "nightly Rust is needed: rustup toolchain install nightly"; exit 1; }
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

fuzz: deps-fuzz ## Fuzz every target (cargo-fuzz, then Go's) for FUZZ_SECONDS each (regressions first), print executions and coverage
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_CORPUS)/$$t; \
		if [ -d fuzz/regressions/$$t ]; then \
			(cd fuzz && CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/fuzz cargo +nightly fuzz run $$t regressions/$$t -- -runs=0) \
				|| { echo "fuzz: a regression input of $$t fails"; exit 1; }; \
		fi; \
		(cd fuzz && CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/fuzz cargo +nightly fuzz run $$t $(FUZZ_CORPUS)/$$t seeds/$$t \
			-- -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_CORPUS)/$$t-) 2>&1 | tee $(FUZZ_CORPUS)/$$t.log | grep -E 'DONE|Done|panicked|SUMMARY'; \
		grep -q '^Done' $(FUZZ_CORPUS)/$$t.log || { echo "fuzz: $$t failed (see $(FUZZ_CORPUS)/$$t.log)"; exit 1; }; \
	done
	@# Go's own fuzzer over the JSON Capture hands to C (bindings/go/telemetry/fuzz_test.go),
	@# on the workspace's debug library; its corpus stays in Go's cache.
	@test -f $(FFI_DEBUG_LIB) || $(CARGO) build -q -p telemetry-ffi
	cd $(GO_DIR) && $(GO) test -count=1 -tags telemetry_ffi_debug -run '^$$' \
		-fuzz FuzzEventJSONCrossesToC -fuzztime $(FUZZ_SECONDS)s ./telemetry
