//! PostHog ingestion: every accepted shape and encoding, idempotency, and
//! all-or-nothing rejection of malformed requests.

mod common;

use common::*;
use serde_json::{json, Value};
use telemetry_collector::{EventFilter, Store};

fn all_events(c: &TestCollector) -> Vec<telemetry_collector::StoredEvent> {
    c.handle
        .events(&EventFilter::default().limit(10_000))
        .unwrap()
}

#[test]
fn batch_is_accepted_and_stored_exactly() {
    let c = start();
    let mut second = event("collection_add", "inst-b", &uuid(1, 2));
    second["properties"]["batch_size"] = json!(5);
    second["properties"]["nested"] = json!({"a": [1, 2.5, null, "x"]});
    let events = vec![event("client_start", "inst-a", &uuid(1, 1)), second.clone()];

    let reply = post(c.handle.addr(), "/batch/", &batch(events));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"status": 1}));
    assert!(reply
        .head
        .to_ascii_lowercase()
        .contains("content-type: application/json"));

    let stored = all_events(&c);
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].uuid, uuid(1, 1));
    assert_eq!(stored[0].event, "client_start");
    assert_eq!(stored[0].distinct_id, "inst-a");
    assert_eq!(stored[0].timestamp, "2024-05-01T10:00:00.123Z");
    assert_eq!(stored[1].properties, second["properties"]);

    // The same rows are in the file, readable by a second connection.
    let summary = Store::open(&c.db).unwrap().summary().unwrap();
    assert_eq!((summary.events, summary.batch_size_total), (2, 6));
}

#[test]
fn missing_timestamp_and_uuid_are_filled_in() {
    let c = start();
    let body = json!({"api_key": "k", "batch": [{"event": "e", "distinct_id": "i"}]});
    assert_eq!(post(c.handle.addr(), "/batch", &body).status, 200);
    let stored = &all_events(&c)[0];
    assert!(uuid::Uuid::parse_str(&stored.uuid).is_ok());
    assert_eq!(stored.timestamp, stored.received_at);
    assert!(stored.timestamp.ends_with('Z'), "{}", stored.timestamp);
    assert_eq!(stored.properties, json!({}));
}

