package telemetry

// Traced HTTP: a client transport that makes a client span per request and sends the
// W3C traceparent, and a server handler that continues the caller's trace in a server
// span. Attribute names are OpenTelemetry's HTTP semantic conventions.

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// HTTPOption adjusts HTTPTransport and HTTPHandler.
type HTTPOption func(*httpOptions)

type httpOptions struct {
	granularity Granularity
	name        func(*http.Request) string
}

func buildHTTPOptions(opts []HTTPOption) httpOptions {
	o := httpOptions{granularity: GranularityOperation}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithHTTPGranularity declares the HTTP spans at g (default GranularityOperation).
func WithHTTPGranularity(g Granularity) HTTPOption {
	return func(o *httpOptions) { o.granularity = g }
}

// WithHTTPSpanName names each HTTP span by name(request) instead of the default ("HTTP
// GET" for a client span, "GET /path" or the ServeMux route's "GET /items/{id}" for a
// server span).
func WithHTTPSpanName(name func(*http.Request) string) HTTPOption {
	return func(o *httpOptions) { o.name = name }
}

// HTTPTransport wraps base (http.DefaultTransport when nil) so that each request is a
// client span, a child of the request context's current span, and carries that span's
// traceparent (and tracestate): a server that reads them (HTTPHandler, or any
// OpenTelemetry server) continues the trace. Span attributes: http.request.method,
// url.full (without user info), server.address, server.port, http.response.status_code,
// and error.type for failures; a transport error, or a status of 400 or more, sets the
// span's status to error. The span ends when RoundTrip returns (the response's headers
// have arrived).
//
// When the span is not recorded (a finer granularity than configured, tracing off), the
// request still carries the context's traceparent, if any, so the trace continues
// downstream.
func (c *Client) HTTPTransport(base http.RoundTripper, opts ...HTTPOption) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{c: c, base: base, o: buildHTTPOptions(opts)}
}

// WrapTransport is client.HTTPTransport(base, opts...).
func WrapTransport(client *Client, base http.RoundTripper, opts ...HTTPOption) http.RoundTripper {
	return client.HTTPTransport(base, opts...)
}

type transport struct {
	c    *Client
	base http.RoundTripper
	o    httpOptions
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	name := ""
	if t.c.Tracing(t.o.granularity) {
		if t.o.name != nil {
			name = t.o.name(req)
		} else {
			name = "HTTP " + req.Method
		}
	}
	ctx, span := t.c.StartSpan(ctx, name, t.o.granularity, WithSpanKind(SpanKindClient))
	sc := SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return t.base.RoundTrip(req)
	}
	// A RoundTripper must not modify the request: the headers go on a copy.
	out := req.Clone(ctx)
	out.Header.Set("traceparent", sc.TraceParent())
	if sc.TraceState != "" {
		out.Header.Set("tracestate", sc.TraceState)
	}
	if span != nil {
		host, port := hostPort(req.URL.Host, req.URL.Scheme)
		attrs := [5]Attribute{
			StringAttr("http.request.method", req.Method),
			StringAttr("url.full", redactedURL(req)),
			StringAttr("server.address", host),
		}
		n := 3
		if port > 0 {
			attrs[n] = IntAttr("server.port", port)
			n++
		}
		span.SetAttributes(attrs[:n]...)
	}
	resp, err := t.base.RoundTrip(out)
	if span != nil {
		switch {
		case err != nil:
			span.SetAttributes(StringAttr("error.type", errorType(err)))
			span.RecordError(err)
		case resp != nil:
			span.SetAttributes(IntAttr("http.response.status_code", resp.StatusCode))
			if resp.StatusCode >= 400 {
				span.SetAttributes(StringAttr("error.type", strconv.Itoa(resp.StatusCode)))
				span.SetStatus(StatusError, "")
			}
		}
		span.End()
	}
	return resp, err
}

// redactedURL is the request's URL without user info (semantic conventions: url.full
// never carries credentials).
func redactedURL(req *http.Request) string {
	u := *req.URL
	u.User = nil
	return u.String()
}

