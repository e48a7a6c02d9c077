//! The read side: /api/summary, /api/events, DELETE /api/instances/{id}, /health.

mod common;

use common::*;
use serde_json::{json, Value};
use telemetry_collector::EventFilter;

/// Five events from three instances, two products, with merged batches.
fn seed(c: &TestCollector) {
    let mut events = Vec::new();
    let mut add = |name: &str, id: &str, n: u32, props: Value| {
        let mut e = event(name, id, &uuid(9, n));
        e["properties"] = props;
        events.push(e);
    };
    add(
        "collection_add",
        "inst-a",
        1,
        json!({"product": "chroma", "product_version": "0.5.0", "os": "linux", "batch_size": 100}),
    );
    add(
        "collection_add",
        "inst-a",
        2,
        json!({"product": "chroma", "product_version": "0.5.0", "os": "linux", "batch_size": 23}),
    );
    add(
        "collection_query",
        "inst-b",
        3,
        json!({"product": "chroma", "product_version": "0.5.1", "os": "macos"}),
    );
    add(
        "server_start",
        "inst-c",
        4,
        json!({"product": "qdrant", "product_version": "1.9.0", "os": "linux", "batch_size": 1}),
    );
    add("collection_add", "inst-b+x", 5, json!({}));
    let r = post(c.handle.addr(), "/batch/", &batch(events));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn summary_counts_events_batch_sizes_versions_and_instances() {
    let c = start();
    let empty = get(c.handle.addr(), "/api/summary").json();
    assert_eq!(empty["events"], 0);
    assert_eq!(empty["batch_size_total"], 0);

    seed(&c);
    let summary = get(c.handle.addr(), "/api/summary/").json();
    assert_eq!(
        summary,
        json!({
            "events": 5,
            "batch_size_total": 126,
            "by_event": {
                "collection_add": {"events": 3, "batch_size_total": 124},
                "collection_query": {"events": 1, "batch_size_total": 1},
                "server_start": {"events": 1, "batch_size_total": 1},
            },
            "by_product": {"chroma": 3, "qdrant": 1, "unknown": 1},
            "by_product_version": {"0.5.0": 2, "0.5.1": 1, "1.9.0": 1, "unknown": 1},
            "by_os": {"linux": 3, "macos": 1, "unknown": 1},
            "instances": 4,
        })
    );
    // The in-process helper reads the same numbers.
    assert_eq!(
        serde_json::to_value(c.handle.summary().unwrap()).unwrap(),
        summary
    );
    // The README shows this very summary: its example is real output.
    assert_eq!(readme_json_after("`GET /api/summary` ("), summary);
}

/// The README's `GET /api/events` example is what the collector answers for that event
/// (but for `received_at`, the time it arrived).
#[test]
fn the_readme_events_example_is_real_output() {
    let c = start();
    let mut shown = readme_json_after("`GET /api/events`:");
    let item = shown[0].as_object_mut().unwrap();
    let mut sent = json!({"api_key": "phc_readme"});
    for key in ["uuid", "event", "distinct_id", "timestamp", "properties"] {
        sent[key] = item[key].clone();
    }
    let r = post(c.handle.addr(), "/capture/", &sent);
    assert_eq!(r.status, 200, "{}", r.text());
    let mut answer = get(c.handle.addr(), "/api/events").json();
    let received = answer[0].as_object_mut().unwrap().remove("received_at");
    assert!(received.unwrap().as_str().unwrap().ends_with('Z'));
    item.remove("received_at");
    assert_eq!(answer, shown);
}

/// The first ```json block after `marker` in the crate's README, parsed.
fn readme_json_after(marker: &str) -> Value {
    let readme = include_str!("../README.md");
    let from = readme.find(marker).expect("marker in README") + marker.len();
    let block = &readme[from..];
    let start = block
        .find("```json\n")
        .expect("a json block after the marker")
        + 8;
    let end = block[start..].find("```").unwrap() + start;
    serde_json::from_str(&block[start..end]).expect("the README's block is JSON")
}

#[test]
fn events_filter_and_limit_return_the_newest_oldest_first() {
    let c = start();
    seed(&c);
    let addr = c.handle.addr();
    let uuids = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["uuid"].as_str().unwrap().to_owned())
            .collect()
    };

    assert_eq!(uuids(get(addr, "/api/events").json()).len(), 5);
    assert_eq!(
        uuids(get(addr, "/api/events?event=collection_add").json()),
        [uuid(9, 1), uuid(9, 2), uuid(9, 5)]
    );
    assert_eq!(
        uuids(get(addr, "/api/events?event=collection_add&limit=2").json()),
        [uuid(9, 2), uuid(9, 5)]
    );
    assert_eq!(
        uuids(get(addr, "/api/events?distinct_id=inst-b%2Bx").json()),
        [uuid(9, 5)]
    );
    assert_eq!(
        uuids(
            get(
                addr,
                "/api/events?distinct_id=inst-a&event=collection_add&limit=1"
            )
            .json()
        ),
        [uuid(9, 2)]
    );
    assert!(uuids(get(addr, "/api/events?limit=0").json()).is_empty());
    assert_eq!(uuids(get(addr, "/api/events?limit=999999").json()).len(), 5);
    assert_eq!(get(addr, "/api/events?limit=ten").status, 400);

    let one = &get(addr, "/api/events?event=server_start").json()[0];
    assert_eq!(one["event"], "server_start");
    assert_eq!(one["distinct_id"], "inst-c");
    assert_eq!(one["timestamp"], "2024-05-01T10:00:00.123Z");
    assert_eq!(one["properties"]["product"], "qdrant");

    let filter = EventFilter::default().distinct_id("inst-a").limit(1);
    assert_eq!(c.handle.events(&filter).unwrap()[0].uuid, uuid(9, 2));
}

