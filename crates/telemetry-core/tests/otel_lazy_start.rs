//! Nothing starts until a span is recorded: no export thread for a client without an
//! endpoint, with granularity `none`, or configured but idle. Alone in its test binary
//! because it counts the process's threads.

use std::time::Duration;

use otlp_receiver::{Options, Receiver};
use telemetry_core::env::MapEnvironment;
use telemetry_core::otel::{Granularity, OtelSettings};
use telemetry_core::sink::{MemorySink, SinkConfig};
use telemetry_core::Client;

fn traced(env: MapEnvironment, settings: OtelSettings) -> (Client, MemorySink) {
    let memory = MemorySink::new();
    let client = Client::builder("chroma", "1.2.3")
        .environment(env)
        .sink(SinkConfig::Memory(memory.clone()))
        .otel(OtelSettings {
            schedule_delay_ms: Some(20),
            ..settings
        })
        .build()
        .unwrap();
    (client, memory)
}

#[test]
fn granularity_none_and_no_endpoint_record_nothing_and_start_nothing() {
    let rx = Receiver::start(Options::default()).unwrap();
    let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
    let env = MapEnvironment::new()
        .with("CHROMA_OTEL_COLLECTION_ENDPOINT", rx.grpc_endpoint())
        .with("CHROMA_OTEL_GRANULARITY", "none");
    let (off, _) = traced(env, OtelSettings::default());
    let (no_endpoint, _) = traced(MapEnvironment::new(), OtelSettings::default());
    let before = threads();
    for c in [&off, &no_endpoint] {
        c.tracer().in_span("query", Granularity::Operation, |_| ());
        assert!(c.tracer().sdk_tracer().is_none());
        assert_eq!(c.tracer().stats().recorded, 0);
    }
    assert_eq!(
        threads(),
        before,
        "no export thread without spans to export"
    );

    // Configured, but nothing starts until the first span is recorded.
    let (on, _) = traced(
        MapEnvironment::new().with(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", rx.http_addr()),
        ),
        OtelSettings::default(),
    );
    assert_eq!(threads(), before);
    on.tracer().in_span("query", Granularity::Operation, |_| ());
    assert_eq!(rx.wait_for_spans(1, Duration::from_secs(10)).len(), 1);
    assert_eq!(
        threads(),
        before + 1,
        "one export thread, started by the first span"
    );
    drop(on);
    assert_eq!(rx.spans().len(), 1);
}
