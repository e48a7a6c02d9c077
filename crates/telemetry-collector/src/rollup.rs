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

use std::borrow::Cow;
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
    // The shapes senders use most (telemetry-core's, and the stores' own)
    // are already UTC: no parsing, which is most of this function's cost.
    if let Some(fast) = canonical_utc(timestamp) {
        return fast;
    }
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

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (the stores' format) or `YYYY-MM-DDTHH:MM:SSZ`
/// (whole seconds) as they are, checked character by character.
fn canonical_utc(t: &str) -> Option<When> {
    let b = t.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let date_time = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !date_time {
        return None;
    }
    let last_seen = match &b[19..] {
        b"Z" => format!("{}.000Z", &t[..19]),
        [b'.', m1, m2, m3, b'Z'] if [m1, m2, m3].iter().all(|d| d.is_ascii_digit()) => t.to_owned(),
        _ => return None,
    };
    Some(When {
        day: t[..10].to_owned(),
        last_seen,
    })
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

/// A table key: its text columns joined by NUL, which no stored string holds
/// (ingest refuses it), so two keys never run together, and which sorts
/// before every other character, so keys sort as their columns do. One
/// string, so a lookup borrows a reused buffer and allocates only for a row
/// the delta does not hold yet.
type Key = String;

/// Writes `parts` joined by NUL into `buf` and returns it.
fn join<'b>(buf: &'b mut String, parts: &[&str]) -> &'b str {
    buf.clear();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            buf.push('\0');
        }
        buf.push_str(part);
    }
    buf
}

/// What a set of events adds to the rollups (sign +1, [`Delta::inserting`]) or
/// takes from them (sign -1, [`Delta::removing`]), keyed like the tables.
#[derive(Debug)]
pub struct Delta {
    sign: i64,
    daily_installs: HashMap<Key, DailyInstall>,
    installs: HashMap<Key, Install>,
    daily_events: HashMap<Key, DailyEvent>,
    daily_properties: HashMap<Key, DailyProperty>,
    /// Reused for every lookup.
    key: String,
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
            key: String::new(),
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
        let product = e.product().unwrap_or(UNKNOWN);
        let version = e.product_version().unwrap_or(UNKNOWN);
        let os = e.os().unwrap_or(UNKNOWN);
        let batch = e.batch_size();
        let day = at.day.as_str();
        let newer = |seen: &str| at.last_seen.as_str() >= seen;

        let key = join(&mut self.key, &[day, product, &e.distinct_id]);
        match self.daily_installs.get_mut(key) {
            Some(row) => {
                row.events += sign;
                if newer(&row.last_seen) {
                    replace(&mut row.product_version, version);
                    replace(&mut row.last_seen, &at.last_seen);
                }
            }
            None => {
                let row = DailyInstall {
                    day: day.to_owned(),
                    product: product.to_owned(),
                    distinct_id: e.distinct_id.clone(),
                    week: crate::stats::parse_day(day)
                        .map(week_of)
                        .unwrap_or_else(|_| day.to_owned()),
                    product_version: version.to_owned(),
                    last_seen: at.last_seen.clone(),
                    events: sign,
                };
                self.daily_installs.insert(key.to_owned(), row);
            }
        }

        let key = join(&mut self.key, &[product, &e.distinct_id]);
        match self.installs.get_mut(key) {
            Some(row) => {
                if day < row.first_day.as_str() {
                    replace(&mut row.first_day, day);
                }
                if day > row.last_day.as_str() {
                    replace(&mut row.last_day, day);
                }
                if newer(&row.last_seen) {
                    replace(&mut row.last_seen, &at.last_seen);
                    replace(&mut row.product_version, version);
                    replace(&mut row.os, os);
                    replace(
                        &mut row.arch,
                        string(&e.properties, "arch").unwrap_or(UNKNOWN),
                    );
                    row.runtime = runtime(e);
                    replace(&mut row.in_container, flag(e, "in_container"));
                    replace(&mut row.in_ci, flag(e, "in_ci"));
                    replace(&mut row.in_jupyter, flag(e, "in_jupyter"));
                }
            }
            None => {
                let row = Install {
                    product: product.to_owned(),
                    distinct_id: e.distinct_id.clone(),
                    first_day: day.to_owned(),
                    last_day: day.to_owned(),
                    last_seen: at.last_seen.clone(),
                    product_version: version.to_owned(),
                    os: os.to_owned(),
                    arch: string(&e.properties, "arch").unwrap_or(UNKNOWN).to_owned(),
                    runtime: runtime(e),
                    in_container: flag(e, "in_container").to_owned(),
                    in_ci: flag(e, "in_ci").to_owned(),
                    in_jupyter: flag(e, "in_jupyter").to_owned(),
                };
                self.installs.insert(key.to_owned(), row);
            }
        }

