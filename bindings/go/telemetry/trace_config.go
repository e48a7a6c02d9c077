package telemetry

// Observability settings in code (WithOTel) and the configuration the library resolved
// from them and the environment (TraceConfig). The library resolves; this file only
// carries values across.

import (
	"encoding/json"
	"math"
	"time"
)

// Granularity is how fine the recorded spans are, on Chroma's scale: a span declared at a
// finer granularity than the configured one is not recorded, and costs almost nothing.
//
// The zero value is "unset": in OTelSettings it leaves the choice to the environment
// (CHROMA_OTEL_GRANULARITY and the like) or the default, and a span declared with it is
// never recorded.
type Granularity uint8

// The granularities, coarsest first.
const (
	// GranularityNone records no span: configured, it turns tracing off.
	GranularityNone Granularity = iota + 1
	// GranularityOperation records the public operations (collection.add, query). The
	// default once an endpoint is configured.
	GranularityOperation
	// GranularityOperationAndSegment also records the segments inside operations.
	GranularityOperationAndSegment
	// GranularityAll records everything, down to the finest helper.
	GranularityAll
)

// String is the name the configuration uses: "none", "operation",
// "operation_and_segment", "all" ("" when unset).
func (g Granularity) String() string {
	switch g {
	case GranularityNone:
		return "none"
	case GranularityOperation:
		return "operation"
	case GranularityOperationAndSegment:
		return "operation_and_segment"
	case GranularityAll:
		return "all"
	}
	return ""
}

// ParseGranularity reads a configuration name ("none", "operation",
// "operation_and_segment", "all"); anything else is the zero Granularity and false.
func ParseGranularity(name string) (Granularity, bool) {
	for g := GranularityNone; g <= GranularityAll; g++ {
		if g.String() == name {
			return g, true
		}
	}
	return 0, false
}

// fromLevel is the Granularity of the C ABI's numeric level (0 none ... 3 all).
func fromLevel(level int) Granularity {
	if level < 0 || level > 3 {
		return GranularityNone
	}
	return Granularity(level + 1)
}

// Protocol is how spans are exported.
type Protocol string

// The OTLP protocols.
const (
	// ProtocolGRPC is OTLP over gRPC (a collector's port 4317): the default for the
	// product's <PREFIX>_OTEL_COLLECTION_ENDPOINT and an endpoint set in code, as Chroma's
	// exporter does.
	ProtocolGRPC Protocol = "grpc"
	// ProtocolHTTPProtobuf is OTLP over HTTP with protobuf bodies (port 4318): the default
	// for the standard OTEL_EXPORTER_OTLP_* endpoints.
	ProtocolHTTPProtobuf Protocol = "http/protobuf"
	// ProtocolHTTPJSON is OTLP over HTTP with JSON bodies.
	ProtocolHTTPJSON Protocol = "http/json"
)

// OTelSettings are observability settings made in code: traces the operator sends to
// their own OpenTelemetry collector, independent of the telemetry opt-out. Every field
// set beats every environment variable (<PREFIX>_OTEL_* of the product, such as
// CHROMA_OTEL_COLLECTION_ENDPOINT, and the standard OTEL_*); a zero field leaves the
// choice to the environment or the default.
type OTelSettings struct {
	// Endpoint is where spans go, read like <PREFIX>_OTEL_COLLECTION_ENDPOINT (gRPC unless
	// Protocol says otherwise; "/v1/traces" is appended for HTTP).
	Endpoint string
	// ServiceName is the resource's service.name (default: the profile's, chromadb for
	// Chroma, otherwise the product's name).
	ServiceName string
	// Headers are sent with every export request (an API key for a hosted backend). A
	// non-nil empty map means "no headers", whatever the environment says.
	Headers map[string]string
	// Granularity is how fine the recorded spans are (default GranularityOperation once
	// an endpoint is configured).
	Granularity Granularity
	// Protocol is how spans are sent.
	Protocol Protocol
	// Sampler names a sampler as OTEL_TRACES_SAMPLER does: "always_on", "always_off",
	// "traceidratio", "parentbased_always_on" (the default), "parentbased_always_off",
	// "parentbased_traceidratio".
	Sampler string
	// SamplerArg is the sampler's argument, as OTEL_TRACES_SAMPLER_ARG (the ratio).
	SamplerArg string
	// ResourceAttributes are more resource attributes; they beat OTEL_RESOURCE_ATTRIBUTES
	// key by key.
	ResourceAttributes map[string]string
	// Disabled turns tracing off whatever the environment says (like OTEL_SDK_DISABLED).
	Disabled bool
	// Compression is "gzip" (the default) or "none".
	Compression string
	// MaxQueueSize bounds the spans held for export (default 2048); more are dropped and
	// counted in SpanStats.DroppedQueueFull.
	MaxQueueSize int
	// MaxExportBatchSize bounds the spans per export request (default 512).
	MaxExportBatchSize int
	// ScheduleDelay is how long a span waits for its batch to fill (default 5 s).
	ScheduleDelay time.Duration
	// ExportTimeout bounds one export request, retries included (default 10 s).
	ExportTimeout time.Duration
}

