//go:build cgo

package telemetry

// End to end: spans built in Go, handed to the library one call each, exported over OTLP
// (HTTP protobuf, HTTP JSON, gRPC) to the real receiver, which decodes them with the
// official protobuf definitions. Names, parent links across nested spans and goroutines,
// attributes and their types, events, exceptions, status, the resource, the headers
// sent, granularity filtering, traceparent between a traced HTTP client and a traced
// server, the host's OpenTelemetry span as parent, sampling, and faults.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// tracingClient is a client whose telemetry goes nowhere (memory sink) and whose traces
// go where opts say; it is closed when the test ends.
func tracingClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	base := []Option{
		WithProduct("go-e2e", "2.0.0"),
		WithSink(SinkMemory),
		WithEnvironment(map[string]string{"HOME": t.TempDir()}),
	}
	c, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func flushSpans(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.FlushSpans(ctx); err != nil {
		t.Fatalf("FlushSpans: %v; stats %+v", err, c.SpanStats())
	}
}

// scenario records an operation with four segments, each on a goroutine of its own, each
// with a helper finer than the configured granularity and an index segment inside that
// helper: 9 spans are recorded, the 4 helpers are not.
func scenario(c *Client) {
	ctx, root := c.StartSpan(context.Background(), "collection.add", GranularityOperation,
		WithAttributes(StringAttr("collection", "docs"), IntAttr("ids_count", 3),
			Float64Attr("ratio", 0.5), BoolAttr("with_documents", true)))
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, seg := c.StartSpan(ctx, fmt.Sprintf("segment.write.%d", i), GranularityOperationAndSegment)
			defer seg.End()
			hctx, helper := c.StartSpan(sctx, "helper", GranularityAll) // not recorded
			_, inner := c.StartSpan(hctx, fmt.Sprintf("segment.index.%d", i), GranularityOperationAndSegment,
				WithSpanKind(SpanKindProducer))
			inner.SetAttributes(Attr("shard", uint8(i)), Attr("path", "/a\xffb")) // invalid UTF-8, repaired
			inner.End()
			helper.End()
		}()
	}
	wg.Wait()
	root.AddEvent("validated", IntAttr("n", 3))
	root.SetAttributes(IntAttr("ids_count", 4)) // set again: the new value wins
	root.RecordError(fmt.Errorf("add: %w", os.ErrNotExist))
	root.End()
	root.End() // a second End sends nothing
}

// checkScenario checks what the receiver decoded from scenario.
func checkScenario(t *testing.T, spans []rxSpan, service, protocol string) {
	t.Helper()
	if len(spans) != 9 {
		t.Fatalf("%d spans, want 9: %s", len(spans), names(spans))
	}
	got := byName(t, spans)
	root := got["collection.add"]
	if root.ParentSpanID != "" || len(root.TraceID) != 32 || len(root.SpanID) != 16 {
		t.Errorf("root %+v", root)
	}
	if _, ok := got["helper"]; ok {
		t.Error("a span finer than the configured granularity was exported")
	}
	for i := 0; i < 4; i++ {
		seg, index := got[fmt.Sprintf("segment.write.%d", i)], got[fmt.Sprintf("segment.index.%d", i)]
		if seg.ParentSpanID != root.SpanID || index.ParentSpanID != seg.SpanID {
			t.Errorf("segment %d: parents %q and %q, want %q and %q", i, seg.ParentSpanID, index.ParentSpanID, root.SpanID, seg.SpanID)
		}
		if seg.Start < root.Start || seg.End > root.End || index.Start < seg.Start || index.End > seg.End {
			t.Errorf("segment %d is not inside its parent in time", i)
		}
		if index.Kind != "producer" || seg.Kind != "internal" {
			t.Errorf("kinds %q and %q", index.Kind, seg.Kind)
		}
		if index.Attributes["shard"] != json.Number(fmt.Sprint(i)) || index.Attributes["path"] != "/a\uFFFDb" {
			t.Errorf("index attributes %v", index.Attributes)
		}
	}
	for _, s := range spans {
		if s.TraceID != root.TraceID {
			t.Errorf("%s is in trace %s, not %s", s.Name, s.TraceID, root.TraceID)
		}
		if s.Resource["service.name"] != service || s.Resource["telemetry.sdk.language"] != "go" ||
			s.Resource["service.version"] != "2.0.0" {
			t.Errorf("%s: resource %v", s.Name, s.Resource)
		}
		if s.Protocol != protocol {
			t.Errorf("%s arrived over %q, want %q", s.Name, s.Protocol, protocol)
		}
	}
	want := map[string]any{"collection": "docs", "ids_count": json.Number("4"), "ratio": json.Number("0.5"), "with_documents": true}
	for k, v := range want {
		if root.Attributes[k] != v {
			t.Errorf("root attribute %s = %#v, want %#v", k, root.Attributes[k], v)
		}
	}
	if len(root.Events) != 2 || root.Events[0].Name != "validated" || root.Events[0].Attributes["n"] != json.Number("3") {
		t.Fatalf("root events %+v", root.Events)
	}
	ex := root.Events[1]
	if ex.Name != "exception" || ex.Attributes["exception.type"] != "*errors.errorString" ||
		ex.Attributes["exception.message"] != "add: file does not exist" || ex.Time < root.Start || ex.Time > root.End {
		t.Errorf("exception event %+v", ex)
	}
	if root.Status.Code != "error" || root.Status.Message != "add: file does not exist" {
		t.Errorf("root status %+v", root.Status)
	}
	if got["segment.write.0"].Status.Code != "unset" {
		t.Errorf("segment status %+v", got["segment.write.0"].Status)
	}
}

