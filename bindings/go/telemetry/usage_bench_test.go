//go:build cgo

package telemetry

// What recording would cost with one call into the library per operation, the design
// usage_record.go avoids: `make bench-go` prints it beside client_golang's Histogram and
// this package's Timing (bindings/go/bench).

import (
	"context"
	"testing"
	"time"
)

func BenchmarkUsageRecordThroughTheLibrary(b *testing.B) {
	c, err := New(WithProduct("bench", "1.0.0"), WithSink(SinkMemory),
		WithEnvironment(map[string]string{}), WithUsageReports(false))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	f, err := c.Usage().Timing("search", Label("collection", KindHashed))
	if err != nil {
		b.Fatal(err)
	}
	t, err := f.With("docs")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := cTimingRecord(t.h, nanosOf(time.Since(start))); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s, err := t.Snapshot(); err != nil || s.Count != uint64(b.N) {
		b.Fatalf("%+v, %v", s, err)
	}
}
