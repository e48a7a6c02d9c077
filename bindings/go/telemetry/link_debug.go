//go:build telemetry_ffi_debug

package telemetry

// With -tags telemetry_ffi_debug the package links the debug build that `make build`
// already made, so `make test` does not build the Rust workspace twice. Static for the
// same reason as link_release.go.

// #cgo CFLAGS: -I${SRCDIR}/../../../include
// #cgo LDFLAGS: ${SRCDIR}/../../../target/debug/libtelemetry_ffi.a -ldl -lm -lpthread
import "C"
