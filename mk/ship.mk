# What ships and what it weighs: the publishable crates (test-package, in `make test`) and
# the footprint of every artifact beside its reference (`make size`, release builds).
# The Go module is `make go-module` (mk/c-go.mk), the wheel `make wheel` (mk/python.mk).
.PHONY: test-package size

TEST_TARGETS += test-package
PACKAGE_TARGET_DIR := $(CARGO_TARGET_DIR)/package-verify

# cargo package builds each crate from its packaged sources, as crates.io would get them
# (the lock file goes with it); the docs must build without a warning, as docs.rs would.
test-package: build ## Rust: telemetry-core and telemetry-ffi package and verify as published; cargo doc without warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -q --no-deps -p telemetry-core -p telemetry-ffi
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -q --no-deps -p telemetry-core -p telemetry-ffi --features telemetry-ffi/grpc
	# A target dir of its own: verifying builds telemetry-ffi without gRPC, and a staticlib's
	# file name carries no hash, so in the shared one it would replace the workspace build's
	# target/debug/libtelemetry_ffi.a (which the Go and C tests link) and cargo, seeing its
	# own unit fresh, would never put it back.
	CARGO_TARGET_DIR=$(PACKAGE_TARGET_DIR) $(CARGO) package -q --allow-dirty -p telemetry-core -p telemetry-ffi
	@ls -l $(PACKAGE_TARGET_DIR)/package/telemetry-core-*.crate $(PACKAGE_TARGET_DIR)/package/telemetry-ffi-*.crate

size: deps-rust deps-go deps-python ## Footprint: the C library, the wheel, a Go program's growth, each beside its reference and target (release builds)
	CARGO=$(CARGO) GO=$(GO) bash scripts/size.sh $(CARGO_TARGET_DIR) $(ROOT)
