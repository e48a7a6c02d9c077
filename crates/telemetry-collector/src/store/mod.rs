//! Storage of received events: one interface ([`Store`]), two databases.
//!
//! - **SQLite** (a file path, or `":memory:"`): the embedded default, for one
//!   collector on one machine (`make demo`, tests, a small self-hosted install).
//! - **PostgreSQL** (`postgres://...` or `postgresql://...`): for several
//!   stateless collector processes behind a load balancer, all writing to one
//!   database.
//!
//! Both keep one row per event. The event's `uuid` is unique and rows go in with
//! "insert, or skip when the uuid is there", so a sender that retries a batch
//! after a timeout (its first attempt may have been stored, possibly by another
//! collector process) never double-counts.
//!
//! A few properties are copied into their own columns (`product`,
//! `product_version`, `os`, `batch_size`, and `day`, the UTC date of the
//! event's timestamp); the full properties object is kept as JSON next to
//! them. The summary and the stats views ([`crate::stats`]) are answered from
//! rollup tables maintained in the transaction that inserts or deletes the
//! events ([`crate::rollup`]), never by scanning the events. Timestamps are
//! RFC 3339 text in one fixed UTC format (`2024-05-01T10:00:01.456Z`): text
//! order is time order, and both databases return exactly what was written.
//!
//! Each database carries its schema as numbered migrations, applied in order
//! at open and recorded in `schema_migrations`; a database written by a newer
//! collector (a version this one does not know) is refused rather than misread.
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

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::ingest::Event;
use crate::stats::{
    CrashStats, EnvironmentStats, EventStats, IdStats, PropertyStats, StatsRange, UsageStats,
    VersionStats,
};

mod postgres;
mod rollups;
mod sqlite;
mod views;

/// Most rows one [`EventFilter`] (or `GET /api/events`) returns.
pub const MAX_LIMIT: usize = 10_000;

/// Rows returned when the filter names no limit.
pub const DEFAULT_LIMIT: usize = 100;

/// Key used in the summary's `by_*` maps for events without that property.
pub const UNKNOWN: &str = "unknown";

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

    /// The row limit to apply: [`DEFAULT_LIMIT`] when unset, at most [`MAX_LIMIT`].
    pub fn effective_limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT)
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

/// What storing one request's events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Events that were new and are now stored.
    pub stored: usize,
    /// Events whose uuid was already stored (a retried request), skipped.
    pub duplicates: usize,
}

/// The validated events of one request, with the time they were received.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The request's events, all stored or none.
    pub events: Vec<Event>,
    /// Receive time, RFC 3339 UTC with milliseconds (see [`crate::ingest::now_rfc3339`]).
    pub received_at: String,
}

/// What deleting one install removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Deleted {
    /// All rows of the install: plain events, usage reports and error reports.
    pub events: u64,
    /// Of those, usage reports (`usage_report` events).
    pub usage_reports: u64,
    /// Of those, error reports (`$exception` events).
    pub error_reports: u64,
}

/// Which database a [`Store`] writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A SQLite file, or an in-memory SQLite database.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// What each database implements. Calls block (both drivers are synchronous):
/// the server runs them on its group-commit thread or on tokio's blocking pool.
pub(crate) trait Backend: Send + Sync {
    /// Stores every batch in **one** transaction (one commit, one fsync) and
    /// returns what happened to each, in order. On error nothing is stored.
    /// The rollups get what the stored events (not the duplicates) add.
    fn insert_all(&self, batches: &[&Batch]) -> Result<Vec<Inserted>, Error>;
    fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, Error>;
    fn latest_usage_reports(&self, product: Option<&str>) -> Result<Vec<StoredEvent>, Error>;
    /// The newest usage report per install among those of the range's days.
    fn usage_reports_in(&self, range: &StatsRange) -> Result<Vec<StoredEvent>, Error>;
    /// Error groups, of the days `days` (inclusive) only when given.
    fn error_groups(
        &self,
        product: Option<&str>,
        days: Option<(&str, &str)>,
    ) -> Result<Vec<ErrorGroup>, Error>;
    /// Rows of a read-only query on the rollups, written once for both
    /// databases (see views.rs): `?N` placeholders, every argument text.
    fn view_rows(
        &self,
        sql: &str,
        args: &[Option<&str>],
        columns: &[Col],
    ) -> Result<Vec<Vec<Cell>>, Error>;
    /// Deletes the install's events and takes them out of the rollups.
    fn delete_instance(&self, distinct_id: &str) -> Result<Deleted, Error>;
    /// Deletes events received before `cutoff` (same text format as
    /// `received_at`), in chunks, each taken out of the rollups.
    fn delete_received_before(&self, cutoff: &str) -> Result<u64, Error>;
    fn contains(&self, uuid: &str) -> Result<bool, Error>;
    /// The newest migration applied.
    fn schema_version(&self) -> Result<u32, Error>;
}

/// The type of one column of a [`Backend::view_rows`] query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Text,
    Int,
    Real,
}

/// One value of a [`Backend::view_rows`] row (`Null` for SQL NULL).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Text(String),
    Int(i64),
    Real(f64),
    Null,
}

