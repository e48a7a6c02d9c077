//! The soak's Rust client (tests/soak/README.md): capture threads send plain and batched
//! events for SOAK_SECONDS while the main thread flushes every SOAK_FLUSH_EVERY seconds
//! and forks a child (libc::fork) every SOAK_FORK_EVERY seconds; the child captures with
//! the client it inherited, flushes, shuts down and writes its counters. Every event
//! carries `soak_client` (this process's tag), so the driver can count what the collector
//! stored for each process.
//!
//! Protocol with the driver: `ready` on stdout once the client is built (nothing started
//! yet: the baseline), `done` after the final shutdown and once the results file
//! (SOAK_RESULTS/<tag>.json) is written; the process exits when stdin closes.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use telemetry_core::env::MapEnvironment;
use telemetry_core::{Client, Event};
use telemetry_soak::{env_or, env_secs, results_dir, settle, Resources, Rng};

#[derive(Default)]
struct Captured {
    plain: AtomicU64,
    batched: AtomicU64,
}

fn capture_one(client: &Client, tag: &str, n: u64, captured: &Captured) {
    if n.is_multiple_of(2) {
        client.capture(
            Event::new("soak_batched")
                .safe("soak_client", tag)
                .exact("amount", 1)
                .batched(format!("{tag}-b{}", n % 3), 50, &["amount"]),
        );
        captured.batched.fetch_add(1, Ordering::Relaxed);
    } else {
        client.capture(
            Event::new("soak_plain")
                .safe("soak_client", tag)
                .exact("seq", n)
                .text("note", "soak from /home/someone/work at 10.1.2.3"),
        );
        captured.plain.fetch_add(1, Ordering::Relaxed);
    }
}

fn write_results(tag: &str, value: serde_json::Value) -> std::io::Result<()> {
    let dir = results_dir();
    let tmp = dir.join(format!(".{tag}.json.tmp"));
    std::fs::write(&tmp, value.to_string())?;
    std::fs::rename(&tmp, dir.join(format!("{tag}.json")))
}

fn resources_json(r: Resources) -> serde_json::Value {
    json!({"fds": r.fds, "threads": r.threads, "lib_threads": r.lib_threads, "rss_kb": r.rss_kb})
}

