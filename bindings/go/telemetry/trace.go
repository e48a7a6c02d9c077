package telemetry

// Spans for the operator's OpenTelemetry collector, built in Go memory: ids, clock,
// attributes, events and the context.Context that carries the current span stay in Go,
// and an ended span crosses into the library once, encoded (trace_wire.go). The
// configuration (granularity, sampler) is read once, in New, so a span finer than the
// configured granularity, or any span while tracing is off, costs a comparison: no
// allocation, no cgo call.
//
// The current span travels in context.Context under one key of this package, shared by
// every client in the process (OpenTelemetry's model): a span started from a context
// that carries another client's span takes it as its parent, and each client exports its
// own spans to its own endpoint. A context with no span of ours but an OpenTelemetry span
// (go.opentelemetry.io/otel/trace) joins the host's trace.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	oteltrace "go.opentelemetry.io/otel/trace"
)

// TraceID identifies a trace: 16 bytes, never all zero in a valid span context.
type TraceID [16]byte

// SpanID identifies a span: 8 bytes, never all zero in a valid span context.
type SpanID [8]byte

// String is the id as 32 lowercase hex digits.
func (t TraceID) String() string { return hex.EncodeToString(t[:]) }

// IsValid reports whether the id is not all zero.
func (t TraceID) IsValid() bool { return t != TraceID{} }

// String is the id as 16 lowercase hex digits.
func (s SpanID) String() string { return hex.EncodeToString(s[:]) }

// IsValid reports whether the id is not all zero.
func (s SpanID) IsValid() bool { return s != SpanID{} }

// SpanContext is what identifies a span to its children and to other processes: the
// W3C Trace Context (traceparent, tracestate).
type SpanContext struct {
	TraceID TraceID
	SpanID  SpanID
	// Sampled is the traceparent's sampled flag: whether the trace is recorded.
	Sampled bool
	// Remote says the span context came from another process (a traceparent header).
	Remote bool
	// TraceState is the W3C tracestate header's value, passed on unchanged.
	TraceState string
}

// IsValid reports whether both ids are set.
func (sc SpanContext) IsValid() bool { return sc.TraceID.IsValid() && sc.SpanID.IsValid() }

// SpanKind says what a span stands for; the zero value is SpanKindInternal.
type SpanKind uint8

// The span kinds, numbered as OTLP and the wire format number them.
const (
	SpanKindInternal SpanKind = iota
	SpanKindServer
	SpanKindClient
	SpanKindProducer
	SpanKindConsumer
)

// StatusCode is a span's status; the zero value is StatusUnset.
type StatusCode uint8

// The status codes.
const (
	StatusUnset StatusCode = iota
	StatusOK
	StatusError
)

// Span limits, as the OpenTelemetry SDKs' defaults: attributes beyond them are dropped.
const (
	// MaxSpanAttributes is how many distinct attribute keys a span keeps.
	MaxSpanAttributes = 128
	// MaxSpanEvents is how many events a span keeps.
	MaxSpanEvents = 128
)

// Attribute is a key and a typed value: a string, a bool, a 64-bit integer or a float.
// Make one with StringAttr, BoolAttr, IntAttr, Int64Attr, Float64Attr or Attr.
type Attribute struct {
	Key string
	typ attrType
	num uint64
	str string
}

type attrType uint8

// The wire's attribute types.
const (
	attrString attrType = 1
	attrBool   attrType = 2
	attrInt    attrType = 3
	attrFloat  attrType = 4
)

// StringAttr is a string attribute.
func StringAttr(key, value string) Attribute {
	return Attribute{Key: key, typ: attrString, str: value}
}

// BoolAttr is a bool attribute.
func BoolAttr(key string, value bool) Attribute {
	a := Attribute{Key: key, typ: attrBool}
	if value {
		a.num = 1
	}
	return a
}

// IntAttr is an integer attribute.
func IntAttr(key string, value int) Attribute {
	return Attribute{Key: key, typ: attrInt, num: uint64(int64(value))}
}

// Int64Attr is an integer attribute.
func Int64Attr(key string, value int64) Attribute {
	return Attribute{Key: key, typ: attrInt, num: uint64(value)}
}

// Float64Attr is a float attribute.
func Float64Attr(key string, value float64) Attribute {
	return Attribute{Key: key, typ: attrFloat, num: math.Float64bits(value)}
}

