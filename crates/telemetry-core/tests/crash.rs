//! Error reports in process: panics caught by the hook, scrubbed and fingerprinted; rate
//! limits that hold a panic storm to a few reports without blocking; several clients, each
//! under its own consent; handled errors.
//!
//! The hook is process-wide and reports every panic to every registered client, so the
//! scenarios run one after the other in a single test, each with clients of its own. The
//! host's own hook, installed first, is quiet: 10,000 panic messages on stderr would only
//! slow the storm down.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use telemetry_core::crash::{CrashOptions, ErrorReport, Frame, RateLimits};
use telemetry_core::env::MapEnvironment;
use telemetry_core::sink::MemorySink;
use telemetry_core::Client;

fn client(memory: &MemorySink, home: &std::path::Path, limits: RateLimits) -> Client {
    let client = common::isolated_builder("crashy", "3.0.0", home, memory)
        .usage_reports(false)
        .build()
        .unwrap();
    client.report_panics(CrashOptions {
        deadline: Duration::from_secs(1),
        limits,
    });
    client
}

fn exceptions(memory: &MemorySink) -> Vec<Value> {
    memory
        .events()
        .into_iter()
        .filter(|e| e["event"] == "$exception")
        .collect()
}

#[inline(never)]
fn fails_with(message: String) {
    panic!("{message}");
}

/// A panic is reported with its scrubbed message, the host's frames (file names only), a
/// fingerprint that ignores the message, and the host's own behaviour unchanged.
fn a_panic_is_reported_scrubbed_and_the_host_still_sees_it() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let c = client(&memory, home.path(), RateLimits::default());
    let caught = std::panic::catch_unwind(|| {
        fails_with(
            "cannot read /home/alice/secrets.toml for alice@example.com from 10.1.2.3".into(),
        )
    });
    // The host's own behaviour: the panic unwound to its catch_unwind as before.
    assert!(caught.is_err());
    assert!(c.flush(Duration::from_secs(5)));
    let sent = exceptions(&memory);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let p = &sent[0]["properties"];
    let e = &p["$exception_list"][0];
    assert_eq!(e["type"], "panic");
    assert_eq!(e["mechanism"]["handled"], false);
    assert_eq!(p["$exception_level"], "fatal");
    let value = e["value"].as_str().unwrap();
    for private in ["/home/alice", "alice@example.com", "10.1.2.3"] {
        assert!(!value.contains(private), "{value}");
    }
    assert!(value.contains("secrets.toml"), "{value}");
    let frames = e["stacktrace"]["frames"].as_array().unwrap();
    let ours = frames.last().unwrap();
    assert_eq!(ours["function"], "crash::fails_with", "{frames:?}");
    assert_eq!(ours["filename"], "crash.rs");
    assert_eq!(ours["in_app"], true);
    assert!(frames
        .iter()
        .all(|f| !f["filename"].as_str().unwrap().contains('/')));
    // No frame of the panic machinery or of the hook itself.
    assert!(frames
        .iter()
        .all(|f| !f["function"].as_str().unwrap().contains("telemetry_core")));
    assert_eq!(p["$exception_fingerprint"].as_str().unwrap().len(), 16);
    c.shutdown(Duration::from_secs(1));
}

