package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Client captures product-usage events and delivers them through telemetry-core.
//
// Consent is resolved once, in New. When telemetry is off, Capture returns at once without
// calling into the library: no goroutine, no thread, no file, no socket.
//
// When it is on, Capture checks the event, appends it to a small bounded buffer and
// returns; one background goroutine, started by the first Capture, encodes buffered
// events as a JSON array and hands them to the library in a single call, where a worker
// thread batches, anonymizes and sends them. A Capture that finds the buffer full hands
// it over itself, so Go never drops an event: the library's bounded queue decides and
// counts (Stats.DroppedQueueFull). Flush, Stats and Close hand over the buffer first.
//
// A Client is safe for concurrent use. Close it when done; a Client that is garbage
// collected without Close is closed then, within its shutdown timeout.
type Client struct {
	enabled bool // never changes: the hot path reads it without synchronization
	// traceLevel is the finest granularity of the spans recorded (GranularityNone when
	// tracing is off); it never changes, so StartSpan reads it without synchronization.
	traceLevel Granularity
	c          *client
	tr         *tracer
	usage      Usage // Usage returns its address, which keeps the Client reachable
}

// client is the state shared with the sender goroutine. It is separate from Client so the
// goroutine does not keep the Client reachable and its finalizer can run.
type client struct {
	enabled         bool
	decision        Decision
	shutdownTimeout time.Duration
	crashDeadline   time.Duration
	bufferSize      int
	logger          *slog.Logger // WithLogger; nil when none, or once an opted-out New is done

	// crashAt is when this client's last crash report began (monotonic nanoseconds plus
	// one; 0 for none): a Close deferred around that crash waits only what is left of the
	// crash deadline.
	crashAt atomic.Int64

	// hmu guards h: calls into C hold it for reading; Close frees h holding it for writing,
	// so no call can use a freed handle.
	hmu        sync.RWMutex
	h          handle
	final      Stats     // the stats at Close, served once h is gone
	finalSpans SpanStats // the span counters at Close, likewise
	tracing    bool      // spans are recorded: Close shuts the library down even opted out

	// mu guards the buffer and the goroutine's state; it is never held across a C call.
	mu       sync.Mutex
	buf      []Event
	spare    []Event
	idle     bool // the sender goroutine waits for a wake-up (or has not started)
	started  bool
	closed   atomic.Bool // written under mu; read without it on the opted-out path
	asyncErr error       // failures found after Capture returned, for Flush and Close

	// sendMu serializes handing over: events reach the library in the order Capture
	// buffered them, and Flush knows nothing is still in flight once it holds sendMu.
	sendMu sync.Mutex
	enc    []byte

	wake chan struct{}
	quit chan struct{}

	usage usageState // servers started by Usage.Serve, stopped by Close
}

