package telemetry

// Recording a timing or a counter without a call into C.
//
// A cgo call costs tens of nanoseconds (about 100 ns on the benchmark machine), more than
// the atomic additions a recording is, so a Timing or Counter records straight into its
// cell in the library's memory, with sync/atomic, making exactly the updates the core's
// own recording makes. The core still owns the cell: it renders, anonymizes and reports
// it, and every policy (bounds, the overflow key, levels, kinds, rounding) stays there.
//
// The contract, stated by telemetry_timing_cell_t in include/telemetry.h and by
// telemetry-core's usage::raw module, which this code follows to the letter:
//
//   - The cell is timingCellWords naturally aligned 64-bit words (64-byte aligned), in
//     memory the library allocated; every access is atomic. The bounds never change.
//   - A success of n nanoseconds: add n to the total; add 1 to bucket i, the first with
//     n <= bounds[i] (len(bounds) when none); lower the minimum to n if n is below it and
//     raise the maximum to n if above (compare-and-swap loops: atomic minimum and
//     maximum); then the last second.
//   - A failure: add 1 to the failure word; then the last second.
//   - The last second: raise it to the Unix second the operation ended if that is above
//     it (atomic maximum).
//   - A counter: an atomic addition to its one word.
//   - Nothing else is ever written.
//   - The first recording of each handle goes through the library
//     (telemetry_timing_record_at, telemetry_timing_record_failure_at,
//     telemetry_counter_add), which starts an enabled client's worker as any recording
//     in the core does; taking a view starts nothing. A Go process does not fork, so once
//     per handle is once per process.
//   - The words stay valid until the handle is freed (telemetry_timing_free), which only
//     the handle's finalizer does: a handle that is still reachable is never freed, so no
//     goroutine can record into freed memory. Each recording ends with
//     runtime.KeepAlive(handle).
//
// TestGoAndLibraryRecordingsIntoOneCellAgree checks that recordings made here and by the
// library into the same cell add up to what the core reports.

import (
	"runtime"
	"sync/atomic"
	"time"
)

// clockBase is one reading of the wall clock and the monotonic clock, taken once: the Unix
// second a recording ended is derived from the monotonic clock, so a recording reads one
// clock, as the core does (telemetry-core's timing.rs, unix_second).
var (
	clockBase     = time.Now()
	clockBaseUnix = clockBase.UnixNano()
)

// monotonic is the time since clockBase, from the monotonic clock alone.
func monotonic() time.Duration { return time.Since(clockBase) }

// unixSecondAt is the Unix second at the monotonic time m.
func unixSecondAt(m time.Duration) uint64 {
	ns := clockBaseUnix + int64(m)
	if ns < 0 {
		return 0
	}
	return uint64(ns / int64(time.Second))
}

// unixSecondOf is the Unix second of t (0 before 1970).
func unixSecondOf(t time.Time) uint64 {
	if s := t.Unix(); s > 0 {
		return uint64(s)
	}
	return 0
}

// nanosOf is d in nanoseconds; a negative duration counts as 0.
func nanosOf(d time.Duration) uint64 {
	if d < 0 {
		return 0
	}
	return uint64(d)
}

// raiseTo sets *w to v if v is above it (an atomic maximum).
func raiseTo(w *uint64, v uint64) {
	for {
		old := atomic.LoadUint64(w)
		if v <= old || atomic.CompareAndSwapUint64(w, old, v) {
			return
		}
	}
}

// lowerTo sets *w to v if v is below it (an atomic minimum).
func lowerTo(w *uint64, v uint64) {
	for {
		old := atomic.LoadUint64(w)
		if v >= old || atomic.CompareAndSwapUint64(w, old, v) {
			return
		}
	}
}

// recordOK records a success of n nanoseconds that ended at the Unix second sec.
func (t *Timing) recordOK(n, sec uint64) {
	if !t.direct.Load() {
		t.firstOK(n, sec)
		return
	}
	w := t.words
	i := 0
	for i < len(t.bounds) && n > t.bounds[i] {
		i++
	}
	atomic.AddUint64(&w[timingCellTotalNanos], n)
	atomic.AddUint64(&w[timingCellBuckets+i], 1)
	// Read first: the common case writes nothing more, so the line stays shared.
	if n < atomic.LoadUint64(&w[timingCellMinNanos]) {
		lowerTo(&w[timingCellMinNanos], n)
	}
	if n > atomic.LoadUint64(&w[timingCellMaxNanos]) {
		raiseTo(&w[timingCellMaxNanos], n)
	}
	if sec > atomic.LoadUint64(&w[timingCellLastSecond]) {
		raiseTo(&w[timingCellLastSecond], sec)
	}
	runtime.KeepAlive(t)
}

// recordFail counts a failure that ended at the Unix second sec.
func (t *Timing) recordFail(sec uint64) {
	if !t.direct.Load() {
		t.firstFail(sec)
		return
	}
	w := t.words
	atomic.AddUint64(&w[timingCellFail], 1)
	if sec > atomic.LoadUint64(&w[timingCellLastSecond]) {
		raiseTo(&w[timingCellLastSecond], sec)
	}
	runtime.KeepAlive(t)
}

// firstOK is a handle's first success: through the library, which starts an enabled
// client's worker. Two goroutines may both get here; both record through the library.
func (t *Timing) firstOK(n, sec uint64) {
	_ = cTimingRecordAt(t.h, n, sec) // fails only for a NULL handle, which t never has
	t.direct.Store(true)
	runtime.KeepAlive(t)
}

func (t *Timing) firstFail(sec uint64) {
	_ = cTimingRecordFailureAt(t.h, sec)
	t.direct.Store(true)
	runtime.KeepAlive(t)
}

// add adds n to the counter.
func (c *Counter) add(n uint64) {
	if !c.direct.Load() {
		_ = cCounterAdd(c.h, n)
		c.direct.Store(true)
	} else {
		atomic.AddUint64(c.word, n)
	}
	runtime.KeepAlive(c)
}