// otelJSON is the configuration's "otel" object (telemetry-core's OtelSettings).
type otelJSON struct {
	Endpoint           string             `json:"endpoint,omitempty"`
	ServiceName        string             `json:"service_name,omitempty"`
	Headers            *map[string]string `json:"headers,omitempty"`
	Granularity        string             `json:"granularity,omitempty"`
	Protocol           string             `json:"protocol,omitempty"`
	Sampler            string             `json:"sampler,omitempty"`
	SamplerArg         string             `json:"sampler_arg,omitempty"`
	ResourceAttributes map[string]string  `json:"resource_attributes,omitempty"`
	Disabled           *bool              `json:"disabled,omitempty"`
	Compression        string             `json:"compression,omitempty"`
	MaxQueueSize       *int               `json:"max_queue_size,omitempty"`
	MaxExportBatchSize *int               `json:"max_export_batch_size,omitempty"`
	ScheduleDelayMS    *int64             `json:"schedule_delay_ms,omitempty"`
	ExportTimeoutMS    *int64             `json:"export_timeout_ms,omitempty"`
}

// MarshalJSON is the form of OTelSettings that the library reads; it writes only the
// fields that are set.
func (s OTelSettings) MarshalJSON() ([]byte, error) {
	j := otelJSON{
		Endpoint:           s.Endpoint,
		ServiceName:        s.ServiceName,
		Granularity:        s.Granularity.String(),
		Protocol:           string(s.Protocol),
		Sampler:            s.Sampler,
		SamplerArg:         s.SamplerArg,
		ResourceAttributes: s.ResourceAttributes,
		Compression:        s.Compression,
	}
	if s.Headers != nil {
		// An empty map is a setting ("no headers"), so it is written even when empty.
		j.Headers = &s.Headers
	}
	if s.Disabled {
		j.Disabled = &s.Disabled
	}
	if s.MaxQueueSize > 0 {
		j.MaxQueueSize = &s.MaxQueueSize
	}
	if s.MaxExportBatchSize > 0 {
		j.MaxExportBatchSize = &s.MaxExportBatchSize
	}
	if s.ScheduleDelay > 0 {
		j.ScheduleDelayMS = millis(s.ScheduleDelay)
	}
	if s.ExportTimeout > 0 {
		j.ExportTimeoutMS = millis(s.ExportTimeout)
	}
	return json.Marshal(j)
}

