//! Usage statistics (Qdrant's model) over the C ABI: timing and counter families declared
//! as JSON, a handle per label set, recording, sections, the report, the Prometheus text,
//! the `/telemetry` and `/metrics` endpoints as a function, and a loopback server.
//!
//! In: declarations and label sets as JSON, durations in nanoseconds, sections as JSON.
//! Out: handles (opaque, freed by their `_free`), the report as JSON, the exposition as
//! text, an HTTP answer's status, content type and body. Every decision (names, label
//! counts, bounds, the overflow key, levels, anonymization, query parsing, loopback only)
//! is the core's `telemetry_core::usage`; this module converts values and maps errors.
//!
//! Label values cross as a JSON array of strings (`["GET /collections", "200"]`), not as
//! (pointer, length) pairs: an array of pointers into Go memory may not be passed to C
//! under cgo's rules, so a Go caller would have to copy every value into C memory first,
//! while JSON is one buffer and the ABI's convention for structured values. Parsing it
//! costs a few hundred nanoseconds, paid once per label set by hosts that take a handle
//! (`telemetry_timing_family_with`) and record through it; the by-labels recording calls
//! are for hosts that learn a label only when the operation ends.
//!
//! Recording works whatever the consent decision, and after `telemetry_client_shutdown`:
//! the numbers are the operator's and the local endpoints always answer. Only sending the
//! report home follows consent.

use std::ffi::c_char;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use telemetry_core::anonymize::PropertyKind;
use telemetry_core::usage::{self, raw, ReportOptions, Section, UsageError};

use crate::client::{client_ref, Client};
use crate::error::{guard, guard_infallible, json_error, Error, ErrorCode};
use crate::io::{c_string, non_null, optional_str_arg, str_arg, write_c_string, write_string};

/// Most bounds a timing family may declare.
pub const TELEMETRY_MAX_TIMING_BOUNDS: usize = 15;
/// The 64-bit words a timing cell holds (`telemetry_timing_cell`).
pub const TELEMETRY_TIMING_CELL_WORDS: usize = 21;
/// Word of a timing cell: the sum of the timed durations, in nanoseconds.
pub const TELEMETRY_TIMING_CELL_TOTAL_NANOS: usize = 0;
/// First word of a timing cell's buckets (`TELEMETRY_MAX_TIMING_BOUNDS + 1` of them):
/// bucket `i` counts durations in `(bounds[i-1], bounds[i]]`, bucket `bounds_len` the
/// durations above the last bound.
pub const TELEMETRY_TIMING_CELL_BUCKETS: usize = 1;
/// Word of a timing cell: the shortest timed duration (`UINT64_MAX` before the first).
pub const TELEMETRY_TIMING_CELL_MIN_NANOS: usize = 17;
/// Word of a timing cell: the longest timed duration.
pub const TELEMETRY_TIMING_CELL_MAX_NANOS: usize = 18;
/// Word of a timing cell: the Unix second the last operation ended, 0 before the first.
pub const TELEMETRY_TIMING_CELL_LAST_SECOND: usize = 19;
/// Word of a timing cell: the failed operations.
pub const TELEMETRY_TIMING_CELL_FAIL: usize = 20;

// cbindgen needs literals; the core's layout is the truth.
const _: () = {
    assert!(TELEMETRY_MAX_TIMING_BOUNDS == usage::timing::MAX_BOUNDS);
    assert!(TELEMETRY_TIMING_CELL_WORDS == raw::TIMING_CELL_WORDS);
    assert!(TELEMETRY_TIMING_CELL_TOTAL_NANOS == raw::TOTAL_NANOS);
    assert!(TELEMETRY_TIMING_CELL_BUCKETS == raw::BUCKETS);
    assert!(TELEMETRY_TIMING_CELL_MIN_NANOS == raw::MIN_NANOS);
    assert!(TELEMETRY_TIMING_CELL_MAX_NANOS == raw::MAX_NANOS);
    assert!(TELEMETRY_TIMING_CELL_LAST_SECOND == raw::LAST_SECOND);
    assert!(TELEMETRY_TIMING_CELL_FAIL == raw::FAIL);
};

/// A declared timing family. Opaque to C.
///
/// Made by `telemetry_timing_family_new`, freed by `telemetry_timing_family_free`. Every
/// function taking it is thread-safe except the free. It does not need its client to stay
/// alive: a family (and its timings) outliving the client records into cells that no
/// report reads any more.
pub struct TimingFamily {
    inner: usage::TimingFamily,
}

/// One label set's timing of a family: what a host records an operation into. Opaque.
///
/// Made by `telemetry_timing_family_with`, freed by `telemetry_timing_free`; independent
/// of its family's handle. Every function taking it is thread-safe except the free.
pub struct Timing {
    inner: usage::Timing,
}

/// A declared counter family. Opaque; as `telemetry_timing_family_t`.
pub struct CounterFamily {
    inner: usage::CounterFamily,
}

/// One label set's counter. Opaque; as `telemetry_timing_t`.
pub struct Counter {
    inner: usage::Counter,
}

