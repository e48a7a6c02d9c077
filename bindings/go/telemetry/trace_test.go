//go:build cgo

package telemetry

// Spans without an endpoint to reach: what is filtered costs nothing, ids and contexts,
// attributes, status, errors, sampling, several clients, concurrency, and the HTTP
// wrappers when tracing is off.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// offlineClient traces to a port where nothing listens: spans are recorded (and later
// dropped), which these tests do not look at.
func offlineClient(t *testing.T, s OTelSettings) *Client {
	t.Helper()
	if s.Endpoint == "" {
		s.Endpoint = "http://127.0.0.1:9"
	}
	if s.Protocol == "" {
		s.Protocol = ProtocolHTTPProtobuf
	}
	if s.ExportTimeout == 0 {
		s.ExportTimeout = 100 * time.Millisecond
	}
	return tracingClient(t, WithOTel(s))
}

func TestFilteredSpansCostNothing(t *testing.T) {
	off := tracingClient(t) // no endpoint: tracing is off
	if off.TraceConfig().Active || off.traceLevel != GranularityNone {
		t.Fatalf("no endpoint, yet %+v", off.TraceConfig())
	}
	on := offlineClient(t, OTelSettings{Granularity: GranularityOperation})
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		client *Client
		g      Granularity
	}{
		{"tracing off", off, GranularityOperation},
		{"finer than configured", on, GranularityOperationAndSegment},
		{"finest", on, GranularityAll},
		{"declared none", on, GranularityNone},
		{"declared unset", on, 0},
	} {
		before := crossings.Load()
		allocs := testing.AllocsPerRun(1000, func() {
			got, span := c.client.StartSpan(ctx, "helper", c.g,
				WithSpanKind(SpanKindClient), WithAttributes(StringAttr("a", "b"), IntAttr("n", 3), BoolAttr("ok", true)))
			span.SetAttributes(IntAttr("m", 4))
			span.AddEvent("e")
			span.RecordError(io.EOF)
			span.SetStatus(StatusError, "x")
			span.End()
			if got != ctx || span != nil {
				panic("a filtered span changed the context")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per filtered span", c.name, allocs)
		}
		if n := crossings.Load() - before; n != 0 {
			t.Errorf("%s: %d calls into C", c.name, n)
		}
	}
	// A nil span answers everything.
	var s *TraceSpan
	if s.IsRecording() || s.TraceParent() != "" || s.TraceID() != "" || s.SpanID() != "" || s.SpanContext().IsValid() {
		t.Error("a nil span claims something")
	}
	if SpanFromContext(ctx) != nil || SpanContextFromContext(ctx).IsValid() {
		t.Error("an empty context carries a span")
	}
	if !on.Tracing(GranularityOperation) || on.Tracing(GranularityAll) || off.Tracing(GranularityOperation) {
		t.Error("Tracing disagrees with the configuration")
	}
}

func TestSpansNestAndEndOnce(t *testing.T) {
	c := offlineClient(t, OTelSettings{Granularity: GranularityAll})
	ctx, root := c.StartSpan(context.Background(), "root", GranularityOperation)
	if root == nil || !root.IsRecording() || SpanFromContext(ctx) != root {
		t.Fatal("the root span is not the context's")
	}
	sc := root.SpanContext()
	if !sc.IsValid() || !sc.Sampled || sc.Remote || len(root.TraceID()) != 32 || len(root.SpanID()) != 16 {
		t.Errorf("root span context %+v", sc)
	}
	if tp := root.TraceParent(); tp != "00-"+root.TraceID()+"-"+root.SpanID()+"-01" {
		t.Errorf("traceparent %q", tp)
	}
	cctx, child := c.StartSpan(ctx, "child", GranularityAll)
	if child.SpanContext().TraceID != sc.TraceID || child.d.parentID != sc.SpanID || child.d.parentRemote {
		t.Errorf("child %+v of %+v", child.d, sc)
	}
	if SpanFromContext(cctx) != child || SpanFromContext(ctx) != root {
		t.Error("contexts mixed up")
	}
	_, other := c.StartSpan(ctx, "new root", GranularityOperation, WithNewRoot())
	if other.SpanContext().TraceID == sc.TraceID || other.d.parentID.IsValid() {
		t.Error("WithNewRoot kept the parent")
	}
	before := crossings.Load()
	child.End()
	child.End()
	child.SetAttributes(StringAttr("late", "x"))
	if n := crossings.Load() - before; n != 1 {
		t.Errorf("ending twice made %d calls into C", n)
	}
	if child.IsRecording() || len(child.d.attrs) != 0 {
		t.Error("an ended span still records")
	}
	root.End()
	other.End()
}

func TestSpanIDsAreRandomAndNeverZero(t *testing.T) {
	seen := map[TraceID]bool{}
	for i := 0; i < 10000; i++ {
		id := newTraceID()
		if !id.IsValid() || seen[id] {
			t.Fatalf("trace id %s", id)
		}
		seen[id] = true
		if !newSpanID().IsValid() {
			t.Fatal("a zero span id")
		}
	}
}

func TestSpanAttributesAndStatus(t *testing.T) {
	type stringer struct{ fmt.Stringer }
	cases := []struct {
		in   any
		want any
	}{
		{"s", "s"}, {true, true}, {3, int64(3)}, {int8(-3), int64(-3)}, {int32(7), int64(7)}, {int64(-1), int64(-1)},
		{uint8(8), int64(8)}, {uint16(9), int64(9)}, {uint32(10), int64(10)}, {uint(11), int64(11)}, {uint64(12), int64(12)},
		{uint64(math.MaxUint64), "18446744073709551615"}, {float32(0.5), 0.5}, {2.25, 2.25}, {nil, ""},
		{io.EOF, "EOF"}, {time.Second, "1s"}, {[]string{"a", "b"}, "[a b]"},
	}
	for _, c := range cases {
		if got := Attr("k", c.in).Value(); got != c.want {
			t.Errorf("Attr(%#v) = %#v, want %#v", c.in, got, c.want)
		}
	}
	if v := (Attribute{}).Value(); v != nil {
		t.Errorf("zero attribute %v", v)
	}

	c := offlineClient(t, OTelSettings{})
	_, s := c.StartSpan(context.Background(), "op", GranularityOperation,
		WithAttributes(StringAttr("a", "1"), StringAttr("b", "2")), WithAttributes(StringAttr("a", "3")))
	s.SetAttributes(IntAttr("n", 1), Attribute{Key: "no value"}, StringAttr("", "no key"))
	s.SetAttributes(IntAttr("n", 2))
	got := map[string]any{}
	for _, a := range s.d.attrs {
		got[a.Key] = a.Value()
	}
	if len(s.d.attrs) != 3 || got["a"] != "3" || got["b"] != "2" || got["n"] != int64(2) {
		t.Errorf("attributes %v", got)
	}
	for i := 0; i < 2*MaxSpanAttributes; i++ {
		s.SetAttributes(IntAttr(fmt.Sprint("k", i), i))
	}
	if len(s.d.attrs) != MaxSpanAttributes {
		t.Errorf("%d attributes kept", len(s.d.attrs))
	}
	for i := 0; i < 2*MaxSpanEvents; i++ {
		s.AddEvent("e")
	}
	if len(s.d.events) != MaxSpanEvents {
		t.Errorf("%d events kept", len(s.d.events))
	}

	// Status: OK is final, Unset changes nothing, a description only with Error.
	_, st := c.StartSpan(context.Background(), "status", GranularityOperation)
	st.SetStatus(StatusError, "first")
	st.SetStatus(StatusUnset, "")
	if st.d.status != StatusError || st.d.statusMsg != "first" {
		t.Errorf("status %v %q", st.d.status, st.d.statusMsg)
	}
	st.SetStatus(StatusOK, "ignored")
	st.SetStatus(StatusError, "too late")
	if st.d.status != StatusOK || st.d.statusMsg != "" {
		t.Errorf("status %v %q", st.d.status, st.d.statusMsg)
	}
	st.SetName("renamed")
	if st.d.name != "renamed" {
		t.Error("SetName")
	}
	s.End()
	st.End()
}

type panickyError struct{}

func (panickyError) Error() string { panic("no message") }

func TestRecordError(t *testing.T) {
	c := offlineClient(t, OTelSettings{})
	_, s := c.StartSpan(context.Background(), "op", GranularityOperation)
	s.RecordError(nil)
	if len(s.d.events) != 0 || s.d.status != StatusUnset {
		t.Error("a nil error was recorded")
	}
	_, err := os.Open("/nonexistent/file")
	s.RecordError(fmt.Errorf("load: %w", err), StringAttr("attempt", "1"))
	s.RecordError(panickyError{})
	if len(s.d.events) != 2 {
		t.Fatalf("events %+v", s.d.events)
	}
	first := map[string]any{}
	for _, a := range s.d.events[0].attrs {
		first[a.Key] = a.Value()
	}
	if first["exception.type"] != "*fs.PathError" || first["exception.message"] != "load: open /nonexistent/file: no such file or directory" || first["attempt"] != "1" {
		t.Errorf("exception attributes %v", first)
	}
	if msg := s.d.events[1].attrs[1].str; !strings.Contains(msg, "PANIC=Error method: no message") {
		t.Errorf("a panicking Error method gave %q", msg)
	}
	if s.d.status != StatusError || !strings.Contains(s.d.statusMsg, "PANIC") {
		t.Errorf("status %v %q", s.d.status, s.d.statusMsg)
	}
	if errorType(errors.Join(io.EOF)) != "*errors.joinError" {
		t.Error(errorType(errors.Join(io.EOF)))
	}
	s.End()
}

func TestSamplingPropagatesWithoutSending(t *testing.T) {
	c := offlineClient(t, OTelSettings{Sampler: "parentbased_always_off"})
	if cfg := c.TraceConfig(); cfg.Sampler.Kind != "parent_based" || cfg.Sampler.Root.Kind != "always_off" {
		t.Fatalf("sampler %+v", cfg.Sampler)
	}
	before := crossings.Load()
	ctx, root := c.StartSpan(context.Background(), "root", GranularityOperation)
	if root == nil || root.SpanContext().Sampled || root.IsRecording() || !root.SpanContext().IsValid() {
		t.Fatalf("an unsampled root: %+v", root.SpanContext())
	}
	if !strings.HasSuffix(root.TraceParent(), "-00") {
		t.Errorf("traceparent %q", root.TraceParent())
	}
	_, child := c.StartSpan(ctx, "child", GranularityOperation)
	if child.SpanContext().Sampled || child.SpanContext().TraceID != root.SpanContext().TraceID {
		t.Error("the child of an unsampled span is sampled, or in another trace")
	}
	child.SetAttributes(StringAttr("a", "b"))
	child.End()
	root.End()
	if n := crossings.Load() - before; n != 0 {
		t.Errorf("%d calls into C for unsampled spans", n)
	}
	// A sampled remote parent: its children are sampled and sent.
	parent, _ := ParseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "congo=t61rcWkgMzE")
	rctx := ContextWithRemoteSpanContext(context.Background(), parent)
	if got := SpanFromContext(rctx).SpanContext(); got != parent {
		t.Errorf("carried %+v, want %+v", got, parent)
	}
	_, s := c.StartSpan(rctx, "server", GranularityOperation, WithSpanKind(SpanKindServer))
	if !s.IsRecording() || !s.d.parentRemote || s.d.parentID != parent.SpanID || s.d.traceState != "congo=t61rcWkgMzE" {
		t.Errorf("child of a remote parent %+v", s.d)
	}
	before = crossings.Load()
	s.End()
	if n := crossings.Load() - before; n != 1 {
		t.Errorf("%d calls into C for one sampled span", n)
	}
	// WithRemoteParent beats the context.
	_, s2 := c.StartSpan(ctx, "x", GranularityOperation, WithRemoteParent(parent))
	if s2.d.parentID != parent.SpanID || !s2.IsRecording() {
		t.Error("WithRemoteParent did not win")
	}
	s2.End()
	// The ratio sampler at 0 keeps no root.
	none := offlineClient(t, OTelSettings{Sampler: "traceidratio", SamplerArg: "0"})
	for i := 0; i < 100; i++ {
		if _, s := none.StartSpan(context.Background(), "r", GranularityOperation); s.SpanContext().Sampled {
			t.Fatal("ratio 0 sampled a trace")
		}
	}
}

