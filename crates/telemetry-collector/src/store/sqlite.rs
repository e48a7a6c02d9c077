//! The SQLite store: the embedded default.
//!
//! Two connections to one WAL-mode file: the writer (the group-commit thread's
//! transactions) and a reader (the `/api/*` queries), so a slow summary never
//! holds up an ingest commit. An in-memory database has one connection for
//! both, as a second one would open a different database.
//!
//! `synchronous` stays at SQLite's default (FULL): every commit is fsynced, so a
//! 200 means the events are on disk, even across a power cut. Group commit is
//! what makes that affordable: one commit, one fsync, for every request that
//! arrived while the previous one was being written.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OptionalExtension};
use serde_json::Value;

use super::rollups::{self, RollupTx};
use super::{
    properties_value, Backend, Batch, Cell, Col, Deleted, ErrorGroup, EventFilter, Inserted,
    Migration, StoredEvent, UNKNOWN,
};
use crate::error::Error;
use crate::ingest::Event;
use crate::rollup::{stored_as_event, when, DailyInstall, Delta, Install};
use crate::stats::StatsRange;

/// The schema, step by step. Version 1 is the table every collector before
/// migrations created (hence `IF NOT EXISTS`: such a database is adopted as is).
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events table",
        sql: "
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
",
    },
    Migration {
        version: 2,
        name: "index for retention",
        sql: "CREATE INDEX IF NOT EXISTS events_received_at ON events(received_at);",
    },
    // Rows stored before it are added to the rollups by `backfill`, in the
    // migration's transaction.
    Migration {
        version: 3,
        name: "rollup tables",
        sql: "
ALTER TABLE events ADD COLUMN day TEXT;
CREATE INDEX events_event_day ON events(event, day);
DROP INDEX IF EXISTS events_event;
DROP INDEX IF EXISTS events_distinct_id;
CREATE INDEX events_distinct_id_day ON events(distinct_id, day);
CREATE TABLE daily_installs (
    day             TEXT    NOT NULL,
    product         TEXT    NOT NULL,
    distinct_id     TEXT    NOT NULL,
    week            TEXT    NOT NULL,
    product_version TEXT    NOT NULL,
    last_seen       TEXT    NOT NULL,
    events          INTEGER NOT NULL,
    PRIMARY KEY (day, product, distinct_id)
) WITHOUT ROWID;
CREATE INDEX daily_installs_install ON daily_installs(product, distinct_id, day);
CREATE TABLE installs (
    product         TEXT NOT NULL,
    distinct_id     TEXT NOT NULL,
    first_day       TEXT NOT NULL,
    last_day        TEXT NOT NULL,
    last_seen       TEXT NOT NULL,
    product_version TEXT NOT NULL,
    os              TEXT NOT NULL,
    arch            TEXT NOT NULL,
    runtime         TEXT NOT NULL,
    in_container    TEXT NOT NULL,
    in_ci           TEXT NOT NULL,
    in_jupyter      TEXT NOT NULL,
    PRIMARY KEY (product, distinct_id)
) WITHOUT ROWID;
CREATE INDEX installs_first_day ON installs(distinct_id, first_day);
CREATE TABLE daily_events (
    day             TEXT    NOT NULL,
    product         TEXT    NOT NULL,
    product_version TEXT    NOT NULL,
    os              TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    events          INTEGER NOT NULL,
    occurrences     INTEGER NOT NULL,
    PRIMARY KEY (day, product, product_version, os, event)
) WITHOUT ROWID;
CREATE TABLE daily_properties (
    day         TEXT    NOT NULL,
    product     TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    property    TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    events      INTEGER NOT NULL,
    occurrences INTEGER NOT NULL,
    total       REAL    NOT NULL,
    PRIMARY KEY (day, product, event, property, value)
) WITHOUT ROWID;
CREATE INDEX daily_properties_event ON daily_properties(event, property, day);
",
    },
];

/// The migration that adds the rollups (and backfills them from older rows).
const ROLLUPS: u32 = 3;