// TestTracesEndToEnd: the scenario over each protocol, configured in code, with the
// operator's headers and resource attributes.
func TestTracesEndToEnd(t *testing.T) {
	rx := startReceiver(t)
	for _, protocol := range []Protocol{ProtocolHTTPProtobuf, ProtocolHTTPJSON, ProtocolGRPC} {
		t.Run(string(protocol), func(t *testing.T) {
			endpoint := rx.httpEndpoint()
			if protocol == ProtocolGRPC {
				endpoint = rx.grpcEndpoint()
			}
			service := "go-e2e-" + strings.ReplaceAll(string(protocol), "/", "-")
			c := tracingClient(t, WithOTel(OTelSettings{
				Endpoint:           endpoint,
				Protocol:           protocol,
				ServiceName:        service,
				Headers:            map[string]string{"x-api-key": "secret-1"},
				Granularity:        GranularityOperationAndSegment,
				ResourceAttributes: map[string]string{"deployment.environment": "test"},
			}))
			cfg := c.TraceConfig()
			if !cfg.Active || cfg.Level != GranularityOperationAndSegment || len(cfg.Headers) != 1 {
				t.Fatalf("config %+v", cfg)
			}
			before := crossings.Load()
			scenario(c)
			if n := crossings.Load() - before; n != 9 {
				t.Errorf("%d calls into C for 9 recorded spans (the helpers cost none)", n)
			}
			flushSpans(t, c)
			var mine []rxSpan
			for _, s := range rx.waitSpans(t, 9, 5*time.Second) {
				if s.Resource["service.name"] == service {
					mine = append(mine, s)
				}
			}
			checkScenario(t, mine, service, string(protocol))
			for _, s := range mine {
				if s.Headers["x-api-key"] != "secret-1" || !s.Gzip || s.Resource["deployment.environment"] != "test" {
					t.Errorf("%s: headers %v, gzip %v, resource %v", s.Name, s.Headers, s.Gzip, s.Resource)
					break
				}
			}
			if s := c.SpanStats(); s.Recorded != 9 || s.Exported != 9 || s.Queued != 0 || s.Refused != 0 {
				t.Errorf("span stats %+v", s)
			}
		})
	}
}