/// A loopback server answering `GET /telemetry` and `GET /metrics`. Opaque.
///
/// Made by `telemetry_usage_serve`; `telemetry_usage_server_free` stops and frees it.
pub struct UsageServer {
    inner: usage::UsageServer,
}

/// Where one timing's atomics are, for a binding that records without a call per
/// operation (the Go package does). Written by `telemetry_timing_cell`.
///
/// `words` points to `TELEMETRY_TIMING_CELL_WORDS` naturally aligned 64-bit words (the
/// block is 64-byte aligned), `bounds` to the family's `bounds_len` bucket bounds in
/// nanoseconds, increasing. Both stay valid until `telemetry_timing_free` of the timing
/// they were taken from; the bounds never change.
///
/// Every access to a word is atomic (any ordering), and a recorder makes only the core's
/// own updates (telemetry-core's `usage::raw` module):
/// - a success of `n` ns: add `n` to `TOTAL_NANOS`; add 1 to word `BUCKETS + i` for the
///   first `i` with `n <= bounds[i]` (`i = bounds_len` if none); lower `MIN_NANOS` to `n`
///   if `n` is below it (atomic minimum); raise `MAX_NANOS` to `n` if above (atomic
///   maximum); then the last second;
/// - a failure: add 1 to `FAIL`; then the last second;
/// - the last second: raise `LAST_SECOND` to the Unix second the operation ended if it is
///   above it (atomic maximum).
///
/// Nothing else is ever written. The core renders, anonymizes and reports the cell. The
/// first recording in a process goes through the library (see `telemetry_timing_cell`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TimingCellView {
    /// The cell's `TELEMETRY_TIMING_CELL_WORDS` words.
    pub words: *mut u64,
    /// The family's bounds in nanoseconds.
    pub bounds: *const u64,
    /// How many bounds; the cell uses `bounds_len + 1` buckets.
    pub bounds_len: usize,
}

fn usage_error(e: UsageError) -> Error {
    Error::new(ErrorCode::INVALID_ARGUMENT, e.to_string())
}

/// Refuses a NUL in text the Prometheus exposition carries (label values, help): strings
/// out of this library are NUL-terminated, so the text could not be handed back whole.
fn no_nul(what: &str, text: &str) -> Result<(), Error> {
    if text.contains('\0') {
        Err(Error::new(
            ErrorCode::INVALID_ARGUMENT,
            format!("{what} contains a NUL character, which C strings cannot carry"),
        ))
    } else {
        Ok(())
    }
}

/// Parses a JSON object argument: text that is not JSON is `INVALID_JSON`; anything else
/// that is not the object expected (an array too, which serde would take field by field)
/// is `INVALID_ARGUMENT`.
fn object<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, Error> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| json_error(what, &e, ErrorCode::INVALID_ARGUMENT))?;
    if !value.is_object() {
        return Err(Error::new(
            ErrorCode::INVALID_ARGUMENT,
            format!("{what} must be a JSON object"),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| Error::new(ErrorCode::INVALID_ARGUMENT, format!("{what}: {e}")))
}

/// A family's declaration as JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Declaration {
    name: String,
    #[serde(default)]
    help: String,
    #[serde(default)]
    labels: Vec<(String, PropertyKind)>,
    /// Timings only.
    #[serde(default)]
    bounds_millis: Option<Vec<f64>>,
    #[serde(default)]
    max_keys: Option<usize>,
}

/// # Safety
/// (`ptr`, `len`) readable or NULL.
unsafe fn declaration(ptr: *const c_char, len: usize) -> Result<Declaration, Error> {
    // SAFETY: forwarded.
    let text = unsafe { str_arg("declaration", ptr, len) }?;
    let d: Declaration = object("declaration", text)?;
    no_nul("help", &d.help)?;
    Ok(d)
}

/// A bound in milliseconds as a Duration, to the nanosecond; the core judges the rest
/// (positive, increasing, how many).
fn bound(i: usize, ms: f64) -> Result<Duration, Error> {
    let nanos = (ms * 1e6).round();
    if nanos.is_finite() && nanos >= 0.0 && nanos <= u64::MAX as f64 {
        Ok(Duration::from_nanos(nanos as u64))
    } else {
        Err(Error::new(
            ErrorCode::INVALID_ARGUMENT,
            format!("bounds_millis[{i}] is {ms}: bounds are positive numbers of milliseconds"),
        ))
    }
}

/// A label set: a JSON array of strings; NULL with length 0 (or `[]`) for none.
///
/// # Safety
/// (`ptr`, `len`) readable or NULL.
unsafe fn label_values(ptr: *const c_char, len: usize) -> Result<Vec<String>, Error> {
    // SAFETY: forwarded.
    let Some(text) = unsafe { optional_str_arg("labels", ptr, len) }? else {
        return Ok(Vec::new());
    };
    let values: Vec<String> = serde_json::from_str(text)
        .map_err(|e| json_error("labels", &e, ErrorCode::INVALID_ARGUMENT))?;
    for v in &values {
        no_nul("a label value", v)?;
    }
    Ok(values)
}

fn refs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

