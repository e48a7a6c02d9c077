//! `make bench`, delivery: throughput to the real local collector, the caller's capture
//! latency while the endpoint is down, memory growth under a million events with the
//! endpoint down, and shutdown time against an endpoint that never answers. Each figure
//! is printed beside its target and, where one exists, a floor measured in this run.

use std::hint::black_box;
use std::net::TcpListener;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use telemetry_collector::Collector;
use telemetry_core::env::MapEnvironment;
use telemetry_core::{Client, ClientBuilder, Event};

fn event(i: u64) -> Event {
    Event::new("collection_query")
        .safe("embedding_function", "default")
        .property("collection_uuid", "2b1f6c0e-9a3e-4c53-8f0e-0d7c1b2f3a4b")
        .exact("query_amount", 3)
        .property("n_results", i % 100)
        .safe("with_metadata", true)
}

fn builder(home: &std::path::Path, endpoint: &str) -> ClientBuilder {
    Client::builder("bench", "1")
        .environment(MapEnvironment::new().with("HOME", home))
        .working_dir(home)
        .endpoint(endpoint)
        .api_key("phc_bench")
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let home = tempfile::tempdir().unwrap();
    let mut rows: Vec<(String, String, String, String, bool)> = Vec::new();

    // 1. Throughput to the local collector (in this process, sharing the 2 cores).
    let db = tempfile::tempdir().unwrap();
    let collector = Collector::start("127.0.0.1:0", db.path().join("bench.db")).unwrap();
    let n = 100_000u64;
    let client = builder(home.path(), &collector.url())
        .queue_capacity(n as usize)
        .build()
        .unwrap();
    let start = Instant::now();
    for i in 0..n {
        client.capture(event(i));
    }
    let stats = client.shutdown(Duration::from_secs(120));
    let secs = start.elapsed().as_secs_f64();
    let stored = collector.summary().unwrap().events;
    collector.shutdown();
    let memory = telemetry_core::sink::MemorySink::new();
    let to_memory = Client::builder("bench", "1")
        .environment(MapEnvironment::new().with("HOME", home.path()))
        .working_dir(home.path())
        .sink(telemetry_core::sink::SinkConfig::Memory(memory.clone()))
        .queue_capacity(n as usize)
        .build()
        .unwrap();
    let t = Instant::now();
    for i in 0..n {
        to_memory.capture(event(i));
    }
    let mstats = to_memory.shutdown(Duration::from_secs(120));
    let msecs = t.elapsed().as_secs_f64();
    rows.push((
        "events delivered to the local collector".into(),
        format!("{:.0} events/s", stats.sent as f64 / secs),
        format!(
            "worker alone (memory sink): {:.0} events/s",
            mstats.sent as f64 / msecs
        ),
        "(collector fsyncs each request)".into(),
        stats.sent == n && stored == n && mstats.sent == n,
    ));

    // 2. Capture latency on the caller's thread with the endpoint down (closed port).
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let client = builder(home.path(), &closed).build().unwrap();
    client.capture(event(0));
    let mut lat = Vec::with_capacity(200_000);
    for i in 0..200_000 {
        let e = event(i);
        let t = Instant::now();
        client.capture(black_box(e));
        lat.push(t.elapsed());
    }
    lat.sort();
    let mut floor = Vec::with_capacity(200_000);
    let (tx, rx) = sync_channel::<Event>(10_000);
    let consumer = std::thread::spawn(move || while rx.recv().is_ok() {});
    for i in 0..200_000 {
        let e = event(i);
        let t = Instant::now();
        let _ = black_box(tx.try_send(e));
        floor.push(t.elapsed());
    }
    drop(tx);
    consumer.join().unwrap();
    floor.sort();
    for (name, p) in [("p50", 0.50), ("p99", 0.99)] {
        rows.push((
            format!("capture latency {name}, endpoint down"),
            format!("{} ns", percentile(&lat, p).as_nanos()),
            format!(
                "{} ns (bounded-channel try_send)",
                percentile(&floor, p).as_nanos()
            ),
            "flat: no wait on the network".into(),
            percentile(&lat, p) < Duration::from_micros(50),
        ));
    }
    let s = client.shutdown(Duration::from_secs(1));
    assert_eq!(
        s.captured,
        s.sent + s.dropped_queue_full + s.dropped_shutdown + s.dropped_failed
    );

    // 3. Memory: a million events offered with the endpoint down.
    let before = rss_kib();
    let client = builder(home.path(), &closed).build().unwrap();
    for i in 0..1_000_000 {
        client.capture(event(i));
    }
    let grown_kib = rss_kib().saturating_sub(before);
    let s = client.shutdown(Duration::from_secs(1));
    rows.push((
        "RSS growth, 1,000,000 events, endpoint down".into(),
        format!("{:.1} MB", grown_kib as f64 / 1024.0),
        format!(
            "{} dropped (queue full), queue 10,000",
            s.dropped_queue_full
        ),
        "<= 16 MB".into(),
        grown_kib <= 16 * 1024,
    ));

    // 4. Shutdown with an endpoint that accepts and never answers, 10,000 events queued.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let client = builder(home.path(), &url).build().unwrap();
    for i in 0..10_000 {
        client.capture(event(i));
    }
    std::thread::sleep(Duration::from_millis(200)); // let a request get stuck
    let deadline = Duration::from_secs(1);
    let t = Instant::now();
    let s = client.shutdown(deadline);
    let took = t.elapsed();
    drop(silent);
    rows.push((
        "shutdown, endpoint never answers, 10,000 queued".into(),
        format!("{} ms", took.as_millis()),
        format!(
            "deadline {} ms; {} dropped at shutdown",
            deadline.as_millis(),
            s.dropped_shutdown
        ),
        "<= deadline + 100 ms".into(),
        took <= deadline + Duration::from_millis(100),
    ));

    println!("\ntelemetry-core delivery benchmarks (same run, same machine)\n");
    println!(
        "| {:<46} | {:>16} | {:<46} | {:<30} | {:<3} |",
        "measurement", "ours", "beside it", "target", "met"
    );
    println!("|{}|", "-".repeat(155));
    for (what, ours, beside, target, ok) in rows {
        println!(
            "| {what:<46} | {ours:>16} | {beside:<46} | {target:<30} | {:<3} |",
            if ok { "yes" } else { "NO" }
        );
    }
}