// New creates a client. Consent is resolved here, from the options, the environment and
// the profile's files, and never changes afterwards; see Decision for why.
//
//	client, err := telemetry.New(
//		telemetry.WithProduct("myapp", "1.2.0"),
//		telemetry.WithProfile(telemetry.Chroma),
//		telemetry.WithEndpoint("https://eu.i.posthog.com"),
//		telemetry.WithAPIKey("phc_..."),
//		telemetry.WithLogger(slog.Default()), // optional: delivery failures, once per streak
//	)
//	if err != nil {
//		return err
//	}
//	defer client.Close(context.Background())
//
// Errors: ErrInvalidConfig (e.g. no product, a plain-http endpoint that is not
// loopback, the posthog sink without an endpoint or API key, a WithCAFile file that is
// missing or holds no certificate).
func New(opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.bufferSize < 1 {
		return nil, newError(CodeInvalidConfig, "buffer size %d: at least 1", cfg.bufferSize)
	}
	cfg.Crash.DeadlineMS = cfg.crashDeadline.Milliseconds()
	text, err := json.Marshal(&cfg)
	if err != nil {
		return nil, newError(CodeInvalidConfig, "%v", err)
	}
	// The logger is registered before the library's client is built, so the consent
	// warnings written while it is built are kept for it.
	if cfg.logger != nil {
		acquireLogger(cfg.logger)
	}
	h, err := cNew(text)
	if err != nil {
		if cfg.logger != nil {
			releaseLogger(cfg.logger)
		}
		return nil, err
	}
	in := &client{
		h:               h,
		shutdownTimeout: cfg.shutdownTimeout,
		crashDeadline:   cfg.crashDeadline,
		bufferSize:      cfg.bufferSize,
		logger:          cfg.logger,
		idle:            true,
		wake:            make(chan struct{}, 1),
		quit:            make(chan struct{}),
	}
	err = in.readDecision()
	var tr *tracer
	if err == nil {
		tr, err = in.readTraceConfig()
	}
	if err != nil {
		cFree(h)
		if in.logger != nil {
			releaseLogger(in.logger)
		}
		return nil, err
	}
	in.tracing = tr.level > GranularityNone
	if in.logger != nil {
		if in.enabled || in.tracing {
			drainLogs()
		} else {
			// Opted out and not tracing, the client never logs again (no worker, nothing
			// sent): it hands over the warnings of its build and lets its logger go.
			releaseLogger(in.logger)
			in.logger = nil
		}
	}
	in.buf = make([]Event, 0, in.bufferSize)
	in.spare = make([]Event, 0, in.bufferSize)
	c := &Client{enabled: in.enabled, traceLevel: tr.level, c: in, tr: tr, usage: Usage{in: in}}
	// Long work does not belong on the finalizer goroutine: close on a goroutine of its own.
	runtime.SetFinalizer(c, func(c *Client) { go c.c.close(c.c.shutdownTimeout) })
	return c, nil
}

func (in *client) readDecision() error {
	on, err := cIsEnabled(in.h)
	if err != nil {
		return err
	}
	text, err := cDecision(in.h)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(text, &in.decision); err != nil {
		return newError(CodeInvalidJSON, "decision from the library: %v", err)
	}
	in.enabled = on
	return nil
}

// Enabled reports whether telemetry is on for this client. It never changes.
func (c *Client) Enabled() bool { return c.enabled }

// Decision says whether telemetry is on and why: the source that decided, every source
// considered and any warning about values that were not understood (which mean off).
func (c *Client) Decision() Decision { return c.c.decision }

// Capture records an event with its properties. Undeclared values are anonymized by type
// (strings hashed, numbers rounded); wrap a value with Safe, Exact, Hashed, Number or Text
// to declare how it is treated.
//
// It never blocks on I/O. When telemetry is off it returns nil at once. The properties map
// is read after Capture returns, when the buffered event is encoded: do not modify it
// afterwards (posthog-go's Enqueue has the same contract).
//
// Errors: ErrInvalidEvent (empty or over-long name, a value that cannot be encoded),
// ErrInvalidUTF8 (name), ErrShutDown (after Close).
func (c *Client) Capture(event string, props map[string]any) error {
	if !c.enabled {
		return c.c.offCapture()
	}
	err := c.c.capture(Event{Name: event, Properties: props})
	runtime.KeepAlive(c)
	return err
}

// CaptureEvent is Capture for an event with a batch rule:
//
//	client.CaptureEvent(telemetry.Event{
//		Name:       "collection_add",
//		Properties: map[string]any{"collection_uuid": id, "add_amount": telemetry.Exact(n)},
//		Batch:      &telemetry.BatchRule{Key: id + "collection_add", MaxSize: 3000, Sum: []string{"add_amount"}},
//	})
func (c *Client) CaptureEvent(e Event) error {
	if !c.enabled {
		return c.c.offCapture()
	}
	err := c.c.capture(e)
	runtime.KeepAlive(c)
	return err
}

func (in *client) offCapture() error {
	if in.closed.Load() {
		return errClosed("capture")
	}
	return nil
}