/// # Safety
/// `p` NULL or a live pointer of this library.
unsafe fn handle_ref<'a, T>(what: &str, p: *const T) -> Result<&'a T, Error> {
    // SAFETY: the caller's contract.
    unsafe { p.as_ref() }
        .ok_or_else(|| Error::new(ErrorCode::NULL_POINTER, format!("{what} is NULL")))
}

/// Frees a box this library handed out; NULL is a no-op.
///
/// # Safety
/// `p` NULL or from `Box::into_raw` of this library, not yet freed.
unsafe fn free_box<T>(p: *mut T) {
    guard_infallible((), || {
        if !p.is_null() {
            // SAFETY: as documented.
            drop(unsafe { Box::from_raw(p) });
        }
    })
}

// ---------------------------------------------------------------------------------------
// Timing families and timings
// ---------------------------------------------------------------------------------------

/// Declares an operation timing family of `client`'s usage statistics and writes it to
/// `*out_family`. The declaration is JSON: `{"name": "rest_responses", "help": "...",
/// "labels": [["route", "safe"], ["status", "safe"]], "bounds_millis": [1, 5, 10],
/// "max_keys": 1024}`; only `name` is required. A label's kind (`safe`, `hashed`, `exact`,
/// `number`, `text`, `dropped`) says how its values are anonymized in reports. Without
/// `bounds_millis` the buckets are Qdrant's (1 ms to 50 s); bounds may be fractional (0.5
/// is 500 µs). Past `max_keys` label sets (default 1024), new ones share one overflow
/// key (`__other__`).
///
/// Declaring the same name again with the same labels and bounds gives the same family.
///
/// Ownership: the declaration is borrowed. On success the caller owns `*out_family`
/// (free it with `telemetry_timing_family_free`); on failure it is untouched. Thread-safe.
///
/// Errors: `NULL_POINTER`, `TOO_LARGE`, `INVALID_UTF8`, `INVALID_JSON`, `INVALID_ARGUMENT`
/// (an unknown key or kind, a name that is not 1 to 100 of `a-z 0-9 _`, a label declared
/// twice or more than 8, bounds that are not 1 to 15 increasing positive durations, a
/// counter or a differently declared timing of that name, a NUL in the help).
///
/// ```c
/// const char *decl = "{\"name\":\"rest_responses\",\"labels\":[[\"route\",\"safe\"]]}";
/// telemetry_timing_family_t *rest = NULL;
/// telemetry_error_free(telemetry_timing_family_new(client, decl, strlen(decl), &rest));
/// ```
///
/// # Safety
/// `client` NULL or live; (`declaration_json`, `declaration_len`) readable or NULL;
/// `out_family` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_family_new(
    client: *const Client,
    declaration_json: *const c_char,
    declaration_len: usize,
    out_family: *mut *mut TimingFamily,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_family", out_family)?;
        // SAFETY: the caller's contract.
        let d = unsafe { declaration(declaration_json, declaration_len) }?;
        let usage = client.core().usage();
        let mut b = usage.timing(&d.name).help(&d.help);
        for (name, kind) in &d.labels {
            b = b.label(name, *kind);
        }
        if let Some(ms) = &d.bounds_millis {
            let bounds = ms
                .iter()
                .enumerate()
                .map(|(i, ms)| bound(i, *ms))
                .collect::<Result<Vec<_>, _>>()?;
            b = b.bounds(&bounds);
        }
        if let Some(n) = d.max_keys {
            b = b.max_keys(n);
        }
        let inner = b.build().map_err(usage_error)?;
        // SAFETY: checked non-NULL; written only on success.
        unsafe { *out_family = Box::into_raw(Box::new(TimingFamily { inner })) };
        Ok(())
    })
}

/// Frees a timing family handle (its numbers stay in the report). NULL is a no-op.
///
/// Takes ownership; no other call on this handle may run or follow. Timings taken from it
/// stay valid.
///
/// # Safety
/// `family` NULL or from `telemetry_timing_family_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_family_free(family: *mut TimingFamily) {
    // SAFETY: the caller's contract.
    unsafe { free_box(family) }
}

/// Writes the timing of one label set of `family` to `*out_timing`: the values as a JSON
/// array of strings in the declared label order (`["GET /collections", "200"]`), or NULL
/// with length 0 for a family without labels. Made on first use; the same label set
/// always records into the same cell, and past the family's `max_keys` a new set records
/// into the overflow key's.
///
/// Ownership: the labels are borrowed; the caller owns `*out_timing` (free it with
/// `telemetry_timing_free`), untouched on failure. Thread-safe.
///
/// Errors: `NULL_POINTER`, `TOO_LARGE`, `INVALID_UTF8`, `INVALID_JSON`, `INVALID_ARGUMENT`
/// (not an array of strings, the wrong number of values, a value containing NUL).
///
/// # Safety
/// `family` NULL or live; (`labels_json`, `labels_len`) readable or NULL; `out_timing`
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_family_with(
    family: *const TimingFamily,
    labels_json: *const c_char,
    labels_len: usize,
    out_timing: *mut *mut Timing,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let family = unsafe { handle_ref("family", family) }?;
        non_null("out_timing", out_timing)?;
        // SAFETY: the caller's contract.
        let values = unsafe { label_values(labels_json, labels_len) }?;
        let inner = family.inner.with(&refs(&values)).map_err(usage_error)?;
        // SAFETY: checked non-NULL; written only on success.
        unsafe { *out_timing = Box::into_raw(Box::new(Timing { inner })) };
        Ok(())
    })
}

