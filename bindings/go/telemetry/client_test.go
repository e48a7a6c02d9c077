//go:build cgo

package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memoryClient is an enabled client that reads no process variable, writes no file (no
// HOME: the install id stays in memory) and keeps what it delivers.
func memoryClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	base := []Option{
		WithProduct("gotest", "1.0.0"),
		WithSink(SinkMemory),
		WithEnvironment(map[string]string{}),
	}
	c, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustEvents(t *testing.T, c *Client) []map[string]any {
	t.Helper()
	if err := c.Flush(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	events, err := c.MemoryEvents()
	if err != nil {
		t.Fatalf("MemoryEvents: %v", err)
	}
	return events
}

func props(e map[string]any) map[string]any { return e["properties"].(map[string]any) }

func TestCaptureDeliversAnonymizedEvents(t *testing.T) {
	c := memoryClient(t)
	if !c.Enabled() {
		t.Fatalf("a client with an empty environment is off: %s", c.Decision())
	}
	err := c.Capture("started", map[string]any{
		"mode":        Safe("server"),
		"collection":  "my_collection", // undeclared string: hashed
		"count":       123456,          // undeclared number: rounded to 3 digits
		"exact":       Exact(123456),
		"ratio":       0.5,
		"enabled":     true,
		"nothing":     nil,
		"quote\"key":  "tab\tand \"quotes\" and \xff",
		"nested":      map[string]any{"list": []any{1, "x", false}},
		"dropped_one": Property{KindDropped, "secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	events := mustEvents(t, c)
	if len(events) != 1 {
		t.Fatalf("%d events delivered, want 1", len(events))
	}
	e := events[0]
	p := props(e)
	if e["event"] != "started" || p["mode"] != "server" {
		t.Errorf("event %v", e)
	}
	if h, _ := p["collection"].(string); len(h) != 16 || h == "my_collection" {
		t.Errorf("an undeclared string was not hashed: %v", p["collection"])
	}
	if fmt.Sprint(p["count"]) != "123000" || fmt.Sprint(p["exact"]) != "123456" {
		t.Errorf("numbers: count %v exact %v", p["count"], p["exact"])
	}
	if _, ok := p["dropped_one"]; ok {
		t.Errorf("a dropped property was sent")
	}
	if p["$geoip_disable"] != true || p["runtime"] != "go" {
		t.Errorf("context: %v", p)
	}
	s := c.Stats()
	if s.Captured != 1 || s.Sent != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestCaptureErrors(t *testing.T) {
	c := memoryClient(t)
	cases := []struct {
		name  string
		event string
		props map[string]any
		want  error
	}{
		{"empty name", "", nil, ErrInvalidEvent},
		{"blank name", " \t", nil, ErrInvalidEvent},
		{"long name", string(make([]byte, maxEventNameBytes+1)), nil, ErrInvalidEvent},
		{"invalid UTF-8 name", "ev\xff", nil, ErrInvalidUTF8},
		{"unencodable value", "e", map[string]any{"ch": make(chan int)}, ErrInvalidEvent},
		{"unknown kind", "e", map[string]any{"k": Property{"secret", 1}}, ErrInvalidEvent},
		{"nested Property", "e", map[string]any{"k": []any{Safe(1)}}, ErrInvalidEvent},
		{"bad json.Number", "e", map[string]any{"n": json.Number("12x")}, ErrInvalidEvent},
	}
	for _, tc := range cases {
		err := c.Capture(tc.event, tc.props)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		var te *Error
		if !errors.As(err, &te) || te.Message == "" {
			t.Errorf("%s: %v is not an *Error with a message", tc.name, err)
		}
	}
	// A value that contains itself is refused, not followed forever.
	loop := []any{nil}
	loop[0] = loop
	if err := c.Capture("e", map[string]any{"loop": loop}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("self-containing value: %v", err)
	}
	if err := c.CaptureEvent(Event{Name: "e", Batch: &BatchRule{}}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("empty batch key: %v", err)
	}
	if s := c.Stats(); s.Captured != 0 {
		t.Errorf("refused captures were counted: %+v", s)
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name string
		opts []Option
		want string
	}{
		{"no product", []Option{WithSink(SinkMemory)}, "product"},
		{"plain http to a remote host", []Option{WithProduct("x", "1"), WithEndpoint("http://telemetry.example.com"), WithAPIKey("k")}, "https"},
		{"posthog without endpoint", []Option{WithProduct("x", "1"), WithAPIKey("k")}, "endpoint"},
		{"posthog without key", []Option{WithProduct("x", "1"), WithEndpoint("https://eu.i.posthog.com")}, "api_key"},
		{"unknown mode", []Option{WithProduct("x", "1"), WithSink(SinkMemory), WithMode("daemon")}, "daemon"},
		{"negative queue", []Option{WithProduct("x", "1"), WithSink(SinkMemory), WithQueueCapacity(-1)}, ""},
		{"file sink without path", []Option{WithProduct("x", "1"), WithSink(SinkFile)}, "file_path"},
		{"zero buffer", []Option{WithProduct("x", "1"), WithSink(SinkMemory), WithBufferSize(0)}, "buffer"},
	}
	for _, tc := range cases {
		c, err := New(tc.opts...)
		if c != nil || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: client %v, error %v; want ErrInvalidConfig", tc.name, c, err)
			continue
		}
		if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %q does not mention %q", tc.name, err, tc.want)
		}
	}
	// Loopback may use plain http.
	c, err := New(WithProduct("x", "1"), WithEndpoint("http://127.0.0.1:9"), WithAPIKey("k"),
		WithEnvironment(map[string]string{}))
	if err != nil {
		t.Fatalf("loopback over http: %v", err)
	}
	_ = c.Close(context.Background())
}

func TestCloseIsIdempotentAndLaterCallsAreShutDown(t *testing.T) {
	c := memoryClient(t)
	if err := c.Capture("before", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for name, err := range map[string]error{
		"Capture":      c.Capture("after", nil),
		"CaptureEvent": c.CaptureEvent(Event{Name: "after"}),
		"Flush":        c.Flush(context.Background()),
	} {
		if !errors.Is(err, ErrShutDown) {
			t.Errorf("%s after Close: %v, want ErrShutDown", name, err)
		}
	}
	if _, err := c.MemoryEvents(); !errors.Is(err, ErrShutDown) {
		t.Errorf("MemoryEvents after Close: %v", err)
	}
	// The event captured before Close was delivered, and the final stats remain readable.
	if s := c.Stats(); s.Captured != 1 || s.Sent != 1 {
		t.Errorf("final stats %+v", s)
	}
	if !c.Decision().Enabled {
		t.Errorf("decision lost after Close")
	}
}

func TestSixtyFourGoroutinesArriveWithExactCounts(t *testing.T) {
	const goroutines, each = 64, 300
	c := memoryClient(t, WithQueueCapacity(goroutines*each), WithBufferSize(64))
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := c.Capture("work", map[string]any{"g": Safe(g), "i": Exact(i)}); err != nil {
					failures.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d captures failed", failures.Load())
	}
	events := mustEvents(t, c)
	if len(events) != goroutines*each {
		t.Fatalf("%d events delivered, want %d", len(events), goroutines*each)
	}
	perG := map[string]int{}
	lastI := map[string]int{}
	for _, e := range events {
		p := props(e)
		g := fmt.Sprint(p["g"])
		var i int
		fmt.Sscan(fmt.Sprint(p["i"]), &i)
		// One goroutine's events arrive in the order it captured them.
		if n, seen := lastI[g]; seen && i != n+1 {
			t.Fatalf("goroutine %s: event %d after %d", g, i, n)
		}
		lastI[g] = i
		perG[g]++
	}
	for g := 0; g < goroutines; g++ {
		if perG[fmt.Sprint(g)] != each {
			t.Errorf("goroutine %d: %d events", g, perG[fmt.Sprint(g)])
		}
	}
	s := c.Stats()
	if s.Captured != goroutines*each || s.Sent != goroutines*each || s.DroppedQueueFull != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestAFullLibraryQueueDropsAndCountsNothingIsLostInGo(t *testing.T) {
	// A queue of 1 behind a buffer of 4: most events find the library's queue full. Every
	// Capture must still be accounted for, as sent or as dropped, never vanish in Go.
	c := memoryClient(t, WithQueueCapacity(1), WithBufferSize(4))
	const n = 2000
	for i := 0; i < n; i++ {
		if err := c.Capture("burst", map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Flush(ctxTimeout(t, 10*time.Second))
	s := c.Stats()
	if s.Captured != n || s.Sent+s.DroppedQueueFull != n {
		t.Errorf("stats %+v: every capture must be sent or counted as dropped", s)
	}
	// Flush says whether anything was dropped, and only then.
	if s.DroppedQueueFull > 0 && !errors.Is(err, ErrNotDelivered) || s.DroppedQueueFull == 0 && err != nil {
		t.Errorf("Flush: %v with %d dropped", err, s.DroppedQueueFull)
	}
	events, _ := c.MemoryEvents()
	if uint64(len(events)) != s.Sent {
		t.Errorf("%d delivered, stats say %d", len(events), s.Sent)
	}
}

func TestOptedOutCaptureNeverCrossesIntoC(t *testing.T) {
	c, err := New(WithProduct("gotest", "1"), WithProfile(Chroma), WithSink(SinkMemory),
		WithEnvironment(map[string]string{"ANONYMIZED_TELEMETRY": "False"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Enabled() {
		t.Fatal("ANONYMIZED_TELEMETRY=False left telemetry on")
	}
	d := c.Decision()
	if d.DecidedBy == nil || d.DecidedBy.Kind != "env" || d.DecidedBy.Name != "ANONYMIZED_TELEMETRY" {
		t.Errorf("decided by %+v", d.DecidedBy)
	}
	before := crossings.Load()
	p := map[string]any{"a": 1, "b": "x"}
	for i := 0; i < 1000; i++ {
		if err := c.Capture("e", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s != (Stats{}) {
		t.Errorf("an opted-out client counted %+v", s)
	}
	if got := crossings.Load() - before; got != 0 {
		t.Errorf("%d calls into C while opted out", got)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = c.Capture("e", p) }); allocs != 0 {
		t.Errorf("an opted-out Capture allocates %v times", allocs)
	}
	_ = c.Close(context.Background())
	if err := c.Capture("e", nil); !errors.Is(err, ErrShutDown) {
		t.Errorf("opted-out Capture after Close: %v", err)
	}
}

// TestOptOutFromTheRealEnvironment sets the variables a user would set, in the process
// environment, and checks that nothing is sent (a listening socket sees no connection)
// and nothing is written (the temporary HOME stays empty).
func TestOptOutFromTheRealEnvironment(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"DO_NOT_TRACK", "1"},
		{"ANONYMIZED_TELEMETRY", "False"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			work := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("DO_NOT_TRACK", "")
			t.Setenv("ANONYMIZED_TELEMETRY", "")
			t.Setenv("TELEMETRY_DEBUG", "")
			t.Setenv(tc.name, tc.value)

			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var connections atomic.Int64
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					connections.Add(1)
					conn.Close()
				}
			}()

			c, err := New(WithProduct("gotest", "1"), WithProfile(Chroma), WithWorkingDir(work),
				WithEndpoint("http://"+ln.Addr().String()), WithAPIKey("phc_test"),
				WithFlushInterval(10*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if c.Enabled() {
				t.Fatalf("%s=%s left telemetry on:\n%s", tc.name, tc.value, c.Decision())
			}
			for i := 0; i < 100; i++ {
				_ = c.Capture("collection_add", map[string]any{"n": i})
			}
			if err := c.Flush(ctxTimeout(t, time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(ctxTimeout(t, time.Second)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if n := connections.Load(); n != 0 {
				t.Errorf("%d connections to the endpoint while opted out", n)
			}
			for _, dir := range []string{home, work} {
				entries, _ := os.ReadDir(dir)
				if len(entries) != 0 {
					t.Errorf("%s is not empty: %v", dir, entries)
				}
			}
		})
	}
}

func TestFlushTimesOutAgainstAServerThatNeverAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // listens, never accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := New(WithProduct("gotest", "1"), WithEnvironment(map[string]string{}),
		WithEndpoint("http://"+ln.Addr().String()), WithAPIKey("phc_test"),
		WithRequestTimeout(300*time.Millisecond), WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Capture("stuck", nil); err != nil {
		t.Fatal(err)
	}
	err = c.Flush(ctxTimeout(t, 100*time.Millisecond))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush: %v, want ErrTimeout and context.DeadlineExceeded", err)
	}
	if err := c.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Sent != 0 || s.DroppedFailed+s.DroppedShutdown != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestFileSinkAndPreview(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	c, err := New(WithProduct("gotest", "1"), WithFileSink(path), WithEnvironment(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	item, err := c.Preview(Event{Name: "preview", Properties: map[string]any{"k": Safe("v")}})
	if err != nil || item["event"] != "preview" || props(item)["k"] != "v" {
		t.Fatalf("Preview: %v %v", item, err)
	}
	if _, err := c.MemoryEvents(); !errors.Is(err, ErrNoMemorySink) {
		t.Errorf("MemoryEvents on a file sink: %v", err)
	}
	if err := c.Capture("to_file", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), `"to_file"`) {
		t.Errorf("file sink: %q %v", data, err)
	}
}

func TestAnUnclosedClientIsClosedByItsFinalizer(t *testing.T) {
	// `make test` also runs this with GOGC=1: the finalizer closes the library's client
	// only once the Client is unreachable, and delivers what was still buffered.
	in := func() *client {
		c, err := New(WithProduct("gotest", "1"), WithSink(SinkMemory),
			WithEnvironment(map[string]string{}))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if err := c.Capture("e", nil); err != nil {
				t.Fatal(err)
			}
		}
		return c.c // the inner state stays reachable; the Client does not
	}()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		in.hmu.RLock()
		freed, final := in.h == nil, in.final
		in.hmu.RUnlock()
		if freed {
			if final.Captured != 10 || final.Sent != 10 {
				t.Errorf("after the finalizer: %+v", final)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the finalizer did not close the client")
}

func TestVersion(t *testing.T) {
	if v := Version(); v == "" || !strings.Contains(v, ".") {
		t.Errorf("Version() = %q", v)
	}
}
