//! The Rust API end to end with the memory sink: what leaves the process and how it is
//! counted.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use telemetry_core::env::MapEnvironment;
use telemetry_core::profile::Profile;
use telemetry_core::sink::{MemorySink, SinkConfig};
use telemetry_core::{Client, ClientConfig, Event};

fn chroma_client(home: &std::path::Path, memory: &MemorySink) -> Client {
    chroma_builder(home, memory).build().unwrap()
}

fn chroma_builder(home: &std::path::Path, memory: &MemorySink) -> telemetry_core::ClientBuilder {
    common::isolated_builder("chromadb", "1.3.0", home, memory).profile(Profile::Chroma)
}

fn json_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A memory or debug sink sends nothing anywhere, so it has no business leaving an id on
/// the user's disk (a test or a `TELEMETRY_DEBUG=1` run would otherwise create
/// `~/.cache/chroma/telemetry_user_id`). An id already stored is reused, so a debug
/// payload shows what a real one would.
#[test]
fn memory_and_debug_sinks_never_write_an_id_file() {
    for debug in [false, true] {
        let home = tempfile::tempdir().unwrap();
        let memory = MemorySink::new();
        let mut env = MapEnvironment::new().with("HOME", home.path());
        if debug {
            env = env.with("TELEMETRY_DEBUG", "1");
        }
        let client = chroma_builder(home.path(), &memory)
            .environment(env)
            .build()
            .unwrap();
        client.capture(Event::new("x"));
        assert!(client.flush(Duration::from_secs(5)));
        client.shutdown(Duration::from_secs(1));
        assert_eq!(client.stats().sent, 1);
        assert!(
            common::listing(home.path()).is_empty(),
            "debug={debug}: {:?}",
            common::listing(home.path())
        );
    }
    // An id stored by a delivering client is reused by a memory one.
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("events.jsonl");
    let stored = chroma_builder(home.path(), &MemorySink::new())
        .sink(SinkConfig::File(out.clone()))
        .build()
        .unwrap();
    stored.capture(Event::new("x"));
    stored.shutdown(Duration::from_secs(1));
    let memory = MemorySink::new();
    let reused = chroma_client(home.path(), &memory);
    reused.capture(Event::new("y"));
    reused.shutdown(Duration::from_secs(1));
    assert_eq!(
        memory.events()[0]["distinct_id"],
        json_lines(&out)[0]["distinct_id"]
    );

    // Chroma's own id file alone (no secret beside it yet): its id is reused, nothing added.
    let home = tempfile::tempdir().unwrap();
    let chroma_dir = home.path().join(".cache/chroma");
    std::fs::create_dir_all(&chroma_dir).unwrap();
    let id = "5b0e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
    std::fs::write(chroma_dir.join("telemetry_user_id"), id).unwrap();
    let before = common::listing(home.path());
    let memory = MemorySink::new();
    let client = chroma_client(home.path(), &memory);
    client.capture(Event::new("z"));
    client.shutdown(Duration::from_secs(1));
    assert_eq!(memory.events()[0]["distinct_id"], id);
    assert_eq!(common::listing(home.path()), before);
}

