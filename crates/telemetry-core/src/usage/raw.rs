//! A C-stable view of one recording cell, for bindings that record without calling into
//! the core on every operation (the Go package, through the C ABI's `telemetry_timing_cell`
//! and `telemetry_counter_cell`).
//!
//! In: a [`Timing`] or [`Counter`] handle. Out: the address of its cell's atomics (and,
//! for a timing, the family's bounds), valid while the handle lives. The core still owns
//! every cell, and renders, anonymizes and reports them; a foreign recorder only adds to
//! them, exactly as the core's own recording does (`timing.rs`, `TimingCell::record_ok`
//! and `record_fail`; `counter.rs`, `Counter::add`).
//!
//! # The contract a foreign recorder keeps
//!
//! A timing cell is [`TIMING_CELL_WORDS`] naturally aligned 64-bit unsigned integers
//! (the cell itself is 64-byte aligned); a counter cell is one such integer. Every access
//! is atomic (any memory ordering: the core uses relaxed, and a reader never expects two
//! words to agree at one instant). Only these updates are ever made:
//!
//! - **A success that took `n` nanoseconds**: add `n` to word [`TOTAL_NANOS`] (wrapping);
//!   find the first `i` with `n <= bounds[i]` (`i = bounds_len` when there is none) and
//!   add 1 to word [`BUCKETS`]` + i`; if `n` is below word [`MIN_NANOS`], lower that word
//!   to `n` (an atomic minimum; the word starts at `u64::MAX`); if `n` is above word
//!   [`MAX_NANOS`], raise it to `n` (an atomic maximum); then the last second, below.
//! - **A failure**: add 1 to word [`FAIL`]; then the last second. Failures are counted,
//!   not timed.
//! - **The last second**: if the Unix second at which the operation ended is above word
//!   [`LAST_SECOND`], raise it to that second (an atomic maximum).
//! - **A counter**: add `n` to its word (wrapping).
//!
//! Nothing else: no word is stored plainly, reset or decreased (except [`MIN_NANOS`] as
//! above), and words past the family's `bounds_len + 1` buckets are never touched.
//!
//! **Lifetime.** The addresses stay valid while the handle the view was taken from lives
//! (C: until `telemetry_timing_free` / `telemetry_counter_free`); the bounds never change.
//!
//! **Starting the pipeline.** On an enabled client the first recording starts the
//! worker that sends reports home; neither declaring a family nor taking a view does. A
//! foreign recorder therefore makes its first recording in a process through the handle's
//! own methods ([`Timing::record_at`], [`Timing::record_failure_at`], [`Counter::add`], or
//! their C ABI forms), which start the worker if it is not running, and records through
//! the view after that. A process that forks does the same again in the child.
//!
//! ```
//! use std::sync::atomic::Ordering;
//! use telemetry_core::usage::{raw, Usage};
//! let usage = Usage::standalone("myapp", "1.0");
//! let timing = usage.timing("op").build().unwrap().handle();
//! let cell = timing.raw_cell();
//! // A foreign recorder's failure, then the core's own reading of it.
//! unsafe { &*cell.words.add(raw::FAIL) }.fetch_add(1, Ordering::Relaxed);
//! assert_eq!(timing.snapshot().fail_count, 1);
//! ```

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::timing::{TimingCell, MAX_BOUNDS};
use super::{Counter, Timing};

/// Word of a timing cell: the sum of the timed durations, in nanoseconds.
pub const TOTAL_NANOS: usize = 0;
/// First word of a timing cell's buckets: [`MAX_BOUNDS`]` + 1` words, bucket `i` counting
/// durations in `(bounds[i-1], bounds[i]]`, the one after the last bound those above it.
pub const BUCKETS: usize = 1;
/// Word of a timing cell: the shortest timed duration (`u64::MAX` before the first).
pub const MIN_NANOS: usize = BUCKETS + MAX_BOUNDS + 1;
/// Word of a timing cell: the longest timed duration.
pub const MAX_NANOS: usize = MIN_NANOS + 1;
/// Word of a timing cell: the Unix second of the last operation that ended, 0 before.
pub const LAST_SECOND: usize = MAX_NANOS + 1;
/// Word of a timing cell: failed operations.
pub const FAIL: usize = LAST_SECOND + 1;
/// The words a timing cell holds.
pub const TIMING_CELL_WORDS: usize = FAIL + 1;

// The layout above is TimingCell's `#[repr(C, align(64))]` field order: 21 words padded
// to three cache lines. The tests below check each word through the core's own API.
const _: () = assert!(std::mem::size_of::<TimingCell>() == 192);
const _: () = assert!(std::mem::align_of::<TimingCell>() == 64);
const _: () = assert!(TIMING_CELL_WORDS * 8 <= std::mem::size_of::<TimingCell>());

