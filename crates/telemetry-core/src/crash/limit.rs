//! Rate limits for error reports: a crash loop or a panic storm sends a handful of reports,
//! not thousands, and what was held back is counted and said with the next one.
//!
//! In: each report's fingerprint. Out: send it (with the count suppressed since the last
//! one sent, and whether this fingerprint is new to the process, which alone may make a
//! crashing thread wait for delivery) or suppress it. Memory stays bounded: at most
//! [`MAX_TRACKED`] fingerprints are remembered.
//!
//! ```
//! use std::time::Duration;
//! use telemetry_core::crash::{Limiter, RateLimits};
//! let limiter = Limiter::new(RateLimits { per_fingerprint: Duration::from_secs(60), per_hour: 20 });
//! assert!(limiter.admit("abc").unwrap().first);
//! assert!(limiter.admit("abc").is_none()); // the same crash within 60 s
//! assert_eq!(limiter.admit("def").unwrap().suppressed, 1);
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Fingerprints remembered at most; the oldest is forgotten first.
pub const MAX_TRACKED: usize = 1024;

/// How often reports may go out (defaults: one per fingerprint per 60 s, 20 an hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Least time between two reports of the same fingerprint.
    pub per_fingerprint: Duration,
    /// Most reports in any hour (counted from the first of the hour).
    pub per_hour: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_fingerprint: Duration::from_secs(60),
            per_hour: 20,
        }
    }
}

/// A report the limits let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// Reports suppressed since the last one sent (this one carries the count).
    pub suppressed: u64,
    /// The first report of this fingerprint in this process: the only kind that may wait.
    pub first: bool,
}

#[derive(Debug)]
struct State {
    last_sent: HashMap<String, Instant>,
    hour_start: Option<Instant>,
    sent_this_hour: u32,
    suppressed: u64,
}

/// The limits' state for one client. The lock is held for a few map operations only, and
/// nothing in it can panic.
#[derive(Debug)]
pub struct Limiter {
    limits: RateLimits,
    state: Mutex<State>,
}

impl Limiter {
    /// A limiter with `limits`.
    pub fn new(limits: RateLimits) -> Limiter {
        Limiter {
            limits,
            state: Mutex::new(State {
                last_sent: HashMap::new(),
                hour_start: None,
                sent_this_hour: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether a report of `fingerprint` may go out now; `None` counts it suppressed.
    pub fn admit(&self, fingerprint: &str) -> Option<Admitted> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.hour_start
            .is_none_or(|h| now.duration_since(h) >= Duration::from_secs(3600))
        {
            s.hour_start = Some(now);
            s.sent_this_hour = 0;
        }
        let previous = s.last_sent.get(fingerprint).copied();
        let too_soon =
            previous.is_some_and(|t| now.duration_since(t) < self.limits.per_fingerprint);
        if too_soon || s.sent_this_hour >= self.limits.per_hour {
            s.suppressed = s.suppressed.saturating_add(1);
            return None;
        }
        if previous.is_none() && s.last_sent.len() >= MAX_TRACKED {
            let oldest = s
                .last_sent
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                s.last_sent.remove(&k);
            }
        }
        s.last_sent.insert(fingerprint.to_string(), now);
        s.sent_this_hour += 1;
        Some(Admitted {
            suppressed: std::mem::take(&mut s.suppressed),
            first: previous.is_none(),
        })
    }

    /// Reports suppressed and not yet told.
    pub fn suppressed(&self) -> u64 {
        self.state.lock().map(|s| s.suppressed).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_per_hour_reports_then_everything_is_counted() {
        let l = Limiter::new(RateLimits {
            per_fingerprint: Duration::ZERO,
            per_hour: 3,
        });
        let sent: Vec<_> = (0..10).filter_map(|i| l.admit(&format!("f{i}"))).collect();
        assert_eq!(sent.len(), 3);
        assert_eq!(l.suppressed(), 7);
    }

    #[test]
    fn memory_stays_bounded() {
        let l = Limiter::new(RateLimits {
            per_fingerprint: Duration::from_secs(60),
            per_hour: u32::MAX,
        });
        for i in 0..(MAX_TRACKED * 3) {
            l.admit(&i.to_string());
        }
        assert!(l.state.lock().unwrap().last_sent.len() <= MAX_TRACKED);
    }
}