// Attr is an attribute of any value: strings, bools, integers (unsigned ones that fit an
// int64) and floats keep their type; anything else is formatted as a string (an error by
// its Error method, a fmt.Stringer by String, the rest as fmt.Sprint does).
func Attr(key string, value any) Attribute {
	switch v := value.(type) {
	case string:
		return StringAttr(key, v)
	case bool:
		return BoolAttr(key, v)
	case int:
		return IntAttr(key, v)
	case int8:
		return Int64Attr(key, int64(v))
	case int16:
		return Int64Attr(key, int64(v))
	case int32:
		return Int64Attr(key, int64(v))
	case int64:
		return Int64Attr(key, v)
	case uint8:
		return Int64Attr(key, int64(v))
	case uint16:
		return Int64Attr(key, int64(v))
	case uint32:
		return Int64Attr(key, int64(v))
	case uint:
		if uint64(v) <= math.MaxInt64 {
			return Int64Attr(key, int64(v))
		}
	case uint64:
		if v <= math.MaxInt64 {
			return Int64Attr(key, int64(v))
		}
	case float32:
		return Float64Attr(key, float64(v))
	case float64:
		return Float64Attr(key, v)
	case nil:
		return StringAttr(key, "")
	}
	return StringAttr(key, safeSprint(value))
}

// safeSprint formats v as fmt does, a panicking method included (fmt catches it and
// describes it).
func safeSprint(v any) string { return fmt.Sprint(v) }

// Value is the attribute's value: a string, bool, int64 or float64 (nil for the zero
// Attribute).
func (a Attribute) Value() any {
	switch a.typ {
	case attrString:
		return a.str
	case attrBool:
		return a.num != 0
	case attrInt:
		return int64(a.num)
	case attrFloat:
		return math.Float64frombits(a.num)
	}
	return nil
}

// SpanOption describes a span at StartSpan: WithSpanKind, WithAttributes,
// WithRemoteParent, WithNewRoot, WithStartTime.
type SpanOption struct {
	what   spanOptionKind
	kind   SpanKind
	attrs  []Attribute
	parent SpanContext
	start  time.Time
}

type spanOptionKind uint8

const (
	optKind spanOptionKind = iota + 1
	optAttributes
	optParent
	optNewRoot
	optStart
)

// WithSpanKind says what the span stands for (default SpanKindInternal).
func WithSpanKind(kind SpanKind) SpanOption { return SpanOption{what: optKind, kind: kind} }

// WithAttributes sets attributes when the span starts (a sampler-independent
// description: the slice is copied only when the span is recorded).
func WithAttributes(attrs ...Attribute) SpanOption {
	return SpanOption{what: optAttributes, attrs: attrs}
}

// WithRemoteParent makes sc the span's parent, as a span of another process (from a
// traceparent header: ParseTraceParent), whatever the context carries. An invalid sc is
// ignored.
func WithRemoteParent(sc SpanContext) SpanOption {
	sc.Remote = true
	return SpanOption{what: optParent, parent: sc}
}

// WithNewRoot starts a new trace, whatever the context carries.
func WithNewRoot() SpanOption { return SpanOption{what: optNewRoot} }

// WithStartTime sets the span's start time (default: when StartSpan is called).
func WithStartTime(t time.Time) SpanOption { return SpanOption{what: optStart, start: t} }

// spanData is what an ended span sends: exactly the wire format's fields.
type spanData struct {
	traceID      TraceID
	spanID       SpanID
	parentID     SpanID
	sampled      bool
	parentRemote bool
	kind         SpanKind
	startNanos   uint64
	endNanos     uint64
	status       StatusCode
	statusMsg    string
	name         string
	traceState   string
	attrs        []Attribute
	events       []spanEvent
}

type spanEvent struct {
	name  string
	nanos uint64
	attrs []Attribute
}

// TraceSpan is one operation of a trace. Start one with Client.StartSpan and End it; a nil
// *TraceSpan is a valid span that does nothing (what StartSpan returns for a span that is not
// recorded), so callers never check. A TraceSpan is safe for concurrent use.
type TraceSpan struct {
	tr        *tracer // nil for a span context carried without a span (a remote parent)
	recording bool    // sampled and ours: End sends it; never changes
	start     time.Time

	mu    sync.Mutex
	ended bool
	d     spanData
	inl   [4]Attribute // the first attributes, without an allocation of their own

	// text holds the strings of StartSpan's options (own): written once each, never
	// changed, so the strings made from it stay valid.
	text    [128]byte
	textLen int
}

