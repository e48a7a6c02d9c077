package bench

// Timing one operation: this package's Timing beside client_golang's Histogram, each
// including the cost of taking the time (time.Now and time.Since, or Start and Stop),
// the same bucket bounds (Qdrant's, 1 ms to 50 s) and one label set. Recording sends
// nothing: the client's usage reports are off.

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/telemetry-core/telemetry-core/bindings/go/telemetry"
)

// qdrantBuckets are the core's default bounds, in seconds for client_golang.
var qdrantBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5, 10, 50}

func newTiming(b *testing.B) *telemetry.Timing {
	c, err := telemetry.New(
		telemetry.WithProduct("bench", "1.0.0"),
		telemetry.WithSink(telemetry.SinkMemory),
		telemetry.WithEnvironment(map[string]string{}),
		telemetry.WithUsageReports(false),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(context.Background()) })
	f, err := c.Usage().Timing("search", telemetry.Label("collection", telemetry.KindHashed))
	if err != nil {
		b.Fatal(err)
	}
	t, err := f.With("docs")
	if err != nil {
		b.Fatal(err)
	}
	t.Observe(time.Millisecond) // the handle's first recording goes through the library
	return t
}

func newHistogram() prometheus.Observer {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bench_search_seconds",
		Help:    "search",
		Buckets: qdrantBuckets,
	}, []string{"collection"})
	return h.WithLabelValues("docs")
}

func checkCount(b *testing.B, t *telemetry.Timing, want uint64) {
	s, err := t.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	if s.Count != want {
		b.Fatalf("%d recorded, %d expected", s.Count, want)
	}
}

func BenchmarkTimingNowSinceObserve(b *testing.B) {
	t := newTiming(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		t.Observe(time.Since(start))
	}
	b.StopTimer()
	checkCount(b, t, uint64(b.N)+1)
}

func BenchmarkTimingStartStop(b *testing.B) {
	t := newTiming(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t.Start().Stop()
	}
	b.StopTimer()
	checkCount(b, t, uint64(b.N)+1)
}

func BenchmarkPrometheusHistogram(b *testing.B) {
	h := newHistogram()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		h.Observe(time.Since(start).Seconds())
	}
}

// The parallel pair: GOMAXPROCS goroutines timing the same label set (one contended cell).

func BenchmarkTimingStartStopParallel(b *testing.B) {
	t := newTiming(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t.Start().Stop()
		}
	})
	b.StopTimer()
	checkCount(b, t, uint64(b.N)+1)
}

func BenchmarkPrometheusHistogramParallel(b *testing.B) {
	h := newHistogram()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			h.Observe(time.Since(start).Seconds())
		}
	})
}
