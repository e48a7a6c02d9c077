//! The PostgreSQL store: for several stateless collectors on one database.
//!
//! Each collector process holds two connections (the group-commit writer and a
//! reader for `/api/*`), each reopened on the next call after it broke, so a
//! database restart is a few 503s (which senders retry), not a dead collector.
//!
//! One group commit is one `INSERT ... SELECT FROM unnest(...)` of every event of
//! every request in the group, `ON CONFLICT (uuid) DO NOTHING RETURNING uuid`:
//! one round trip and one commit however many events, and an event stored by
//! another collector (a sender's retry that landed elsewhere) is skipped there.
//!
//! Connections are plain (no TLS to the database): a collector and its database
//! sit on one private network or machine. The URL is libpq's form, e.g.
//! `postgres://telemetry@db.internal/telemetry` or, over a unix socket,
//! `postgres://postgres@%2Frun%2Fpostgresql/telemetry`.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls};

use super::rollups::{self, RollupTx};
use super::{
    properties_value, Backend, Batch, Cell, Col, Deleted, ErrorGroup, EventFilter, Inserted,
    Migration, StoredEvent,
};
use crate::error::Error;
use crate::ingest::Event;
use crate::rollup::{
    stored_as_event, when, DailyEvent, DailyInstall, DailyProperty, Delta, Install,
};
use crate::stats::StatsRange;

/// Any fixed number: the advisory lock collectors take while migrating, so two
/// starting at once apply each step once.
const MIGRATION_LOCK: i64 = 0x7465_6c65_6d65_7472;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events table",
        sql: "
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
",
    },
    Migration {
        version: 2,
        name: "index for retention",
        sql: "CREATE INDEX events_received_at ON events(received_at);",
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
    day             TEXT   NOT NULL,
    product         TEXT   NOT NULL,
    distinct_id     TEXT   NOT NULL,
    week            TEXT   NOT NULL,
    product_version TEXT   NOT NULL,
    last_seen       TEXT   NOT NULL,
    events          BIGINT NOT NULL,
    PRIMARY KEY (day, product, distinct_id)
);
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
);
CREATE INDEX installs_first_day ON installs(distinct_id, first_day);
CREATE TABLE daily_events (
    day             TEXT   NOT NULL,
    product         TEXT   NOT NULL,
    product_version TEXT   NOT NULL,
    os              TEXT   NOT NULL,
    event           TEXT   NOT NULL,
    events          BIGINT NOT NULL,
    occurrences     BIGINT NOT NULL,
    PRIMARY KEY (day, product, product_version, os, event)
);
CREATE TABLE daily_properties (
    day         TEXT             NOT NULL,
    product     TEXT             NOT NULL,
    event       TEXT             NOT NULL,
    property    TEXT             NOT NULL,
    value       TEXT             NOT NULL,
    events      BIGINT           NOT NULL,
    occurrences BIGINT           NOT NULL,
    total       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (day, product, event, property, value)
);
CREATE INDEX daily_properties_event ON daily_properties(event, property, day);
",
    },
];

/// The migration that adds the rollups (and backfills them from older rows).
const ROLLUPS: u32 = 3;

/// Columns the `events` queries read, in [`stored_event`]'s order.
const EVENT_COLUMNS: &str =
    "uuid::text, event, distinct_id, timestamp, received_at, properties::text";

pub(crate) struct PostgresBackend {
    config: postgres::Config,
    writer: Mutex<Option<Client>>,
    reader: Mutex<Option<Client>>,
}

impl PostgresBackend {
    /// Connects to `url` and migrates the schema. Fails (rather than retrying)
    /// when the database cannot be reached: a collector that starts against a
    /// wrong URL should say so at once.
    pub(crate) fn open(url: &str) -> Result<PostgresBackend, Error> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| Error::Config(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("telemetry-collector");
        let mut client = config.connect(NoTls)?;
        migrate(&mut client)?;
        Ok(PostgresBackend {
            config,
            writer: Mutex::new(Some(client)),
            reader: Mutex::new(None),
        })
    }

