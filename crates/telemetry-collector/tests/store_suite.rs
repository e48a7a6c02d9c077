//! The [`Store`]'s behaviour, written once and run against both databases.
//!
//! Each scenario below is a function of a [`Db`] that asserts what the store
//! must answer and returns its answers. `sqlite::NAME` runs scenario `NAME` on
//! a SQLite file; `postgres::NAME` runs it on a fresh database of a real
//! PostgreSQL server (tests/common/postgres.rs), asserts the same expected
//! values, then runs it on SQLite too and requires the two sets of answers to
//! be equal, step by step. `postgres_only::*` covers what only a server has:
//! the socket URL forms, a restart, killed connections.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::postgres::TestPostgres;
use serde::Serialize;
use serde_json::{json, Map, Value};
use telemetry_collector::ingest::{self, parse, Endpoint, Event};
use telemetry_collector::stats::{
    EnvironmentStats, EventStats, IdStats, PropertyStats, StatsRange, UsageStats, VersionStats,
};
use telemetry_collector::store::{
    Batch, Deleted, ErrorGroup, EventCounts, Inserted, StoreKind, StoredEvent, Summary, MAX_LIMIT,
};
use telemetry_collector::{Error, EventFilter, Store};

// ---------------------------------------------------------------------------
// The scenarios, for both databases.

macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::Db::new(super::Kind::Sqlite));
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let pg = super::$name(&super::Db::new(super::Kind::Postgres));
                    let sqlite = super::$name(&super::Db::new(super::Kind::Sqlite));
                    super::assert_same(stringify!($name), &sqlite, &pg);
                }
            )*
        }
    };
}

both_databases!(
    roundtrip_keeps_every_field_verbatim,
    nul_characters_are_kept_or_refused_whole,
    duplicate_uuids_are_skipped_in_any_spelling,
    insert_all_answers_per_batch,
    events_filters_limits_and_order,
    events_default_and_max_limit,
    arrival_order_is_insert_order_not_received_at,
    summary_figures,
    latest_usage_reports_newest_per_install,
    error_groups_by_fingerprint,
    error_groups_with_a_non_string_fingerprint,
    delete_instance_removes_everything_of_it,
    retention_deletes_by_received_at,
    schema_version_and_reopen_keep_data,
    newer_schema_is_refused,
    sql_metacharacters_are_data,
    two_stores_insert_overlapping_uuids_concurrently,
    rollups_match_the_events,
    rollup_days_are_utc_and_newest_wins,
    delete_instance_removes_it_from_every_view,
    retention_keeps_the_views_of_what_remains,
    schema_2_database_gets_its_rollups,
);

fn roundtrip_keeps_every_field_verbatim(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let mut nested = json!({"leaf": [1, "two", null, false, {"x": []}, 2.5]});
    for depth in (0..40).rev() {
        let mut level = Map::new();
        level.insert(format!("level{depth}"), nested);
        nested = Value::Object(level);
    }
    let props = json!({
        "product": "chroma",
        "product_version": "0.5.0",
        "os": "Linux",
        "unicode": "naïve café 日本語 🎉 \u{202e}rtl\u{202c} \u{fffd} e\u{301}",
        "emoji key 🎉": true,
        "": "empty key",
        "empty": "",
        "null": null,
        "escapes": "line\nbreak\ttab \"quoted\" back\\slash \u{1} \u{7f} \u{2028}",
        "u64_max": u64::MAX,
        "i64_min": i64::MIN,
        "i64_max": i64::MAX,
        "beyond_u64": 1e20,
        "f64_max": f64::MAX,
        "f64_min_positive": 5e-324,
        "pi": std::f64::consts::PI,
        "a_tenth": 0.1,
        "whole_float": 3.0,
        "negative": -42,
        "array": [1, "x", null, [[]], {}, [true, false]],
        "nested": nested,
        "long": "x".repeat(100_000),
        "$set": {"email": null, "plan": "pro"},
    });
    let sent = events(vec![
        json!({"event": "ünïcödé event 🎉", "distinct_id": "instance-日本", "uuid": uuid(1),
               "timestamp": "2024-05-01T12:00:00.123456+02:00", "properties": props}),
        // No timestamp: the receive time stands in. No properties: an empty object.
        json!({"event": "no timestamp", "distinct_id": "i2", "uuid": uuid(2)}),
        json!({"event": "zulu", "distinct_id": "i2", "uuid": uuid(3),
               "timestamp": "2024-05-01T10:00:00Z", "properties": {"n": 1}}),
        json!({"event": "lower case offset", "distinct_id": "i2", "uuid": uuid(4),
               "timestamp": "2024-05-01T10:00:00.5-07:30", "properties": {}}),
    ]);
    assert_eq!(
        insert(&store, &sent, &at(7)),
        inserted(4, 0),
        "{:?}",
        db.kind
    );
    let stored = all(&store);
    assert_eq!(stored.len(), 4);
    for (e, s) in sent.iter().zip(&stored) {
        assert_eq!(s.uuid, e.uuid);
        assert_eq!(s.event, e.event);
        assert_eq!(s.distinct_id, e.distinct_id);
        let want_timestamp = e.timestamp.clone().unwrap_or_else(|| at(7));
        assert_eq!(
            s.timestamp, want_timestamp,
            "timestamp of {} as sent",
            e.uuid
        );
        assert_eq!(s.received_at, at(7));
        assert_eq!(s.properties, properties(e), "properties of {}", e.uuid);
    }
    // Spot checks, for a readable failure on the numbers.
    let p = &stored[0].properties;
    assert_eq!(p["u64_max"], json!(u64::MAX));
    assert_eq!(p["i64_min"], json!(i64::MIN));
    assert_eq!(p["f64_max"].as_f64(), Some(f64::MAX));
    assert_eq!(p["f64_min_positive"].as_f64(), Some(5e-324));
    assert_eq!(p["a_tenth"].as_f64(), Some(0.1));
    assert_eq!(p["long"].as_str().map(str::len), Some(100_000));
    assert_eq!(stored[1].properties, json!({}));

    assert!(must(store.contains(&uuid(1)), "contains"));
    assert!(!must(store.contains(&uuid(99)), "contains"));
    answers.add("events", &stored);
    answers
}

/// U+0000 in text fields and in properties: either stored verbatim (SQLite
/// does) or refused at ingest for both stores alike; a store that fails on it
/// must at least fail the whole transaction.
fn nul_characters_are_kept_or_refused_whole(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let body = json!({"api_key": "phc_suite", "batch": [
        ev("e\u{0}x", "i\u{0}d", 2, json!({"nul": "a\u{0}b", "k\u{0}ey": ["\u{0}"], "product": "p\u{0}"})),
    ]});
    let nul_events = match parse(Endpoint::Batch, &serde_json::to_vec(&body).unwrap(), None) {
        Ok(events) => events,
        Err(refused) => {
            // A policy of the ingest layer, the same for both stores.
            answers.add("refused at ingest", &refused.message);
            return answers;
        }
    };
    let good = Batch {
        events: events(vec![ev("good", "i1", 1, json!({"fine": true}))]),
        received_at: at(1),
    };
    let nul = Batch {
        events: nul_events,
        received_at: at(2),
    };
    match store.insert_all(&[&good, &nul]) {
        Ok(results) => assert_eq!(results, vec![inserted(1, 0), inserted(1, 0)]),
        Err(e) => {
            let left = all(&store);
            assert!(
                left.is_empty(),
                "{:?} failed on U+0000 ({e}) but kept part of the transaction: {left:?}",
                db.kind
            );
            panic!(
                "{:?} refused events containing U+0000: {e}. SQLite stores them verbatim; \
                 all-or-nothing held (nothing of the transaction was stored), but the sender \
                 would retry this batch forever",
                db.kind
            );
        }
    }
    let found = must(
        store.events(&EventFilter::default().event("e\u{0}x")),
        "events",
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].distinct_id, "i\u{0}d");
    assert_eq!(found[0].properties, properties(&nul.events[0]));
    assert_eq!(
        must(store.summary(), "summary").by_product.get("p\u{0}"),
        Some(&1)
    );
    answers.add("events", all(&store));
    answers
}

fn duplicate_uuids_are_skipped_in_any_spelling(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let first = events(vec![
        ev("a", "i1", 1, json!({"v": 1})),
        ev("a", "i1", 2, json!({"v": 1})),
        ev("b", "i2", 3, json!({"v": 1})),
    ]);
    assert_eq!(insert(&store, &first, &at(1)), inserted(3, 0));
    // The same batch again (a retry after a timeout): all duplicates.
    assert_eq!(insert(&store, &first, &at(2)), inserted(0, 3));

    // The same uuids spelled otherwise (ingest normalises them), with other
    // properties: still duplicates, and the first stored version stays. Within
    // one batch, the first of two equal uuids is stored.
    let respelled = events(vec![
        json!({"event": "a", "distinct_id": "i1", "uuid": uuid(1).to_uppercase(), "properties": {"v": 2}}),
        json!({"event": "a", "distinct_id": "i1", "uuid": format!("{{{}}}", uuid(2)), "properties": {"v": 2}}),
        json!({"event": "b", "distinct_id": "i2", "uuid": uuid(3).replace('-', ""), "properties": {"v": 2}}),
        json!({"event": "b", "distinct_id": "i2", "uuid": format!("urn:uuid:{}", uuid(3).to_uppercase()), "properties": {"v": 2}}),
        ev("c", "i3", 4, json!({"first": true})),
        ev("c", "i3", 4, json!({"first": false})),
    ]);
    assert_eq!(respelled[0].uuid, uuid(1), "ingest normalises uuids");
    assert_eq!(insert(&store, &respelled, &at(3)), inserted(1, 5));

    let stored = all(&store);
    assert_eq!(uuids(&stored), vec![uuid(1), uuid(2), uuid(3), uuid(4)]);
    for s in &stored[..3] {
        assert_eq!(
            s.properties,
            json!({"v": 1}),
            "{} kept its first version",
            s.uuid
        );
        assert_eq!(s.received_at, at(1));
    }
    assert_eq!(stored[3].properties, json!({"first": true}));
    assert_eq!(stored[3].received_at, at(3));
    assert_eq!(must(store.summary(), "summary").events, 4);
    assert!(must(store.contains(&uuid(4)), "contains"));
    answers.add("events", &stored);
    answers
}

