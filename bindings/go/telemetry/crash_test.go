//go:build cgo

package telemetry_test

// Error reports in process, as a host uses them (an external test package, so these tests'
// functions are the host's own code, in_app): handled errors with wrapped and joined
// causes, hostile Error, String and Unwrap methods, ReportPanic's report and re-panic,
// several clients each under its own consent, a panic storm from 64 goroutines held to the
// rate limits, CapturePanic in a recover middleware, and the calls' errors. The library's
// memory sink shows what would be sent.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telemetry-core/telemetry-core/bindings/go/telemetry"
)

func memoryClient(t *testing.T, opts ...telemetry.Option) *telemetry.Client {
	t.Helper()
	base := []telemetry.Option{
		telemetry.WithProduct("crashtest", "3.1.0"),
		telemetry.WithSink(telemetry.SinkMemory),
		telemetry.WithEnvironment(map[string]string{}),
		telemetry.WithUsageReports(false),
		telemetry.WithShutdownTimeout(30 * time.Second),
	}
	c, err := telemetry.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// exceptions are the $exception events the client delivered, after a flush.
func exceptions(t *testing.T, c *telemetry.Client) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	events, err := c.MemoryEvents()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range events {
		if e["event"] == "$exception" {
			out = append(out, e["properties"].(map[string]any))
		}
	}
	return out
}

// list is a report's $exception_list: the exception, then its causes.
func list(p map[string]any) []map[string]any {
	var out []map[string]any
	for _, e := range p["$exception_list"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func frames(e map[string]any) []map[string]any {
	var out []map[string]any
	for _, f := range e["stacktrace"].(map[string]any)["frames"].([]any) {
		out = append(out, f.(map[string]any))
	}
	return out
}

// innermostOwn is the innermost frame marked in_app.
func innermostOwn(t *testing.T, e map[string]any) map[string]any {
	t.Helper()
	fs := frames(e)
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i]["in_app"] == true {
			return fs[i]
		}
	}
	t.Fatalf("no in_app frame in %v", fs)
	return nil
}

const testPkg = "github.com/telemetry-core/telemetry-core/bindings/go/telemetry_test."
const ownPkg = "github.com/telemetry-core/telemetry-core/bindings/go/telemetry."

