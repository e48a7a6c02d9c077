//! The usage report: one JSON document at a details level, plain or anonymized.
//!
//! In: a registry and [`ReportOptions`]. Out: the document. What each details level adds
//! (any level above 4 means 4, as in Qdrant):
//!
//! | level | adds |
//! |---|---|
//! | 0 | `id`, `app` (name, version, core version, the integrator's fields), each counter family's `total`, each timing family's `count`, `fail_count`, `avg_duration_micros` |
//! | 1 | `system` (distribution, container, CPU cores and flags, RAM, disk size and type, resident memory); timings' `min_`, `max_`, `total_duration_micros` and `last_responded` |
//! | 2 | `by_labels`: the same numbers per label set; the integrator's sections (their default level) |
//! | 3 | `duration_histogram` on every timing and label set; sections declared at level 3 |
//! | 4 | sections declared at level 4 |
//!
//! Anonymized, the document keeps its shape: label values and section values go through
//! their declared kinds (undeclared strings are hashed with the install's secret), durations
//! and sizes are rounded to the profile's precision, and counts (operations, failures,
//! histogram buckets, counters) stay exact, since they describe load, not people. Field and
//! family names are the integrator's code and stay as they are.
//!
//! ```
//! use telemetry_core::usage::{ReportOptions, Usage};
//! let usage = Usage::standalone("myapp", "1.0");
//! usage.counter("starts").build().unwrap().handle().inc();
//! let r = usage.report(&ReportOptions::default());
//! assert_eq!(r["counters"]["starts"]["total"], 1);
//! assert!(r.get("system").is_none()); // level 0
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::system::SystemInfo;
use super::timing::TimingSnapshot;
use super::{CounterData, Label, Section, TimingData, UsageShared, MAX_DETAILS_LEVEL};
use crate::anonymize::{self, Anonymizer, LocalNames, PropertyKind};
use crate::context::CORE_VERSION;

/// Top-level names the core writes; sections cannot take them.
pub const RESERVED: [&str; 5] = ["id", "app", "system", "counters", "operations"];

/// How to render a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportOptions {
    /// 0 to 4; higher numbers mean 4.
    pub details_level: u8,
    /// Apply the core's anonymization (what is sent home).
    pub anonymize: bool,
    /// Include histograms whatever the level (what is sent home at level 2); `None`: from
    /// level 3.
    pub histograms: Option<bool>,
}

impl ReportOptions {
    /// What the client sends home: level 2, anonymized, with histograms (Qdrant leaves
    /// them out, which makes percentiles across installs impossible).
    pub fn sent_home() -> Self {
        ReportOptions {
            details_level: 2,
            anonymize: true,
            histograms: Some(true),
        }
    }
}