/// Columns `events` queries read, in [`stored_event`]'s order.
const EVENT_COLUMNS: &str = "uuid, event, distinct_id, timestamp, received_at, properties";

pub(crate) struct SqliteBackend {
    writer: Mutex<Connection>,
    /// `None` for an in-memory database: reads go through the writer.
    reader: Option<Mutex<Connection>>,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub(crate) fn open(path: &Path) -> Result<SqliteBackend, Error> {
        let in_memory = path.as_os_str() == ":memory:";
        let mut writer = connect(path)?;
        // 64 MiB of page cache for the writer (SQLite's default is 2 MiB): the
        // uuid index's pages stay in memory instead of being read back for each
        // commit. And a checkpoint every 10,000 WAL pages (~40 MiB) instead of
        // 1,000: a page rewritten by many commits meanwhile (the table's and
        // indexes' right edges) is copied into the database once. Together
        // 1.3-1.6x the insert rate (benches/ingest.rs: 45k -> 74-79k events/s).
        writer.execute_batch("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 10000")?;
        migrate(&mut writer)?;
        let reader = if in_memory {
            None
        } else {
            Some(Mutex::new(connect(path)?))
        };
        Ok(SqliteBackend {
            writer: Mutex::new(writer),
            reader,
        })
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.as_ref().map_or_else(|| self.writer(), lock)
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while the lock was held cannot leave a half-done write behind: the
    // transaction guard rolls back when dropped during unwinding. So the
    // connection is still good and poisoning can be ignored.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn connect(path: &Path) -> Result<Connection, Error> {
    let conn = Connection::open(path)?;
    // Another process (a `sqlite3` shell, a second collector) may hold the write
    // lock for a moment; wait instead of failing the request.
    conn.busy_timeout(Duration::from_secs(5))?;
    // journal_mode answers with a row, so it must be queried, not executed. An
    // in-memory database answers "memory"; that is fine.
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), Error> {
    // IMMEDIATE: two collectors opening one new file at once migrate one after
    // the other, and the second sees the first one's versions.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )?;
    let current: u32 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let newest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > newest {
        return Err(Error::Config(format!(
            "the database's schema is version {current}, newer than this collector knows \
             ({newest}); run a newer collector"
        )));
    }
    for step in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(step.sql)?;
        if step.version == ROLLUPS {
            backfill(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![step.version, step.name, crate::ingest::now_rfc3339()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn stored_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        uuid: r.get(0)?,
        event: r.get(1)?,
        distinct_id: r.get(2)?,
        timestamp: r.get(3)?,
        received_at: r.get(4)?,
        properties: properties_value(r.get(5)?),
    })
}

impl Backend for SqliteBackend {
    fn insert_all(&self, batches: &[&Batch]) -> Result<Vec<Inserted>, Error> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let mut results = Vec::with_capacity(batches.len());
        let mut delta = Delta::inserting();
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (uuid, event, distinct_id, timestamp, received_at,
                     api_key_hash, properties, product, product_version, os, batch_size, day)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for batch in batches {
                let mut inserted = Inserted::default();
                for e in &batch.events {
                    let properties =
                        serde_json::to_string(&e.properties).unwrap_or_else(|_| "{}".into());
                    let timestamp = e.timestamp.as_deref().unwrap_or(&batch.received_at);
                    let at = when(timestamp, &batch.received_at);
                    let changed = stmt.execute(params![
                        e.uuid,
                        e.event,
                        e.distinct_id,
                        timestamp,
                        batch.received_at,
                        e.api_key_hash,
                        properties,
                        e.product(),
                        e.product_version(),
                        e.os(),
                        e.batch_size(),
                        at.day,
                    ])?;
                    // 0: the uuid is there already; not counted again.
                    if changed == 1 {
                        inserted.stored += 1;
                        delta.add_at(e, &at);
                    } else {
                        inserted.duplicates += 1;
                    }
                }
                results.push(inserted);
            }
        }
        Tx(&tx).apply(&delta)?;
        tx.commit()?;
        Ok(results)
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, Error> {
        let limit = filter.effective_limit();
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
            "SELECT {EVENT_COLUMNS} FROM (
                 SELECT id, {EVENT_COLUMNS} FROM events {where_clause} ORDER BY id DESC LIMIT {limit}
             ) ORDER BY id ASC"
        );
        let conn = self.reader();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), stored_event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn latest_usage_reports(&self, product: Option<&str>) -> Result<Vec<StoredEvent>, Error> {
        let sql = "SELECT e.uuid, e.event, e.distinct_id, e.timestamp, e.received_at, e.properties
             FROM events e
             JOIN (SELECT distinct_id, MAX(id) AS id FROM events
                   WHERE event = 'usage_report' AND (?1 IS NULL OR product = ?1)
                   GROUP BY distinct_id) latest ON e.id = latest.id
             ORDER BY e.id ASC";
        let conn = self.reader();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([product], stored_event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn usage_reports_in(&self, range: &StatsRange) -> Result<Vec<StoredEvent>, Error> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id IN (
                 SELECT MAX(id) FROM events
                 WHERE event = 'usage_report' AND day BETWEEN ?1 AND ?2
                   AND (?3 IS NULL OR COALESCE(product, 'unknown') = ?3)
                 GROUP BY distinct_id)
             ORDER BY id ASC"
        );
        let conn = self.reader();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![range.from, range.to, range.product], stored_event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn error_groups(
        &self,
        product: Option<&str>,
        days: Option<(&str, &str)>,
    ) -> Result<Vec<ErrorGroup>, Error> {
        // The fingerprint as text whatever JSON type a sender used (123 and
        // "123" are one group, as PostgreSQL's `->>` reads them); suppressed
        // counts summed only where they are JSON numbers, as in PostgreSQL.
        // With days (the dashboard's crash view), a product of `unknown` is
        // also the events without one, as in every view of the rollups.
        let (of_product, in_days) = if days.is_some() {
            (
                "(?1 IS NULL OR COALESCE(product, 'unknown') = ?1)",
                "AND day BETWEEN ?2 AND ?3",
            )
        } else {
            (
                "(?1 IS NULL OR product = ?1)",
                "AND ?2 IS NULL AND ?3 IS NULL",
            )
        };
        let sql = format!("SELECT CAST(json_extract(properties, '$.\"$exception_fingerprint\"') AS TEXT) AS fp,
                    COUNT(*) AS n, COUNT(DISTINCT distinct_id) AS installs,
                    MIN(received_at) AS first_seen, MAX(received_at) AS last_seen,
                    json_group_array(DISTINCT COALESCE(product_version, 'unknown')) AS versions,
                    CAST(SUM(CASE WHEN json_type(properties, '$.\"$exception_suppressed\"') IN ('integer', 'real')
                        THEN MAX(0, MIN(json_extract(properties, '$.\"$exception_suppressed\"'), 9000000000000000000))
                        ELSE 0 END) AS INTEGER) AS suppressed,
                    MAX(id) AS newest
             FROM events
             WHERE event = '$exception' AND {of_product} {in_days}
             GROUP BY fp ORDER BY n DESC, last_seen DESC, COALESCE(fp, 'unknown') ASC");
        let conn = self.reader();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(
            params![product, days.map(|d| d.0), days.map(|d| d.1)],
            |r| {
                let versions: String = r.get("versions")?;
                Ok((
                    ErrorGroup {
                        fingerprint: r
                            .get::<_, Option<String>>("fp")?
                            .unwrap_or_else(|| UNKNOWN.into()),
                        count: r.get::<_, i64>("n")?.max(0) as u64,
                        installs: r.get::<_, i64>("installs")?.max(0) as u64,
                        first_seen: r.get("first_seen")?,
                        last_seen: r.get("last_seen")?,
                        versions: serde_json::from_str(&versions).unwrap_or_default(),
                        suppressed: r.get::<_, Option<i64>>("suppressed")?.unwrap_or(0).max(0)
                            as u64,
                        example: Value::Null,
                    },
                    r.get::<_, i64>("newest")?,
                ))
            },
        )?;
        let mut groups = Vec::new();
        for row in rows {
            let (mut group, newest) = row?;
            group.versions.sort();
            let properties: String = conn.query_row(
                "SELECT properties FROM events WHERE id = ?1",
                [newest],
                |r| r.get(0),
            )?;
            group.example = properties_value(properties);
            groups.push(group);
        }
        Ok(groups)
    }

    fn view_rows(
        &self,
        sql: &str,
        args: &[Option<&str>],
        columns: &[Col],
    ) -> Result<Vec<Vec<Cell>>, Error> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            columns
                .iter()
                .enumerate()
                .map(|(i, column)| {
                    Ok(match (column, r.get_ref(i)?) {
                        (_, ValueRef::Null) => Cell::Null,
                        (Col::Text, _) => Cell::Text(r.get(i)?),
                        (Col::Int, _) => Cell::Int(r.get(i)?),
                        (Col::Real, _) => Cell::Real(r.get(i)?),
                    })
                })
                .collect()
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_instance(&self, distinct_id: &str) -> Result<Deleted, Error> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let mut removed = Delta::removing();
        let (mut usage_reports, mut error_reports) = (0, 0);
        {
            let mut stmt = tx.prepare(
                "SELECT event, distinct_id, timestamp, received_at, properties
                 FROM events WHERE distinct_id = ?1",
            )?;
            let mut rows = stmt.query([distinct_id])?;
            while let Some(r) = rows.next()? {
                let (e, received_at) = event_row(r)?;
                usage_reports += u64::from(e.event == "usage_report");
                error_reports += u64::from(e.event == "$exception");
                removed.add(&e, &received_at);
            }
        }
        let events = tx.execute("DELETE FROM events WHERE distinct_id = ?1", [distinct_id])?;
        let mut rollups = Tx(&tx);
        rollups.apply(&removed)?;
        rollups::forget(&mut rollups, &removed)?;
        tx.commit()?;
        Ok(Deleted {
            events: events as u64,
            usage_reports,
            error_reports,
        })
    }

    fn delete_received_before(&self, cutoff: &str) -> Result<u64, Error> {
        let mut conn = self.writer();
        let mut deleted = 0;
        loop {
            // One transaction per chunk: the writer is not held for long, and
            // each commit leaves the rollups exact.
            let tx = conn.transaction()?;
            let mut removed = Delta::removing();
            let mut ids = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT event, distinct_id, timestamp, received_at, properties, id
                     FROM events WHERE received_at < ?1 LIMIT ?2",
                )?;
                let mut rows = stmt.query(params![cutoff, rollups::CHUNK as i64])?;
                while let Some(r) = rows.next()? {
                    let (e, received_at) = event_row(r)?;
                    removed.add(&e, &received_at);
                    ids.push(r.get::<_, i64>(5)?);
                }
            }
            if ids.is_empty() {
                return Ok(deleted);
            }
            {
                let mut stmt = tx.prepare_cached("DELETE FROM events WHERE id = ?1")?;
                for id in &ids {
                    stmt.execute([id])?;
                }
            }
            let mut rollups = Tx(&tx);
            rollups.apply(&removed)?;
            rollups::recompute(&mut rollups, &removed)?;
            tx.commit()?;
            deleted += ids.len() as u64;
        }
    }

    fn contains(&self, uuid: &str) -> Result<bool, Error> {
        let conn = self.reader();
        let found = conn
            .query_row("SELECT 1 FROM events WHERE uuid = ?1", [uuid], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }

    fn schema_version(&self) -> Result<u32, Error> {
        let conn = self.reader();
        Ok(conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?)
    }
}

