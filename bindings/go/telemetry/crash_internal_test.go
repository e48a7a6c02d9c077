//go:build cgo

package telemetry

// Error reports opted out: nothing but the re-panic, not a single call into C.

import (
	"errors"
	"testing"
	"time"
)

func TestOptedOutErrorReportsNeverCrossIntoC(t *testing.T) {
	c, err := New(WithProduct("gotest", "1"), WithSink(SinkMemory),
		WithEnvironment(map[string]string{"DO_NOT_TRACK": "1"}), WithCrashDeadline(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctxTimeout(t, time.Second))
	if c.Enabled() {
		t.Fatal("DO_NOT_TRACK=1 left it on")
	}
	boom := errors.New("boom")
	before := crossings.Load()
	started := time.Now()
	for i := 0; i < 100; i++ {
		got := func() (v any) {
			defer func() { v = recover() }()
			defer c.ReportPanic()
			panic(boom)
		}()
		if got != boom {
			t.Fatalf("re-panicked with %#v", got)
		}
		if r, err := c.CaptureError(boom); r != ReportDisabled || err != nil {
			t.Fatalf("CaptureError: %v, %v", r, err)
		}
		if r, err := c.CapturePanic(boom); r != ReportDisabled || err != nil {
			t.Fatalf("CapturePanic: %v, %v", r, err)
		}
	}
	if took := time.Since(started); took > 500*time.Millisecond {
		t.Errorf("300 opted-out reports took %v", took)
	}
	if got := crossings.Load() - before; got != 0 {
		t.Errorf("%d calls into C while opted out", got)
	}
	if events, err := c.MemoryEvents(); err != nil || len(events) != 0 {
		t.Errorf("delivered %v (%v)", events, err)
	}
}
