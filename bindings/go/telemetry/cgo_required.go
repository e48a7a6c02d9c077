//go:build !cgo

package telemetry

// The package is the Rust core reached through cgo, so a build without cgo
// (CGO_ENABLED=0, or cross-compiling without a C compiler) has nothing to call. This file
// is compiled only then, and the type below is the build's first error (the compiler
// reports type declarations first and this file sorts first), so the build says what to
// do instead of leaving "undefined: handle" to explain it.
type _ telemetry_needs_cgo__set_CGO_ENABLED_1_and_install_a_C_compiler