#[test]
fn delivered_events_are_anonymized_posthog_batch_items_with_the_stored_id() {
    // The file sink: a sink that delivers somewhere stores the install id (a memory or
    // debug sink does not, see below).
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("events.jsonl");
    let client = chroma_builder(home.path(), &MemorySink::new())
        .sink(SinkConfig::File(out.clone()))
        .build()
        .unwrap();
    let id_file = home.path().join(".cache/chroma/telemetry_user_id");
    assert!(client.is_enabled());
    assert!(
        !id_file.exists(),
        "the id must not exist before the first capture"
    );

    client.capture(
        Event::new("collection_query")
            .safe("embedding_function", "default")
            .property("collection_name", "my_collection")
            .property("n_results", 123_456)
            .text(
                "error",
                "failed for alice@example.com at /home/alice/app.py",
            ),
    );
    assert!(client.flush(Duration::from_secs(5)));
    let events = json_lines(&out);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    let stored_id = std::fs::read_to_string(&id_file).unwrap();
    assert_eq!(e["distinct_id"], stored_id.trim());
    assert_eq!(e["event"], "collection_query");
    assert!(uuid::Uuid::parse_str(e["uuid"].as_str().unwrap()).is_ok());
    let ts = e["timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with('Z') && !ts.contains('.'),
        "timestamp {ts} not truncated"
    );

    let p = &e["properties"];
    assert_eq!(p["embedding_function"], "default");
    let hashed = p["collection_name"].as_str().unwrap();
    assert_eq!(hashed.len(), 16);
    assert!(hashed.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(hashed, "my_collection");
    assert_eq!(p["n_results"], 123_000);
    let error = p["error"].as_str().unwrap();
    assert!(!error.contains("alice"), "{error}");
    assert_eq!(p["$lib"], "telemetry-core");
    assert_eq!(p["$process_person_profile"], false);
    assert_eq!(p["$geoip_disable"], true);
    assert_eq!(p["$ip"], Value::Null);
    assert_eq!(p["product"], "chromadb");
    assert_eq!(p["product_version"], "1.3.0");
    assert_eq!(p["runtime"], "rust");
    assert_eq!(p["os"], std::env::consts::OS);

    // The same install hashes the same name the same way (distinct counts work).
    client.capture(Event::new("q").property("collection_name", "my_collection"));
    client.flush(Duration::from_secs(5));
    assert_eq!(json_lines(&out)[1]["properties"]["collection_name"], hashed);
    let stats = client.shutdown(Duration::from_secs(1));
    assert_eq!((stats.captured, stats.sent, stats.queued), (2, 2, 0));
}

#[test]
fn concurrent_batched_captures_add_up_exactly() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let threads = 8;
    let per_thread = 5_000;
    // A queue that holds the whole burst: this test is about exact sums, not overload.
    let client = Arc::new(
        chroma_builder(home.path(), &memory)
            .queue_capacity(threads * per_thread)
            .build()
            .unwrap(),
    );
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let key = format!("add:{}", i % 3);
                    client.capture(
                        Event::new("collection_add")
                            .exact("add_amount", 2)
                            .safe("thread", t)
                            .batched(key, 100, &["add_amount"]),
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = client.shutdown(Duration::from_secs(5));
    let total = (threads * per_thread) as u64;
    assert_eq!(stats.captured, total);
    assert_eq!(stats.sent, total, "{stats:?}");
    let events = memory.events();
    let batch_sizes: u64 = events
        .iter()
        .map(|e| e["properties"]["batch_size"].as_u64().unwrap())
        .sum();
    let amounts: u64 = events
        .iter()
        .map(|e| e["properties"]["add_amount"].as_u64().unwrap())
        .sum();
    assert_eq!(batch_sizes, total);
    assert_eq!(amounts, 2 * total);
    assert_eq!(stats.merged, total - events.len() as u64);
    assert!(
        events.len() < 1000,
        "batching merged nothing: {}",
        events.len()
    );
    assert!(memory.batches().iter().all(|b| b.len() <= 100));
}

#[test]
fn a_full_queue_drops_new_events_and_counts_them() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let client = Arc::new(
        chroma_builder(home.path(), &memory)
            .queue_capacity(10)
            .build()
            .unwrap(),
    );
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    client.capture(Event::new("burst").property("i", i));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = client.shutdown(Duration::from_secs(5));
    assert_eq!(stats.captured, 8_000);
    assert!(stats.dropped_queue_full > 0, "{stats:?}");
    assert_eq!(stats.sent + stats.dropped_queue_full, 8_000, "{stats:?}");
    assert_eq!(memory.events().len() as u64, stats.sent);
}

