//! Error reports over the C ABI: a handled error or a crash, given as JSON, for any host
//! (C and C++ programs, the Go package's `ReportPanic` and `CaptureError`).
//!
//! In: the core's [`ErrorReport`] JSON form and which of the two it is. Out: what became of
//! it, as a [`Reported`] value through an out-parameter. Scrubbing, the fingerprint, the
//! rate limits, the `$exception` shape and the wait for delivery are the core's
//! (`telemetry_core::crash`); the deadline and the limits come from the client's
//! configuration (`"crash": {"deadline_ms", "per_fingerprint_ms", "per_hour"}`). This
//! module converts values and maps errors.

use std::ffi::c_char;

use telemetry_core::crash::{self, ErrorReport};

use crate::client::{client_ref, refuse_after_shutdown};
use crate::error::{guard, Error, ErrorCode};
use crate::io::str_arg;

/// Frames kept per exception of a report (the innermost ones); a host may send more, the
/// library keeps these.
pub const TELEMETRY_MAX_ERROR_FRAMES: usize = 64;
/// Causes kept behind a reported error (the nearest ones); a host may send more.
pub const TELEMETRY_MAX_ERROR_CAUSES: usize = 8;

// cbindgen needs literals; the core's limits are the truth.
const _: () = {
    assert!(TELEMETRY_MAX_ERROR_FRAMES == crash::report::MAX_FRAMES);
    assert!(TELEMETRY_MAX_ERROR_CAUSES == crash::report::MAX_CAUSES);
};

/// What became of an error report, written by `telemetry_client_capture_error` and
/// `telemetry_client_report_crash`. The values never change meaning; new ones are only
/// ever added at the end.
///
/// cbindgen:rename-all=prefix:TELEMETRY_REPORTED_
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// Queued for delivery, without waiting: a handled error, or a crash whose fingerprint
    /// this process already reported (only the first report of a fingerprint waits).
    QUEUED = 0,
    /// A crash that waited and whose report the worker finished delivering within the
    /// client's crash deadline.
    DELIVERED = 1,
    /// A crash that waited, and whose report was not delivered within the client's crash
    /// deadline; a report still queued goes out if the process lives on.
    NOT_DELIVERED = 2,
    /// Held back by the rate limits (by default one report per fingerprint per 60 s, 20 an
    /// hour); counted, and the count goes out with the next report sent.
    SUPPRESSED = 3,
    /// Telemetry is off for this client: nothing was read, nothing was done.
    DISABLED = 4,
}

impl From<crash::Reported> for Reported {
    fn from(r: crash::Reported) -> Self {
        match r {
            crash::Reported::Queued { delivered: None } => Reported::QUEUED,
            crash::Reported::Queued {
                delivered: Some(true),
            } => Reported::DELIVERED,
            crash::Reported::Queued {
                delivered: Some(false),
            } => Reported::NOT_DELIVERED,
            crash::Reported::Suppressed => Reported::SUPPRESSED,
            crash::Reported::Disabled => Reported::DISABLED,
        }
    }
}

/// Parses a report: text that is not JSON is `INVALID_JSON`, JSON that is not a report
/// (a missing or empty `type`, a frame without `function`, a wrong type) `INVALID_EVENT`.
fn report_from_json(text: &str) -> Result<ErrorReport, Error> {
    let parsed = if text.trim_start().starts_with('{') {
        ErrorReport::from_json(text)
    } else {
        // serde would read an array as the struct's fields in order.
        Err("an error report is a JSON object".into())
    };
    parsed.map_err(|why| {
        let code = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Err(e) if e.is_syntax() || e.is_eof() => ErrorCode::INVALID_JSON,
            _ => ErrorCode::INVALID_EVENT,
        };
        Error::new(code, format!("error report: {why}"))
    })
}

enum Kind {
    Handled,
    Crash,
}

/// The body both entry points share.
///
/// # Safety
/// As for the entry points.
unsafe fn report(
    kind: Kind,
    client: *const crate::client::Client,
    report_json: *const c_char,
    report_len: usize,
    out_reported: *mut Reported,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        refuse_after_shutdown(client, "an error report")?;
        let reported = if client.core().is_enabled() {
            // SAFETY: the caller's contract.
            let text = unsafe { str_arg("report", report_json, report_len) }?;
            let report = report_from_json(text)?;
            match kind {
                Kind::Handled => {
                    // The core says only whether it was queued; a report of an enabled
                    // client that was not queued was held back by the limits.
                    if client.core().capture_error(&report) {
                        Reported::QUEUED
                    } else {
                        Reported::SUPPRESSED
                    }
                }
                Kind::Crash => client.core().report_crash(&report).into(),
            }
        } else {
            Reported::DISABLED
        };
        if !out_reported.is_null() {
            // SAFETY: the caller's contract; written only on success, and last.
            unsafe { *out_reported = reported };
        }
        Ok(())
    })
}