/// Records one operation of a label set (as in `telemetry_timing_family_with`) that
/// worked and took `nanos` nanoseconds, ending now, without a handle: for hosts that learn
/// a label (the status) only when the operation ends.
///
/// Never blocks; thread-safe. Errors: as `telemetry_timing_family_with`; nothing is
/// recorded when one is returned.
///
/// # Safety
/// `family` NULL or live; (`labels_json`, `labels_len`) readable or NULL.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_family_record(
    family: *const TimingFamily,
    labels_json: *const c_char,
    labels_len: usize,
    nanos: u64,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let family = unsafe { handle_ref("family", family) }?;
        // SAFETY: the caller's contract.
        let values = unsafe { label_values(labels_json, labels_len) }?;
        family
            .inner
            .record(&refs(&values), Duration::from_nanos(nanos))
            .map_err(usage_error)
    })
}

/// Counts one failed operation of a label set, ending now, without a handle (failures are
/// counted, not timed).
///
/// As `telemetry_timing_family_record`.
///
/// # Safety
/// As for `telemetry_timing_family_record`.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_family_record_failure(
    family: *const TimingFamily,
    labels_json: *const c_char,
    labels_len: usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let family = unsafe { handle_ref("family", family) }?;
        // SAFETY: the caller's contract.
        let values = unsafe { label_values(labels_json, labels_len) }?;
        family
            .inner
            .record_failure(&refs(&values))
            .map_err(usage_error)
    })
}

/// Frees a timing. NULL is a no-op. Its numbers stay in the report.
///
/// Takes ownership; no other call on this handle may run or follow, and a view from
/// `telemetry_timing_cell` is invalid from here on.
///
/// # Safety
/// `timing` NULL or from `telemetry_timing_family_with`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_free(timing: *mut Timing) {
    // SAFETY: the caller's contract.
    unsafe { free_box(timing) }
}

/// Records one operation that worked and took `nanos` nanoseconds, ending now.
///
/// A handful of atomic operations: no lock, no allocation, never blocks. Thread-safe.
/// Errors: `NULL_POINTER`.
///
/// ```c
/// struct timespec a, b;
/// clock_gettime(CLOCK_MONOTONIC, &a);
/// do_the_operation();
/// clock_gettime(CLOCK_MONOTONIC, &b);
/// uint64_t ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)(b.tv_nsec - a.tv_nsec);
/// telemetry_error_free(telemetry_timing_record(timing, ns));
/// ```
///
/// # Safety
/// `timing` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_record(timing: *const Timing, nanos: u64) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let timing = unsafe { handle_ref("timing", timing) }?;
        timing.inner.record(Duration::from_nanos(nanos));
        Ok(())
    })
}

/// Counts one failed operation, ending now (counted, not timed).
///
/// As `telemetry_timing_record`.
///
/// # Safety
/// `timing` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_record_failure(timing: *const Timing) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let timing = unsafe { handle_ref("timing", timing) }?;
        timing.inner.record_failure();
        Ok(())
    })
}

/// Records one operation that worked, took `nanos` nanoseconds and ended at the Unix
/// second `unix_second`: for test vectors and hosts that carry their own clock.
///
/// As `telemetry_timing_record`.
///
/// # Safety
/// `timing` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_record_at(
    timing: *const Timing,
    nanos: u64,
    unix_second: u64,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let timing = unsafe { handle_ref("timing", timing) }?;
        timing
            .inner
            .record_at(Duration::from_nanos(nanos), unix_second);
        Ok(())
    })
}

/// Counts one failed operation that ended at the Unix second `unix_second`.
///
/// As `telemetry_timing_record`.
///
/// # Safety
/// `timing` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_record_failure_at(
    timing: *const Timing,
    unix_second: u64,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let timing = unsafe { handle_ref("timing", timing) }?;
        timing.inner.record_failure_at(unix_second);
        Ok(())
    })
}

/// Writes the timing's numbers now as JSON to `*out_json`: `{"count", "fail_count",
/// "total_nanos", "min_nanos", "max_nanos", "last_second", "cumulative": [per bound]}`
/// (`count` is the `+Inf` bucket; `min_nanos` is 0 before the first success).
///
/// The caller owns `*out_json` (free it with `telemetry_string_free`); untouched on
/// failure. Thread-safe; never stalls a recorder. Errors: `NULL_POINTER`.
///
/// # Safety
/// `timing` NULL or live; `out_json` NULL or valid for a write; `out_len` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_snapshot(
    timing: *const Timing,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let timing = unsafe { handle_ref("timing", timing) }?;
        non_null("out_json", out_json)?;
        let s = timing.inner.snapshot();
        let text = json!({
            "count": s.count,
            "fail_count": s.fail_count,
            "total_nanos": s.total_nanos,
            "min_nanos": s.min_nanos,
            "max_nanos": s.max_nanos,
            "last_second": s.last_second,
            "cumulative": s.cumulative,
        })
        .to_string();
        // SAFETY: checked non-NULL.
        unsafe { write_string(text, out_json, out_len) }
    })
}

