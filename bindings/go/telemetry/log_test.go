//go:build cgo

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// recorder is a slog.Handler that keeps what it is given.
type recorder struct {
	mu      sync.Mutex
	level   slog.Level
	records []slog.Record
}

func (h *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *recorder) WithGroup(string) slog.Handler                { return h }

func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// matching returns the records whose message contains substr.
func (h *recorder) matching(substr string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.records {
		if strings.Contains(r.Message, substr) {
			out = append(out, r)
		}
	}
	return out
}

func (h *recorder) all() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), h.records...)
}

func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// waitLogsHandedOver waits until no goroutine is handing records to the loggers and none
// are waiting in Go: a Close may leave its records to a sender goroutine busy handing
// over others.
func waitLogsHandedOver(t *testing.T) {
	t.Helper()
	idle := waitFor(10*time.Second, func() bool {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return !logs.dispatching && len(logs.pending) == 0
	})
	if !idle {
		t.Fatal("log records are still being handed over after 10 s")
	}
}

// refusedPort binds a loopback port without listening and holds it for the test: a
// connection to it is refused, and no other test or process can take the port meanwhile.
func refusedPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(fd)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// A fixed identity: without one (and without HOME) the worker warns that the install id is
// kept in memory only, which would add a record the tests below do not expect.
var testIdentity = WithIdentity("0d7b2a8e-5c1f-4f4e-9a51-2f8c3b6d7e90",
	"11a245dd53334a50626b2356ccff3083922976f8016efbfb387ac3ab23a0dcf7")

// refusedClient is an enabled client that sends to a refused loopback port: one retry, a
// short backoff.
func refusedClient(t *testing.T, opts ...Option) (*Client, string) {
	t.Helper()
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", refusedPort(t))
	base := []Option{
		WithProduct("gotest", "1.0.0"),
		WithEnvironment(map[string]string{}),
		testIdentity,
		WithEndpoint(endpoint),
		WithAPIKey("phc_test"),
		WithMaxRetries(1),
		WithBackoffBase(10 * time.Millisecond),
	}
	c, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, endpoint
}

func TestFlushReportsEventsDroppedAtARefusedPortWithOneWarning(t *testing.T) {
	h := &recorder{level: slog.LevelDebug}
	c, endpoint := refusedClient(t, WithLogger(slog.New(h)))
	for _, name := range []string{"first", "second"} {
		if err := c.Capture(name, nil); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Flush(ctxTimeout(t, 30*time.Second))
	if !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("Flush: %v, want ErrNotDelivered", err)
	}
	var te *Error
	if !errors.As(err, &te) || te.Code != CodeNotDelivered || !strings.Contains(te.Message, "2") {
		t.Errorf("Flush error %#v: want CodeNotDelivered saying how many", err)
	}
	if s := c.Stats(); s.DroppedFailed != 2 || s.Sent != 0 || s.Queued != 0 {
		t.Errorf("stats %+v, want the 2 events in DroppedFailed", s)
	}
	// The endpoint is still down: the same streak, so a second failure logs nothing more.
	if err := c.Capture("third", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctxTimeout(t, 30*time.Second)); !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("second Flush: %v, want ErrNotDelivered", err)
	}
	if s := c.Stats(); s.DroppedFailed != 3 {
		t.Errorf("stats %+v, want 3 in DroppedFailed", s)
	}
	if err := c.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitLogsHandedOver(t)

	var warnings []slog.Record
	for _, r := range h.all() {
		if r.Level >= slog.LevelWarn {
			warnings = append(warnings, r)
		}
	}
	if len(warnings) != 1 {
		t.Fatalf("%d warnings, want exactly 1: %v", len(warnings), warnings)
	}
	w := warnings[0]
	if !strings.Contains(w.Message, "dropped 2 events") || !strings.Contains(w.Message, endpoint) {
		t.Errorf("the warning does not say what was dropped where: %q", w.Message)
	}
	if strings.Contains(w.Message, "retrying") {
		t.Errorf("the warning promises a retry after giving up: %q", w.Message)
	}
	if w.Level != slog.LevelWarn || attr(w, "target") != "telemetry_core::worker" {
		t.Errorf("level %v, target %q", w.Level, attr(w, "target"))
	}
	if age := time.Since(w.Time); age < 0 || age > time.Minute {
		t.Errorf("the record's time %v is not when it was written", w.Time)
	}
}

// TestAFailureOnAnIdleClientIsLoggedWithinSeconds: nobody calls Flush or Close, so only the
// sender goroutine's poll can hand the warning over; afterwards the idle client stops
// calling into the library.
func TestAFailureOnAnIdleClientIsLoggedWithinSeconds(t *testing.T) {
	h := &recorder{}
	c, _ := refusedClient(t, WithLogger(slog.New(h)), WithFlushInterval(50*time.Millisecond))
	start := time.Now()
	if err := c.Capture("lonely", nil); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return len(h.matching("dropped 1 event")) == 1 }) {
		t.Fatalf("no warning within 5 s of the capture: %v", h.all())
	}
	t.Logf("the warning arrived %v after the capture", time.Since(start).Round(time.Millisecond))
	// The library holds nothing now: after at most two more polls, the sender sleeps.
	time.Sleep(2*logPollInterval + logPollInterval/2)
	before := crossings.Load()
	time.Sleep(logPollInterval + logPollInterval/2)
	if n := crossings.Load() - before; n != 0 {
		t.Errorf("an idle client called into the library %d times in %v", n, logPollInterval+logPollInterval/2)
	}
}

