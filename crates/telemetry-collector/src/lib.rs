//! A local PostHog-compatible receiver that stores usage events in SQLite.
//!
//! Senders (telemetry-core, posthog-python, posthog-js, ...) post to it exactly as
//! they would to PostHog (`/batch/`, `/capture/`, `/i/v0/e/`); it validates each
//! request, stores its events in one transaction and answers `{"status": 1}`.
//! Used by the project's end-to-end tests, by `make demo`, and by anyone who
//! wants their telemetry to stay on their own machine.
//!
//! Modules, one concept each: [`server`] (connections, shutdown), `http` (the
//! wire format), `api` (routes), [`ingest`] (decoding and validation),
//! [`store`] (SQLite).
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
//! write!(conn, "POST /batch/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
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

mod api;
mod error;
mod http;
pub mod ingest;
pub mod server;
pub mod store;

/// The README's examples, as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}

pub use error::Error;
pub use server::{Collector, CollectorHandle};
pub use store::{ErrorGroup, EventCounts, EventFilter, Store, StoredEvent, Summary};