/// Writes where the timing's atomics are to `*out_cell`, for a binding that records with
/// its own atomic operations instead of a call per operation; `telemetry_timing_cell_t`
/// states exactly what it may write.
///
/// Taking the view records nothing and starts nothing. On an enabled client the first
/// recording starts the worker that sends reports home, so a recorder makes its first
/// recording in a process through this library (`telemetry_timing_record_at`,
/// `telemetry_timing_record_failure_at`, ...) and the later ones through the view; a
/// process that forks does the same again in the child.
///
/// The view is valid until `telemetry_timing_free(timing)`; untouched on failure.
/// Thread-safe. Errors: `NULL_POINTER`.
///
/// # Safety
/// `timing` NULL or live; `out_cell` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_timing_cell(
    timing: *const Timing,
    out_cell: *mut TimingCellView,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let timing = unsafe { handle_ref("timing", timing) }?;
        non_null("out_cell", out_cell)?;
        let cell = timing.inner.raw_cell();
        // SAFETY: checked non-NULL.
        unsafe {
            *out_cell = TimingCellView {
                words: cell.words.cast_mut().cast::<u64>(),
                bounds: cell.bounds,
                bounds_len: cell.bounds_len,
            }
        };
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Counter families and counters
// ---------------------------------------------------------------------------------------

/// Declares a counter family and writes it to `*out_family`: `{"name": "points_upserted",
/// "help": "...", "labels": [["collection", "hashed"]], "max_keys": 1024}` (only `name` is
/// required; `bounds_millis` is refused). Declaring the same name again with the same
/// labels gives the same family.
///
/// Ownership, thread-safety and errors as `telemetry_timing_family_new`; free it with
/// `telemetry_counter_family_free`.
///
/// # Safety
/// As for `telemetry_timing_family_new`.
#[no_mangle]
pub unsafe extern "C" fn telemetry_counter_family_new(
    client: *const Client,
    declaration_json: *const c_char,
    declaration_len: usize,
    out_family: *mut *mut CounterFamily,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_family", out_family)?;
        // SAFETY: the caller's contract.
        let d = unsafe { declaration(declaration_json, declaration_len) }?;
        if d.bounds_millis.is_some() {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("counter {:?}: bounds_millis is for timings", d.name),
            ));
        }
        let mut b = client.core().usage().counter(&d.name).help(&d.help);
        for (name, kind) in &d.labels {
            b = b.label(name, *kind);
        }
        if let Some(n) = d.max_keys {
            b = b.max_keys(n);
        }
        let inner = b.build().map_err(usage_error)?;
        // SAFETY: checked non-NULL; written only on success.
        unsafe { *out_family = Box::into_raw(Box::new(CounterFamily { inner })) };
        Ok(())
    })
}

/// Frees a counter family handle (its numbers stay in the report). NULL is a no-op.
///
/// As `telemetry_timing_family_free`.
///
/// # Safety
/// `family` NULL or from `telemetry_counter_family_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn telemetry_counter_family_free(family: *mut CounterFamily) {
    // SAFETY: the caller's contract.
    unsafe { free_box(family) }
}

/// Writes the counter of one label set (a JSON array of strings, or NULL with length 0
/// for a family without labels) to `*out_counter`; free it with `telemetry_counter_free`.
///
/// As `telemetry_timing_family_with`.
///
/// # Safety
/// `family` NULL or live; (`labels_json`, `labels_len`) readable or NULL; `out_counter`
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_counter_family_with(
    family: *const CounterFamily,
    labels_json: *const c_char,
    labels_len: usize,
    out_counter: *mut *mut Counter,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let family = unsafe { handle_ref("family", family) }?;
        non_null("out_counter", out_counter)?;
        // SAFETY: the caller's contract.
        let values = unsafe { label_values(labels_json, labels_len) }?;
        let inner = family.inner.with(&refs(&values)).map_err(usage_error)?;
        // SAFETY: checked non-NULL; written only on success.
        unsafe { *out_counter = Box::into_raw(Box::new(Counter { inner })) };
        Ok(())
    })
}

/// Adds `n` to one label set's counter without a handle.
///
/// As `telemetry_timing_family_record`.
///
/// # Safety
/// `family` NULL or live; (`labels_json`, `labels_len`) readable or NULL.
#[no_mangle]
pub unsafe extern "C" fn telemetry_counter_family_add(
    family: *const CounterFamily,
    labels_json: *const c_char,
    labels_len: usize,
    n: u64,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let family = unsafe { handle_ref("family", family) }?;
        // SAFETY: the caller's contract.
        let values = unsafe { label_values(labels_json, labels_len) }?;
        family.inner.add(&refs(&values), n).map_err(usage_error)
    })
}

/// Frees a counter. NULL is a no-op; its total stays in the report.
///
/// As `telemetry_timing_free` (a word from `telemetry_counter_cell` is invalid from here).
///
/// # Safety
/// `counter` NULL or from `telemetry_counter_family_with`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn telemetry_counter_free(counter: *mut Counter) {
    // SAFETY: the caller's contract.
    unsafe { free_box(counter) }
}