fn insert_all_answers_per_batch(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let batch = |received: u32, items: Vec<Value>| Batch {
        events: events(items),
        received_at: at(received),
    };
    let a = batch(
        1,
        vec![ev("x", "i1", 1, json!({})), ev("x", "i1", 2, json!({}))],
    );
    let b = batch(
        2,
        vec![ev("x", "i1", 2, json!({})), ev("x", "i2", 3, json!({}))],
    );
    let c = Batch {
        events: Vec::new(),
        received_at: at(3),
    };
    let d = batch(
        4,
        vec![
            ev("x", "i1", 1, json!({})),
            ev("x", "i2", 3, json!({})),
            ev("x", "i1", 1, json!({})),
        ],
    );
    let e = batch(
        5,
        vec![ev("y", "i3", 4, json!({})), ev("y", "i3", 4, json!({}))],
    );
    let results = must(store.insert_all(&[&a, &b, &c, &d, &e]), "insert_all");
    assert_eq!(
        results,
        vec![
            inserted(2, 0),
            inserted(1, 1),
            inserted(0, 0),
            inserted(0, 3),
            inserted(1, 1)
        ]
    );
    answers.add("results", pairs(&results));
    assert_eq!(
        must(store.insert_all(&[]), "insert_all of nothing"),
        Vec::<Inserted>::new()
    );

    let stored = all(&store);
    assert_eq!(uuids(&stored), vec![uuid(1), uuid(2), uuid(3), uuid(4)]);
    let received: Vec<&str> = stored.iter().map(|s| s.received_at.as_str()).collect();
    assert_eq!(
        received,
        vec![at(1), at(1), at(2), at(5)],
        "each batch's own received_at"
    );
    answers.add("events", &stored);
    answers
}

fn events_filters_limits_and_order(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    // 12 events in 4 batches: names a/b alternating, three instances.
    let mut rows = Vec::new();
    for batch in 0..4u32 {
        let mut items = Vec::new();
        for i in 0..3u32 {
            let k = batch * 3 + i;
            let name = if k % 2 == 0 { "a" } else { "b" };
            let id = format!("i{}", (k / 2) % 3 + 1);
            items.push(ev(name, &id, k + 1, json!({"k": k})));
            rows.push((name, id, uuid(k + 1)));
        }
        assert_eq!(
            insert(&store, &events(items), &at(batch + 1)),
            inserted(3, 0)
        );
    }
    let expect = |event: Option<&str>, id: Option<&str>, limit: usize| -> Vec<String> {
        let matching: Vec<String> = rows
            .iter()
            .filter(|(n, i, _)| event.is_none_or(|e| e == *n) && id.is_none_or(|d| d == i.as_str()))
            .map(|(_, _, u)| u.clone())
            .collect();
        matching[matching.len().saturating_sub(limit)..].to_vec()
    };
    let cases: Vec<(&str, EventFilter, Vec<String>)> = vec![
        ("default", EventFilter::default(), expect(None, None, 100)),
        (
            "limit 5",
            EventFilter::default().limit(5),
            expect(None, None, 5),
        ),
        (
            "limit 1",
            EventFilter::default().limit(1),
            expect(None, None, 1),
        ),
        ("limit 0", EventFilter::default().limit(0), Vec::new()),
        (
            "event a",
            EventFilter::default().event("a"),
            expect(Some("a"), None, 100),
        ),
        (
            "event a, 2",
            EventFilter::default().event("a").limit(2),
            expect(Some("a"), None, 2),
        ),
        (
            "instance i1",
            EventFilter::default().distinct_id("i1"),
            expect(None, Some("i1"), 100),
        ),
        (
            "event b of i2",
            EventFilter::default().event("b").distinct_id("i2"),
            expect(Some("b"), Some("i2"), 100),
        ),
        (
            "no such event",
            EventFilter::default().event("nope"),
            Vec::new(),
        ),
        (
            "names are case-sensitive",
            EventFilter::default().event("A"),
            Vec::new(),
        ),
        (
            "no prefix match",
            EventFilter::default().distinct_id("i"),
            Vec::new(),
        ),
    ];
    for (label, filter, want) in cases {
        let got = must(store.events(&filter), label);
        assert_eq!(uuids(&got), want, "{label} ({filter:?})");
        answers.add(label, &got);
    }
    assert_eq!(expect(None, None, 5).len(), 5);
    assert_eq!(
        expect(Some("b"), Some("i2"), 100).len(),
        2,
        "the data has such rows"
    );
    answers
}

fn events_default_and_max_limit(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let total = MAX_LIMIT as u32 + 50;
    let batches: Vec<Batch> = (0..total)
        .collect::<Vec<_>>()
        .chunks(1000)
        .enumerate()
        .map(|(b, chunk)| Batch {
            events: events(
                chunk
                    .iter()
                    .map(|&k| ev("bulk", &format!("i{}", k % 10), k, json!({"k": k})))
                    .collect(),
            ),
            received_at: at(b as u32),
        })
        .collect();
    let refs: Vec<&Batch> = batches.iter().collect();
    let results = must(store.insert_all(&refs), "insert_all");
    assert_eq!(
        results.iter().map(|r| r.stored).sum::<usize>(),
        total as usize
    );

    let newest = must(store.events(&EventFilter::default()), "events");
    assert_eq!(newest.len(), 100, "DEFAULT_LIMIT");
    assert_eq!(newest[0].uuid, uuid(total - 100));
    assert_eq!(newest[99].uuid, uuid(total - 1));

    let clamped = must(
        store.events(&EventFilter::default().limit(20_000)),
        "events",
    );
    assert_eq!(clamped.len(), MAX_LIMIT, "clamped to MAX_LIMIT");
    assert_eq!(clamped[0].uuid, uuid(50));
    assert_eq!(clamped.last().unwrap().uuid, uuid(total - 1));
    assert_eq!(must(store.summary(), "summary").events, u64::from(total));
    answers.add("default", &newest);
    answers.add("clamped uuids", uuids(&clamped));
    answers
}

/// "Arrival order" is the order rows were stored, even when a later batch
/// carries an earlier `received_at` (collectors' clocks differ).
fn arrival_order_is_insert_order_not_received_at(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    insert(&store, &events(vec![ev("e", "i1", 1, json!({}))]), &at(50));
    insert(&store, &events(vec![ev("e", "i1", 2, json!({}))]), &at(10));
    insert(
        &store,
        &events(vec![ev("usage_report", "i2", 3, json!({"n": 1}))]),
        &at(50),
    );
    insert(
        &store,
        &events(vec![ev("usage_report", "i2", 4, json!({"n": 2}))]),
        &at(10),
    );
    let stored = all(&store);
    assert_eq!(uuids(&stored), vec![uuid(1), uuid(2), uuid(3), uuid(4)]);
    let last_two = must(store.events(&EventFilter::default().limit(2)), "events");
    assert_eq!(uuids(&last_two), vec![uuid(3), uuid(4)]);
    let latest = must(store.latest_usage_reports(None), "latest_usage_reports");
    assert_eq!(uuids(&latest), vec![uuid(4)], "the report stored last");
    answers.add("events", &stored);
    answers.add("latest", &latest);
    answers
}

fn summary_figures(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    assert_eq!(
        must(store.summary(), "summary"),
        Summary::default(),
        "empty database"
    );
    let items = vec![
        ev(
            "start",
            "i1",
            1,
            json!({"product": "chroma", "product_version": "0.5.0", "os": "Linux", "batch_size": 3}),
        ),
        ev(
            "start",
            "i2",
            2,
            json!({"product": "chroma", "product_version": "0.6.0", "$os": "Mac OS X"}),
        ),
        ev(
            "query",
            "i1",
            3,
            json!({"product": "qdrant", "os": "Linux", "$os": "Windows"}),
        ),
        ev("query", "i3", 4, json!({})),
        ev("query", "i3", 5, json!({"batch_size": 2.0})),
        ev("query", "i3", 6, json!({"batch_size": "7"})),
        ev("stop", "i2", 7, json!({"batch_size": 2.5})),
        ev(
            "stop",
            "i1",
            8,
            json!({"product": 5, "product_version": null, "os": ["Linux"]}),
        ),
        // More than 32 bits: a merged event of five billion occurrences.
        ev("start", "i4", 9, json!({"batch_size": 5_000_000_000i64})),
        ev("start", "i4", 10, json!({"product": "unknown"})),
    ];
    assert_eq!(insert(&store, &events(items), &at(1)), inserted(10, 0));
    let summary = must(store.summary(), "summary");
    let counts = |events, batch_size_total| EventCounts {
        events,
        batch_size_total,
    };
    let map = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    let want = Summary {
        events: 10,
        batch_size_total: 5_000_000_012,
        by_event: [
            ("query".to_string(), counts(4, 5)),
            ("start".to_string(), counts(4, 5_000_000_005)),
            ("stop".to_string(), counts(2, 2)),
        ]
        .into_iter()
        .collect(),
        by_product: map(&[("chroma", 2), ("qdrant", 1), ("unknown", 7)]),
        by_product_version: map(&[("0.5.0", 1), ("0.6.0", 1), ("unknown", 8)]),
        by_os: map(&[("Linux", 2), ("Mac OS X", 1), ("unknown", 7)]),
        instances: 4,
    };
    assert_eq!(summary, want);
    answers.add("summary", &summary);
    answers
}

