//! A generated but realistic data set: what the dashboard's tests, its
//! benchmark and the demo look at (`telemetry-collector sample-data`).
//!
//! Three products with telemetry-core's context properties (Chroma-like
//! `chromadb` and `evidently` on Python, Qdrant-like `qdrant` on Rust), installs
//! that start on some day and stay for a while (many CI runs live one day),
//! upgrades as new versions come out, feature events with properties (an
//! embedding function, Chroma's summed `add_amount`, merged events with a
//! `batch_size`), one usage report per install and active day, and error
//! reports from a dozen crash sites with scrubbed frames. Nothing lies in the
//! future: on today's date only the hours gone by get events. The same seed
//! and a past end day always give the same events.
//!
//! ```
//! use telemetry_collector::sample_data::{generate, SampleSpec};
//! let spec = SampleSpec { events: 500, seed: 7, days: 30, end: "2024-05-31".into() };
//! let events = generate(&spec).unwrap();
//! assert_eq!(events.len(), 500);
//! assert_eq!(events, generate(&spec).unwrap()); // deterministic
//! assert!(events.iter().any(|e| e.event == "usage_report"));
//! assert!(events.iter().any(|e| e.event == "$exception"));
//! ```

use serde_json::{json, Map, Value};
use time::{Duration, OffsetDateTime, Time};

use crate::error::Error;
use crate::ingest::{format_rfc3339, short_hash, Event};
use crate::stats::parse_day;
use crate::store::{Batch, Store};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    /// Events in total (usage and error reports included).
    pub events: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// Days the events spread over, ending with `end`.
    pub days: u32,
    /// Last day, `YYYY-MM-DD` (UTC).
    pub end: String,
}

