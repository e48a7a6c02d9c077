//! The `otlp-receiver` binary as Go and Python tests drive it: the ready file, the JSON
//! lines file, `GET /spans`, `POST /fault`, and the tree printed on SIGTERM.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use otlp_receiver::ReceivedSpan;

const TRACE: &str = r#"{"resourceSpans": [{
  "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "go-client"}}]},
  "scopeSpans": [{"scope": {"name": "demo"}, "spans": [
    {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7",
     "name": "GET /items", "kind": 3,
     "startTimeUnixNano": "1000000000", "endTimeUnixNano": "1012300000"},
    {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b8",
     "parentSpanId": "00f067aa0ba902b7", "name": "connect",
     "startTimeUnixNano": "1001000000", "endTimeUnixNano": "1003000000",
     "attributes": [{"key": "attempt", "value": {"intValue": "1"}}]}
  ]}]
}]}"#;

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no ready file at {}", path.display());
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

#[test]
fn ready_file_spans_fault_and_tree_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let jsonl = dir.path().join("spans.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_otlp-receiver"))
        .arg("--ready-file")
        .arg(&ready)
        .arg("--jsonl")
        .arg(&jsonl)
        .arg("--tree")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let addresses: serde_json::Value = serde_json::from_str(&wait_for_file(&ready)).unwrap();
    let http = addresses["http"].as_str().unwrap().to_string();
    let grpc = addresses["grpc"].as_str().unwrap();
    assert!(http.starts_with("127.0.0.1:") && grpc.starts_with("127.0.0.1:"));
    assert_ne!(http, grpc);
    assert_eq!(addresses.as_object().unwrap().len(), 2, "{addresses}");

    let agent = agent();
    let export = |agent: &ureq::Agent| {
        agent
            .post(&format!("http://{http}/v1/traces"))
            .header("content-type", "application/json")
            .header("x-honeycomb-team", "abc")
            .send(TRACE)
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(export(&agent), 200);

    let mut response = agent.get(&format!("http://{http}/spans")).call().unwrap();
    let spans: Vec<ReceivedSpan> =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[1].parent_span_id, spans[0].span_id);
    assert_eq!(spans[1].attr("attempt"), Some(&serde_json::json!(1)));
    assert_eq!(spans[0].header("x-honeycomb-team"), Some("abc"));
    assert_eq!(spans[0].protocol, "http/json");

    let fault = agent
        .post(&format!("http://{http}/fault"))
        .send(r#"{"kind": "status", "http_status": 429, "retry_after_secs": 2, "requests": 1}"#)
        .unwrap();
    assert_eq!(fault.status(), 200);
    let refused = agent
        .post(&format!("http://{http}/v1/traces"))
        .header("content-type", "application/json")
        .send(TRACE)
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap(),
        "2"
    );

    let lines = std::fs::read_to_string(&jsonl).unwrap();
    let lines: Vec<ReceivedSpan> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, spans);

    // SAFETY: kill(2) on our own child's pid, which is alive (we have not waited on it).
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(
        stdout,
        "trace 4bf92f3577b34da6a3ce929d0e0e4736\n  GET /items (go-client) 12.3 ms\n    connect 2.0 ms\n"
    );
}

#[test]
fn refuses_a_non_loopback_address() {
    let output = Command::new(env!("CARGO_BIN_EXE_otlp-receiver"))
        .args(["--http", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback only"), "{stderr}");
}