fn latest_usage_reports_newest_per_install(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let report = |id: &str, n: u32, product: Option<&str>| {
        let mut props = json!({"collections": n});
        if let Some(p) = product {
            props["product"] = json!(p);
        }
        ev("usage_report", id, n, props)
    };
    let steps = vec![
        (1, vec![report("i1", 1, Some("A"))]),
        (2, vec![report("i1", 2, Some("A"))]),
        (3, vec![report("i1", 3, Some("B"))]),
        (4, vec![report("i2", 4, Some("A"))]),
        (
            5,
            vec![
                ev("start", "i3", 5, json!({"product": "A"})),
                report("i4", 6, None),
            ],
        ),
        (6, vec![ev("query", "i1", 7, json!({"product": "A"}))]),
    ];
    for (t, items) in steps {
        insert(&store, &events(items), &at(t));
    }
    let cases = [
        (None, vec![3, 4, 6]),
        (Some("A"), vec![2, 4]),
        (Some("B"), vec![3]),
        (Some("nope"), vec![]),
        (Some("a"), vec![]),
    ];
    for (product, want) in cases {
        let got = must(store.latest_usage_reports(product), "latest_usage_reports");
        let want: Vec<String> = want.into_iter().map(uuid).collect();
        assert_eq!(uuids(&got), want, "product {product:?}");
        assert!(got.iter().all(|r| r.event == "usage_report"));
        answers.add(format!("product {product:?}"), &got);
    }
    answers
}

fn error_groups_by_fingerprint(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let x =
        |id: &str, n: u32, fp: Option<&str>, product: &str, version: Option<&str>, extra: Value| {
            let mut props = json!({"product": product, "$exception_message": format!("boom {n}")});
            if let Some(fp) = fp {
                props["$exception_fingerprint"] = json!(fp);
            }
            if let Some(v) = version {
                props["product_version"] = json!(v);
            }
            if let Value::Object(extra) = extra {
                props.as_object_mut().unwrap().extend(extra);
            }
            ev("$exception", id, n, props)
        };
    let reports = vec![
        x(
            "i1",
            1,
            Some("fp-a"),
            "P",
            Some("0.2.0"),
            json!({"$exception_suppressed": 4}),
        ),
        x("i2", 2, Some("fp-a"), "P", Some("0.10.0"), json!({})),
        x(
            "i1",
            3,
            Some("fp-a"),
            "P",
            Some("0.2.0"),
            json!({"$exception_suppressed": 2, "newest": true}),
        ),
        x("i3", 4, Some("fp-b"), "P", None, json!({})),
        x("i3", 5, None, "Q", Some("1.0.0-Beta"), json!({})),
        x("i2", 6, Some("fp-c"), "Q", Some("1.0.0-alpha"), json!({})),
        x("i2", 7, Some("fp-c"), "Q", Some("1.0.0-Beta"), json!({})),
        // Not an error report, though it carries a fingerprint.
        ev(
            "query",
            "i1",
            8,
            json!({"product": "P", "$exception_fingerprint": "fp-a"}),
        ),
    ];
    let mut sent = Vec::new();
    for (t, item) in reports.into_iter().enumerate() {
        let e = events(vec![item]);
        insert(&store, &e, &at(t as u32 + 1));
        sent.extend(e);
    }
    let example = |n: u32| properties(&sent[n as usize - 1]);
    let group = |fp: &str,
                 count,
                 installs,
                 first: u32,
                 last: u32,
                 versions: &[&str],
                 suppressed,
                 newest| ErrorGroup {
        fingerprint: fp.into(),
        count,
        installs,
        first_seen: at(first),
        last_seen: at(last),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        suppressed,
        example: example(newest),
    };
    let fp_a = group("fp-a", 3, 2, 1, 3, &["0.10.0", "0.2.0"], 6, 3);
    // Byte order: "B" (0x42) sorts before "a" (0x61).
    let fp_c = group("fp-c", 2, 1, 6, 7, &["1.0.0-Beta", "1.0.0-alpha"], 0, 7);
    let unknown = group("unknown", 1, 1, 5, 5, &["1.0.0-Beta"], 0, 5);
    let fp_b = group("fp-b", 1, 1, 4, 4, &["unknown"], 0, 4);
    let cases = [
        // Most reports first; equal counts, the most recently seen first.
        (
            None,
            vec![fp_a.clone(), fp_c.clone(), unknown.clone(), fp_b.clone()],
        ),
        (Some("P"), vec![fp_a, fp_b]),
        (Some("Q"), vec![fp_c, unknown]),
        (Some("R"), vec![]),
    ];
    for (product, want) in cases {
        let got = must(store.error_groups(product), "error_groups");
        assert_eq!(got, want, "product {product:?}");
        answers.add(format!("product {product:?}"), &got);
    }
    answers
}

/// A sender may put a number (or an object) where the fingerprint string goes:
/// the groups must still be listed, one per fingerprint value.
fn error_groups_with_a_non_string_fingerprint(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let items = vec![
        ev(
            "$exception",
            "i1",
            1,
            json!({"$exception_fingerprint": 123}),
        ),
        ev(
            "$exception",
            "i1",
            2,
            json!({"$exception_fingerprint": "123"}),
        ),
        ev(
            "$exception",
            "i2",
            3,
            json!({"$exception_fingerprint": 123, "$exception_suppressed": "9"}),
        ),
    ];
    insert(&store, &events(items), &at(1));
    let groups = must(
        store.error_groups(None),
        "error_groups with odd fingerprints",
    );
    assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), 3);
    assert!(
        groups.iter().all(|g| g.suppressed == 0),
        "a string is no count: {groups:?}"
    );
    let fingerprints: BTreeSet<&str> = groups.iter().map(|g| g.fingerprint.as_str()).collect();
    assert_eq!(
        fingerprints,
        BTreeSet::from(["123"]),
        "the number reads as its text"
    );
    answers.add("fingerprints", &fingerprints);
    answers
}

fn delete_instance_removes_everything_of_it(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let items = vec![
        ev("start", "i1", 1, json!({"product": "P"})),
        ev("query", "i1", 2, json!({"product": "P"})),
        ev("usage_report", "i1", 3, json!({"product": "P"})),
        ev(
            "$exception",
            "i1",
            4,
            json!({"product": "P", "$exception_fingerprint": "fp"}),
        ),
        ev(
            "$exception",
            "i1",
            5,
            json!({"product": "P", "$exception_fingerprint": "fp"}),
        ),
        ev("start", "i2", 6, json!({"product": "P"})),
        ev("usage_report", "i2", 7, json!({"product": "P"})),
        ev(
            "$exception",
            "i2",
            8,
            json!({"product": "P", "$exception_fingerprint": "fp"}),
        ),
        // Ids that a LIKE or a prefix match would catch.
        ev("start", "i10", 9, json!({})),
        ev("start", "I1", 10, json!({})),
    ];
    insert(&store, &events(items), &at(1));
    let deleted = must(store.delete_instance("i1"), "delete_instance");
    assert_eq!(
        deleted,
        Deleted {
            events: 5,
            usage_reports: 1,
            error_reports: 2
        }
    );
    answers.add("deleted", deleted);

    assert!(must(
        store.events(&EventFilter::default().distinct_id("i1")),
        "events"
    )
    .is_empty());
    assert_eq!(
        uuids(&all(&store)),
        vec![uuid(6), uuid(7), uuid(8), uuid(9), uuid(10)]
    );
    for n in 1..=5 {
        assert!(
            !must(store.contains(&uuid(n)), "contains"),
            "{} is gone",
            uuid(n)
        );
    }
    let summary = must(store.summary(), "summary");
    assert_eq!((summary.events, summary.instances), (5, 3));
    assert_eq!(summary.by_event["start"].events, 3);
    assert!(!summary.by_event.contains_key("query"));
    assert_eq!(
        uuids(&must(store.latest_usage_reports(None), "usage")),
        vec![uuid(7)]
    );
    let groups = must(store.error_groups(None), "error_groups");
    assert_eq!(groups.len(), 1);
    assert_eq!((groups[0].count, groups[0].installs), (1, 1));
    assert_eq!(groups[0].first_seen, at(1));
    answers.add("summary", &summary);
    answers.add("groups", &groups);

    assert_eq!(
        must(store.delete_instance("i1"), "again"),
        Deleted::default()
    );
    assert_eq!(
        must(store.delete_instance("nobody"), "unknown"),
        Deleted::default()
    );
    // Its uuids are free again: an old retry would be stored anew.
    assert_eq!(
        insert(
            &store,
            &events(vec![ev("start", "i1", 1, json!({}))]),
            &at(2)
        ),
        inserted(1, 0)
    );
    answers
}