// tracer is a client's span state, read once in New.
type tracer struct {
	in      *client
	level   Granularity
	sampler sampler
	config  TraceConfig
	refused atomic.Uint64
}

// spanKey is the context key of the current span, shared by every client.
type spanKey struct{}

// SpanFromContext returns the current span of ctx: the span of the last StartSpan (of
// any client) that made ctx, a remote parent ContextWithRemoteSpanContext put there, or
// nil (a span that does nothing) when there is none.
func SpanFromContext(ctx context.Context) *TraceSpan {
	s, _ := ctx.Value(spanKey{}).(*TraceSpan)
	return s
}

// ContextWithSpan returns a copy of ctx carrying span as the current span; a nil span
// leaves ctx as it is.
func ContextWithSpan(ctx context.Context, span *TraceSpan) context.Context {
	if span == nil {
		return ctx
	}
	return context.WithValue(ctx, spanKey{}, span)
}

// ContextWithRemoteSpanContext returns a copy of ctx whose spans are children of sc, a
// span of another process (ParseTraceParent, ExtractTraceContext). An invalid sc leaves
// ctx as it is.
func ContextWithRemoteSpanContext(ctx context.Context, sc SpanContext) context.Context {
	if !sc.IsValid() {
		return ctx
	}
	sc.Remote = true
	s := &TraceSpan{}
	s.d.traceID, s.d.spanID, s.d.sampled, s.d.traceState = sc.TraceID, sc.SpanID, sc.Sampled, sc.TraceState
	s.ended = true
	return context.WithValue(ctx, spanKey{}, s)
}

// SpanContextFromContext is the span context a span started from ctx would take as its
// parent: the current span's (ours, or a remote one), else the host's OpenTelemetry
// span's; the zero SpanContext when there is none.
func SpanContextFromContext(ctx context.Context) SpanContext {
	if s := SpanFromContext(ctx); s != nil {
		return s.SpanContext()
	}
	if osc := oteltrace.SpanContextFromContext(ctx); osc.IsValid() {
		return SpanContext{
			TraceID:    TraceID(osc.TraceID()),
			SpanID:     SpanID(osc.SpanID()),
			Sampled:    osc.IsSampled(),
			Remote:     osc.IsRemote(),
			TraceState: osc.TraceState().String(),
		}
	}
	return SpanContext{}
}

// TraceConfig returns the observability configuration the client resolved in New; it
// never changes.
func (c *Client) TraceConfig() TraceConfig {
	cfg := c.tr.config
	cfg.Headers = append([]string(nil), cfg.Headers...)
	cfg.Warnings = append([]string(nil), cfg.Warnings...)
	origins := make(map[string]TraceOrigin, len(cfg.Origins))
	for k, v := range cfg.Origins {
		origins[k] = v
	}
	cfg.Origins = origins
	return cfg
}

// Tracing reports whether a span declared at granularity g would be recorded (before
// sampling): the comparison StartSpan makes.
func (c *Client) Tracing(g Granularity) bool {
	return g != 0 && g != GranularityNone && g <= c.traceLevel
}

// StartSpan starts a span named name, declared at granularity g, and returns a copy of ctx
// carrying it (for the spans started inside it) and the span, to End. Its parent is the
// current span of ctx (any client's), else the host's OpenTelemetry span in ctx, else
// none (a new trace); WithRemoteParent and WithNewRoot choose otherwise.
//
// A span finer than the configured granularity, or any span while tracing is off (no
// endpoint, GranularityNone, disabled) or after Close, is not recorded: StartSpan returns
// ctx unchanged and a nil *TraceSpan, whose methods do nothing, at the cost of a comparison.
// A span the sampler drops is not sent but still carries its context, so its children and
// the requests it makes (HTTPTransport) say "not sampled" downstream.
//
//	ctx, span := client.StartSpan(ctx, "collection.add", telemetry.GranularityOperation,
//		telemetry.WithAttributes(telemetry.IntAttr("ids_count", len(ids))))
//	defer span.End()
func (c *Client) StartSpan(ctx context.Context, name string, g Granularity, opts ...SpanOption) (context.Context, *TraceSpan) {
	if g > c.traceLevel || g <= GranularityNone {
		return ctx, nil
	}
	return c.tr.start(ctx, name, opts)
}

