//go:build cgo

package telemetry

// builtWithCgo says whether this build has cgo; ffi_off.go's explanation of a client that
// is off tells "built without cgo" from "no library for this platform" by it.
const builtWithCgo = true