/// Adds `n` to the counter (wrapping at 2^64). One atomic addition; thread-safe.
/// Errors: `NULL_POINTER`.
///
/// # Safety
/// `counter` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn telemetry_counter_add(counter: *const Counter, n: u64) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let counter = unsafe { handle_ref("counter", counter) }?;
        counter.inner.add(n);
        Ok(())
    })
}

/// Writes the counter's total now to `*out_value` (untouched on failure). Thread-safe.
/// Errors: `NULL_POINTER`.
///
/// # Safety
/// `counter` NULL or live; `out_value` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_counter_value(
    counter: *const Counter,
    out_value: *mut u64,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let counter = unsafe { handle_ref("counter", counter) }?;
        non_null("out_value", out_value)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_value = counter.inner.get() };
        Ok(())
    })
}

/// Writes the address of the counter's word to `*out_word`, for a binding that adds with
/// its own atomic operation: a naturally aligned 64-bit word to which only atomic
/// additions are ever made. Valid until `telemetry_counter_free(counter)`. As with
/// `telemetry_timing_cell`, the first addition in a process goes through
/// `telemetry_counter_add`, which starts an enabled client's worker. Untouched on failure;
/// thread-safe.
/// Errors: `NULL_POINTER`.
///
/// # Safety
/// `counter` NULL or live; `out_word` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_counter_cell(
    counter: *const Counter,
    out_word: *mut *mut u64,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let counter = unsafe { handle_ref("counter", counter) }?;
        non_null("out_word", out_word)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_word = counter.inner.raw_cell().cast_mut().cast::<u64>() };
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Sections and app fields
// ---------------------------------------------------------------------------------------

/// A section as JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionJson {
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    kinds: Map<String, Value>,
    #[serde(default)]
    level: Option<u64>,
}

fn kinds(map: Map<String, Value>) -> Result<Vec<(String, PropertyKind)>, Error> {
    map.into_iter()
        .map(|(k, v)| {
            let kind = serde_json::from_value::<PropertyKind>(v.clone()).map_err(|_| {
                Error::new(
                    ErrorCode::INVALID_ARGUMENT,
                    format!(
                        "kinds.{k} is {v}: a kind is safe, hashed, exact, number, text or dropped"
                    ),
                )
            })?;
            Ok((k, kind))
        })
        .collect()
}

/// Sets (or replaces) the section `name` of the report (Qdrant's `collections`,
/// `cluster`, ...) to a value pushed by the host: `{"value": <any JSON but null>, "kinds":
/// {"field": "safe" | "hashed" | "exact" | "number" | "text" | "dropped"}, "level": 2}`.
/// A field named in `kinds`, at any depth, is anonymized by that kind; other fields go by
/// their type (strings hashed, numbers rounded). `level` (default 2) is the lowest
/// details level that shows the section; higher than 4 means 4.
///
/// The value is kept as given until the host sets it again: the library never calls the
/// host to compute it. Thread-safe.
///
/// Errors: `NULL_POINTER`, `TOO_LARGE`, `INVALID_UTF8`, `INVALID_JSON`, `INVALID_ARGUMENT`
/// (an unknown key or kind, no value, a negative level, a name that is not 1 to 100 of
/// `a-z 0-9 _`, or one of the core's: `id`, `app`, `system`, `counters`, `operations`).
///
/// # Safety
/// `client` NULL or live; each (pointer, length) pair readable or NULL.
#[no_mangle]
pub unsafe extern "C" fn telemetry_usage_set_section(
    client: *const Client,
    name: *const c_char,
    name_len: usize,
    section_json: *const c_char,
    section_len: usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        // SAFETY: the caller's contract.
        let name = unsafe { str_arg("name", name, name_len) }?;
        // SAFETY: the caller's contract.
        let text = unsafe { str_arg("section", section_json, section_len) }?;
        let s: SectionJson = object("section", text)?;
        let value = s.value.ok_or_else(|| {
            Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("section {name:?} has no value (or null)"),
            )
        })?;
        let level = u8::try_from(s.level.unwrap_or(2)).unwrap_or(u8::MAX);
        let section = Section::new(value).kinds(kinds(s.kinds)?).level(level);
        client
            .core()
            .usage()
            .set_section(name, section)
            .map_err(usage_error)
    })
}

/// Removes the section `name`; writes whether it was there to `*out_removed` unless
/// `out_removed` is NULL. Thread-safe. Errors: `NULL_POINTER`, `TOO_LARGE`,
/// `INVALID_UTF8`.
///
/// # Safety
/// `client` NULL or live; (`name`, `name_len`) readable or NULL; `out_removed` NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_usage_remove_section(
    client: *const Client,
    name: *const c_char,
    name_len: usize,
    out_removed: *mut bool,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        // SAFETY: the caller's contract.
        let name = unsafe { str_arg("name", name, name_len) }?;
        let removed = client.core().usage().remove_section(name);
        if !out_removed.is_null() {
            // SAFETY: the caller's contract.
            unsafe { *out_removed = removed };
        }
        Ok(())
    })
}

