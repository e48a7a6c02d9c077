//! Usage statistics through the client: exact under concurrency, local whatever the
//! consent, sent home only when it is on, and the local endpoints for real over loopback.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use telemetry_core::anonymize::PropertyKind;
use telemetry_core::env::MapEnvironment;
use telemetry_core::profile::Profile;
use telemetry_core::sink::MemorySink;
use telemetry_core::usage::{ReportOptions, Section, REPORT_EVENT};

fn level(n: u8, anonymize: bool) -> ReportOptions {
    ReportOptions {
        details_level: n,
        anonymize,
        histograms: None,
    }
}

/// 64 threads timing the same operations: every count and bucket adds up exactly.
#[test]
fn concurrent_recording_is_exact() {
    let home = tempfile::tempdir().unwrap();
    let client = common::isolated_builder("qdrantlike", "1.0", home.path(), &MemorySink::new())
        .usage_reports(false)
        .build()
        .unwrap();
    let usage = client.usage();
    let rest = usage
        .timing("rest")
        .label("route", PropertyKind::Safe)
        .build()
        .unwrap();
    let points = usage.counter("points").build().unwrap().handle();
    let threads: Vec<_> = (0..64)
        .map(|t| {
            let rest = rest.clone();
            let points = points.clone();
            std::thread::spawn(move || {
                let route = if t % 2 == 0 { "GET /a" } else { "GET /b" };
                let timing = rest.with(&[route]).unwrap();
                for i in 0..1000u64 {
                    // 0.5 ms (first bucket), 7 ms (third) and failures, in a fixed mix.
                    match i % 4 {
                        0 | 1 => timing.record(Duration::from_micros(500)),
                        2 => timing.record(Duration::from_millis(7)),
                        _ => timing.record_failure(),
                    }
                    points.add(2);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let r = usage.report(&level(3, false));
    let all = &r["operations"]["rest"];
    assert_eq!(all["count"], 64 * 750);
    assert_eq!(all["fail_count"], 64 * 250);
    let cumulative = all["duration_histogram"]["cumulative_counts"]
        .as_array()
        .unwrap();
    assert_eq!(cumulative[0], 64 * 500); // le 1 ms
    assert_eq!(cumulative[1], 64 * 500); // le 5 ms
    assert_eq!(cumulative[2], 64 * 750); // le 10 ms
    assert_eq!(*cumulative.last().unwrap(), 64 * 750);
    // The exact average: total / count.
    let avg = all["avg_duration_micros"].as_f64().unwrap();
    assert!((avg - (500.0 * 2.0 + 7000.0) / 3.0).abs() < 1e-6, "{avg}");
    assert_eq!(all["min_duration_micros"], 500.0);
    assert_eq!(all["max_duration_micros"], 7000.0);
    for item in all["by_labels"].as_array().unwrap() {
        assert_eq!(item["count"], 32 * 750, "{item}");
    }
    assert_eq!(r["counters"]["points"]["total"], 64 * 2000);
    client.shutdown(Duration::ZERO);
}

/// Opted out, recording and the local endpoints work, and nothing is sent or written
/// (tests/opt_out.rs checks, alone in its binary, that no thread starts either).
#[test]
fn opted_out_recording_is_local_and_starts_nothing() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let client = common::isolated_builder("chromadb", "1.0", home.path(), &memory)
        .profile(Profile::Chroma)
        .environment(
            MapEnvironment::new()
                .with("HOME", home.path())
                .with("ANONYMIZED_TELEMETRY", "false"),
        )
        .usage_report_delay(Duration::from_millis(10))
        .build()
        .unwrap();
    assert!(!client.is_enabled());
    let queries = client.usage().timing("query").build().unwrap().handle();
    for _ in 0..100 {
        drop(queries.start());
    }
    std::thread::sleep(Duration::from_millis(100));
    let r = client.usage().handle("/telemetry", "details_level=1");
    assert_eq!(r.status, 200);
    let doc: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(doc["operations"]["query"]["count"], 100);
    assert!(client
        .usage()
        .prometheus(false)
        .contains("chromadb_query_seconds_count 100"));
    let stats = client.shutdown(Duration::from_secs(1));
    assert_eq!(stats.captured, 0);
    assert!(memory.events().is_empty());
    assert!(
        common::listing(home.path()).is_empty(),
        "a file was written"
    );
}

/// Enabled: the first recording starts the worker; the report goes home after the delay,
/// anonymized (label values hashed, counts exact) with histograms, and once more at
/// shutdown.
#[test]
fn enabled_reports_go_home_after_the_delay_and_at_shutdown() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let client = common::isolated_builder("qdrant", "1.19.0", home.path(), &memory)
        .profile(Profile::Qdrant)
        .usage_report_delay(Duration::from_millis(200))
        .usage_report_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let rest = client
        .usage()
        .timing("rest_responses")
        .label("collection", PropertyKind::Hashed)
        .label("status", PropertyKind::Safe)
        .build()
        .unwrap();
    // Declaring is not recording: nothing starts, so no report comes after the delay.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        memory.events().is_empty(),
        "a declaration started the worker"
    );
    rest.record(&["my_collection", "200"], Duration::from_millis(3))
        .unwrap();
    client
        .usage()
        .set_section(
            "collections",
            Section::new(json!({"number": 1, "names": ["my_collection"]}))
                .kind("number", PropertyKind::Exact),
        )
        .unwrap();
    let t = Instant::now();
    while memory.events().is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let waited = t.elapsed();
    let events = memory.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        waited >= Duration::from_millis(150),
        "sent before the delay: {waited:?}"
    );
    let report = &events[0];
    assert_eq!(report["event"], REPORT_EVENT);
    let p = &report["properties"];
    assert_eq!(p["id"], report["distinct_id"]);
    assert_eq!(p["app"]["name"], "qdrant");
    assert!(p["system"]["cpu_cores"].as_u64().unwrap() >= 1);
    let item = &p["operations"]["rest_responses"]["by_labels"][0];
    assert_eq!(item["labels"]["status"], "200");
    let hashed = item["labels"]["collection"].as_str().unwrap();
    assert_eq!(hashed.len(), 16);
    assert_ne!(hashed, "my_collection");
    assert_eq!(item["count"], 1);
    assert!(item["duration_histogram"]["cumulative_counts"].is_array());
    assert_eq!(p["collections"]["number"], 1);
    assert_eq!(p["collections"]["names"][0], hashed); // same secret, same hash
                                                      // The local /telemetry names the same install as the report.
    let local: Value = serde_json::from_str(&client.usage().handle("/telemetry", "").body).unwrap();
    assert_eq!(local["id"], p["id"]);

    rest.record(&["my_collection", "500"], Duration::from_millis(9))
        .unwrap();
    let stats = client.shutdown(Duration::from_secs(2));
    let events = memory.events();
    assert_eq!(events.len(), 2, "one more report at shutdown");
    assert_eq!(
        events[1]["properties"]["operations"]["rest_responses"]["count"],
        2
    );
    assert_eq!((stats.captured, stats.sent), (2, 2));
}

/// A host that never touches usage statistics sends no usage reports.
#[test]
fn a_client_whose_host_never_uses_usage_statistics_sends_no_report() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let client = common::isolated_builder("app", "1", home.path(), &memory)
        .usage_report_delay(Duration::from_millis(10))
        .build()
        .unwrap();
    client.capture(telemetry_core::Event::new("started"));
    std::thread::sleep(Duration::from_millis(100));
    client.shutdown(Duration::from_secs(1));
    let names: Vec<Value> = memory.events().iter().map(|e| e["event"].clone()).collect();
    assert_eq!(names, vec![json!("started")]);
}

