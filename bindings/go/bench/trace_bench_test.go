package bench

// Traces: a span with 3 attributes started and ended, this package's beside
// go.opentelemetry.io/otel/sdk with its BatchSpanProcessor and its OTLP/HTTP exporter,
// both exporting over OTLP/HTTP protobuf to the same loopback endpoint that accepts
// everything; and a span filtered out by granularity beside a function that does nothing
// with the same arguments. Each side's export runs in the background as it would in a
// service; a loop ends spans faster than any export, so each side's bounded queue drops
// the excess (ours counts it: %dropped).

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/telemetry-core/telemetry-core/bindings/go/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// otlpSink is a loopback OTLP/HTTP endpoint that accepts every export request.
func otlpSink(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
	}))
	b.Cleanup(srv.Close)
	return srv
}

func tracingClient(b *testing.B, endpoint string, g telemetry.Granularity) *telemetry.Client {
	c, err := telemetry.New(
		telemetry.WithProduct("bench", "1.0.0"),
		telemetry.WithSink(telemetry.SinkMemory),
		telemetry.WithEnvironment(map[string]string{}),
		telemetry.WithOTel(telemetry.OTelSettings{
			Endpoint:    endpoint,
			Protocol:    telemetry.ProtocolHTTPProtobuf,
			Granularity: g,
		}),
	)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func closeClient(b *testing.B, c *telemetry.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Close(ctx)
	if s := c.SpanStats(); s.Recorded > 0 {
		b.ReportMetric(100*float64(s.DroppedQueueFull)/float64(s.Recorded), "%dropped")
	}
}

func BenchmarkSpanRecorded(b *testing.B) {
	c := tracingClient(b, otlpSink(b).URL, telemetry.GranularityOperation)
	ctx := context.Background()
	_, warm := c.StartSpan(ctx, "warm_up", telemetry.GranularityOperation) // starts the export thread
	warm.End()
	_ = c.FlushSpans(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, span := c.StartSpan(ctx, "collection.add", telemetry.GranularityOperation,
			telemetry.WithAttributes(
				telemetry.StringAttr("collection", "docs"),
				telemetry.IntAttr("ids_count", 20),
				telemetry.BoolAttr("with_documents", true)))
		span.End()
	}
	b.StopTimer()
	closeClient(b, c)
}

func BenchmarkSpanRecordedParallel(b *testing.B) {
	c := tracingClient(b, otlpSink(b).URL, telemetry.GranularityOperation)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, span := c.StartSpan(ctx, "collection.add", telemetry.GranularityOperation,
				telemetry.WithAttributes(
					telemetry.StringAttr("collection", "docs"),
					telemetry.IntAttr("ids_count", 20),
					telemetry.BoolAttr("with_documents", true)))
			span.End()
		}
	})
	b.StopTimer()
	closeClient(b, c)
}

// otelSDK is the OpenTelemetry SDK as its docs set it up for production: a batch span
// processor (default queue 2048, batches of 512, 5 s delay, dropping when full) and the
// OTLP/HTTP exporter, sending to url.
func otelSDK(b *testing.B, url string) trace.Tracer {
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(url+"/v1/traces"))
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	})
	return tp.Tracer("bench")
}

func BenchmarkOTelSDKSpan(b *testing.B) {
	tracer := otelSDK(b, otlpSink(b).URL)
	ctx := context.Background()
	_, warm := tracer.Start(ctx, "warm_up")
	warm.End()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, span := tracer.Start(ctx, "collection.add", trace.WithAttributes(
			attribute.String("collection", "docs"),
			attribute.Int("ids_count", 20),
			attribute.Bool("with_documents", true)))
		span.End()
	}
}

func BenchmarkOTelSDKSpanParallel(b *testing.B) {
	tracer := otelSDK(b, otlpSink(b).URL)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, span := tracer.Start(ctx, "collection.add", trace.WithAttributes(
				attribute.String("collection", "docs"),
				attribute.Int("ids_count", 20),
				attribute.Bool("with_documents", true)))
			span.End()
		}
	})
}

// spanFloor does nothing, with StartSpan's receiver kind, arguments and results.
type spanFloor struct{ n int }

//go:noinline
func (f *spanFloor) StartSpan(ctx context.Context, name string, g telemetry.Granularity, opts ...telemetry.SpanOption) (context.Context, *telemetry.TraceSpan) {
	return ctx, nil
}

func BenchmarkFloorSpanFunction(b *testing.B) {
	f := &spanFloor{}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, span := f.StartSpan(ctx, "segment.search", telemetry.GranularityAll,
			telemetry.WithAttributes(
				telemetry.StringAttr("collection", "docs"),
				telemetry.IntAttr("ids_count", 20),
				telemetry.BoolAttr("with_documents", true)))
		span.End()
	}
}

// BenchmarkSpanFiltered: a span declared at GranularityAll while the operator configured
// GranularityOperation (the default).
func BenchmarkSpanFiltered(b *testing.B) {
	c := tracingClient(b, otlpSink(b).URL, telemetry.GranularityOperation)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, span := c.StartSpan(ctx, "segment.search", telemetry.GranularityAll,
			telemetry.WithAttributes(
				telemetry.StringAttr("collection", "docs"),
				telemetry.IntAttr("ids_count", 20),
				telemetry.BoolAttr("with_documents", true)))
		span.End()
	}
	b.StopTimer()
	closeClient(b, c)
	if s := c.SpanStats(); s.Recorded != 0 {
		b.Fatalf("filtered spans were recorded: %+v", s)
	}
}