/// Where one timing cell's words and its family's bounds are; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct RawTimingCell {
    /// The cell's [`TIMING_CELL_WORDS`] words.
    pub words: *const AtomicU64,
    /// The family's bucket bounds in nanoseconds, increasing.
    pub bounds: *const u64,
    /// How many bounds (the cell uses `bounds_len + 1` buckets).
    pub bounds_len: usize,
}

impl Timing {
    /// The view of this handle's cell for a foreign recorder (see [the
    /// contract](crate::usage::raw)); valid while this handle, or a clone of it, lives.
    /// Taking it records nothing and starts nothing.
    pub fn raw_cell(&self) -> RawTimingCell {
        RawTimingCell {
            words: Arc::as_ptr(&self.cell).cast::<AtomicU64>(),
            bounds: self.bounds.as_ptr(),
            bounds_len: self.bounds.len(),
        }
    }
}

impl Counter {
    /// The address of this counter's word for a foreign recorder (see [the
    /// contract](crate::usage::raw)); valid while this handle, or a clone of it, lives.
    /// Taking it records nothing and starts nothing.
    pub fn raw_cell(&self) -> *const AtomicU64 {
        Arc::as_ptr(&self.cell)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use super::*;
    use crate::usage::Usage;

    fn word(cell: &RawTimingCell, i: usize) -> u64 {
        assert!(i < TIMING_CELL_WORDS);
        // SAFETY: the handle lives for the test; i is within the cell.
        unsafe { &*cell.words.add(i) }.load(Relaxed)
    }

    #[test]
    fn each_word_holds_what_the_contract_says() {
        let usage = Usage::standalone("raw", "1");
        let bounds = [Duration::from_millis(1), Duration::from_millis(10)];
        let t = usage.timing("op").bounds(&bounds).build().unwrap().handle();
        let cell = t.raw_cell();
        assert_eq!(cell.words as usize % 64, 0);
        assert_eq!(cell.bounds_len, 2);
        // SAFETY: bounds_len bounds, alive with the handle.
        let b = unsafe { std::slice::from_raw_parts(cell.bounds, cell.bounds_len) };
        assert_eq!(b, [1_000_000, 10_000_000]);
        assert_eq!(word(&cell, MIN_NANOS), u64::MAX);
        t.record_at(Duration::from_nanos(1_000_000), 100); // on a bound: its bucket
        t.record_at(Duration::from_nanos(5_000_000), 90);
        t.record_at(Duration::from_nanos(20_000_000), 110); // past the last bound
        t.record_failure_at(105);
        assert_eq!(word(&cell, TOTAL_NANOS), 26_000_000);
        assert_eq!(
            (
                word(&cell, BUCKETS),
                word(&cell, BUCKETS + 1),
                word(&cell, BUCKETS + 2)
            ),
            (1, 1, 1)
        );
        assert_eq!(word(&cell, BUCKETS + 3), 0);
        assert_eq!(word(&cell, MIN_NANOS), 1_000_000);
        assert_eq!(word(&cell, MAX_NANOS), 20_000_000);
        assert_eq!(word(&cell, LAST_SECOND), 110);
        assert_eq!(word(&cell, FAIL), 1);
    }

    #[test]
    fn foreign_additions_are_read_by_the_core() {
        let usage = Usage::standalone("raw", "1");
        let t = usage.timing("op").build().unwrap().handle();
        let cell = t.raw_cell();
        // SAFETY: as above.
        let w = |i: usize| unsafe { &*cell.words.add(i) };
        w(TOTAL_NANOS).fetch_add(3_000_000, Relaxed);
        w(BUCKETS + 1).fetch_add(1, Relaxed); // 3 ms: (1 ms, 5 ms]
        w(MIN_NANOS).fetch_min(3_000_000, Relaxed);
        w(MAX_NANOS).fetch_max(3_000_000, Relaxed);
        w(LAST_SECOND).fetch_max(1_767_225_600, Relaxed);
        let s = t.snapshot();
        assert_eq!(
            (s.count, s.total_nanos, s.min_nanos, s.max_nanos),
            (1, 3_000_000, 3_000_000, 3_000_000)
        );
        assert_eq!((s.cumulative[0], s.cumulative[1]), (0, 1));
        assert_eq!(s.last_second, 1_767_225_600);

        let c = usage.counter("n").build().unwrap().handle();
        // SAFETY: the counter lives.
        unsafe { &*c.raw_cell() }.fetch_add(5, Relaxed);
        c.add(1);
        assert_eq!(c.get(), 6);
    }
}