/// Sets the fields the integrator adds to the report's `app` object (features, startup
/// time, ...): `{"value": {<fields>}, "kinds": {...}}`, anonymized by the kinds as a
/// section is; `name`, `version` and `core_version` stay the core's. Replaces earlier
/// fields. Thread-safe.
///
/// Errors: `NULL_POINTER`, `TOO_LARGE`, `INVALID_UTF8`, `INVALID_JSON`, `INVALID_ARGUMENT`
/// (an unknown key or kind, a value that is not an object, a `level`).
///
/// # Safety
/// `client` NULL or live; (`fields_json`, `fields_len`) readable or NULL.
#[no_mangle]
pub unsafe extern "C" fn telemetry_usage_set_app_fields(
    client: *const Client,
    fields_json: *const c_char,
    fields_len: usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        // SAFETY: the caller's contract.
        let text = unsafe { str_arg("app fields", fields_json, fields_len) }?;
        let s: SectionJson = object("app fields", text)?;
        if s.level.is_some() {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                "app fields have no level: they are part of every report",
            ));
        }
        let Some(value @ Value::Object(_)) = s.value else {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                "app fields: value must be a JSON object of fields",
            ));
        };
        let section = Section::new(value).kinds(kinds(s.kinds)?);
        client.core().usage().set_app_fields(section);
        Ok(())
    })
}

/// Names the directory the host keeps its data in (`path`, UTF-8): the report gives the
/// size and type of the disk holding it, never the path. Thread-safe.
///
/// Errors: `NULL_POINTER`, `TOO_LARGE`, `INVALID_UTF8`.
///
/// # Safety
/// `client` NULL or live; (`path`, `path_len`) readable or NULL.
#[no_mangle]
pub unsafe extern "C" fn telemetry_usage_set_data_dir(
    client: *const Client,
    path: *const c_char,
    path_len: usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        // SAFETY: the caller's contract.
        let path = unsafe { str_arg("path", path, path_len) }?;
        client.core().usage().set_data_dir(path);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Rendering and serving
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportRequest {
    #[serde(default)]
    details_level: u64,
    #[serde(default)]
    anonymize: bool,
    #[serde(default)]
    histograms: Option<bool>,
}

/// Writes the usage report as JSON to `*out_json`. The options are JSON, `{"details_level":
/// 0..4 (higher means 4), "anonymize": false, "histograms": null | true | false}` (all
/// optional; NULL with length 0 for the defaults: level 0, plain, histograms from level
/// 3). Anonymized, it is what is sent home: label and section values through their kinds,
/// durations and sizes rounded, counts exact.
///
/// Level 0: `id`, `app`, counters' totals, timings' counts, failures and averages; 1 adds
/// `system` and each timing's extremes, total and last response; 2 the numbers per label
/// set and the sections; 3 histograms and level-3 sections; 4 level-4 sections.
///
/// The caller owns `*out_json` (free it with `telemetry_string_free`); untouched on
/// failure. Thread-safe; never stalls a recorder. Errors: `NULL_POINTER`, `TOO_LARGE`,
/// `INVALID_UTF8`, `INVALID_JSON`, `INVALID_ARGUMENT` (an unknown key, a negative level).
///
/// # Safety
/// `client` NULL or live; (`options_json`, `options_len`) readable or NULL; `out_json`
/// NULL or valid for a write; `out_len` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_usage_report(
    client: *const Client,
    options_json: *const c_char,
    options_len: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_json", out_json)?;
        // SAFETY: the caller's contract.
        let options = match unsafe { optional_str_arg("options", options_json, options_len) }? {
            None => ReportOptions::default(),
            Some(text) => {
                let r: ReportRequest = object("options", text)?;
                ReportOptions {
                    details_level: u8::try_from(r.details_level).unwrap_or(u8::MAX),
                    anonymize: r.anonymize,
                    histograms: r.histograms,
                }
            }
        };
        let text = client.core().usage().report(&options).to_string();
        // SAFETY: checked non-NULL.
        unsafe { write_string(text, out_json, out_len) }
    })
}

/// Writes the Prometheus text exposition (version 0.0.4) of every declared family to
/// `*out_text`: counters as `<product>_<name>_total`, timings as histograms in seconds
/// (`<product>_<name>_seconds`) plus `<product>_<name>_failures_total`. Anonymized, label
/// values go through their kinds and sums are rounded.
///
/// Ownership and thread-safety as `telemetry_usage_report`. Errors: `NULL_POINTER`.
///
/// # Safety
/// `client` NULL or live; `out_text` NULL or valid for a write; `out_len` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn telemetry_usage_prometheus(
    client: *const Client,
    anonymize: bool,
    out_text: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_text", out_text)?;
        let text = client.core().usage().prometheus(anonymize);
        // SAFETY: checked non-NULL.
        unsafe { write_string(text, out_text, out_len) }
    })
}