// hostPort splits an URL host into the host and the port (the scheme's default when it
// has none; 0 when unknown).
func hostPort(hostport, scheme string) (string, int) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
		switch scheme {
		case "http":
			return host, 80
		case "https":
			return host, 443
		}
		return host, 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// HTTPHandler wraps h so that each request is a server span, a child of the caller's
// span when the request carries a valid traceparent (and tracestate), and the current
// span of r.Context() while h runs. Its name is "METHOD path", or "METHOD route" when h is
// a ServeMux whose pattern matched ("GET /items/{id}"); attributes: http.request.method,
// url.path, url.scheme, server.address, http.route, http.response.status_code, and
// error.type with a status of 500 or more, which also sets the span's status to error. A
// panic in h is recorded on the span (status error) and goes on.
//
// When tracing is off, or the span is finer than configured, h is called as it is.
func (c *Client) HTTPHandler(h http.Handler, opts ...HTTPOption) http.Handler {
	return &handler{c: c, next: h, o: buildHTTPOptions(opts)}
}

// WrapHandler is client.HTTPHandler(h, opts...).
func WrapHandler(client *Client, h http.Handler, opts ...HTTPOption) http.Handler {
	return client.HTTPHandler(h, opts...)
}

type handler struct {
	c    *Client
	next http.Handler
	o    httpOptions
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.c.Tracing(h.o.granularity) {
		h.next.ServeHTTP(w, r)
		return
	}
	var spanOpts [2]SpanOption
	spanOpts[0] = WithSpanKind(SpanKindServer)
	n := 1
	if parent, ok := extractHeader(r.Header); ok {
		spanOpts[1] = WithRemoteParent(parent)
		n++
	}
	name := ""
	if h.o.name != nil {
		name = h.o.name(r)
	} else {
		name = r.Method + " " + r.URL.Path
	}
	ctx, span := h.c.StartSpan(r.Context(), name, h.o.granularity, spanOpts[:n]...)
	if span == nil {
		h.next.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host, _ := hostPort(r.Host, scheme)
	span.SetAttributes(
		StringAttr("http.request.method", r.Method),
		StringAttr("url.path", r.URL.Path),
		StringAttr("url.scheme", scheme),
		StringAttr("server.address", host),
	)
	rec := &statusRecorder{ResponseWriter: w}
	r2 := r.WithContext(ctx)
	defer func() {
		v := recover()
		if v != nil {
			span.RecordError(fmt.Errorf("panic: %v", v))
			if !rec.wrote {
				rec.status = http.StatusInternalServerError
			}
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		if r2.Pattern != "" {
			route := r2.Pattern
			if _, path, ok := strings.Cut(route, " "); ok {
				route = path // "GET /items/{id}": the method is said already
			}
			span.SetAttributes(StringAttr("http.route", route))
			if h.o.name == nil {
				span.SetName(r.Method + " " + route)
			}
		}
		span.SetAttributes(IntAttr("http.response.status_code", status))
		if status >= 500 {
			span.SetAttributes(StringAttr("error.type", strconv.Itoa(status)))
			span.SetStatus(StatusError, "")
		}
		span.End()
		if v != nil {
			panic(v)
		}
	}()
	h.next.ServeHTTP(rec, r2)
}

// statusRecorder remembers the status a handler wrote. It keeps the writer's optional
// interfaces working: Flush and Hijack directly, the rest through Unwrap
// (http.ResponseController).
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status = code
		if code >= 200 || code == http.StatusSwitchingProtocols {
			s.wrote = true
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wrote {
		s.wrote = true
		if s.status == 0 || s.status < 200 {
			s.status = http.StatusOK
		}
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if !s.wrote {
		s.wrote = true
		if s.status == 0 {
			s.status = http.StatusOK
		}
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil && !s.wrote {
		s.wrote, s.status = true, http.StatusSwitchingProtocols
	}
	return conn, rw, err
}