// checkFrames: files without directories, no frame of this package or of the panic
// machinery, the standard library's frames not in_app.
func checkFrames(t *testing.T, e map[string]any) {
	t.Helper()
	for _, f := range frames(e) {
		fn, _ := f["function"].(string)
		file, _ := f["filename"].(string)
		if strings.ContainsAny(file, `/\`) {
			t.Errorf("a directory went out: %v", f)
		}
		if strings.HasPrefix(fn, ownPkg) || fn == "runtime.gopanic" || strings.Contains(fn, "deferwrap") {
			t.Errorf("a frame of the reporting machinery: %v", f)
		}
		if (strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "testing.")) && f["in_app"] != false {
			t.Errorf("a standard library frame marked in_app: %v", f)
		}
		if f["platform"] != "go" {
			t.Errorf("platform %v", f["platform"])
		}
	}
}

type syncError struct{ table string }

func (e *syncError) Error() string { return "sync of " + e.table + " failed" }

//go:noinline
func syncTable(table string) error {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect to 10.1.2.3:5432: connection refused")}
	return fmt.Errorf("sync for alice@example.com: %w", fmt.Errorf("%w: %w", &syncError{table}, dial))
}

func TestCaptureErrorSendsTheWrappedChainScrubbed(t *testing.T) {
	c := memoryClient(t)
	err := syncTable("/home/alice/notes.db")
	started := time.Now()
	r, e := c.CaptureError(err)
	if e != nil || r != telemetry.ReportQueued {
		t.Fatalf("CaptureError: %v, %v", r, e)
	}
	if took := time.Since(started); took > 200*time.Millisecond {
		t.Errorf("a handled error took %v", took)
	}
	sent := exceptions(t, c)
	if len(sent) != 1 {
		t.Fatalf("%d reports", len(sent))
	}
	p := sent[0]
	if p["$exception_level"] != "error" || p["$exception_handled"] != true {
		t.Errorf("level %v, handled %v", p["$exception_level"], p["$exception_handled"])
	}
	l := list(p)
	// The error, then what it wraps, depth first: the join, then its two branches and the
	// dial error's own cause.
	want := []string{"*fmt.wrapError", "*fmt.wrapErrors", "*telemetry_test.syncError", "*net.OpError", "*errors.errorString"}
	var got []string
	for _, e := range l {
		got = append(got, e["type"].(string))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("types %v, want %v", got, want)
	}
	for _, e := range l {
		v := e["value"].(string)
		for _, private := range []string{"alice@example.com", "10.1.2.3", "/home/alice"} {
			if strings.Contains(v, private) {
				t.Errorf("%q went out in %q", private, v)
			}
		}
	}
	if v := l[2]["value"].(string); !strings.Contains(v, "notes.db") {
		t.Errorf("the file name was lost: %q", v)
	}
	// The frames are CaptureError's caller's: this test, innermost.
	checkFrames(t, l[0])
	own := innermostOwn(t, l[0])
	if own["function"] != testPkg+"TestCaptureErrorSendsTheWrappedChainScrubbed" || own["filename"] != "crash_test.go" {
		t.Errorf("innermost own frame %v", own)
	}
	if len(p["$exception_fingerprint"].(string)) != 16 {
		t.Errorf("fingerprint %v", p["$exception_fingerprint"])
	}

	// The same error from the same place again within 60 s: held back.
	if r, e := c.CaptureError(syncTable("other")); e != nil || r != telemetry.ReportSuppressed {
		t.Errorf("a repeat: %v, %v", r, e)
	}
}

func TestCaptureErrorOfAJoin(t *testing.T) {
	c := memoryClient(t)
	err := errors.Join(fs.ErrNotExist, context.DeadlineExceeded, nil, errors.New("third"))
	if r, e := c.CaptureError(err); e != nil || r != telemetry.ReportQueued {
		t.Fatalf("CaptureError: %v, %v", r, e)
	}
	l := list(exceptions(t, c)[0])
	if len(l) != 4 || l[0]["type"] != "*errors.joinError" || l[1]["value"] != "file does not exist" ||
		l[2]["type"] != "context.deadlineExceededError" || l[3]["value"] != "third" {
		t.Errorf("%v", l)
	}
}

// A chain that loops back on itself ends at the library's limit of causes.
type loop struct{}

func (l *loop) Error() string { return "loops" }
func (l *loop) Unwrap() error { return l }

func TestALoopingChainEndsAtTheLimit(t *testing.T) {
	c := memoryClient(t)
	if _, e := c.CaptureError(&loop{}); e != nil {
		t.Fatal(e)
	}
	if l := list(exceptions(t, c)[0]); len(l) != 1+8 {
		t.Errorf("%d entries", len(l))
	}
}

// Hostile methods: an Error that panics, an Error whose panic value cannot be printed
// either, an Unwrap that panics, a String that panics.
type panicky struct{ with any }

func (p panicky) Error() string { panic(p.with) }

type unprintablePanic struct{}

func (unprintablePanic) Error() string { panic(panicky{"again"}) }

type badUnwrap struct{}

func (badUnwrap) Error() string { return "bad unwrap" }
func (badUnwrap) Unwrap() error { panic("unwrap panics") }

type badString struct{}

func (badString) String() string { panic("string panics") }

func TestHostileMethodsMakeAPoorerReportNeverAPanic(t *testing.T) {
	c := memoryClient(t, telemetry.WithCrashRateLimits(0, 100))
	cases := []struct {
		err  error
		want string
	}{
		{panicky{"boom"}, "%!v(PANIC=Error method: boom)"},
		{panicky{unprintablePanic{}}, "%!v(PANIC=the value's Error or String method panicked)"},
		{fmt.Errorf("wrapped: %w", panicky{"deep"}), "wrapped: %!v(PANIC=Error method: deep)"},
		{badUnwrap{}, "bad unwrap"},
	}
	for _, tc := range cases {
		r, e := c.CaptureError(tc.err)
		if e != nil || r != telemetry.ReportQueued {
			t.Errorf("%T: %v, %v", tc.err, r, e)
		}
	}
	sent := exceptions(t, c)
	if len(sent) != len(cases) {
		t.Fatalf("%d reports", len(sent))
	}
	for i, tc := range cases {
		if got := list(sent[i])[0]["value"]; got != tc.want {
			t.Errorf("report %d: message %q, want %q", i, got, tc.want)
		}
	}
	if l := list(sent[2]); len(l) != 2 || l[1]["value"] != "%!v(PANIC=Error method: deep)" {
		t.Errorf("the cause of a wrapped panicky error: %v", l)
	}
	if l := list(sent[3]); len(l) != 1 {
		t.Errorf("a panicking Unwrap ends the chain: %v", l)
	}

	// A panic value whose String panics: reported, and the original value panics again.
	got := catch(func() {
		defer c.ReportPanic()
		panic(badString{})
	})
	if _, ok := got.(badString); !ok {
		t.Fatalf("re-panicked with %#v", got)
	}
	sent = exceptions(t, c)
	if e := list(sent[len(sent)-1])[0]; e["type"] != "panic" || e["value"] != "%!v(PANIC=String method: string panics)" {
		t.Errorf("%v", e)
	}
}

// catch runs f and returns what it panicked with.
func catch(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

//go:noinline
func openStore(home string) {
	panic(fmt.Sprintf("cannot open %s/.crashtest/store.db for alice@example.com from 192.168.7.9", home))
}

//go:noinline
func startStore(c *telemetry.Client) {
	defer c.ReportPanic()
	openStore("/home/alice")
}

func TestReportPanicReportsAndPanicsAgainWithTheSameValue(t *testing.T) {
	c := memoryClient(t)
	got := catch(func() { startStore(c) })
	msg, _ := got.(string)
	if !strings.HasPrefix(msg, "cannot open /home/alice/.crashtest/store.db for alice@example.com") {
		t.Fatalf("re-panicked with %#v", got)
	}
	sent := exceptions(t, c)
	if len(sent) != 1 {
		t.Fatalf("%d reports", len(sent))
	}
	p := sent[0]
	if p["$exception_level"] != "fatal" || p["$exception_handled"] != false {
		t.Errorf("level %v handled %v", p["$exception_level"], p["$exception_handled"])
	}
	e := list(p)[0]
	if e["type"] != "panic" || e["mechanism"].(map[string]any)["handled"] != false {
		t.Errorf("%v", e)
	}
	v := e["value"].(string)
	for _, private := range []string{"/home/alice", "alice@example.com", "192.168.7.9"} {
		if strings.Contains(v, private) {
			t.Errorf("%q went out in %q", private, v)
		}
	}
	if !strings.Contains(v, "store.db") {
		t.Errorf("the file name was lost: %q", v)
	}
	checkFrames(t, e)
	fs := frames(e)
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = strings.TrimPrefix(f["function"].(string), testPkg)
	}
	// The panicking function is the innermost frame, its callers outward; nothing of the
	// deferred call, the runtime's panic or this package in between.
	n := len(names)
	if n < 4 || names[n-1] != "openStore" || names[n-2] != "startStore" || fs[n-1]["in_app"] != true ||
		fs[n-1]["filename"] != "crash_test.go" || fs[n-1]["lineno"] == nil {
		t.Errorf("frames %v", names)
	}
}

// A runtime error (a nil map): its type is the runtime's error type, the innermost frame
// the faulting function, not the runtime's helpers.
//
//go:noinline
func writeNil(m map[string]int) { m["x"] = 1 }

func TestReportPanicOfARuntimeError(t *testing.T) {
	c := memoryClient(t)
	got := catch(func() {
		defer c.ReportPanic()
		var index []int
		_ = index[len(index)+2]
	})
	if _, ok := got.(interface{ RuntimeError() }); !ok {
		t.Fatalf("re-panicked with %#v", got)
	}
	got = catch(func() {
		defer c.ReportPanic()
		writeNil(nil)
	})
	if _, ok := got.(error); !ok {
		t.Fatalf("re-panicked with %#v", got)
	}
	sent := exceptions(t, c)
	if len(sent) != 2 {
		t.Fatalf("%d reports", len(sent))
	}
	e := list(sent[0])[0]
	if e["type"] != "runtime.boundsError" || !strings.Contains(e["value"].(string), "index out of range [2] with length 0") {
		t.Errorf("%v", e)
	}
	if fn := frames(e)[len(frames(e))-1]["function"]; fn != testPkg+"TestReportPanicOfARuntimeError.func1" {
		t.Errorf("innermost %v", fn)
	}
	e = list(sent[1])[0]
	fs := frames(e)
	if !strings.HasPrefix(fs[len(fs)-1]["function"].(string), "runtime.mapassign") ||
		innermostOwn(t, e)["function"] != testPkg+"writeNil" {
		t.Errorf("a panic inside the runtime: %v", fs)
	}
	checkFrames(t, e)
}

func TestReportPanicWithoutAPanicDoesNothing(t *testing.T) {
	c := memoryClient(t)
	c.ReportPanic() // no panic: recover sees nothing
	func() {
		defer func() { c.ReportPanic() }() // not the deferred function itself: recover sees nothing
	}()
	if got := catch(func() {
		defer func() { c.ReportPanic() }() // ... so the panic goes on, unreported
		panic("through")
	}); got != "through" {
		t.Fatalf("got %v", got)
	}
	if sent := exceptions(t, c); len(sent) != 0 {
		t.Errorf("%d reports", len(sent))
	}
}

func TestReportPanicOnANilOrClosedClientOnlyPanicsAgain(t *testing.T) {
	var none *telemetry.Client
	err := errors.New("the original")
	if got := catch(func() {
		defer none.ReportPanic()
		panic(err)
	}); got != err {
		t.Fatalf("nil client: re-panicked with %#v", got)
	}
	c := memoryClient(t)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := catch(func() {
		defer c.ReportPanic()
		panic(err)
	}); got != err {
		t.Fatalf("closed client: re-panicked with %#v", got)
	}
	if _, e := c.CaptureError(err); !errors.Is(e, telemetry.ErrShutDown) {
		t.Errorf("CaptureError after Close: %v", e)
	}
	if _, e := c.CapturePanic("x"); !errors.Is(e, telemetry.ErrShutDown) {
		t.Errorf("CapturePanic after Close: %v", e)
	}
}

func TestBadArguments(t *testing.T) {
	c := memoryClient(t)
	if r, e := c.CaptureError(nil); !errors.Is(e, telemetry.ErrInvalidArgument) || r != telemetry.ReportNone {
		t.Errorf("CaptureError(nil): %v, %v", r, e)
	}
	if r, e := c.CapturePanic(nil); !errors.Is(e, telemetry.ErrInvalidArgument) || r != telemetry.ReportNone {
		t.Errorf("CapturePanic(nil): %v, %v", r, e)
	}
	if _, err := telemetry.New(telemetry.WithProduct("x", "1"), telemetry.WithSink(telemetry.SinkMemory),
		telemetry.WithCrashDeadline(-time.Second)); !errors.Is(err, telemetry.ErrInvalidConfig) {
		t.Errorf("a negative deadline: %v", err)
	}
	if _, err := telemetry.New(telemetry.WithProduct("x", "1"), telemetry.WithSink(telemetry.SinkMemory),
		telemetry.WithCrashRateLimits(time.Minute, -1)); !errors.Is(err, telemetry.ErrInvalidConfig) {
		t.Errorf("a negative hourly limit: %v", err)
	}
}

// A library's client and the application's, and a third opted out: one panic, deferred
// to all three, reaches the two enabled ones with the same frames, the third nothing.
func TestSeveralClientsEachUnderItsOwnConsent(t *testing.T) {
	app, lib := memoryClient(t), memoryClient(t, telemetry.WithProduct("lib", "0.4.0"))
	off := memoryClient(t, telemetry.WithEnvironment(map[string]string{"DO_NOT_TRACK": "1"}))
	if off.Enabled() {
		t.Fatal("DO_NOT_TRACK=1 left it on")
	}
	boom := errors.New("shared panic")
	got := catch(func() {
		defer app.ReportPanic()
		defer lib.ReportPanic()
		defer off.ReportPanic()
		panic(boom)
	})
	if got != boom {
		t.Fatalf("re-panicked with %#v", got)
	}
	a, l := exceptions(t, app), exceptions(t, lib)
	if len(a) != 1 || len(l) != 1 {
		t.Fatalf("reports: app %d, lib %d", len(a), len(l))
	}
	if a[0]["$exception_fingerprint"] != l[0]["$exception_fingerprint"] {
		t.Errorf("the clients saw different crashes: %v, %v", list(a[0]), list(l[0]))
	}
	for _, p := range []map[string]any{a[0], l[0]} {
		e := list(p)[0]
		checkFrames(t, e)
		if fn := innermostOwn(t, e)["function"]; fn != testPkg+"TestSeveralClientsEachUnderItsOwnConsent.func1" {
			t.Errorf("innermost own frame %v", fn)
		}
	}
	if events, _ := off.MemoryEvents(); len(events) != 0 {
		t.Errorf("the opted-out client delivered %v", events)
	}
}

// 64 goroutines panic 50 times each, every panic inside its own wrapper that recovers
// the re-panic: one report per fingerprint (here one), at most 20 an hour even when every
// fingerprint is new, every panic re-panicked with its own value, and none held up
// beyond the deadline.
func TestAPanicStormSendsAtMostTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []telemetry.Option
		want int
	}{
		{"default limits, one place", nil, 1},
		{"no per-fingerprint limit", []telemetry.Option{telemetry.WithCrashRateLimits(0, 20)}, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := memoryClient(t, append(tc.opts, telemetry.WithCrashDeadline(500*time.Millisecond))...)
			const goroutines, panics = 64, 50
			var repanicked atomic.Int64
			var slowest atomic.Int64
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; i < panics; i++ {
						want := fmt.Sprintf("storm %d %d", g, i)
						started := time.Now()
						got := catch(func() {
							defer c.ReportPanic()
							panic(want)
						})
						took := time.Since(started)
						for {
							s := slowest.Load()
							if int64(took) <= s || slowest.CompareAndSwap(s, int64(took)) {
								break
							}
						}
						if got == want {
							repanicked.Add(1)
						}
					}
				}(g)
			}
			wg.Wait()
			if n := repanicked.Load(); n != goroutines*panics {
				t.Errorf("%d of %d panics came back with their value", n, goroutines*panics)
			}
			// The deadline bounds each panic's wait; the slack is the CPU the storm itself
			// takes (3,200 reports scrubbed by the debug library on a busy machine, under
			// -race or GOGC=1), not waiting.
			if s := time.Duration(slowest.Load()); s > 500*time.Millisecond+time.Second {
				t.Errorf("a panic was held up %v", s)
			} else {
				t.Logf("the slowest of %d panics took %v (deadline 500 ms)", goroutines*panics, s)
			}
			if sent := exceptions(t, c); len(sent) != tc.want {
				t.Errorf("%d reports, want %d", len(sent), tc.want)
			}
		})
	}
}

// A server's recover middleware reports the panic it survives: handled, never waiting,
// with the panic's frames.
//
//go:noinline
func handle(path string) { panic("no route for " + path) }

func TestCapturePanicInARecoverMiddleware(t *testing.T) {
	c := memoryClient(t)
	var outcome telemetry.Reported
	func() {
		defer func() {
			if v := recover(); v != nil {
				outcome, _ = c.CapturePanic(v)
			}
		}()
		handle("/users/alice@example.com")
	}()
	if outcome != telemetry.ReportQueued {
		t.Fatalf("CapturePanic: %v", outcome)
	}
	p := exceptions(t, c)[0]
	e := list(p)[0]
	if p["$exception_level"] != "error" || e["type"] != "panic" || strings.Contains(e["value"].(string), "alice@") {
		t.Errorf("%v", p)
	}
	checkFrames(t, e)
	fs := frames(e)
	if fs[len(fs)-1]["function"] != testPkg+"handle" {
		t.Errorf("innermost %v", fs[len(fs)-1])
	}
}

// A Close deferred around a crash (the order the documentation shows) waits only what is
// left of the crash deadline: against an endpoint that never answers, the whole crash
// takes the deadline, not the deadline and then the shutdown timeout.
func TestACloseDeferredAroundACrashWaitsOnlyTheDeadline(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0") // listens, never accepts: no answer
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c, err := telemetry.New(
		telemetry.WithProduct("crashtest", "3.1.0"),
		telemetry.WithEndpoint("http://"+silent.Addr().String()),
		telemetry.WithAPIKey("phc_test"),
		telemetry.WithEnvironment(map[string]string{}),
		telemetry.WithUsageReports(false),
		telemetry.WithShutdownTimeout(5*time.Second),
		telemetry.WithCrashDeadline(300*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	got := catch(func() {
		defer c.Close(context.Background())
		defer c.ReportPanic()
		panic("stuck")
	})
	took := time.Since(started)
	if got != "stuck" {
		t.Fatalf("re-panicked with %#v", got)
	}
	if took < 250*time.Millisecond || took > 300*time.Millisecond+400*time.Millisecond {
		t.Errorf("the crash and its Close took %v, want about the 300 ms deadline", took)
	}
	if s := c.Stats(); s.Captured != 1 || s.Sent != 0 || s.DroppedShutdown+s.DroppedFailed != 1 {
		t.Errorf("stats %+v", s)
	}
}