#[test]
fn telemetry_debug_replaces_the_configured_sink() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let client = Client::builder("app", "1")
        .environment(
            MapEnvironment::new()
                .with("HOME", home.path())
                .with("TELEMETRY_DEBUG", "1"),
        )
        .working_dir(home.path())
        .sink(SinkConfig::Memory(memory.clone()))
        .build()
        .unwrap();
    client.capture(Event::new("x"));
    let stats = client.shutdown(Duration::from_secs(1));
    assert_eq!(stats.sent, 1);
    assert!(memory.events().is_empty());
}

#[test]
fn captures_after_shutdown_are_counted_as_dropped_and_shutdown_is_idempotent() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let client = chroma_client(home.path(), &memory);
    client.capture(Event::new("a"));
    let first = client.shutdown(Duration::from_secs(1));
    assert_eq!(first.sent, 1);
    client.capture(Event::new("b"));
    let again = client.shutdown(Duration::from_secs(1));
    assert_eq!(again.captured, 2);
    assert_eq!(again.dropped_shutdown, 1);
    assert_eq!(
        again.sent + again.dropped_shutdown + again.queued,
        again.captured
    );
    assert_eq!(memory.events().len(), 1);
}

#[test]
fn partial_batches_go_out_at_the_flush_interval() {
    let home = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let client = common::isolated_builder("app", "1", home.path(), &memory)
        .flush_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    for _ in 0..3 {
        client.capture(Event::new("add").batched("k", 1000, &[]));
    }
    let start = Instant::now();
    while memory.events().len() < 2 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let events = memory.events();
    assert_eq!(
        events.len(),
        2,
        "first at once, then the partial merge of two"
    );
    assert_eq!(events[1]["properties"]["batch_size"], 2);
}

