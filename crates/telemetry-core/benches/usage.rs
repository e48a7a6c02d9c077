//! `make bench`: usage statistics. Recording one timing beside its floor (two
//! `Instant::now()` and one atomic add) and beside the `prometheus-client` crate's histogram,
//! on one thread and on two threads recording the same key; rendering `/telemetry` at
//! level 4 and `/metrics` with 1,000 label sets; and recorders' p99 latency while rendering
//! runs in a loop beside them. Every figure is printed beside its comparison, measured in
//! the same run: this machine is slow and noisy, and absolute figures mean little.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;
use telemetry_core::anonymize::PropertyKind;
use telemetry_core::usage::{ReportOptions, Timing, Usage};

const N: u64 = 2_000_000;
const ROUNDS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median nanoseconds per operation of `op` run N times on each of `threads` threads at
/// once (wall time per thread's operation).
fn per_op(threads: usize, op: impl Fn() + Sync) -> f64 {
    median(
        (0..ROUNDS)
            .map(|_| {
                let barrier = Barrier::new(threads);
                let total: Duration = std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads)
                        .map(|_| {
                            s.spawn(|| {
                                barrier.wait();
                                let t = Instant::now();
                                for _ in 0..N {
                                    op();
                                }
                                t.elapsed()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap())
                        .max()
                        .unwrap()
                });
                total.as_nanos() as f64 / N as f64
            })
            .collect(),
    )
}

fn prometheus_histogram() -> Histogram {
    // The same bounds as ours (Qdrant's), in seconds.
    Histogram::new([
        0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0,
    ])
}

/// p99 and p50 of the time of 32 recordings, over 200,000 samples.
fn recorder_latency(timing: &Timing) -> (f64, f64) {
    let mut samples = Vec::with_capacity(200_000);
    for _ in 0..200_000 {
        let t = Instant::now();
        for _ in 0..32 {
            timing.record(Duration::from_micros(3));
        }
        samples.push(t.elapsed().as_nanos() as f64 / 32.0);
    }
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() * 99 / 100],
        samples[samples.len() / 2],
    )
}

struct Row {
    what: String,
    ours: f64,
    beside: Vec<(String, f64)>,
    target: String,
    ok: bool,
}

fn main() {
    let mut rows = Vec::new();
    let usage = Usage::standalone("bench", "1");
    let timing = usage.timing("op").build().unwrap().handle();

    for threads in [1, 2] {
        let floor_cell = AtomicU64::new(0);
        let floor = per_op(threads, || {
            let t = Instant::now();
            black_box(&t);
            floor_cell.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        });
        let ours = per_op(threads, || {
            let guard = timing.start();
            black_box(&guard);
            drop(guard);
        });
        let hist = prometheus_histogram();
        let theirs = per_op(threads, || {
            let t = Instant::now();
            black_box(&t);
            hist.observe(t.elapsed().as_secs_f64());
        });
        let same = if threads == 1 { "" } else { ", same key" };
        rows.push(Row {
            what: format!("record one timing, {threads} thread(s){same}"),
            ours,
            beside: vec![
                ("floor: 2 Instant::now + 1 atomic add".into(), floor),
                ("prometheus-client Histogram::observe".into(), theirs),
            ],
            target: "<= 1.5x floor, <= prometheus-client".into(),
            ok: ours <= 1.5 * floor && ours <= theirs,
        });
    }

    // Rendering with 1,000 label sets, and counters beside them.
    let big = Usage::standalone("bench", "1");
    let family = big
        .timing("rest_responses")
        .label("route", PropertyKind::Safe)
        .label("collection", PropertyKind::Hashed)
        .build()
        .unwrap();
    let counters = big
        .counter("points")
        .label("collection", PropertyKind::Hashed)
        .build()
        .unwrap();
    for i in 0..1000u64 {
        let collection = format!("collection_{i}");
        family
            .record(
                &["GET /collections/{name}", &collection],
                Duration::from_micros(i * 7),
            )
            .unwrap();
        counters.add(&[&collection], i).unwrap();
    }
    let time_render = |f: &dyn Fn() -> usize| {
        median(
            (0..ROUNDS)
                .map(|_| {
                    let t = Instant::now();
                    black_box(f());
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        )
    };
    let report_plain = time_render(&|| {
        big.report(&ReportOptions {
            details_level: 4,
            ..Default::default()
        })
        .to_string()
        .len()
    });
    let report_anon = time_render(&|| {
        big.report(&ReportOptions {
            details_level: 4,
            anonymize: true,
            histograms: None,
        })
        .to_string()
        .len()
    });
    let metrics = time_render(&|| big.prometheus(false).len());
    let metrics_anon = time_render(&|| big.prometheus(true).len());
    rows.push(Row {
        what: "render /telemetry level 4, 1,000 label sets (ms)".into(),
        ours: report_plain,
        beside: vec![("anonymized".into(), report_anon)],
        target: "time per render (no target)".into(),
        ok: true,
    });
    rows.push(Row {
        what: "render /metrics, 1,000 label sets (ms)".into(),
        ours: metrics,
        beside: vec![("anonymized".into(), metrics_anon)],
        target: "time per render (no target)".into(),
        ok: true,
    });

    // Recorders' latency, with and without rendering in a loop on the other core.
    let hot = family
        .with(&["GET /collections/{name}", "collection_1"])
        .unwrap();
    let (quiet_p99, quiet_p50) = recorder_latency(&hot);
    let stop = Arc::new(AtomicBool::new(false));
    let renders = Arc::new(AtomicU64::new(0));
    let renderer = {
        let (big, stop, renders) = (big.clone(), stop.clone(), renders.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(big.report(&ReportOptions {
                    details_level: 4,
                    anonymize: true,
                    histograms: None,
                }));
                black_box(big.prometheus(true));
                renders.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let (busy_p99, busy_p50) = recorder_latency(&hot);
    stop.store(true, Ordering::Relaxed);
    renderer.join().unwrap();
    rows.push(Row {
        what: format!(
            "recorder p99 (ns/op) while rendering loops ({} renders; p50 {busy_p50:.1})",
            renders.load(Ordering::Relaxed)
        ),
        ours: busy_p99,
        beside: vec![(format!("without rendering (p50 {quiet_p50:.1})"), quiet_p99)],
        target: "<= 1.5x without".into(),
        ok: busy_p99 <= 1.5 * quiet_p99,
    });

    println!("\nusage statistics (medians of {ROUNDS} rounds; ns per operation unless noted)");
    println!("{:<64} {:>10}  {:<52} target", "what", "ours", "beside it");
    for r in &rows {
        let beside: Vec<String> = r
            .beside
            .iter()
            .map(|(k, v)| format!("{k} {v:.2}"))
            .collect();
        println!(
            "{:<64} {:>10.2}  {:<52} {} {}",
            r.what,
            r.ours,
            beside.join("; "),
            r.target,
            if r.ok { "ok" } else { "MISSED" }
        );
    }
}