/// Renders the report of `shared`.
pub(crate) fn render(shared: &UsageShared, options: &ReportOptions) -> Value {
    let level = options.details_level.min(MAX_DETAILS_LEVEL);
    let identity = shared.identity();
    let anonymizer = options.anonymize.then(|| {
        Anonymizer::new(*identity.secret(), shared.precision)
            .with_local_names(LocalNames::detect(&crate::env::ProcessEnvironment))
    });
    let r = Renderer {
        level,
        histograms: options.histograms.unwrap_or(level >= 3),
        anonymizer: anonymizer.as_ref(),
        precision: shared.precision,
    };

    let mut doc = Map::new();
    doc.insert("id".into(), identity.install_id().to_string().into());
    let mut app = Map::new();
    if let Some(fields) = lock(&shared.app).clone() {
        if let Value::Object(extra) = r.section(&fields) {
            app.extend(extra);
        }
    }
    app.insert("name".into(), shared.product.clone().into());
    app.insert("version".into(), shared.version.clone().into());
    app.insert("core_version".into(), CORE_VERSION.into());
    doc.insert("app".into(), Value::Object(app));
    if level >= 1 {
        let dir = lock(&shared.data_dir).clone();
        doc.insert(
            "system".into(),
            r.system(&SystemInfo::detect(dir.as_deref())),
        );
    }

    let counters: Vec<_> = shared
        .counters
        .read()
        .map(|c| c.values().cloned().collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for family in counters {
        out.insert(family.shape.name.clone(), r.counter(&family));
    }
    doc.insert("counters".into(), Value::Object(out));

    let timings: Vec<_> = shared
        .timings
        .read()
        .map(|t| t.values().cloned().collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for family in timings {
        out.insert(family.shape.name.clone(), r.timing(&family));
    }
    doc.insert("operations".into(), Value::Object(out));

    // Cloned out of the lock first: a provider runs the host's code, which must not run
    // while a lock that `set_section` takes is held.
    let sections: BTreeMap<String, Section> = lock(&shared.sections).clone();
    for (name, section) in sections {
        if section.level <= level {
            doc.insert(name, r.section(&section));
        }
    }
    Value::Object(doc)
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Renderer<'a> {
    level: u8,
    histograms: bool,
    anonymizer: Option<&'a Anonymizer>,
    precision: u32,
}

impl Renderer<'_> {
    /// A duration in microseconds, rounded when anonymizing.
    fn micros(&self, nanos: f64) -> Value {
        let micros = nanos / 1000.0;
        match self.anonymizer {
            Some(_) => anonymize::round_f64(micros, self.precision),
            None => json!(micros),
        }
    }

    /// A size in bytes, rounded when anonymizing.
    fn bytes(&self, n: Option<u64>) -> Value {
        match (n, self.anonymizer) {
            (None, _) => Value::Null,
            (Some(n), Some(_)) => anonymize::round_u64(n, self.precision).into(),
            (Some(n), None) => n.into(),
        }
    }

    fn labels(&self, declared: &[Label], values: &[String]) -> Value {
        let mut out = Map::new();
        for (label, value) in declared.iter().zip(values) {
            let v = Value::String(value.clone());
            let shown = match self.anonymizer {
                Some(a) => a.value(Some(label.kind), v).unwrap_or(Value::Null),
                None => v,
            };
            out.insert(label.name.clone(), shown);
        }
        Value::Object(out)
    }

    fn system(&self, s: &SystemInfo) -> Value {
        json!({
            "distribution": s.distribution,
            "distribution_version": s.distribution_version,
            "is_container": s.is_container,
            "cpu_cores": s.cpu_cores,
            "cpu_flags": s.cpu_flags.join(","),
            "ram_bytes": self.bytes(s.ram_bytes),
            "disk_bytes": self.bytes(s.disk_bytes),
            "disk_type": s.disk_type,
            "resident_bytes": self.bytes(s.resident_bytes),
        })
    }

    fn counter(&self, family: &CounterData) -> Value {
        use std::sync::atomic::Ordering::Relaxed;
        let mut entries: Vec<(Value, u64)> = family
            .table
            .entries()
            .map(|k| {
                (
                    self.labels(&family.shape.labels, &k.values),
                    k.cell.load(Relaxed),
                )
            })
            .collect();
        let total = family.single.load(Relaxed) + entries.iter().map(|(_, n)| n).sum::<u64>();
        let mut out = Map::new();
        out.insert("total".into(), total.into());
        if self.level >= 2 && !family.shape.labels.is_empty() {
            sort_by_labels(&mut entries);
            let by: Vec<Value> = entries
                .into_iter()
                .map(|(labels, value)| json!({"labels": labels, "value": value}))
                .collect();
            out.insert("by_labels".into(), Value::Array(by));
        }
        Value::Object(out)
    }

    fn timing(&self, family: &TimingData) -> Value {
        let n = family.bounds.len();
        let mut entries: Vec<(Value, TimingSnapshot)> = family
            .table
            .entries()
            .map(|k| {
                (
                    self.labels(&family.shape.labels, &k.values),
                    k.cell.snapshot(n),
                )
            })
            .collect();
        let mut all = family.single.snapshot(n);
        for (_, s) in &entries {
            all.merge(s);
        }
        let Value::Object(mut out) = self.timing_numbers(&all, &family.bounds) else {
            unreachable!("timing_numbers makes an object")
        };
        if self.level >= 2 && !family.shape.labels.is_empty() {
            sort_by_labels(&mut entries);
            let by: Vec<Value> = entries
                .into_iter()
                .map(|(labels, s)| {
                    let mut item = Map::new();
                    item.insert("labels".into(), labels);
                    if let Value::Object(numbers) = self.timing_numbers(&s, &family.bounds) {
                        item.extend(numbers);
                    }
                    Value::Object(item)
                })
                .collect();
            out.insert("by_labels".into(), Value::Array(by));
        }
        Value::Object(out)
    }

    fn timing_numbers(&self, s: &TimingSnapshot, bounds: &[u64]) -> Value {
        let mut out = Map::new();
        out.insert("count".into(), s.count.into());
        out.insert("fail_count".into(), s.fail_count.into());
        out.insert("avg_duration_micros".into(), self.micros(s.avg_nanos()));
        if self.level >= 1 {
            out.insert(
                "min_duration_micros".into(),
                self.micros(s.min_nanos as f64),
            );
            out.insert(
                "max_duration_micros".into(),
                self.micros(s.max_nanos as f64),
            );
            out.insert(
                "total_duration_micros".into(),
                self.micros(s.total_nanos as f64),
            );
            let last = (s.last_second > 0)
                .then(|| anonymize::timestamp(UNIX_EPOCH + Duration::from_secs(s.last_second)));
            out.insert("last_responded".into(), last.into());
        }
        if self.histograms {
            let le: Vec<Value> = bounds.iter().map(|b| json!(*b as f64 / 1e6)).collect();
            out.insert(
                "duration_histogram".into(),
                json!({"le_millis": le, "cumulative_counts": s.cumulative}),
            );
        }
        Value::Object(out)
    }

    fn section(&self, section: &Section) -> Value {
        let value = section.value();
        match self.anonymizer {
            Some(a) => by_kinds(a, &section.kinds, None, value),
            None => value,
        }
    }
}

/// Anonymizes a section: a field whose name has a declared kind goes through that kind
/// (a `safe` field keeps its whole subtree); other objects and arrays are walked, keeping
/// their field names; other leaves go by their type.
fn by_kinds(
    a: &Anonymizer,
    kinds: &BTreeMap<String, PropertyKind>,
    kind: Option<PropertyKind>,
    value: Value,
) -> Value {
    if let Some(kind) = kind {
        return a.value(Some(kind), value).unwrap_or(Value::Null);
    }
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let kind = kinds.get(&k).copied();
                if kind == Some(PropertyKind::Dropped) {
                    continue;
                }
                out.insert(k, by_kinds(a, kinds, kind, v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| by_kinds(a, kinds, None, v))
                .collect(),
        ),
        leaf => a.value(None, leaf).unwrap_or(Value::Null),
    }
}

/// Label sets in a stable order that reveals nothing: by what is shown.
fn sort_by_labels<T>(entries: &mut [(Value, T)]) {
    entries.sort_by_cached_key(|(labels, _)| labels.to_string());
}

/// The time a report was rendered, to the second (sent with the report).
pub fn rendered_at() -> String {
    anonymize::timestamp(SystemTime::now())
}