func errClosed(what string) error {
	return newError(CodeShutDown, "%s after Close", what)
}

func (in *client) capture(e Event) error {
	if err := checkEvent(&e); err != nil {
		return err
	}
	in.mu.Lock()
	if in.closed.Load() {
		in.mu.Unlock()
		return errClosed("capture")
	}
	if len(in.buf) < in.bufferSize {
		in.buf = append(in.buf, e)
		wake := in.idle
		if wake {
			in.idle = false
			if !in.started {
				in.started = true
				go in.sender()
			}
		}
		in.mu.Unlock()
		if wake {
			in.wake <- struct{}{} // capacity 1, and only one wake-up per idle period
		}
		return nil
	}
	in.mu.Unlock()
	// Full: hand the buffer over on this goroutine. This is the backpressure; the library's
	// bounded queue then decides what to keep and counts what it drops.
	in.sendMu.Lock()
	defer in.sendMu.Unlock()
	in.mu.Lock()
	if in.closed.Load() {
		in.mu.Unlock()
		return errClosed("capture")
	}
	batch := append(in.takeLocked(), e)
	in.mu.Unlock()
	in.deliver(batch)
	return nil
}

// takeLocked swaps the buffer for the spare one; mu is held.
func (in *client) takeLocked() []Event {
	batch := in.buf
	if in.spare != nil {
		in.buf, in.spare = in.spare, nil
	} else {
		in.buf = make([]Event, 0, in.bufferSize)
	}
	return batch
}

// sender is the background goroutine: woken when the buffer stops being empty, it hands
// everything over and waits again. It exits at Close.
//
// With a logger, it also takes the library's log records after each handover and, while
// the library still holds events, every logPollInterval, plus once after it holds none
// (a failure is counted a moment before its warning is written). So a failure is
// reported within a few seconds even when nothing else calls into the library; an idle
// client wakes for nothing.
func (in *client) sender() {
	var poll *time.Timer
	var tick <-chan time.Time
	last := false // the one poll after the library's queue emptied is armed
	for {
		polled := false
		select {
		case <-in.wake:
		case <-tick:
			polled = true
		case <-in.quit:
			if poll != nil {
				poll.Stop()
			}
			return
		}
		for in.drainOnce(true) {
		}
		if in.logger == nil {
			continue
		}
		drainLogs()
		if poll != nil {
			poll.Stop()
		}
		poll, tick = nil, nil
		switch {
		case in.libraryQueued() > 0:
			last = false
		case polled && last:
			continue // that was the last poll: sleep until events come
		default:
			last = true
		}
		poll = time.NewTimer(logPollInterval)
		tick = poll.C
	}
}

// drainOnce hands the current buffer over; it reports whether there was anything. With
// markIdle, an empty buffer puts the sender back to sleep.
func (in *client) drainOnce(markIdle bool) bool {
	in.sendMu.Lock()
	defer in.sendMu.Unlock()
	in.mu.Lock()
	if len(in.buf) == 0 {
		if markIdle {
			in.idle = true
		}
		in.mu.Unlock()
		return false
	}
	batch := in.takeLocked()
	in.mu.Unlock()
	in.deliver(batch)
	return true
}

// drain hands over everything captured so far and waits until it is in the library.
func (in *client) drain() {
	if in.enabled {
		in.drainOnce(false)
	}
}

// maxCrossing bounds one capture_batch call; larger batches are split. Far below the C
// ABI's 64 MiB limit, so a few large events cannot push a whole batch over it.
const maxCrossing = 4 << 20