/// One step of a database's schema, applied once, in `version` order.
pub(crate) struct Migration {
    pub version: u32,
    /// Says what the step adds; stored beside the version.
    pub name: &'static str,
    pub sql: &'static str,
}

/// The events database, SQLite or PostgreSQL, shared by every request.
pub struct Store {
    backend: Box<dyn Backend>,
    kind: StoreKind,
}

impl Store {
    /// Opens the database `db`, creating or migrating its schema:
    /// `postgres://...` / `postgresql://...` is a PostgreSQL connection string
    /// (libpq's URL form, e.g. `postgres://user@localhost/telemetry` or with a
    /// socket directory, `postgres://user@%2Ftmp%2Fpg/telemetry`); anything else
    /// is a SQLite file path, `":memory:"` a private in-memory database.
    pub fn open(db: impl AsRef<Path>) -> Result<Store, Error> {
        let db = db.as_ref();
        if let Some(url) = db.to_str().filter(|s| is_postgres_url(s)) {
            return Self::open_postgres(url);
        }
        Ok(Store {
            backend: Box::new(sqlite::SqliteBackend::open(db)?),
            kind: StoreKind::Sqlite,
        })
    }

    fn open_postgres(url: &str) -> Result<Store, Error> {
        Ok(Store {
            backend: Box::new(postgres::PostgresBackend::open(url)?),
            kind: StoreKind::Postgres,
        })
    }

    /// Which database this is.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Stores `events` in one transaction: all of them or, on error, none.
    /// Events whose uuid is already present are skipped and counted as duplicates.
    pub fn insert(&self, events: &[Event], received_at: &str) -> Result<Inserted, Error> {
        let batch = Batch {
            events: events.to_vec(),
            received_at: received_at.to_owned(),
        };
        let mut results = self.backend.insert_all(&[&batch])?;
        Ok(results.pop().unwrap_or_default())
    }

    /// Stores several requests' batches in one transaction (the group commit).
    pub fn insert_all(&self, batches: &[&Batch]) -> Result<Vec<Inserted>, Error> {
        self.backend.insert_all(batches)
    }

