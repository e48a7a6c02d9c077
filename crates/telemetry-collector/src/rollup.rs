//! The rollup tables behind [`crate::stats`]: what one set of events adds to
//! (or, removed, takes from) each of them, computed in Rust and shared by both
//! stores, so SQLite and PostgreSQL hold identical figures.
//!
//! Four tables, maintained in the transaction that inserts (or deletes) the
//! events:
//!
//! - `daily_installs (day, product, distinct_id)`: `week`, the `product_version`
//!   and `last_seen` of that id's newest event of the day, and its `events`;
//! - `installs (product, distinct_id)`: `first_day`, `last_day`, and from the
//!   newest event (`last_seen`) `product_version`, `os`, `arch`, `runtime`,
//!   `in_container`, `in_ci`, `in_jupyter`;
//! - `daily_events (day, product, product_version, os, event)`: `events` and
//!   `occurrences` (the sum of `batch_size`);
//! - `daily_properties (day, product, event, property, value)`: `events`,
//!   `occurrences` and, for numbers, their `total`.
//!
//! A [`Delta`] gathers one transaction's events in memory, keyed as the tables
//! are, so a group commit of 1,600 events becomes a few hundred upserts.
//!
//! ```
//! use serde_json::json;
//! use telemetry_collector::ingest::{parse, Endpoint};
//! use telemetry_collector::rollup::Delta;
//!
//! let body = json!({"api_key": "k", "batch": [
//!     {"event": "query", "distinct_id": "i1", "timestamp": "2024-05-01T23:30:00-02:00",
//!      "properties": {"product": "chroma", "k": 10, "mode": "fast", "batch_size": 3}},
//!     {"event": "query", "distinct_id": "i1", "timestamp": "2024-05-02T02:00:00Z",
//!      "properties": {"product": "chroma", "k": 5, "mode": "fast"}}]});
//! let events = parse(Endpoint::Batch, body.to_string().as_bytes(), None).unwrap();
//! let mut delta = Delta::inserting();
//! for e in &events {
//!     delta.add(e, "2024-05-02T03:00:00.000Z");
//! }
//! // Both fall on 2024-05-02 in UTC: one row per table key.
//! let daily = delta.daily_events();
//! assert_eq!((daily.len(), daily[0].events, daily[0].occurrences), (1, 2, 4));
//! let k = delta.daily_properties().into_iter().find(|p| p.property == "k").unwrap();
//! assert_eq!((k.value.as_str(), k.total), ("(number)", 15.0));
//! assert_eq!(delta.installs()[0].first_day, "2024-05-02");
//! ```

use std::collections::HashMap;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::ingest::{format_rfc3339, Event};
use crate::stats::{format_day, week_of, LONG_VALUE, MAX_VALUE_CHARS, NUMBER};
use crate::store::UNKNOWN;

/// Events whose properties are not broken down in `daily_properties`: usage
/// and error reports have views of their own, read from the events.
pub const UNROLLED_EVENTS: &[&str] = &["usage_report", "$exception"];

/// Properties describing the sender rather than the event, left out of
/// `daily_properties` (the environment and version views cover them).
pub const CONTEXT_KEYS: &[&str] = &[
    "product",
    "product_version",
    "core_version",
    "os",
    "os_version",
    "arch",
    "runtime",
    "runtime_version",
    "in_container",
    "in_ci",
    "in_jupyter",
    "in_colab",
    "in_conda",
    "in_venv",
    "python_implementation",
    "batch_size",
    "distinct_id",
];

/// Most properties of one event counted in `daily_properties` (the first in
/// key order), so one odd sender cannot grow the table without bound.
pub const MAX_PROPERTIES: usize = 32;

/// The day an event counts on and its time in the stores' fixed UTC format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    /// UTC date of the event's timestamp, `YYYY-MM-DD`.
    pub day: String,
    /// The timestamp normalised by [`format_rfc3339`] (text order is time order).
    pub last_seen: String,
}

/// Where `timestamp` (RFC 3339, any offset; the receive time when the sender
/// gave none) falls in UTC.
///
/// ```
/// use telemetry_collector::rollup::when;
/// let w = when("2024-05-01T23:30:00.25-02:00", "2024-05-03T00:00:00.000Z");
/// assert_eq!(w.day, "2024-05-02");
/// assert_eq!(w.last_seen, "2024-05-02T01:30:00.250Z");
/// ```
pub fn when(timestamp: &str, received_at: &str) -> When {
    let parsed = OffsetDateTime::parse(timestamp, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(received_at, &Rfc3339));
    match parsed {
        Ok(at) => {
            let utc = at.to_offset(UtcOffset::UTC);
            When {
                day: format_day(utc.date()),
                last_seen: format_rfc3339(utc),
            }
        }
        // Only a row edited by hand gets here (ingest checks timestamps).
        Err(_) => When {
            day: timestamp.get(..10).unwrap_or(UNKNOWN).to_owned(),
            last_seen: timestamp.to_owned(),
        },
    }
}