    /// Runs `f` on the connection in `slot`, connecting first when there is none.
    /// A connection that failed in a way a reconnect can cure is dropped, so the
    /// next call opens a fresh one.
    fn with<T>(
        &self,
        slot: &Mutex<Option<Client>>,
        f: impl FnOnce(&mut Client) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut slot: MutexGuard<'_, Option<Client>> =
            slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = Some(self.config.connect(NoTls)?);
        }
        let client = slot.as_mut().expect("connected just above");
        let result = f(client);
        if let Err(e) = &result {
            if e.is_transient() || client.is_closed() {
                *slot = None;
            }
        }
        result
    }

    fn write<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, Error>) -> Result<T, Error> {
        self.with(&self.writer, f)
    }

    fn read<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, Error>) -> Result<T, Error> {
        self.with(&self.reader, f)
    }
}

fn migrate(client: &mut Client) -> Result<(), Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    let current = current.max(0) as u32;
    let newest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > newest {
        return Err(Error::Config(format!(
            "the database's schema is version {current}, newer than this collector knows \
             ({newest}); run a newer collector"
        )));
    }
    for step in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(step.sql)?;
        if step.version == ROLLUPS {
            backfill(&mut tx)?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[
                &(step.version as i32),
                &step.name,
                &crate::ingest::now_rfc3339(),
            ],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn stored_event(row: &postgres::Row) -> StoredEvent {
    StoredEvent {
        uuid: row.get(0),
        event: row.get(1),
        distinct_id: row.get(2),
        timestamp: row.get(3),
        received_at: row.get(4),
        properties: properties_value(row.get(5)),
    }
}

/// The group's events as one column array per field, for `unnest`.
#[derive(Default)]
struct Columns<'a> {
    uuid: Vec<&'a str>,
    event: Vec<&'a str>,
    distinct_id: Vec<&'a str>,
    timestamp: Vec<&'a str>,
    received_at: Vec<&'a str>,
    api_key_hash: Vec<&'a str>,
    properties: Vec<String>,
    product: Vec<Option<&'a str>>,
    product_version: Vec<Option<&'a str>>,
    os: Vec<Option<&'a str>>,
    batch_size: Vec<i64>,
}

