//! SQLite storage of received events.
//!
//! One table, `events`, one row per event. The event's `uuid` is `UNIQUE` and rows
//! go in with `INSERT OR IGNORE`, so a sender that retries a batch after a timeout
//! (its first attempt may have been stored) never double-counts.
//!
//! A few properties are copied into their own columns (`product`,
//! `product_version`, `os`, `batch_size`) so the summary is plain SQL
//! `GROUP BY`s; the full properties object is kept as JSON text next to them.
//!
//! ```
//! use telemetry_collector::{EventFilter, Store};
//!
//! let store = Store::open(":memory:").unwrap();
//! assert_eq!(store.summary().unwrap().events, 0);
//! assert!(store.events(&EventFilter::default()).unwrap().is_empty());
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::ingest::Event;

/// Most rows one [`EventFilter`] (or `GET /api/events`) returns.
pub const MAX_LIMIT: usize = 10_000;

/// Rows returned when the filter names no limit.
pub const DEFAULT_LIMIT: usize = 100;

/// Key used in the summary's `by_*` maps for events without that property.
pub const UNKNOWN: &str = "unknown";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
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
CREATE INDEX IF NOT EXISTS events_event ON events(event);
CREATE INDEX IF NOT EXISTS events_distinct_id ON events(distinct_id);
";

/// The events database: one SQLite connection shared by all request threads.
///
/// A single connection behind a mutex is enough here: SQLite serialises writers
/// anyway, and each request holds the lock only for one short transaction.
pub struct Store {
    conn: Mutex<Connection>,
}

/// Which events [`Store::events`] returns.
///
/// ```
/// use telemetry_collector::EventFilter;
/// let filter = EventFilter::default().event("collection_add").limit(10);
/// assert_eq!(filter.limit, Some(10));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events with this name.
    pub event: Option<String>,
    /// Only events of this instance.
    pub distinct_id: Option<String>,
    /// At most this many events, the newest ones ([`DEFAULT_LIMIT`] when `None`,
    /// clamped to [`MAX_LIMIT`]).
    pub limit: Option<usize>,
}

impl EventFilter {
    /// Keeps only events named `name`.
    pub fn event(mut self, name: impl Into<String>) -> Self {
        self.event = Some(name.into());
        self
    }

    /// Keeps only events whose `distinct_id` is `id`.
    pub fn distinct_id(mut self, id: impl Into<String>) -> Self {
        self.distinct_id = Some(id.into());
        self
    }

    /// Returns at most `n` events (the newest `n`).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
}

/// One stored event, as `GET /api/events` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// The event's UUID (the sender's, or one made on receipt), lowercase hyphenated.
    pub uuid: String,
    /// Event name.
    pub event: String,
    /// The instance that sent it.
    pub distinct_id: String,
    /// The sender's timestamp exactly as sent, or the receive time when it sent none.
    pub timestamp: String,
    /// When the collector stored it (RFC 3339, UTC).
    pub received_at: String,
    /// The event's properties object.
    pub properties: Value,
}

/// One group of error reports sharing a fingerprint, as `GET /api/errors` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorGroup {
    /// The reports' `$exception_fingerprint` (`unknown` when a report had none).
    pub fingerprint: String,
    /// Reports stored.
    pub count: u64,
    /// Distinct installs that sent one.
    pub installs: u64,
    /// When the first arrived.
    pub first_seen: String,
    /// When the last arrived.
    pub last_seen: String,
    /// Product versions affected, sorted.
    pub versions: Vec<String>,
    /// Reports the senders' rate limits held back, as the reports told.
    pub suppressed: u64,
    /// The newest report's properties (scrubbed by the sender).
    pub example: Value,
}

/// Counts for one event name in a [`Summary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    /// Stored rows with this name.
    pub events: u64,
    /// Sum of their `batch_size` (a merged event stands for `batch_size` occurrences).
    pub batch_size_total: i64,
}

/// Totals over the whole database, as `GET /api/summary` returns them.
///
/// The `by_*` maps use [`UNKNOWN`] for events that lack the property.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Stored rows.
    pub events: u64,
    /// Sum of `batch_size` over all rows: how many occurrences the rows stand for.
    pub batch_size_total: i64,
    /// Per event name.
    pub by_event: BTreeMap<String, EventCounts>,
    /// Rows per `properties.product`.
    pub by_product: BTreeMap<String, u64>,
    /// Rows per `properties.product_version`.
    pub by_product_version: BTreeMap<String, u64>,
    /// Rows per `properties.os`.
    pub by_os: BTreeMap<String, u64>,
    /// Number of distinct `distinct_id`s.
    pub instances: u64,
}

