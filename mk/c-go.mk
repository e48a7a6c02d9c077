# The C ABI (crates/telemetry-ffi, include/telemetry.h, tests/c) and the Go package over it
# (bindings/go). Tests link the static library from the workspace's debug build, so
# `make test` builds Rust once; benchmarks link the release build.
.PHONY: header deps-go test-c test-go bench-go go-module

DEPS_TARGETS += deps-go
TEST_TARGETS += test-c test-go
BENCH_TARGETS += bench-go

GO ?= go
CC ?= cc
GO_DIR := $(ROOT)/bindings/go
FFI_DEBUG_LIB := $(CARGO_TARGET_DIR)/debug/libtelemetry_ffi.a
FFI_RELEASE_LIB := $(CARGO_TARGET_DIR)/release/libtelemetry_ffi.a
C_TEST_DIR := $(CARGO_TARGET_DIR)/c-tests
C_TEST_FLAGS := -std=c11 -Wall -Wextra -Werror -g -I$(ROOT)/include
C_TEST_LIBS := -lpthread -ldl -lm
# -count=1: go caches test results without knowing the Rust library under them changed.
GO_TEST := $(GO) test -count=1 -tags telemetry_ffi_debug
GO_COLLECTOR := TELEMETRY_COLLECTOR_BIN=$(CARGO_TARGET_DIR)/debug/telemetry-collector TELEMETRY_CLI_BIN=$(CARGO_TARGET_DIR)/debug/telemetry \
	OTLP_RECEIVER_BIN=$(CARGO_TARGET_DIR)/debug/otlp-receiver
# The tests that build whole programs (the READMEs' Go blocks, a module outside the
# repository, the crashing example as a child process): they prove nothing more under
# GOGC=1, where they would only run slower.
GO_PROGRAM_TESTS := ^Test(Readme|Module|PrebuiltModule|CrashingProgram)
# The Go package links the library by a path relative to its own directory, in this
# checkout's target/ (bindings/go/telemetry/link_*.go). A cargo target dir elsewhere would
# leave it nothing to link, or a stale library.
GO_LINKED_TARGET := $(ROOT)/target
define check-go-target
	@here="$$(cd "$(CARGO_TARGET_DIR)" 2>/dev/null && pwd -P)"; \
	linked="$$(cd "$(GO_LINKED_TARGET)" 2>/dev/null && pwd -P)"; \
	[ -n "$$here" ] && [ "$$here" = "$$linked" ] || { \
		echo "CARGO_TARGET_DIR=$(CARGO_TARGET_DIR), but the Go package links $(GO_LINKED_TARGET)/{debug,release}/libtelemetry_ffi.a:"; \
		echo "unset CARGO_TARGET_DIR or point it at $(GO_LINKED_TARGET) (bindings/go/README.md)"; exit 1; }
endef

# `make go-module`: the module an integrator `go get`s, with telemetry-core prebuilt for this
# platform under telemetry/lib/<goos>_<goarch>/ (scripts/go-module.sh; bindings/go/README.md,
# "Releasing the Go module"), in a directory outside the source tree. release (the default)
# builds the static library on its own, `cargo rustc --crate-type staticlib`, so fat LTO
# applies to it (with the rlib and cdylib beside it, it is not); that takes minutes here.
# dev reuses the workspace's debug build (make test-go). GO_MODULE_EXTRA_LIBS adds
# platforms built elsewhere: "darwin_arm64=/path/libtelemetry_ffi.a ...".
GO_MODULE_PROFILE ?= release
GO_MODULE_DIR ?= $(CARGO_TARGET_DIR)/go-module/$(GO_MODULE_PROFILE)
GO_MODULE_EXTRA_LIBS ?=
# The library's default features (no gRPC export, docs/ARCHITECTURE.md "Decisions");
# GO_MODULE_FEATURES="--features grpc" ships it with gRPC.
GO_MODULE_FEATURES ?=
GO_MODULE_DEV_DIR := $(CARGO_TARGET_DIR)/go-module/dev
go_module_lib = $(CARGO_TARGET_DIR)/$(if $(filter dev,$(1)),debug,release)/libtelemetry_ffi.a

