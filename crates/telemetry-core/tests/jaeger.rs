//! This library's spans in a real OTLP backend: Jaeger v2, started by `make test-jaeger`
//! (scripts/jaeger/run.sh), receives a trace from a client over gRPC, HTTP protobuf and
//! HTTP JSON, configured the way operators configure Chroma, and returns it from its query
//! API with names, parent links, service name, attributes and the exception event intact.
//!
//! Ignored in `make test`; `make test-jaeger` runs it with `--include-ignored` and
//! `JAEGER_OTLP_GRPC`, `JAEGER_OTLP_HTTP` and `JAEGER_QUERY` set (URLs on 127.0.0.1).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use telemetry_core::env::MapEnvironment;
use telemetry_core::otel::Granularity;
use telemetry_core::sink::{MemorySink, SinkConfig};
use telemetry_core::Client;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run this through `make test-jaeger`"))
}

fn query_trace(service: &str, spans: usize) -> Value {
    let url = format!("{}/api/traces", env("JAEGER_QUERY"));
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(mut response) = ureq::get(&url)
            .query("service", service)
            .query("lookback", "1h")
            .call()
        {
            let body: Value =
                serde_json::from_str(&response.body_mut().read_to_string().unwrap_or_default())
                    .unwrap_or(Value::Null);
            if let Some(trace) = body["data"].as_array().and_then(|d| d.first()) {
                if trace["spans"].as_array().map_or(0, Vec::len) >= spans {
                    return trace.clone();
                }
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("Jaeger has no trace of {spans} spans for {service}; last answer: {last}");
}

#[test]
#[ignore = "needs Jaeger: make test-jaeger"]
fn jaeger_receives_our_traces_over_grpc_http_protobuf_and_http_json() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    for (protocol, mut vars) in [
        (
            "grpc",
            vec![("CHROMA_OTEL_COLLECTION_ENDPOINT", env("JAEGER_OTLP_GRPC"))],
        ),
        (
            "http/protobuf",
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", env("JAEGER_OTLP_HTTP"))],
        ),
        (
            "http/json",
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", env("JAEGER_OTLP_HTTP")),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_string()),
            ],
        ),
    ] {
        let service = format!("chroma-{}-{nanos}", protocol.replace('/', "-"));
        vars.push(("CHROMA_OTEL_SERVICE_NAME", service.clone()));
        vars.push(("CHROMA_OTEL_GRANULARITY", "operation_and_segment".into()));
        let environment: MapEnvironment =
            vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let client = Client::builder("chroma", "1.0.0")
            .environment(environment)
            .sink(SinkConfig::Memory(MemorySink::new()))
            .build()
            .unwrap();
        assert_eq!(client.tracer().config().protocol.as_str(), protocol);
        let trace_id = client
            .tracer()
            .in_span("collection.query", Granularity::Operation, |op| {
                op.set_attribute("n_results", 10);
                client
                    .tracer()
                    .in_span("segment.query", Granularity::OperationAndSegment, |seg| {
                        seg.record_exception("TimeoutError", "segment timed out", None);
                    });
                op.span_context().unwrap().trace_id().to_string()
            });
        assert!(client.tracer().flush(Duration::from_secs(5)), "{protocol}");
        client.shutdown(Duration::from_secs(1));

        let trace = query_trace(&service, 2);
        assert_eq!(trace["traceID"], trace_id, "{protocol}: {trace:#}");
        let spans = trace["spans"].as_array().unwrap();
        let span = |name: &str| {
            spans
                .iter()
                .find(|s| s["operationName"] == name)
                .unwrap_or_else(|| panic!("{protocol}: no {name} in {trace:#}"))
        };
        let (op, seg) = (span("collection.query"), span("segment.query"));
        assert_eq!(seg["references"][0]["refType"], "CHILD_OF");
        assert_eq!(seg["references"][0]["spanID"], op["spanID"]);
        let tag = |s: &Value, key: &str| {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["key"] == key)
                .map(|t| t["value"].clone())
        };
        assert_eq!(tag(op, "n_results"), Some(10.into()), "{protocol}");
        assert_eq!(tag(seg, "error"), Some(true.into()), "{protocol}");
        let logs = seg["logs"].as_array().unwrap();
        assert!(
            logs.iter().any(|l| l["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["value"] == "segment timed out")),
            "{protocol}: the exception event: {seg:#}"
        );
        let process = &trace["processes"][op["processID"].as_str().unwrap()];
        assert_eq!(process["serviceName"], service, "{protocol}");
    }
}
