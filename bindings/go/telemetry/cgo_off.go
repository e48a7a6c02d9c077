//go:build !cgo

package telemetry

// builtWithCgo: see cgo_on.go.
const builtWithCgo = false