#[test]
fn delete_removes_exactly_that_instances_events() {
    let c = start();
    seed(&c);
    let addr = c.handle.addr();
    let r = request(addr, "DELETE", "/api/instances/inst-a", &[], b"");
    assert_eq!(
        (r.status, r.json()),
        (
            200,
            json!({"deleted": 2, "usage_reports": 0, "error_reports": 0})
        )
    );
    // `+` in a path is a literal plus, percent-escapes are decoded.
    let r = request(addr, "DELETE", "/api/instances/inst-b%2Bx/", &[], b"");
    assert_eq!(
        r.json(),
        json!({"deleted": 1, "usage_reports": 0, "error_reports": 0})
    );
    let r = request(addr, "DELETE", "/api/instances/nobody", &[], b"");
    assert_eq!(
        r.json(),
        json!({"deleted": 0, "usage_reports": 0, "error_reports": 0})
    );

    let left: Vec<String> = c
        .handle
        .events(&EventFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| e.distinct_id)
        .collect();
    assert_eq!(left, ["inst-b", "inst-c"]);
    assert_eq!(c.handle.summary().unwrap().instances, 2);
    assert_eq!(c.handle.delete_instance("inst-c").unwrap().events, 1);
}

#[test]
fn health_is_ok() {
    let c = start();
    let r = get(c.handle.addr(), "/health");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(get(c.handle.addr(), "/health/").status, 200);
}

/// `GET /api/usage`: the newest usage report of each install, optionally of one product.
#[test]
fn usage_returns_the_newest_report_per_install() {
    let c = start();
    let report = |id: &str, n: u32, product: &str, requests: u64| {
        let mut e = event("usage_report", id, &uuid(7, n));
        e["properties"] = json!({"product": product, "app": {"name": product},
                                 "counters": {"requests": {"total": requests}}});
        e
    };
    let events = vec![
        report("inst-a", 1, "qdrant", 10),
        event("collection_add", "inst-a", &uuid(7, 2)),
        report("inst-b", 3, "chroma", 5),
        report("inst-a", 4, "qdrant", 25),
    ];
    let r = post(c.handle.addr(), "/batch/", &batch(events));
    assert_eq!(r.status, 200, "{}", r.text());
    let all = get(c.handle.addr(), "/api/usage").json();
    let items = all.as_array().unwrap();
    assert_eq!(items.len(), 2, "{all}");
    assert_eq!(items[0]["distinct_id"], "inst-b");
    assert_eq!(items[1]["distinct_id"], "inst-a");
    assert_eq!(items[1]["report"]["counters"]["requests"]["total"], 25);
    assert!(items[1]["received_at"].as_str().unwrap().ends_with('Z'));
    let qdrant = get(c.handle.addr(), "/api/usage?product=qdrant").json();
    assert_eq!(qdrant.as_array().unwrap().len(), 1);
    assert_eq!(qdrant[0]["distinct_id"], "inst-a");
    let none = get(c.handle.addr(), "/api/usage?product=evidently").json();
    assert_eq!(none, json!([]));
    let r = post(c.handle.addr(), "/api/usage", &json!({}));
    assert_eq!(r.status, 405);
}

/// `GET /api/errors`: `$exception` events grouped by fingerprint, most frequent first.
#[test]
fn errors_are_grouped_by_fingerprint() {
    let c = start();
    let report = |id: &str, n: u32, fp: &str, version: &str, suppressed: u64| {
        let mut e = event("$exception", id, &uuid(8, n));
        e["properties"] = json!({"product": "crashy", "product_version": version,
            "$exception_fingerprint": fp, "$exception_suppressed": suppressed,
            "$exception_list": [{"type": "panic", "value": format!("boom {n}")}]});
        e
    };
    let events = vec![
        report("inst-a", 1, "aaaa", "1.0", 0),
        report("inst-b", 2, "aaaa", "1.1", 3),
        report("inst-a", 3, "bbbb", "1.1", 0),
        report("inst-c", 4, "aaaa", "1.1", 0),
        event("collection_add", "inst-a", &uuid(8, 5)),
    ];
    let r = post(c.handle.addr(), "/batch/", &batch(events));
    assert_eq!(r.status, 200, "{}", r.text());
    let groups = get(c.handle.addr(), "/api/errors").json();
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 2, "{groups:?}");
    let a = &groups[0];
    assert_eq!(a["fingerprint"], "aaaa");
    assert_eq!(
        (a["count"].as_u64(), a["installs"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(a["versions"], json!(["1.0", "1.1"]));
    assert_eq!(a["suppressed"], 3);
    assert_eq!(a["example"]["$exception_list"][0]["value"], "boom 4");
    assert!(a["first_seen"].as_str().unwrap() <= a["last_seen"].as_str().unwrap());
    assert_eq!(groups[1]["fingerprint"], "bbbb");
    assert_eq!(
        get(c.handle.addr(), "/api/errors?product=other").json(),
        json!([])
    );
}
