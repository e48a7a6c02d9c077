//go:build !telemetry_ffi_debug

package telemetry

// The static library, by full path: with -L/-l the linker would prefer the shared
// libtelemetry_ffi.so that cargo builds beside it, and Go programs would then need it at
// run time. Build it with `cargo build --release -p telemetry-ffi` (`make bench` does).

// #cgo CFLAGS: -I${SRCDIR}/../../../include
// #cgo LDFLAGS: ${SRCDIR}/../../../target/release/libtelemetry_ffi.a -ldl -lm -lpthread
import "C"