/// 10,000 panics on 8 threads: at most the hourly limit of reports, the rest counted and
/// told with the next report; no thread is held up beyond one deadline.
fn a_panic_storm_sends_at_most_the_limit_and_never_blocks() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let c = Arc::new(client(&memory, home.path(), RateLimits::default()));
    let started = Instant::now();
    let slowest = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let slowest = slowest.clone();
            std::thread::spawn(move || {
                for i in 0..1250 {
                    let one = Instant::now();
                    // Fifty different places (messages differ; fingerprints by frames do not,
                    // so vary the type through the payload's location: two functions).
                    let _ = std::panic::catch_unwind(|| {
                        if (t + i) % 2 == 0 {
                            fails_with(format!("storm {t} {i}"))
                        } else {
                            panic!("other storm {t} {i}")
                        }
                    });
                    let took = one.elapsed();
                    let mut s = slowest.lock().unwrap();
                    *s = (*s).max(took);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let took = started.elapsed();
    assert!(c.flush(Duration::from_secs(5)));
    let sent = exceptions(&memory);
    assert!(
        !sent.is_empty() && sent.len() <= 20,
        "{} reports",
        sent.len()
    );
    // Two places: two fingerprints, one report each within 60 s.
    assert_eq!(sent.len(), 2, "{sent:?}");
    let slowest = *slowest.lock().unwrap();
    assert!(
        slowest < Duration::from_millis(1500),
        "a panic waited {slowest:?}"
    );
    assert!(took < Duration::from_secs(60), "the storm took {took:?}");
    // What was suppressed goes out with the next reports: every panic is accounted for.
    c.capture_error(&ErrorReport::new("AfterTheStorm", "calm").frame(Frame::new("f", "a.rs", 1)));
    assert!(c.flush(Duration::from_secs(5)));
    let told: u64 = exceptions(&memory)
        .iter()
        .map(|e| e["properties"]["$exception_suppressed"].as_u64().unwrap())
        .sum();
    assert_eq!(told, 10_000 - 2);
    c.shutdown(Duration::from_secs(1));
}

/// Two clients in one process (a library inside an application): both get the panic, each
/// under its own consent.
fn every_enabled_client_gets_the_panic_and_an_opted_out_one_gets_nothing() {
    let home = tempfile::tempdir().unwrap();
    let (a, b, off) = (MemorySink::new(), MemorySink::new(), MemorySink::new());
    let ca = client(&a, home.path(), RateLimits::default());
    let cb = client(&b, home.path(), RateLimits::default());
    let coff = common::isolated_builder("quiet", "1", home.path(), &off)
        .environment(
            MapEnvironment::new()
                .with("HOME", home.path())
                .with("DO_NOT_TRACK", "1"),
        )
        .build()
        .unwrap();
    coff.report_panics(CrashOptions::default());
    let _ = std::panic::catch_unwind(|| panic!("shared panic for two clients"));
    for c in [&ca, &cb] {
        assert!(c.flush(Duration::from_secs(5)));
    }
    let value = |m: &MemorySink| {
        exceptions(m)
            .iter()
            .filter(|e| {
                e["properties"]["$exception_list"][0]["value"] == "shared panic for two clients"
            })
            .count()
    };
    assert_eq!((value(&a), value(&b), value(&off)), (1, 1, 0));
    assert!(off.events().is_empty());
}

/// A handled error: queued at once (never waits), chained causes kept, scrubbed.
fn a_handled_error_is_queued_with_its_causes() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let c = client(&memory, home.path(), RateLimits::default());
    let report = ErrorReport::new("SyncError", "sync failed")
        .frame(Frame::new("app::sync::run", "/srv/app/src/sync.rs", 88).in_app(true))
        .cause("std::io::Error", "connection refused by 10.0.0.7:5432");
    let t = Instant::now();
    assert!(c.capture_error(&report));
    assert!(t.elapsed() < Duration::from_millis(200));
    // The same error again within 60 s is held back.
    assert!(!c.capture_error(&report));
    assert!(c.flush(Duration::from_secs(5)));
    let sent = exceptions(&memory);
    assert_eq!(sent.len(), 1);
    let list = sent[0]["properties"]["$exception_list"].as_array().unwrap();
    assert_eq!(list[1]["type"], "std::io::Error");
    assert!(!list[1]["value"].as_str().unwrap().contains("10.0.0.7"));
    assert_eq!(list[0]["mechanism"]["handled"], true);
    assert_eq!(list[0]["stacktrace"]["frames"][0]["platform"], "rust");
}

/// The reporting path calls no foreign code that could panic in the hook (a panic inside
/// a panic hook aborts): a host logger that panics on every record changes nothing.
fn a_logger_that_panics_cannot_turn_a_report_into_an_abort() {
    struct Hostile;
    static LOGGED: AtomicBool = AtomicBool::new(false);
    impl log::Log for Hostile {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, r: &log::Record) {
            // The worker's own records are fine; a record on a panicking thread is not.
            if std::thread::panicking() {
                LOGGED.store(true, Ordering::SeqCst);
                panic!("the host's logger panics");
            }
            let _ = r;
        }
        fn flush(&self) {}
    }
    let _ = log::set_boxed_logger(Box::new(Hostile));
    log::set_max_level(log::LevelFilter::Trace);
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let c = client(&memory, home.path(), RateLimits::default());
    let _ = std::panic::catch_unwind(|| panic!("reported without logging"));
    assert!(c.flush(Duration::from_secs(5)));
    assert!(
        !LOGGED.load(Ordering::SeqCst),
        "the reporting path logged on the panicking thread"
    );
    assert!(exceptions(&memory)
        .iter()
        .any(|e| e["properties"]["$exception_list"][0]["value"] == "reported without logging"));
}

/// A crash report refused by the endpoint is not "delivered", though its flush finished.
fn a_refused_crash_report_is_not_called_delivered() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = tempfile::tempdir().unwrap();
    let c = Client::builder("refused", "1")
        .environment(MapEnvironment::new().with("HOME", home.path()))
        .working_dir(home.path())
        .endpoint(format!("http://127.0.0.1:{port}"))
        .api_key("phc_test")
        .max_retries(0)
        .usage_reports(false)
        .build()
        .unwrap();
    let report = ErrorReport::new("Refused", "no").frame(Frame::new("f", "r.rs", 1));
    assert_eq!(
        c.report_crash(&report),
        telemetry_core::crash::Reported::Queued {
            delivered: Some(false)
        }
    );
    assert_eq!(c.stats().dropped_failed, 1);
    c.shutdown(Duration::ZERO);
}

#[test]
fn error_reports() {
    // Quiet for the panics raised on purpose; a failing assertion still prints.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let on_purpose = [
            "storm",
            "other storm",
            "cannot read",
            "shared panic",
            "reported without",
        ]
        .iter()
        .any(|p| text.starts_with(p));
        if !on_purpose {
            default(info);
        }
    }));
    a_panic_is_reported_scrubbed_and_the_host_still_sees_it();
    every_enabled_client_gets_the_panic_and_an_opted_out_one_gets_nothing();
    a_handled_error_is_queued_with_its_causes();
    a_panic_storm_sends_at_most_the_limit_and_never_blocks();
    a_logger_that_panics_cannot_turn_a_report_into_an_abort();
    a_refused_crash_report_is_not_called_delivered();
}