// TestSpansAcrossClients: the current span is the process's, not a client's.
func TestSpansAcrossClients(t *testing.T) {
	a := offlineClient(t, OTelSettings{ServiceName: "a"})
	b := offlineClient(t, OTelSettings{ServiceName: "b"})
	off := tracingClient(t)
	ctx, sa := a.StartSpan(context.Background(), "a.op", GranularityOperation)
	ctx2, none := off.StartSpan(ctx, "off.op", GranularityOperation) // not traced: ctx unchanged
	_, sb := b.StartSpan(ctx2, "b.op", GranularityOperation)
	if none != nil || sb.d.parentID != sa.d.spanID || sb.d.traceID != sa.d.traceID {
		t.Error("b's span is not a child of a's")
	}
	sb.End()
	sa.End()
}

func TestSpansConcurrently(t *testing.T) {
	c := offlineClient(t, OTelSettings{Granularity: GranularityAll, MaxQueueSize: 100000})
	ctx, root := c.StartSpan(context.Background(), "root", GranularityOperation)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				cctx, s := c.StartSpan(ctx, "child", GranularityOperationAndSegment)
				root.SetAttributes(IntAttr(fmt.Sprint("g", g), i))
				root.AddEvent("tick")
				_, leaf := c.StartSpan(cctx, "leaf", GranularityAll)
				go leaf.End() // ended from another goroutine, concurrently with its parent
				s.SetAttributes(IntAttr("i", i))
				s.End()
				_ = root.TraceParent()
			}
		}()
	}
	wg.Wait()
	root.End()
	deadline := time.Now().Add(5 * time.Second)
	for c.SpanStats().Recorded < 16*200*2+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := c.SpanStats(); s.Recorded != 16*200*2+1 || s.Refused != 0 {
		t.Errorf("span stats %+v", s)
	}
}

