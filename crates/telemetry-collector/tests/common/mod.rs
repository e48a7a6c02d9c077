//! Helpers shared by the integration tests: a real collector on 127.0.0.1:0 over
//! a real SQLite file, and a minimal HTTP/1.1 client on std::net (so the tests
//! see exactly the bytes on the wire, with no client library in between).

#![allow(dead_code)] // each test file uses a different subset

pub mod postgres;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use telemetry_collector::{Collector, CollectorHandle};
use tempfile::TempDir;

/// A collector over `events.db` in a fresh temporary directory.
pub struct TestCollector {
    pub handle: CollectorHandle,
    pub db: PathBuf,
    pub dir: TempDir,
}

pub fn start() -> TestCollector {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let handle = Collector::start("127.0.0.1:0", &db).unwrap();
    TestCollector { handle, db, dir }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses one `Connection: close` response read to EOF.
pub fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

/// Sends one request with `Connection: close` and reads the whole answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

pub fn post(addr: SocketAddr, target: &str, body: &Value) -> Reply {
    let body = serde_json::to_vec(body).unwrap();
    request(
        addr,
        "POST",
        target,
        &[("Content-Type", "application/json")],
        &body,
    )
}

pub fn get(addr: SocketAddr, target: &str) -> Reply {
    request(addr, "GET", target, &[], b"")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A deterministic UUID for event number `n` of test `test`.
pub fn uuid(test: u8, n: u32) -> String {
    format!("00000000-0000-4000-8000-{test:04x}{n:08x}")
}

/// One event as telemetry-core sends it.
pub fn event(name: &str, distinct_id: &str, uuid: &str) -> Value {
    json!({
        "event": name,
        "distinct_id": distinct_id,
        "uuid": uuid,
        "timestamp": "2024-05-01T10:00:00.123Z",
        "properties": {
            "product": "chroma",
            "product_version": "0.5.0",
            "os": "Linux",
            "$lib": "telemetry-core",
        }
    })
}

pub fn batch(events: Vec<Value>) -> Value {
    json!({ "api_key": "phc_test", "batch": events, "sent_at": "2024-05-01T10:00:01Z" })
}