// TestTracesFromChromasVariables: Chroma's four variables alone, with the telemetry
// opt-out on: gRPC, service chromadb, the headers JSON, operation granularity; the spans
// go out at Close, without a FlushSpans.
func TestTracesFromChromasVariables(t *testing.T) {
	rx := startReceiver(t)
	c, err := New(WithProduct("chroma", "1.0.0"), WithProfile(Chroma), WithSink(SinkMemory),
		WithEnvironment(map[string]string{
			"HOME":                            t.TempDir(),
			"ANONYMIZED_TELEMETRY":            "False",
			"CHROMA_OTEL_COLLECTION_ENDPOINT": rx.grpcEndpoint(),
			"CHROMA_OTEL_COLLECTION_HEADERS":  `{"x-honeycomb-team": "abc"}`,
			"CHROMA_OTEL_GRANULARITY":         "operation",
		}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Enabled() {
		t.Fatal("ANONYMIZED_TELEMETRY=False left telemetry on")
	}
	before := crossings.Load()
	ctx, op := c.StartSpan(context.Background(), "collection.query", GranularityOperation)
	_, seg := c.StartSpan(ctx, "segment.search", GranularityOperationAndSegment)
	if seg != nil {
		t.Fatal("a segment span was recorded at operation granularity")
	}
	seg.End()
	op.End()
	if n := crossings.Load() - before; n != 1 {
		t.Errorf("%d calls into C for one recorded span", n)
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	spans := rx.waitSpans(t, 1, 5*time.Second)
	if len(spans) != 1 {
		t.Fatalf("spans %s", names(spans))
	}
	s := spans[0]
	if s.Name != "collection.query" || s.Protocol != "grpc" || s.Resource["service.name"] != "chromadb" ||
		s.Headers["x-honeycomb-team"] != "abc" {
		t.Errorf("span %+v", s)
	}
	if st := c.SpanStats(); st.Recorded != 1 || st.Exported != 1 {
		t.Errorf("final span stats %+v", st)
	}
	if _, span := c.StartSpan(context.Background(), "after.close", GranularityOperation); span != nil {
		t.Error("a span started after Close")
	}
	if err := c.FlushSpans(context.Background()); !errors.Is(err, ErrShutDown) {
		t.Errorf("FlushSpans after Close: %v", err)
	}
}

// TestTracesAcrossHTTP: a traced client (HTTPTransport) calls a traced server
// (HTTPHandler) of another client; the traceparent joins both into one trace.
func TestTracesAcrossHTTP(t *testing.T) {
	rx := startReceiver(t)
	settings := func(service string) Option {
		return WithOTel(OTelSettings{Endpoint: rx.httpEndpoint(), Protocol: ProtocolHTTPProtobuf, ServiceName: service})
	}
	client := tracingClient(t, settings("go-client"))
	server := tracingClient(t, settings("go-server"))

	var seen sync.Map // path -> traceparent the server received
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.URL.Path, r.Header.Get("traceparent"))
		_, span := server.StartSpan(r.Context(), "db.lookup", GranularityOperation,
			WithAttributes(StringAttr("item", r.PathValue("id"))))
		span.End()
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) {
		panic("handler exploded")
	})
	srv := httptest.NewUnstartedServer(server.HTTPHandler(mux))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // net/http logs the panic it recovers
	srv.Start()
	defer srv.Close()
	hc := &http.Client{Transport: client.HTTPTransport(nil)}

	ctx, op := client.StartSpan(context.Background(), "chromalike.get", GranularityOperation)
	get := func(path string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	get("/items/42")
	get("/boom")
	get("/panic")
	// A transport error: nothing listens there any more.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://user:pw@"+dead+"/x", nil)
	if _, err := hc.Do(req); err == nil {
		t.Fatal("a request to a closed port worked")
	}
	op.End()
	flushSpans(t, client)
	flushSpans(t, server)

	// net/http's Transport retries an idempotent request whose connection closed before
	// a response came (the panicking handler's), so /panic may reach the server twice.
	spans := rx.waitSpans(t, 9, 5*time.Second)
	if len(spans) != 9 && len(spans) != 10 {
		t.Fatalf("%d spans, want 9 (1 operation, 4 client, 3 server, 1 db) or 10 (/panic retried): %s", len(spans), names(spans))
	}
	var root rxSpan
	clients := map[string]rxSpan{} // by url.full
	servers := map[string]rxSpan{} // by url.path
	var panics []rxSpan
	var db rxSpan
	for _, s := range spans {
		switch s.Kind {
		case "client":
			clients[fmt.Sprint(s.Attributes["url.full"])] = s
		case "server":
			servers[fmt.Sprint(s.Attributes["url.path"])] = s
			if s.Attributes["url.path"] == "/panic" {
				panics = append(panics, s)
			}
		default:
			if s.Name == "db.lookup" {
				db = s
			} else {
				root = s
			}
		}
	}
	if root.Name != "chromalike.get" || root.Resource["service.name"] != "go-client" {
		t.Fatalf("root %+v", root)
	}
	for _, s := range spans {
		if s.TraceID != root.TraceID {
			t.Errorf("%s (%s) is not in the operation's trace", s.Name, s.Kind)
		}
	}
	for path, code := range map[string]int{"/items/42": 200, "/boom": 503} {
		c, s := clients[srv.URL+path], servers[path]
		if c.Name != "HTTP GET" || c.ParentSpanID != root.SpanID || c.Resource["service.name"] != "go-client" {
			t.Errorf("%s: client span %+v", path, c)
		}
		if s.ParentSpanID != c.SpanID || s.Resource["service.name"] != "go-server" {
			t.Errorf("%s: server span's parent %q, want the client span %q", path, s.ParentSpanID, c.SpanID)
		}
		if c.Attributes["http.request.method"] != "GET" || c.Attributes["server.address"] != "127.0.0.1" ||
			c.Attributes["http.response.status_code"] != json.Number(fmt.Sprint(code)) || c.Attributes["server.port"] == nil {
			t.Errorf("%s: client attributes %v", path, c.Attributes)
		}
		if s.Attributes["http.response.status_code"] != json.Number(fmt.Sprint(code)) || s.Attributes["http.request.method"] != "GET" {
			t.Errorf("%s: server attributes %v", path, s.Attributes)
		}
		if tp, _ := seen.Load(path); path == "/items/42" && tp != fmt.Sprintf("00-%s-%s-01", c.TraceID, c.SpanID) {
			t.Errorf("the server received traceparent %q", tp)
		}
	}
	if s := servers["/items/42"]; s.Name != "GET /items/{id}" || s.Attributes["http.route"] != "/items/{id}" || s.Status.Code != "unset" {
		t.Errorf("server span %+v", s)
	}
	if db.ParentSpanID != servers["/items/42"].SpanID || db.Attributes["item"] != "42" {
		t.Errorf("db span %+v", db)
	}
	if c, s := clients[srv.URL+"/boom"], servers["/boom"]; c.Status.Code != "error" || s.Status.Code != "error" || s.Attributes["error.type"] != "503" {
		t.Errorf("a 503: client status %+v, server %+v", c.Status, s)
	}
	for _, s := range panics {
		if s.Status.Code != "error" || len(s.Events) != 1 || s.Events[0].Attributes["exception.message"] != "panic: handler exploded" ||
			s.Attributes["http.response.status_code"] != json.Number("500") || s.ParentSpanID != clients[srv.URL+"/panic"].SpanID {
			t.Errorf("the panicking handler's span %+v", s)
		}
	}
	if c := clients[srv.URL+"/panic"]; c.Status.Code != "error" || len(c.Events) != 1 {
		t.Errorf("the request whose handler panicked: %+v", c)
	}
	c := clients["http://"+dead+"/x"] // user info is not in url.full
	if c.Status.Code != "error" || len(c.Events) != 1 || c.Events[0].Name != "exception" || c.Attributes["error.type"] == nil {
		t.Errorf("a transport error: %+v", c)
	}
	for k := range clients {
		if strings.Contains(k, "pw@") {
			t.Errorf("url.full carries credentials: %s", k)
		}
	}
	t.Logf("the trace as the receiver draws it:\n%s", rx.tree(t))
}

// TestTracesJoinTheHostsOpenTelemetry: with the real OpenTelemetry SDK as the host's
// tracer, our spans take the host's current span as parent, sampled or not.
func TestTracesJoinTheHostsOpenTelemetry(t *testing.T) {
	rx := startReceiver(t)
	c := tracingClient(t, WithOTel(OTelSettings{Endpoint: rx.httpEndpoint(), Protocol: ProtocolHTTPProtobuf, ServiceName: "go-joined"}))
	exported := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exported))
	defer tp.Shutdown(context.Background())

	hctx, host := tp.Tracer("host").Start(context.Background(), "host.request")
	ctx, ours := c.StartSpan(hctx, "collection.query", GranularityOperation)
	if ours.SpanContext().TraceID != TraceID(host.SpanContext().TraceID()) {
		t.Errorf("our span is in trace %s, the host's is %s", ours.TraceID(), host.SpanContext().TraceID())
	}
	// Inside ours, the traceparent sent downstream is ours, in the host's trace.
	h := http.Header{}
	InjectTraceContext(ctx, h)
	if want := ours.TraceParent(); h.Get("traceparent") != want || !strings.Contains(want, host.SpanContext().TraceID().String()) {
		t.Errorf("injected %q, want %q", h.Get("traceparent"), want)
	}
	ours.End()
	host.End()
	flushSpans(t, c)
	spans := rx.waitSpans(t, 1, 5*time.Second)
	if len(spans) != 1 || spans[0].ParentSpanID != host.SpanContext().SpanID().String() ||
		spans[0].TraceID != host.SpanContext().TraceID().String() {
		t.Fatalf("spans %+v, want one child of %s", spans, host.SpanContext().SpanID())
	}
	if got := exported.GetSpans(); len(got) != 1 || got[0].Name != "host.request" {
		t.Errorf("the host exported %v", got)
	}

	// An unsampled host span: ours follows its decision (parent-based) and sends nothing.
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	nctx, unsampled := never.Tracer("host").Start(context.Background(), "host.unsampled")
	_, child := c.StartSpan(nctx, "collection.query", GranularityOperation)
	if child == nil || child.SpanContext().Sampled || child.IsRecording() || child.TraceID() != unsampled.SpanContext().TraceID().String() {
		t.Errorf("under an unsampled host span: %+v", child.SpanContext())
	}
	child.End()
	unsampled.End()
	flushSpans(t, c)
	if s := c.SpanStats(); s.Recorded != 1 {
		t.Errorf("span stats %+v: the unsampled child was recorded", s)
	}
}

