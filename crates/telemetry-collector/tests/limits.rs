//! Size limits, hostile bodies and unknown routes: the collector answers with
//! the right status, stores nothing, and keeps serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use telemetry_collector::ingest::{MAX_BODY_BYTES, MAX_DECODED_BYTES, MAX_EVENTS};

fn still_serving(c: &TestCollector) {
    assert_eq!(get(c.handle.addr(), "/health").text(), "ok");
}

#[test]
fn a_body_over_8_mib_is_413() {
    let c = start();
    let addr = c.handle.addr();

    // Declared too large: refused from the header, before the body is read.
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /batch/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    )
    .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_reply(&raw).status, 413);

    // An absurd length must not make the server allocate it.
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /batch/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4611686018427387904\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_reply(&raw).status, 413);

    // Really sent (9 MiB of valid-looking JSON): still 413, and the client sees it.
    let padding = "x".repeat(9 * 1024 * 1024);
    let body = json!({"api_key": "k", "batch": [{"event": "e", "distinct_id": "i", "properties": {"p": padding}}]});
    let body = serde_json::to_vec(&body).unwrap();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "POST /batch/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut writer = conn.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let _ = writer.write_all(&body); // may fail once the server has closed
    });
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    sender.join().unwrap();
    assert_eq!(parse_reply(&raw).status, 413);

    // Chunked, no length declared: refused once the limit is crossed.
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "POST /batch/ HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let mut writer = conn.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..9 {
            if write!(writer, "{:x}\r\n", chunk.len()).is_err()
                || writer.write_all(&chunk).is_err()
                || writer.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
    });
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    sender.join().unwrap();
    assert_eq!(parse_reply(&raw).status, 413);

    assert_eq!(c.handle.summary().unwrap().events, 0);
    still_serving(&c);
}

#[test]
fn a_gzip_bomb_is_413_without_inflating_it() {
    let c = start();
    // 1 GiB of zeros as 1024 identical gzip members (a gzip file may hold many,
    // RFC 1952), about 1 MiB on the wire: under the wire limit, far over the
    // inflated one. Built from one compressed MiB so the test itself stays fast.
    let member = gzip(&vec![0u8; 1024 * 1024]);
    let bomb = member.repeat(1024);
    assert!(bomb.len() < MAX_BODY_BYTES);

    let started = Instant::now();
    let r = request(
        c.handle.addr(),
        "POST",
        "/batch/",
        &[("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains(&MAX_DECODED_BYTES.to_string()));
    // Inflating a whole GiB would take far longer than reading 32 MiB of it.
    assert!(started.elapsed() < Duration::from_secs(10));
    still_serving(&c);
}

#[test]
fn more_than_10000_events_is_413() {
    let c = start();
    let one = json!({"event": "e", "distinct_id": "i"});
    let body = json!({"api_key": "k", "batch": vec![one.clone(); MAX_EVENTS + 1]});
    let r = post(c.handle.addr(), "/batch/", &body);
    assert_eq!(r.status, 413);
    assert_eq!(c.handle.summary().unwrap().events, 0);

    let body = json!({"api_key": "k", "batch": vec![one; MAX_EVENTS]});
    assert_eq!(post(c.handle.addr(), "/batch/", &body).status, 200);
    assert_eq!(c.handle.summary().unwrap().events, MAX_EVENTS as u64);
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405() {
    let c = start();
    let addr = c.handle.addr();
    let r = get(addr, "/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"error": "no such endpoint: /nope"}));
    assert_eq!(post(addr, "/api/instances", &json!({})).status, 404);

    let r = get(addr, "/batch/");
    assert_eq!(r.status, 405);
    assert!(
        r.head.to_ascii_lowercase().contains("allow: post"),
        "{}",
        r.head
    );
    assert_eq!(request(addr, "PUT", "/api/summary", &[], b"").status, 405);
    assert_eq!(get(addr, "/api/instances/abc").status, 405);
}

#[test]
fn garbage_on_the_wire_is_refused_and_the_server_stays_up() {
    let c = start();
    let inputs: [&[u8]; 5] = [
        b"\x00\x01\x02\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /batch/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /batch/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nno-colon-here\r\n\r\n",
    ];
    for input in inputs {
        let mut conn = TcpStream::connect(c.handle.addr()).unwrap();
        conn.write_all(input).unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).unwrap();
        let status = parse_reply(&raw).status;
        assert!((400..=505).contains(&status), "{status} for {input:?}");
    }
    let long_header = format!("GET /health HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100_000));
    let mut conn = TcpStream::connect(c.handle.addr()).unwrap();
    let _ = conn.write_all(long_header.as_bytes());
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    assert_eq!(parse_reply(&raw).status, 431);

    // Deeply nested JSON is an error, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = request(c.handle.addr(), "POST", "/batch/", &[], deep.as_bytes());
    assert_eq!(r.status, 400);
    let _: Value = r.json();
    still_serving(&c);
}
