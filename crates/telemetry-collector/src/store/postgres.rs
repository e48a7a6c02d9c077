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

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls};

use super::{
    properties_value, Backend, Batch, Deleted, ErrorGroup, EventCounts, EventFilter, Inserted,
    Migration, StoredEvent, Summary, UNKNOWN,
};
use crate::error::Error;

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
];

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
        for batch in batches {
            for e in &batch.events {
                columns.uuid.push(&e.uuid);
                columns.event.push(&e.event);
                columns.distinct_id.push(&e.distinct_id);
                columns
                    .timestamp
                    .push(e.timestamp.as_deref().unwrap_or(&batch.received_at));
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
        let stored: Vec<String> = self.write(|client| {
            let mut tx = client.transaction()?;
            let rows = tx.query(
                "INSERT INTO events (uuid, event, distinct_id, timestamp, received_at,
                     api_key_hash, properties, product, product_version, os, batch_size)
                 SELECT u::uuid, e, d, t, r, k, p::jsonb, pr, pv, o, b
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                             $11::int8[]) AS x(u, e, d, t, r, k, p, pr, pv, o, b)
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
                ],
            )?;
            tx.commit()?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        // The first occurrence of a returned uuid is the stored one; any other
        // (the same uuid twice in the group, or already in the table) is a
        // duplicate.
        let mut unclaimed: HashMap<String, ()> = stored.into_iter().map(|u| (u, ())).collect();
        Ok(batches
            .iter()
            .map(|batch| {
                let mut inserted = Inserted::default();
                for e in &batch.events {
                    if unclaimed.remove(&e.uuid).is_some() {
                        inserted.stored += 1;
                    } else {
                        inserted.duplicates += 1;
                    }
                }
                inserted
            })
            .collect())
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

    fn error_groups(&self, product: Option<&str>) -> Result<Vec<ErrorGroup>, Error> {
        // `$exception_suppressed` is summed only where it is a JSON number, and
        // clamped before the cast, so a sender's odd value cannot fail the query.
        let sql = "SELECT COALESCE(properties->>'$exception_fingerprint', 'unknown') AS fp,
                    COUNT(*) AS n, COUNT(DISTINCT distinct_id) AS installs,
                    MIN(received_at) AS first_seen, MAX(received_at) AS last_seen,
                    array_agg(DISTINCT COALESCE(product_version, 'unknown')) AS versions,
                    LEAST(GREATEST(SUM(CASE WHEN jsonb_typeof(properties->'$exception_suppressed') = 'number'
                        THEN (properties->>'$exception_suppressed')::numeric ELSE 0 END), 0),
                        9000000000000000000)::int8 AS suppressed,
                    MAX(id) AS newest
             FROM events
             WHERE event = '$exception' AND ($1::text IS NULL OR product = $1)
             GROUP BY fp ORDER BY n DESC, last_seen DESC";
        self.read(|client| {
            let rows = client.query(sql, &[&product])?;
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

    fn summary(&self) -> Result<Summary, Error> {
        self.read(|client| {
            let totals = client.query_one(
                "SELECT COUNT(*), COALESCE(SUM(batch_size), 0)::int8, COUNT(DISTINCT distinct_id)
                 FROM events",
                &[],
            )?;
            let mut by_event = std::collections::BTreeMap::new();
            for row in client.query(
                "SELECT event, COUNT(*), COALESCE(SUM(batch_size), 0)::int8 FROM events GROUP BY event",
                &[],
            )? {
                by_event.insert(
                    row.get::<_, String>(0),
                    EventCounts {
                        events: row.get::<_, i64>(1) as u64,
                        batch_size_total: row.get(2),
                    },
                );
            }
            Ok(Summary {
                events: totals.get::<_, i64>(0) as u64,
                batch_size_total: totals.get(1),
                by_event,
                by_product: count_by(client, "product")?,
                by_product_version: count_by(client, "product_version")?,
                by_os: count_by(client, "os")?,
                instances: totals.get::<_, i64>(2) as u64,
            })
        })
    }

    fn delete_instance(&self, distinct_id: &str) -> Result<Deleted, Error> {
        self.write(|client| {
            let mut tx = client.transaction()?;
            let rows = tx.query(
                "DELETE FROM events WHERE distinct_id = $1 RETURNING event",
                &[&distinct_id],
            )?;
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
        self.write(|client| {
            Ok(client.execute("DELETE FROM events WHERE received_at < $1", &[&cutoff])?)
        })
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

/// Row counts grouped by one of the extracted columns (a fixed name, never user input).
fn count_by(
    client: &mut Client,
    column: &'static str,
) -> Result<std::collections::BTreeMap<String, u64>, Error> {
    let sql = format!("SELECT COALESCE({column}, $1), COUNT(*) FROM events GROUP BY 1");
    let mut map = std::collections::BTreeMap::new();
    for row in client.query(&sql, &[&UNKNOWN])? {
        map.insert(row.get::<_, String>(0), row.get::<_, i64>(1) as u64);
    }
    Ok(map)
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