/// Two products in one process keep their own numbers.
#[test]
fn two_clients_do_not_mix_their_numbers() {
    let home = tempfile::tempdir().unwrap();
    let a = common::isolated_builder("alpha", "1", home.path(), &MemorySink::new())
        .usage_reports(false)
        .build()
        .unwrap();
    let b = common::isolated_builder("beta", "1", home.path(), &MemorySink::new())
        .usage_reports(false)
        .build()
        .unwrap();
    a.usage()
        .counter("requests")
        .build()
        .unwrap()
        .handle()
        .add(3);
    b.usage()
        .counter("requests")
        .build()
        .unwrap()
        .handle()
        .add(5);
    assert_eq!(
        a.usage().report(&level(0, false))["counters"]["requests"]["total"],
        3
    );
    assert_eq!(
        b.usage().report(&level(0, false))["counters"]["requests"]["total"],
        5
    );
    assert!(a
        .usage()
        .prometheus(false)
        .contains("alpha_requests_total 3"));
    assert!(!a.usage().prometheus(false).contains("beta"));
}

/// Level by level, each adds what the table in the report module says.
#[test]
fn details_levels_add_detail_and_higher_numbers_mean_four() {
    let usage = telemetry_core::usage::Usage::standalone("app", "1");
    let t = usage
        .timing("op")
        .label("kind", PropertyKind::Safe)
        .build()
        .unwrap();
    t.record(&["a"], Duration::from_millis(2)).unwrap();
    usage
        .set_section("deep", Section::new(json!({"x": true})).level(4))
        .unwrap();
    let at = |n| usage.report(&level(n, false));
    let op = |r: &Value| r["operations"]["op"].clone();
    let l0 = at(0);
    assert!(l0.get("system").is_none());
    assert!(op(&l0).get("min_duration_micros").is_none());
    assert!(op(&l0).get("by_labels").is_none());
    let l1 = at(1);
    assert!(l1["system"].is_object());
    assert_eq!(op(&l1)["min_duration_micros"], 2000.0);
    assert!(op(&l1)["last_responded"].as_str().unwrap().ends_with('Z'));
    assert!(op(&l1).get("by_labels").is_none());
    let l2 = at(2);
    assert_eq!(op(&l2)["by_labels"][0]["labels"]["kind"], "a");
    assert!(op(&l2).get("duration_histogram").is_none());
    let l3 = at(3);
    assert!(op(&l3)["duration_histogram"].is_object());
    assert!(l3.get("deep").is_none());
    assert_eq!(at(4)["deep"]["x"], true);
    // Only the resident memory may differ between two renders.
    let without_rss = |mut r: Value| {
        r["system"]["resident_bytes"] = Value::Null;
        r
    };
    let six: Value =
        serde_json::from_str(&usage.handle("/telemetry", "details_level=6").body).unwrap();
    assert_eq!(without_rss(six), without_rss(at(4)));
}