impl Backend for PostgresBackend {
    fn insert_all(&self, batches: &[&Batch]) -> Result<Vec<Inserted>, Error> {
        let mut columns = Columns::default();
        let mut whens = Vec::new();
        for batch in batches {
            for e in &batch.events {
                let timestamp = e.timestamp.as_deref().unwrap_or(&batch.received_at);
                whens.push(when(timestamp, &batch.received_at));
                columns.uuid.push(&e.uuid);
                columns.event.push(&e.event);
                columns.distinct_id.push(&e.distinct_id);
                columns.timestamp.push(timestamp);
                columns.received_at.push(&batch.received_at);
                columns.api_key_hash.push(&e.api_key_hash);
                columns
                    .properties
                    .push(serde_json::to_string(&e.properties).unwrap_or_else(|_| "{}".into()));
                columns.product.push(e.product());
                columns.product_version.push(e.product_version());
                columns.os.push(e.os());
                columns.batch_size.push(e.batch_size());
            }
        }
        let days: Vec<&str> = whens.iter().map(|w| w.day.as_str()).collect();
        self.write(|client| {
            let mut tx = client.transaction()?;
            let rows = tx.query(
                "INSERT INTO events (uuid, event, distinct_id, timestamp, received_at,
                     api_key_hash, properties, product, product_version, os, batch_size, day)
                 SELECT u::uuid, e, d, t, r, k, p::jsonb, pr, pv, o, b, dy
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                             $11::int8[], $12::text[])
                      AS x(u, e, d, t, r, k, p, pr, pv, o, b, dy)
                 ON CONFLICT (uuid) DO NOTHING
                 RETURNING uuid::text",
                &[
                    &columns.uuid,
                    &columns.event,
                    &columns.distinct_id,
                    &columns.timestamp,
                    &columns.received_at,
                    &columns.api_key_hash,
                    &columns.properties,
                    &columns.product,
                    &columns.product_version,
                    &columns.os,
                    &columns.batch_size,
                    &days,
                ],
            )?;
            // The first occurrence of a returned uuid is the stored one; any
            // other (the same uuid twice in the group, or already in the table)
            // is a duplicate, and only stored events reach the rollups.
            let mut unclaimed: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
            let mut delta = Delta::inserting();
            let mut at = whens.iter();
            let results: Vec<Inserted> = batches
                .iter()
                .map(|batch| {
                    let mut inserted = Inserted::default();
                    for e in &batch.events {
                        let w = at.next().expect("one When per event");
                        if unclaimed.remove(&e.uuid) {
                            inserted.stored += 1;
                            delta.add_at(e, w);
                        } else {
                            inserted.duplicates += 1;
                        }
                    }
                    inserted
                })
                .collect();
            Tx(&mut tx).apply(&delta)?;
            tx.commit()?;
            Ok(results)
        })
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, Error> {
        let limit = filter.effective_limit() as i64;
        let mut clauses = Vec::new();
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&limit];
        if let Some(event) = &filter.event {
            args.push(event);
            clauses.push(format!("event = ${}", args.len()));
        }
        if let Some(id) = &filter.distinct_id {
            args.push(id);
            clauses.push(format!("distinct_id = ${}", args.len()));
        }
        let where_clause = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM (
                 SELECT * FROM events {where_clause} ORDER BY id DESC LIMIT $1
             ) newest ORDER BY id ASC"
        );
        self.read(|client| {
            let rows = client.query(&sql, &args)?;
            Ok(rows.iter().map(stored_event).collect())
        })
    }

    fn latest_usage_reports(&self, product: Option<&str>) -> Result<Vec<StoredEvent>, Error> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id IN (
                 SELECT MAX(id) FROM events
                 WHERE event = 'usage_report' AND ($1::text IS NULL OR product = $1)
                 GROUP BY distinct_id)
             ORDER BY id ASC"
        );
        self.read(|client| {
            let rows = client.query(&sql, &[&product])?;
            Ok(rows.iter().map(stored_event).collect())
        })
    }

    fn usage_reports_in(&self, range: &StatsRange) -> Result<Vec<StoredEvent>, Error> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id IN (
                 SELECT MAX(id) FROM events
                 WHERE event = 'usage_report' AND day BETWEEN $1 AND $2
                   AND ($3::text IS NULL OR COALESCE(product, 'unknown') = $3)
                 GROUP BY distinct_id)
             ORDER BY id ASC"
        );
        self.read(|client| {
            let rows = client.query(&sql, &[&range.from, &range.to, &range.product])?;
            Ok(rows.iter().map(stored_event).collect())
        })
    }

    fn error_groups(
        &self,
        product: Option<&str>,
        days: Option<(&str, &str)>,
    ) -> Result<Vec<ErrorGroup>, Error> {
        // `$exception_suppressed` is summed only where it is a JSON number, and
        // clamped before the cast, so a sender's odd value cannot fail the query.
        // With days (the dashboard's crash view), a product of `unknown` is
        // also the events without one, as in every view of the rollups.
        let (of_product, in_days) = if days.is_some() {
            (
                "($1::text IS NULL OR COALESCE(product, 'unknown') = $1)",
                "AND day BETWEEN $2 AND $3",
            )
        } else {
            (
                "($1::text IS NULL OR product = $1)",
                "AND $2::text IS NULL AND $3::text IS NULL",
            )
        };
        let sql = format!("SELECT COALESCE(properties->>'$exception_fingerprint', 'unknown') AS fp,
                    COUNT(*) AS n, COUNT(DISTINCT distinct_id) AS installs,
                    MIN(received_at) AS first_seen, MAX(received_at) AS last_seen,
                    array_agg(DISTINCT COALESCE(product_version, 'unknown')) AS versions,
                    LEAST(GREATEST(SUM(CASE WHEN jsonb_typeof(properties->'$exception_suppressed') = 'number'
                        THEN (properties->>'$exception_suppressed')::numeric ELSE 0 END), 0),
                        9000000000000000000)::int8 AS suppressed,
                    MAX(id) AS newest
             FROM events
             WHERE event = '$exception' AND {of_product} {in_days}
             GROUP BY fp ORDER BY n DESC, last_seen DESC, COALESCE(properties->>'$exception_fingerprint', 'unknown') COLLATE \"C\"");
        let (from, to) = (days.map(|d| d.0), days.map(|d| d.1));
        self.read(|client| {
            let rows = client.query(&sql, &[&product, &from, &to])?;
            let mut groups = Vec::with_capacity(rows.len());
            for row in rows {
                let newest: i64 = row.get("newest");
                let mut versions: Vec<String> = row.get("versions");
                versions.sort();
                let example: String = client
                    .query_one(
                        "SELECT properties::text FROM events WHERE id = $1",
                        &[&newest],
                    )?
                    .get(0);
                groups.push(ErrorGroup {
                    fingerprint: row.get("fp"),
                    count: row.get::<_, i64>("n").max(0) as u64,
                    installs: row.get::<_, i64>("installs").max(0) as u64,
                    first_seen: row.get("first_seen"),
                    last_seen: row.get("last_seen"),
                    versions,
                    suppressed: row.get::<_, Option<i64>>("suppressed").unwrap_or(0).max(0) as u64,
                    example: properties_value(example),
                });
            }
            Ok(groups)
        })
    }

    fn view_rows(
        &self,
        sql: &str,
        args: &[Option<&str>],
        columns: &[Col],
    ) -> Result<Vec<Vec<Cell>>, Error> {
        let sql = dollar_placeholders(sql);
        let params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        self.read(|client| {
            let rows = client.query(&sql, &params)?;
            Ok(rows
                .iter()
                .map(|row| {
                    columns
                        .iter()
                        .enumerate()
                        .map(|(i, column)| {
                            let cell = match column {
                                Col::Text => row.get::<_, Option<String>>(i).map(Cell::Text),
                                Col::Int => row.get::<_, Option<i64>>(i).map(Cell::Int),
                                Col::Real => row.get::<_, Option<f64>>(i).map(Cell::Real),
                            };
                            cell.unwrap_or(Cell::Null)
                        })
                        .collect()
                })
                .collect())
        })
    }

    fn delete_instance(&self, distinct_id: &str) -> Result<Deleted, Error> {
        self.write(|client| {
            let mut tx = client.transaction()?;
            let rows = tx.query(
                "DELETE FROM events WHERE distinct_id = $1
                 RETURNING event, distinct_id, timestamp, received_at, properties::text",
                &[&distinct_id],
            )?;
            let mut removed = Delta::removing();
            for row in &rows {
                let (e, received_at) = event_row(row);
                removed.add(&e, &received_at);
            }
            let mut rollups = Tx(&mut tx);
            rollups.apply(&removed)?;
            rollups::forget(&mut rollups, &removed)?;
            tx.commit()?;
            let count = |name: &str| rows.iter().filter(|r| r.get::<_, &str>(0) == name).count();
            Ok(Deleted {
                events: rows.len() as u64,
                usage_reports: count("usage_report") as u64,
                error_reports: count("$exception") as u64,
            })
        })
    }

    fn delete_received_before(&self, cutoff: &str) -> Result<u64, Error> {
        let mut deleted = 0;
        loop {
            // One transaction per chunk: each commit leaves the rollups exact.
            let n = self.write(|client| {
                let mut tx = client.transaction()?;
                let rows = tx.query(
                    "DELETE FROM events WHERE id IN (
                         SELECT id FROM events WHERE received_at < $1 LIMIT $2)
                     RETURNING event, distinct_id, timestamp, received_at, properties::text",
                    &[&cutoff, &(rollups::CHUNK as i64)],
                )?;
                let mut removed = Delta::removing();
                for row in &rows {
                    let (e, received_at) = event_row(row);
                    removed.add(&e, &received_at);
                }
                let mut rollups = Tx(&mut tx);
                rollups.apply(&removed)?;
                rollups::recompute(&mut rollups, &removed)?;
                tx.commit()?;
                Ok(rows.len() as u64)
            })?;
            if n == 0 {
                return Ok(deleted);
            }
            deleted += n;
        }
    }

    fn contains(&self, uuid: &str) -> Result<bool, Error> {
        // A malformed uuid cannot be stored, so it is not there (rather than a
        // cast error).
        if uuid::Uuid::parse_str(uuid).is_err() {
            return Ok(false);
        }
        self.read(|client| {
            Ok(client
                .query_opt("SELECT 1 FROM events WHERE uuid = $1::text::uuid", &[&uuid])?
                .is_some())
        })
    }

    fn schema_version(&self) -> Result<u32, Error> {
        self.read(|client| {
            let v: i32 = client
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )?
                .get(0);
            Ok(v.max(0) as u32)
        })
    }
}

