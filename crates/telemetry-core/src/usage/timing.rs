//! Operation timings: one cell of atomics per operation (and label set), and the handles
//! and scope guards that record into it.
//!
//! In: a duration (or a guard's start and end) and whether the operation worked. Out: the
//! cell's counts, sums, extremes, last response time and histogram, read by the report.
//!
//! Recording is a handful of atomic operations on the cell and no lock: the count and the
//! total are added, the histogram bucket is added, the minimum and maximum are written only
//! when they change, and the last response second only when it moves. A failure only
//! counts (as Qdrant does): its duration says nothing about the operation's speed.
//!
//! ```
//! use std::time::Duration;
//! use telemetry_core::usage::Usage;
//! let usage = Usage::standalone("myapp", "1.0");
//! let search = usage.timing("search").build().unwrap().handle();
//! {
//!     let _timer = search.start(); // records the elapsed time when it goes out of scope
//! }
//! search.record(Duration::from_millis(3));
//! search.start().fail(); // counts a failure
//! let s = search.snapshot();
//! assert_eq!((s.count, s.fail_count), (2, 1));
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::activation::Activation;

/// Qdrant's bucket bounds: 1, 5, 10, 20, 50, 100, 500 ms; 1, 5, 10, 50 s.
pub const DEFAULT_BOUNDS: [Duration; 11] = [
    Duration::from_millis(1),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(50),
];

/// Most bounds a family may declare (the cell's histogram is a fixed array).
pub const MAX_BOUNDS: usize = 15;

/// The atomics of one operation. The first cache line holds what every recording writes
/// (the total and the lower buckets), so two threads timing the same operation share one
/// contended line, not several.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct TimingCell {
    total_nanos: AtomicU64,
    /// Per bucket, not cumulative: bucket `i` counts durations in (bound[i-1], bound[i]];
    /// the last one past the highest bound. Their sum is the count.
    buckets: [AtomicU64; MAX_BOUNDS + 1],
    min_nanos: AtomicU64,
    max_nanos: AtomicU64,
    /// Seconds since the Unix epoch of the last response, 0 before the first.
    last_second: AtomicU64,
    fail: AtomicU64,
}

impl Default for TimingCell {
    fn default() -> Self {
        TimingCell {
            total_nanos: AtomicU64::new(0),
            buckets: Default::default(),
            min_nanos: AtomicU64::new(u64::MAX),
            max_nanos: AtomicU64::new(0),
            last_second: AtomicU64::new(0),
            fail: AtomicU64::new(0),
        }
    }
}

/// A point-in-time reading of one cell (or of several merged).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimingSnapshot {
    /// Operations that worked (each one timed).
    pub count: u64,
    /// Operations that failed (counted, not timed).
    pub fail_count: u64,
    /// Sum of the timed durations, in nanoseconds.
    pub total_nanos: u64,
    /// Shortest timed duration; 0 before the first.
    pub min_nanos: u64,
    /// Longest timed duration.
    pub max_nanos: u64,
    /// Seconds since the Unix epoch of the last response (worked or failed), 0 before it.
    pub last_second: u64,
    /// Cumulative counts per bound (the `+Inf` count is `count`).
    pub cumulative: Vec<u64>,
}

impl TimingSnapshot {
    /// The exact average, `total / count`, in nanoseconds (0 before the first).
    pub fn avg_nanos(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_nanos as f64 / self.count as f64
        }
    }

    /// Merges `other` in: counts and sums add, extremes stay extreme, the latest wins.
    pub fn merge(&mut self, other: &TimingSnapshot) {
        if other.count > 0 {
            self.min_nanos = if self.count == 0 {
                other.min_nanos
            } else {
                self.min_nanos.min(other.min_nanos)
            };
            self.max_nanos = self.max_nanos.max(other.max_nanos);
        }
        self.count += other.count;
        self.fail_count += other.fail_count;
        self.total_nanos = self.total_nanos.saturating_add(other.total_nanos);
        self.last_second = self.last_second.max(other.last_second);
        if self.cumulative.len() < other.cumulative.len() {
            self.cumulative.resize(other.cumulative.len(), 0);
        }
        for (mine, theirs) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *mine += theirs;
        }
    }
}

