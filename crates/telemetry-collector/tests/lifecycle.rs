//! Concurrency, keep-alive, persistence and graceful shutdown.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::json;
use telemetry_collector::{Collector, EventFilter, Store};

#[test]
fn concurrent_posts_from_8_threads_are_all_stored() {
    let c = start();
    let addr = c.handle.addr();
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            thread::spawn(move || {
                for r in 0..10u32 {
                    let events = (0..5)
                        .map(|i| event("e", &format!("inst-{t}"), &uuid(t, r * 5 + i)))
                        .collect();
                    let reply = post(addr, "/batch/", &batch(events));
                    assert_eq!(reply.status, 200, "{}", reply.text());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let summary = c.handle.summary().unwrap();
    assert_eq!((summary.events, summary.instances), (8 * 10 * 5, 8));
}

#[test]
fn several_requests_share_one_keep_alive_connection() {
    let c = start();
    let mut conn = TcpStream::connect(c.handle.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for n in 0..3 {
        let body = serde_json::to_string(&batch(vec![event("e", "i", &uuid(20, n))])).unwrap();
        write!(
            conn,
            "POST /batch/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            // Header names are case-insensitive (hyper writes them lowercase).
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length: ") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert_eq!(body, br#"{"status":1}"#);
    }
    assert_eq!(c.handle.summary().unwrap().events, 3);
}

#[test]
fn expect_100_continue_is_honoured() {
    let c = start();
    let mut conn = TcpStream::connect(c.handle.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = serde_json::to_string(&batch(vec![event("e", "i", &uuid(21, 1))])).unwrap();
    write!(conn, "POST /batch/ HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    let mut interim = [0u8; 25];
    conn.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_reply(&raw).status, 200);
}

#[test]
fn a_request_in_flight_at_shutdown_is_answered_and_stored() {
    let c = start();
    let addr = c.handle.addr();
    let body = serde_json::to_vec(&batch(vec![event("in_flight", "i", &uuid(22, 1))])).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);

    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "POST /batch/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(first).unwrap();
    // An idle keep-alive connection must not hold shutdown up.
    let idle = TcpStream::connect(addr).unwrap();
    thread::sleep(Duration::from_millis(200));

    let TestCollector {
        handle,
        db,
        dir: _dir,
    } = c;
    let stopper = thread::spawn(move || handle.shutdown());
    thread::sleep(Duration::from_millis(300));
    // Shutdown has begun: new connections are refused...
    assert!(TcpStream::connect(addr).is_err());
    // ...but the started request is still read, stored and answered.
    conn.write_all(rest).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let reply = parse_reply(&raw);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply
        .head
        .to_ascii_lowercase()
        .contains("connection: close"));
    stopper.join().unwrap();
    drop(idle);

    let stored = Store::open(&db)
        .unwrap()
        .events(&EventFilter::default())
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event, "in_flight");
}

#[test]
fn events_survive_a_restart_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let first = Collector::start("127.0.0.1:0", &db).unwrap();
    assert_eq!(
        post(
            first.addr(),
            "/batch/",
            &batch(vec![event("e", "i", &uuid(23, 1))])
        )
        .status,
        200
    );
    drop(first); // Drop shuts down like shutdown()

    let second = Collector::start("127.0.0.1:0", &db).unwrap();
    // A retry that reaches the restarted collector is still deduplicated.
    assert_eq!(
        post(
            second.addr(),
            "/batch/",
            &batch(vec![event("e", "i", &uuid(23, 1))])
        )
        .status,
        200
    );
    assert_eq!(second.summary().unwrap().events, 1);
    assert_eq!(
        second.wait_for_events(1, Duration::from_secs(1)).unwrap(),
        1
    );
}

#[test]
fn in_memory_database_and_bad_addresses() {
    let c = Collector::start("127.0.0.1:0", ":memory:").unwrap();
    assert_eq!(
        post(
            c.addr(),
            "/capture/",
            &json!({"api_key": "k", "event": "e", "distinct_id": "i"})
        )
        .status,
        200
    );
    assert_eq!(c.summary().unwrap().events, 1);
    assert!(c.url().starts_with("http://127.0.0.1:"));
    assert!(!c.url().ends_with(":0"));

    assert!(Collector::start("not an address", ":memory:").is_err());
    // The port is taken by `c`.
    assert!(Collector::start(&c.addr().to_string(), ":memory:").is_err());
}
