//! Hostile senders: hundreds of connections trickling bytes, a 10 MB event,
//! invalid UTF-8, SQL metacharacters everywhere. Each gets a clear answer,
//! nothing bad is stored, and healthy senders keep being served.
//! (How much latency the slow connections cost is a benchmark figure:
//! `make bench`, crates/telemetry-collector/benches.)

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

#[test]
fn five_hundred_slow_connections_do_not_starve_healthy_senders() {
    let c = start();
    let addr = c.handle.addr();
    let stop = Arc::new(AtomicBool::new(false));
    // 500 connections, each sending a request a byte at a time, 1 byte / 200 ms.
    let trickle = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut conns: Vec<TcpStream> = (0..500)
                .map(|_| TcpStream::connect(addr).expect("connect a slow client"))
                .collect();
            let text =
                b"POST /batch/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n{";
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let byte = &text[i % text.len()..][..1];
                for conn in &mut conns {
                    let _ = conn.write_all(byte);
                }
                i += 1;
                thread::sleep(Duration::from_millis(200));
            }
            conns.len()
        })
    };
    thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    for n in 0..50 {
        let r = post(
            addr,
            "/batch/",
            &batch(vec![event("healthy", "i", &uuid(50, n))]),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    assert_eq!(trickle.join().unwrap(), 500);
    // Generous: 50 requests on an idle server take well under a second here.
    assert!(
        took < Duration::from_secs(10),
        "50 healthy requests took {took:?}"
    );
    assert_eq!(c.handle.summary().unwrap().events, 50);
}

#[test]
fn a_client_that_stalls_in_its_headers_is_cut_off() {
    let c = start();
    let mut conn = TcpStream::connect(c.handle.addr()).unwrap();
    conn.write_all(b"POST /batch/ HTTP/1.1\r\nHost: local")
        .unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let mut raw = Vec::new();
    let _ = std::io::Read::read_to_end(&mut conn, &mut raw);
    let waited = started.elapsed();
    // The header timeout (10 s) closes it, answered 408 or not at all.
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(25),
        "{waited:?}"
    );
    if !raw.is_empty() {
        assert_eq!(parse_reply(&raw).status, 408);
    }
}

#[test]
fn a_ten_megabyte_event_is_413_and_nothing_is_stored() {
    let c = start();
    let mut big = event("big", "i", &uuid(51, 1));
    big["properties"]["blob"] = json!("x".repeat(10 * 1024 * 1024));
    let body = serde_json::to_vec(&json!({"api_key": "k", "batch": [big]})).unwrap();
    // The answer comes from the declared length, before the body is read: the
    // body is written from another thread, which may find the socket closed.
    let mut conn = TcpStream::connect(c.handle.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "POST /capture/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut writer = conn.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut raw = Vec::new();
    let _ = std::io::Read::read_to_end(&mut conn, &mut raw);
    sender.join().unwrap();
    assert_eq!(parse_reply(&raw).status, 413);
    assert_eq!(c.handle.summary().unwrap().events, 0);
}

#[test]
fn invalid_utf8_and_bad_shapes_are_400_with_a_reason() {
    let c = start();
    let addr = c.handle.addr();
    let mut bodies: Vec<Vec<u8>> = vec![
        b"{\"api_key\":\"k\",\"batch\":[{\"event\":\"\xff\xfe\",\"distinct_id\":\"i\"}]}".to_vec(),
        b"\xc3\x28".to_vec(),
        br#"{"api_key":"k","batch":[{"event":"e","distinct_id":"i","properties":[]}]}"#.to_vec(),
        br#"{"api_key":"k","batch":{"event":"e"}}"#.to_vec(),
        br#"{"api_key":"k","batch":[{"event":"e","distinct_id":"i","uuid":"not-a-uuid"}]}"#
            .to_vec(),
        br#"{"api_key":"k","batch":[{"event":"e","distinct_id":"i","timestamp":"yesterday"}]}"#
            .to_vec(),
        br#"{"api_key":"k","batch":[{"event":"e","distinct_id":"a\u0000b"}]}"#.to_vec(),
    ];
    bodies.push(format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000)).into_bytes());
    for body in bodies {
        let r = request(
            addr,
            "POST",
            "/batch/",
            &[("Content-Type", "application/json")],
            &body,
        );
        assert_eq!(
            r.status,
            400,
            "{:?}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
        let reason: Value = r.json();
        assert!(reason["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(c.handle.summary().unwrap().events, 0);
    assert_eq!(get(addr, "/health").text(), "ok");
}

#[test]
fn sql_metacharacters_in_every_field_are_stored_verbatim() {
    let c = start();
    let nasty = "'; DROP TABLE events; -- \" \\ % _ ` $1 ?1 /* */";
    let body = json!({"api_key": nasty, "batch": [{
        "event": nasty, "distinct_id": nasty, "uuid": uuid(52, 1),
        "properties": {nasty: nasty, "product": nasty, "product_version": nasty, "os": nasty,
                       "$exception_fingerprint": nasty}}]});
    assert_eq!(post(c.handle.addr(), "/batch/", &body).status, 200);
    let q = |path: &str| get(c.handle.addr(), path).json();
    let encoded: String = form_urlencoded::byte_serialize(nasty.as_bytes()).collect();
    let events = q(&format!(
        "/api/events?event={encoded}&distinct_id={encoded}"
    ));
    assert_eq!(events[0]["properties"][nasty], nasty);
    let summary = q("/api/summary");
    assert_eq!(summary["by_product"][nasty], 1);
    assert_eq!(summary["by_os"][nasty], 1);
    let deleted = request(
        c.handle.addr(),
        "DELETE",
        &format!("/api/instances/{}", encoded.replace('+', "%20")),
        &[],
        b"",
    );
    assert_eq!(deleted.json()["deleted"], 1);
    assert_eq!(c.handle.summary().unwrap().events, 0);
}

#[test]
fn a_client_that_shuts_its_write_side_after_the_request_still_gets_the_answer() {
    // netcat -N and scripts that close their end of the socket do this. Without
    // half-close support the server may read that end of input before it answers and
    // hang up with nothing said; it is a race, so it is run many times.
    let c = start();
    for n in 0..200 {
        let body = serde_json::to_vec(&batch(vec![event("half", "i", &uuid(52, n))])).unwrap();
        let mut conn = TcpStream::connect(c.handle.addr()).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            conn,
            "POST /batch/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        conn.write_all(&body).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut raw = Vec::new();
        let _ = std::io::Read::read_to_end(&mut conn, &mut raw);
        assert!(
            !raw.is_empty(),
            "request {n}: the collector hung up without an answer"
        );
        assert_eq!(parse_reply(&raw).status, 200, "request {n}");
    }
    assert_eq!(c.handle.summary().unwrap().events, 200);
}