/// Wall-clock seconds for an `Instant`, from one reading of both clocks per process: the
/// recording path then needs no second clock read, and no 128-bit arithmetic.
#[inline]
fn unix_second(at: Instant) -> u64 {
    static BASE: OnceLock<(Instant, u64, u32)> = OnceLock::new();
    let (base_instant, base_secs, base_nanos) = *BASE.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (Instant::now(), wall.as_secs(), wall.subsec_nanos())
    });
    let since = at.saturating_duration_since(base_instant);
    let carry = u64::from((base_nanos + since.subsec_nanos()) / 1_000_000_000);
    base_secs + since.as_secs() + carry
}

/// A duration in nanoseconds, saturating (no 128-bit arithmetic on the hot path).
#[inline]
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

impl TimingCell {
    #[inline]
    fn record_ok(&self, nanos: u64, bounds: &[u64], second: u64) {
        let mut i = 0;
        while i < bounds.len() && nanos > bounds[i] {
            i += 1;
        }
        self.total_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        // Read first: the common case writes nothing, so the line stays shared.
        if nanos < self.min_nanos.load(Ordering::Relaxed) {
            self.min_nanos.fetch_min(nanos, Ordering::Relaxed);
        }
        if nanos > self.max_nanos.load(Ordering::Relaxed) {
            self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
        }
        self.touch_second(second);
    }

    #[inline]
    fn record_fail(&self, second: u64) {
        self.fail.fetch_add(1, Ordering::Relaxed);
        self.touch_second(second);
    }

    #[inline]
    fn touch_second(&self, second: u64) {
        if second > self.last_second.load(Ordering::Relaxed) {
            self.last_second.fetch_max(second, Ordering::Relaxed);
        }
    }

    /// Reads the cell with `bounds` (the family's); never blocks a recorder.
    pub fn snapshot(&self, bounds: usize) -> TimingSnapshot {
        let mut cumulative = Vec::with_capacity(bounds);
        let mut running = 0;
        for b in &self.buckets[..bounds] {
            running += b.load(Ordering::Relaxed);
            cumulative.push(running);
        }
        let count = running + self.buckets[bounds].load(Ordering::Relaxed);
        let min = self.min_nanos.load(Ordering::Relaxed);
        TimingSnapshot {
            count,
            fail_count: self.fail.load(Ordering::Relaxed),
            total_nanos: self.total_nanos.load(Ordering::Relaxed),
            min_nanos: if min == u64::MAX { 0 } else { min },
            max_nanos: self.max_nanos.load(Ordering::Relaxed),
            last_second: self.last_second.load(Ordering::Relaxed),
            cumulative,
        }
    }
}

/// Records a success into `cell` (for callers holding the cell, not a handle).
#[inline]
pub(crate) fn record_into(cell: &TimingCell, elapsed: Duration, bounds: &[u64], end: Instant) {
    cell.record_ok(nanos(elapsed), bounds, unix_second(end));
}

/// Counts a failure into `cell`.
#[inline]
pub(crate) fn fail_into(cell: &TimingCell, end: Instant) {
    cell.record_fail(unix_second(end));
}

/// Records into one operation's cell; cheap to clone and to send to other threads.
#[derive(Debug, Clone)]
pub struct Timing {
    pub(crate) cell: Arc<TimingCell>,
    pub(crate) bounds: Arc<[u64]>,
    pub(crate) activation: Arc<Activation>,
}