/// An events row read as `event, distinct_id, timestamp, received_at,
/// properties` back into an [`Event`] and its receive time.
fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Event, String)> {
    let properties: String = r.get(4)?;
    let e = stored_as_event(
        &r.get::<_, String>(0)?,
        &r.get::<_, String>(1)?,
        &r.get::<_, String>(2)?,
        properties_value(properties),
    );
    Ok((e, r.get(3)?))
}

/// Adds every event stored before the rollups existed (migration 3) to them,
/// and sets its `day`, chunk by chunk in the migration's transaction.
fn backfill(conn: &Connection) -> Result<(), Error> {
    let mut after = 0i64;
    loop {
        let mut delta = Delta::inserting();
        let mut days = Vec::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT event, distinct_id, timestamp, received_at, properties, id
                 FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after, rollups::CHUNK as i64])?;
            while let Some(r) = rows.next()? {
                let (e, received_at) = event_row(r)?;
                let at = when(e.timestamp.as_deref().unwrap_or(&received_at), &received_at);
                delta.add_at(&e, &at);
                days.push((r.get::<_, i64>(5)?, at.day));
            }
        }
        let Some(&(last, _)) = days.last() else {
            return Ok(());
        };
        {
            let mut stmt = conn.prepare_cached("UPDATE events SET day = ?2 WHERE id = ?1")?;
            for (id, day) in &days {
                stmt.execute(params![id, day])?;
            }
        }
        Tx(conn).apply(&delta)?;
        after = last;
    }
}

