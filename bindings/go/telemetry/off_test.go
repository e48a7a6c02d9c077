//go:build !cgo

package telemetry

// The build without the library (ffi_off.go), run by `CGO_ENABLED=0 go test` (make
// test-go): a host that cannot link the core still builds and runs, every client is off
// and says why, and every call returns at once without panicking, blocking or starting a
// goroutine. The cgo suite is excluded by its files' constraints: it tests the core.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

const offReason = "built without cgo (CGO_ENABLED=0), so telemetry-core's library is not linked: telemetry is off"

// newOff makes a client the way a host would, asking for telemetry explicitly: the build
// still says no.
func newOff(t *testing.T) *Client {
	t.Helper()
	c, err := New(
		WithProduct("myapp", "1.2.0"),
		WithProfile(ProductProfile("myapp")),
		WithEndpoint("https://eu.i.posthog.com"),
		WithAPIKey("phc_key"),
		WithExplicit(true),
		WithOTel(OTelSettings{Endpoint: "http://127.0.0.1:4318", Granularity: GranularityAll}),
	)
	if err != nil {
		t.Fatalf("New without the library: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestOffWithoutCgoDecisionSaysWhy(t *testing.T) {
	c := newOff(t)
	if c.Enabled() {
		t.Fatal("a client without the library is enabled")
	}
	d := c.Decision()
	if d.Enabled || d.DecidedBy == nil || d.DecidedBy.Kind != "build" || d.DecidedBy.Name != "CGO_ENABLED" {
		t.Errorf("decision %+v, want off, decided by the build's CGO_ENABLED", d)
	}
	if d.DecidedBy != nil && (d.DecidedBy.Value == nil || *d.DecidedBy.Value != "0") {
		t.Errorf("decided by %+v, want the value 0", d.DecidedBy)
	}
	if !strings.Contains(d.String(), offReason) {
		t.Errorf("the explanation does not say why:\n%s", d)
	}
	if len(d.Sources) != 1 || d.Sources[0].Says != "off" {
		t.Errorf("sources %+v", d.Sources)
	}
	if Version() != "" {
		t.Errorf("Version() = %q without the library, want empty", Version())
	}
}

func TestOffWithoutCgoEveryCallIsANoOp(t *testing.T) {
	before := runtime.NumGoroutine()
	c := newOff(t)
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		if err := c.Capture("app_started", map[string]any{"mode": Safe("server")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CaptureEvent(Event{Name: "x", Batch: &BatchRule{Key: "k", MaxSize: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Errorf("Flush: %v", err)
	}
	if s := c.Stats(); s != (Stats{}) {
		t.Errorf("stats %+v, want zero", s)
	}
	if r, err := c.CaptureError(errors.New("boom")); r != ReportDisabled || err != nil {
		t.Errorf("CaptureError = %v, %v", r, err)
	}
	if r, err := c.CapturePanic("boom"); r != ReportDisabled || err != nil {
		t.Errorf("CapturePanic = %v, %v", r, err)
	}
	if _, err := c.Preview(Event{Name: "x"}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), offReason) {
		t.Errorf("Preview: %v, want ErrInvalidConfig saying why", err)
	}
	if events, err := c.MemoryEvents(); err != nil || len(events) != 0 {
		t.Errorf("MemoryEvents = %v, %v", events, err)
	}

	// Traces: inactive, the configuration's warning says why; spans are no-ops.
	cfg := c.TraceConfig()
	if cfg.Active || c.Tracing(GranularityOperation) || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], offReason) {
		t.Errorf("trace config %+v", cfg)
	}
	sctx, span := c.StartSpan(ctx, "op", GranularityOperation, WithAttributes(IntAttr("n", 1)))
	span.SetAttributes(StringAttr("k", "v"))
	span.End()
	if span.IsRecording() || sctx == nil {
		t.Error("a span records without the library")
	}
	if err := c.FlushSpans(ctx); err != nil {
		t.Errorf("FlushSpans: %v", err)
	}
	if s := c.SpanStats(); s != (SpanStats{}) {
		t.Errorf("span stats %+v", s)
	}
	if runtime.NumGoroutine() > before {
		t.Errorf("%d goroutines, %d before New: the off client started one", runtime.NumGoroutine(), before)
	}

	start := time.Now()
	if err := c.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Close took %v", d)
	}
	if err := c.Capture("late", nil); !errors.Is(err, ErrShutDown) {
		t.Errorf("Capture after Close: %v, want ErrShutDown as with the library", err)
	}
}

func TestOffWithoutCgoCaptureAllocatesNothing(t *testing.T) {
	c := newOff(t)
	props := map[string]any{"mode": Safe("server")}
	if n := testing.AllocsPerRun(1000, func() { _ = c.Capture("app_started", props) }); n != 0 {
		t.Errorf("Capture allocates %v times without the library", n)
	}
}

func TestOffWithoutCgoUsageCountsButRendersNothing(t *testing.T) {
	c := newOff(t)
	u := c.Usage()
	search, err := u.Timing("search", Label("collection", KindHashed))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := search.With("docs")
	if err != nil {
		t.Fatal(err)
	}
	docs.Observe(3 * time.Millisecond)
	docs.Observe(time.Millisecond)
	docs.Fail()
	func() { defer docs.Start().Stop() }()
	if err := search.Observe(time.Second, "other"); err != nil {
		t.Error(err)
	}
	snap, err := docs.Snapshot()
	if err != nil || snap.Count != 3 || snap.FailCount != 1 || snap.Min > time.Millisecond || snap.Max < 3*time.Millisecond {
		t.Errorf("snapshot %+v, %v: the host's own recordings should read back", snap, err)
	}
	counter, err := u.Counter("points")
	if err != nil {
		t.Fatal(err)
	}
	n, err := counter.With()
	if err != nil {
		t.Fatal(err)
	}
	n.Add(5)
	n.Inc()
	if n.Value() != 6 {
		t.Errorf("counter %d, want 6", n.Value())
	}
	if err := u.SetSection("collections", map[string]any{"count": 1}, nil, 2); err != nil {
		t.Error(err)
	}
	if report, err := u.Report(2, true); err != nil || len(report) != 0 {
		t.Errorf("report %v, %v: want empty, nothing renders it", report, err)
	}
	if text, err := u.Prometheus(false); err != nil || text != "" {
		t.Errorf("prometheus %q, %v", text, err)
	}

	rec := httptest.NewRecorder()
	u.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(string(body), offReason) {
		t.Errorf("/metrics answered %d %s", rec.Code, body)
	}

	s, err := u.Serve("127.0.0.1:0")
	if err != nil || s.URL() != "" {
		t.Errorf("Serve = %v, %v: want no server and no error", s, err)
	}
	if s != nil {
		_ = s.Close()
	}
}