/// What one [`Store::insert`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Events that were new and are now stored.
    pub stored: usize,
    /// Events whose uuid was already stored (a retried request), skipped.
    pub duplicates: usize,
}

impl Store {
    /// Opens (creating if needed) the database at `path`; `":memory:"` gives a
    /// private in-memory database that lives as long as the store.
    ///
    /// Turns on WAL so readers (`sqlite3 events.db` while the collector runs, the
    /// `/api/*` queries) never block the writers.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, Error> {
        let conn = Connection::open(path.as_ref())?;
        // Another process (a `sqlite3` shell, a second collector) may hold the
        // write lock for a moment; wait instead of failing the request.
        conn.busy_timeout(Duration::from_secs(5))?;
        // journal_mode answers with a row, so it must be queried, not executed.
        // An in-memory database answers "memory"; that is fine.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        // synchronous stays at SQLite's default (FULL): a 200 promises the events
        // are on disk, even across a power cut.
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a half-done write behind:
        // the transaction guard rolls back when it is dropped during unwinding.
        // So the connection is still good and poisoning can be ignored.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores `events` in one transaction: all of them or, on error, none.
    /// Events whose uuid is already present are skipped and counted as duplicates.
    pub fn insert(&self, events: &[Event], received_at: &str) -> Result<Inserted, Error> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut inserted = Inserted::default();
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (uuid, event, distinct_id, timestamp, received_at,
                     api_key_hash, properties, product, product_version, os, batch_size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for e in events {
                let properties = Value::Object(e.properties.clone()).to_string();
                let changed = stmt.execute(params![
                    e.uuid,
                    e.event,
                    e.distinct_id,
                    e.timestamp.as_deref().unwrap_or(received_at),
                    received_at,
                    e.api_key_hash,
                    properties,
                    e.product(),
                    e.product_version(),
                    e.os(),
                    e.batch_size(),
                ])?;
                if changed == 1 {
                    inserted.stored += 1;
                } else {
                    inserted.duplicates += 1;
                }
            }
        }
        tx.commit()?;
        Ok(inserted)
    }

    /// The newest events matching `filter`, returned oldest first (arrival order),
    /// so the last element is the most recent.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, Error> {
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let mut clauses = Vec::new();
        let mut args: Vec<&str> = Vec::new();
        if let Some(event) = &filter.event {
            args.push(event);
            clauses.push(format!("event = ?{}", args.len()));
        }
        if let Some(id) = &filter.distinct_id {
            args.push(id);
            clauses.push(format!("distinct_id = ?{}", args.len()));
        }
        let where_clause = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        // The newest `limit` rows by arrival (id), flipped back to arrival order.
        let sql = format!(
            "SELECT * FROM (
                 SELECT id, uuid, event, distinct_id, timestamp, received_at, properties
                 FROM events {where_clause} ORDER BY id DESC LIMIT {limit}
             ) ORDER BY id ASC"
        );

        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            let properties: String = r.get("properties")?;
            Ok(StoredEvent {
                uuid: r.get("uuid")?,
                event: r.get("event")?,
                distinct_id: r.get("distinct_id")?,
                timestamp: r.get("timestamp")?,
                received_at: r.get("received_at")?,
                // We wrote this text ourselves from a JSON object; should someone
                // edit the file by hand, show the raw text rather than fail.
                properties: serde_json::from_str(&properties).unwrap_or(Value::String(properties)),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest usage report (event `usage_report`) of each install, optionally of one
    /// product only, ordered by arrival.
    pub fn latest_usage_reports(&self, product: Option<&str>) -> Result<Vec<StoredEvent>, Error> {
        let sql = "SELECT e.uuid, e.event, e.distinct_id, e.timestamp, e.received_at, e.properties
             FROM events e
             JOIN (SELECT distinct_id, MAX(id) AS id FROM events
                   WHERE event = 'usage_report' AND (?1 IS NULL OR product = ?1)
                   GROUP BY distinct_id) latest ON e.id = latest.id
             ORDER BY e.id ASC";
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([product], |r| {
            let properties: String = r.get("properties")?;
            Ok(StoredEvent {
                uuid: r.get("uuid")?,
                event: r.get("event")?,
                distinct_id: r.get("distinct_id")?,
                timestamp: r.get("timestamp")?,
                received_at: r.get("received_at")?,
                properties: serde_json::from_str(&properties).unwrap_or(Value::String(properties)),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Error reports (`$exception` events) grouped by `$exception_fingerprint`, most
    /// frequent first: counts, installs, first and last seen, versions, and the newest
    /// report as an example.
    pub fn error_groups(&self, product: Option<&str>) -> Result<Vec<ErrorGroup>, Error> {
        let sql = "SELECT json_extract(properties, '$.\"$exception_fingerprint\"') AS fp,
                    COUNT(*) AS n, COUNT(DISTINCT distinct_id) AS installs,
                    MIN(received_at) AS first_seen, MAX(received_at) AS last_seen,
                    json_group_array(DISTINCT COALESCE(product_version, 'unknown')) AS versions,
                    SUM(COALESCE(json_extract(properties, '$.\"$exception_suppressed\"'), 0)) AS suppressed,
                    MAX(id) AS newest
             FROM events
             WHERE event = '$exception' AND (?1 IS NULL OR product = ?1)
             GROUP BY fp ORDER BY n DESC, last_seen DESC";
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([product], |r| {
            let versions: String = r.get("versions")?;
            Ok((
                ErrorGroup {
                    fingerprint: r
                        .get::<_, Option<String>>("fp")?
                        .unwrap_or_else(|| "unknown".into()),
                    count: r.get::<_, i64>("n")?.max(0) as u64,
                    installs: r.get::<_, i64>("installs")?.max(0) as u64,
                    first_seen: r.get("first_seen")?,
                    last_seen: r.get("last_seen")?,
                    versions: serde_json::from_str(&versions).unwrap_or_default(),
                    suppressed: r.get::<_, Option<i64>>("suppressed")?.unwrap_or(0).max(0) as u64,
                    example: Value::Null,
                },
                r.get::<_, i64>("newest")?,
            ))
        })?;
        let mut groups = Vec::new();
        for row in rows {
            let (mut group, newest) = row?;
            group.versions.sort();
            let properties: String = conn.query_row(
                "SELECT properties FROM events WHERE id = ?1",
                [newest],
                |r| r.get(0),
            )?;
            group.example = serde_json::from_str(&properties).unwrap_or(Value::String(properties));
            groups.push(group);
        }
        Ok(groups)
    }

    /// Totals, per event name, per product, version and OS, and distinct instances.
    pub fn summary(&self) -> Result<Summary, Error> {
        let conn = self.conn();
        let (events, batch_size_total, instances): (i64, i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(batch_size), 0), COUNT(DISTINCT distinct_id) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;

        let mut by_event = BTreeMap::new();
        let mut stmt = conn.prepare(
            "SELECT event, COUNT(*), COALESCE(SUM(batch_size), 0) FROM events GROUP BY event",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                EventCounts {
                    events: r.get::<_, i64>(1)? as u64,
                    batch_size_total: r.get(2)?,
                },
            ))
        })?;
        for row in rows {
            let (name, counts) = row?;
            by_event.insert(name, counts);
        }

        Ok(Summary {
            events: events as u64,
            batch_size_total,
            by_event,
            by_product: count_by(&conn, "product")?,
            by_product_version: count_by(&conn, "product_version")?,
            by_os: count_by(&conn, "os")?,
            instances: instances as u64,
        })
    }

    /// Deletes every event of instance `distinct_id`; returns how many were removed.
    pub fn delete_instance(&self, distinct_id: &str) -> Result<u64, Error> {
        let conn = self.conn();
        let n = conn.execute("DELETE FROM events WHERE distinct_id = ?1", [distinct_id])?;
        Ok(n as u64)
    }

    /// Whether an event with this uuid is stored.
    pub fn contains(&self, uuid: &str) -> Result<bool, Error> {
        let conn = self.conn();
        let found = conn
            .query_row("SELECT 1 FROM events WHERE uuid = ?1", [uuid], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }
}

/// Row counts grouped by one of the extracted columns (a fixed name, never user input).
fn count_by(conn: &Connection, column: &'static str) -> Result<BTreeMap<String, u64>, Error> {
    let sql = format!("SELECT COALESCE({column}, ?1), COUNT(*) FROM events GROUP BY 1");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([UNKNOWN], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    let mut map = BTreeMap::new();
    for row in rows {
        let (key, n) = row?;
        map.insert(key, n);
    }
    Ok(map)
}