// TestTracesSampledOut: a client that samples nothing still propagates the trace, marked
// not sampled, so a parent-based server records nothing either.
func TestTracesSampledOut(t *testing.T) {
	rx := startReceiver(t)
	client := tracingClient(t, WithOTel(OTelSettings{Endpoint: rx.httpEndpoint(), Protocol: ProtocolHTTPProtobuf, Sampler: "always_off"}))
	server := tracingClient(t, WithOTel(OTelSettings{Endpoint: rx.httpEndpoint(), Protocol: ProtocolHTTPProtobuf}))
	var got string
	srv := httptest.NewServer(server.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("traceparent")
		_, span := server.StartSpan(r.Context(), "work", GranularityOperation)
		if span == nil || span.SpanContext().Sampled {
			t.Errorf("inside an unsampled request: %+v", span.SpanContext())
		}
		span.End()
	})))
	defer srv.Close()
	before := crossings.Load()
	ctx, op := client.StartSpan(context.Background(), "op", GranularityOperation)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := (&http.Client{Transport: client.HTTPTransport(nil)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	op.End()
	if n := crossings.Load() - before; n != 0 {
		t.Errorf("%d calls into C for unsampled spans", n)
	}
	if !strings.HasPrefix(got, "00-"+op.TraceID()+"-") || !strings.HasSuffix(got, "-00") {
		t.Errorf("the server received traceparent %q for trace %s", got, op.TraceID())
	}
	flushSpans(t, client)
	flushSpans(t, server)
	if spans := rx.spans(t); len(spans) != 0 {
		t.Errorf("unsampled spans were exported: %s", names(spans))
	}
	if a, b := client.SpanStats(), server.SpanStats(); a.Recorded+b.Recorded != 0 {
		t.Errorf("span stats %+v %+v", a, b)
	}
}

// TestTracesFaults: an endpoint that is down, refuses with 503, or is slow: spans are
// dropped and counted, never lost silently, and Close keeps to its deadline.
func TestTracesFaults(t *testing.T) {
	invariant := func(t *testing.T, s SpanStats) {
		t.Helper()
		if s.Exported+s.DroppedQueueFull+s.DroppedFailed+s.DroppedShutdown+s.Queued != s.Recorded {
			t.Errorf("the counts do not add up: %+v", s)
		}
	}
	record := func(c *Client, n int) {
		for i := 0; i < n; i++ {
			_, s := c.StartSpan(context.Background(), fmt.Sprintf("op.%d", i), GranularityOperation)
			s.End()
		}
	}
	closeWithin := func(t *testing.T, c *Client, deadline, slack time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		_ = c.Close(ctx)
		if took := time.Since(start); took > deadline+slack {
			t.Errorf("Close took %v with a %v deadline", took, deadline)
		}
	}

	t.Run("endpoint down", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		c := tracingClient(t, WithOTel(OTelSettings{Endpoint: "http://" + addr, Protocol: ProtocolHTTPProtobuf,
			ExportTimeout: 300 * time.Millisecond, ScheduleDelay: 20 * time.Millisecond}))
		record(c, 5)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.FlushSpans(ctx); !errors.Is(err, ErrNotDelivered) && !errors.Is(err, ErrTimeout) {
			t.Errorf("FlushSpans to a closed port: %v", err)
		}
		s := c.SpanStats()
		if s.Recorded != 5 || s.Exported != 0 || s.DroppedFailed+s.DroppedShutdown+s.Queued != 5 || s.FailedRequests == 0 {
			t.Errorf("span stats %+v", s)
		}
		invariant(t, s)
		record(c, 3)
		closeWithin(t, c, 500*time.Millisecond, 300*time.Millisecond)
		s = c.SpanStats()
		if s.Recorded != 8 || s.Exported != 0 || s.Queued != 0 {
			t.Errorf("after Close: %+v", s)
		}
		invariant(t, s)
	})

	t.Run("503 once, then accepted", func(t *testing.T) {
		rx := startReceiver(t)
		rx.fault(t, `{"kind":"status","http_status":503,"retry_after_secs":0,"requests":1}`)
		c := tracingClient(t, WithOTel(OTelSettings{Endpoint: rx.httpEndpoint(), Protocol: ProtocolHTTPProtobuf}))
		record(c, 4)
		flushSpans(t, c)
		s := c.SpanStats()
		if s.Exported != 4 || s.Retries == 0 || s.FailedRequests == 0 {
			t.Errorf("span stats %+v", s)
		}
		if spans := rx.waitSpans(t, 4, 5*time.Second); len(spans) != 4 {
			t.Errorf("%d spans arrived after the retry", len(spans))
		}
	})

	t.Run("503 always", func(t *testing.T) {
		rx := startReceiver(t)
		rx.fault(t, `{"kind":"status","http_status":503}`)
		c := tracingClient(t, WithOTel(OTelSettings{Endpoint: rx.httpEndpoint(), Protocol: ProtocolHTTPProtobuf,
			ExportTimeout: 500 * time.Millisecond}))
		record(c, 4)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.FlushSpans(ctx); !errors.Is(err, ErrNotDelivered) {
			t.Errorf("FlushSpans against a 503: %v", err)
		}
		s := c.SpanStats()
		if s.DroppedFailed != 4 || s.Exported != 0 {
			t.Errorf("span stats %+v", s)
		}
		invariant(t, s)
		if spans := rx.spans(t); len(spans) != 0 {
			t.Errorf("a refused request's spans were recorded: %s", names(spans))
		}
	})

	// A slow endpoint, the export starting at Close (its deadline known from the start),
	// or already under way when Close comes (a FlushSpans that timed out).
	for _, protocol := range []Protocol{ProtocolGRPC, ProtocolHTTPProtobuf} {
		for _, inFlight := range []bool{false, true} {
			name := "slow endpoint " + string(protocol)
			if inFlight {
				name += " export under way at Close"
			}
			t.Run(name, func(t *testing.T) {
				rx := startReceiver(t)
				rx.fault(t, `{"kind":"delay","ms":5000}`)
				endpoint := rx.httpEndpoint()
				if protocol == ProtocolGRPC {
					endpoint = rx.grpcEndpoint()
				}
				c := tracingClient(t, WithOTel(OTelSettings{Endpoint: endpoint, Protocol: protocol}))
				record(c, 6)
				if inFlight {
					ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
					defer cancel()
					if err := c.FlushSpans(ctx); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("FlushSpans against a slow endpoint: %v", err)
					}
				}
				closeWithin(t, c, 400*time.Millisecond, 300*time.Millisecond)
				s := c.SpanStats()
				if s.Recorded != 6 || s.Exported != 0 || s.DroppedShutdown+s.DroppedFailed != 6 {
					t.Errorf("after Close: %+v", s)
				}
				invariant(t, s)
			})
		}
	}
}
