//! Traces end to end: spans from the Rust API and from `tracing`, exported over OTLP/HTTP
//! (protobuf and JSON) and gRPC to a real receiver that decodes them with the official
//! definitions; configuration from the environment the way Chroma operators write it;
//! independence from the telemetry opt-out; propagation; and faults (a receiver that is
//! down, slow, refusing or answering garbage): spans dropped and counted, shutdown within
//! the deadline.

use std::time::{Duration, Instant};

use otlp_receiver::{Fault, Options, ReceivedSpan, Receiver};
use telemetry_core::env::MapEnvironment;
use telemetry_core::otel::{propagation, Granularity, OtelSettings, SpanKind, Status};
use telemetry_core::sink::{MemorySink, SinkConfig};
use telemetry_core::Client;

const WAIT: Duration = Duration::from_secs(10);

fn receiver() -> Receiver {
    Receiver::start(Options::default()).unwrap()
}

/// A Chroma client whose telemetry goes to a memory sink and whose traces follow `env`
/// and `settings`; spans are sent as soon as they end.
fn traced(env: MapEnvironment, settings: OtelSettings) -> (Client, MemorySink) {
    let memory = MemorySink::new();
    let settings = OtelSettings {
        schedule_delay_ms: settings.schedule_delay_ms.or(Some(20)),
        ..settings
    };
    let client = Client::builder("chroma", "1.2.3")
        .environment(env)
        .sink(SinkConfig::Memory(memory.clone()))
        .otel(settings)
        .shutdown_deadline(Duration::from_millis(500))
        .build()
        .unwrap();
    (client, memory)
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

fn http_settings(rx: &Receiver, protocol: &str) -> OtelSettings {
    OtelSettings {
        endpoint: Some(format!("http://{}", rx.http_addr())),
        protocol: Some(protocol.into()),
        headers: Some([("x-honeycomb-team".to_string(), "abc".to_string())].into()),
        granularity: Some("operation_and_segment".into()),
        ..OtelSettings::default()
    }
}

/// Nested spans on two threads, attributes, an exception event and an error status, a
/// span filtered by granularity; checked as the receiver decoded them.
fn exercise(client: &Client) {
    let tracer = client.tracer();
    tracer.in_span("collection.add", Granularity::Operation, |op| {
        op.set_attribute("collection_id", "c-1");
        op.set_attribute("ids_count", 3);
        let parent = op.span_context().unwrap();
        let t = tracer.clone();
        std::thread::spawn(move || {
            let seg = t
                .span("segment.write", Granularity::OperationAndSegment)
                .parent(parent)
                .attribute("ok", true)
                .start();
            seg.end();
        })
        .join()
        .unwrap();
        tracer.in_span("helper.too_fine", Granularity::All, |_| ());
        tracer.in_span("embed", Granularity::OperationAndSegment, |seg| {
            let err = std::io::Error::other("model unavailable");
            seg.record_error(&err);
        });
    });
}

fn check_exercise(spans: &[ReceivedSpan], protocol: &str) {
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(spans.iter().all(|s| s.name != "helper.too_fine"));
    let op = by_name(spans, "collection.add");
    let write = by_name(spans, "segment.write");
    let embed = by_name(spans, "embed");
    assert!(op.is_root());
    for child in [write, embed] {
        assert_eq!(child.trace_id, op.trace_id);
        assert_eq!(child.parent_span_id, op.span_id);
    }
    assert_eq!(op.attr("collection_id"), Some(&"c-1".into()));
    assert_eq!(op.attr("ids_count"), Some(&3.into()));
    assert_eq!(write.attr("ok"), Some(&true.into()));
    let exception = embed.event("exception").expect("an exception event");
    assert_eq!(
        exception.attributes["exception.message"],
        "model unavailable"
    );
    assert_eq!(embed.status.code, "error");
    assert_eq!(embed.status.message, "model unavailable");
    assert_eq!(op.service_name(), Some("chromadb"));
    assert_eq!(op.resource["service.version"], "1.2.3");
    assert_eq!(op.resource["telemetry.sdk.language"], "rust");
    assert_eq!(op.header("x-honeycomb-team"), Some("abc"));
    assert_eq!(op.protocol, protocol);
    assert!(op.gzip);
    assert!(op.end_time_unix_nano >= op.start_time_unix_nano);
    assert!(op.end_time_unix_nano >= embed.end_time_unix_nano);
}

#[test]
fn spans_reach_an_otlp_receiver_over_http_protobuf_json_and_grpc() {
    for protocol in ["http/protobuf", "http/json", "grpc"] {
        let rx = receiver();
        let settings = if protocol == "grpc" {
            OtelSettings {
                endpoint: Some(rx.grpc_endpoint()),
                ..http_settings(&rx, protocol)
            }
        } else {
            http_settings(&rx, protocol)
        };
        let (client, _) = traced(MapEnvironment::new(), settings);
        exercise(&client);
        let spans = rx.wait_for_spans(3, WAIT);
        check_exercise(&spans, protocol);
        let stats = client.shutdown(Duration::from_secs(1));
        let s = client.tracer().stats();
        assert_eq!(
            (s.recorded, s.exported, s.dropped()),
            (3, 3, 0),
            "{stats:?} {s:?}"
        );
    }
}

#[test]
fn chroma_variables_configure_traces_and_the_telemetry_opt_out_does_not_stop_them() {
    let rx = receiver();
    let env = MapEnvironment::new()
        .with("ANONYMIZED_TELEMETRY", "False")
        .with("CHROMA_OTEL_COLLECTION_ENDPOINT", rx.grpc_endpoint())
        .with("CHROMA_OTEL_SERVICE_NAME", "my-chroma")
        .with("CHROMA_OTEL_COLLECTION_HEADERS", r#"{"x-tenant": "t1"}"#)
        .with("CHROMA_OTEL_GRANULARITY", "operation");
    let (client, memory) = traced(env, OtelSettings::default());
    assert!(!client.is_enabled());
    client.capture(telemetry_core::Event::new("client_start"));
    client
        .tracer()
        .in_span("query", Granularity::Operation, |s| {
            s.set_attribute("n_results", 10);
            client
                .tracer()
                .in_span("segment.query", Granularity::OperationAndSegment, |_| ());
        });
    let spans = rx.wait_for_spans(1, WAIT);
    client.shutdown(Duration::from_secs(1));
    assert_eq!(
        spans.len(),
        1,
        "operation granularity keeps only the operation"
    );
    assert_eq!(spans[0].service_name(), Some("my-chroma"));
    assert_eq!(spans[0].header("x-tenant"), Some("t1"));
    assert_eq!(spans[0].protocol, "grpc");
    assert!(memory.events().is_empty(), "telemetry stays off");
}

#[test]
fn tracing_spans_are_exported_with_their_levels_as_granularities() {
    use tracing_subscriber::layer::SubscriberExt;
    let rx = receiver();
    let (client, _) = traced(
        MapEnvironment::new(),
        OtelSettings {
            granularity: Some("operation".into()),
            ..http_settings(&rx, "http/protobuf")
        },
    );
    let subscriber = tracing_subscriber::registry().with(client.tracer().tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        let op = tracing::info_span!("collection.query", n_results = 5).entered();
        tracing::info!(rows = 2, "fetched");
        let _fine = tracing::debug_span!("segment.query").entered();
        drop(op);
    });
    let spans = rx.wait_for_spans(1, WAIT);
    client.shutdown(Duration::from_secs(1));
    assert_eq!(
        spans.len(),
        1,
        "a DEBUG span is a segment: filtered at operation"
    );
    assert_eq!(spans[0].name, "collection.query");
    assert_eq!(spans[0].attr("n_results"), Some(&5.into()));
    assert_eq!(spans[0].events.len(), 1, "the event inside the span");
}

#[test]
fn a_traceparent_joins_the_callers_trace_and_the_current_span_is_injected() {
    let rx = receiver();
    let (client, _) = traced(MapEnvironment::new(), http_settings(&rx, "http/protobuf"));
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let server = client
        .tracer()
        .span("GET /api/v1/heartbeat", Granularity::Operation)
        .kind(SpanKind::Server)
        .parent_traceparent(incoming, Some("congo=t61rcWkgMzE"))
        .start();
    let outgoing = {
        let entered = server.enter();
        let header = propagation::current_traceparent().unwrap();
        entered.set_status(Status::Ok);
        header
    };
    let spans = rx.wait_for_spans(1, WAIT);
    client.shutdown(Duration::from_secs(1));
    let s = &spans[0];
    assert_eq!(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(s.parent_span_id, "00f067aa0ba902b7");
    assert_eq!(s.trace_state, "congo=t61rcWkgMzE");
    assert_eq!(s.kind, "server");
    assert_eq!(s.status.code, "ok");
    assert_eq!(outgoing, format!("00-{}-{}-01", s.trace_id, s.span_id));
    assert!(
        propagation::current_traceparent().is_none(),
        "the span is no longer current"
    );
}

#[test]
fn a_hosts_own_opentelemetry_span_is_the_parent() {
    use opentelemetry::trace::{TraceContextExt, Tracer as _, TracerProvider as _};
    let rx = receiver();
    let (client, _) = traced(MapEnvironment::new(), http_settings(&rx, "http/protobuf"));
    // The host's own SDK pipeline, independent of ours.
    let host = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let host_tracer = host.tracer("host-app");
    let host_span = host_tracer.start("host.request");
    let cx = opentelemetry::Context::current_with_span(host_span);
    let host_ids = cx.span().span_context().clone();
    {
        let _attached = cx.attach();
        client
            .tracer()
            .in_span("query", Granularity::Operation, |_| ());
    }
    let spans = rx.wait_for_spans(1, WAIT);
    client.shutdown(Duration::from_secs(1));
    assert_eq!(spans[0].trace_id, host_ids.trace_id().to_string());
    assert_eq!(spans[0].parent_span_id, host_ids.span_id().to_string());
}

#[test]
fn sampling_always_off_records_nothing() {
    let rx = receiver();
    let (client, _) = traced(
        MapEnvironment::new().with("OTEL_TRACES_SAMPLER", "always_off"),
        http_settings(&rx, "http/protobuf"),
    );
    client
        .tracer()
        .in_span("query", Granularity::Operation, |s| {
            assert!(!s.is_recording());
        });
    client.shutdown(Duration::from_secs(1));
    assert_eq!(client.tracer().stats().recorded, 0);
    assert_eq!(rx.requests(), 0);
}

fn ended_spans(client: &Client, n: usize) {
    for i in 0..n {
        client
            .tracer()
            .span("op", Granularity::Operation)
            .attribute("i", i as i64)
            .start()
            .end();
    }
}

#[test]
fn faults_drop_and_count_spans_and_shutdown_keeps_its_deadline() {
    // Refused for a while with Retry-After, then accepted: retried, nothing lost.
    let rx = receiver();
    rx.set_fault_for(
        Fault::Status {
            http_status: 503,
            retry_after_secs: Some(0),
        },
        2,
    );
    let (client, _) = traced(MapEnvironment::new(), http_settings(&rx, "http/protobuf"));
    ended_spans(&client, 5);
    assert_eq!(rx.wait_for_spans(5, WAIT).len(), 5);
    let s = client.shutdown(Duration::from_secs(1));
    let _ = s;
    let s = client.tracer().stats();
    assert_eq!(
        (s.exported, s.retries, s.failed_requests),
        (5, 2, 2),
        "{s:?}"
    );

    // 429 over gRPC: retried too.
    let rx = receiver();
    rx.set_fault_for(
        Fault::Status {
            http_status: 429,
            retry_after_secs: None,
        },
        1,
    );
    let (client, _) = traced(
        MapEnvironment::new(),
        OtelSettings {
            endpoint: Some(rx.grpc_endpoint()),
            ..OtelSettings::default()
        },
    );
    ended_spans(&client, 2);
    assert_eq!(rx.wait_for_spans(2, WAIT).len(), 2);
    client.shutdown(Duration::from_secs(1));
    assert_eq!(client.tracer().stats().retries, 1);

    // RESOURCE_EXHAUSTED with a RetryInfo delay: retried after that delay, not sooner.
    let rx = receiver();
    rx.set_fault_for(
        Fault::Status {
            http_status: 429,
            retry_after_secs: Some(1),
        },
        1,
    );
    let (client, _) = traced(
        MapEnvironment::new(),
        OtelSettings {
            endpoint: Some(rx.grpc_endpoint()),
            ..OtelSettings::default()
        },
    );
    let t = Instant::now();
    ended_spans(&client, 1);
    assert_eq!(rx.wait_for_spans(1, WAIT).len(), 1);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    client.shutdown(Duration::from_secs(1));
    assert_eq!(client.tracer().stats().retries, 1);

    // A bad request is not retried: dropped and counted as failed.
    let rx = receiver();
    rx.set_fault(Fault::Status {
        http_status: 400,
        retry_after_secs: None,
    });
    let (client, _) = traced(MapEnvironment::new(), http_settings(&rx, "http/protobuf"));
    ended_spans(&client, 3);
    assert!(!client.tracer().flush(WAIT));
    let s = client.tracer().stats();
    assert_eq!((s.dropped_failed, s.retries, s.queued), (3, 0, 0), "{s:?}");

    // Garbage in a 200 is still a 200: accepted.
    let rx = receiver();
    rx.set_fault(Fault::Garbage);
    let (client, _) = traced(MapEnvironment::new(), http_settings(&rx, "http/protobuf"));
    ended_spans(&client, 2);
    assert!(client.tracer().flush(WAIT));
    assert_eq!(client.tracer().stats().exported, 2);

    // Slow and down: shutdown returns by its deadline and counts what it could not send.
    let slow = receiver();
    slow.set_fault(Fault::Delay { ms: 5_000 });
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for (what, settings) in [
        ("slow http", http_settings(&slow, "http/protobuf")),
        (
            "slow grpc",
            OtelSettings {
                endpoint: Some(slow.grpc_endpoint()),
                ..OtelSettings::default()
            },
        ),
        (
            "down",
            OtelSettings {
                endpoint: Some(format!("http://{dead}")),
                protocol: Some("http/protobuf".into()),
                ..OtelSettings::default()
            },
        ),
    ] {
        let (client, _) = traced(MapEnvironment::new(), settings);
        ended_spans(&client, 4);
        std::thread::sleep(Duration::from_millis(100)); // the export is under way
        let t = Instant::now();
        client.shutdown(Duration::from_millis(300));
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(450),
            "{what}: shutdown took {took:?}"
        );
        let s = client.tracer().stats();
        assert_eq!(s.recorded, 4, "{what}");
        assert_eq!(
            s.exported + s.dropped() + s.queued,
            s.recorded,
            "{what}: {s:?}"
        );
        assert_eq!(s.exported, 0, "{what}: {s:?}");
        assert_eq!(
            (s.queued, s.dropped()),
            (0, 4),
            "{what}: all counted at the deadline: {s:?}"
        );
        ended_spans(&client, 1);
        assert_eq!(
            client.tracer().stats().dropped_shutdown,
            s.dropped_shutdown + 1
        );
        // A second shutdown (the drop after an explicit one) does not wait again, and the
        // request still under way is not counted twice when it ends.
        let t = Instant::now();
        drop(client);
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{what}: drop took {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let slow = receiver();
    slow.set_fault(Fault::Delay { ms: 2_000 });
    let (client, _) = traced(
        MapEnvironment::new(),
        OtelSettings {
            max_queue_size: Some(10),
            max_export_batch_size: Some(5),
            ..http_settings(&slow, "http/protobuf")
        },
    );
    let t = Instant::now();
    ended_spans(&client, 1_000);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "ending spans never waits"
    );
    let s = client.tracer().stats();
    assert!(s.dropped_queue_full >= 980, "{s:?}");
    assert_eq!(s.exported + s.dropped() + s.queued, s.recorded);
    client.shutdown(Duration::from_millis(200));
    let s = client.tracer().stats();
    assert_eq!(s.exported + s.dropped() + s.queued, 1_000, "{s:?}");
}

#[test]
fn a_tracer_without_a_client_is_shut_down_by_the_default_deadline_when_dropped() {
    let slow = receiver();
    slow.set_fault(Fault::Delay { ms: 5_000 });
    let tracer = telemetry_core::otel::Tracer::new(
        &telemetry_core::profile::Profile::Qdrant,
        "qdrant",
        "1.0",
        "rust",
        &OtelSettings {
            schedule_delay_ms: Some(10),
            ..http_settings(&slow, "http/protobuf")
        },
        &MapEnvironment::new(),
    );
    tracer.in_span("search", Granularity::Operation, |_| ());
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    drop(tracer);
    assert!(
        t.elapsed() < Duration::from_millis(1_300),
        "{:?}",
        t.elapsed()
    );
}
