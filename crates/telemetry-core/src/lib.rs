//! telemetry-core: decides whether telemetry may run, captures product-usage events,
//! anonymizes them and delivers them — one core for Rust, Go (C ABI) and Python.
//!
//! ```no_run
//! use telemetry_core::{Client, Event, profile::Profile};
//! let client = Client::builder("chromadb", "1.0.0")
//!     .profile(Profile::Chroma)
//!     .endpoint("https://eu.i.posthog.com")
//!     .api_key("phc_...")
//!     .build()
//!     .expect("valid configuration");
//! println!("{}", client.decision()); // why telemetry is on or off
//! client.capture(Event::new("client_start").safe("is_persistent", true));
//! client.shutdown(std::time::Duration::from_secs(1));
//! ```
#![deny(missing_docs)]

pub mod anonymize;
pub mod batch;
pub mod client;
pub mod consent;
pub mod context;
pub mod encoded;
pub mod env;
pub mod event;
pub mod identity;
pub mod notice;
pub mod payload;
pub mod profile;
pub mod samples;
pub mod sink;
pub mod stats;
pub mod transport;
mod worker;

pub use client::{Client, ClientBuilder, ClientConfig, ConfigError, FlushOutcome};
pub use consent::Decision;
pub use encoded::EncodedEvent;
pub use event::Event;
pub use stats::Stats;