/// `?N` placeholders (the views' shared SQL) as PostgreSQL's `$N`.
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A row of `event, distinct_id, timestamp, received_at, properties::text`
/// back into an [`Event`] and its receive time.
fn event_row(row: &postgres::Row) -> (Event, String) {
    let e = stored_as_event(
        row.get(0),
        row.get(1),
        row.get(2),
        properties_value(row.get(4)),
    );
    (e, row.get(3))
}

/// Adds every event stored before the rollups existed (migration 3) to them,
/// and sets its `day`, chunk by chunk in the migration's transaction.
fn backfill(tx: &mut postgres::Transaction<'_>) -> Result<(), Error> {
    let mut after = 0i64;
    loop {
        let rows = tx.query(
            "SELECT event, distinct_id, timestamp, received_at, properties::text, id
             FROM events WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &(rollups::CHUNK as i64)],
        )?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(5);
        let mut delta = Delta::inserting();
        let (mut ids, mut days) = (Vec::new(), Vec::new());
        for row in &rows {
            let (e, received_at) = event_row(row);
            let at = when(e.timestamp.as_deref().unwrap_or(&received_at), &received_at);
            delta.add_at(&e, &at);
            ids.push(row.get::<_, i64>(5));
            days.push(at.day);
        }
        tx.execute(
            "UPDATE events SET day = x.day FROM unnest($1::int8[], $2::text[]) AS x(id, day)
             WHERE events.id = x.id",
            &[&ids, &days],
        )?;
        Tx(tx).apply(&delta)?;
    }
}

