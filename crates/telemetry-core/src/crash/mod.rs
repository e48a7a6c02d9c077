//! Error reports: Rust panics (a hook installed once per process, chained), crashes and
//! handled errors reported by the bindings (Python's `sys.excepthook`, Go's deferred call,
//! the C ABI), scrubbed, fingerprinted, rate-limited, and delivered before a crashing
//! process goes on dying.
//!
//! In: [`ErrorReport`]s, from [`crate::Client::capture_error`] (handled: queued, never
//! waits), [`crate::Client::report_crash`] (a crash: the first report of a fingerprint waits
//! up to the deadline for delivery) and the panic hook ([`crate::Client::report_panics`]).
//! Out: PostHog `$exception` events through the client's pipeline, under its consent.
//! Opted out, installing the hook only chains it: no thread, file or socket.
//!
//! ```
//! use telemetry_core::crash::{ErrorReport, Frame};
//! # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client};
//! # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
//! #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
//! client.report_panics(Default::default());
//! let err = ErrorReport::new("TimeoutError", "no answer from db01.internal:5432")
//!     .frame(Frame::new("app::sync", "/srv/app/src/sync.rs", 12).in_app(true));
//! assert!(client.capture_error(&err));
//! client.flush(std::time::Duration::from_secs(5));
//! let sent = &client.memory().unwrap().events()[0];
//! assert_eq!(sent["event"], "$exception");
//! assert_eq!(sent["properties"]["$exception_list"][0]["stacktrace"]["frames"][0]["filename"], "sync.rs");
//! ```

pub mod frames;
pub(crate) mod hook;
pub mod limit;
pub mod report;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::anonymize::{Anonymizer, LocalNames};
pub use limit::{Admitted, Limiter, RateLimits};
pub use report::{ErrorReport, Exception, Frame, EXCEPTION_EVENT};

/// How a client reports errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashOptions {
    /// How long a crashing thread waits at most for its report's delivery (default 1 s);
    /// only the first report of a fingerprint waits.
    pub deadline: Duration,
    /// The rate limits.
    pub limits: RateLimits,
}

impl Default for CrashOptions {
    fn default() -> Self {
        CrashOptions {
            deadline: Duration::from_secs(1),
            limits: RateLimits::default(),
        }
    }
}

/// What became of one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// Queued (and, for a crash, delivered within the deadline or not, see `delivered`).
    Queued {
        /// For a crash that waited: whether delivery finished in time.
        delivered: Option<bool>,
    },
    /// Held back by the rate limits (counted, and told with the next report).
    Suppressed,
    /// Telemetry is off for this client: nothing was done.
    Disabled,
}

/// The scrubber for error text: the free-text rules with this machine's user, host and
/// home. It needs no secret (scrubbing hashes nothing); made once per process.
pub fn scrubber() -> Anonymizer {
    static SCRUBBER: OnceLock<Anonymizer> = OnceLock::new();
    SCRUBBER
        .get_or_init(|| {
            Anonymizer::new([0; 32], 3)
                .with_local_names(LocalNames::detect(&crate::env::ProcessEnvironment))
        })
        .clone()
}

/// The client side the panic hook reports to.
pub(crate) trait CrashReporter: Send + Sync {
    /// Reports a crash that began at `started` (one deadline for every client).
    fn report_crash(&self, report: &ErrorReport, started: Instant) -> Reported;
}
