//! The harness's own end-to-end check, against a real OTLP backend: Jaeger v2, started by
//! `make test-jaeger` (scripts/jaeger/run.sh), receives a trace from the OpenTelemetry
//! project's exporter over gRPC, HTTP protobuf and HTTP JSON, and returns it from its
//! query API with names, parent links, service name, attributes and events intact.
//!
//! Ignored in `make test`; `make test-jaeger` runs it with `--include-ignored` and
//! `JAEGER_OTLP_GRPC`, `JAEGER_OTLP_HTTP` and `JAEGER_QUERY` set (URLs on 127.0.0.1).

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_http::hyper::HyperClient;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use serde_json::Value;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run this through `make test-jaeger`"))
}

/// A service name no earlier run on the same Jaeger can have used.
fn unique_service(protocol: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("otlp-receiver-{protocol}-{}-{nanos}", std::process::id())
}

/// Polls `GET /api/traces?service=NAME` until one trace with `spans` spans is there.
fn query_trace(service: &str, spans: usize) -> Value {
    let url = format!("{}/api/traces", env("JAEGER_QUERY"));
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        let response = ureq::get(&url)
            .query("service", service)
            .query("lookback", "1h")
            .call();
        if let Ok(mut response) = response {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
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

/// Checks the trace of `common::make_trace` in Jaeger's JSON.
fn check_jaeger_trace(trace: &Value, trace_id: &str, service: &str) {
    assert_eq!(trace["traceID"], trace_id, "{trace:#}");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3, "{trace:#}");
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s["operationName"] == name)
            .unwrap_or_else(|| panic!("no span {name}: {trace:#}"))
    };
    let tag = |span: &Value, key: &str| {
        span["tags"]
            .as_array()
            .and_then(|tags| tags.iter().find(|t| t["key"] == key))
            .map(|t| t["value"].clone())
    };
    let root = find("request");
    let db = find("db.query");
    let render = find("render");
    assert!(root["references"].as_array().is_none_or(Vec::is_empty));
    for child in [db, render] {
        let reference = &child["references"][0];
        assert_eq!(reference["refType"], "CHILD_OF", "{child:#}");
        assert_eq!(reference["spanID"], root["spanID"], "{child:#}");
    }
    assert_eq!(tag(root, "http.request.method"), Some("GET".into()));
    assert_eq!(tag(root, "http.response.status_code"), Some(200.into()));
    assert_eq!(tag(db, "db.system.name"), Some("sqlite".into()));
    assert_eq!(tag(render, "error"), Some(true.into()), "{render:#}");
    let logs = render["logs"].as_array().expect("the event as a log");
    let event = logs[0]["fields"].as_array().unwrap();
    assert!(
        event
            .iter()
            .any(|f| f["key"] == "event" && f["value"] == "cache.miss"),
        "{render:#}"
    );
    let process = &trace["processes"][root["processID"].as_str().unwrap()];
    assert_eq!(process["serviceName"], service);
}

#[test]
#[ignore = "needs a running Jaeger: make test-jaeger"]
fn jaeger_receives_grpc() {
    let runtime = common::runtime();
    let _entered = runtime.enter();
    let service = unique_service("grpc");
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(env("JAEGER_OTLP_GRPC"))
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let provider = common::provider(exporter, &service);
    let trace_id = common::make_trace(&provider, runtime.handle());
    provider.shutdown().unwrap();
    check_jaeger_trace(&query_trace(&service, 3), &trace_id, &service);
}

#[test]
#[ignore = "needs a running Jaeger: make test-jaeger"]
fn jaeger_receives_http_protobuf_and_json() {
    let runtime = common::runtime();
    let _entered = runtime.enter();
    for (protocol, name) in [
        (Protocol::HttpBinary, "http-proto"),
        (Protocol::HttpJson, "http-json"),
    ] {
        let service = unique_service(name);
        let exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", env("JAEGER_OTLP_HTTP")))
            .with_protocol(protocol)
            .with_http_client(HyperClient::with_default_connector(
                Duration::from_secs(5),
                None,
            ))
            .build()
            .unwrap();
        let provider = common::provider(exporter, &service);
        let trace_id = common::make_trace(&provider, runtime.handle());
        provider.shutdown().unwrap();
        check_jaeger_trace(&query_trace(&service, 3), &trace_id, &service);
    }
}