/// The rollup writes of one PostgreSQL transaction: one statement per table
/// for a whole delta (`unnest` of one array per column).
struct Tx<'a, 'b>(&'a mut postgres::Transaction<'b>);

impl RollupTx for Tx<'_, '_> {
    fn apply(&mut self, delta: &Delta) -> Result<(), Error> {
        let tx = &mut *self.0;
        if delta.sign() > 0 {
            let rows = delta.daily_installs();
            let col = |f: fn(&DailyInstall) -> &str| rows.iter().map(|d| f(d)).collect::<Vec<_>>();
            let events: Vec<i64> = rows.iter().map(|d| d.events).collect();
            tx.execute(
                "INSERT INTO daily_installs (day, product, distinct_id, week, product_version,
                     last_seen, events)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                      $5::text[], $6::text[], $7::int8[])
                 ON CONFLICT (day, product, distinct_id) DO UPDATE SET
                     events = daily_installs.events + excluded.events,
                     product_version = CASE WHEN excluded.last_seen >= daily_installs.last_seen
                         THEN excluded.product_version ELSE daily_installs.product_version END,
                     last_seen = GREATEST(daily_installs.last_seen, excluded.last_seen)",
                &[
                    &col(|d| &d.day),
                    &col(|d| &d.product),
                    &col(|d| &d.distinct_id),
                    &col(|d| &d.week),
                    &col(|d| &d.product_version),
                    &col(|d| &d.last_seen),
                    &events,
                ],
            )?;
            let rows = delta.installs();
            let newer = |c: &str| {
                format!(
                    "{c} = CASE WHEN excluded.last_seen >= installs.last_seen \
                     THEN excluded.{c} ELSE installs.{c} END"
                )
            };
            let sql = format!(
                "INSERT INTO installs (product, distinct_id, first_day, last_day, last_seen,
                     product_version, os, arch, runtime, in_container, in_ci, in_jupyter)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                     $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                     $11::text[], $12::text[])
                 ON CONFLICT (product, distinct_id) DO UPDATE SET
                     first_day = LEAST(installs.first_day, excluded.first_day),
                     last_day = GREATEST(installs.last_day, excluded.last_day),
                     {}, last_seen = GREATEST(installs.last_seen, excluded.last_seen)",
                [
                    "product_version",
                    "os",
                    "arch",
                    "runtime",
                    "in_container",
                    "in_ci",
                    "in_jupyter",
                ]
                .map(newer)
                .join(", ")
            );
            put_installs(tx, &sql, &rows)?;
        }
        let rows = delta.daily_events();
        let col = |f: fn(&DailyEvent) -> &str| rows.iter().map(|d| f(d)).collect::<Vec<_>>();
        let (day, product, version, os, event) = (
            col(|d| &d.day),
            col(|d| &d.product),
            col(|d| &d.product_version),
            col(|d| &d.os),
            col(|d| &d.event),
        );
        let events: Vec<i64> = rows.iter().map(|d| d.events).collect();
        let occurrences: Vec<i64> = rows.iter().map(|d| d.occurrences).collect();
        tx.execute(
            "INSERT INTO daily_events (day, product, product_version, os, event, events,
                 occurrences)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::int8[], $7::int8[])
             ON CONFLICT (day, product, product_version, os, event) DO UPDATE SET
                 events = daily_events.events + excluded.events,
                 occurrences = daily_events.occurrences + excluded.occurrences",
            &[&day, &product, &version, &os, &event, &events, &occurrences],
        )?;
        if delta.sign() < 0 {
            tx.execute(
                "DELETE FROM daily_events d
                 USING unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                     AS k(day, product, product_version, os, event)
                 WHERE d.day = k.day AND d.product = k.product
                   AND d.product_version = k.product_version AND d.os = k.os
                   AND d.event = k.event AND d.events <= 0",
                &[&day, &product, &version, &os, &event],
            )?;
        }
        let rows = delta.daily_properties();
        let col = |f: fn(&DailyProperty) -> &str| rows.iter().map(|d| f(d)).collect::<Vec<_>>();
        let (day, product, event, property, value) = (
            col(|p| &p.day),
            col(|p| &p.product),
            col(|p| &p.event),
            col(|p| &p.property),
            col(|p| &p.value),
        );
        let events: Vec<i64> = rows.iter().map(|p| p.events).collect();
        let occurrences: Vec<i64> = rows.iter().map(|p| p.occurrences).collect();
        let total: Vec<f64> = rows.iter().map(|p| p.total).collect();
        tx.execute(
            "INSERT INTO daily_properties (day, product, event, property, value, events,
                 occurrences, total)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::int8[], $7::int8[], $8::float8[])
             ON CONFLICT (day, product, event, property, value) DO UPDATE SET
                 events = daily_properties.events + excluded.events,
                 occurrences = daily_properties.occurrences + excluded.occurrences,
                 total = daily_properties.total + excluded.total",
            &[
                &day,
                &product,
                &event,
                &property,
                &value,
                &events,
                &occurrences,
                &total,
            ],
        )?;
        if delta.sign() < 0 {
            tx.execute(
                "DELETE FROM daily_properties d
                 USING unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                     AS k(day, product, event, property, value)
                 WHERE d.day = k.day AND d.product = k.product AND d.event = k.event
                   AND d.property = k.property AND d.value = k.value AND d.events <= 0",
                &[&day, &product, &event, &property, &value],
            )?;
        }
        Ok(())
    }

    fn events_of(
        &mut self,
        distinct_id: &str,
        day: &str,
        product: &str,
    ) -> Result<Vec<(Event, String)>, Error> {
        let rows = self.0.query(
            "SELECT event, distinct_id, timestamp, received_at, properties::text FROM events
             WHERE distinct_id = $1 AND day = $2 AND COALESCE(product, 'unknown') = $3
             ORDER BY id",
            &[&distinct_id, &day, &product],
        )?;
        Ok(rows.iter().map(event_row).collect())
    }

    fn install_days(
        &mut self,
        product: &str,
        distinct_id: &str,
    ) -> Result<Option<(String, String)>, Error> {
        let row = self.0.query_one(
            "SELECT MIN(day), MAX(day) FROM daily_installs WHERE product = $1 AND distinct_id = $2",
            &[&product, &distinct_id],
        )?;
        let (first, last): (Option<String>, Option<String>) = (row.get(0), row.get(1));
        Ok(first.zip(last))
    }

    fn put_daily_install(
        &mut self,
        key: &DailyInstall,
        row: Option<&DailyInstall>,
    ) -> Result<(), Error> {
        match row {
            None => self.0.execute(
                "DELETE FROM daily_installs WHERE day = $1 AND product = $2 AND distinct_id = $3",
                &[&key.day, &key.product, &key.distinct_id],
            )?,
            Some(d) => self.0.execute(
                "INSERT INTO daily_installs (day, product, distinct_id, week, product_version,
                     last_seen, events)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (day, product, distinct_id) DO UPDATE SET
                     week = excluded.week, product_version = excluded.product_version,
                     last_seen = excluded.last_seen, events = excluded.events",
                &[
                    &d.day,
                    &d.product,
                    &d.distinct_id,
                    &d.week,
                    &d.product_version,
                    &d.last_seen,
                    &d.events,
                ],
            )?,
        };
        Ok(())
    }

    fn put_install(&mut self, key: &Install, row: Option<&Install>) -> Result<(), Error> {
        match row {
            None => {
                self.0.execute(
                    "DELETE FROM installs WHERE product = $1 AND distinct_id = $2",
                    &[&key.product, &key.distinct_id],
                )?;
            }
            Some(i) => put_installs(
                self.0,
                "INSERT INTO installs (product, distinct_id, first_day, last_day, last_seen,
                     product_version, os, arch, runtime, in_container, in_ci, in_jupyter)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                     $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                     $11::text[], $12::text[])
                 ON CONFLICT (product, distinct_id) DO UPDATE SET
                     first_day = excluded.first_day, last_day = excluded.last_day,
                     last_seen = excluded.last_seen, product_version = excluded.product_version,
                     os = excluded.os, arch = excluded.arch, runtime = excluded.runtime,
                     in_container = excluded.in_container, in_ci = excluded.in_ci,
                     in_jupyter = excluded.in_jupyter",
                &[i],
            )?,
        }
        Ok(())
    }
}