// start makes a span. Nothing read from opts is kept by reference: its strings are
// copied into the span (own) and its time taken as nanoseconds, so the compiler can keep
// the caller's options, WithAttributes' slice included, on the caller's stack, and a
// StartSpan that returns early allocates nothing.
func (t *tracer) start(ctx context.Context, name string, opts []SpanOption) (context.Context, *TraceSpan) {
	if t.in.closed.Load() {
		return ctx, nil
	}
	s := &TraceSpan{tr: t}
	var (
		kind      SpanKind
		parent    SpanContext
		chosen    bool
		newRoot   bool
		startUnix int64
		explicit  bool
	)
	for i := range opts {
		switch o := &opts[i]; o.what {
		case optKind:
			kind = o.kind
		case optParent:
			if o.parent.IsValid() {
				// Field by field: the whole struct would make the compiler think
				// o.parent.TraceState is kept.
				parent = SpanContext{TraceID: o.parent.TraceID, SpanID: o.parent.SpanID,
					Sampled: o.parent.Sampled, Remote: o.parent.Remote, TraceState: s.own(o.parent.TraceState)}
				chosen, newRoot = true, false
			}
		case optNewRoot:
			parent, chosen, newRoot = SpanContext{}, false, true
		case optStart:
			if !o.start.IsZero() {
				startUnix, explicit = o.start.UnixNano(), true
			}
		}
	}
	if !chosen && !newRoot {
		parent = SpanContextFromContext(ctx)
	}
	if explicit {
		s.start = time.Unix(0, startUnix)
	} else {
		s.start = time.Now()
	}
	d := &s.d
	if parent.IsValid() {
		d.traceID, d.parentID, d.parentRemote, d.traceState = parent.TraceID, parent.SpanID, parent.Remote, parent.TraceState
		d.sampled = t.sampler.sample(d.traceID, true, parent.Sampled)
	} else {
		d.traceID = newTraceID()
		d.sampled = t.sampler.sample(d.traceID, false, false)
	}
	d.spanID = newSpanID()
	s.recording = d.sampled
	if s.recording {
		d.kind = kind
		d.name = name
		d.startNanos = uint64(s.start.UnixNano())
		d.attrs = s.inl[:0]
		for i := range opts {
			if opts[i].what != optAttributes {
				continue
			}
			for _, a := range opts[i].attrs {
				a.Key, a.str = s.own(a.Key), s.own(a.str)
				d.attrs = mergeAttributes(d.attrs, []Attribute{a})
			}
		}
	} else {
		s.ended = true // nothing to send: End has nothing to do
	}
	return context.WithValue(ctx, spanKey{}, s), s
}

// own returns a copy of str the span owns: in its own text buffer while there is room,
// otherwise a copy of its own.
func (s *TraceSpan) own(str string) string {
	n := len(str)
	switch {
	case n == 0:
		return ""
	case s.textLen+n <= len(s.text):
		b := s.text[s.textLen : s.textLen+n]
		copy(b, str)
		s.textLen += n
		return unsafe.String(&b[0], n)
	default:
		return strings.Clone(str)
	}
}

func newTraceID() TraceID {
	var id TraceID
	for {
		hi, lo := rand.Uint64(), rand.Uint64()
		if hi|lo != 0 {
			putUint64BE(id[:8], hi)
			putUint64BE(id[8:], lo)
			return id
		}
	}
}

func newSpanID() SpanID {
	var id SpanID
	for {
		if v := rand.Uint64(); v != 0 {
			putUint64BE(id[:], v)
			return id
		}
	}
}

func putUint64BE(b []byte, v uint64) {
	_ = b[7]
	b[0], b[1], b[2], b[3] = byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32)
	b[4], b[5], b[6], b[7] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// SpanContext returns the span's context (the zero SpanContext for a nil span). For a
// context ContextWithRemoteSpanContext carried, it is that remote span context.
func (s *TraceSpan) SpanContext() SpanContext {
	if s == nil {
		return SpanContext{}
	}
	// Ids, flags and trace state never change after StartSpan: no lock needed.
	return SpanContext{
		TraceID:    s.d.traceID,
		SpanID:     s.d.spanID,
		Sampled:    s.d.sampled,
		Remote:     s.tr == nil,
		TraceState: s.d.traceState,
	}
}