impl Timing {
    /// Starts timing; the guard records when dropped (as success) or on [`TimingGuard::fail`].
    #[inline]
    pub fn start(&self) -> TimingGuard<'_> {
        TimingGuard {
            timing: self,
            started: Instant::now(),
            done: false,
        }
    }

    /// Records one operation that worked and took `elapsed`.
    #[inline]
    pub fn record(&self, elapsed: Duration) {
        self.record_ended(elapsed, Instant::now());
    }

    /// Records one that worked, took `elapsed` and ended at `end`.
    #[inline]
    pub fn record_ended(&self, elapsed: Duration, end: Instant) {
        self.activation.touch();
        self.cell
            .record_ok(nanos(elapsed), &self.bounds, unix_second(end));
    }

    /// Records one that worked and took `elapsed`, ending at `unix_second` (test vectors
    /// and bindings that carry their own clock).
    pub fn record_at(&self, elapsed: Duration, unix_second: u64) {
        self.activation.touch();
        self.cell
            .record_ok(nanos(elapsed), &self.bounds, unix_second);
    }

    /// Counts one failed operation (not timed).
    #[inline]
    pub fn record_failure(&self) {
        self.activation.touch();
        self.cell.record_fail(unix_second(Instant::now()));
    }

    /// Counts one failed operation that ended at `unix_second`.
    pub fn record_failure_at(&self, unix_second: u64) {
        self.activation.touch();
        self.cell.record_fail(unix_second);
    }

    /// Measures `f`, recording success when it returns `Ok` and a failure on `Err`.
    ///
    /// ```
    /// # let usage = telemetry_core::usage::Usage::standalone("myapp", "1.0");
    /// let get = usage.timing("get").build().unwrap().handle();
    /// let r: Result<u32, &str> = get.time(|| Ok(7));
    /// assert_eq!((r, get.snapshot().count), (Ok(7), 1));
    /// ```
    pub fn time<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let guard = self.start();
        let result = f();
        if result.is_err() {
            guard.fail();
        }
        result
    }

    /// The cell's numbers now.
    pub fn snapshot(&self) -> TimingSnapshot {
        self.cell.snapshot(self.bounds.len())
    }
}

/// Times a scope: records success when dropped, unless [`TimingGuard::fail`] was called.
#[derive(Debug)]
#[must_use = "the guard records when it is dropped; dropping it at once times nothing"]
pub struct TimingGuard<'a> {
    timing: &'a Timing,
    started: Instant,
    done: bool,
}

impl TimingGuard<'_> {
    /// Counts the operation as failed instead of timing it.
    pub fn fail(mut self) {
        self.done = true;
        self.timing.activation.touch();
        self.timing.cell.record_fail(unix_second(Instant::now()));
    }

    /// Records success now (what dropping does).
    pub fn finish(self) {}
}

impl Drop for TimingGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.done {
            let end = Instant::now();
            self.timing
                .record_ended(end.saturating_duration_since(self.started), end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Arc<[u64]> {
        DEFAULT_BOUNDS.iter().map(|d| d.as_nanos() as u64).collect()
    }

    #[test]
    fn a_duration_on_a_bound_falls_in_that_bucket() {
        let cell = TimingCell::default();
        let b = bounds();
        cell.record_ok(1_000_000, &b, 10); // exactly 1 ms: le="0.001"
        cell.record_ok(1_000_001, &b, 12);
        cell.record_ok(60_000_000_000, &b, 11); // past 50 s: only +Inf
        let s = cell.snapshot(b.len());
        assert_eq!(s.cumulative[0], 1);
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(*s.cumulative.last().unwrap(), 2);
        assert_eq!(s.count, 3);
        assert_eq!(
            (s.min_nanos, s.max_nanos, s.last_second),
            (1_000_000, 60_000_000_000, 12)
        );
        assert_eq!(
            s.avg_nanos(),
            (1_000_000.0 + 1_000_001.0 + 60_000_000_000.0) / 3.0
        );
    }

    #[test]
    fn merging_adds_counts_and_keeps_extremes() {
        let mut a = TimingSnapshot {
            count: 2,
            total_nanos: 10,
            min_nanos: 3,
            max_nanos: 7,
            last_second: 5,
            cumulative: vec![1, 2],
            ..Default::default()
        };
        let b = TimingSnapshot {
            count: 1,
            fail_count: 4,
            total_nanos: 1,
            min_nanos: 1,
            max_nanos: 1,
            last_second: 9,
            cumulative: vec![1, 1],
        };
        a.merge(&b);
        assert_eq!((a.count, a.fail_count, a.total_nanos), (3, 4, 11));
        assert_eq!((a.min_nanos, a.max_nanos, a.last_second), (1, 7, 9));
        assert_eq!(a.cumulative, vec![2, 3]);
        let mut empty = TimingSnapshot::default();
        empty.merge(&a);
        assert_eq!(empty.min_nanos, 1);
    }
}
