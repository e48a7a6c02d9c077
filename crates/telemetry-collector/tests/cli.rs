//! The `telemetry-collector` binary: startup line, serving, SIGTERM, exit code.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::*;
use telemetry_collector::Store;

const BIN: &str = env!("CARGO_BIN_EXE_telemetry-collector");

/// Starts `serve` on port 0 and returns the child and the address it printed.
fn serve(db: &std::path::Path) -> (Child, SocketAddr, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end();
    (child, url.parse().unwrap(), stdout)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn serve_stores_events_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/events.db");
    let (mut child, addr, mut stdout) = serve(&db);

    let events = (0..3).map(|n| event("cli", "inst", &uuid(30, n))).collect();
    let r = post(addr, "/batch/", &batch(events));
    assert_eq!(r.status, 200, "{}", r.text());

    signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    // Exactly one line on stdout.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "");

    assert_eq!(Store::open(&db).unwrap().summary().unwrap().events, 3);

    // The read-only subcommands see the same database.
    let out = Command::new(BIN)
        .args(["summary", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["events"], 3);
    let out = Command::new(BIN)
        .args(["events", "--limit", "2", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events.as_array().unwrap().len(), 2);
}

#[test]
fn sigint_also_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, _stdout) = serve(&dir.path().join("events.db"));
    assert_eq!(get(addr, "/health").text(), "ok");
    signal(&child, "INT");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn help_and_errors() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for word in ["serve", "summary", "events"] {
        assert!(help.contains(word), "{help}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("--listen") && help.contains("--db") && help.contains("SIGTERM"),
        "{help}"
    );

    let out = Command::new(BIN)
        .args(["serve", "--listen", "nonsense", "--db", ":memory:"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid listen address"));
    assert!(out.stdout.is_empty());

    let out = Command::new(BIN)
        .args(["summary", "--db", "/nonexistent/x.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database at"));
}
