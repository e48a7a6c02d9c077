//! `make bench`: caller-side capture cost (off and on), consent resolution and
//! anonymization throughput, each printed beside a floor measured in the same run on the
//! same machine, because this machine is slow and noisy and absolute figures mean little.

use std::hint::black_box;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use serde_json::Value;
use telemetry_core::anonymize::{Anonymizer, PropertyKind, MAX_TEXT_BYTES};
use telemetry_core::consent::{self, ConsentInputs};
use telemetry_core::env::MapEnvironment;
use telemetry_core::profile::Profile;
use telemetry_core::sink::{MemorySink, SinkConfig};
use telemetry_core::{Client, Event};

const N: usize = 200_000;
const ROUNDS: usize = 7;

fn event() -> Event {
    Event::new("collection_query")
        .safe("embedding_function", "default")
        .property("collection_uuid", "2b1f6c0e-9a3e-4c53-8f0e-0d7c1b2f3a4b")
        .exact("query_amount", 3)
        .property("n_results", 10)
        .safe("with_metadata", true)
}

/// Median nanoseconds per event of `f` over ROUNDS rounds of N pre-built events.
fn per_event(mut f: impl FnMut(Vec<Event>)) -> f64 {
    let template = event();
    let mut samples: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let events: Vec<Event> = (0..N).map(|_| template.clone()).collect();
            let start = Instant::now();
            f(events);
            start.elapsed().as_nanos() as f64 / N as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[ROUNDS / 2]
}

#[inline(never)]
fn empty_call(e: Event) {
    black_box(&e);
}

fn median_of(mut f: impl FnMut() -> f64) -> f64 {
    let mut v: Vec<f64> = (0..ROUNDS).map(|_| f()).collect();
    v.sort_by(f64::total_cmp);
    v[ROUNDS / 2]
}

struct Row {
    what: &'static str,
    ours: f64,
    floor: Option<(f64, &'static str)>,
    unit: &'static str,
    target: &'static str,
    ok: bool,
}

fn main() {
    let home = tempfile::tempdir().unwrap();
    let env = || MapEnvironment::new().with("HOME", home.path());
    let mut rows = Vec::new();

    // Capture, telemetry off.
    let off = Client::builder("bench", "1")
        .profile(Profile::Chroma)
        .environment(env().with("ANONYMIZED_TELEMETRY", "False"))
        .working_dir(home.path())
        .sink(SinkConfig::Memory(MemorySink::new()))
        .build()
        .unwrap();
    let off_floor = per_event(|events| events.into_iter().for_each(|e| empty_call(black_box(e))));
    let off_ns = per_event(|events| events.into_iter().for_each(|e| off.capture(black_box(e))));
    rows.push(Row {
        what: "capture, telemetry off",
        ours: off_ns,
        floor: Some((off_floor, "empty fn(Event) behind black_box")),
        unit: "ns/event",
        target: "<= 2x floor",
        ok: off_ns <= 2.0 * off_floor,
    });

    // Capture, telemetry on (memory sink): the queue holds a whole round, so nothing is
    // dropped and both sides do the same channel work.
    let floor_on = median_of(|| {
        let (tx, rx) = sync_channel::<Event>(N);
        let consumer = std::thread::spawn(move || while rx.recv().is_ok() {});
        let events: Vec<Event> = (0..N).map(|_| event()).collect();
        let start = Instant::now();
        for e in events {
            let _ = black_box(tx.try_send(e));
        }
        let ns = start.elapsed().as_nanos() as f64 / N as f64;
        drop(tx);
        consumer.join().unwrap();
        ns
    });
    let mut dropped = 0;
    let on_ns = median_of(|| {
        let client = Client::builder("bench", "1")
            .profile(Profile::Chroma)
            .environment(env())
            .working_dir(home.path())
            .sink(SinkConfig::Memory(MemorySink::new()))
            .queue_capacity(N)
            .build()
            .unwrap();
        client.capture(event()); // starts the worker outside the timed loop
        let events: Vec<Event> = (0..N).map(|_| event()).collect();
        let start = Instant::now();
        for e in events {
            client.capture(black_box(e));
        }
        let ns = start.elapsed().as_nanos() as f64 / N as f64;
        dropped += client.shutdown(Duration::from_secs(30)).dropped_queue_full;
        ns
    });
    rows.push(Row {
        what: "capture, telemetry on (memory sink)",
        ours: on_ns,
        floor: Some((floor_on, "sync_channel try_send of the same Event")),
        unit: "ns/event",
        target: "<= 3x floor",
        ok: on_ns <= 3.0 * floor_on,
    });

    // Consent resolution with a .env file to read, as Chroma hosts have.
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join(".env"),
        "ANONYMIZED_TELEMETRY=True\nOTHER=1\n",
    )
    .unwrap();
    let inputs = ConsentInputs {
        working_dir: Some(work.path().to_path_buf()),
        config_dir: Some(work.path().to_path_buf()),
        ..ConsentInputs::default()
    };
    let renv = env().with("DO_NOT_TRACK", "0");
    let resolve_us = median_of(|| {
        let start = Instant::now();
        for _ in 0..1000 {
            black_box(consent::resolve(&Profile::Chroma, &inputs, &renv));
        }
        start.elapsed().as_nanos() as f64 / 1000.0 / 1000.0
    });
    let qinputs = ConsentInputs {
        working_dir: Some(work.path().to_path_buf()),
        config_dir: Some(work.path().to_path_buf()),
        args: vec!["qdrant".into()],
        ..ConsentInputs::default()
    };
    std::fs::create_dir_all(work.path().join("config")).unwrap();
    std::fs::write(
        work.path().join("config/config.yaml"),
        "log_level: INFO\nservice:\n  http_port: 6333\ntelemetry_disabled: false\n",
    )
    .unwrap();
    let qresolve_us = median_of(|| {
        let start = Instant::now();
        for _ in 0..1000 {
            black_box(consent::resolve(&Profile::Qdrant, &qinputs, &renv));
        }
        start.elapsed().as_nanos() as f64 / 1000.0 / 1000.0
    });
    rows.push(Row {
        what: "consent resolution, chroma (.env read)",
        ours: resolve_us,
        floor: None,
        unit: "us",
        target: "<= 50 us",
        ok: resolve_us <= 50.0,
    });
    rows.push(Row {
        what: "consent resolution, qdrant (YAML config read)",
        ours: qresolve_us,
        floor: None,
        unit: "us",
        target: "<= 50 us",
        ok: qresolve_us <= 50.0,
    });

