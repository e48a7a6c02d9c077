// Package telemetry is the Go binding of telemetry-core: honest, opt-out, anonymous usage
// telemetry whose consent rules, anonymization, batching and delivery all live in one Rust
// core, reached through its C ABI (include/telemetry.h) and linked statically, so a Go
// binary needs no shared library at run time.
//
//	client, err := telemetry.New(
//		telemetry.WithProduct("myapp", "1.2.0"),
//		telemetry.WithProfile(telemetry.Chroma), // ANONYMIZED_TELEMETRY, .env, DO_NOT_TRACK
//		telemetry.WithEndpoint("https://eu.i.posthog.com"),
//		telemetry.WithAPIKey("phc_..."),
//	)
//	if err != nil {
//		return err
//	}
//	defer client.Close(context.Background())
//	fmt.Println(client.Decision()) // why telemetry is on or off
//	client.Capture("collection_add", map[string]any{
//		"collection": name,                    // sent as a keyed hash
//		"add_amount": telemetry.Exact(len(ids)), // sent exactly
//	})
//
// The package holds no policy: whether telemetry may run, how each value is anonymized and
// how events merge are decided by the core, the same for Rust, Go and Python programs. The
// package converts values, maps errors (*Error, matched with errors.Is against ErrShutDown,
// ErrInvalidConfig, ...) and keeps the calling goroutine's cost low: see Client.
//
// Logging: the package is silent by default. WithLogger(slog.Default()) sends the library's
// records to a log/slog logger: one warning per failure streak when events are dropped, an
// info when delivery works again, and consent values that were not understood.
//
// Usage statistics (Qdrant's model): Client.Usage declares operation timings and counters
// per label set and takes sections the host pushes; the core renders them as a report at a
// details level, as Prometheus text, and at /telemetry and /metrics (Usage.Handler,
// Usage.Serve), and an enabled client sends the anonymized report home. A handle records
// with a few atomic additions on the core's own cell, without a call into C:
//
//	searches, _ := client.Usage().Timing("search", telemetry.Label("collection", telemetry.KindHashed))
//	docs, _ := searches.With("docs")
//	defer docs.Start().Stop()
//
// Crash reports: defer client.ReportPanic() at the top of main and of every goroutine
// reports a panic as a crash (scrubbed, fingerprinted and rate-limited by the core; the
// first report of a fingerprint waits for its delivery at most the crash deadline) and
// panics again with the same value, so the program dies as it would have.
// Client.CaptureError reports a handled error with its chain of wrapped errors, and
// Client.CapturePanic a panic a recover middleware survives; neither waits:
//
//	defer client.Close(context.Background())
//	defer client.ReportPanic()
//	...
//	if err := sync(); err != nil {
//		client.CaptureError(err)
//	}
//
// Traces (observability, the operator's own, independent of telemetry consent): spans
// for an OpenTelemetry collector, configured like Chroma by CHROMA_OTEL_* (for another
// profile <PREFIX>_OTEL_*) and the standard OTEL_* variables, or in code with WithOTel.
// A span is built in Go memory and crosses into the library once, when it ends; one finer
// than the configured granularity costs a comparison. The current span travels in the
// context, parents to any client's span or the host's OpenTelemetry span, and
// HTTPTransport and HTTPHandler carry it between processes as W3C traceparent:
//
//	ctx, span := client.StartSpan(ctx, "collection.add", telemetry.GranularityOperation,
//		telemetry.WithAttributes(telemetry.IntAttr("ids_count", len(ids))))
//	defer span.End()
//	http := &http.Client{Transport: client.HTTPTransport(nil)}
//
// Building: a released module carries the library prebuilt per platform
// (telemetry/lib/<goos>_<goarch>/, made by `make go-module`), so go build needs only cgo
// and a C compiler. From a checkout, the package links target/release/libtelemetry_ffi.a
// from the repository root (cargo build --release -p telemetry-ffi); with -tags
// telemetry_ffi_debug it links the debug build instead, as `make test` does. Without cgo
// (CGO_ENABLED=0), or on a platform the module carries no library for, the package builds
// all the same and every client is off, its Decision saying why:
//
//	client, _ := telemetry.New(telemetry.WithProduct("myapp", "1.2.0"))
//	fmt.Println(client.Enabled()) // false
//	fmt.Println(client.Decision()) // this program was built without cgo (CGO_ENABLED=0), ...
package telemetry
