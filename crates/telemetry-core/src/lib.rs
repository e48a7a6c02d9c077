//! telemetry-core: decides whether telemetry may run, captures product-usage events,
//! anonymizes them and delivers them — one core for Rust, Go (C ABI) and Python.
//!
//! ```no_run
//! use telemetry_core::{Client, Event};
//! let client = Client::builder("myapp", "1.2.0").build();
//! client.capture(Event::new("started").property("workers", 4));
//! client.shutdown(std::time::Duration::from_secs(1));
//! ```
#![deny(missing_docs)]

pub mod anonymize;
pub mod consent;
pub mod env;
pub mod identity;
pub mod profile;