    // Anonymization throughput: a 5-property event, and the keyed hash alone.
    let anonymizer = Anonymizer::new([7; 32], 3);
    let sample = event();
    let anon_ns = median_of(|| {
        let start = Instant::now();
        for _ in 0..20_000 {
            for (k, v) in &sample.properties {
                let kind = sample.kinds.get(k).copied();
                black_box(anonymizer.value(kind, black_box(v.clone())));
            }
        }
        start.elapsed().as_nanos() as f64 / 20_000.0
    });
    let clone_ns = median_of(|| {
        let start = Instant::now();
        for _ in 0..20_000 {
            for v in sample.properties.values() {
                black_box(black_box(v.clone()));
            }
        }
        start.elapsed().as_nanos() as f64 / 20_000.0
    });
    rows.push(Row {
        what: "anonymize a 5-property event",
        ours: anon_ns,
        floor: Some((clone_ns, "cloning the same 5 values")),
        unit: "ns/event",
        target: "(throughput, no target)",
        ok: true,
    });
    let hash_ns = median_of(|| {
        let start = Instant::now();
        for i in 0..50_000u32 {
            black_box(anonymizer.hash(black_box(if i % 2 == 0 {
                "my_collection"
            } else {
                "docs"
            })));
        }
        start.elapsed().as_nanos() as f64 / 50_000.0
    });
    rows.push(Row {
        what: "keyed hash (HMAC-SHA256, 16 hex)",
        ours: hash_ns,
        floor: None,
        unit: "ns/string",
        target: "(throughput, no target)",
        ok: true,
    });
    let text = Value::from("open /home/alice/data/db.sqlite3 failed for alice@example.com from 10.1.2.3 (see https://x.example.com/a?b=c)");
    let scrub_ns = median_of(|| {
        let start = Instant::now();
        for _ in 0..5_000 {
            black_box(anonymizer.value(Some(PropertyKind::Text), text.clone()));
        }
        start.elapsed().as_nanos() as f64 / 5_000.0
    });
    rows.push(Row {
        what: "scrub a 110-char error message",
        ours: scrub_ns,
        floor: None,
        unit: "ns/text",
        target: "(throughput, no target)",
        ok: true,
    });

    // The largest text the scrubber takes (MAX_TEXT_BYTES): a traceback of an error report,
    // mostly frames with paths, a few secrets. The scrubber's cost per report is here.
    let frame = "  File \"/home/alice/app/server.py\", line 42, in handle\n    conn = connect(\"postgres://admin:hunter2@10.0.0.5/db\")\n  at com.example.Worker.run(Worker.java:118)\n";
    let traceback = Value::from(frame.repeat(MAX_TEXT_BYTES / frame.len()));
    let traceback_us = median_of(|| {
        let start = Instant::now();
        for _ in 0..20 {
            black_box(anonymizer.value(Some(PropertyKind::Text), traceback.clone()));
        }
        start.elapsed().as_nanos() as f64 / 20.0 / 1000.0
    });
    rows.push(Row {
        what: "scrub a 64 KiB traceback (the largest text)",
        ours: traceback_us,
        floor: None,
        unit: "us/text",
        target: "(throughput, no target)",
        ok: true,
    });

    println!("\ntelemetry-core core benchmarks (median of {ROUNDS} rounds; floors measured in this run)\n");
    println!(
        "| {:<46} | {:>12} | {:>12} | {:<40} | {:>6} | {:<24} | {:<4} |",
        "measurement", "ours", "floor", "floor is", "ratio", "target", "met"
    );
    println!("|{}|", "-".repeat(170));
    for r in &rows {
        let (floor, floor_is, ratio) = match r.floor {
            Some((f, what)) => (format!("{f:.1}"), what, format!("{:.2}x", r.ours / f)),
            None => ("-".into(), "-", "-".into()),
        };
        println!(
            "| {:<46} | {:>12} | {:>12} | {:<40} | {:>6} | {:<24} | {:<4} |",
            r.what,
            format!("{:.1} {}", r.ours, r.unit),
            floor,
            floor_is,
            ratio,
            r.target,
            if r.ok { "yes" } else { "NO" }
        );
    }
    println!("\nevents dropped (queue full) during the 'on' rounds: {dropped}");
}