go-module: deps-go ## The Go module with telemetry-core prebuilt (LTO staticlib), in target/go-module/<profile>, outside the sources (GO_MODULE_PROFILE=dev: the debug build)
	@case "$(GO_MODULE_PROFILE)" in release|dev) ;; *) echo "GO_MODULE_PROFILE=$(GO_MODULE_PROFILE): release or dev"; exit 1;; esac
	if [ "$(GO_MODULE_PROFILE)" = release ]; then \
		$(CARGO) rustc --release -p telemetry-ffi $(GO_MODULE_FEATURES) --crate-type staticlib; \
	else test -f $(FFI_DEBUG_LIB) || $(CARGO) build --workspace --all-targets; fi
	bash scripts/go-module.sh $(GO_MODULE_DIR) $(GO_MODULE_PROFILE) \
		"$$($(GO) env GOOS)_$$($(GO) env GOARCH)=$(call go_module_lib,$(GO_MODULE_PROFILE))" $(GO_MODULE_EXTRA_LIBS)

header: deps-rust ## Regenerate include/telemetry.h from crates/telemetry-ffi with cbindgen
	TELEMETRY_WRITE_HEADER=1 $(CARGO) test -q -p telemetry-ffi --test header

deps-go:
	@command -v $(GO) >/dev/null || { echo "go not found: install Go >= 1.24"; exit 1; }
	@command -v $(CC) >/dev/null || { echo "$(CC) not found: install a C compiler (cgo and tests/c need one)"; exit 1; }
	# tidy -diff, beside checking go.mod and go.sum are tidy, fetches what `go mod tidy` reads
	# (the tests of the package's dependencies): the tests run it in their own modules with
	# GOPROXY=off, seeded with this go.sum, so everything must be in the module cache first.
	cd $(GO_DIR) && $(GO) mod download && $(GO) mod tidy -diff
	cd $(GO_DIR)/bench && $(GO) mod download

test-c: build ## C ABI from C: every function and bad input, 8 threads; plain, under AddressSanitizer and under valgrind memcheck
	@test -f $(FFI_DEBUG_LIB) || { echo "$(FFI_DEBUG_LIB) missing: the workspace build should make it"; exit 1; }
	mkdir -p $(C_TEST_DIR)
	$(CC) $(C_TEST_FLAGS) tests/c/test_telemetry.c $(FFI_DEBUG_LIB) $(C_TEST_LIBS) -o $(C_TEST_DIR)/test_telemetry
	$(C_TEST_DIR)/test_telemetry
	$(CC) $(C_TEST_FLAGS) -fsanitize=address -fno-omit-frame-pointer tests/c/test_telemetry.c \
		$(FFI_DEBUG_LIB) $(C_TEST_LIBS) -o $(C_TEST_DIR)/test_telemetry_asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 $(C_TEST_DIR)/test_telemetry_asan
	# valgrind's memcheck as well: it sees what ASan does not instrument (the Rust side's
	# uninitialised reads, frees through the other allocator). About 40 times slower, so
	# the suite's deadlines are stretched (TELEMETRY_TEST_SLOWDOWN); a definite or indirect
	# leak, or any memory error, fails it.
	TELEMETRY_TEST_SLOWDOWN=20 valgrind --tool=memcheck -q --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
		$(C_TEST_DIR)/test_telemetry