func TestConsentWarningsOfAnOptedOutClientReachItsLoggerAtNew(t *testing.T) {
	h := &recorder{}
	logger := slog.New(h)
	c, err := New(WithProduct("gotest", "1"), WithProfile(Chroma), WithSink(SinkMemory),
		WithEnvironment(map[string]string{"ANONYMIZED_TELEMETRY": "maybe"}), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if c.Enabled() {
		t.Fatal("an unrecognized ANONYMIZED_TELEMETRY left telemetry on")
	}
	// Handed over before New returned, on the caller's goroutine.
	got := h.matching("ANONYMIZED_TELEMETRY")
	if len(got) != 1 || got[0].Level != slog.LevelWarn || !strings.Contains(got[0].Message, `"maybe"`) ||
		!strings.HasPrefix(attr(got[0], "target"), "telemetry_core") {
		t.Fatalf("records %v, want one warning naming the variable and its value", h.all())
	}
	// Opted out, it never logs again: no goroutine, and its logger is let go at once.
	for i := 0; i < 10; i++ {
		_ = c.Capture("e", nil)
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.c.mu.Lock()
	started := c.c.started
	c.c.mu.Unlock()
	logs.mu.Lock()
	_, registered := logs.users[logger]
	logs.mu.Unlock()
	if started || registered || c.c.logger != nil {
		t.Errorf("opted out: sender started %v, logger still registered %v", started, registered)
	}
}

func TestWithoutALoggerNothingIsKeptOrPrinted(t *testing.T) {
	// Records must not fall back to slog's default logger (nor to stderr).
	h := &recorder{level: slog.LevelDebug}
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(h))
	c, _ := refusedClient(t)
	if err := c.Capture("e", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctxTimeout(t, 30*time.Second)); !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("Flush: %v, want ErrNotDelivered", err)
	}
	off, err := New(WithProduct("gotest", "1"), WithProfile(Chroma), WithSink(SinkMemory),
		WithEnvironment(map[string]string{"ANONYMIZED_TELEMETRY": "maybe"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{off, c} {
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if r := h.all(); len(r) != 0 {
		t.Errorf("records reached slog's default logger: %v", r)
	}
	logs.mu.Lock()
	users := len(logs.users)
	logs.mu.Unlock()
	if users != 0 {
		t.Errorf("%d loggers registered with no client using one", users)
	}
}

func TestEveryDistinctLoggerOfALiveClientReceivesEachRecordOnce(t *testing.T) {
	shared, other := &recorder{}, &recorder{}
	sharedLogger := slog.New(shared)
	a := memoryClient(t, WithLogger(sharedLogger))
	b := memoryClient(t, WithLogger(sharedLogger))
	_ = memoryClient(t, WithLogger(slog.New(other)))
	off, err := New(WithProduct("gotest", "1"), WithProfile(Chroma), WithSink(SinkMemory),
		WithEnvironment(map[string]string{"ANONYMIZED_TELEMETRY": "maybe"}), WithLogger(sharedLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close(context.Background())
	// The log is process-wide: the live clients' loggers hear it too, each distinct one once.
	if n, m := len(shared.matching("ANONYMIZED_TELEMETRY")), len(other.matching("ANONYMIZED_TELEMETRY")); n != 1 || m != 1 {
		t.Errorf("shared logger got the warning %d times, the other %d; want 1 and 1", n, m)
	}
	for _, c := range []*Client{a, b} {
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	logs.mu.Lock()
	_, stillShared := logs.users[sharedLogger]
	logs.mu.Unlock()
	if stillShared {
		t.Error("the shared logger is still registered after its clients closed")
	}
}

// reentrant is a Handler that calls back into the package for each record, as a host
// might (reading the stats to log them, say).
type reentrant struct {
	recorder
	client *Client
}

func (h *reentrant) Handle(ctx context.Context, r slog.Record) error {
	_ = h.client.Stats()
	_ = h.client.Flush(context.Background())
	return h.recorder.Handle(ctx, r)
}

func TestAHandlerMayCallIntoThePackage(t *testing.T) {
	h := &reentrant{}
	logger := slog.New(h)
	h.client = memoryClient(t, WithLogger(logger))
	done := make(chan error, 1)
	go func() {
		c, err := New(WithProduct("gotest", "1"), WithProfile(Chroma), WithSink(SinkMemory),
			WithEnvironment(map[string]string{"ANONYMIZED_TELEMETRY": "maybe"}), WithLogger(logger))
		if err == nil {
			err = c.Close(context.Background())
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("New with a Handler that calls Flush did not return: deadlock")
	}
	waitLogsHandedOver(t)
	if n := len(h.matching("ANONYMIZED_TELEMETRY")); n != 1 {
		t.Errorf("the warning was handled %d times, want 1", n)
	}
}

func TestRecordsKeepTheirLevelTimeAndTarget(t *testing.T) {
	h := &recorder{level: slog.LevelDebug - 4}
	l := slog.New(h)
	at := time.Date(2026, 12, 1, 9, 0, 0, 123e6, time.UTC)
	for _, level := range []string{"error", "warn", "info", "debug", "trace"} {
		logRecord{Level: level, Target: "telemetry_core::worker", Message: level, UnixMS: at.UnixMilli()}.emit(l)
	}
	want := []slog.Level{slog.LevelError, slog.LevelWarn, slog.LevelInfo, slog.LevelDebug, slog.LevelDebug - 4}
	got := h.all()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.Level != want[i] || !r.Time.Equal(at) || attr(r, "target") != "telemetry_core::worker" {
			t.Errorf("record %d: level %v time %v target %q", i, r.Level, r.Time, attr(r, "target"))
		}
	}
	// A logger's own level is honoured: a Warn logger is not handed infos.
	warnOnly := &recorder{level: slog.LevelWarn}
	logRecord{Level: "info", Message: "works again"}.emit(slog.New(warnOnly))
	if n := len(warnOnly.all()); n != 0 {
		t.Errorf("a warn-level logger was handed %d infos", n)
	}
}