        let key = join(&mut self.key, &[day, product, version, os, &e.event]);
        match self.daily_events.get_mut(key) {
            Some(row) => {
                row.events += sign;
                row.occurrences += sign * batch;
            }
            None => {
                let row = DailyEvent {
                    day: day.to_owned(),
                    product: product.to_owned(),
                    product_version: version.to_owned(),
                    os: os.to_owned(),
                    event: e.event.clone(),
                    events: sign,
                    occurrences: sign * batch,
                };
                self.daily_events.insert(key.to_owned(), row);
            }
        }

        if UNROLLED_EVENTS.contains(&e.event.as_str()) {
            return;
        }
        for (property, value, number) in broken_down(&e.properties) {
            let key = join(&mut self.key, &[day, product, &e.event, property, &value]);
            let row = match self.daily_properties.get_mut(key) {
                Some(row) => row,
                None => self
                    .daily_properties
                    .entry(key.to_owned())
                    .or_insert_with(|| DailyProperty {
                        day: day.to_owned(),
                        product: product.to_owned(),
                        event: e.event.clone(),
                        property: property.to_owned(),
                        value: value.into_owned(),
                        events: 0,
                        occurrences: 0,
                        total: 0.0,
                    }),
            };
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
            .get(join(&mut String::new(), &[day, product, distinct_id]))
    }

    /// The `installs` row of this key, if an event added to it.
    pub fn install(&self, product: &str, distinct_id: &str) -> Option<&Install> {
        self.installs
            .get(join(&mut String::new(), &[product, distinct_id]))
    }
}

/// Overwrites `slot` with `value`, reusing its allocation.
fn replace(slot: &mut String, value: &str) {
    if slot != value {
        slot.clear();
        slot.push_str(value);
    }
}

/// `runtime runtime_version`, either alone, or `unknown`.
fn runtime(e: &Event) -> String {
    match (
        string(&e.properties, "runtime"),
        string(&e.properties, "runtime_version"),
    ) {
        (Some(r), Some(v)) => format!("{r} {v}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => UNKNOWN.to_owned(),
    }
}

/// A boolean property as `yes`/`no`, anything else `unknown`.
fn flag(e: &Event, key: &str) -> &'static str {
    match e.properties.get(key) {
        Some(Value::Bool(true)) => "yes",
        Some(Value::Bool(false)) => "no",
        _ => UNKNOWN,
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
pub fn broken_down(properties: &Map<String, Value>) -> Vec<(&str, Cow<'_, str>, f64)> {
    let mut out: Vec<(&str, Cow<'_, str>, f64)> = properties
        .iter()
        .filter(|(k, _)| !k.starts_with('$') && !CONTEXT_KEYS.contains(&k.as_str()))
        .filter_map(|(k, v)| {
            let (value, number) = match v {
                Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => {
                    (Cow::Borrowed(LONG_VALUE), 0.0)
                }
                Value::String(s) => (Cow::Borrowed(s.as_str()), 0.0),
                Value::Bool(b) => (Cow::Borrowed(if *b { "true" } else { "false" }), 0.0),
                Value::Number(n) => (
                    Cow::Borrowed(NUMBER),
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
    fn the_fast_path_agrees_with_parsing() {
        for t in [
            "2024-05-01T10:00:00.123Z",
            "2024-05-01T10:00:00Z",
            "2024-12-31T23:59:59.999Z",
        ] {
            let fast = canonical_utc(t).unwrap();
            let parsed = OffsetDateTime::parse(t, &Rfc3339).unwrap();
            assert_eq!(fast.day, format_day(parsed.date()), "{t}");
            assert_eq!(fast.last_seen, format_rfc3339(parsed), "{t}");
        }
        for other in [
            "2024-05-01T10:00:00.1234Z",
            "2024-05-01T10:00:00+02:00",
            "2024-05-01t10:00:00Z",
            "2024-05-01T10:00:00.12Z",
            "2024-05-01",
        ] {
            assert!(canonical_utc(other).is_none(), "{other}");
        }
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