// deliver encodes batch and hands it to the library; sendMu is held. Failures found here,
// after Capture returned, are kept for the next Flush or Close.
func (in *client) deliver(batch []Event) {
	var errs []error
	b := append(in.enc[:0], '[')
	n := 0
	flush := func() {
		if n == 0 {
			return
		}
		b = append(b, ']')
		if err := in.crossBatch(b); err != nil {
			errs = append(errs, err)
		}
		b = append(b[:0], '[')
		n = 0
	}
	for i := range batch {
		mark := len(b)
		if n > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendEvent(b, &batch[i]); err != nil {
			errs = append(errs, err)
			b = b[:mark]
			continue
		}
		n++
		if len(b) >= maxCrossing {
			flush()
		}
	}
	flush()
	if cap(b) <= 2*maxCrossing {
		in.enc = b[:0]
	}
	clear(batch)
	in.mu.Lock()
	if in.spare == nil && cap(batch) <= 2*in.bufferSize {
		in.spare = batch[:0]
	}
	if len(errs) > 0 {
		in.asyncErr = errors.Join(append([]error{in.asyncErr}, errs...)...)
	}
	in.mu.Unlock()
}

func (in *client) crossBatch(events []byte) error {
	in.hmu.RLock()
	defer in.hmu.RUnlock()
	if in.h == nil {
		return errClosed("capture")
	}
	return cCaptureBatch(in.h, events)
}

func (in *client) takeAsyncErr() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	err := in.asyncErr
	in.asyncErr = nil
	return err
}

// DefaultFlushTimeout bounds Flush when its context has no deadline.
const DefaultFlushTimeout = 30 * time.Second

// flushWith runs one of the library's flushes (events or spans) with ctx's deadline
// (DefaultFlushTimeout without one) and maps its timeout to context.DeadlineExceeded when
// that deadline was the limit. what names the call in an ErrShutDown.
func (c *Client) flushWith(ctx context.Context, what string, flush func(handle, time.Duration) error) error {
	in := c.c
	timeout := DefaultFlushTimeout
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		timeout = time.Until(deadline)
	}
	in.hmu.RLock()
	var err error
	if in.h == nil {
		err = errClosed(what)
	} else {
		err = flush(in.h, timeout)
	}
	in.hmu.RUnlock()
	if in.logger != nil {
		// What went wrong during the flush was logged before it returned.
		drainLogs()
	}
	var te *Error
	if hasDeadline && errors.As(err, &te) && te.Code == CodeTimeout {
		te.cause = context.DeadlineExceeded
	}
	return err
}

// Flush sends everything captured so far, partial batches included, and waits until it
// is delivered or ctx's deadline (DefaultFlushTimeout without one) passes.
//
// It returns nil only when every event captured before it (and since the previous Flush)
// was delivered. Errors: ErrTimeout (also matching context.DeadlineExceeded when ctx's
// deadline was the limit; what is left goes out later), ErrNotDelivered (events were
// dropped: refused, out of retries or queue full; Stats says which), ErrShutDown (after
// Close), the context's error if it is already done, and failures found after an earlier
// Capture returned.
func (c *Client) Flush(ctx context.Context) error {
	defer runtime.KeepAlive(c)
	in := c.c
	if err := ctx.Err(); err != nil {
		return err
	}
	if in.closed.Load() {
		return errClosed("flush")
	}
	if !c.enabled {
		return nil
	}
	in.drain()
	err := c.flushWith(ctx, "flush", cFlush)
	return errors.Join(in.takeAsyncErr(), err)
}

// Close sends what it can within ctx's deadline (the shutdown timeout, 1 s by default,
// without one), stops the background work and frees the library's client. What could not
// go out is counted in Stats.DroppedShutdown. Later Captures and Flushes return
// ErrShutDown; Decision and Stats keep working. Close is idempotent: later calls return
// nil.
//
// Deferred around a crash that ReportPanic reported (defer client.Close first, then defer
// client.ReportPanic), Close waits only what is left of the crash deadline: the crash is
// delayed by the deadline at most, not by the deadline and then the shutdown timeout.
//
// It returns failures found after an earlier Capture returned, if any.
func (c *Client) Close(ctx context.Context) error {
	timeout := c.c.shutdownTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	if left, ok := c.c.crashWindowLeft(); ok && left < timeout && panicking() {
		// Deferred around a crash that ReportPanic reported: the crash already had its
		// deadline, and a dying program must not wait a second time.
		timeout = left
	}
	err := c.c.close(timeout)
	runtime.SetFinalizer(c, nil)
	runtime.KeepAlive(c)
	return err
}