fn retention_deletes_by_received_at(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let with_time = |n: u32, timestamp: &str| json!({"event": "e", "distinct_id": "i1", "uuid": uuid(n), "timestamp": timestamp});
    // The sender's timestamp plays no part: only when the collector received it.
    insert(
        &store,
        &events(vec![
            with_time(1, "2030-01-01T00:00:00Z"),
            with_time(2, "2030-01-01T00:00:00Z"),
        ]),
        "2020-01-01T00:00:00.000Z",
    );
    insert(
        &store,
        &events(vec![with_time(3, "2030-01-01T00:00:00Z")]),
        "2020-06-30T23:59:59.999Z",
    );
    insert(
        &store,
        &events(vec![with_time(4, "2000-01-01T00:00:00Z")]),
        "2021-01-01T00:00:00.000Z",
    );
    let now = ingest::now_rfc3339();
    insert(
        &store,
        &events(vec![
            with_time(5, "2000-01-01T00:00:00Z"),
            with_time(6, "2000-01-01T00:00:00Z"),
        ]),
        &now,
    );
    assert_eq!(
        must(
            store.delete_received_before("2021-01-01T00:00:00.000Z"),
            "retention"
        ),
        3,
        "strictly before the cutoff"
    );
    assert_eq!(uuids(&all(&store)), vec![uuid(4), uuid(5), uuid(6)]);
    assert_eq!(
        must(
            store.delete_received_before("2021-01-01T00:00:00.000Z"),
            "again"
        ),
        0
    );
    assert_eq!(
        must(
            store.delete_received_before("2021-01-01T00:00:00.001Z"),
            "edge"
        ),
        1
    );
    answers.add("left", uuids(&all(&store)));
    assert_eq!(
        must(
            store.delete_received_before("2999-01-01T00:00:00.000Z"),
            "all"
        ),
        2
    );
    assert_eq!(must(store.summary(), "summary"), Summary::default());
    answers
}

fn schema_version_and_reopen_keep_data(db: &Db) -> Answers {
    let mut answers = Answers::default();
    let newest = newest_migration(db.kind);
    let store = db.open();
    assert_eq!(must(store.schema_version(), "schema_version"), newest);
    insert(
        &store,
        &events(vec![
            ev("e", "i1", 1, json!({"k": "v"})),
            ev("e", "i2", 2, json!({})),
        ]),
        &at(1),
    );
    let before = all(&store);
    let summary = must(store.summary(), "summary");
    drop(store);

    for _ in 0..2 {
        let store = db.open();
        assert_eq!(must(store.schema_version(), "schema_version"), newest);
        assert_eq!(all(&store), before);
        assert_eq!(must(store.summary(), "summary"), summary);
        // Still idempotent after reopening: the uniqueness survived.
        assert_eq!(
            insert(&store, &events(vec![ev("e", "i1", 1, json!({}))]), &at(2)),
            inserted(0, 1)
        );
    }
    // Each migration applied once, none skipped.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM schema_migrations"),
        i64::from(newest)
    );
    assert_eq!(
        db.scalar("SELECT COUNT(DISTINCT version) FROM schema_migrations"),
        i64::from(newest)
    );
    assert_eq!(db.scalar("SELECT MIN(version) FROM schema_migrations"), 1);
    answers.add("events", &before);
    answers
}

fn newer_schema_is_refused(db: &Db) -> Answers {
    let mut answers = Answers::default();
    let newest = newest_migration(db.kind);
    drop(db.open());
    db.execute(&format!(
        "INSERT INTO schema_migrations (version, name, applied_at) \
         VALUES ({}, 'from a newer collector', '2099-01-01T00:00:00.000Z')",
        newest + 1
    ));
    match Store::open(&db.target) {
        Ok(_) => panic!(
            "{:?}: a database of schema {} was opened by a collector knowing {newest}",
            db.kind,
            newest + 1
        ),
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("newer"), "{message}");
            assert!(!e.is_transient(), "retrying will not help: {message}");
        }
    }
    answers.add("refused", true);
    answers
}

/// Strings that break SQL built by concatenation, and LIKE patterns: in every
/// field, stored and matched verbatim.
fn sql_metacharacters_are_data(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let nasty = [
        "'; DROP TABLE events; --",
        "Robert'); DROP TABLE events;--",
        "\"double\" 'single' `back`",
        "back\\slash\\",
        "\\'",
        "100%",
        "%",
        "_",
        "under_score",
        "$1",
        "?1",
        ":name @p",
        "*/ /* -- ",
        "E'\\x41'",
        "[a-z]*",
    ];
    let decoys = ["a", "100x", "underXscore", "x", "Robert"];
    let mut items = Vec::new();
    let mut n = 0;
    for s in nasty.iter().chain(&decoys) {
        let props = json!({
            (s.to_string()): s, "product": s, "product_version": s, "os": s, "$exception_fingerprint": s,
        });
        for name in [*s, "usage_report", "$exception"] {
            n += 1;
            items.push(ev(name, s, n, props.clone()));
        }
    }
    let sent = events(items);
    assert_eq!(insert(&store, &sent, &at(1)), inserted(sent.len(), 0));

    for s in nasty.iter().chain(&decoys) {
        let mine: Vec<&Event> = sent.iter().filter(|e| e.distinct_id == *s).collect();
        let got = must(
            store.events(&EventFilter::default().distinct_id(*s)),
            "events by id",
        );
        assert_eq!(got.len(), 3, "events of {s:?}: {got:?}");
        for (e, g) in mine.iter().zip(&got) {
            assert_eq!(
                (&g.uuid, &g.event, &g.distinct_id),
                (&e.uuid, &e.event, &e.distinct_id)
            );
            assert_eq!(g.properties, properties(e));
        }
        let named = must(
            store.events(&EventFilter::default().event(*s)),
            "events by name",
        );
        assert_eq!(
            uuids(&named),
            vec![mine[0].uuid.clone()],
            "events named {s:?}"
        );
        let usage = must(store.latest_usage_reports(Some(*s)), "usage by product");
        assert_eq!(
            uuids(&usage),
            vec![mine[1].uuid.clone()],
            "usage of product {s:?}"
        );
        let groups = must(store.error_groups(Some(*s)), "errors by product");
        assert_eq!(groups.len(), 1, "error groups of product {s:?}: {groups:?}");
        assert_eq!(groups[0].fingerprint, *s);
        assert_eq!(groups[0].versions, vec![s.to_string()]);
    }
    let summary = must(store.summary(), "summary");
    let count = nasty.len() + decoys.len();
    assert_eq!(summary.events as usize, count * 3);
    assert_eq!(summary.instances as usize, count);
    for s in nasty.iter().chain(&decoys) {
        assert_eq!(summary.by_product.get(*s), Some(&3), "by_product[{s:?}]");
        assert_eq!(summary.by_product_version.get(*s), Some(&3));
        assert_eq!(summary.by_os.get(*s), Some(&3));
        assert_eq!(summary.by_event.get(*s).map(|c| c.events), Some(1));
    }
    answers.add("summary", &summary);
    answers.add("errors", must(store.error_groups(None), "errors"));

    let three = Deleted {
        events: 3,
        usage_reports: 1,
        error_reports: 1,
    };
    for s in ["%", "_", "'; DROP TABLE events; --", "\\'"] {
        assert_eq!(
            must(store.delete_instance(s), "delete_instance"),
            three,
            "deleting {s:?}"
        );
    }
    let left = must(store.summary(), "summary");
    assert_eq!(
        left.events as usize,
        (count - 4) * 3,
        "only those four installs went"
    );
    for s in decoys {
        assert_eq!(
            must(
                store.events(&EventFilter::default().distinct_id(s)),
                "decoy"
            )
            .len(),
            3
        );
    }
    answers.add("after deletes", &left);
    answers.add("events", all(&store));
    answers
}