// TraceID is the span's trace id as 32 hex digits ("" for a nil span).
func (s *TraceSpan) TraceID() string {
	if s == nil {
		return ""
	}
	return s.d.traceID.String()
}

// SpanID is the span's id as 16 hex digits ("" for a nil span).
func (s *TraceSpan) SpanID() string {
	if s == nil {
		return ""
	}
	return s.d.spanID.String()
}

// TraceParent is the W3C traceparent header for the span's children in other processes
// ("" for a nil span).
func (s *TraceSpan) TraceParent() string {
	if s == nil {
		return ""
	}
	return s.SpanContext().TraceParent()
}

// IsRecording reports whether the span will be sent when it ends: started, sampled, not
// ended yet.
func (s *TraceSpan) IsRecording() bool {
	if s == nil || !s.recording {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended
}

// SetName renames the span (an HTTP server span once the route is known).
func (s *TraceSpan) SetName(name string) {
	if s == nil || !s.recording {
		return
	}
	s.mu.Lock()
	if !s.ended {
		s.d.name = name
	}
	s.mu.Unlock()
}

// SetAttributes sets attributes; a key set again takes the new value. Past
// MaxSpanAttributes distinct keys, new keys are dropped.
func (s *TraceSpan) SetAttributes(attrs ...Attribute) {
	if s == nil || !s.recording || len(attrs) == 0 {
		return
	}
	s.mu.Lock()
	if !s.ended {
		s.setAttributesLocked(attrs)
	}
	s.mu.Unlock()
}

func (s *TraceSpan) setAttributesLocked(attrs []Attribute) {
	s.d.attrs = mergeAttributes(s.d.attrs, attrs)
}

// mergeAttributes sets each of attrs in to: a key already there takes the new value; new
// keys are appended up to MaxSpanAttributes; attributes without a key are ignored.
func mergeAttributes(to, attrs []Attribute) []Attribute {
next:
	for _, a := range attrs {
		if a.Key == "" || a.typ == 0 {
			continue
		}
		for i := range to {
			if to[i].Key == a.Key {
				to[i] = a
				continue next
			}
		}
		if len(to) < MaxSpanAttributes {
			to = append(to, a)
		}
	}
	return to
}

// AddEvent adds an event that happened now, with attributes. Past MaxSpanEvents events,
// new ones are dropped.
func (s *TraceSpan) AddEvent(name string, attrs ...Attribute) {
	if s == nil || !s.recording {
		return
	}
	s.addEvent(name, time.Now(), attrs)
}

func (s *TraceSpan) addEvent(name string, at time.Time, attrs []Attribute) {
	var own []Attribute
	if len(attrs) > 0 {
		own = mergeAttributes(make([]Attribute, 0, len(attrs)), attrs)
	}
	s.mu.Lock()
	if !s.ended && len(s.d.events) < MaxSpanEvents {
		s.d.events = append(s.d.events, spanEvent{name: name, nanos: s.nanosAt(at), attrs: own})
	}
	s.mu.Unlock()
}

// nanosAt is t in Unix nanoseconds, measured on the monotonic clock from the span's start
// when t has one, so durations inside a span never go backwards with the wall clock.
func (s *TraceSpan) nanosAt(t time.Time) uint64 {
	since := t.Sub(s.start)
	if since < 0 {
		since = 0
	}
	return s.d.startNanos + uint64(since)
}

// RecordError records err on the span as OpenTelemetry does: an "exception" event with
// exception.type (the error's Go type, as %T prints it) and exception.message, and sets
// the span's status to StatusError with the message. A nil err does nothing.
func (s *TraceSpan) RecordError(err error, attrs ...Attribute) {
	if s == nil || !s.recording || err == nil {
		return
	}
	message := errorMessage(err)
	event := make([]Attribute, 0, 2+len(attrs))
	event = append(event, StringAttr("exception.type", errorType(err)), StringAttr("exception.message", message))
	event = mergeAttributes(event, attrs)
	now := time.Now()
	s.mu.Lock()
	if !s.ended {
		if len(s.d.events) < MaxSpanEvents {
			s.d.events = append(s.d.events, spanEvent{name: "exception", nanos: s.nanosAt(now), attrs: event})
		}
		s.setStatusLocked(StatusError, message)
	}
	s.mu.Unlock()
}

// errorType is %T of err, or of the innermost wrapped error for the fmt.Errorf wrappers,
// which say nothing by their type.
func errorType(err error) string {
	t := fmt.Sprintf("%T", err)
	for t == "*fmt.wrapError" || t == "*fmt.wrapErrors" {
		inner := errors.Unwrap(err)
		if inner == nil {
			break
		}
		err, t = inner, fmt.Sprintf("%T", inner)
	}
	return t
}

// errorMessage is err.Error(), or fmt's description of a panic in it.
func errorMessage(err error) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprintf("%%!v(PANIC=Error method: %v)", v)
		}
	}()
	return err.Error()
}