/// Answers one HTTP request for the local endpoints, for a host mounting them in its own
/// server: `path` (`/telemetry` or `/metrics`; a trailing `/` is ignored; any other is a
/// 404) and `query`, the raw query string without `?` (NULL with length 0 for none).
/// `/telemetry` takes `details_level` and `anonymize`, `/metrics` takes `anonymize`;
/// anything else in the query is a 400 whose JSON body names the parameter.
///
/// Writes the status (200, 400 or 404) to `*out_status`, the content type to
/// `*out_content_type` and the body to `*out_body` (its length to `*out_body_len` unless
/// that is NULL). The caller owns both strings and frees each with
/// `telemetry_string_free`; nothing is written on failure. The HTTP method is the host's
/// to check (the library's own server answers GET and HEAD only). Thread-safe.
///
/// Errors (not HTTP statuses: the call itself failed): `NULL_POINTER`, `TOO_LARGE`,
/// `INVALID_UTF8`.
///
/// # Safety
/// `client` NULL or live; each (pointer, length) pair readable or NULL; each out-parameter
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_usage_handle(
    client: *const Client,
    path: *const c_char,
    path_len: usize,
    query: *const c_char,
    query_len: usize,
    out_status: *mut u16,
    out_content_type: *mut *mut c_char,
    out_body: *mut *mut c_char,
    out_body_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_status", out_status)?;
        non_null("out_content_type", out_content_type)?;
        non_null("out_body", out_body)?;
        // SAFETY: the caller's contract.
        let path = unsafe { str_arg("path", path, path_len) }?;
        // SAFETY: the caller's contract.
        let query = unsafe { optional_str_arg("query", query, query_len) }?.unwrap_or("");
        let r = client.core().usage().handle(path, query);
        let body_len = r.body.len();
        let content_type = c_string(r.content_type.to_string())?;
        let body = c_string(r.body)?;
        // SAFETY: checked non-NULL; every fallible step is done.
        unsafe {
            *out_status = r.status;
            write_c_string(content_type, 0, out_content_type, std::ptr::null_mut());
            write_c_string(body, body_len, out_body, out_body_len);
        }
        Ok(())
    })
}

/// Serves `/telemetry` and `/metrics` on `addr`, a loopback address with a port
/// (`127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`; port 0 picks a free one), on a thread
/// of its own, whatever the consent decision (it sends nothing anywhere). Serving the
/// numbers beyond loopback is the host's decision, made with its own server and
/// `telemetry_usage_handle`.
///
/// The caller owns `*out_server` (untouched on failure); `telemetry_usage_server_free`
/// stops it. Thread-safe. Errors: `NULL_POINTER`, `TOO_LARGE`, `INVALID_UTF8`,
/// `INVALID_ARGUMENT` (not an address, not loopback, or the port cannot be listened on:
/// in use, or not permitted).
///
/// # Safety
/// `client` NULL or live; (`addr`, `addr_len`) readable or NULL; `out_server` NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_usage_serve(
    client: *const Client,
    addr: *const c_char,
    addr_len: usize,
    out_server: *mut *mut UsageServer,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_server", out_server)?;
        // SAFETY: the caller's contract.
        let addr = unsafe { str_arg("addr", addr, addr_len) }?;
        let inner = client.core().usage().serve(addr).map_err(usage_error)?;
        // SAFETY: checked non-NULL; written only on success.
        unsafe { *out_server = Box::into_raw(Box::new(UsageServer { inner })) };
        Ok(())
    })
}

/// Writes the server's URL, `http://127.0.0.1:PORT` (the port chosen when 0 was asked
/// for), to `*out_url`; the caller frees it with `telemetry_string_free`. Thread-safe.
/// Errors: `NULL_POINTER`.
///
/// # Safety
/// `server` NULL or live; `out_url` NULL or valid for a write; `out_len` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn telemetry_usage_server_url(
    server: *const UsageServer,
    out_url: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let server = unsafe { handle_ref("server", server) }?;
        non_null("out_url", out_url)?;
        // SAFETY: checked non-NULL.
        unsafe { write_string(server.inner.url(), out_url, out_len) }
    })
}

/// Stops the server (waiting for the request it is answering, if any) and frees it. NULL
/// is a no-op.
///
/// Takes ownership; no other call on this server may run or follow. Blocks the calling
/// thread for at most a fraction of a second.
///
/// # Safety
/// `server` NULL or from `telemetry_usage_serve`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn telemetry_usage_server_free(server: *mut UsageServer) {
    // SAFETY: the caller's contract.
    unsafe { free_box(server) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_convert_to_the_nanosecond_and_refuse_what_is_no_duration() {
        assert_eq!(bound(0, 0.5).unwrap(), Duration::from_micros(500));
        assert_eq!(bound(0, 1.0).unwrap(), Duration::from_millis(1));
        assert_eq!(bound(0, 0.000_001).unwrap(), Duration::from_nanos(1));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e30] {
            let e = bound(3, bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::INVALID_ARGUMENT);
            assert!(e.message().contains("bounds_millis[3]"), "{}", e.message());
        }
    }

    #[test]
    fn kinds_are_checked_with_the_field_named() {
        let mut m = Map::new();
        m.insert("a".into(), json!("secret"));
        let e = kinds(m).unwrap_err();
        assert!(e.message().contains("kinds.a"), "{}", e.message());
        let mut m = Map::new();
        m.insert("a".into(), json!("exact"));
        assert_eq!(
            kinds(m).unwrap(),
            vec![("a".to_string(), PropertyKind::Exact)]
        );
    }
}
