//! End to end against the real local collector on loopback: what the core sends is what
//! a PostHog-compatible receiver stores, exactly.

use std::sync::Arc;
use std::time::Duration;

use telemetry_collector::{Collector, EventFilter};
use telemetry_core::env::MapEnvironment;
use telemetry_core::profile::Profile;
use telemetry_core::{Client, Event};

fn client(endpoint: &str, home: &std::path::Path) -> Client {
    Client::builder("chromadb", "1.3.0")
        .profile(Profile::Chroma)
        .environment(MapEnvironment::new().with("HOME", home))
        .working_dir(home)
        .endpoint(endpoint)
        .api_key("phc_e2e")
        .queue_capacity(100_000)
        .build()
        .unwrap()
}

#[test]
fn events_from_many_threads_arrive_exactly_once_with_exact_batch_sums() {
    let db = tempfile::tempdir().unwrap();
    let collector = Collector::start("127.0.0.1:0", db.path().join("events.db")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let client = Arc::new(client(&collector.url(), home.path()));
    let threads = 8u64;
    let per_thread = 2_500u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    if i % 5 == 0 {
                        client.capture(Event::new("collection_get").safe("thread", t));
                    } else {
                        client.capture(
                            Event::new("collection_add")
                                .hashed("collection_uuid", format!("c{}", i % 4))
                                .exact("add_amount", 3)
                                .batched(format!("add:{}", i % 4), 300, &["add_amount"]),
                        );
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = client.shutdown(Duration::from_secs(10));
    let total = threads * per_thread;
    assert_eq!((stats.captured, stats.sent), (total, total), "{stats:?}");

    let summary = collector.summary().unwrap();
    let gets = &summary.by_event["collection_get"];
    let adds = &summary.by_event["collection_add"];
    assert_eq!(gets.events as u64, total / 5);
    assert_eq!(gets.batch_size_total as u64, total / 5);
    assert_eq!(adds.batch_size_total as u64, total * 4 / 5);
    assert!(
        adds.events < total / 10,
        "adds were not merged: {}",
        adds.events
    );
    assert_eq!(summary.instances, 1);
    assert_eq!(summary.by_product_version["1.3.0"], summary.events);

    let stored = collector
        .events(&EventFilter::default().event("collection_add").limit(10_000))
        .unwrap();
    let amount: u64 = stored
        .iter()
        .map(|e| e.properties["add_amount"].as_u64().unwrap())
        .sum();
    assert_eq!(amount, 3 * total * 4 / 5);
    let e = &stored[0];
    let id = std::fs::read_to_string(home.path().join(".cache/chroma/telemetry_user_id")).unwrap();
    assert_eq!(e.distinct_id, id.trim());
    assert_eq!(e.properties["collection_uuid"].as_str().unwrap().len(), 16);
    assert_eq!(e.properties["$geoip_disable"], true);
    collector.shutdown();
}

#[test]
fn the_deletion_endpoint_forgets_an_install() {
    let db = tempfile::tempdir().unwrap();
    let collector = Collector::start("127.0.0.1:0", db.path().join("events.db")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let client = client(&collector.url(), home.path());
    for _ in 0..10 {
        client.capture(Event::new("ping"));
    }
    client.shutdown(Duration::from_secs(5));
    let id = std::fs::read_to_string(home.path().join(".cache/chroma/telemetry_user_id")).unwrap();
    assert_eq!(collector.delete_instance(id.trim()).unwrap().events, 10);
    assert_eq!(collector.summary().unwrap().events, 0);
    collector.shutdown();
}

#[test]
fn an_opted_out_client_never_reaches_the_collector() {
    let db = tempfile::tempdir().unwrap();
    let collector = Collector::start("127.0.0.1:0", db.path().join("events.db")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let client = Client::builder("chromadb", "1.3.0")
        .profile(Profile::Chroma)
        .environment(
            MapEnvironment::new()
                .with("HOME", home.path())
                .with("ANONYMIZED_TELEMETRY", "False"),
        )
        .working_dir(home.path())
        .endpoint(collector.url())
        .api_key("phc_e2e")
        .build()
        .unwrap();
    for _ in 0..100 {
        client.capture(Event::new("ping"));
    }
    client.shutdown(Duration::from_secs(1));
    assert_eq!(collector.summary().unwrap().events, 0);
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
    collector.shutdown();
}

/// A Qdrant-style usage report reaches the collector as a `usage_report` event, and
/// `GET /api/usage` serves the newest one per install.
#[test]
fn usage_reports_reach_the_collector_and_api_usage_serves_the_latest() {
    let db = tempfile::tempdir().unwrap();
    let collector = Collector::start("127.0.0.1:0", db.path().join("events.db")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let client = Client::builder("qdrant", "1.19.0")
        .profile(Profile::Qdrant)
        .environment(MapEnvironment::new().with("HOME", home.path()))
        .working_dir(home.path())
        .config_dir(home.path())
        .endpoint(collector.url())
        .api_key("phc_e2e")
        .usage_report_delay(Duration::from_millis(100))
        .build()
        .unwrap();
    let rest = client
        .usage()
        .timing("rest_responses")
        .label("route", telemetry_core::anonymize::PropertyKind::Safe)
        .build()
        .unwrap();
    rest.record(&["GET /collections"], Duration::from_millis(4))
        .unwrap();
    collector
        .wait_for_events(1, Duration::from_secs(10))
        .unwrap();
    rest.record(&["GET /collections"], Duration::from_millis(6))
        .unwrap();
    client.shutdown(Duration::from_secs(2));
    let reports = collector
        .events(&EventFilter::default().event("usage_report"))
        .unwrap();
    assert_eq!(
        reports.len(),
        2,
        "the first after the delay, the last at shutdown"
    );

    let agent = ureq::Agent::new_with_defaults();
    let text = agent
        .get(format!("{}/api/usage", collector.url()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let latest: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(latest.as_array().unwrap().len(), 1);
    let report = &latest[0]["report"];
    assert_eq!(report["app"]["name"], "qdrant");
    assert_eq!(report["operations"]["rest_responses"]["count"], 2);
    assert_eq!(
        report["operations"]["rest_responses"]["by_labels"][0]["labels"]["route"],
        "GET /collections"
    );
    assert_eq!(latest[0]["distinct_id"], report["id"]);
}
