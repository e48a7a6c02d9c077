//! The library's log records, kept for the host to take: `telemetry_log_enable` starts
//! keeping them, `telemetry_log_take` hands them over as JSON.
//!
//! In: what the core and its dependencies write through Rust's `log` facade — the one
//! warning per failure streak ("delivery to ... failed (...): dropped 2 events"), the info
//! when delivery works again, the warnings about consent values that were not understood.
//! Out: a JSON array of `{level, target, message, unix_ms}` for whoever calls
//! `telemetry_log_take` (the Go package, on its own goroutines).
//!
//! Why a queue and not a callback: no thread of the library ever calls into the host. A
//! worker that called a Go (or any host) function would run host code on a thread the host
//! did not create, at the host's pace: a slow handler would stall delivery, a panicking one
//! would abort inside the worker, and at exit the host's runtime may already be gone. So
//! records wait here, and the host takes them on its own threads, as the Python binding
//! does (crates/telemetry-py/src/logging.rs).
//!
//! * Off until `telemetry_log_enable(true)`: before that no logger is installed and the
//!   facade's maximum level is `Off`, so a record costs one atomic load and is discarded.
//! * Bounded: at most [`MAX_PENDING`] records wait; later ones are dropped and counted, and
//!   the next take ends with one record saying how many. One failure streak logs one
//!   warning, so a host that takes now and then never comes near the bound.
//! * Filtered here: the core's records from info, its dependencies' (the HTTP stack logs
//!   every request at debug) from warn.
//! * Process-wide, as the `log` facade is: a record does not say which client wrote it
//!   (the delivery messages name the endpoint).

use std::collections::VecDeque;
use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};
use serde::Serialize;

use crate::error::{guard, guard_infallible, Error, ErrorCode};
use crate::io::{non_null, write_string};

/// Records waiting to be taken; more than this between two takes are dropped (and
/// counted). The Python binding keeps the same number.
const MAX_PENDING: usize = 64;

/// Set while records are kept; the logger's `enabled` reads it.
static KEEPING: AtomicBool = AtomicBool::new(false);
/// Whether this library's logger is the facade's: `log` accepts one logger per process,
/// for good, so this is decided by the first `telemetry_log_enable(true)`.
static INSTALLED: OnceLock<bool> = OnceLock::new();
static QUEUE: Mutex<Pending> = Mutex::new(Pending::new());

/// One record as the host receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Kept {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    level: &'static str,
    /// The Rust module that wrote it, e.g. `telemetry_core::worker`.
    target: String,
    message: String,
    /// When it was written (milliseconds since the Unix epoch): the host may take it
    /// seconds later.
    unix_ms: u64,
}