/// Two `Store`s on one database (two collector processes behind a load
/// balancer), threads inserting overlapping uuids at once: each uuid stored
/// exactly once, and every other copy counted as a duplicate.
fn two_stores_insert_overlapping_uuids_concurrently(db: &Db) -> Answers {
    const THREADS: usize = 4;
    const CALLS: usize = 15;
    const PER_BATCH: usize = 10;
    const POOL: usize = 200;
    let mut answers = Answers::default();
    let stores = [db.open(), db.open()];
    // The event for pool index k is always the same, whoever stores it.
    let item = |k: usize| {
        ev(
            &format!("e{}", k % 5),
            &format!("i{}", k % 7),
            k as u32 + 1,
            json!({"k": k, "product": "p"}),
        )
    };
    let plan = |t: usize, c: usize, b: usize| -> Vec<usize> {
        let mut ks: Vec<usize> = (0..PER_BATCH)
            .map(|i| (t * 13 + c * 29 + b * 17 + i * 3) % POOL)
            .collect();
        if t % 2 == 1 {
            ks.reverse(); // opposite orders: the classic deadlock shape
        }
        ks
    };
    let mut distinct = BTreeSet::new();
    let mut attempted = 0;
    for t in 0..THREADS {
        for c in 0..CALLS {
            for b in 0..2 {
                let ks = plan(t, c, b);
                attempted += ks.len();
                distinct.extend(ks);
            }
        }
    }
    let retries = AtomicUsize::new(0);
    let barrier = Barrier::new(THREADS);
    let totals: Vec<Inserted> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &stores[t % 2];
                let (barrier, retries, plan, item) = (&barrier, &retries, &plan, &item);
                scope.spawn(move || {
                    barrier.wait();
                    let mut total = Inserted::default();
                    for c in 0..CALLS {
                        let batches: Vec<Batch> = (0..2)
                            .map(|b| Batch {
                                events: events(plan(t, c, b).into_iter().map(item).collect()),
                                received_at: at((t * CALLS + c) as u32),
                            })
                            .collect();
                        let refs: Vec<&Batch> = batches.iter().collect();
                        let mut tries = 0;
                        let results = loop {
                            match store.insert_all(&refs) {
                                Ok(results) => break results,
                                Err(e) if e.is_transient() && tries < 100 => {
                                    tries += 1;
                                    retries.fetch_add(1, Ordering::Relaxed);
                                    std::thread::sleep(Duration::from_millis(10));
                                }
                                Err(e) => panic!("thread {t} call {c}: {e}"),
                            }
                        };
                        assert_eq!(results.len(), 2);
                        for r in results {
                            assert_eq!(r.stored + r.duplicates, PER_BATCH, "{r:?}");
                            total.stored += r.stored;
                            total.duplicates += r.duplicates;
                        }
                    }
                    total
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stored: usize = totals.iter().map(|t| t.stored).sum();
    let duplicates: usize = totals.iter().map(|t| t.duplicates).sum();
    eprintln!(
        "{:?}: {attempted} events, {} distinct, {} transient failures retried",
        db.kind,
        distinct.len(),
        retries.load(Ordering::Relaxed)
    );
    assert_eq!(stored, distinct.len(), "each uuid stored exactly once");
    assert_eq!(stored + duplicates, attempted);
    let rows = all(&stores[0]);
    let row_uuids: BTreeSet<String> = rows.iter().map(|r| r.uuid.clone()).collect();
    assert_eq!(rows.len(), distinct.len());
    let want: BTreeSet<String> = distinct.iter().map(|&k| uuid(k as u32 + 1)).collect();
    assert_eq!(row_uuids, want);
    let summary = must(stores[1].summary(), "summary");
    assert_eq!(summary.events as usize, distinct.len());
    answers.add("summary", &summary);
    answers.add("totals", (stored, duplicates));
    answers
}

// ---------------------------------------------------------------------------
// The rollups and the stats views, against figures computed here by brute
// force from the raw events.

/// A deterministic mix over nine days (two ISO weeks), two products and
/// events without one, three versions, several environments, timestamps with
/// offsets that cross midnight UTC, events without a timestamp, merged events
/// (batch_size), usage and error reports, properties of every JSON type.
/// Returned as the batches to insert, each with its receive time.
fn rollup_mix(seed: u64, ids: &[&str]) -> Vec<(Vec<Value>, String)> {
    let mut state = seed;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut batches = Vec::new();
    let mut n = seed as u32 * 10_000;
    for b in 0..12u32 {
        let mut items = Vec::new();
        for _ in 0..25 {
            n += 1;
            let id = ids[next(ids.len() as u64) as usize];
            let (day, hour, minute) = (next(9) + 1, next(24), next(60));
            let offset = ["Z", "+02:00", "-05:00", "+00:00"][next(4) as usize];
            let timestamp = format!(
                "2024-05-{day:02}T{hour:02}:{minute:02}:{:02}{offset}",
                next(60)
            );
            let mut props = Map::new();
            match next(5) {
                0 => {}
                1 => {
                    props.insert("product".into(), json!("chroma"));
                }
                _ => {
                    props.insert("product".into(), json!("qdrant"));
                }
            }
            if next(4) > 0 {
                props.insert(
                    "product_version".into(),
                    json!(["1.0.0", "1.1.0", "2.0.0"][next(3) as usize]),
                );
            }
            let os = ["Linux", "Darwin", "Windows"][next(3) as usize];
            props.insert(if next(3) == 0 { "$os" } else { "os" }.into(), json!(os));
            if next(3) > 0 {
                props.insert("arch".into(), json!(["x86_64", "arm64"][next(2) as usize]));
            }
            match next(4) {
                0 => {}
                1 => {
                    props.insert("runtime".into(), json!("python"));
                }
                _ => {
                    props.insert("runtime".into(), json!("python"));
                    props.insert(
                        "runtime_version".into(),
                        json!(["3.11", "3.12"][next(2) as usize]),
                    );
                }
            }
            for flag in ["in_container", "in_ci", "in_jupyter"] {
                match next(4) {
                    0 => {}
                    1 => {
                        props.insert(flag.into(), json!("yes"));
                    }
                    v => {
                        props.insert(flag.into(), json!(v == 2));
                    }
                }
            }
            if next(3) == 0 {
                props.insert("batch_size".into(), json!(next(5) + 1));
            }
            let event = ["query", "query", "add", "usage_report", "$exception"][next(5) as usize];
            match event {
                "usage_report" => {
                    props.insert(
                        "operations".into(),
                        json!({"query": {"count": next(100), "fail_count": next(3),
                                         "avg_duration_micros": next(1000)}}),
                    );
                }
                "$exception" => {
                    props.insert(
                        "$exception_fingerprint".into(),
                        json!(format!("fp-{}", next(3))),
                    );
                }
                _ => {
                    props.insert("k".into(), json!(next(50)));
                    props.insert(
                        "mode".into(),
                        json!(["fast", "exact", "x".repeat(65).as_str()][next(3) as usize]),
                    );
                    props.insert("flag".into(), json!(next(2) == 0));
                    props.insert("nothing".into(), Value::Null);
                    props.insert("nested".into(), json!({"a": 1}));
                    props.insert("$lib".into(), json!("posthog"));
                }
            }
            let mut item =
                json!({"event": event, "distinct_id": id, "uuid": uuid(n), "properties": props});
            if next(8) > 0 {
                item["timestamp"] = json!(timestamp);
            }
            items.push(item);
        }
        // A retry of an earlier batch's first events: skipped, not counted.
        if b > 0 {
            let earlier: &Vec<Value> = &batches
                .last()
                .map(|(items, _): &(Vec<Value>, String)| items.clone())
                .unwrap();
            items.extend(earlier.iter().take(3).cloned());
        }
        // Receive times on three days, so retention can cut between them.
        let received = format!("2024-05-{:02}T12:00:{:02}.000Z", 10 + b / 4, b);
        batches.push((items, received));
    }
    batches
}

/// The stored events of `batches` (first occurrence of each uuid), with
/// their receive times, as the reference sees them.
fn stored_of(batches: &[(Vec<Value>, String)]) -> Vec<(Event, String)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (items, received) in batches {
        for e in events(items.clone()) {
            if seen.insert(e.uuid.clone()) {
                out.push((e, received.clone()));
            }
        }
    }
    out
}

fn insert_mix(store: &Store, batches: &[(Vec<Value>, String)]) -> (usize, usize) {
    let (mut stored, mut duplicates) = (0, 0);
    for (items, received) in batches {
        let r = insert(store, &events(items.clone()), received);
        stored += r.stored;
        duplicates += r.duplicates;
    }
    (stored, duplicates)
}

/// One event as the brute-force reference reads it.
struct Raw {
    event: String,
    id: String,
    product: String,
    version: String,
    os: String,
    env: [String; 5],
    day: String,
    time: time::OffsetDateTime,
    batch: i64,
    props: Map<String, Value>,
}

fn raw(events: &[(Event, String)]) -> Vec<Raw> {
    use time::format_description::well_known::Rfc3339;
    events
        .iter()
        .map(|(e, received)| {
            let time =
                time::OffsetDateTime::parse(e.timestamp.as_deref().unwrap_or(received), &Rfc3339)
                    .unwrap()
                    .to_offset(time::UtcOffset::UTC);
            let s = |k: &str| e.properties.get(k).and_then(Value::as_str);
            let flag = |k: &str| match e.properties.get(k) {
                Some(Value::Bool(true)) => "yes",
                Some(Value::Bool(false)) => "no",
                _ => "unknown",
            };
            let runtime = match (s("runtime"), s("runtime_version")) {
                (Some(r), Some(v)) => format!("{r} {v}"),
                (Some(x), None) | (None, Some(x)) => x.to_string(),
                _ => "unknown".into(),
            };
            Raw {
                event: e.event.clone(),
                id: e.distinct_id.clone(),
                product: s("product").unwrap_or("unknown").into(),
                version: s("product_version").unwrap_or("unknown").into(),
                os: s("os").or(s("$os")).unwrap_or("unknown").into(),
                env: [
                    s("arch").unwrap_or("unknown").into(),
                    runtime,
                    flag("in_container").into(),
                    flag("in_ci").into(),
                    flag("in_jupyter").into(),
                ],
                day: format!("{}", time.date()),
                time,
                batch: e.batch_size(),
                props: e.properties.clone(),
            }
        })
        .collect()
}

/// The newest of `events` (the last stored among equal times).
fn newest<'a>(events: impl Iterator<Item = &'a Raw>) -> Option<&'a Raw> {
    events.fold(None, |best: Option<&Raw>, e| match best {
        Some(b) if b.time > e.time => Some(b),
        _ => Some(e),
    })
}

fn counted<K: Ord>(items: impl Iterator<Item = K>) -> BTreeMap<K, u64> {
    let mut map = BTreeMap::new();
    for k in items {
        *map.entry(k).or_insert(0) += 1;
    }
    map
}