/// Runs `sql` (an `INSERT INTO installs ... unnest` of the twelve columns in
/// table order) for `rows`.
fn put_installs(
    tx: &mut postgres::Transaction<'_>,
    sql: &str,
    rows: &[&Install],
) -> Result<(), Error> {
    let col = |f: fn(&Install) -> &str| rows.iter().map(|i| f(i)).collect::<Vec<_>>();
    tx.execute(
        sql,
        &[
            &col(|i| &i.product),
            &col(|i| &i.distinct_id),
            &col(|i| &i.first_day),
            &col(|i| &i.last_day),
            &col(|i| &i.last_seen),
            &col(|i| &i.product_version),
            &col(|i| &i.os),
            &col(|i| &i.arch),
            &col(|i| &i.runtime),
            &col(|i| &i.in_container),
            &col(|i| &i.in_ci),
            &col(|i| &i.in_jupyter),
        ],
    )?;
    Ok(())
}

/// Whether a PostgreSQL failure is one a retry can get past: the connection is
/// gone or was never made (the server restarts, a failover), the server is
/// shutting down or out of resources, or a transaction lost a race.
pub(crate) fn is_transient(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // No SQLSTATE: a failure below SQL (connecting, I/O, a timeout) is
        // transient; a value that did not convert is not.
        None => {
            std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                || e.to_string().contains("timeout")
                || e.to_string().starts_with("error connecting")
        }
        Some(code) => {
            let class = &code.code()[..2];
            class == "08" // connection exception
                || class == "53" // insufficient resources
                || class == "57" // operator intervention (shutdown, cannot connect now)
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
        }
    }
}