// WithOTel makes observability settings in code; each field set beats the environment.
// Without it, traces are configured by the environment alone (CHROMA_OTEL_* for Chroma,
// <PREFIX>_OTEL_* for other profiles, and the standard OTEL_* variables), and nothing is
// recorded until an endpoint is configured. Traces never depend on telemetry consent.
func WithOTel(s OTelSettings) Option {
	return func(c *config) {
		s.Headers = copyMap(s.Headers)
		s.ResourceAttributes = copyMap(s.ResourceAttributes)
		c.OTel = &s
	}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TraceConfig is the observability configuration a client resolved at New, from
// WithOTel and the environment (the library's resolution; Client.TraceConfig).
type TraceConfig struct {
	// Active says spans are recorded at all: an endpoint, not disabled, a granularity
	// above none.
	Active bool `json:"active"`
	// Level is the finest granularity recorded: Granularity when Active, otherwise
	// GranularityNone.
	Level Granularity `json:"-"`
	// Granularity is the configured granularity.
	Granularity Granularity `json:"-"`
	// Endpoint is the URL spans are exported to ("" for none).
	Endpoint string `json:"endpoint"`
	// Protocol is how they are exported.
	Protocol Protocol `json:"protocol"`
	// Headers are the names of the headers sent with every export request; their values
	// are never shown.
	Headers []string `json:"headers"`
	// ServiceName is the resource's service.name.
	ServiceName string `json:"service_name"`
	// Sampler decides which traces are kept.
	Sampler Sampler `json:"sampler"`
	// Disabled says tracing was turned off (OTEL_SDK_DISABLED=true or in code).
	Disabled bool `json:"disabled"`
	// Compression is "gzip" or "none".
	Compression string `json:"compression"`
	// Certificate is the PEM file of CA certificates trusted for HTTPS exports besides
	// the roots ("" for none): OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE, else
	// OTEL_EXPORTER_OTLP_CERTIFICATE, else WithCAFile's (Origins["certificate"] says
	// which).
	Certificate string `json:"certificate"`
	// TLSRoots is where the roots trusted for HTTPS exports come from (WithTLSRoots).
	TLSRoots TLSRoots `json:"tls_roots"`
	// Origins says where each setting came from, by setting name.
	Origins map[string]TraceOrigin `json:"origins"`
	// Warnings are the values that could not be understood, each naming its variable and
	// value; resolving never fails.
	Warnings []string `json:"warnings"`
}

// TraceOrigin is where a resolved setting came from: Kind "code", "env" (Name is the
// variable) or "default".
type TraceOrigin struct {
	Kind string `json:"kind"`
	Name string `json:"name,omitempty"`
}

func parseTraceConfig(text []byte) (TraceConfig, error) {
	var raw struct {
		TraceConfig
		Level       int    `json:"level"`
		Granularity string `json:"granularity"`
	}
	if err := json.Unmarshal(text, &raw); err != nil {
		return TraceConfig{}, newError(CodeInvalidJSON, "trace config from the library: %v", err)
	}
	c := raw.TraceConfig
	c.Level = fromLevel(raw.Level)
	c.Granularity, _ = ParseGranularity(raw.Granularity)
	if !c.Active {
		c.Level = GranularityNone
	}
	return c, nil
}

// Sampler is which traces are kept, decided once per trace at its root
// (OTEL_TRACES_SAMPLER): Kind "always_on", "always_off", "trace_id_ratio" (Ratio) or
// "parent_based" (Root decides for roots, which is one of the other three).
type Sampler struct {
	Kind  string   `json:"kind"`
	Ratio float64  `json:"ratio,omitempty"`
	Root  *Sampler `json:"root,omitempty"`
}

// ShouldSample reports whether a span of the trace traceID is kept; hasParent says the
// span has a parent, whose sampled flag is parentSampled. The ratio rule is the
// specification's, as the Rust and Python bindings decide: the trace id's last 8 bytes,
// big-endian and shifted right once, below Ratio × 2^63.
func (s Sampler) ShouldSample(traceID TraceID, hasParent, parentSampled bool) bool {
	return compileSampler(s).sample(traceID, hasParent, parentSampled)
}

// A compiled sampler: what StartSpan asks, without strings.
type sampler struct {
	parentBased bool
	root        ratioRule // for every span when not parent-based
}

// ratioRule keeps a trace when its id's rule value is below bound; all keeps every trace
// (a ratio of 1 or more: 2^63 does not fit the comparison).
type ratioRule struct {
	all   bool
	bound uint64
}

func compileRule(kind string, ratio float64) ratioRule {
	switch kind {
	case "always_on":
		return ratioRule{all: true}
	case "trace_id_ratio":
		if ratio >= 1 {
			return ratioRule{all: true}
		}
		return ratioRule{bound: uint64(math.Max(ratio, 0) * (1 << 63))}
	}
	return ratioRule{} // always_off, and anything unknown keeps nothing
}

func compileSampler(s Sampler) sampler {
	if s.Kind == "parent_based" {
		root := Sampler{Kind: "always_on"}
		if s.Root != nil {
			root = *s.Root
		}
		return sampler{parentBased: true, root: compileRule(root.Kind, root.Ratio)}
	}
	return sampler{root: compileRule(s.Kind, s.Ratio)}
}

func (r ratioRule) keeps(id *TraceID) bool {
	if r.all {
		return true
	}
	low := uint64(id[8])<<56 | uint64(id[9])<<48 | uint64(id[10])<<40 | uint64(id[11])<<32 |
		uint64(id[12])<<24 | uint64(id[13])<<16 | uint64(id[14])<<8 | uint64(id[15])
	return low>>1 < r.bound
}

func (s sampler) sample(id TraceID, hasParent, parentSampled bool) bool {
	if s.parentBased && hasParent {
		return parentSampled
	}
	return s.root.keeps(&id)
}

// SpanStats are the span counters: Exported + DroppedQueueFull + DroppedFailed +
// DroppedShutdown + Queued = Recorded, always. Unsampled spans and spans finer than the
// configured granularity are never recorded, so they are not counted.
type SpanStats struct {
	// Recorded spans: ended and handed to the library.
	Recorded uint64 `json:"recorded"`
	// Exported spans: the endpoint accepted them.
	Exported uint64 `json:"exported"`
	// DroppedQueueFull spans: the export queue was full (WithOTel's MaxQueueSize).
	DroppedQueueFull uint64 `json:"dropped_queue_full"`
	// DroppedFailed spans: the endpoint refused them or was unreachable after the retries.
	DroppedFailed uint64 `json:"dropped_failed"`
	// DroppedShutdown spans: still queued when Close's deadline passed.
	DroppedShutdown uint64 `json:"dropped_shutdown"`
	// Queued spans wait for export.
	Queued uint64 `json:"queued"`
	// FailedRequests is the number of export requests that failed (retries included).
	FailedRequests uint64 `json:"failed_requests"`
	// Retries is the number of export requests retried.
	Retries uint64 `json:"retries"`
	// Refused spans were ended in Go but refused by the library (over its 4 MiB limit, or
	// ended after Close); counted here in Go, never in Recorded.
	Refused uint64 `json:"-"`
}
