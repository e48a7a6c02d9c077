#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod anonymize;
pub mod batch;
pub mod client;
pub mod consent;
pub mod context;
pub mod crash;
pub mod encoded;
pub mod env;
pub mod event;
pub mod identity;
pub mod notice;
pub mod otel;
pub mod payload;
pub mod profile;
pub mod samples;
pub mod sink;
pub mod stats;
pub mod tls;
pub mod transport;
pub mod usage;
mod worker;

/// The repository README's Rust example, as a doc test. It names PostHog's real host, so it
/// runs only where `make test` runs it: with `TELEMETRY_DEBUG=1` (nothing is sent) and
/// `--cfg telemetry_readme`.
#[cfg(all(doctest, telemetry_readme))]
#[doc = include_str!("../../../README.md")]
mod repository_readme {}

pub use client::{Client, ClientBuilder, ClientConfig, ConfigError, FlushOutcome};
pub use consent::Decision;
pub use encoded::EncodedEvent;
pub use event::Event;
pub use stats::Stats;
