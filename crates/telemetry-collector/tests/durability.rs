//! What a 200 promises: concurrent requests share commits (group commit) and
//! still every acknowledged event is on disk, also when the collector is killed
//! with SIGKILL under load; and the retention sweep deletes old events by itself.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use telemetry_collector::ingest::{parse, Endpoint};
use telemetry_collector::{Collector, Store};

const BIN: &str = env!("CARGO_BIN_EXE_telemetry-collector");

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// `senders` threads posting batches of `per_batch` fresh events to `url` until
/// `stop`; returns the uuids of every event whose request was answered 200.
fn load(
    url: &str,
    senders: u32,
    per_batch: u32,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Vec<String>> {
    let url = url.to_owned();
    thread::spawn(move || {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..senders)
            .map(|s| {
                let (url, stop, acked) = (url.clone(), Arc::clone(&stop), Arc::clone(&acked));
                thread::spawn(move || {
                    let agent = agent();
                    let mut n = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let uuids: Vec<String> = (0..per_batch)
                            .map(|i| {
                                format!("00000000-0000-4000-8000-{s:04x}{:08x}", n * per_batch + i)
                            })
                            .collect();
                        n += 1;
                        let body = batch(uuids.iter().map(|u| event("load", "i", u)).collect());
                        match agent
                            .post(&format!("{url}/batch/"))
                            .header("content-type", "application/json")
                            .send(body.to_string())
                        {
                            Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(uuids),
                            Ok(_) => {}
                            // Killed collector: connection refused; back off a little.
                            Err(_) => thread::sleep(Duration::from_millis(20)),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
    })
}

#[test]
fn concurrent_requests_share_commits_and_all_are_stored() {
    let c = start();
    let stop = Arc::new(AtomicBool::new(false));
    let senders = load(&c.handle.url(), 16, 10, Arc::clone(&stop));
    thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let acked = senders.join().unwrap();
    let stats = c.handle.commit_stats();
    assert!(
        acked.len() >= 1000,
        "only {} events acknowledged",
        acked.len()
    );
    assert_eq!(stats.events, acked.len() as u64);
    // 16 senders at once on a file that fsyncs each commit: groups form.
    assert!(
        stats.commits * 2 <= stats.batches,
        "{} commits for {} requests: requests are not sharing transactions",
        stats.commits,
        stats.batches
    );
    assert_eq!(c.handle.summary().unwrap().events, acked.len() as u64);
}

#[test]
fn every_acknowledged_event_survives_sigkill_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let senders = load(&url, 8, 20, Arc::clone(&stop));
    // Kill once a good number of requests have been acknowledged.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        let stored = Store::open(&db)
            .and_then(|s| s.summary())
            .map(|s| s.events)
            .unwrap_or(0);
        if stored >= 2000 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL, mid-commit as likely as not
    child.wait().unwrap();
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let acked = senders.join().unwrap();
    assert!(acked.len() >= 1000, "only {} acknowledged", acked.len());

    // Reopening runs SQLite's recovery of the WAL, as a restarted collector would.
    let store = Store::open(&db).unwrap();
    let stored: HashSet<String> = store
        .events(&telemetry_collector::EventFilter::default().limit(10_000))
        .unwrap()
        .into_iter()
        .map(|e| e.uuid)
        .collect();
    let total = store.summary().unwrap().events;
    let missing: Vec<_> = acked
        .iter()
        .filter(|u| !stored.contains(*u) && !store.contains(u).unwrap())
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    // Nothing is stored twice, and at most the killed commit's events are
    // stored without an acknowledgement.
    assert!(total >= acked.len() as u64);

    // The restarted collector serves the same data.
    let restarted = Collector::start("127.0.0.1:0", &db).unwrap();
    assert_eq!(restarted.summary().unwrap().events, total);
}

#[test]
fn the_retention_sweep_deletes_old_events_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    {
        let store = Store::open(&db).unwrap();
        let old = parse(
            Endpoint::Capture,
            br#"{"api_key":"k","event":"old","distinct_id":"i"}"#,
            None,
        )
        .unwrap();
        let recent = parse(
            Endpoint::Capture,
            br#"{"api_key":"k","event":"recent","distinct_id":"i"}"#,
            None,
        )
        .unwrap();
        store.insert(&old, "2020-01-01T00:00:00.000Z").unwrap();
        store
            .insert(&recent, &telemetry_collector::ingest::now_rfc3339())
            .unwrap();
    }
    let c = Collector::builder()
        .listen("127.0.0.1:0")
        .db(&db)
        .retention(Some(Duration::from_secs(30 * 86_400)))
        .retention_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.summary().unwrap().events > 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let left = c.events(&Default::default()).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event, "recent");

    // `retention(None)` keeps everything.
    drop(c);
    let store = Store::open(&db).unwrap();
    let old = parse(
        Endpoint::Capture,
        br#"{"api_key":"k","event":"old","distinct_id":"i"}"#,
        None,
    )
    .unwrap();
    store.insert(&old, "2020-01-01T00:00:00.000Z").unwrap();
    let keep = Collector::builder()
        .listen("127.0.0.1:0")
        .db(&db)
        .retention(None)
        .retention_interval(Duration::from_millis(20))
        .start()
        .unwrap();
    thread::sleep(Duration::from_millis(200));
    assert_eq!(keep.summary().unwrap().events, 2);
}