test-go: build deps-go ## Go: gofmt, vet, tests with -race (README programs, a crashing child process too), a GOGC=1 cgocheck run, static linking
	$(check-go-target)
	@test -f $(FFI_DEBUG_LIB) || { echo "$(FFI_DEBUG_LIB) missing: the workspace build should make it"; exit 1; }
	@unformatted="$$(cd $(GO_DIR) && gofmt -l .)"; [ -z "$$unformatted" ] || { echo "gofmt needed: $$unformatted"; exit 1; }
	cd $(GO_DIR) && $(GO) vet -tags telemetry_ffi_debug ./...
	cd $(GO_DIR)/bench && $(GO) vet ./...
	# The build without cgo: every client off, saying why (telemetry/off_test.go).
	cd $(GO_DIR) && CGO_ENABLED=0 $(GO) vet ./...
	cd $(GO_DIR) && CGO_ENABLED=0 $(GO) test -count=1 ./telemetry
	# The released module's shape, from the debug build (a release build takes minutes):
	# prebuilt_module_test.go builds a program against it with no cargo on PATH.
	bash scripts/go-module.sh $(GO_MODULE_DEV_DIR) dev "$$($(GO) env GOOS)_$$($(GO) env GOARCH)=$(FFI_DEBUG_LIB)"
	cd $(GO_DIR) && $(GO_COLLECTOR) TELEMETRY_GO_MODULE=$(GO_MODULE_DEV_DIR) $(GO_TEST) -race ./...
	cd $(GO_DIR) && $(GO_COLLECTOR) GOGC=1 GODEBUG=cgocheck=1 $(GO_TEST) -skip '$(GO_PROGRAM_TESTS)' ./...
	mkdir -p $(CARGO_TARGET_DIR)/go
	rm -f $(CARGO_TARGET_DIR)/go/chromalike
	cd $(GO_DIR) && $(GO) build -tags telemetry_ffi_debug -o $(CARGO_TARGET_DIR)/go/chromalike ./examples/chromalike
	rm -f $(CARGO_TARGET_DIR)/go/usagelike
	cd $(GO_DIR) && $(GO) build -tags telemetry_ffi_debug -o $(CARGO_TARGET_DIR)/go/usagelike ./examples/usagelike
	rm -f $(CARGO_TARGET_DIR)/go/crashlike
	cd $(GO_DIR) && $(GO) build -tags telemetry_ffi_debug -o $(CARGO_TARGET_DIR)/go/crashlike ./examples/crashlike
	@for example in chromalike usagelike crashlike; do \
		if ldd $(CARGO_TARGET_DIR)/go/$$example | grep -q telemetry; then \
			echo "the Go example $$example needs a telemetry shared library at run time"; exit 1; fi; done
	@echo "test-go: the examples link telemetry-core statically (ldd lists no telemetry library)"
	# usagelike drives requests at itself on loopback and prints its own /metrics; the debug
	# sink prints the report it would send to stderr and sends nothing.
	mkdir -p $(CARGO_TARGET_DIR)/go/usagelike-home
	env -i PATH="$$PATH" HOME=$(CARGO_TARGET_DIR)/go/usagelike-home \
		$(CARGO_TARGET_DIR)/go/usagelike -listen 127.0.0.1:0 -requests 40 \
		2>$(CARGO_TARGET_DIR)/go/usagelike.log >$(CARGO_TARGET_DIR)/go/usagelike.out
	@grep -qF 'usagelike_rest_responses_seconds_count{route="PUT /collections/{name}/points",status="200"} 10' $(CARGO_TARGET_DIR)/go/usagelike.out && \
		grep -qF 'usagelike_search_failures_total 5' $(CARGO_TARGET_DIR)/go/usagelike.out && \
		grep -qF '"event": "usage_report"' $(CARGO_TARGET_DIR)/go/usagelike.log || \
		{ echo "usagelike did not time its requests or report them:"; cat $(CARGO_TARGET_DIR)/go/usagelike.out $(CARGO_TARGET_DIR)/go/usagelike.log; exit 1; }
	@echo "test-go: usagelike timed its own requests and served them at /metrics"

bench-go: deps-go ## Go Capture off beside an empty function, on (sustained and drop path) beside posthog-go; Timing beside client_golang's Histogram
	# The library as it ships (make go-module builds the same): the staticlib on its own, LTO.
	$(CARGO) rustc --release -p telemetry-ffi --crate-type staticlib
	$(check-go-target)
	cd $(GO_DIR)/bench && $(GO) test -count=1 -run '^$$' -bench . -benchtime=2s -benchmem | tee bench.out
	# One call into the library per recording, for comparison (needs the package's internals).
	cd $(GO_DIR) && $(GO) test -count=1 -run '^$$' -bench '^BenchmarkUsage' -benchtime=2s -benchmem ./telemetry | tee -a bench/bench.out
	cd $(GO_DIR)/bench && $(GO) run ./cmd/benchtable < bench.out
