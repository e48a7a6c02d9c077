//! What the export tests share: a small trace made with the real OpenTelemetry SDK
//! (nested spans, a span ended on another thread, attributes of every type, an event, an
//! error status), and the checks that it arrived whole.
#![allow(dead_code)] // each test file uses its own part of this module

use std::thread;

use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use opentelemetry_sdk::Resource;
use otlp_receiver::ReceivedSpan;
use serde_json::json;

/// A provider exporting each span as it ends (the simple processor), so the test needs
/// no flush timing. Its resource is built empty: no `OTEL_*` variable of the machine
/// reaches it.
pub fn provider(exporter: impl SpanExporter + 'static, service: &str) -> SdkTracerProvider {
    let resource = Resource::builder_empty()
        .with_service_name(service.to_string())
        .with_attribute(KeyValue::new("deployment.environment.name", "test"))
        .build();
    SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource)
        .build()
}

/// Three spans: `request` (server) > `db.query` (client, ended on another thread) and
/// `request` > `render` (an event and an error status). Returns the trace id as hex.
///
/// The exporters need the tokio runtime in context on every thread that ends a span
/// (tonic's channel and hyper's client spawn onto it), so the other thread enters it too.
pub fn make_trace(provider: &SdkTracerProvider, runtime: &tokio::runtime::Handle) -> String {
    let tracer = provider.tracer_with_scope(
        InstrumentationScope::builder("otlp-receiver-tests")
            .with_version("1.2.3")
            .build(),
    );
    let root = tracer
        .span_builder("request")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.response.status_code", 200),
            KeyValue::new("cache.hit", true),
            KeyValue::new("load", 0.25),
            KeyValue::new("ids", Value::Array(Array::I64(vec![1, 2, 3]))),
        ])
        .start(&tracer);
    let trace_id = root.span_context().trace_id().to_string();
    let cx = Context::current_with_span(root);

    let db = tracer
        .span_builder("db.query")
        .with_kind(SpanKind::Client)
        .with_attributes([KeyValue::new("db.system.name", "sqlite")])
        .start_with_context(&tracer, &cx);
    let handle = runtime.clone();
    thread::spawn(move || {
        let _entered = handle.enter();
        let mut db = db;
        db.end();
    })
    .join()
    .expect("the span thread");

    let mut render = tracer.start_with_context("render", &cx);
    render.add_event(
        "cache.miss",
        vec![KeyValue::new("key", "items"), KeyValue::new("attempt", 2)],
    );
    render.set_status(Status::error("template missing"));
    render.end();

    cx.span().end();
    trace_id
}

/// Checks the spans of [`make_trace`] as the receiver decoded them.
pub fn check_trace(spans: &[ReceivedSpan], trace_id: &str, service: &str, protocol: &str) {
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
    };
    let root = find("request");
    let db = find("db.query");
    let render = find("render");
    for span in spans {
        assert_eq!(span.trace_id, trace_id);
        assert_eq!(span.trace_id.len(), 32);
        assert_eq!(span.span_id.len(), 16);
        assert_eq!(span.service_name(), Some(service));
        assert_eq!(span.resource["deployment.environment.name"], json!("test"));
        assert_eq!(span.scope_name, "otlp-receiver-tests");
        assert_eq!(span.scope_version, "1.2.3");
        assert_eq!(span.protocol, protocol);
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        assert!(span.start_time_unix_nano > 1_600_000_000_000_000_000);
    }
    assert!(root.is_root());
    assert_eq!(root.kind, "server");
    assert_eq!(root.attr("http.request.method"), Some(&json!("GET")));
    assert_eq!(root.attr("http.response.status_code"), Some(&json!(200)));
    assert_eq!(root.attr("cache.hit"), Some(&json!(true)));
    assert_eq!(root.attr("load"), Some(&json!(0.25)));
    assert_eq!(root.attr("ids"), Some(&json!([1, 2, 3])));
    assert_eq!(root.status.code, "unset");

    assert_eq!(db.parent_span_id, root.span_id);
    assert_eq!(db.kind, "client");
    assert_eq!(db.attr("db.system.name"), Some(&json!("sqlite")));

    assert_eq!(render.parent_span_id, root.span_id);
    assert_eq!(render.kind, "internal");
    assert_eq!(render.status.code, "error");
    assert_eq!(render.status.message, "template missing");
    let event = render.event("cache.miss").expect("the event");
    assert_eq!(event.attributes["key"], json!("items"));
    assert_eq!(event.attributes["attempt"], json!(2));
    assert!(event.time_unix_nano >= render.start_time_unix_nano);
}

/// A runtime for the exporters: one worker drives tonic's and hyper's connections while
/// the test thread blocks in the SDK's simple processor.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
