//go:build !telemetry_ffi_debug

package telemetry

// The static library, by full path: with -L/-l the linker would prefer the shared
// libtelemetry_ffi.so that cargo builds beside it, and Go programs would then need it at
// run time. Build it with `cargo build --release -p telemetry-ffi`, or on its own with fat
// LTO as it ships, `cargo rustc --release -p telemetry-ffi --crate-type staticlib` (`make
// bench-go` does). A released module links its own copy instead (link_prebuilt.go).

// #cgo CFLAGS: -I${SRCDIR}/../../../include
// #cgo LDFLAGS: ${SRCDIR}/../../../target/release/libtelemetry_ffi.a -ldl -lm -lpthread
import "C"