func TestSpansAfterClose(t *testing.T) {
	c := offlineClient(t, OTelSettings{})
	_, s := c.StartSpan(context.Background(), "open at close", GranularityOperation)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = c.Close(ctx)
	before := crossings.Load()
	s.End() // the library's client is gone: counted in Go, no call
	if n := crossings.Load() - before; n != 0 {
		t.Errorf("%d calls into C after Close", n)
	}
	if st := c.SpanStats(); st.Refused != 1 {
		t.Errorf("span stats %+v", st)
	}
	if _, s := c.StartSpan(context.Background(), "after", GranularityOperation); s != nil {
		t.Error("a span started after Close")
	}
}

// TestHTTPWrappersWhenNotTracing: the handler calls through untouched; the transport adds
// no span but passes on the context's traceparent.
func TestHTTPWrappersWhenNotTracing(t *testing.T) {
	off := tracingClient(t)
	var seen *http.Request
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r })
	h := off.HTTPHandler(inner)
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	before := crossings.Load()
	h.ServeHTTP(httptest.NewRecorder(), req)
	if seen != req {
		t.Error("the handler got another request")
	}
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	hc := &http.Client{Transport: off.HTTPTransport(nil)}
	parent, _ := ParseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "a=b")
	r, _ := http.NewRequestWithContext(ContextWithRemoteSpanContext(context.Background(), parent), "GET", srv.URL, nil)
	resp, err := hc.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("traceparent") != parent.TraceParent() || got.Get("tracestate") != "a=b" {
		t.Errorf("headers %v", got)
	}
	if r.Header.Get("traceparent") != "" {
		t.Error("the transport modified the caller's request")
	}
	r, _ = http.NewRequest("GET", srv.URL, nil)
	resp, err = hc.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("traceparent") != "" {
		t.Error("a traceparent out of nothing")
	}
	if n := crossings.Load() - before; n != 0 {
		t.Errorf("%d calls into C", n)
	}
}