/// Every bad query gets a 400 naming what is wrong; other paths a 404; nothing panics.
#[test]
fn bad_queries_get_a_clear_400() {
    let usage = telemetry_core::usage::Usage::standalone("app", "1");
    for (path, query, says) in [
        ("/telemetry", "details_level=-1", "details_level"),
        ("/telemetry", "details_level=abc", "details_level"),
        ("/telemetry", "details_level=", "details_level"),
        ("/telemetry", "details_level=1.5", "details_level"),
        ("/telemetry", "anonymize=maybe", "anonymize"),
        ("/telemetry", "anonymize=true&anonymize=false", "twice"),
        ("/telemetry", "detail=1", "unknown parameter"),
        ("/metrics", "details_level=1", "unknown parameter"),
        ("/metrics", "anonymize=%ff%fe", "anonymize"),
    ] {
        let r = usage.handle(path, query);
        assert_eq!(r.status, 400, "{path}?{query}");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{path}?{query}: {body}"
        );
    }
    assert_eq!(usage.handle("/other", "").status, 404);
    // Label names Prometheus keeps for itself are refused at declaration.
    for reserved in ["le", "quantile", "__name"] {
        let err = usage
            .timing("t")
            .label(reserved, PropertyKind::Safe)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
    }
    assert_eq!(usage.handle("/telemetry/", "anonymize=1").status, 200);
    // Arbitrary bytes as a query never panic.
    for q in [
        "%",
        "%%%",
        "=&=&",
        "\u{0}",
        "details_level=99999999999999999999999999",
    ] {
        let r = usage.handle("/telemetry", q);
        assert!(r.status == 200 || r.status == 400, "{q}: {}", r.status);
    }
}

/// The loopback server answers real HTTP requests and refuses other addresses.
#[test]
fn the_loopback_server_serves_both_endpoints() {
    let usage = telemetry_core::usage::Usage::standalone("app", "1");
    usage.counter("hits").build().unwrap().handle().add(7);
    let server = usage.serve("127.0.0.1:0").unwrap();
    let agent = ureq::Agent::new_with_defaults();
    let mut metrics = agent
        .get(format!("{}/metrics", server.url()))
        .call()
        .unwrap();
    assert_eq!(
        metrics.headers().get("content-type").unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(metrics
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("app_hits_total 7"));
    let text = agent
        .get(format!(
            "{}/telemetry?details_level=2&anonymize=true",
            server.url()
        ))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["counters"]["hits"]["total"], 7);
    let bad = agent
        .get(format!("{}/telemetry?details_level=x", server.url()))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(bad.status(), 400);
    let post = agent
        .post(format!("{}/metrics", server.url()))
        .config()
        .http_status_as_error(false)
        .build()
        .send("")
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers().get("allow").unwrap(), "GET, HEAD");
    for addr in ["0.0.0.0:0", "192.0.2.1:9464", "example.com:80", "nonsense"] {
        assert!(usage.serve(addr).is_err(), "{addr}");
    }
    drop(server);
}

/// A recorder's latency is not held up by rendering running in a loop (no lock shared):
/// not a speed target (`make bench` has those), proof that rendering never blocks.
#[test]
fn rendering_never_blocks_recorders() {
    let usage = telemetry_core::usage::Usage::standalone("app", "1");
    let family = usage
        .timing("op")
        .label("key", PropertyKind::Hashed)
        .build()
        .unwrap();
    for i in 0..200 {
        family
            .record(&[&format!("k{i}")], Duration::from_micros(i))
            .unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renderer = {
        let usage = usage.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut renders = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = usage.report(&level(4, true));
                let _ = usage.prometheus(true);
                renders += 1;
            }
            renders
        })
    };
    let handle = family.with(&["k1"]).unwrap();
    let t = Instant::now();
    let mut recorded = 0u64;
    while t.elapsed() < Duration::from_millis(300) {
        handle.record(Duration::from_micros(5));
        recorded += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let renders = renderer.join().unwrap();
    assert!(renders > 0);
    assert_eq!(handle.snapshot().count, recorded + 1);
}