// SetStatus sets the span's status, as the OpenTelemetry specification says: StatusOK
// is final, StatusUnset changes nothing, and the description is kept for StatusError
// only.
func (s *TraceSpan) SetStatus(code StatusCode, description string) {
	if s == nil || !s.recording {
		return
	}
	s.mu.Lock()
	if !s.ended {
		s.setStatusLocked(code, description)
	}
	s.mu.Unlock()
}

func (s *TraceSpan) setStatusLocked(code StatusCode, description string) {
	switch {
	case s.d.status == StatusOK, code == StatusUnset, code > StatusError:
	case code == StatusOK:
		s.d.status, s.d.statusMsg = StatusOK, ""
	default:
		s.d.status, s.d.statusMsg = StatusError, description
	}
}

// End ends the span and hands it to the library to export, in one call; later calls do
// nothing. It never blocks on the network: a full export queue drops the span and
// counts it (SpanStats.DroppedQueueFull).
func (s *TraceSpan) End() {
	if s == nil || !s.recording {
		return
	}
	now := time.Now()
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.d.endNanos = s.nanosAt(now)
	buf := wireBuffers.Get().(*[]byte)
	b := appendSpan((*buf)[:0], &s.d)
	s.mu.Unlock()
	s.tr.record(b)
	if cap(b) <= maxPooledBuffer {
		*buf = b[:0]
		wireBuffers.Put(buf)
	}
}

// record hands an encoded span to the library.
func (t *tracer) record(span []byte) {
	in := t.in
	if len(span) > maxSpanBytes {
		t.refused.Add(1)
		return
	}
	in.hmu.RLock()
	var err error
	if in.h == nil {
		err = errClosed("span")
	} else {
		err = cRecordSpan(in.h, span)
	}
	in.hmu.RUnlock()
	if err != nil {
		t.refused.Add(1)
	}
}

// wireBuffers are the encoding buffers End reuses.
var wireBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledBuffer is the largest buffer kept for reuse.
const maxPooledBuffer = 64 << 10

// SpanStats returns the span counters; after Close, the final ones. They are the
// library's, plus SpanStats.Refused counted in Go.
func (c *Client) SpanStats() SpanStats {
	defer runtime.KeepAlive(c)
	in := c.c
	var s SpanStats
	in.hmu.RLock()
	if in.h == nil {
		s = in.finalSpans
	} else if text, err := cSpanStats(in.h); err == nil {
		_ = decodeExact(text, &s)
	}
	in.hmu.RUnlock()
	s.Refused = c.tr.refused.Load()
	return s
}

// FlushSpans exports the spans ended so far and waits until they are delivered or ctx's
// deadline (DefaultFlushTimeout without one) passes. Errors, as for Flush: ErrTimeout
// (also matching context.DeadlineExceeded when ctx's deadline was the limit; the rest
// goes out later), ErrNotDelivered (spans were dropped: refused, unreachable endpoint,
// full queue; SpanStats says which), ErrShutDown after Close, the context's error if it
// is already done. With tracing off it returns nil at once.
func (c *Client) FlushSpans(ctx context.Context) error {
	defer runtime.KeepAlive(c)
	in := c.c
	if err := ctx.Err(); err != nil {
		return err
	}
	if in.closed.Load() {
		return errClosed("flush spans")
	}
	if c.traceLevel <= GranularityNone {
		return nil
	}
	return c.flushWith(ctx, "flush spans", cFlushSpans)
}

// readTraceConfig reads the client's resolved observability configuration, once, in New.
func (in *client) readTraceConfig() (*tracer, error) {
	text, err := cTraceConfig(in.h)
	if err != nil {
		return nil, err
	}
	cfg, err := parseTraceConfig(text)
	if err != nil {
		return nil, err
	}
	return &tracer{in: in, level: cfg.Level, sampler: compileSampler(cfg.Sampler), config: cfg}, nil
}