// TestHTTPHandlerKeepsTheWriter: Flush, Hijack and http.ResponseController work through
// the traced handler, and the status recorded is the one written.
func TestHTTPHandlerKeepsTheWriter(t *testing.T) {
	c := offlineClient(t, OTelSettings{})
	var span *TraceSpan
	h := c.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span = SpanFromContext(r.Context())
		if _, ok := w.(http.Flusher); !ok {
			t.Error("no Flusher")
		}
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
			t.Errorf("ResponseController: %v", err)
		}
		w.WriteHeader(http.StatusCreated)
		w.(http.Flusher).Flush()
		_, _ = w.Write([]byte("made"))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/things", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || span == nil {
		t.Fatalf("status %d, span %v", resp.StatusCode, span)
	}
	time.Sleep(10 * time.Millisecond) // the handler's deferred End runs after the response
	span.mu.Lock()
	defer span.mu.Unlock()
	attrs := map[string]any{}
	for _, a := range span.d.attrs {
		attrs[a.Key] = a.Value()
	}
	if span.d.name != "POST /things" || span.d.kind != SpanKindServer || attrs["http.response.status_code"] != int64(201) || !span.ended {
		t.Errorf("span %q kind %v attributes %v", span.d.name, span.d.kind, attrs)
	}
}

