//! Real OTLP from the OpenTelemetry project's own exporter (`opentelemetry-otlp`) over
//! gRPC, HTTP protobuf and HTTP JSON, gzip and plain, decoded by the receiver; and faults
//! as that exporter's transports see them.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use opentelemetry_http::hyper::HyperClient;
use opentelemetry_otlp::{
    Compression, Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_receiver::{Fault, Options, Receiver};
use tonic_types::StatusExt;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn grpc_gzip_with_metadata() {
    let receiver = Receiver::start(Options::default()).unwrap();
    let runtime = common::runtime();
    let _entered = runtime.enter();
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert("x-test-team", "grpc-team".parse().unwrap());
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.grpc_endpoint())
        .with_metadata(metadata)
        .with_compression(Compression::Gzip)
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let provider = common::provider(exporter, "grpc-service");
    let trace_id = common::make_trace(&provider, runtime.handle());
    provider.shutdown().unwrap();

    let spans = receiver.wait_for_spans(3, WAIT);
    common::check_trace(&spans, &trace_id, "grpc-service", "grpc");
    for span in &spans {
        assert!(span.gzip, "grpc-encoding: gzip was sent");
        assert_eq!(span.header("x-test-team"), Some("grpc-team"));
        assert_eq!(span.header("content-type"), Some("application/grpc"));
    }
    assert_eq!(
        receiver.requests(),
        3,
        "one request per span (simple processor)"
    );
    let tree = receiver.tree();
    assert!(
        tree.contains(&format!("trace {trace_id}\n  request (grpc-service) ")),
        "{tree}"
    );
    assert!(tree.contains("\n    db.query "), "{tree}");
}

#[test]
fn http_protobuf_gzip_with_headers() {
    let receiver = Receiver::start(Options::default()).unwrap();
    let runtime = common::runtime();
    let _entered = runtime.enter();
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(receiver.http_traces_url())
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(HyperClient::with_default_connector(
            Duration::from_secs(5),
            None,
        ))
        .with_headers(HashMap::from([(
            "x-honeycomb-team".to_string(),
            "abc".to_string(),
        )]))
        .with_compression(Compression::Gzip)
        .build()
        .unwrap();
    let provider = common::provider(exporter, "http-proto-service");
    let trace_id = common::make_trace(&provider, runtime.handle());
    provider.shutdown().unwrap();

    let spans = receiver.wait_for_spans(3, WAIT);
    common::check_trace(&spans, &trace_id, "http-proto-service", "http/protobuf");
    for span in &spans {
        assert!(span.gzip);
        assert_eq!(span.header("X-Honeycomb-Team"), Some("abc"));
        assert_eq!(span.header("content-encoding"), Some("gzip"));
    }
}

#[test]
fn http_json_plain() {
    let receiver = Receiver::start(Options::default()).unwrap();
    let runtime = common::runtime();
    let _entered = runtime.enter();
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(receiver.http_traces_url())
        .with_protocol(Protocol::HttpJson)
        .with_http_client(HyperClient::with_default_connector(
            Duration::from_secs(5),
            None,
        ))
        .build()
        .unwrap();
    let provider = common::provider(exporter, "http-json-service");
    let trace_id = common::make_trace(&provider, runtime.handle());
    provider.shutdown().unwrap();

    let spans = receiver.wait_for_spans(3, WAIT);
    common::check_trace(&spans, &trace_id, "http-json-service", "http/json");
    for span in &spans {
        assert!(!span.gzip);
        assert_eq!(span.header("content-type"), Some("application/json"));
    }
}

/// The gRPC faults as a plain tonic client of the official service sees them: the status
/// codes with RetryInfo, a delay, garbage; and the fault that lasts one request.
#[test]
fn grpc_faults() {
    let receiver = Receiver::start(Options::default()).unwrap();
    let runtime = common::runtime();
    runtime.block_on(async {
        let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
            .await
            .unwrap();
        let request = ExportTraceServiceRequest::default;

        receiver.set_fault(Fault::Status {
            http_status: 503,
            retry_after_secs: Some(3),
        });
        let status = client.export(request()).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(3)));

        receiver.set_fault(Fault::Status {
            http_status: 429,
            retry_after_secs: None,
        });
        let status = client.export(request()).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.get_details_retry_info().is_none());

        receiver.set_fault_for(
            Fault::Status {
                http_status: 400,
                retry_after_secs: None,
            },
            1,
        );
        let status = client.export(request()).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        client.export(request()).await.expect("one request only");

        receiver.set_fault(Fault::Garbage);
        client.export(request()).await.unwrap_err();

        receiver.set_fault(Fault::Delay { ms: 300 });
        let start = Instant::now();
        client.export(request()).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300));

        receiver.set_fault(Fault::None);
        client.export(request()).await.unwrap();
    });
    assert_eq!(receiver.requests(), 7);
}

/// The HTTP exporter of opentelemetry-otlp against a refusing endpoint: the export fails
/// (no retry policy configured) and nothing is recorded; once the fault is gone it works.
#[test]
fn http_exporter_sees_refusal() {
    let receiver = Receiver::start(Options::default()).unwrap();
    let runtime = common::runtime();
    let _entered = runtime.enter();
    receiver.set_fault_for(
        Fault::Status {
            http_status: 400,
            retry_after_secs: None,
        },
        1,
    );
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(receiver.http_traces_url())
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(HyperClient::with_default_connector(
            Duration::from_secs(5),
            None,
        ))
        .build()
        .unwrap();
    let provider = common::provider(exporter, "refused");
    let trace_id = common::make_trace(&provider, runtime.handle());
    provider.shutdown().unwrap();
    let spans = receiver.wait_for_spans(2, WAIT);
    // The first span (db.query ends first) was refused; the other two arrived.
    assert_eq!(receiver.requests(), 3);
    assert_eq!(spans.len(), 2, "{spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id == trace_id));
    assert!(spans.iter().all(|s| s.name != "db.query"));
}
