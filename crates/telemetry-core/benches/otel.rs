//! `make bench`: traces. A span with three attributes started and ended through this
//! library's `Tracer`, beside the same span through the OpenTelemetry SDK used directly
//! (its `BatchSpanProcessor` and an exporter that posts OTLP/protobuf with ureq, to the
//! same loopback receiver); target: within 1.5×. And a span filtered out by granularity
//! around a small function, beside the bare function; target: ≤ 1.2×. Printed side by
//! side in the same run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use prost::Message;
use telemetry_core::env::MapEnvironment;
use telemetry_core::otel::{Granularity, OtelSettings};
use telemetry_core::sink::{MemorySink, SinkConfig};
use telemetry_core::Client;

/// What `opentelemetry-otlp`'s HTTP exporter does, without its async client: encode the
/// batch with the official definitions and post it.
#[derive(Debug)]
struct PostExporter {
    url: String,
    agent: ureq::Agent,
    resource: ResourceAttributesWithSchema,
}

impl SpanExporter for PostExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        let _ = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/x-protobuf")
            .send(&request.encode_to_vec()[..]);
        Ok(())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const BATCH: usize = 1_000;
const ROUNDS: usize = 150;

/// Nanoseconds per span of `span()` over rounds of `BATCH`, flushing between rounds (not
/// timed) so neither pipeline drops for a full queue.
fn per_span(mut span: impl FnMut(usize), mut flush: impl FnMut()) -> f64 {
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for i in 0..BATCH {
            span(i);
        }
        samples.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        flush();
    }
    median(samples)
}

#[inline(never)]
fn work(x: u64) -> u64 {
    // The smallest thing worth a span: hashing one key, as a map lookup does (~10 ns).
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(x);
    h.finish()
}

fn main() {
    let rx = otlp_receiver::Receiver::start(otlp_receiver::Options::default()).unwrap();
    let url = rx.http_traces_url();

    // Ours: a client configured like an operator would, over OTLP/HTTP protobuf.
    let client = Client::builder("bench", "1.0")
        .environment(MapEnvironment::new())
        .sink(SinkConfig::Memory(MemorySink::new()))
        .otel(OtelSettings {
            endpoint: Some(format!("http://{}", rx.http_addr())),
            protocol: Some("http/protobuf".into()),
            compression: Some("none".into()),
            max_queue_size: Some(2 * BATCH),
            ..OtelSettings::default()
        })
        .build()
        .unwrap();
    let tracer = client.tracer().clone();

    // The SDK directly: its batch processor (same queue size) and a plain exporter.
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name("bench")
        .build();
    let exporter = PostExporter {
        url: url.clone(),
        agent: ureq::Agent::new_with_defaults(),
        resource: (&resource).into(),
    };
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            opentelemetry_sdk::trace::BatchConfigBuilder::default()
                .with_max_queue_size(2 * BATCH)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build();
    let sdk = provider.tracer("bench");

    // Warm both up (threads started, connections open).
    for _ in 0..3 {
        per_span(
            |i| {
                let mut s = sdk.start("warm");
                s.set_attribute(KeyValue::new("i", i as i64));
                s.end();
            },
            || {
                let _ = provider.force_flush();
            },
        );
    }

    let mut ours = Vec::new();
    let mut direct = Vec::new();
    // Interleaved, so drift on this noisy machine hits both alike.
    for _ in 0..3 {
        ours.push(per_span(
            |i| {
                tracer
                    .span("collection.add", Granularity::Operation)
                    .attribute("collection_id", "c-1")
                    .attribute("ids_count", i as i64)
                    .attribute("ok", true)
                    .start()
                    .end();
            },
            || {
                tracer.flush(Duration::from_secs(5));
            },
        ));
        direct.push(per_span(
            |i| {
                let mut s = sdk.start("collection.add");
                s.set_attribute(KeyValue::new("collection_id", "c-1"));
                s.set_attribute(KeyValue::new("ids_count", i as i64));
                s.set_attribute(KeyValue::new("ok", true));
                s.end();
            },
            || {
                let _ = provider.force_flush();
            },
        ));
    }
    let (ours, direct) = (median(ours), median(direct));

    // A span filtered out by granularity (declared `all`, configured `operation`).
    const N: u64 = 20_000_000;
    let mut bare = Vec::new();
    let mut filtered = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut acc = 0u64;
        for i in 0..N {
            acc = acc.wrapping_add(work(black_box(i)));
        }
        black_box(acc);
        bare.push(t.elapsed().as_nanos() as f64 / N as f64);

        let t = Instant::now();
        let mut acc = 0u64;
        for i in 0..N {
            acc = acc
                .wrapping_add(tracer.in_span("helper", Granularity::All, |_| work(black_box(i))));
        }
        black_box(acc);
        filtered.push(t.elapsed().as_nanos() as f64 / N as f64);
    }
    let (bare, filtered) = (median(bare), median(filtered));

    let stats = client.shutdown(Duration::from_secs(2));
    let _ = stats;
    let _ = provider.shutdown();
    let s = client.tracer().stats();

    println!("\n== traces (Rust): a span with 3 attributes, started and ended ==");
    println!("{:<58}{:>12}", "", "ns/span");
    println!(
        "{:<58}{:>12.1}",
        "telemetry-core Tracer (OTLP/HTTP to a loopback receiver)", ours
    );
    println!(
        "{:<58}{:>12.1}",
        "opentelemetry_sdk directly (BatchSpanProcessor, same receiver)", direct
    );
    println!(
        "{:<58}{:>11.2}x   (target: within 1.5x)",
        "ratio",
        ours / direct
    );
    println!("\n== traces (Rust): a span filtered out by granularity ==");
    println!("{:<58}{:>12.2}", "a small function, bare (ns/call)", bare);
    println!(
        "{:<58}{:>12.2}",
        "the same inside in_span(\"helper\", All) at operation", filtered
    );
    println!(
        "{:<58}{:>11.2}x   (target: <= 1.2x; {:.2} ns more per call)",
        "ratio",
        filtered / bare,
        filtered - bare
    );
    println!(
        "(our spans: {} recorded, {} exported, {} dropped, receiver got {})",
        s.recorded,
        s.exported,
        s.dropped(),
        rx.spans().len()
    );
}