func TestTraceStateNormalization(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"congo=t61rcWkgMzE":             "congo=t61rcWkgMzE",
		" a=1 , b=2,, ":                 "a=1,b=2",
		"tenant@vendor=x":               "tenant@vendor=x",
		"1tenant@v=x":                   "1tenant@v=x",
		"Upper=1":                       "",
		"a=1,b":                         "",
		"a=b=c":                         "",
		"a=" + strings.Repeat("x", 257): "",
		"1a=x":                          "",
	} {
		if got := normalizeTraceState(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	if _, ok := ParseTraceParent("  00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", ""); !ok {
		t.Error("surrounding spaces are not trimmed")
	}
	h := http.Header{}
	h.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if ctx := ExtractTraceContext(context.Background(), h); SpanFromContext(ctx) != nil {
		t.Error("two traceparent headers were accepted")
	}
	h = http.Header{}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Add("tracestate", "a=1")
	h.Add("tracestate", "b=2")
	sc := SpanContextFromContext(ExtractTraceContext(context.Background(), h))
	if !sc.Remote || sc.TraceState != "a=1,b=2" {
		t.Errorf("extracted %+v", sc)
	}
	out := http.Header{}
	InjectTraceContext(ExtractTraceContext(context.Background(), h), out)
	if out.Get("traceparent") != h.Get("traceparent") || out.Get("tracestate") != "a=1,b=2" {
		t.Errorf("injected %v", out)
	}
}

// TestTracingClientLogs: opted out of telemetry but tracing, a client with a logger hears
// about bad observability values at New and about spans it could not export.
func TestTracingClientLogs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rec := &recorder{level: slog.LevelInfo}
	c, err := New(WithProduct("chroma", "1.0.0"), WithProfile(Chroma), WithSink(SinkMemory),
		WithLogger(slog.New(rec)),
		WithEnvironment(map[string]string{
			"HOME":                            t.TempDir(),
			"DO_NOT_TRACK":                    "1",
			"CHROMA_OTEL_COLLECTION_ENDPOINT": "http://" + addr,
			"OTEL_EXPORTER_OTLP_PROTOCOL":     "http/protobuf",
			"CHROMA_OTEL_GRANULARITY":         "verbose",
		}),
		WithOTel(OTelSettings{ExportTimeout: 200 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if c.Enabled() || !c.TraceConfig().Active {
		t.Fatalf("enabled %v, tracing %+v", c.Enabled(), c.TraceConfig())
	}
	if len(rec.matching("CHROMA_OTEL_GRANULARITY")) == 0 {
		t.Errorf("no warning about the granularity at New: %v", rec.all())
	}
	_, s := c.StartSpan(context.Background(), "op", GranularityOperation)
	s.End()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.FlushSpans(ctx); !errors.Is(err, ErrNotDelivered) {
		t.Errorf("FlushSpans to a closed port: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(rec.matching("span")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		_ = c.FlushSpans(ctx)
	}
	if len(rec.matching("span")) == 0 {
		t.Errorf("no warning about the dropped span: %v", rec.all())
	}
}