#[test]
fn gzip_body_by_header_and_by_query() {
    let c = start();
    let addr = c.handle.addr();
    let body = |n| serde_json::to_vec(&batch(vec![event("e", "i", &uuid(2, n))])).unwrap();

    let r = request(
        addr,
        "POST",
        "/batch/",
        &[("Content-Encoding", "gzip")],
        &gzip(&body(1)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(
        addr,
        "POST",
        "/batch/?compression=gzip-js",
        &[],
        &gzip(&body(2)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(
        addr,
        "POST",
        "/i/v0/e/?compression=gzip",
        &[],
        &gzip(&body(3)),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let uuids: Vec<String> = all_events(&c).into_iter().map(|e| e.uuid).collect();
    assert_eq!(uuids, [uuid(2, 1), uuid(2, 2), uuid(2, 3)]);

    let r = request(
        addr,
        "POST",
        "/batch/",
        &[("Content-Encoding", "gzip")],
        b"{not gzip",
    );
    assert_eq!(r.status, 400);
    let r = request(
        addr,
        "POST",
        "/batch/",
        &[("Content-Encoding", "br")],
        &body(4),
    );
    assert_eq!(r.status, 415);
    assert_eq!(all_events(&c).len(), 3);
}

#[test]
fn capture_accepts_a_single_event_and_the_batch_form() {
    let c = start();
    let addr = c.handle.addr();
    let single = json!({
        "api_key": "k", "event": "single", "uuid": uuid(3, 1),
        "properties": {"distinct_id": "from-props", "os": "Darwin"}
    });
    assert_eq!(post(addr, "/capture/", &single).status, 200);
    assert_eq!(
        post(
            addr,
            "/capture",
            &batch(vec![event("batched", "i", &uuid(3, 2))])
        )
        .status,
        200
    );

    let stored = all_events(&c);
    assert_eq!(
        (stored[0].event.as_str(), stored[0].distinct_id.as_str()),
        ("single", "from-props")
    );
    assert_eq!(stored[1].event, "batched");
    assert_eq!(c.handle.summary().unwrap().by_os["Darwin"], 1);
}

#[test]
fn i_v0_e_accepts_every_form() {
    let c = start();
    let addr = c.handle.addr();
    let mut single = event("single", "i", &uuid(4, 1));
    single["api_key"] = json!("k");
    assert_eq!(post(addr, "/i/v0/e/", &single).status, 200);
    assert_eq!(
        post(
            addr,
            "/i/v0/e",
            &batch(vec![event("batched", "i", &uuid(4, 2))])
        )
        .status,
        200
    );

    // A bare array: the key comes from each event, or from ?api_key=.
    let mut with_key = event("array_own_key", "i", &uuid(4, 3));
    with_key["api_key"] = json!("k");
    let bare = json!([with_key, event("array_query_key", "i", &uuid(4, 4))]);
    let refused = post(addr, "/i/v0/e/", &bare);
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json(),
        json!({"error": "batch[1]: missing \"api_key\""})
    );
    assert_eq!(post(addr, "/i/v0/e/?api_key=phc_q", &bare).status, 200);

    let names: Vec<String> = all_events(&c).into_iter().map(|e| e.event).collect();
    assert_eq!(
        names,
        ["single", "batched", "array_own_key", "array_query_key"]
    );
}

#[test]
fn a_retried_batch_is_not_stored_twice() {
    let c = start();
    let addr = c.handle.addr();
    let first = batch(vec![
        event("a", "i", &uuid(5, 1)),
        event("b", "i", &uuid(5, 2)),
    ]);
    assert_eq!(post(addr, "/batch/", &first).status, 200);
    // The retry answers 200 too: the sender must stop retrying.
    assert_eq!(post(addr, "/batch/", &first).status, 200);
    // Overlapping batch, with one uuid in upper case.
    let overlap = batch(vec![
        event("b", "i", &uuid(5, 2).to_uppercase()),
        event("c", "i", &uuid(5, 3)),
    ]);
    assert_eq!(post(addr, "/batch/", &overlap).status, 200);

    let names: Vec<String> = all_events(&c).into_iter().map(|e| e.event).collect();
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn malformed_json_is_400_and_nothing_is_stored() {
    let c = start();
    let addr = c.handle.addr();
    for body in [
        &b"{\"api_key\": \"k\", \"batch\": [{\"event\": "[..],
        b"",
        b"null",
        b"[1,2]",
        b"\xff\xfe",
    ] {
        let r = request(addr, "POST", "/batch/", &[], body);
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert!(r.json()["error"].is_string());
    }
    let r = request(
        addr,
        "POST",
        "/batch/",
        &[],
        b"{\"api_key\":\"k\",\"batch\":[",
    );
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON"),
        "{}",
        r.text()
    );
    assert!(all_events(&c).is_empty());
}

#[test]
fn an_invalid_event_rejects_the_whole_request_and_names_its_index() {
    let c = start();
    let addr = c.handle.addr();
    let mut events: Vec<Value> = (0..5).map(|n| event("ok", "i", &uuid(6, n))).collect();
    events[3].as_object_mut().unwrap().remove("event");
    let r = post(addr, "/batch/", &batch(events.clone()));
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"error": "batch[3]: missing \"event\""}));

    let cases = [
        (
            json!({"event": "", "distinct_id": "i"}),
            r#"batch[0]: "event" must be a non-empty string"#,
        ),
        (json!({"event": "e"}), r#"batch[0]: missing "distinct_id""#),
        (
            json!({"event": "e", "distinct_id": 7}),
            r#"batch[0]: "distinct_id" must be a non-empty string"#,
        ),
        (
            json!({"event": "e", "distinct_id": "i", "properties": [1]}),
            r#"batch[0]: "properties" must be an object"#,
        ),
        (
            json!({"event": "e", "distinct_id": "i", "uuid": "nope"}),
            r#"batch[0]: "uuid" is not a UUID: "nope""#,
        ),
        (
            json!("just a string"),
            "batch[0]: event must be a JSON object",
        ),
    ];
    for (bad, message) in cases {
        let r = post(addr, "/batch/", &batch(vec![bad]));
        assert_eq!(
            (r.status, r.json()["error"].as_str().unwrap()),
            (400, message)
        );
    }
    let r = post(addr, "/batch/", &json!({"api_key": "", "batch": []}));
    assert_eq!(
        r.json(),
        json!({"error": "\"api_key\" must be a non-empty string"})
    );
    let r = post(
        addr,
        "/batch/",
        &json!({"batch": [{"event": "e", "distinct_id": "i"}]}),
    );
    assert_eq!(r.json(), json!({"error": "batch[0]: missing \"api_key\""}));
    let r = post(addr, "/batch/", &json!({"api_key": "k", "batch": {}}));
    assert_eq!(r.json(), json!({"error": "\"batch\" must be an array"}));

    assert!(all_events(&c).is_empty());
}

#[test]
fn the_api_key_is_not_stored() {
    let c = start();
    let body = json!({"api_key": "phc_secret_key_123", "batch": [event("e", "i", &uuid(7, 1))]});
    assert_eq!(post(c.handle.addr(), "/batch/", &body).status, 200);
    c.handle.shutdown();
    let db = std::fs::read(&c.db).unwrap();
    let wal = std::fs::read(c.db.with_extension("db-wal")).unwrap_or_default();
    let needle = b"phc_secret_key_123";
    assert!(!db.windows(needle.len()).any(|w| w == needle));
    assert!(!wal.windows(needle.len()).any(|w| w == needle));
}
