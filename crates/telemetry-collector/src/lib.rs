//! A PostHog-compatible ingest server that stores usage events in SQLite (the
//! embedded default) or PostgreSQL (several stateless collectors on one database).
//!
//! Senders (telemetry-core, posthog-python, posthog-go, posthog-node, posthog-js,
//! ...) post to it exactly as they would to PostHog (`/batch/`, `/capture/`,
//! `/e/`, `/i/v0/e/`, `/track/`); it validates each request, stores its events
//! (one transaction shared by every request that arrived meanwhile) and answers
//! `{"status": 1}` once they are on disk. Used by the project's end-to-end
//! tests, by `make demo`, and by anyone who wants their telemetry on their own
//! machines.
//!
//! Modules, one concept each: [`server`] (hyper/axum, TLS, routes, access
//! control, shutdown), [`config`] (settings), [`ingest`] (decoding and
//! validation), [`commit`] (group commit), [`store`] (SQLite and PostgreSQL).
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use telemetry_collector::{Collector, EventFilter};
//!
//! let collector = Collector::start("127.0.0.1:0", ":memory:").unwrap();
//!
//! let body = r#"{"api_key": "phc_demo", "batch": [
//!     {"event": "server_start", "distinct_id": "instance-1",
//!      "properties": {"product": "qdrant", "batch_size": 2}}]}"#;
//! let mut conn = TcpStream::connect(collector.addr()).unwrap();
//! write!(conn, "POST /batch/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
//!               Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
//! let mut answer = String::new();
//! conn.read_to_string(&mut answer).unwrap();
//! assert!(answer.starts_with("HTTP/1.1 200"));
//! assert!(answer.ends_with(r#"{"status":1}"#));
//!
//! let summary = collector.summary().unwrap();
//! assert_eq!((summary.events, summary.batch_size_total), (1, 2));
//! let events = collector.events(&EventFilter::default().distinct_id("instance-1")).unwrap();
//! assert_eq!(events[0].event, "server_start");
//! collector.shutdown();
//! ```

#![warn(missing_docs)]

pub mod commit;
pub mod config;
pub mod dashboard;
mod error;
pub mod ingest;
pub mod rollup;
pub mod sample_data;
pub mod server;
pub mod stats;
pub mod store;

/// The README's examples, as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}

pub use config::{CollectorConfig, Rate};
pub use error::Error;
pub use server::{Collector, CollectorBuilder, CollectorHandle};
pub use store::{
    Deleted, ErrorGroup, EventCounts, EventFilter, Store, StoreKind, StoredEvent, Summary,
};
