//! Delivery counters, readable from every binding.
//!
//! `sent + dropped_queue_full + dropped_shutdown + dropped_failed + queued = captured`
//! holds whenever the
//! counters are read through [`Counters::snapshot`].
//!
//! ```
//! use telemetry_core::stats::Stats;
//! let s = Stats::default();
//! assert_eq!(s.captured, s.sent + s.dropped_queue_full + s.dropped_shutdown + s.dropped_failed + s.queued);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Events offered to an enabled client.
    pub captured: u64,
    /// Events merged into another event by a batch rule.
    pub merged: u64,
    /// Captured events delivered (a merged event counts every event inside it).
    pub sent: u64,
    /// Events refused because the queue was full.
    pub dropped_queue_full: u64,
    /// Events that could not go out before the shutdown deadline.
    pub dropped_shutdown: u64,
    /// Events given up after the last retry or a permanent (4xx) refusal.
    pub dropped_failed: u64,
    /// Events neither sent nor dropped yet: in the queue, a pending merge or a request.
    pub queued: u64,
    /// Requests that failed (each attempt counts).
    pub failed_requests: u64,
    /// Retried attempts.
    pub retries: u64,
}

/// The live counters, shared by the caller's thread and the worker.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) captured: AtomicU64,
    pub(crate) merged: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_shutdown: AtomicU64,
    pub(crate) dropped_failed: AtomicU64,
    pub(crate) failed_requests: AtomicU64,
    pub(crate) retries: AtomicU64,
}

impl Counters {
    /// Reads all counters; `queued` is derived so the identity above always holds.
    pub fn snapshot(&self) -> Stats {
        // Read the outcomes before `captured`: an event is counted captured before it can
        // be sent or dropped, so this order never makes `queued` negative.
        let sent = self.sent.load(Ordering::Acquire);
        let full = self.dropped_queue_full.load(Ordering::Acquire);
        let shut = self.dropped_shutdown.load(Ordering::Acquire);
        let failed = self.dropped_failed.load(Ordering::Acquire);
        let captured = self.captured.load(Ordering::Acquire);
        Stats {
            captured,
            merged: self.merged.load(Ordering::Relaxed),
            sent,
            dropped_queue_full: full,
            dropped_shutdown: shut,
            dropped_failed: failed,
            queued: captured.saturating_sub(sent + full + shut + failed),
            failed_requests: self.failed_requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::AcqRel);
    }

    /// Zeroes every counter: a forked child starts its own accounting.
    pub(crate) fn reset(&self) {
        for c in [
            &self.captured,
            &self.merged,
            &self.sent,
            &self.dropped_queue_full,
            &self.dropped_shutdown,
            &self.dropped_failed,
            &self.failed_requests,
            &self.retries,
        ] {
            c.store(0, Ordering::Release);
        }
    }
}