/// The forked child: the inherited client, its own events, its own counters. Never
/// returns.
fn child(client: &Client, tag: &str, events: u64, shutdown: Duration, settle_limit: Duration) -> ! {
    let before = Resources::now();
    let captured = Captured::default();
    for n in 0..events {
        capture_one(client, tag, n, &captured);
        if n % 10 == 9 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let flushed = client.flush(Duration::from_secs(3));
    let started = Instant::now();
    let stats = client.shutdown(shutdown);
    let took = started.elapsed().as_secs_f64();
    let (after, settled) = settle(&before, settle_limit);
    let result = json!({
        "tag": tag, "lang": "rust", "role": "child", "pid": std::process::id(),
        "enabled": client.is_enabled(),
        "captured_plain": captured.plain.load(Ordering::Relaxed),
        "captured_batched": captured.batched.load(Ordering::Relaxed),
        "stats": stats, "shutdown_seconds": took, "shutdown_deadline": shutdown.as_secs_f64(),
        "settle_seconds": settled.as_secs_f64(),
        "flushes": {"ok": u64::from(flushed), "not_delivered": u64::from(!flushed)},
        "before": resources_json(before), "after": resources_json(after),
    });
    let code = if write_results(tag, result).is_ok() {
        0
    } else {
        1
    };
    // SAFETY: leaves without running the parent's destructors or atexit handlers.
    unsafe { libc::_exit(code) }
}

fn main() {
    let tag: String = env_or("SOAK_TAG", "rust".to_string());
    let endpoint: String = env_or("SOAK_ENDPOINT", "http://127.0.0.1:9".to_string());
    let home: String = env_or("SOAK_HOME", ".".to_string());
    let seconds = env_secs("SOAK_SECONDS", 60.0);
    let rate: f64 = env_or("SOAK_RATE", 100.0);
    let threads: u64 = env_or("SOAK_THREADS", 2);
    let fork_every = env_secs("SOAK_FORK_EVERY", 5.0);
    let flush_every = env_secs("SOAK_FLUSH_EVERY", 5.0);
    let child_events: u64 = env_or("SOAK_CHILD_EVENTS", 40);
    let shutdown = env_secs("SOAK_SHUTDOWN", 5.0);
    let child_shutdown = env_secs("SOAK_CHILD_SHUTDOWN", 2.0);
    let settle_limit = env_secs("SOAK_SETTLE", 7.0);

    let client = Client::builder("soak", "1.0.0")
        .endpoint(endpoint)
        .api_key("phc_soak")
        .environment(MapEnvironment::new().with("HOME", &home))
        .working_dir(&home)
        .explicit(Some(true))
        .usage_reports(false)
        .flush_interval(Duration::from_secs(1))
        .build()
        .unwrap_or_else(|e| {
            eprintln!("soak-rust-client: {e}");
            std::process::exit(2)
        });
    let client = Arc::new(client);
    let before = Resources::now();
    println!("ready {}", std::process::id());
    std::io::stdout().flush().ok();

    let stop = Arc::new(AtomicBool::new(false));
    let captured = Arc::new(Captured::default());
    let mut workers = Vec::new();
    for t in 0..threads {
        let (client, stop, captured, tag) =
            (client.clone(), stop.clone(), captured.clone(), tag.clone());
        workers.push(std::thread::spawn(move || {
            let period = Duration::from_secs_f64(1.0 / rate.max(1.0));
            let mut next = Instant::now();
            let mut n = t;
            while !stop.load(Ordering::Relaxed) {
                capture_one(&client, &tag, n, &captured);
                n += threads;
                next += period;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else if now - next > Duration::from_secs(1) {
                    next = now; // fell behind (a slow machine): do not burst to catch up
                }
            }
        }));
    }

    let mut rng = Rng::new(u64::from(std::process::id()) * 7919);
    let started = Instant::now();
    let mut next_fork = started + fork_every / 2;
    let mut next_flush = started + flush_every;
    let (mut forks, mut fork_failures, mut child_failures) = (0u64, 0u64, 0u64);
    let mut flush_ok = 0u64;
    let mut flush_not = 0u64;
    let mut children: Vec<libc::pid_t> = Vec::new();
    let reap = |children: &mut Vec<libc::pid_t>, failures: &mut u64, block: bool| {
        children.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waits for a child of ours.
            let r =
                unsafe { libc::waitpid(pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
            if r == 0 {
                return true;
            }
            if r < 0 || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                *failures += 1;
            }
            false
        });
    };
    while started.elapsed() < seconds {
        let now = Instant::now();
        if now >= next_fork {
            next_fork = now + fork_every;
            forks += 1;
            let child_tag = format!("{tag}-c{forks}");
            // SAFETY: the child only uses the client (whose fork handling is under test),
            // the allocator and plain file writes, and leaves with _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                child(
                    &client,
                    &child_tag,
                    child_events,
                    child_shutdown,
                    settle_limit,
                );
            } else if pid < 0 {
                fork_failures += 1;
            } else {
                children.push(pid);
            }
        }
        if now >= next_flush {
            // Flush timeouts vary a little, so flushes meet the faults at different points.
            let timeout = Duration::from_millis(1000 + rng.below(3000));
            if client.flush(timeout) {
                flush_ok += 1;
            } else {
                flush_not += 1;
            }
            next_flush = Instant::now() + flush_every;
        }
        reap(&mut children, &mut child_failures, false);
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().ok();
    }
    let shutdown_started = Instant::now();
    let stats = client.shutdown(shutdown);
    let took = shutdown_started.elapsed().as_secs_f64();
    reap(&mut children, &mut child_failures, true);
    let (after, settled) = settle(&before, settle_limit);
    let result = json!({
        "tag": tag, "lang": "rust", "role": "main", "pid": std::process::id(),
        "enabled": client.is_enabled(),
        "captured_plain": captured.plain.load(Ordering::Relaxed),
        "captured_batched": captured.batched.load(Ordering::Relaxed),
        "stats": stats, "shutdown_seconds": took, "shutdown_deadline": shutdown.as_secs_f64(),
        "settle_seconds": settled.as_secs_f64(),
        "flushes": {"ok": flush_ok, "not_delivered": flush_not},
        "children": {"started": forks, "start_failures": fork_failures, "failed": child_failures},
        "before": resources_json(before), "after": resources_json(after),
    });
    if let Err(e) = write_results(&tag, result) {
        eprintln!("soak-rust-client: writing results: {e}");
        std::process::exit(1);
    }
    println!("done");
    std::io::stdout().flush().ok();
    // Stay until the driver has sampled the end state and closes stdin.
    for _ in std::io::stdin().lock().lines() {}
}
