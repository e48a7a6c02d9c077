//! Counters: monotonic totals (requests served, points written), one atomic per label set.
//!
//! In: `add(n)` from any thread. Out: the total, read by the report and `/metrics`.
//!
//! ```
//! let usage = telemetry_core::usage::Usage::standalone("myapp", "1.0");
//! let upserts = usage.counter("points_upserted").build().unwrap().handle();
//! upserts.add(10);
//! upserts.inc();
//! assert_eq!(upserts.get(), 11);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::activation::Activation;

/// Adds to one counter; cheap to clone and to send to other threads.
#[derive(Debug, Clone)]
pub struct Counter {
    pub(crate) cell: Arc<AtomicU64>,
    pub(crate) activation: Arc<Activation>,
}

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.activation.touch();
        self.cell.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The total now.
    pub fn get(&self) -> u64 {
        self.cell.load(Ordering::Relaxed)
    }
}