/// The rollup writes of one SQLite transaction.
struct Tx<'a>(&'a Connection);

impl RollupTx for Tx<'_> {
    fn apply(&mut self, delta: &Delta) -> Result<(), Error> {
        let conn = self.0;
        if delta.sign() > 0 {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO daily_installs (day, product, distinct_id, week, product_version,
                     last_seen, events)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (day, product, distinct_id) DO UPDATE SET
                     events = events + excluded.events,
                     product_version = CASE WHEN excluded.last_seen >= last_seen
                         THEN excluded.product_version ELSE product_version END,
                     last_seen = max(last_seen, excluded.last_seen)",
            )?;
            for d in delta.daily_installs() {
                stmt.execute(params![
                    d.day,
                    d.product,
                    d.distinct_id,
                    d.week,
                    d.product_version,
                    d.last_seen,
                    d.events
                ])?;
            }
            let mut stmt = conn.prepare_cached(
                "INSERT INTO installs (product, distinct_id, first_day, last_day, last_seen,
                     product_version, os, arch, runtime, in_container, in_ci, in_jupyter)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (product, distinct_id) DO UPDATE SET
                     first_day = min(first_day, excluded.first_day),
                     last_day = max(last_day, excluded.last_day),
                     product_version = CASE WHEN excluded.last_seen >= last_seen
                         THEN excluded.product_version ELSE product_version END,
                     os = CASE WHEN excluded.last_seen >= last_seen
                         THEN excluded.os ELSE os END,
                     arch = CASE WHEN excluded.last_seen >= last_seen
                         THEN excluded.arch ELSE arch END,
                     runtime = CASE WHEN excluded.last_seen >= last_seen
                         THEN excluded.runtime ELSE runtime END,
                     in_container = CASE WHEN excluded.last_seen >= last_seen
                         THEN excluded.in_container ELSE in_container END,
                     in_ci = CASE WHEN excluded.last_seen >= last_seen
                         THEN excluded.in_ci ELSE in_ci END,
                     in_jupyter = CASE WHEN excluded.last_seen >= last_seen
                         THEN excluded.in_jupyter ELSE in_jupyter END,
                     last_seen = max(last_seen, excluded.last_seen)",
            )?;
            for i in delta.installs() {
                put_install(&mut stmt, i)?;
            }
        }
        let mut stmt = conn.prepare_cached(
            "INSERT INTO daily_events (day, product, product_version, os, event, events,
                 occurrences)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (day, product, product_version, os, event) DO UPDATE SET
                 events = events + excluded.events,
                 occurrences = occurrences + excluded.occurrences",
        )?;
        for d in delta.daily_events() {
            stmt.execute(params![
                d.day,
                d.product,
                d.product_version,
                d.os,
                d.event,
                d.events,
                d.occurrences
            ])?;
        }
        let mut stmt = conn.prepare_cached(
            "INSERT INTO daily_properties (day, product, event, property, value, events,
                 occurrences, total)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (day, product, event, property, value) DO UPDATE SET
                 events = events + excluded.events,
                 occurrences = occurrences + excluded.occurrences,
                 total = total + excluded.total",
        )?;
        for p in delta.daily_properties() {
            stmt.execute(params![
                p.day,
                p.product,
                p.event,
                p.property,
                p.value,
                p.events,
                p.occurrences,
                p.total
            ])?;
        }
        if delta.sign() < 0 {
            let mut stmt = conn.prepare_cached(
                "DELETE FROM daily_events WHERE day = ?1 AND product = ?2
                     AND product_version = ?3 AND os = ?4 AND event = ?5 AND events <= 0",
            )?;
            for d in delta.daily_events() {
                stmt.execute(params![d.day, d.product, d.product_version, d.os, d.event])?;
            }
            let mut stmt = conn.prepare_cached(
                "DELETE FROM daily_properties WHERE day = ?1 AND product = ?2
                     AND event = ?3 AND property = ?4 AND value = ?5 AND events <= 0",
            )?;
            for p in delta.daily_properties() {
                stmt.execute(params![p.day, p.product, p.event, p.property, p.value])?;
            }
        }
        Ok(())
    }

    fn events_of(
        &mut self,
        distinct_id: &str,
        day: &str,
        product: &str,
    ) -> Result<Vec<(Event, String)>, Error> {
        let mut stmt = self.0.prepare_cached(
            "SELECT event, distinct_id, timestamp, received_at, properties FROM events
             WHERE distinct_id = ?1 AND day = ?2 AND COALESCE(product, 'unknown') = ?3
             ORDER BY id",
        )?;
        let rows = stmt.query_map(params![distinct_id, day, product], event_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn install_days(
        &mut self,
        product: &str,
        distinct_id: &str,
    ) -> Result<Option<(String, String)>, Error> {
        let days: (Option<String>, Option<String>) = self.0.query_row(
            "SELECT MIN(day), MAX(day) FROM daily_installs WHERE product = ?1 AND distinct_id = ?2",
            params![product, distinct_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(days.0.zip(days.1))
    }

    fn put_daily_install(
        &mut self,
        key: &DailyInstall,
        row: Option<&DailyInstall>,
    ) -> Result<(), Error> {
        match row {
            None => {
                self.0
                    .prepare_cached(
                        "DELETE FROM daily_installs
                         WHERE day = ?1 AND product = ?2 AND distinct_id = ?3",
                    )?
                    .execute(params![key.day, key.product, key.distinct_id])?;
            }
            Some(d) => {
                self.0
                    .prepare_cached(
                        "INSERT OR REPLACE INTO daily_installs (day, product, distinct_id, week,
                             product_version, last_seen, events)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        d.day,
                        d.product,
                        d.distinct_id,
                        d.week,
                        d.product_version,
                        d.last_seen,
                        d.events
                    ])?;
            }
        }
        Ok(())
    }

    fn put_install(&mut self, key: &Install, row: Option<&Install>) -> Result<(), Error> {
        match row {
            None => {
                self.0
                    .prepare_cached("DELETE FROM installs WHERE product = ?1 AND distinct_id = ?2")?
                    .execute(params![key.product, key.distinct_id])?;
            }
            Some(i) => {
                let mut stmt = self.0.prepare_cached(
                    "INSERT OR REPLACE INTO installs (product, distinct_id, first_day, last_day,
                         last_seen, product_version, os, arch, runtime, in_container, in_ci,
                         in_jupyter)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?;
                put_install(&mut stmt, i)?;
            }
        }
        Ok(())
    }
}

fn put_install(stmt: &mut rusqlite::CachedStatement<'_>, i: &Install) -> Result<(), Error> {
    stmt.execute(params![
        i.product,
        i.distinct_id,
        i.first_day,
        i.last_day,
        i.last_seen,
        i.product_version,
        i.os,
        i.arch,
        i.runtime,
        i.in_container,
        i.in_ci,
        i.in_jupyter
    ])?;
    Ok(())
}

/// Whether a SQLite failure is one a retry can get past (the file is locked
/// by another process, or the disk is full), so the sender is told 503.
pub(crate) fn is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::DiskFull)
    )
}