/// A stored row as an [`Event`], so that a removal reads its properties with
/// exactly the accessors the insert used.
pub fn stored_as_event(
    event: &str,
    distinct_id: &str,
    timestamp: &str,
    properties: Value,
) -> Event {
    Event {
        uuid: String::new(),
        event: event.to_owned(),
        distinct_id: distinct_id.to_owned(),
        properties: match properties {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        timestamp: Some(timestamp.to_owned()),
        api_key_hash: String::new(),
        api_key: String::new(),
    }
}

/// One `daily_installs` row (or what a delta adds to it).
#[derive(Debug, Clone, PartialEq)]
pub struct DailyInstall {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// `properties.product` ([`UNKNOWN`] when missing).
    pub product: String,
    /// The install.
    pub distinct_id: String,
    /// [`week_of`] the day.
    pub week: String,
    /// Version of the newest event of the day.
    pub product_version: String,
    /// Time of that event ([`When::last_seen`]).
    pub last_seen: String,
    /// Events (negative in a removal).
    pub events: i64,
}

/// One `installs` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Install {
    /// `properties.product`.
    pub product: String,
    /// The install.
    pub distinct_id: String,
    /// Its first day.
    pub first_day: String,
    /// Its last day.
    pub last_day: String,
    /// Time of its newest event; the values below are that event's.
    pub last_seen: String,
    /// `properties.product_version`.
    pub product_version: String,
    /// [`Event::os`].
    pub os: String,
    /// `properties.arch`.
    pub arch: String,
    /// `runtime runtime_version`.
    pub runtime: String,
    /// `yes`, `no` or `unknown`.
    pub in_container: String,
    /// `yes`, `no` or `unknown`.
    pub in_ci: String,
    /// `yes`, `no` or `unknown`.
    pub in_jupyter: String,
}

/// One `daily_events` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyEvent {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// `properties.product`.
    pub product: String,
    /// `properties.product_version`.
    pub product_version: String,
    /// [`Event::os`].
    pub os: String,
    /// Event name.
    pub event: String,
    /// Events (negative in a removal).
    pub events: i64,
    /// Sum of their [`Event::batch_size`].
    pub occurrences: i64,
}

/// One `daily_properties` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyProperty {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// `properties.product`.
    pub product: String,
    /// Event name.
    pub event: String,
    /// Property name.
    pub property: String,
    /// The value as text ([`NUMBER`] for numbers, [`LONG_VALUE`] for long text).
    pub value: String,
    /// Events with it.
    pub events: i64,
    /// Sum of their batch sizes.
    pub occurrences: i64,
    /// Sum of the numbers (0 for other values).
    pub total: f64,
}

type Key3 = (String, String, String);
type Key5 = (String, String, String, String, String);

/// What a set of events adds to the rollups (sign +1, [`Delta::inserting`]) or
/// takes from them (sign -1, [`Delta::removing`]), keyed like the tables.
#[derive(Debug)]
pub struct Delta {
    sign: i64,
    daily_installs: HashMap<Key3, DailyInstall>,
    installs: HashMap<(String, String), Install>,
    daily_events: HashMap<Key5, DailyEvent>,
    daily_properties: HashMap<Key5, DailyProperty>,
}

impl Delta {
    /// An empty delta of events being stored.
    pub fn inserting() -> Delta {
        Delta::new(1)
    }

    /// An empty delta of events being deleted: counts are negative. Its
    /// `daily_installs` and `installs` rows say which keys were touched (the
    /// stores recompute those from what remains).
    pub fn removing() -> Delta {
        Delta::new(-1)
    }

    fn new(sign: i64) -> Delta {
        Delta {
            sign,
            daily_installs: HashMap::new(),
            installs: HashMap::new(),
            daily_events: HashMap::new(),
            daily_properties: HashMap::new(),
        }
    }

    /// +1 or -1.
    pub fn sign(&self) -> i64 {
        self.sign
    }

    /// Whether no event was added.
    pub fn is_empty(&self) -> bool {
        self.daily_events.is_empty()
    }

    /// Adds one event received at `received_at`.
    pub fn add(&mut self, e: &Event, received_at: &str) {
        let at = when(e.timestamp.as_deref().unwrap_or(received_at), received_at);
        self.add_at(e, &at);
    }