/// What [`fill`] stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Filled {
    /// Events generated and stored.
    pub events: usize,
    /// Distinct installs (distinct ids) among them.
    pub installs: usize,
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD`.
    pub to: String,
}

/// The project API key the generated events carry.
pub const SAMPLE_API_KEY: &str = "phc_sample";

/// Events generated per install on average: with 1 million events, 5,000 installs.
const EVENTS_PER_INSTALL: usize = 200;

struct Product {
    name: &'static str,
    runtime: &'static str,
    /// Versions, oldest first; each comes out at an even share of the period.
    versions: &'static [&'static str],
    /// Feature events and their weights.
    features: &'static [(&'static str, u32)],
    /// Share of installs, out of 100.
    weight: u32,
}

const PRODUCTS: &[Product] = &[
    Product {
        name: "chromadb",
        runtime: "python",
        versions: &["0.5.23", "0.6.3", "1.0.12", "1.1.0", "1.3.0"],
        features: &[
            ("client_start", 2),
            ("collection_add", 6),
            ("collection_query", 8),
            ("collection_delete", 1),
        ],
        weight: 50,
    },
    Product {
        name: "qdrant",
        runtime: "rust",
        versions: &["1.11.5", "1.12.6", "1.13.4", "1.14.1"],
        features: &[
            ("server_start", 1),
            ("points_upsert", 5),
            ("points_search", 9),
        ],
        weight: 30,
    },
    Product {
        name: "evidently",
        runtime: "python",
        versions: &["0.4.40", "0.5.1", "0.6.7"],
        features: &[("report_generated", 5), ("test_suite_run", 3)],
        weight: 20,
    },
];

const EMBEDDING_FUNCTIONS: &[(&str, u32)] = &[
    ("DefaultEmbeddingFunction", 50),
    ("OpenAIEmbeddingFunction", 25),
    ("SentenceTransformerEmbeddingFunction", 15),
    ("OllamaEmbeddingFunction", 6),
    ("CohereEmbeddingFunction", 4),
];

const PYTHON_VERSIONS: &[(&str, u32)] = &[
    ("3.9.21", 6),
    ("3.10.16", 18),
    ("3.11.11", 34),
    ("3.12.8", 32),
    ("3.13.1", 10),
];

/// A stack frame: function, file, line.
type Frame = (&'static str, &'static str, u32);

/// Crash sites: (type, scrubbed message, frames).
const CRASHES: &[(&str, &str, &[Frame])] = &[
    (
        "ValueError",
        "Expected embeddings to be a list of floats, got <str>",
        &[
            ("validate_embeddings", "types.py", 412),
            ("_add", "Collection.py", 231),
        ],
    ),
    (
        "KeyError",
        "'<redacted>'",
        &[
            ("get_collection", "segment.py", 88),
            ("query", "Collection.py", 310),
        ],
    ),
    (
        "sqlite3.OperationalError",
        "database is locked",
        &[("execute", "sqlite.py", 57), ("_write", "sqlite.py", 140)],
    ),
    (
        "TimeoutError",
        "timed out after 30 s connecting to <url>",
        &[("_request", "http.py", 203), ("query", "fastapi.py", 77)],
    ),
    (
        "MemoryError",
        "",
        &[("_allocate", "hnsw.py", 66), ("add", "local_hnsw.py", 151)],
    ),
    (
        "panic",
        "called `Option::unwrap()` on a `None` value",
        &[
            ("segment::index::hnsw::search", "hnsw.rs", 933),
            ("collection::search", "collection.rs", 412),
        ],
    ),
    (
        "panic",
        "index out of bounds: the len is 0 but the index is 0",
        &[
            ("quantization::encode", "encoded.rs", 120),
            ("optimizer::run", "optimizer.rs", 58),
        ],
    ),
    (
        "io::Error",
        "No space left on device (os error 28) at <path>",
        &[
            ("wal::append", "wal.rs", 311),
            ("update_handler::flush", "update_handler.rs", 207),
        ],
    ),
    (
        "RuntimeError",
        "Metric calculation failed for column <redacted>",
        &[("calculate", "metric.py", 94), ("run", "report.py", 188)],
    ),
    (
        "TypeError",
        "unsupported operand type(s) for +: 'NoneType' and 'int'",
        &[
            ("_aggregate", "preset.py", 45),
            ("run", "test_suite.py", 130),
        ],
    ),
    (
        "ConnectionResetError",
        "[Errno 104] Connection reset by peer",
        &[("send", "client.py", 61), ("flush", "posthog.py", 33)],
    ),
    (
        "UnicodeDecodeError",
        "'utf-8' codec can't decode byte 0xff in position 0",
        &[("load", "persist.py", 29), ("open", "Client.py", 102)],
    ),
];

/// One install's fixed traits.
struct Install {
    id: String,
    product: usize,
    first_day: i64,
    last_day: i64,
    os: (&'static str, &'static str),
    arch: &'static str,
    runtime_version: &'static str,
    in_container: bool,
    in_ci: bool,
    in_jupyter: bool,
    /// Index of the version it starts on.
    version_at_start: usize,
    /// Day it upgrades to the newest version out then, if it does.
    upgrade_day: Option<i64>,
    /// Crash sites this install tends to hit.
    crash_site: usize,
    /// Latency scale of its operations (a slow disk, a big collection).
    latency_scale: f64,
}

fn pick<T: Copy>(rng: &mut fastrand::Rng, weighted: &[(T, u32)]) -> T {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut n = rng.u32(0..total);
    for (item, w) in weighted {
        if n < *w {
            return *item;
        }
        n -= w;
    }
    weighted[weighted.len() - 1].0
}

/// The version of `product` that is newest on day `day` of `days`.
fn newest_on(product: &Product, day: i64, days: i64) -> usize {
    let n = product.versions.len() as i64;
    // Version k comes out at day (k - 1) * days / (n - 1) ... the oldest is out before day 0.
    (((day + 1) * (n - 1)) / days.max(1)).clamp(0, n - 1) as usize
}

fn make_install(rng: &mut fastrand::Rng, days: i64) -> Install {
    let weights: Vec<(usize, u32)> = PRODUCTS
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p.weight))
        .collect();
    let product = pick(rng, &weights);
    let p = &PRODUCTS[product];
    // Later days see more new installs (growth), and a third of installs are
    // one-day CI runs or notebooks.
    let first_day = ((rng.f64().sqrt()) * days as f64) as i64;
    let lifetime = if rng.u32(0..3) == 0 {
        1
    } else {
        1 + (rng.f64().powi(2) * days as f64) as i64
    };
    let last_day = (first_day + lifetime - 1).min(days - 1);
    let newest = newest_on(p, first_day, days);
    // Most start on the newest version; some pin an older one.
    let version_at_start = if rng.u32(0..4) == 0 {
        newest.saturating_sub(1 + rng.usize(0..2))
    } else {
        newest
    };
    let upgrade_day =
        (rng.u32(0..2) == 0 && last_day > first_day).then(|| rng.i64(first_day..=last_day));
    let os = pick(
        rng,
        &[
            (("linux", "6.8"), 68),
            (("darwin", "24.1"), 22),
            (("windows", "10.0.22631"), 10),
        ],
    );
    let arch = if os.0 == "darwin" {
        pick(rng, &[("aarch64", 85), ("x86_64", 15)])
    } else {
        pick(rng, &[("x86_64", 85), ("aarch64", 15)])
    };
    let in_ci = rng.u32(0..100) < 15;
    Install {
        id: uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes())
            .into_uuid()
            .to_string(),
        product,
        first_day,
        last_day,
        os,
        arch,
        runtime_version: if p.runtime == "python" {
            pick(rng, PYTHON_VERSIONS)
        } else {
            "1.86.0"
        },
        in_container: os.0 == "linux" && rng.u32(0..100) < 45,
        in_ci,
        in_jupyter: p.runtime == "python" && !in_ci && rng.u32(0..100) < 22,
        version_at_start,
        upgrade_day,
        crash_site: rng.usize(0..CRASHES.len()),
        latency_scale: 0.5 + rng.f64() * 2.0,
    }
}

impl Install {
    fn version(&self, day: i64, days: i64) -> &'static str {
        let p = &PRODUCTS[self.product];
        let index = match self.upgrade_day {
            Some(up) if day >= up => newest_on(p, up, days).max(self.version_at_start),
            _ => self.version_at_start,
        };
        p.versions[index]
    }

    fn context(&self, version: &str) -> Map<String, Value> {
        let p = &PRODUCTS[self.product];
        let mut m = Map::new();
        m.insert("product".into(), p.name.into());
        m.insert("product_version".into(), version.into());
        m.insert("core_version".into(), "0.1.0".into());
        m.insert("os".into(), self.os.0.into());
        m.insert("os_version".into(), self.os.1.into());
        m.insert("arch".into(), self.arch.into());
        m.insert("runtime".into(), p.runtime.into());
        m.insert("runtime_version".into(), self.runtime_version.into());
        m.insert("in_container".into(), self.in_container.into());
        m.insert("in_ci".into(), self.in_ci.into());
        if p.runtime == "python" {
            m.insert("in_jupyter".into(), self.in_jupyter.into());
            m.insert("python_implementation".into(), "cpython".into());
        }
        m
    }
}

/// The events of `spec`, in time order.
pub fn generate(spec: &SampleSpec) -> Result<Vec<Event>, Error> {
    let end = parse_day(&spec.end).map_err(|e| Error::Config(e.to_string()))?;
    let days = i64::from(spec.days.max(1));
    let start = end - Duration::days(days - 1);
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let installs: Vec<Install> = (0..(spec.events / EVENTS_PER_INSTALL).max(1))
        .map(|_| make_install(&mut rng, days))
        .collect();
    // Each install's active days; events go to (install, day) pairs at random,
    // so busy days and quiet days come out as they do in real data.
    let active: Vec<(usize, i64)> = installs
        .iter()
        .enumerate()
        .flat_map(|(i, inst)| {
            (inst.first_day..=inst.last_day)
                .filter(move |d| *d == inst.first_day || (d * 7 + i as i64) % 3 != 0)
                .map(move |d| (i, d))
        })
        .collect();
    let api_key_hash = short_hash(SAMPLE_API_KEY);
    let now = OffsetDateTime::now_utc();
    let mut events = Vec::with_capacity(spec.events);
    // One usage report per install and active day while the budget allows
    // (about 5% of events), a crash for about 0.6%, the rest features.
    let reports = (spec.events / 20).min(active.len());
    for n in 0..spec.events {
        let (i, day) = if n < reports {
            active[n * active.len() / reports.max(1)]
        } else {
            active[rng.usize(0..active.len())]
        };
        let inst = &installs[i];
        let date = start + Duration::days(day);
        let midnight = date.with_time(Time::MIDNIGHT).assume_utc();
        // Nothing in the future: on today, only the hours gone by.
        let day_ms = (now - midnight).whole_milliseconds().clamp(1, 86_400_000) as i64;
        let at = midnight + Duration::milliseconds(rng.i64(0..day_ms));
        let version = inst.version(day, days);
        let mut properties = inst.context(version);
        let p = &PRODUCTS[inst.product];
        let event = if n < reports {
            properties.extend(usage_report(&mut rng, inst));
            "usage_report".to_owned()
        } else if rng.u32(0..1000) < 6 {
            properties.extend(error_report(&mut rng, inst));
            "$exception".to_owned()
        } else {
            let name = pick(&mut rng, p.features);
            properties.extend(feature_properties(&mut rng, name));
            name.to_owned()
        };
        events.push(Event {
            uuid: event_uuid(&mut rng, at),
            event,
            distinct_id: inst.id.clone(),
            properties,
            timestamp: Some(format_rfc3339(at)),
            api_key_hash: api_key_hash.clone(),
            api_key: SAMPLE_API_KEY.to_owned(),
        });
    }
    events.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    Ok(events)
}

/// A UUIDv7 at the event's millisecond, as telemetry-core sends.
fn event_uuid(rng: &mut fastrand::Rng, at: OffsetDateTime) -> String {
    let ms = (at.unix_timestamp_nanos() / 1_000_000) as u64;
    let random = rng.u128(..).to_le_bytes();
    uuid::Builder::from_unix_timestamp_millis(ms, random[..10].try_into().expect("10 bytes"))
        .into_uuid()
        .to_string()
}

fn feature_properties(rng: &mut fastrand::Rng, name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    match name {
        "collection_add" => {
            let batch = if rng.u32(0..4) == 0 {
                rng.u32(2..20)
            } else {
                1
            };
            m.insert("batch_size".into(), batch.into());
            m.insert(
                "add_amount".into(),
                (u64::from(batch) * rng.u64(1..2_000)).into(),
            );
            m.insert("with_documents".into(), (rng.u32(0..10) < 8).into());
            m.insert("with_metadata".into(), (rng.u32(0..10) < 6).into());
            m.insert(
                "embedding_function".into(),
                pick(rng, EMBEDDING_FUNCTIONS).into(),
            );
        }
        "collection_query" => {
            m.insert(
                "n_results".into(),
                pick(rng, &[(5u32, 3), (10, 5), (20, 1), (100, 1)]).into(),
            );
            m.insert("query_amount".into(), rng.u32(1..8).into());
            m.insert("with_where".into(), (rng.u32(0..10) < 3).into());
            m.insert(
                "embedding_function".into(),
                pick(rng, EMBEDDING_FUNCTIONS).into(),
            );
        }
        "client_start" => {
            m.insert(
                "client_type".into(),
                pick(
                    rng,
                    &[
                        ("PersistentClient", 5),
                        ("HttpClient", 3),
                        ("EphemeralClient", 2),
                    ],
                )
                .into(),
            );
        }
        "points_upsert" => {
            m.insert("points".into(), rng.u32(1..5_000).into());
            m.insert(
                "vector_type".into(),
                pick(rng, &[("dense", 8), ("sparse", 1), ("multivector", 1)]).into(),
            );
        }
        "points_search" => {
            m.insert(
                "limit".into(),
                pick(rng, &[(10u32, 6), (50, 2), (100, 1)]).into(),
            );
            m.insert(
                "quantization".into(),
                pick(rng, &[("none", 6), ("scalar", 3), ("binary", 1)]).into(),
            );
        }
        "report_generated" => {
            m.insert(
                "metric_preset".into(),
                pick(
                    rng,
                    &[
                        ("DataDriftPreset", 5),
                        ("DataQualityPreset", 3),
                        ("RegressionPreset", 1),
                        ("ClassificationPreset", 2),
                    ],
                )
                .into(),
            );
            m.insert("columns".into(), rng.u32(2..300).into());
        }
        "test_suite_run" => {
            m.insert("tests".into(), rng.u32(1..60).into());
            m.insert("failed".into(), rng.u32(0..4).into());
        }
        _ => {}
    }
    m
}

fn usage_report(rng: &mut fastrand::Rng, inst: &Install) -> Map<String, Value> {
    let operations: &[(&str, f64)] = match PRODUCTS[inst.product].name {
        "chromadb" => &[
            ("collection_add", 2_400.0),
            ("collection_query", 900.0),
            ("collection_get", 300.0),
        ],
        "qdrant" => &[
            ("rest_search", 450.0),
            ("rest_upsert", 1_800.0),
            ("grpc_search", 260.0),
        ],
        _ => &[("report_run", 85_000.0), ("test_suite_run", 41_000.0)],
    };
    let mut ops = Map::new();
    for (name, micros) in operations {
        let count = rng.u64(1..5_000);
        let fails = if rng.u32(0..5) == 0 {
            rng.u64(0..count / 20 + 1)
        } else {
            0
        };
        let avg = (micros * inst.latency_scale * (0.7 + rng.f64() * 0.6)).round();
        ops.insert((*name).into(), json!({"count": count, "fail_count": fails, "avg_duration_micros": avg,
            "min_duration_micros": (avg * 0.2).round(), "max_duration_micros": (avg * 9.0).round()}));
    }
    let mut m = Map::new();
    m.insert("operations".into(), Value::Object(ops));
    m.insert(
        "counters".into(),
        json!({"collections": {"total": rng.u32(1..40)}}),
    );
    m.insert(
        "system".into(),
        json!({"cpu_cores": pick(rng, &[(2u32, 2), (4, 3), (8, 4), (16, 2), (64, 1)]),
        "ram_bytes": pick(rng, &[(8_u64 << 30, 3), (16 << 30, 4), (32 << 30, 2), (128 << 30, 1)]),
        "is_container": inst.in_container}),
    );
    m
}

fn error_report(rng: &mut fastrand::Rng, inst: &Install) -> Map<String, Value> {
    // Mostly the install's own crash site, sometimes any other.
    let site = if rng.u32(0..4) == 0 {
        rng.usize(0..CRASHES.len())
    } else {
        inst.crash_site
    };
    let (kind, message, frames) = CRASHES[site];
    let frames: Vec<Value> = frames
        .iter()
        .map(|(function, file, line)| {
            json!({"platform": PRODUCTS[inst.product].runtime, "function": function,
            "filename": file, "lineno": line, "in_app": true})
        })
        .collect();
    let mut m = Map::new();
    m.insert(
        "$exception_list".into(),
        json!([{"type": kind, "value": message,
        "mechanism": {"handled": false, "synthetic": false, "type": "generic"},
        "stacktrace": {"type": "raw", "frames": frames}}]),
    );
    // A fingerprint as the core makes one: a hash of the type and the frames.
    let fingerprint = short_hash(&format!("{kind}\n{frames:?}"));
    m.insert(
        "$exception_fingerprint".into(),
        format!("{fingerprint}{}", &fingerprint[..4]).into(),
    );
    m.insert("$exception_level".into(), "fatal".into());
    m.insert("$exception_handled".into(), false.into());
    m.insert(
        "$exception_suppressed".into(),
        (if rng.u32(0..10) == 0 {
            rng.u32(1..5)
        } else {
            0
        })
        .into(),
    );
    m
}

/// Generates `spec`'s events and stores them in `store`, a few thousand per
/// transaction, as the collector's group commit would.
pub fn fill(store: &Store, spec: &SampleSpec) -> Result<Filled, Error> {
    let events = generate(spec)?;
    let total = events.len();
    let installs = events
        .iter()
        .map(|e| e.distinct_id.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len();
    // Received a moment after the chunk's newest event, as a live collector
    // would have: retention and "first/last seen" then behave as they do on
    // real data. Chunks move into their batch (no copy of the events).
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<Event> = events.by_ref().take(5_000).collect();
        let newest = chunk.last().and_then(|e| e.timestamp.as_deref());
        let received_at = newest
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map_or_else(crate::ingest::now_rfc3339, |t| {
                format_rfc3339(t + Duration::seconds(2))
            });
        store.insert_all(&[&Batch {
            events: chunk,
            received_at,
        }])?;
    }
    let end = parse_day(&spec.end).map_err(|e| Error::Config(e.to_string()))?;
    Ok(Filled {
        events: total,
        installs,
        from: crate::stats::format_day(end - Duration::days(i64::from(spec.days.max(1)) - 1)),
        to: spec.end.clone(),
    })
}
