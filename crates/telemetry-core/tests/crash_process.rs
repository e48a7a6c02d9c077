//! Crashes for real: examples/crash_app.rs panics in its main thread, as a child process
//! reporting to the real collector. Its report (scrubbed) is stored before the child has
//! exited; its exit status and its own crash output are what they would be without us; a
//! dead endpoint delays the crash by at most the deadline; opted out, nothing is sent.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use telemetry_collector::{Collector, EventFilter};

fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/crash_app");
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` (make test-rust) builds the examples",
        path.display()
    );
    path
}

fn run(endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(example());
    cmd.args(["--endpoint", endpoint])
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = cmd.output().unwrap();
    (out, t.elapsed())
}

fn exceptions(collector: &telemetry_collector::CollectorHandle) -> Vec<Value> {
    collector
        .events(&EventFilter::default().event("$exception"))
        .unwrap()
        .into_iter()
        .map(|e| e.properties)
        .collect()
}

fn fatal(reports: &[Value]) -> Vec<&Value> {
    reports
        .iter()
        .filter(|r| r["$exception_level"] == "fatal")
        .collect()
}

#[cfg(unix)]
fn signal_of(out: &Output) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal()
}

#[test]
fn a_crashing_process_reports_before_it_dies_and_dies_as_it_would() {
    let db = tempfile::tempdir().unwrap();
    let collector = Collector::start("127.0.0.1:0", db.path().join("events.db")).unwrap();
    let url = collector.url();

    // Unwinding: exit status 101 and Rust's own message, the report already stored.
    let (out, _) = run(&url, &[], &[]);
    assert_eq!(out.status.code(), Some(101), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("panicked at") && stderr.contains("cannot connect to db01.internal:5432"),
        "{stderr}"
    );
    // Read at once, without waiting: the child waited for delivery before dying.
    let reports = exceptions(&collector);
    let crash = fatal(&reports);
    assert_eq!(crash.len(), 1, "{reports:?}");
    let e = &crash[0]["$exception_list"][0];
    assert_eq!(e["type"], "panic");
    let value = e["value"].as_str().unwrap();
    assert!(!value.contains("alice@example.com"), "{value}");
    let frames = e["stacktrace"]["frames"].as_array().unwrap();
    let names: Vec<&str> = frames
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    assert_eq!(
        &names[names.len() - 3..],
        ["crash_app::main", "crash_app::start", "crash_app::connect"],
        "{names:?}"
    );
    assert!(frames
        .iter()
        .all(|f| !f["filename"].as_str().unwrap().contains('/')));
    // The handled error it reported first is there too.
    assert!(reports
        .iter()
        .any(|r| r["$exception_list"][0]["type"] == "ConfigWarning"));
    // The collector groups them by fingerprint.
    let text = ureq::get(format!("{url}/api/errors?product=crashapp"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let groups: Value = serde_json::from_str(&text).unwrap();
    let group = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["fingerprint"] == crash[0]["$exception_fingerprint"])
        .expect("the crash's group");
    assert_eq!(group["count"], 1);
    assert_eq!(group["versions"], serde_json::json!(["2.1.0"]));

    // A host hook that aborts (what `panic = "abort"` does after the hooks): SIGABRT as
    // before, and the report went out first.
    #[cfg(unix)]
    {
        let before = fatal(&exceptions(&collector)).len();
        let (out, _) = run(&url, &["--abort"], &[]);
        assert_eq!(signal_of(&out), Some(libc::SIGABRT), "{out:?}");
        assert_eq!(fatal(&exceptions(&collector)).len(), before + 1);
    }

    // Opted out: the same death, nothing sent.
    let before = exceptions(&collector).len();
    let (out, _) = run(&url, &[], &[("DO_NOT_TRACK", "1")]);
    assert_eq!(out.status.code(), Some(101));
    assert!(String::from_utf8_lossy(&out.stderr).contains("panicked at"));
    assert_eq!(exceptions(&collector).len(), before);
}

#[test]
fn a_dead_endpoint_delays_the_crash_by_at_most_the_deadline() {
    // A port that refuses: bound, never listening, held for the test.
    let reserved = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let endpoint = format!("http://127.0.0.1:{port}");
    let (baseline, quick) = run(&endpoint, &[], &[("DO_NOT_TRACK", "1")]);
    assert_eq!(baseline.status.code(), Some(101));
    let (out, slow) = run(&endpoint, &["--deadline-ms", "700"], &[]);
    assert_eq!(out.status.code(), Some(101), "{out:?}");
    let added = slow.saturating_sub(quick);
    assert!(
        added <= Duration::from_millis(700 + 500),
        "the crash was delayed by {added:?}"
    );
}

/// A real `panic = "abort"` build: the same example compiled by rustc with `-C panic=abort`
/// against this build's telemetry-core (crates compiled to unwind link into an aborting
/// binary). The hook runs, the report is stored, then the process aborts as it would.
#[cfg(unix)]
#[test]
fn an_abort_build_reports_then_aborts() {
    let debug = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let rlib = debug.join("libtelemetry_core.rlib");
    assert!(
        rlib.exists(),
        "{} is missing: `cargo build --workspace --all-targets` (make test) makes it",
        rlib.display()
    );
    let out_dir = tempfile::tempdir().unwrap();
    let binary = out_dir.path().join("crash_app_abort");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let built = Command::new(rustc)
        .args(["--edition", "2021", "-C", "panic=abort", "-g"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/crash_app.rs"
        ))
        .arg("-o")
        .arg(&binary)
        .arg("--extern")
        .arg(format!("telemetry_core={}", rlib.display()))
        .arg("-L")
        .arg(format!("dependency={}", debug.join("deps").display()))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let db = tempfile::tempdir().unwrap();
    let collector = Collector::start("127.0.0.1:0", db.path().join("events.db")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(&binary)
        .args(["--endpoint", &collector.url()])
        .env_clear()
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(signal_of(&out), Some(libc::SIGABRT), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("panicked at"));
    let crash = exceptions(&collector);
    assert_eq!(fatal(&crash).len(), 1, "{crash:?}");
}