    /// The newest events matching `filter`, returned oldest first (arrival order),
    /// so the last element is the most recent.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, Error> {
        self.backend.events(filter)
    }

    /// The newest usage report (event `usage_report`) of each install, optionally of one
    /// product only, ordered by arrival.
    pub fn latest_usage_reports(&self, product: Option<&str>) -> Result<Vec<StoredEvent>, Error> {
        self.backend.latest_usage_reports(product)
    }

    /// Error reports (`$exception` events) grouped by `$exception_fingerprint`, most
    /// frequent first (then the most recently seen, then by fingerprint): counts,
    /// installs, first and last seen, versions, and the newest report as an example.
    pub fn error_groups(&self, product: Option<&str>) -> Result<Vec<ErrorGroup>, Error> {
        self.backend.error_groups(product, None)
    }

    /// Totals, per event name, per product, version and OS, and distinct instances,
    /// read from the rollups (`daily_events`, `installs`), not from the events.
    pub fn summary(&self) -> Result<Summary, Error> {
        views::summary(&*self.backend)
    }

    /// Deletes everything of install `distinct_id`: its events, usage reports and
    /// error reports, and its share of every rollup (in the same transaction), so
    /// every view answers as if it had never sent anything.
    pub fn delete_instance(&self, distinct_id: &str) -> Result<Deleted, Error> {
        self.backend.delete_instance(distinct_id)
    }

    /// Deletes events received before `cutoff` (RFC 3339 UTC, the `received_at`
    /// format); returns how many.
    pub fn delete_received_before(&self, cutoff: &str) -> Result<u64, Error> {
        self.backend.delete_received_before(cutoff)
    }

    /// Every product with a stored install, sorted.
    ///
    /// ```
    /// # use telemetry_collector::{ingest, Store};
    /// let store = Store::open(":memory:").unwrap();
    /// let body = br#"{"api_key": "k", "batch": [
    ///     {"event": "start", "distinct_id": "i1", "properties": {"product": "qdrant"}},
    ///     {"event": "start", "distinct_id": "i2", "properties": {"product": "chroma"}}]}"#;
    /// let events = ingest::parse(ingest::Endpoint::Batch, body, None).unwrap();
    /// store.insert(&events, &ingest::now_rfc3339()).unwrap();
    /// assert_eq!(store.products().unwrap(), ["chroma", "qdrant"]);
    /// ```
    pub fn products(&self) -> Result<Vec<String>, Error> {
        views::products(&*self.backend)
    }

    /// Active and new distinct ids per day and week of `range`
    /// (`daily_installs`, `installs`).
    ///
    /// ```
    /// # use telemetry_collector::{ingest, Store, stats::StatsRange};
    /// let store = Store::open(":memory:").unwrap();
    /// let body = br#"{"api_key": "k", "batch": [
    ///     {"event": "start", "distinct_id": "i1", "timestamp": "2024-05-01T10:00:00Z"},
    ///     {"event": "start", "distinct_id": "i1", "timestamp": "2024-05-02T10:00:00Z"},
    ///     {"event": "start", "distinct_id": "i2", "timestamp": "2024-05-02T11:00:00Z"}]}"#;
    /// let events = ingest::parse(ingest::Endpoint::Batch, body, None).unwrap();
    /// store.insert(&events, &ingest::now_rfc3339()).unwrap();
    /// let ids = store.id_stats(&StatsRange::between("2024-05-02", "2024-05-02").unwrap()).unwrap();
    /// assert_eq!((ids.active_in_range, ids.daily[0].active, ids.daily[0].new), (2, 2, 1));
    /// ```
    pub fn id_stats(&self, range: &StatsRange) -> Result<IdStats, Error> {
        views::id_stats(&*self.backend, range)
    }

    /// Product versions of the installs active in `range`: by the newest event
    /// of each install in the range (its last day there), and per day.
    pub fn version_stats(&self, range: &StatsRange) -> Result<VersionStats, Error> {
        views::version_stats(&*self.backend, range)
    }

    /// Where the installs active in `range` run (their newest event's
    /// environment, from `installs`).
    pub fn environment_stats(&self, range: &StatsRange) -> Result<EnvironmentStats, Error> {
        views::environment_stats(&*self.backend, range)
    }

    /// Events per name over `range` and per day (`daily_events`).
    ///
    /// ```
    /// # use telemetry_collector::{ingest, Store, stats::StatsRange};
    /// let store = Store::open(":memory:").unwrap();
    /// let body = br#"{"api_key": "k", "batch": [
    ///     {"event": "query", "distinct_id": "i1", "timestamp": "2024-05-01T10:00:00Z",
    ///      "properties": {"batch_size": 5}}]}"#;
    /// let events = ingest::parse(ingest::Endpoint::Batch, body, None).unwrap();
    /// store.insert(&events, &ingest::now_rfc3339()).unwrap();
    /// let stats = store.event_stats(&StatsRange::days_ending("2024-05-01", 7).unwrap()).unwrap();
    /// assert_eq!((stats.totals[0].events, stats.totals[0].occurrences), (1, 5));
    /// ```
    pub fn event_stats(&self, range: &StatsRange) -> Result<EventStats, Error> {
        views::event_stats(&*self.backend, range)
    }

    /// The properties of `event` in `range` and, for `property`, its values and
    /// (when numeric) its sum per day (`daily_properties`).
    ///
    /// ```
    /// # use telemetry_collector::{ingest, Store, stats::StatsRange};
    /// let store = Store::open(":memory:").unwrap();
    /// let body = br#"{"api_key": "k", "batch": [
    ///     {"event": "add", "distinct_id": "i1", "timestamp": "2024-05-01T10:00:00Z",
    ///      "properties": {"amount": 10, "kind": "text"}},
    ///     {"event": "add", "distinct_id": "i1", "timestamp": "2024-05-01T11:00:00Z",
    ///      "properties": {"amount": 5, "kind": "image"}}]}"#;
    /// let events = ingest::parse(ingest::Endpoint::Batch, body, None).unwrap();
    /// store.insert(&events, &ingest::now_rfc3339()).unwrap();
    /// let range = StatsRange::days_ending("2024-05-01", 1).unwrap();
    /// let stats = store.property_stats(&range, "add", Some("amount")).unwrap();
    /// assert_eq!(stats.properties, ["amount", "kind"]);
    /// assert_eq!(stats.daily_sums[0].sum, 15.0);
    /// ```
    pub fn property_stats(
        &self,
        range: &StatsRange,
        event: &str,
        property: Option<&str>,
    ) -> Result<PropertyStats, Error> {
        views::property_stats(&*self.backend, range, event, property)
    }

    /// The newest usage report (by arrival) of each install among the reports
    /// of `range`'s days, and the operations across them.
    pub fn usage_stats(&self, range: &StatsRange) -> Result<UsageStats, Error> {
        Ok(UsageStats::from_reports(
            self.backend.usage_reports_in(range)?,
        ))
    }

    /// Error reports of `range`'s days grouped by fingerprint, as
    /// [`Store::error_groups`] groups them all.
    pub fn crash_stats(&self, range: &StatsRange) -> Result<CrashStats, Error> {
        let groups = self
            .backend
            .error_groups(range.product.as_deref(), Some((&range.from, &range.to)))?;
        Ok(CrashStats {
            reports: groups.iter().map(|g| g.count).sum(),
            groups,
        })
    }

    /// Whether an event with this uuid is stored.
    pub fn contains(&self, uuid: &str) -> Result<bool, Error> {
        self.backend.contains(uuid)
    }

    /// The newest schema migration applied to this database.
    pub fn schema_version(&self) -> Result<u32, Error> {
        self.backend.schema_version()
    }
}

pub(crate) use postgres::is_transient as postgres_is_transient;
pub(crate) use sqlite::is_transient as sqlite_is_transient;

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Parses a stored properties text back into JSON. We wrote it ourselves from a
/// JSON object; should someone edit the database by hand, the raw text is shown
/// rather than the query failing.
pub(crate) fn properties_value(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}