impl Kept {
    fn new(level: Level, target: &str, message: String) -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Kept {
            level: level_name(level),
            target: target.to_string(),
            message,
            unix_ms,
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// The bounded queue: records in order, and how many did not fit.
#[derive(Debug)]
struct Pending {
    records: VecDeque<Kept>,
    dropped: u64,
}

impl Pending {
    const fn new() -> Self {
        Pending {
            records: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Keeps `record` unless [`MAX_PENDING`] are already waiting; never waits itself.
    fn push(&mut self, record: Kept) {
        if self.records.len() < MAX_PENDING {
            self.records.push_back(record);
        } else {
            self.dropped += 1;
        }
    }

    /// Everything waiting, oldest first, then (if any were dropped) a record saying how
    /// many; empties the queue.
    fn take(&mut self) -> Vec<Kept> {
        let mut out: Vec<Kept> = self.records.drain(..).collect();
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            let s = if dropped == 1 { "" } else { "s" };
            out.push(Kept::new(
                Level::Warn,
                module_path!(),
                format!(
                    "telemetry: {dropped} log record{s} dropped: more than {MAX_PENDING} \
                     waited to be taken"
                ),
            ));
        }
        out
    }

    fn clear(&mut self) {
        self.records.clear();
        self.dropped = 0;
    }
}

/// The queue, even if a thread panicked while holding it: a queue of plain records stays
/// consistent whatever happened.
fn queue() -> MutexGuard<'static, Pending> {
    QUEUE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The level filter: the core's records (and this crate's) from info, every other
/// crate's from warn.
fn wanted(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    let floor = if target.starts_with("telemetry_core") || target.starts_with("telemetry_ffi") {
        Level::Info
    } else {
        Level::Warn
    };
    metadata.level() <= floor
}

/// The logger installed in the `log` facade: it only formats and queues.
struct Keeper;

impl Log for Keeper {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        KEEPING.load(Ordering::Acquire) && wanted(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Formatted before taking the lock, which is held only to push.
        let kept = Kept::new(record.level(), record.target(), record.args().to_string());
        queue().push(kept);
    }

    fn flush(&self) {}
}

/// Starts (`enabled` true) or stops (false) keeping the library's log records for
/// `telemetry_log_take`. Off by default: until it is called, records are discarded at the
/// cost of one atomic load. Stopping discards what is still waiting.
///
/// Returns whether records are now kept: false after stopping, and false when another
/// logger already owns the process's Rust `log` facade — possible only in a Rust program
/// that links this crate and installed its own logger, where the records go to that
/// logger instead.
///
/// The switch is process-wide (records do not belong to a client), so a host that creates
/// several clients turns it on once and off after the last one. Thread-safe.
///
/// ```c
/// telemetry_log_enable(true);             // before telemetry_client_new: its warnings too
/// telemetry_client_t *client = NULL;
/// telemetry_error_free(telemetry_client_new(cfg, strlen(cfg), &client));
/// char *records = NULL;
/// telemetry_error_free(telemetry_log_take(&records, NULL));
/// ```
#[no_mangle]
pub extern "C" fn telemetry_log_enable(enabled: bool) -> bool {
    guard_infallible(false, || {
        if !enabled {
            KEEPING.store(false, Ordering::Release);
            if INSTALLED.get() == Some(&true) {
                log::set_max_level(LevelFilter::Off);
            }
            queue().clear();
            return false;
        }
        let ours = *INSTALLED.get_or_init(|| log::set_logger(&Keeper).is_ok());
        if ours {
            KEEPING.store(true, Ordering::Release);
            // Debug and trace records are never kept: the macros skip formatting them.
            log::set_max_level(LevelFilter::Info);
        }
        ours
    })
}

/// Takes the log records waiting since the previous take, oldest first, and writes them
/// to `*out_json` as a JSON array (its length, without the NUL, to `*out_len` unless
/// `out_len` is NULL); `[]` when there are none:
///
/// ```json
/// [{"level": "warn", "target": "telemetry_core::worker", "unix_ms": 1764579600123,
///   "message": "telemetry: delivery to http://127.0.0.1:9 failed (...): dropped 2 events;
///               further failures are not logged until delivery works again"}]
/// ```
///
/// `level` is `error`, `warn` or `info` (the core's records from info, its dependencies'
/// from warn); `unix_ms` is when the record was written. At most 64 records wait between
/// two takes: when more came, the later ones were dropped and a last record (target
/// `telemetry_ffi::log`) says how many. Nothing is kept until `telemetry_log_enable(true)`.
///
/// Records are process-wide, not per client: each one is returned by exactly one take.
/// No library thread ever calls the host; taking is the host's job, on its own threads
/// (a take is cheap: a lock held only by pushes and takes, and a short JSON text).
///
/// Ownership: the caller owns `*out_json` and frees it with `telemetry_string_free`;
/// untouched on failure (a NULL `out_json` takes nothing). Thread-safe. Errors:
/// `NULL_POINTER`.
///
/// # Safety
/// `out_json` NULL or valid for a write; `out_len` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_log_take(
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        non_null("out_json", out_json)?;
        let records = queue().take();
        // Plain strings and numbers: serializing them cannot fail.
        let text = serde_json::to_string(&records)
            .map_err(|e| Error::new(ErrorCode::PANIC, format!("log records: {e}")))?;
        // SAFETY: checked non-NULL; `out_len` is the caller's contract.
        unsafe { write_string(text, out_json, out_len) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::ptr;

    fn kept(n: usize) -> Kept {
        Kept::new(Level::Warn, "telemetry_core::worker", format!("record {n}"))
    }

    #[test]
    fn the_queue_keeps_sixty_four_and_says_how_many_it_dropped() {
        let mut q = Pending::new();
        for n in 0..MAX_PENDING + 6 {
            q.push(kept(n));
        }
        let out = q.take();
        assert_eq!(out.len(), MAX_PENDING + 1);
        // The first ones are kept, in order: a streak's first warning says the most.
        for (n, r) in out[..MAX_PENDING].iter().enumerate() {
            assert_eq!(r.message, format!("record {n}"));
        }
        let note = &out[MAX_PENDING];
        assert_eq!(
            (note.level, note.target.as_str()),
            ("warn", "telemetry_ffi::log")
        );
        assert!(
            note.message.contains("6 log records dropped"),
            "{}",
            note.message
        );
        assert!(
            q.take().is_empty(),
            "a take empties the queue, drop count included"
        );
    }

    #[test]
    fn levels_core_from_info_dependencies_from_warn() {
        let meta = |level, target| Metadata::builder().level(level).target(target).build();
        assert!(wanted(&meta(Level::Info, "telemetry_core::worker")));
        assert!(wanted(&meta(Level::Warn, "telemetry_core::client")));
        assert!(!wanted(&meta(Level::Debug, "telemetry_core::worker")));
        assert!(wanted(&meta(Level::Info, "telemetry_ffi::log")));
        assert!(wanted(&meta(Level::Warn, "ureq::unversioned::transport")));
        assert!(wanted(&meta(Level::Error, "rustls")));
        assert!(!wanted(&meta(Level::Info, "ureq")));
        assert!(!wanted(&meta(Level::Debug, "ureq")));
    }

    #[test]
    fn a_record_serializes_as_the_header_documents() {
        let r = Kept::new(Level::Info, "telemetry_core::worker", "works again".into());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["level"], "info");
        assert_eq!(v["target"], "telemetry_core::worker");
        assert_eq!(v["message"], "works again");
        assert!(v["unix_ms"].as_u64().unwrap() > 1_700_000_000_000);
        assert_eq!(v.as_object().unwrap().len(), 4);
    }

    fn take() -> Vec<serde_json::Value> {
        let mut out = ptr::null_mut();
        let mut len = 0;
        let err = unsafe { telemetry_log_take(&mut out, &mut len) };
        assert!(err.is_null());
        let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
        assert_eq!(text.len(), len);
        unsafe { crate::telemetry_string_free(out) };
        serde_json::from_str(&text).unwrap()
    }

    fn messages(records: &[serde_json::Value]) -> Vec<String> {
        records
            .iter()
            .map(|r| r["message"].as_str().unwrap().to_owned())
            .collect()
    }

    // The only test touching the process-wide logger: other tests of this crate may log
    // meanwhile, so it looks for its own messages rather than counting records.
    #[test]
    fn enable_take_and_disable_through_the_facade() {
        let err = unsafe { telemetry_log_take(ptr::null_mut(), ptr::null_mut()) };
        assert_eq!(
            unsafe { crate::telemetry_error_code(err) },
            ErrorCode::NULL_POINTER
        );
        unsafe { crate::telemetry_error_free(err) };

        log::warn!(target: "telemetry_core::ffi_log_test", "before enabling");
        assert!(
            telemetry_log_enable(true),
            "no other logger in this test binary"
        );
        assert!(telemetry_log_enable(true), "enabling twice is fine");
        log::warn!(target: "telemetry_core::ffi_log_test", "kept warning");
        log::info!(target: "telemetry_core::ffi_log_test", "kept info");
        log::debug!(target: "telemetry_core::ffi_log_test", "debug is not kept");
        log::info!(target: "some_dependency", "a dependency's info is not kept");
        log::warn!(target: "some_dependency", "a dependency's warning is kept");
        let got = take();
        let ours: Vec<_> = messages(&got)
            .into_iter()
            .filter(|m| m.contains("kept") || m.contains("before"))
            .collect();
        assert_eq!(
            ours,
            [
                "kept warning",
                "kept info",
                "a dependency's warning is kept"
            ]
        );
        let warning = got.iter().find(|r| r["message"] == "kept warning").unwrap();
        assert_eq!(warning["level"], "warn");
        assert_eq!(warning["target"], "telemetry_core::ffi_log_test");
        assert!(!messages(&take()).contains(&"kept warning".to_string()));

        log::warn!(target: "telemetry_core::ffi_log_test", "pending at disable");
        assert!(!telemetry_log_enable(false));
        log::warn!(target: "telemetry_core::ffi_log_test", "while disabled");
        assert!(telemetry_log_enable(true));
        let after = messages(&take());
        assert!(!after
            .iter()
            .any(|m| m == "pending at disable" || m == "while disabled"));
        assert!(!telemetry_log_enable(false));
    }
}
