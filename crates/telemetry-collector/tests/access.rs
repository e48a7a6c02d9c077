//! Access control on a real collector: the admin token on `/api/*`, the refusal
//! to listen beyond loopback without one, the API-key allow-list, the rate
//! limits, the loopback `Host` check and CORS for browser senders.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use serde_json::json;
use telemetry_collector::{Collector, Error, EventFilter, Rate};

fn raw_request(addr: std::net::SocketAddr, text: &str) -> Reply {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

#[test]
fn the_api_needs_the_admin_token_once_one_is_set_and_ingest_does_not() {
    let c = Collector::builder()
        .listen("127.0.0.1:0")
        .db(":memory:")
        .admin_token("s3cret-token")
        .start()
        .unwrap();
    let addr = c.addr();
    let sent = post(addr, "/batch/", &batch(vec![event("e", "i", &uuid(40, 1))]));
    assert_eq!(
        sent.status,
        200,
        "senders need no admin token: {}",
        sent.text()
    );

    for (method, path) in [
        ("GET", "/api/events"),
        ("GET", "/api/summary"),
        ("GET", "/api/usage"),
        ("GET", "/api/errors"),
        ("DELETE", "/api/instances/i"),
    ] {
        let r = request(addr, method, path, &[], b"");
        assert_eq!(r.status, 401, "{method} {path}");
        assert!(r
            .head
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"));
        let wrong = request(
            addr,
            method,
            path,
            &[("Authorization", "Bearer s3cret-toke")],
            b"",
        );
        assert_eq!(wrong.status, 401, "{method} {path} with a wrong token");
    }
    let ok = request(
        addr,
        "GET",
        "/api/summary",
        &[("Authorization", "Bearer s3cret-token")],
        b"",
    );
    assert_eq!((ok.status, ok.json()["events"].clone()), (200, json!(1)));
    // The refused DELETE above deleted nothing.
    assert_eq!(c.summary().unwrap().events, 1);
    let deleted = request(
        addr,
        "DELETE",
        "/api/instances/i",
        &[("Authorization", "bearer s3cret-token")],
        b"",
    );
    assert_eq!(deleted.json()["deleted"], 1);
    assert_eq!(get(addr, "/health").status, 200);
}

#[test]
fn beyond_loopback_needs_an_admin_token_to_start() {
    match Collector::builder()
        .listen("0.0.0.0:0")
        .db(":memory:")
        .start()
    {
        Err(Error::Config(message)) => assert!(message.contains("admin token"), "{message}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a collector beyond loopback started without an admin token"),
    }
    let empty = Collector::builder()
        .listen("127.0.0.1:0")
        .db(":memory:")
        .admin_token("")
        .start();
    assert!(matches!(empty, Err(Error::Config(_))));

    // With a token it starts, and it no longer insists on a loopback Host.
    let c = Collector::builder()
        .listen("0.0.0.0:0")
        .db(":memory:")
        .admin_token("t")
        .start()
        .unwrap();
    let port = c.addr().port();
    let r = raw_request(
        format!("127.0.0.1:{port}").parse().unwrap(),
        "GET /health HTTP/1.1\r\nHost: telemetry.example.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn only_listed_api_keys_may_send_and_others_store_nothing() {
    let c = Collector::builder()
        .listen("127.0.0.1:0")
        .db(":memory:")
        .api_keys(["phc_test", "phc_other"])
        .start()
        .unwrap();
    let addr = c.addr();
    assert_eq!(
        post(addr, "/batch/", &batch(vec![event("e", "i", &uuid(41, 1))])).status,
        200
    );

    let mut stranger = batch(vec![event("e", "i", &uuid(41, 2))]);
    stranger["api_key"] = json!("phc_stranger");
    let r = post(addr, "/batch/", &stranger);
    assert_eq!(r.status, 401, "{}", r.text());
    // The refusal names the key only by its hash.
    assert!(!r.text().contains("phc_stranger"));

    // One unknown key inside a batch refuses the whole batch.
    let mut mixed = batch(vec![
        event("e", "i", &uuid(41, 3)),
        event("e", "i", &uuid(41, 4)),
    ]);
    mixed["batch"][1]["api_key"] = json!("phc_stranger");
    assert_eq!(post(addr, "/batch/", &mixed).status, 401);
    assert_eq!(c.summary().unwrap().events, 1);
}

#[test]
fn rate_limits_answer_429_with_retry_after_and_store_nothing_more() {
    let c = Collector::builder()
        .listen("127.0.0.1:0")
        .db(":memory:")
        .rate_per_key(Rate::per_second(5)) // burst 10 events
        .start()
        .unwrap();
    let addr = c.addr();
    let events: Vec<_> = (0..8).map(|n| event("e", "i", &uuid(42, n))).collect();
    assert_eq!(post(addr, "/batch/", &batch(events)).status, 200);
    let events: Vec<_> = (8..16).map(|n| event("e", "i", &uuid(42, n))).collect();
    let limited = post(addr, "/batch/", &batch(events.clone()));
    assert_eq!(limited.status, 429, "{}", limited.text());
    let retry_after: u64 = limited
        .head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a Retry-After header");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(c.summary().unwrap().events, 8);
    // Another key has its own bucket.
    let mut other = batch(vec![event("e", "j", &uuid(42, 100))]);
    other["api_key"] = json!("phc_other");
    assert_eq!(post(addr, "/batch/", &other).status, 200);
    // More events in one request than the burst can ever allow: 413, not a 429 to retry forever.
    let huge: Vec<_> = (200..220).map(|n| event("e", "i", &uuid(42, n))).collect();
    let mut huge = batch(huge);
    huge["api_key"] = json!("phc_third");
    assert_eq!(post(addr, "/batch/", &huge).status, 413);
    // After waiting as told, the sender gets in.
    std::thread::sleep(Duration::from_secs(retry_after));
    assert_eq!(
        post(addr, "/batch/", &batch(events[..4].to_vec())).status,
        200
    );

    let per_address = Collector::builder()
        .listen("127.0.0.1:0")
        .db(":memory:")
        .rate_per_address(Rate::per_second(1)) // burst 2 requests
        .start()
        .unwrap();
    let a = per_address.addr();
    let statuses: Vec<u16> = (0..3)
        .map(|n| post(a, "/batch/", &batch(vec![event("e", "i", &uuid(43, n))])).status)
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(per_address.summary().unwrap().events, 2);
    // The admin API is not rate limited with the senders.
    assert_eq!(get(a, "/api/summary").status, 200);
}

#[test]
fn on_loopback_a_foreign_host_is_refused_dns_rebinding() {
    let c = start();
    let addr = c.handle.addr();
    for host in [
        "evil.example",
        "evil.example:8765",
        "127.0.0.1.evil.example",
    ] {
        let r = raw_request(
            addr,
            &format!("GET /api/events HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(r.status, 403, "Host {host}");
        assert!(r.text().contains("DNS-rebinding"));
    }
    let body = serde_json::to_string(&batch(vec![event("e", "i", &uuid(44, 1))])).unwrap();
    let r = raw_request(
        addr,
        &format!(
            "POST /batch/ HTTP/1.1\r\nHost: rebind.example\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(r.status, 403);
    for host in [
        "localhost",
        &format!("localhost:{}", addr.port()),
        &addr.to_string(),
        "[::1]:1",
    ] {
        let r = raw_request(
            addr,
            &format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(r.status, 200, "Host {host}");
    }
    assert!(c.handle.events(&EventFilter::default()).unwrap().is_empty());
}

#[test]
fn browsers_get_cors_on_ingest_but_not_on_the_api() {
    let c = start();
    let addr = c.handle.addr();
    let preflight = request(
        addr,
        "OPTIONS",
        "/e/",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    );
    assert!(preflight.status < 300, "{}", preflight.status);
    let head = preflight.head.to_ascii_lowercase();
    assert!(
        head.contains("access-control-allow-origin: https://app.example"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-methods: post"),
        "{head}"
    );

    let api = request(
        addr,
        "OPTIONS",
        "/api/events",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        b"",
    );
    assert!(!api
        .head
        .to_ascii_lowercase()
        .contains("access-control-allow-origin"));
}
