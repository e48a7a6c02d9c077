// Package bench measures the Go package's Capture beside posthog-go's Enqueue of the same
// event and beside an empty function taking the same arguments, and its Timing beside
// client_golang's Histogram (usage_bench_test.go), and its spans beside
// go.opentelemetry.io/otel/sdk's (trace_bench_test.go), in one `go test -bench` run. It is
// its own module so the telemetry package never depends on posthog-go, client_golang or
// the OpenTelemetry SDK and exporter.
// Everything is sent to a loopback test server: nothing leaves the machine.
package bench

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posthog/posthog-go"
	"github.com/telemetry-core/telemetry-core/bindings/go/telemetry"
)

// props are the 5 properties of every benchmarked event, a Chroma-like collection_add.
var props = map[string]any{
	"collection_uuid": "6c6e0f1a-6a33-4c59-9b3c-5d1fa4f2b7e1",
	"add_amount":      20,
	"with_documents":  20,
	"with_metadata":   0,
	"embedding":       "default",
}

// floor is what a call costs when it does nothing: a method that is not inlined, with the
// same receiver kind and arguments as Client.Capture.
type floor struct{ n int }

//go:noinline
func (f *floor) Capture(event string, props map[string]any) error { return nil }

// sink is a PostHog-compatible loopback endpoint that accepts everything.
func sink(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":1}`))
	}))
	b.Cleanup(srv.Close)
	return srv, &requests
}

func newClient(b *testing.B, url string, env map[string]string) *telemetry.Client {
	c, err := telemetry.New(
		telemetry.WithProduct("bench", "1.0.0"),
		telemetry.WithProfile(telemetry.Chroma),
		telemetry.WithEndpoint(url),
		telemetry.WithAPIKey("phc_bench"),
		telemetry.WithEnvironment(env),
	)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkFloorEmptyFunction(b *testing.B) {
	f := &floor{}
	for i := 0; i < b.N; i++ {
		_ = f.Capture("collection_add", props)
	}
}

func BenchmarkCaptureOff(b *testing.B) {
	srv, requests := sink(b)
	c := newClient(b, srv.URL, map[string]string{"DO_NOT_TRACK": "1"})
	if c.Enabled() {
		b.Fatal("DO_NOT_TRACK=1 left telemetry on")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = c.Capture("collection_add", props)
	}
	b.StopTimer()
	_ = c.Close(context.Background())
	if requests.Load() != 0 {
		b.Fatalf("%d requests while off", requests.Load())
	}
}

// BenchmarkCaptureOverflow is Capture in a loop that outruns any delivery: the bounded
// queue fills and nearly every event takes the drop path (dropped and counted, DESIGN.md),
// so this is the caller's cost when the worker cannot keep up, not a delivery rate;
// BenchmarkCaptureSustained is that.
func BenchmarkCaptureOverflow(b *testing.B) {
	srv, _ := sink(b)
	c := newClient(b, srv.URL, map[string]string{"HOME": b.TempDir()})
	if !c.Enabled() {
		b.Fatal("telemetry is off")
	}
	_ = c.Capture("warm_up", nil) // the first capture starts the pipeline; not measured
	_ = c.Flush(context.Background())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Capture("collection_add", props); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Close(ctx)
	s := c.Stats()
	b.ReportMetric(100*float64(s.DroppedQueueFull)/float64(s.Captured), "%dropped")
}

// countingSink is sink counting the events it receives (each request's batch, gunzipped
// when the sender compressed it), so a sustained benchmark can prove every event arrived.
func countingSink(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var events atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			z, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = z
		}
		var doc struct {
			Batch []json.RawMessage `json:"batch"`
		}
		if err := json.NewDecoder(body).Decode(&doc); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		events.Add(int64(len(doc.Batch)))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":1}`))
	}))
	b.Cleanup(srv.Close)
	return srv, &events
}

// sustainedDepth is how many events BenchmarkCaptureSustained lets wait in the core's
// queue (half its 10,000): enough that the worker never waits for the producer, far
// enough from full that nothing is dropped.
const sustainedDepth = 5000

// BenchmarkCaptureSustained is the rate the pipeline keeps up with: a producer that
// captures as fast as the worker delivers (it checks the queue's depth every 256
// captures and waits while it is over sustainedDepth), timed until the last event is
// delivered to the loopback endpoint. ns/op is wall time per delivered event, the
// caller's Capture, the worker's anonymization, encoding, gzip and HTTP all included.
// Nothing may be dropped: Flush must report everything delivered, Stats zero drops, and
// the endpoint must have received every event.
func BenchmarkCaptureSustained(b *testing.B) {
	srv, received := countingSink(b)
	c := newClient(b, srv.URL, map[string]string{"HOME": b.TempDir()})
	if !c.Enabled() {
		b.Fatal("telemetry is off")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = c.Capture("warm_up", nil)
	if err := c.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	base := received.Load()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if i%256 == 0 {
			for c.Stats().Queued > sustainedDepth {
				time.Sleep(100 * time.Microsecond)
			}
		}
		if err := c.Capture("collection_add", props); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		b.Fatalf("not everything was delivered: %v (stats %+v)", err, c.Stats())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	s := c.Stats()
	_ = c.Close(ctx)
	if drops := s.DroppedQueueFull + s.DroppedFailed + s.DroppedShutdown; drops != 0 || s.Sent != s.Captured {
		b.Fatalf("stats %+v: a sustained rate drops nothing", s)
	}
	if got := received.Load() - base; got != int64(b.N) {
		b.Fatalf("the endpoint received %d events of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(0, "%dropped")
}

// BenchmarkPosthogSustained is posthog-go's equivalent: Enqueue blocks while its channel
// (100 messages) is full, so it is paced by its own sender; timed through Close, which
// delivers what is left. The endpoint must have received every event.
func BenchmarkPosthogSustained(b *testing.B) {
	srv, received := countingSink(b)
	client, err := posthog.NewWithConfig("phc_bench", posthog.Config{Endpoint: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	p := posthog.Properties(props)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := client.Enqueue(posthog.Capture{DistinctId: "bench", Event: "collection_add", Properties: p}); err != nil {
			b.Fatal(err)
		}
	}
	if err := client.Close(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got := received.Load(); got != int64(b.N) {
		b.Fatalf("the endpoint received %d events of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(0, "%dropped")
}

func BenchmarkPosthogEnqueue(b *testing.B) {
	srv, _ := sink(b)
	client, err := posthog.NewWithConfig("phc_bench", posthog.Config{Endpoint: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	p := posthog.Properties(props)
	_ = client.Enqueue(posthog.Capture{DistinctId: "bench", Event: "warm_up"})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := client.Enqueue(posthog.Capture{DistinctId: "bench", Event: "collection_add", Properties: p}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = client.Close()
}