/// Every view of `range`, by brute force over the stored events.
fn reference_views(events: &[(Event, String)], range: &StatsRange) -> Views {
    use telemetry_collector::stats::*;
    let all = raw(events);
    let of_product = |e: &&Raw| range.product.as_ref().is_none_or(|p| *p == e.product);
    let in_range: Vec<&Raw> = all
        .iter()
        .filter(of_product)
        .filter(|e| range.contains(&e.day))
        .collect();

    let per_day = counted(
        in_range
            .iter()
            .map(|e| (e.day.clone(), e.id.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|(d, _)| d),
    );
    let mut first_day: BTreeMap<&str, &str> = BTreeMap::new();
    for e in all.iter().filter(of_product) {
        let d = first_day.entry(&e.id).or_insert(&e.day);
        if e.day.as_str() < *d {
            *d = &e.day;
        }
    }
    let new = counted(
        first_day
            .values()
            .filter(|d| range.contains(d))
            .map(|d| d.to_string()),
    );
    let weeks = counted(
        in_range
            .iter()
            .map(|e| (week_of(parse_day(&e.day).unwrap()), e.id.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|(w, _)| w),
    );
    let ids = IdStats {
        active_in_range: in_range
            .iter()
            .map(|e| &e.id)
            .collect::<BTreeSet<_>>()
            .len() as u64,
        daily: per_day
            .into_iter()
            .map(|(day, active)| DayIds {
                new: new.get(&day).copied().unwrap_or(0),
                day,
                active,
            })
            .collect(),
        weekly: weeks
            .into_iter()
            .map(|(week, active)| WeekIds { week, active })
            .collect(),
    };

    let installs: BTreeSet<(&str, &str)> = in_range
        .iter()
        .map(|e| (e.product.as_str(), e.id.as_str()))
        .collect();
    let mut now = counted(installs.iter().map(|&(p, id)| {
        let n = newest(
            in_range
                .iter()
                .copied()
                .filter(|e| e.product == p && e.id == id),
        )
        .unwrap();
        (p.to_string(), n.version.clone())
    }))
    .into_iter()
    .map(|((product, version), installs)| VersionCount {
        product,
        version,
        installs,
    })
    .collect::<Vec<_>>();
    now.sort_by_key(|v| std::cmp::Reverse(v.installs));
    let day_installs: BTreeSet<(&str, &str, &str)> = in_range
        .iter()
        .map(|e| (e.day.as_str(), e.product.as_str(), e.id.as_str()))
        .collect();
    let daily = counted(day_installs.iter().map(|&(d, p, id)| {
        let n = newest(
            in_range
                .iter()
                .copied()
                .filter(|e| e.day == d && e.product == p && e.id == id),
        )
        .unwrap();
        (d.to_string(), p.to_string(), n.version.clone())
    }))
    .into_iter()
    .map(|((day, product, version), installs)| DayVersion {
        day,
        product,
        version,
        installs,
    })
    .collect();
    let versions = VersionStats { now, daily };

    let envs: Vec<[String; 6]> = installs
        .iter()
        .map(|&(p, id)| {
            let n = newest(all.iter().filter(|e| e.product == p && e.id == id)).unwrap();
            let [a, r, c, ci, j] = n.env.clone();
            [n.os.clone(), a, r, c, ci, j]
        })
        .collect();
    let shares = |i: usize| {
        let mut v: Vec<Share> = counted(envs.iter().map(|e| e[i].clone()))
            .into_iter()
            .map(|(value, installs)| Share { value, installs })
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.installs));
        v
    };
    let environment = EnvironmentStats {
        installs: installs.len() as u64,
        os: shares(0),
        arch: shares(1),
        runtime: shares(2),
        container: shares(3),
        ci: shares(4),
        jupyter: shares(5),
    };

    let mut by_day_event: BTreeMap<(String, String), (u64, i64)> = BTreeMap::new();
    for e in &in_range {
        let c = by_day_event
            .entry((e.day.clone(), e.event.clone()))
            .or_default();
        c.0 += 1;
        c.1 += e.batch;
    }
    let mut totals: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for ((_, event), (n, o)) in &by_day_event {
        let t = totals.entry(event.clone()).or_default();
        t.0 += n;
        t.1 += o;
    }
    let mut totals: Vec<EventTotal> = totals
        .into_iter()
        .map(|(event, (events, occurrences))| EventTotal {
            event,
            events,
            occurrences,
        })
        .collect();
    totals.sort_by_key(|t| std::cmp::Reverse(t.events));
    let event_stats = EventStats {
        totals,
        daily: by_day_event
            .into_iter()
            .map(|((day, event), (events, occurrences))| DayEvent {
                day,
                event,
                events,
                occurrences,
            })
            .collect(),
    };

    let property = |event: &str, property: &str| {
        let of_event: Vec<&&Raw> = in_range.iter().filter(|e| e.event == event).collect();
        let properties: BTreeSet<String> = of_event
            .iter()
            .flat_map(|e| e.props.iter())
            .filter(|(k, v)| {
                !k.starts_with('$')
                    && ![
                        "product",
                        "product_version",
                        "os",
                        "arch",
                        "runtime",
                        "runtime_version",
                        "in_container",
                        "in_ci",
                        "in_jupyter",
                        "batch_size",
                    ]
                    .contains(&k.as_str())
                    && !v.is_null()
                    && !v.is_object()
                    && !v.is_array()
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut values: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        for e in &of_event {
            let value = match e.props.get(property) {
                Some(Value::String(s)) if s.chars().count() > 64 => "(long text)".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => {
                    *sums.entry(e.day.clone()).or_default() += n.as_f64().unwrap();
                    "(number)".to_string()
                }
                _ => continue,
            };
            let v = values.entry(value).or_default();
            v.0 += 1;
            v.1 += e.batch;
        }
        let mut values: Vec<ValueCount> = values
            .into_iter()
            .map(|(value, (events, occurrences))| ValueCount {
                value,
                events,
                occurrences,
            })
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.events));
        PropertyStats {
            event: event.into(),
            property: property.into(),
            properties: properties.into_iter().collect(),
            values,
            daily_sums: sums
                .into_iter()
                .map(|(day, sum)| DaySum { day, sum })
                .collect(),
        }
    };

    // The newest report by arrival per id, among those of the range.
    let mut latest: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, e) in all.iter().enumerate() {
        if e.event == "usage_report" && range.contains(&e.day) && of_product(&e) {
            latest.insert(&e.id, i);
        }
    }
    let mut picked: Vec<usize> = latest.into_values().collect();
    picked.sort();
    let reports: Vec<StoredEvent> = picked
        .into_iter()
        .map(|i| {
            let (e, received) = &events[i];
            StoredEvent {
                uuid: e.uuid.clone(),
                event: e.event.clone(),
                distinct_id: e.distinct_id.clone(),
                timestamp: e.timestamp.clone().unwrap_or_else(|| received.clone()),
                received_at: received.clone(),
                properties: properties(e),
            }
        })
        .collect();
    let crash_reports = in_range.iter().filter(|e| e.event == "$exception").count() as u64;

    Views {
        ids,
        versions,
        environment,
        events: event_stats,
        k: property("query", "k"),
        mode: property("query", "mode"),
        flag: property("add", "flag"),
        usage: UsageStats::from_reports(reports),
        crash_reports,
    }
}

#[derive(Debug, PartialEq, Serialize)]
struct Views {
    ids: IdStats,
    versions: VersionStats,
    environment: EnvironmentStats,
    events: EventStats,
    k: PropertyStats,
    mode: PropertyStats,
    flag: PropertyStats,
    usage: UsageStats,
    crash_reports: u64,
}

fn store_views(store: &Store, range: &StatsRange) -> Views {
    Views {
        ids: must(store.id_stats(range), "id_stats"),
        versions: must(store.version_stats(range), "version_stats"),
        environment: must(store.environment_stats(range), "environment_stats"),
        events: must(store.event_stats(range), "event_stats"),
        k: must(
            store.property_stats(range, "query", Some("k")),
            "property_stats",
        ),
        mode: must(
            store.property_stats(range, "query", Some("mode")),
            "property_stats",
        ),
        flag: must(
            store.property_stats(range, "add", Some("flag")),
            "property_stats",
        ),
        usage: must(store.usage_stats(range), "usage_stats"),
        crash_reports: must(store.crash_stats(range), "crash_stats").reports,
    }
}

/// The ranges every rollup scenario looks at: everything, one week, single
/// days at the edges, each product, a product with no events.
fn rollup_ranges() -> Vec<StatsRange> {
    let r = |from: &str, to: &str| StatsRange::between(from, to).unwrap();
    vec![
        r("2024-04-01", "2024-06-30"),
        r("2024-04-30", "2024-05-05"),
        r("2024-05-01", "2024-05-01"),
        r("2024-05-09", "2024-05-10"),
        r("2024-05-03", "2024-05-07").product("qdrant"),
        r("2024-04-01", "2024-06-30").product("chroma"),
        r("2024-04-01", "2024-06-30").product("unknown"),
        r("2024-04-01", "2024-06-30").product("nope"),
    ]
}

/// Checks every view of every range against the reference; returns them.
fn check_views(store: &Store, stored: &[(Event, String)], what: &str, answers: &mut Answers) {
    for range in rollup_ranges() {
        let got = store_views(store, &range);
        let want = reference_views(stored, &range);
        assert_eq!(got.ids, want.ids, "{what}: ids of {range:?}");
        assert_eq!(got.versions, want.versions, "{what}: versions of {range:?}");
        assert_eq!(
            got.environment, want.environment,
            "{what}: environment of {range:?}"
        );
        assert_eq!(got.events, want.events, "{what}: events of {range:?}");
        assert_eq!(
            (&got.k, &got.mode, &got.flag),
            (&want.k, &want.mode, &want.flag),
            "{what}: properties of {range:?}"
        );
        assert_eq!(got.usage, want.usage, "{what}: usage of {range:?}");
        assert_eq!(
            got.crash_reports, want.crash_reports,
            "{what}: crashes of {range:?}"
        );
        answers.add(format!("{what}: {range:?}"), &got);
        answers.add(
            format!("{what}: crashes {range:?}"),
            must(store.crash_stats(&range), "crash_stats"),
        );
    }
    // The summary from the rollups says what a count of the events says.
    let all = raw(stored);
    let summary = must(store.summary(), "summary");
    assert_eq!(summary.events as usize, stored.len(), "{what}: summary");
    assert_eq!(
        summary.batch_size_total,
        all.iter().map(|e| e.batch).sum::<i64>()
    );
    assert_eq!(summary.by_os, counted(all.iter().map(|e| e.os.clone())));
    assert_eq!(
        summary.instances as usize,
        all.iter().map(|e| &e.id).collect::<BTreeSet<_>>().len()
    );
    let products: BTreeSet<String> = all.iter().map(|e| e.product.clone()).collect();
    assert_eq!(
        must(store.products(), "products"),
        products.into_iter().collect::<Vec<_>>()
    );
    answers.add(format!("{what}: summary"), summary);
}