func (in *client) close(timeout time.Duration) error {
	in.mu.Lock()
	if in.closed.Load() {
		in.mu.Unlock()
		return nil
	}
	in.closed.Store(true)
	in.mu.Unlock()
	// Everything captured before Close reaches the library before it shuts down.
	in.drain()
	close(in.quit)
	in.hmu.Lock()
	in.closeServers()
	var err error
	if in.enabled || in.tracing {
		// Events and spans share the deadline: the library sends both until it passes.
		err = cShutdown(in.h, timeout)
	}
	if text, e := cStats(in.h); e == nil {
		_ = json.Unmarshal(text, &in.final)
	}
	if in.tracing {
		if text, e := cSpanStats(in.h); e == nil {
			_ = json.Unmarshal(text, &in.finalSpans)
		}
	}
	cFree(in.h)
	in.h = nil
	in.hmu.Unlock()
	if in.logger != nil {
		// After the shutdown, so what it logged (events it could not send) is handed over;
		// without hmu held, so a Handler may call Stats.
		releaseLogger(in.logger)
	}
	return errors.Join(in.takeAsyncErr(), err)
}

// Stats returns the delivery counters, after handing over what Capture buffered so the
// counts include every Capture that returned. After Close they are the final counts. An
// opted-out client counts nothing.
func (c *Client) Stats() Stats {
	defer runtime.KeepAlive(c)
	in := c.c
	if !c.enabled {
		return Stats{}
	}
	in.drain()
	in.hmu.RLock()
	defer in.hmu.RUnlock()
	if in.h == nil {
		return in.final
	}
	var s Stats
	if text, err := cStats(in.h); err == nil {
		_ = json.Unmarshal(text, &s)
	}
	return s
}

// Preview returns exactly what would be sent for e — anonymized, with the context, as a
// PostHog batch item — without sending it, whatever the consent decision.
func (c *Client) Preview(e Event) (map[string]any, error) {
	defer runtime.KeepAlive(c)
	if err := checkEvent(&e); err != nil {
		return nil, err
	}
	b, err := appendEvent(nil, &e)
	if err != nil {
		return nil, err
	}
	c.c.hmu.RLock()
	defer c.c.hmu.RUnlock()
	if c.c.h == nil {
		return nil, errClosed("preview")
	}
	text, err := cPreview(c.c.h, b)
	if err != nil {
		return nil, err
	}
	var item map[string]any
	return item, decodeExact(text, &item)
}

// MemoryEvents returns what a client created WithSink(SinkMemory) has delivered so far,
// in order, as PostHog batch items (anonymized and batched). Flush first to deliver what
// is queued. Numbers are json.Number, so integers and floats stay distinct.
//
// Errors: ErrNoMemorySink, ErrShutDown (after Close).
func (c *Client) MemoryEvents() ([]map[string]any, error) {
	defer runtime.KeepAlive(c)
	c.c.hmu.RLock()
	defer c.c.hmu.RUnlock()
	if c.c.h == nil {
		return nil, errClosed("memory events")
	}
	text, err := cMemoryEvents(c.c.h)
	if err != nil {
		return nil, err
	}
	var events []map[string]any
	return events, decodeExact(text, &events)
}

func decodeExact(text []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(text))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return newError(CodeInvalidJSON, "from the library: %v", err)
	}
	return nil
}

// Version is the library's (telemetry-core's) version; empty in a build without it
// (CGO_ENABLED=0, or a platform the module carries no library for).
func Version() string { return coreVersion() }

// anonymize runs the library's anonymization of one value; the test vectors use it.
func anonymize(request []byte) ([]byte, error) { return cAnonymize(request) }