#[test]
fn bad_configurations_are_clear_errors_at_build_time() {
    let err = |json: &str| {
        ClientConfig::from_json(json)
            .and_then(|c| c.into_builder())
            .and_then(|b| b.build())
            .unwrap_err()
            .to_string()
    };
    assert!(
        err(r#"{"product": "a", "endpoint": "http://telemetry.example.com", "api_key": "k"}"#)
            .contains("plain HTTP")
    );
    assert!(err(r#"{"product": "a", "endpoint": "https://x.example.com"}"#).contains("api_key"));
    assert!(err(r#"{"product": "a", "sink": "carrier-pigeon"}"#).contains("unknown sink"));
    assert!(err(r#"{"product": "a", "sink": "memory", "colour": 1}"#).contains("colour"));
    assert!(err(r#"{"product": "a", "sink": "memory", "profile": "../x"}"#).contains("profile"));
    assert!(err(r#"{"product": ""#).contains("invalid config JSON"));
    assert!(err(r#"{"product": "", "sink": "memory"}"#).contains("empty"));
}

/// A memory-sink client from JSON configuration with a fixed install id and secret, so
/// payloads are reproducible.
fn fixed_identity_client() -> Client {
    let cfg = r#"{"product": "app", "version": "1", "sink": "memory", "environment": {},
        "install_id": "6f1c1d2e-8d0e-4b5c-9a3f-1b2c3d4e5f60",
        "secret_hex": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}"#;
    ClientConfig::from_json(cfg)
        .unwrap()
        .into_builder()
        .unwrap()
        .build()
        .unwrap()
}

#[test]
fn a_fixed_identity_from_config_makes_payloads_reproducible() {
    let client = fixed_identity_client();
    client.capture(Event::new("x").hashed("name", "my_collection"));
    client.shutdown(Duration::from_secs(1));
    let events = client.memory().unwrap().events();
    assert_eq!(
        events[0]["distinct_id"],
        "6f1c1d2e-8d0e-4b5c-9a3f-1b2c3d4e5f60"
    );
    let anonymizer =
        telemetry_core::anonymize::Anonymizer::new(std::array::from_fn(|i| i as u8), 3);
    assert_eq!(
        events[0]["properties"]["name"],
        anonymizer.hash("my_collection")
    );
}

#[test]
fn preview_shows_the_payload_even_when_off_and_creates_nothing() {
    let home = tempfile::tempdir().unwrap();
    let client = Client::builder("chromadb", "1")
        .profile(Profile::Chroma)
        .environment(
            MapEnvironment::new()
                .with("HOME", home.path())
                .with("ANONYMIZED_TELEMETRY", "false"),
        )
        .working_dir(home.path())
        .sink(SinkConfig::Memory(MemorySink::new()))
        .build()
        .unwrap();
    assert!(!client.is_enabled());
    let item = client.preview(
        Event::new("collection_add")
            .property("collection_name", "docs")
            .batched("k", 10, &[]),
    );
    assert_eq!(item["event"], "collection_add");
    assert_eq!(item["properties"]["batch_size"], 1);
    assert_eq!(
        item["properties"]["collection_name"]
            .as_str()
            .unwrap()
            .len(),
        16
    );
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);

    // With a stored identity, the preview hashes exactly as this install's events do.
    let out = home.path().join("events.jsonl");
    let on = chroma_builder(home.path(), &MemorySink::new())
        .sink(SinkConfig::File(out.clone()))
        .build()
        .unwrap();
    on.capture(Event::new("x").property("collection_name", "docs"));
    on.shutdown(Duration::from_secs(1));
    let sent = &json_lines(&out)[0];
    let preview = on.preview(Event::new("x").property("collection_name", "docs"));
    assert_eq!(
        preview["properties"]["collection_name"],
        sent["properties"]["collection_name"]
    );
    assert_eq!(preview["distinct_id"], sent["distinct_id"]);
}

#[test]
fn the_file_sink_appends_json_lines_and_creates_nothing_before_delivery() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("events.jsonl");
    let start = || {
        Client::builder("app", "1")
            .environment(MapEnvironment::new().with("HOME", home.path()))
            .working_dir(home.path())
            .sink(SinkConfig::File(out.clone()))
            .build()
            .unwrap()
    };
    let first = start();
    assert!(
        !out.exists(),
        "the file sink must not create its file at build"
    );
    first.capture(Event::new("one"));
    first.capture(Event::new("two"));
    assert!(first.flush(Duration::from_secs(5)));
    first.shutdown(Duration::from_secs(1));
    // A second client (the next run) appends; it never truncates.
    let second = start();
    second.capture(Event::new("three"));
    second.shutdown(Duration::from_secs(1));

    let text = std::fs::read_to_string(&out).unwrap();
    let names: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["one", "two", "three"]);
}

#[test]
fn an_encoded_event_is_delivered_exactly_as_the_event_it_encodes() {
    use telemetry_core::EncodedEvent;
    let client = fixed_identity_client();
    let props = serde_json::json!({"name": "my_collection", "n": 123_456, "ratio": 0.011399999999999999,
                                   "tags": ["a", 1], "ok": true, "none": null});
    let direct = props
        .as_object()
        .unwrap()
        .iter()
        .fold(Event::new("e"), |e, (k, v)| {
            e.property(k.clone(), v.clone())
        });
    client.capture(direct);
    client.capture_encoded(EncodedEvent::new("e", &props).unwrap());
    let stats = client.shutdown(Duration::from_secs(5));
    assert_eq!(
        (stats.captured, stats.sent, stats.dropped_failed),
        (2, 2, 0)
    );
    let events = client.memory().unwrap().events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], events[1]["event"]);
    assert_eq!(events[0]["properties"], events[1]["properties"]);
    assert_ne!(events[1]["properties"]["name"], "my_collection");

    // Opted out, an encoded capture does nothing either.
    let home = tempfile::tempdir().unwrap();
    let off = common::isolated_builder("app", "1", home.path(), &MemorySink::new())
        .explicit(Some(false))
        .build()
        .unwrap();
    off.capture_encoded(EncodedEvent::new("e", &props).unwrap());
    assert_eq!(off.stats().captured, 0);
}