/// Reports an error the host handled (caught, logged, recovered from) and goes on: the
/// report (`report_json`, `report_len` bytes of UTF-8) is scrubbed, fingerprinted, checked
/// against the rate limits and queued. Never waits for delivery: the report goes out with
/// the client's next batch.
///
/// The report is JSON: `{"type": "TimeoutError", "message": "...", "frames": [{"function",
/// "file", "line", "column", "in_app"}], "causes": [{"type", "message", "frames"}],
/// "platform": "c"}`. Only `type` is required. Frames go outermost first (the innermost,
/// where the error arose, last); `in_app` marks the host's own code, whose frames make
/// the fingerprint when there are any; causes go nearest first. `platform` defaults to the
/// client's `runtime` (`c`). Messages are scrubbed and files lose their directories
/// before anything leaves; at most `TELEMETRY_MAX_ERROR_FRAMES` frames (the innermost)
/// and `TELEMETRY_MAX_ERROR_CAUSES` causes are kept. A `handled` key is ignored: this
/// function reports a handled error.
///
/// `*out_reported`, when `out_reported` is not NULL, receives `TELEMETRY_REPORTED_QUEUED`,
/// `_SUPPRESSED` (the rate limits held it back) or `_DISABLED` (telemetry is off: the
/// report was not even read); it is written on success only.
///
/// Borrows everything; thread-safe. Not async-signal-safe: never call it from a signal
/// handler.
///
/// Errors: `NULL_POINTER`, `SHUT_DOWN` (after `telemetry_client_shutdown`), `TOO_LARGE`,
/// `INVALID_UTF8`, `INVALID_JSON`, `INVALID_EVENT` (no `type`, a frame without
/// `function`, a value of the wrong type). Nothing is reported when an error is returned.
///
/// ```c
/// const char *report = "{\"type\": \"SyncError\", \"message\": \"sync failed\","
///                      " \"frames\": [{\"function\": \"sync_run\", \"file\": \"sync.c\","
///                      " \"line\": 88, \"in_app\": true}]}";
/// telemetry_reported_t what;
/// telemetry_error_free(telemetry_client_capture_error(client, report, strlen(report), &what));
/// ```
///
/// # Safety
/// `client` NULL or live; (`report_json`, `report_len`) readable (or NULL);
/// `out_reported` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_capture_error(
    client: *const crate::client::Client,
    report_json: *const c_char,
    report_len: usize,
    out_reported: *mut Reported,
) -> *mut Error {
    // SAFETY: forwarded.
    unsafe { report(Kind::Handled, client, report_json, report_len, out_reported) }
}

/// Reports a crash: an error the host will not survive (a fatal assertion, an uncaught
/// exception at the top of a thread, a C++ terminate handler), called on the crashing
/// thread before it aborts or exits. The report is the JSON `telemetry_client_capture_error`
/// takes; it is sent as unhandled (`$exception_level` fatal), whatever its `handled` key
/// says.
///
/// The first report of a fingerprint in this process waits until the worker has
/// delivered it, or at most the client's crash deadline (`"crash": {"deadline_ms": ...}`
/// in the configuration, 1 s by default), so the report leaves before the process dies;
/// reports of a fingerprint already reported, and reports the rate limits hold back,
/// return at once. Everything captured before the call goes out in the same wait.
///
/// `*out_reported`, when `out_reported` is not NULL, receives `TELEMETRY_REPORTED_DELIVERED`
/// (delivered in time), `_NOT_DELIVERED` (not delivered in time), `_QUEUED`
/// (a repeat: queued without waiting), `_SUPPRESSED` or `_DISABLED` (telemetry is off:
/// returns at once, the report not even read); written on success only.
///
/// Blocks the calling thread up to the deadline; thread-safe. Not async-signal-safe: it
/// allocates, takes locks and waits for another thread, so never call it from a signal
/// handler; report from the host's fatal-error path (an assertion handler, a
/// `std::set_terminate` handler, a top-level catch) before it aborts. A crash by signal
/// (SIGSEGV) is not reported.
///
/// Errors: as for `telemetry_client_capture_error`.
///
/// ```c
/// // The host's fatal-error path: report (the JSON built with the host's JSON writer, so
/// // quotes and control characters in the message are escaped), then die as before.
/// static void die(telemetry_client_t *client, const char *report_json) {
///     telemetry_reported_t outcome;
///     telemetry_error_free(
///         telemetry_client_report_crash(client, report_json, strlen(report_json), &outcome));
///     abort();
/// }
/// ```
///
/// # Safety
/// As for `telemetry_client_capture_error`.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_report_crash(
    client: *const crate::client::Client,
    report_json: *const c_char,
    report_len: usize,
    out_reported: *mut Reported,
) -> *mut Error {
    // SAFETY: forwarded.
    unsafe { report(Kind::Crash, client, report_json, report_len, out_reported) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_and_shape_get_their_own_codes() {
        assert_eq!(
            report_from_json("{\"type\":").unwrap_err().code(),
            ErrorCode::INVALID_JSON
        );
        assert_eq!(
            report_from_json("nonsense").unwrap_err().code(),
            ErrorCode::INVALID_JSON
        );
        for shape in [
            "{}",
            "{\"type\": \"  \"}",
            "{\"type\": 3}",
            "{\"type\": \"E\", \"frames\": [{\"file\": \"a.c\"}]}",
            "{\"type\": \"E\", \"frames\": [{\"function\": \"f\", \"line\": -1}]}",
            "[1]",
        ] {
            let e = report_from_json(shape).unwrap_err();
            assert_eq!(
                e.code(),
                ErrorCode::INVALID_EVENT,
                "{shape}: {}",
                e.message()
            );
            assert!(e.message().starts_with("error report: "), "{}", e.message());
        }
        assert!(report_from_json("{\"type\": \"E\"}").is_ok());
    }

    #[test]
    fn every_core_outcome_has_a_c_value() {
        use crash::Reported as R;
        let all = [
            (R::Queued { delivered: None }, Reported::QUEUED),
            (
                R::Queued {
                    delivered: Some(true),
                },
                Reported::DELIVERED,
            ),
            (
                R::Queued {
                    delivered: Some(false),
                },
                Reported::NOT_DELIVERED,
            ),
            (R::Suppressed, Reported::SUPPRESSED),
            (R::Disabled, Reported::DISABLED),
        ];
        for (core, c) in all {
            assert_eq!(Reported::from(core), c);
        }
    }
}