    /// Adds one event whose [`When`] is known.
    pub fn add_at(&mut self, e: &Event, at: &When) {
        let sign = self.sign;
        let text = |k: &str| string(&e.properties, k).unwrap_or(UNKNOWN).to_owned();
        let product = e.product().unwrap_or(UNKNOWN).to_owned();
        let version = e.product_version().unwrap_or(UNKNOWN).to_owned();
        let os = e.os().unwrap_or(UNKNOWN).to_owned();
        let batch = e.batch_size();
        let newer = |seen: &str| at.last_seen.as_str() >= seen;

        let day = self
            .daily_installs
            .entry((at.day.clone(), product.clone(), e.distinct_id.clone()))
            .or_insert_with(|| DailyInstall {
                day: at.day.clone(),
                product: product.clone(),
                distinct_id: e.distinct_id.clone(),
                week: crate::stats::parse_day(&at.day)
                    .map(week_of)
                    .unwrap_or_else(|_| at.day.clone()),
                product_version: version.clone(),
                last_seen: at.last_seen.clone(),
                events: 0,
            });
        day.events += sign;
        if newer(&day.last_seen) {
            day.product_version.clone_from(&version);
            day.last_seen.clone_from(&at.last_seen);
        }

        let runtime = match (
            string(&e.properties, "runtime"),
            string(&e.properties, "runtime_version"),
        ) {
            (Some(r), Some(v)) => format!("{r} {v}"),
            (Some(one), None) | (None, Some(one)) => one.to_owned(),
            (None, None) => UNKNOWN.to_owned(),
        };
        let flag = |k: &str| {
            match e.properties.get(k) {
                Some(Value::Bool(true)) => "yes",
                Some(Value::Bool(false)) => "no",
                _ => UNKNOWN,
            }
            .to_owned()
        };
        let fresh = Install {
            product: product.clone(),
            distinct_id: e.distinct_id.clone(),
            first_day: at.day.clone(),
            last_day: at.day.clone(),
            last_seen: at.last_seen.clone(),
            product_version: version.clone(),
            os: os.clone(),
            arch: text("arch"),
            runtime,
            in_container: flag("in_container"),
            in_ci: flag("in_ci"),
            in_jupyter: flag("in_jupyter"),
        };
        match self
            .installs
            .entry((product.clone(), e.distinct_id.clone()))
        {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(fresh);
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let old = o.get_mut();
                let first_day = std::mem::take(&mut old.first_day).min(fresh.first_day.clone());
                let last_day = std::mem::take(&mut old.last_day).max(fresh.last_day.clone());
                if newer(&old.last_seen) {
                    *old = fresh;
                }
                old.first_day = first_day;
                old.last_day = last_day;
            }
        }

        let counts = self
            .daily_events
            .entry((
                at.day.clone(),
                product.clone(),
                version.clone(),
                os.clone(),
                e.event.clone(),
            ))
            .or_insert_with(|| DailyEvent {
                day: at.day.clone(),
                product: product.clone(),
                product_version: version,
                os,
                event: e.event.clone(),
                events: 0,
                occurrences: 0,
            });
        counts.events += sign;
        counts.occurrences += sign * batch;

        if UNROLLED_EVENTS.contains(&e.event.as_str()) {
            return;
        }
        for (property, value, number) in broken_down(&e.properties) {
            let row = self
                .daily_properties
                .entry((
                    at.day.clone(),
                    product.clone(),
                    e.event.clone(),
                    property.to_owned(),
                    value.clone(),
                ))
                .or_insert_with(|| DailyProperty {
                    day: at.day.clone(),
                    product: product.clone(),
                    event: e.event.clone(),
                    property: property.to_owned(),
                    value,
                    events: 0,
                    occurrences: 0,
                    total: 0.0,
                });
            row.events += sign;
            row.occurrences += sign * batch;
            row.total += sign as f64 * number;
        }
    }

    /// `daily_installs` rows, in key order (so concurrent writers lock rows in
    /// one order and cannot deadlock).
    pub fn daily_installs(&self) -> Vec<&DailyInstall> {
        sorted(&self.daily_installs)
    }

    /// `installs` rows, in key order.
    pub fn installs(&self) -> Vec<&Install> {
        sorted(&self.installs)
    }

    /// `daily_events` rows, in key order.
    pub fn daily_events(&self) -> Vec<&DailyEvent> {
        sorted(&self.daily_events)
    }

    /// `daily_properties` rows, in key order.
    pub fn daily_properties(&self) -> Vec<&DailyProperty> {
        sorted(&self.daily_properties)
    }

    /// The `daily_installs` row of this key, if an event added to it.
    pub fn daily_install(
        &self,
        day: &str,
        product: &str,
        distinct_id: &str,
    ) -> Option<&DailyInstall> {
        self.daily_installs
            .get(&(day.to_owned(), product.to_owned(), distinct_id.to_owned()))
    }

    /// The `installs` row of this key, if an event added to it.
    pub fn install(&self, product: &str, distinct_id: &str) -> Option<&Install> {
        self.installs
            .get(&(product.to_owned(), distinct_id.to_owned()))
    }
}

