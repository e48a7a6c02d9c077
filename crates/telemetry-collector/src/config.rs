//! How a collector is set up: where it listens, where it stores, who may read,
//! who may send and how fast.
//!
//! ```
//! use std::time::Duration;
//! use telemetry_collector::{Collector, Rate};
//!
//! let collector = Collector::builder()
//!     .listen("127.0.0.1:0")
//!     .db(":memory:")
//!     .admin_token("s3cret")
//!     .api_keys(["phc_acme"])
//!     .rate_per_key(Rate::per_second(10_000))
//!     .retention(Some(Duration::from_secs(30 * 86_400)))
//!     .start()
//!     .unwrap();
//! assert!(collector.url().starts_with("http://127.0.0.1:"));
//! collector.shutdown();
//! ```

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// Retention when none is configured: a year, as in many products' privacy policies.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(365 * 86_400);

/// A token-bucket rate: `per_second` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained rate.
    pub per_second: NonZeroU32,
    /// Largest burst; at least one second's worth.
    pub burst: NonZeroU32,
}

impl Rate {
    /// `n` per second with a burst of two seconds' worth (`0` is treated as 1).
    pub fn per_second(n: u32) -> Rate {
        let per_second = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Rate {
            per_second,
            burst: per_second.saturating_mul(NonZeroU32::new(2).expect("2 is not zero")),
        }
    }
}

/// A collector's settings; built by [`crate::Collector::builder`].
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// `host:port` to listen on; port 0 picks a free one.
    pub listen: String,
    /// SQLite path, `":memory:"`, or a `postgres://` URL.
    pub db: PathBuf,
    /// PEM certificate chain and private key: serve HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Bearer token required by everything that reads or deletes (`/api/*`).
    /// Without one the API is open, which only a loopback listener allows.
    pub admin_token: Option<String>,
    /// Project API keys accepted from senders; `None` accepts any key.
    pub api_keys: Option<Vec<String>>,
    /// Requests per second from one source address (checked before the body is read).
    pub rate_per_address: Option<Rate>,
    /// Events per second under one project API key.
    pub rate_per_key: Option<Rate>,
    /// Events received longer ago than this are deleted; `None` keeps everything.
    pub retention: Option<Duration>,
    /// How often the retention sweep runs (first right after start).
    pub retention_interval: Duration,
    /// Tokio worker threads serving HTTP.
    pub worker_threads: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            listen: "127.0.0.1:8765".into(),
            db: PathBuf::from("telemetry-collector.db"),
            tls: None,
            admin_token: None,
            api_keys: None,
            rate_per_address: None,
            rate_per_key: None,
            retention: Some(DEFAULT_RETENTION),
            retention_interval: Duration::from_secs(3600),
            worker_threads: 2,
        }
    }
}

impl CollectorConfig {
    /// Refuses settings that cannot be safe or cannot work, given the address
    /// actually bound: reading or deleting data from beyond loopback needs a
    /// token, and an empty token or key list would lock everyone out silently.
    pub(crate) fn check(&self, bound: &[SocketAddr]) -> Result<(), Error> {
        if self.admin_token.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Config("the admin token must not be empty".into()));
        }
        if !bound.iter().all(|a| is_loopback(a.ip())) && self.admin_token.is_none() {
            return Err(Error::Config(format!(
                "listening on {} (beyond loopback) needs an admin token: /api/* can read and \
                 delete every event (--admin-token-file, or TELEMETRY_COLLECTOR_ADMIN_TOKEN)",
                self.listen
            )));
        }
        if let Some(keys) = &self.api_keys {
            if keys.is_empty() || keys.iter().any(String::is_empty) {
                return Err(Error::Config(
                    "the API-key list must hold at least one key and no empty one".into(),
                ));
            }
        }
        if self.worker_threads == 0 {
            return Err(Error::Config("at least one worker thread is needed".into()));
        }
        Ok(())
    }
}

/// Whether `ip` is a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}