const MIX_IDS: &[&str] = &["i1", "i2", "i3", "i4", "i5", "i6"];

fn rollups_match_the_events(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let empty = store_views(&store, &rollup_ranges()[0]);
    assert_eq!(
        empty,
        reference_views(&[], &rollup_ranges()[0]),
        "empty store"
    );
    let batches = rollup_mix(1, MIX_IDS);
    let stored = stored_of(&batches);
    assert_eq!(
        insert_mix(&store, &batches),
        (stored.len(), 33),
        "retries skipped"
    );
    check_views(&store, &stored, "mix", &mut answers);
    // The same events again (a sender retrying everything): nothing changes.
    assert_eq!(insert_mix(&store, &batches).0, 0);
    check_views(&store, &stored, "retried", &mut answers);
    answers
}

/// Offsets crossing midnight UTC decide the day; batch_size the occurrences;
/// an older event arriving later does not replace the newer one's version.
fn rollup_days_are_utc_and_newest_wins(db: &Db) -> Answers {
    let store = db.open();
    let mut answers = Answers::default();
    let e = |n: u32, ts: &str, props: Value| json!({"event": "query", "distinct_id": "i1", "uuid": uuid(n), "timestamp": ts, "properties": props});
    insert(
        &store,
        &events(vec![
            // 2024-05-01 in UTC, though 2024-05-02 where it was sent.
            e(
                1,
                "2024-05-02T01:30:00+02:00",
                json!({"product": "P", "product_version": "2", "batch_size": 4, "os": "Linux"}),
            ),
            // 2024-05-02 in UTC, though 2024-05-01 where it was sent.
            e(
                2,
                "2024-05-01T22:30:00-05:00",
                json!({"product": "P", "product_version": "3", "os": "Darwin"}),
            ),
        ]),
        &at(1),
    );
    // Older than event 2, stored later: 2 stays the newest.
    insert(
        &store,
        &events(vec![e(
            3,
            "2024-05-02T00:10:00Z",
            json!({"product": "P", "product_version": "1", "os": "Windows"}),
        )]),
        &at(2),
    );
    let day = |d: &str| StatsRange::between(d, d).unwrap();
    let may1 = must(store.event_stats(&day("2024-05-01")), "events");
    assert_eq!((may1.totals[0].events, may1.totals[0].occurrences), (1, 4));
    let may2 = must(store.event_stats(&day("2024-05-02")), "events");
    assert_eq!((may2.totals[0].events, may2.totals[0].occurrences), (2, 2));
    let versions = must(
        store.version_stats(&StatsRange::between("2024-05-01", "2024-05-02").unwrap()),
        "versions",
    );
    assert_eq!(versions.now.len(), 1);
    assert_eq!(versions.now[0].version, "3");
    assert_eq!(
        versions
            .daily
            .iter()
            .map(|d| (d.day.as_str(), d.version.as_str()))
            .collect::<Vec<_>>(),
        [("2024-05-01", "2"), ("2024-05-02", "3")]
    );
    // In a range ending on the 1st, the newest event of the range is event 1.
    let past = must(store.version_stats(&day("2024-05-01")), "versions");
    assert_eq!(past.now[0].version, "2");
    let env = must(store.environment_stats(&day("2024-05-01")), "environment");
    assert_eq!(
        env.os[0].value, "Darwin",
        "the install's newest event overall"
    );
    let ids = must(store.id_stats(&day("2024-05-02")), "ids");
    assert_eq!(
        (ids.daily[0].active, ids.daily[0].new),
        (1, 0),
        "first seen the day before"
    );
    answers.add("days", (&may1, &may2, &versions, &past, &env, &ids));
    answers
}

