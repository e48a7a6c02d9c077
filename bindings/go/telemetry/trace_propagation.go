package telemetry

// W3C Trace Context: the traceparent and tracestate headers that carry a trace from one
// process to the next. The rules are exactly the Rust core's (otel::propagation), so the
// three bindings accept the same headers (tests/vectors/otel.json, "traceparent").

import (
	"context"
	"net/http"
	"strings"
)

// TraceParent is sc's W3C traceparent header, version 00:
// "00-<trace id>-<span id>-<01 sampled | 00>" ("" when sc is not valid).
func (sc SpanContext) TraceParent() string {
	if !sc.IsValid() {
		return ""
	}
	const hexDigits = "0123456789abcdef"
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	for i, v := range sc.TraceID {
		b[3+2*i], b[4+2*i] = hexDigits[v>>4], hexDigits[v&15]
	}
	b[35] = '-'
	for i, v := range sc.SpanID {
		b[36+2*i], b[37+2*i] = hexDigits[v>>4], hexDigits[v&15]
	}
	b[52], b[53], b[54] = '-', '0', '0'
	if sc.Sampled {
		b[54] = '1'
	}
	return string(b[:])
}

// ParseTraceParent reads a W3C traceparent header (and its tracestate, "" for none) as
// the remote span context it names. It refuses (false) what is not exactly
// "version-traceid-spanid-flags" in 2, 32, 16 and 2 lowercase hex digits, version ff,
// all-zero ids, and a version-00 header with more parts; a later version may add parts
// after the flags. A tracestate that is not valid W3C is dropped, not the traceparent.
func ParseTraceParent(traceparent, tracestate string) (SpanContext, bool) {
	header := strings.TrimSpace(traceparent)
	parts := strings.Split(header, "-")
	if len(parts) < 4 || !lowerHex(parts[0], 2) || parts[0] == "ff" {
		return SpanContext{}, false
	}
	if parts[0] == "00" && len(parts) != 4 {
		return SpanContext{}, false
	}
	if !lowerHex(parts[1], 32) || !lowerHex(parts[2], 16) || !lowerHex(parts[3], 2) {
		return SpanContext{}, false
	}
	sc := SpanContext{Remote: true}
	decodeHex(sc.TraceID[:], parts[1])
	decodeHex(sc.SpanID[:], parts[2])
	var flags [1]byte
	decodeHex(flags[:], parts[3])
	sc.Sampled = flags[0]&1 != 0
	if !sc.IsValid() {
		return SpanContext{}, false
	}
	sc.TraceState = normalizeTraceState(tracestate)
	return sc, true
}

func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// decodeHex decodes checked lowercase hex into dst.
func decodeHex(dst []byte, s string) {
	val := func(c byte) byte {
		if c <= '9' {
			return c - '0'
		}
		return c - 'a' + 10
	}
	for i := range dst {
		dst[i] = val(s[2*i])<<4 | val(s[2*i+1])
	}
}

// normalizeTraceState returns the tracestate's list members joined by commas, or "" when
// it is not valid W3C tracestate (at most 32 members of key=value; keys lowercase
// letters, digits and _-*/ with an optional tenant@vendor form; values printable ASCII
// without , and =, at most 256 characters, not ending in a space), as OpenTelemetry's
// propagators drop an invalid one whole.
func normalizeTraceState(ts string) string {
	if strings.TrimSpace(ts) == "" {
		return ""
	}
	var members []string
	for _, m := range strings.Split(ts, ",") {
		m = strings.Trim(m, " \t")
		if m == "" {
			continue
		}
		key, value, ok := strings.Cut(m, "=")
		if !ok || !traceStateKey(key) || !traceStateValue(value) {
			return ""
		}
		members = append(members, m)
	}
	if len(members) > 32 {
		return ""
	}
	return strings.Join(members, ",")
}

func traceStateKey(k string) bool {
	tenant, vendor, multi := strings.Cut(k, "@")
	if multi {
		return keyPart(tenant, 241, true) && keyPart(vendor, 14, false)
	}
	return keyPart(k, 256, false)
}

func keyPart(s string, max int, digitFirst bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9':
			if i == 0 && !digitFirst {
				return false
			}
		case i > 0 && (c == '_' || c == '-' || c == '*' || c == '/'):
		default:
			return false
		}
	}
	return true
}

func traceStateValue(v string) bool {
	if v == "" || len(v) > 256 || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return false
		}
	}
	return true
}

// InjectTraceContext sets the traceparent (and tracestate) headers for the span context
// a span started from ctx would take as its parent (SpanContextFromContext): what an
// HTTP client puts on its request so the server joins the trace. Nothing is set when
// ctx carries no span context.
func InjectTraceContext(ctx context.Context, header http.Header) {
	sc := SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	header.Set("traceparent", sc.TraceParent())
	if sc.TraceState != "" {
		header.Set("tracestate", sc.TraceState)
	} else {
		header.Del("tracestate")
	}
}

// ExtractTraceContext returns a copy of ctx whose spans are children of the remote span
// named by header's traceparent (and tracestate); ctx itself when there is no valid one.
func ExtractTraceContext(ctx context.Context, header http.Header) context.Context {
	sc, ok := extractHeader(header)
	if !ok {
		return ctx
	}
	return ContextWithRemoteSpanContext(ctx, sc)
}

func extractHeader(header http.Header) (SpanContext, bool) {
	tp := header.Values("traceparent")
	if len(tp) != 1 {
		// None, or several: W3C says a repeated traceparent is invalid.
		return SpanContext{}, false
	}
	return ParseTraceParent(tp[0], strings.Join(header.Values("tracestate"), ","))
}