fn sorted<K: Ord, V>(map: &HashMap<K, V>) -> Vec<&V> {
    let mut rows: Vec<(&K, &V)> = map.iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
    rows.into_iter().map(|(_, v)| v).collect()
}

fn string<'a>(properties: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    properties.get(key).and_then(Value::as_str)
}

/// The properties of an event that `daily_properties` counts: top-level keys
/// not starting with `$` and not in [`CONTEXT_KEYS`], whose value is a string,
/// a boolean or a number (null, objects and arrays are skipped); the first
/// [`MAX_PROPERTIES`] of them in key order. Each with its value as recorded and
/// the number to add to `total`.
pub fn broken_down(properties: &Map<String, Value>) -> Vec<(&str, String, f64)> {
    let mut out: Vec<(&str, String, f64)> = properties
        .iter()
        .filter(|(k, _)| !k.starts_with('$') && !CONTEXT_KEYS.contains(&k.as_str()))
        .filter_map(|(k, v)| {
            let (value, number) = match v {
                Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => {
                    (LONG_VALUE.to_owned(), 0.0)
                }
                Value::String(s) => (s.clone(), 0.0),
                Value::Bool(b) => (b.to_string(), 0.0),
                Value::Number(n) => (
                    NUMBER.to_owned(),
                    n.as_f64().filter(|f| f.is_finite()).unwrap_or(0.0),
                ),
                _ => return None,
            };
            Some((k.as_str(), value, number))
        })
        .collect();
    // serde_json's map may keep insertion order (its `preserve_order` feature):
    // key order is made explicit.
    out.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.truncate(MAX_PROPERTIES);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, id: &str, timestamp: &str, properties: Value) -> Event {
        stored_as_event(name, id, timestamp, properties)
    }

    #[test]
    fn newest_event_wins_and_days_are_utc() {
        let mut d = Delta::inserting();
        d.add(
            &event(
                "a",
                "i",
                "2024-05-02T01:00:00+02:00",
                json!({"product_version": "2", "os": "Linux",
                "runtime": "python", "in_ci": true, "in_container": "yes"}),
            ),
            "",
        );
        d.add(
            &event(
                "a",
                "i",
                "2024-05-01T22:00:00Z",
                json!({"product_version": "1", "$os": "Mac",
                "runtime_version": "3.12"}),
            ),
            "",
        );
        let install = d.install(UNKNOWN, "i").unwrap();
        assert_eq!(
            (install.first_day.as_str(), install.last_day.as_str()),
            ("2024-05-01", "2024-05-01")
        );
        assert_eq!(
            install.product_version, "2",
            "23:00Z (01:00+02:00) is after 22:00Z"
        );
        assert_eq!(
            (install.os.as_str(), install.runtime.as_str()),
            ("Linux", "python")
        );
        assert_eq!(
            (install.in_ci.as_str(), install.in_container.as_str()),
            ("yes", "unknown"),
            "a string is not a boolean"
        );
        let day = d.daily_install("2024-05-01", UNKNOWN, "i").unwrap();
        assert_eq!((day.events, day.week.as_str()), (2, "2024-04-29"));
    }

    #[test]
    fn properties_are_filtered_capped_and_typed() {
        let mut props = Map::new();
        for i in 0..40 {
            props.insert(format!("p{i:02}"), json!(i));
        }
        props.insert("$lib".into(), json!("x"));
        props.insert("arch".into(), json!("x86_64"));
        props.insert("a_null".into(), Value::Null);
        props.insert("a_long".into(), json!("x".repeat(65)));
        props.insert("a_bool".into(), json!(false));
        let rows = broken_down(&props);
        assert_eq!(rows.len(), MAX_PROPERTIES);
        assert_eq!(rows[0], ("a_bool", "false".into(), 0.0));
        assert_eq!(rows[1], ("a_long", LONG_VALUE.into(), 0.0));
        assert_eq!(rows[2], ("p00", NUMBER.into(), 0.0));
        assert_eq!(rows[31].0, "p29");
    }

    #[test]
    fn a_removal_negates() {
        let e = event(
            "q",
            "i",
            "2024-05-01T10:00:00Z",
            json!({"n": 2.5, "batch_size": 3}),
        );
        let mut d = Delta::removing();
        d.add(&e, "");
        let p = &d.daily_properties()[0];
        assert_eq!((p.events, p.occurrences, p.total), (-1, -3, -2.5));
        assert_eq!(d.daily_events()[0].occurrences, -3);
    }
}