fn delete_instance_removes_it_from_every_view(db: &Db) -> Answers {
    let mut answers = Answers::default();
    let store = db.open();
    let batches = rollup_mix(2, MIX_IDS);
    insert_mix(&store, &batches);
    let deleted = must(store.delete_instance("i2"), "delete_instance");
    assert!(deleted.events > 0);
    // What a store that never had i2 holds.
    let without: Vec<(Vec<Value>, String)> = batches
        .iter()
        .map(|(items, at)| {
            (
                items
                    .iter()
                    .filter(|e| e["distinct_id"] != "i2")
                    .cloned()
                    .collect(),
                at.clone(),
            )
        })
        .collect();
    let remaining = stored_of(&without);
    assert_eq!(
        deleted.events as usize,
        stored_of(&batches).len() - remaining.len()
    );
    check_views(&store, &remaining, "without i2", &mut answers);
    let other = Db::new(db.kind);
    let never = other.open();
    insert_mix(&never, &without);
    for range in rollup_ranges() {
        assert_eq!(
            store_views(&store, &range),
            store_views(&never, &range),
            "{range:?}"
        );
        assert_eq!(
            must(store.crash_stats(&range), "crashes"),
            must(never.crash_stats(&range), "crashes")
        );
    }
    assert_eq!(
        must(store.summary(), "summary"),
        must(never.summary(), "summary")
    );
    // Every event of the mix deleted: nothing left anywhere.
    for id in MIX_IDS {
        must(store.delete_instance(id), "delete_instance");
    }
    check_views(&store, &[], "all deleted", &mut answers);
    for table in [
        "daily_installs",
        "installs",
        "daily_events",
        "daily_properties",
    ] {
        assert_eq!(
            db.scalar(&format!("SELECT COUNT(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    answers
}

fn retention_keeps_the_views_of_what_remains(db: &Db) -> Answers {
    let mut answers = Answers::default();
    let store = db.open();
    let batches = rollup_mix(3, MIX_IDS);
    insert_mix(&store, &batches);
    let stored = stored_of(&batches);
    // Receive times are on the 10th, 11th and 12th: cut at the 11th, then
    // after everything.
    for (cutoff, what) in [
        ("2024-05-11T00:00:00.000Z", "first day cut"),
        ("2024-05-12T12:00:09.000Z", "second cut"),
    ] {
        let remaining: Vec<(Event, String)> = stored
            .iter()
            .filter(|(_, r)| r.as_str() >= cutoff)
            .cloned()
            .collect();
        let n = must(store.delete_received_before(cutoff), "retention");
        assert!(n > 0);
        check_views(&store, &remaining, what, &mut answers);
        let other = Db::new(db.kind);
        let fresh = other.open();
        for (e, received) in &remaining {
            insert(&fresh, std::slice::from_ref(e), received);
        }
        for range in rollup_ranges() {
            assert_eq!(
                store_views(&store, &range),
                store_views(&fresh, &range),
                "{what}: {range:?}"
            );
        }
        for table in [
            "daily_installs",
            "installs",
            "daily_events",
            "daily_properties",
        ] {
            assert_eq!(
                db.scalar(&format!("SELECT COUNT(*) FROM {table}")),
                other.scalar(&format!("SELECT COUNT(*) FROM {table}")),
                "{what}: rows of {table}"
            );
        }
    }
    assert_eq!(
        must(
            store.delete_received_before("2999-01-01T00:00:00.000Z"),
            "all"
        ),
        stored
            .iter()
            .filter(|(_, r)| r.as_str() >= "2024-05-12T12:00:09.000Z")
            .count() as u64
    );
    check_views(&store, &[], "all gone", &mut answers);
    answers
}

/// A database of schema 2 (written here with that schema's SQL, as a
/// collector before the rollups left it) opens with rollups equal to a
/// store that received the same events.
fn schema_2_database_gets_its_rollups(db: &Db) -> Answers {
    let mut answers = Answers::default();
    let batches = rollup_mix(4, MIX_IDS);
    let stored = stored_of(&batches);
    db.execute(match db.kind {
        Kind::Sqlite => SCHEMA_2_SQLITE,
        Kind::Postgres => SCHEMA_2_POSTGRES,
    });
    let mut sql = String::new();
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    // A few statements per call: psql takes them on its command line.
    for (n, (e, received)) in stored.iter().enumerate() {
        let text = |v: Option<&str>| v.map_or("NULL".to_string(), q);
        sql.push_str(&format!(
            "INSERT INTO events (uuid, event, distinct_id, timestamp, received_at, api_key_hash, properties, product, product_version, os, batch_size) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {});\n",
            q(&e.uuid),
            q(&e.event),
            q(&e.distinct_id),
            q(e.timestamp.as_deref().unwrap_or(received)),
            q(received),
            q(&e.api_key_hash),
            q(&properties(e).to_string()),
            text(e.product()),
            text(e.product_version()),
            text(e.os()),
            e.batch_size()
        ));
        if n % 20 == 19 || n + 1 == stored.len() {
            db.execute(&std::mem::take(&mut sql));
        }
    }
    assert_eq!(db.scalar("SELECT MAX(version) FROM schema_migrations"), 2);
    let store = db.open();
    assert_eq!(
        must(store.schema_version(), "schema_version"),
        newest_migration(db.kind)
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM events WHERE day IS NULL"),
        0,
        "days backfilled"
    );
    check_views(&store, &stored, "migrated", &mut answers);
    // And it goes on from there as any store does.
    let more = rollup_mix(5, MIX_IDS);
    insert_mix(&store, &more);
    let mut all = stored.clone();
    all.extend(stored_of(&more));
    check_views(&store, &all, "migrated, then more", &mut answers);
    answers
}

/// The schema of migrations 1 and 2, as those collectors wrote it.
const SCHEMA_2_SQLITE: &str = "
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
INSERT INTO schema_migrations VALUES (1, 'events table', '2024-01-01T00:00:00.000Z');
INSERT INTO schema_migrations VALUES (2, 'index for retention', '2024-01-01T00:00:00.000Z');
CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT    NOT NULL UNIQUE,
    event           TEXT    NOT NULL,
    distinct_id     TEXT    NOT NULL,
    timestamp       TEXT    NOT NULL,
    received_at     TEXT    NOT NULL,
    api_key_hash    TEXT    NOT NULL,
    properties      TEXT    NOT NULL,
    product         TEXT,
    product_version TEXT,
    os              TEXT,
    batch_size      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX events_event ON events(event);
CREATE INDEX events_distinct_id ON events(distinct_id);
CREATE INDEX events_received_at ON events(received_at);
";

const SCHEMA_2_POSTGRES: &str = "
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
INSERT INTO schema_migrations VALUES (1, 'events table', '2024-01-01T00:00:00.000Z');
INSERT INTO schema_migrations VALUES (2, 'index for retention', '2024-01-01T00:00:00.000Z');
CREATE TABLE events (
    id              BIGSERIAL PRIMARY KEY,
    uuid            UUID   NOT NULL UNIQUE,
    event           TEXT   NOT NULL,
    distinct_id     TEXT   NOT NULL,
    timestamp       TEXT   NOT NULL,
    received_at     TEXT   NOT NULL,
    api_key_hash    TEXT   NOT NULL,
    properties      JSONB  NOT NULL,
    product         TEXT,
    product_version TEXT,
    os              TEXT,
    batch_size      BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX events_event ON events(event);
CREATE INDEX events_distinct_id ON events(distinct_id);
CREATE INDEX events_received_at ON events(received_at);
";

// ---------------------------------------------------------------------------
// What only a PostgreSQL server has.

mod postgres_only {
    use super::*;

    #[test]
    fn every_accepted_url_form_reaches_the_database() {
        let pg = TestPostgres::start();
        let tcp = open(&pg.url());
        insert(&tcp, &events(vec![ev("e", "i1", 1, json!({}))]), &at(1));
        for url in [pg.socket_url(), pg.socket_url_query_form()] {
            let store = open(&url);
            assert_eq!(store.kind(), StoreKind::Postgres);
            assert_eq!(uuids(&all(&store)), vec![uuid(1)], "{url}");
        }
        let postgresql = pg.url().replacen("postgres://", "postgresql://", 1);
        assert_eq!(uuids(&all(&open(&postgresql))), vec![uuid(1)]);
    }

    #[test]
    fn a_store_survives_a_server_restart() {
        let pg = TestPostgres::start_own_cluster();
        let store = open(&pg.url());
        assert_eq!(
            insert(&store, &events(vec![ev("e", "i1", 1, json!({}))]), &at(1)),
            inserted(1, 0)
        );
        pg.stop();
        let down = store
            .insert(&events(vec![ev("e", "i1", 2, json!({}))]), &at(2))
            .expect_err("inserting while the server is down");
        assert!(
            down.is_transient(),
            "a stopped server is worth a retry (503): {down}"
        );
        pg.start_again();
        let batch = events(vec![
            ev("e", "i1", 2, json!({})),
            ev("e", "i1", 1, json!({})),
        ]);
        let result = eventually("insert after the restart", || store.insert(&batch, &at(3)));
        assert_eq!(result, inserted(1, 1));
        assert_eq!(uuids(&all(&store)), vec![uuid(1), uuid(2)]);
    }

    #[test]
    fn a_store_recovers_from_killed_connections() {
        let pg = TestPostgres::start();
        let store = open(&pg.url());
        insert(&store, &events(vec![ev("e", "i1", 1, json!({}))]), &at(1));
        assert_eq!(must(store.summary(), "summary").events, 1);
        let killed = pg.kill_connections();
        eprintln!("terminated {killed} sessions of the store");
        let result = eventually("insert after the kill", || {
            store.insert(&events(vec![ev("e", "i1", 2, json!({}))]), &at(2))
        });
        assert_eq!(result, inserted(1, 0));
        pg.kill_connections();
        let summary = eventually("summary after the kill", || store.summary());
        assert_eq!(summary.events, 2);
    }

    /// Retries `f` while it fails with a transient error, for up to 15 s.
    fn eventually<T>(what: &str, mut f: impl FnMut() -> Result<T, Error>) -> T {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match f() {
                Ok(v) => return v,
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("{what}: {e} (transient: {})", e.is_transient()),
            }
        }
    }

    fn open(url: &str) -> Store {
        Store::open(url).unwrap_or_else(|e| panic!("opening {url}: {e}"))
    }
}

// ---------------------------------------------------------------------------
// The harness of the suite.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// Where one scenario's store lives: a SQLite file in a temporary directory,
/// or a fresh database of the test PostgreSQL server. Opened as often as the
/// scenario likes.
struct Db {
    kind: Kind,
    target: String,
    pg: Option<TestPostgres>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn new(kind: Kind) -> Db {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let target = dir.path().join("events.db").to_str().unwrap().to_owned();
                Db {
                    kind,
                    target,
                    pg: None,
                    _dir: Some(dir),
                }
            }
            Kind::Postgres => {
                let pg = TestPostgres::start();
                Db {
                    kind,
                    target: pg.url(),
                    pg: Some(pg),
                    _dir: None,
                }
            }
        }
    }

    fn open(&self) -> Store {
        let store = Store::open(&self.target)
            .unwrap_or_else(|e| panic!("opening the {:?} store {}: {e}", self.kind, self.target));
        let kind = match self.kind {
            Kind::Sqlite => StoreKind::Sqlite,
            Kind::Postgres => StoreKind::Postgres,
        };
        assert_eq!(store.kind(), kind);
        store
    }

    /// One number from the database itself, past the Store (the back door).
    fn scalar(&self, sql: &str) -> i64 {
        match &self.pg {
            Some(pg) => {
                let out = pg.psql(sql);
                out.parse().unwrap_or_else(|_| panic!("{sql}: {out:?}"))
            }
            None => rusqlite::Connection::open(&self.target)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// Runs a statement on the database itself, past the Store.
    fn execute(&self, sql: &str) {
        match &self.pg {
            Some(pg) => {
                pg.psql(sql);
            }
            None => rusqlite::Connection::open(&self.target)
                .unwrap()
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }
}

/// The newest migration in the backend's source: the schema version a store
/// opened by this collector must report.
fn newest_migration(kind: Kind) -> u32 {
    let file = match kind {
        Kind::Sqlite => "sqlite.rs",
        Kind::Postgres => "postgres.rs",
    };
    let path = format!("{}/src/store/{file}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    source
        .split("version:")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or_else(|| {
            panic!("no `version: N` migration found in {path}: update newest_migration() in tests/store_suite.rs")
        })
}

/// A scenario's answers, step by step, for comparing the two databases.
#[derive(Default)]
struct Answers(Vec<(String, Value)>);

impl Answers {
    fn add(&mut self, step: impl Into<String>, value: impl Serialize) {
        self.0.push((
            step.into(),
            serde_json::to_value(value).expect("answers are JSON"),
        ));
    }
}

fn assert_same(scenario: &str, sqlite: &Answers, postgres: &Answers) {
    let steps = |a: &Answers| a.0.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>();
    assert_eq!(
        steps(sqlite),
        steps(postgres),
        "{scenario}: the same steps ran"
    );
    for ((step, lite), (_, pg)) in sqlite.0.iter().zip(&postgres.0) {
        if lite != pg {
            panic!(
                "{scenario}, step {step:?}: PostgreSQL answered otherwise than SQLite\n\
                 --- SQLite:\n{}\n--- PostgreSQL:\n{}",
                pretty(lite),
                pretty(pg)
            );
        }
    }
}

fn pretty(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap();
    if text.len() > 20_000 {
        let mut end = 20_000;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}\n... ({} bytes)", &text[..end], text.len())
    } else {
        text
    }
}

#[track_caller]
fn must<T>(result: Result<T, Error>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// A deterministic uuid for event number `n`.
fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// A receive time `sec` seconds after 2024-05-01T10:00:00Z (sec < 3600), in
/// the collector's own format.
fn at(sec: u32) -> String {
    assert!(sec < 3600);
    format!("2024-05-01T10:{:02}:{:02}.000Z", sec / 60, sec % 60)
}

/// One event as a sender writes it.
fn ev(name: &str, distinct_id: &str, n: u32, properties: Value) -> Value {
    json!({"event": name, "distinct_id": distinct_id, "uuid": uuid(n), "properties": properties})
}

/// Validated events, exactly as the server would store them.
fn events(items: Vec<Value>) -> Vec<Event> {
    let body = json!({"api_key": "phc_suite", "batch": items});
    parse(Endpoint::Batch, &serde_json::to_vec(&body).unwrap(), None)
        .unwrap_or_else(|r| panic!("test data refused at ingest: {}", r.message))
}

fn insert(store: &Store, events: &[Event], received_at: &str) -> Inserted {
    must(store.insert(events, received_at), "insert")
}

fn inserted(stored: usize, duplicates: usize) -> Inserted {
    Inserted { stored, duplicates }
}

fn pairs(results: &[Inserted]) -> Vec<(usize, usize)> {
    results.iter().map(|r| (r.stored, r.duplicates)).collect()
}

/// Every stored event (up to MAX_LIMIT), oldest first.
fn all(store: &Store) -> Vec<StoredEvent> {
    must(
        store.events(&EventFilter::default().limit(MAX_LIMIT)),
        "events",
    )
}

fn uuids(events: &[StoredEvent]) -> Vec<String> {
    events.iter().map(|e| e.uuid.clone()).collect()
}

fn properties(e: &Event) -> Value {
    Value::Object(e.properties.clone())
}
