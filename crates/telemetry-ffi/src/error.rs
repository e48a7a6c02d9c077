//! Owned errors: every fallible entry point returns `telemetry_error_t*`, NULL on success.
//!
//! There is no thread-local "last error": a goroutine may move to another OS thread
//! between two cgo calls, so the error travels with the call's own return value.

use std::any::Any;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// What went wrong, as a stable number. The values never change meaning; new codes are
/// only ever added at the end.
///
/// The variants are spelled as C sees them (`TELEMETRY_ERROR_CODE_SHUT_DOWN`, ...) so the
/// Rust, C and Go names match.
///
/// cbindgen:rename-all=prefix:TELEMETRY_ERROR_CODE_
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Not an error: what `telemetry_error_code(NULL)` returns, NULL meaning success.
    OK = 0,
    /// A required pointer argument (handle, string or out-parameter) was NULL.
    NULL_POINTER = 1,
    /// A string argument was not valid UTF-8.
    INVALID_UTF8 = 2,
    /// A JSON argument was not JSON at all (syntax error or truncated text).
    INVALID_JSON = 3,
    /// The configuration was JSON but not a usable configuration: an unknown key, an
    /// unknown profile or sink, a plain-http endpoint that is not loopback, a missing
    /// endpoint or api_key for the posthog sink, an empty product name.
    INVALID_CONFIG = 4,
    /// The event was JSON but not a usable event: an empty or over-long name, properties
    /// that are not an object, an unknown property kind, an empty batch key; or an error
    /// report was JSON but not a usable report (no `type`, a frame without `function`).
    INVALID_EVENT = 5,
    /// A request was JSON but its fields were wrong (e.g. a secret that is not 64 hex
    /// characters in `telemetry_anonymize`), or usage statistics refused an argument: a
    /// declaration (bad name, labels or bounds; a conflicting earlier declaration), a label
    /// set of the wrong length, a section with a reserved name, an address to serve on
    /// that is not loopback or cannot be listened on.
    INVALID_ARGUMENT = 6,
    /// A string argument was longer than `TELEMETRY_MAX_INPUT_BYTES`.
    TOO_LARGE = 7,
    /// The client was shut down: it accepts no more events and cannot flush.
    SHUT_DOWN = 8,
    /// `telemetry_client_flush` ran out of time before everything was delivered.
    TIMEOUT = 9,
    /// `telemetry_client_memory_events` on a client whose sink is not `memory`.
    NO_MEMORY_SINK = 10,
    /// The library panicked; the panic was caught at the boundary. A bug: please report it.
    PANIC = 11,
    /// `telemetry_client_flush` finished, but events captured before it (or since the
    /// previous flush) were dropped instead of delivered: the endpoint refused them, the
    /// retries ran out, or the queue was full. The message says how many; the stats say why.
    NOT_DELIVERED = 12,
}

impl ErrorCode {
    /// The code's C name without the prefix, for messages and tests.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::OK => "OK",
            ErrorCode::NULL_POINTER => "NULL_POINTER",
            ErrorCode::INVALID_UTF8 => "INVALID_UTF8",
            ErrorCode::INVALID_JSON => "INVALID_JSON",
            ErrorCode::INVALID_CONFIG => "INVALID_CONFIG",
            ErrorCode::INVALID_EVENT => "INVALID_EVENT",
            ErrorCode::INVALID_ARGUMENT => "INVALID_ARGUMENT",
            ErrorCode::TOO_LARGE => "TOO_LARGE",
            ErrorCode::SHUT_DOWN => "SHUT_DOWN",
            ErrorCode::TIMEOUT => "TIMEOUT",
            ErrorCode::NO_MEMORY_SINK => "NO_MEMORY_SINK",
            ErrorCode::PANIC => "PANIC",
            ErrorCode::NOT_DELIVERED => "NOT_DELIVERED",
        }
    }
}

/// An error returned by a fallible call: a code and a message. Opaque to C.
///
/// The caller owns it and frees it with `telemetry_error_free`.
#[derive(Debug)]
pub struct Error {
    code: ErrorCode,
    message: CString,
}

impl Error {
    /// An error with `code` and a message for people.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        // A C string cannot hold NUL; a message quoting user input might.
        if message.contains('\0') {
            message = message.replace('\0', "\\0");
        }
        let message = CString::new(message).unwrap_or_default();
        Error { code, message }
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        self.message.to_str().unwrap_or("")
    }

    /// Hands the error to C; NULL never comes out of here.
    fn into_raw(self) -> *mut Error {
        Box::into_raw(Box::new(self))
    }
}

/// Maps a serde_json error on caller input: text that is not JSON is `INVALID_JSON`;
/// JSON of the wrong shape gets the caller's code (`INVALID_CONFIG`, `INVALID_EVENT`, ...).
pub(crate) fn json_error(what: &str, e: &serde_json::Error, shape: ErrorCode) -> Error {
    let code = if e.is_syntax() || e.is_eof() {
        ErrorCode::INVALID_JSON
    } else {
        shape
    };
    Error::new(code, format!("{what}: {e}"))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    format!("telemetry-ffi panicked (a bug, please report it): {what}")
}

/// Runs an entry point's body: its error, or a caught panic, becomes an owned
/// `telemetry_error_t*`; success is NULL. Unwinding into C would be undefined behaviour.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Error>) -> *mut Error {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ptr::null_mut(),
        Ok(Err(e)) => e.into_raw(),
        Err(payload) => Error::new(ErrorCode::PANIC, panic_message(&*payload)).into_raw(),
    }
}

/// For the few entry points that cannot report an error (frees, accessors): a panic is
/// swallowed and `fallback` returned instead of unwinding into C.
pub(crate) fn guard_infallible<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// The error's code; `TELEMETRY_ERROR_CODE_OK` for NULL (a NULL error means success).
///
/// Borrows `error`; thread-safe (an error is immutable).
///
/// ```c
/// telemetry_error_t *err = telemetry_client_flush(client, 1000);
/// if (telemetry_error_code(err) == TELEMETRY_ERROR_CODE_TIMEOUT) { // not all delivered
///     puts(telemetry_error_message(err));
/// }
/// telemetry_error_free(err);
/// ```
///
/// # Safety
/// `error` must be NULL or an error this library returned, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn telemetry_error_code(error: *const Error) -> ErrorCode {
    // SAFETY: NULL or a pointer this library returned and the caller has not freed.
    guard_infallible(ErrorCode::PANIC, || match unsafe { error.as_ref() } {
        Some(e) => e.code,
        None => ErrorCode::OK,
    })
}

/// The error's message: NUL-terminated UTF-8, never NULL (`""` for a NULL error).
///
/// The text is owned by `error` and valid until `telemetry_error_free(error)`; do not free
/// it. Thread-safe (an error is immutable).
///
/// # Safety
/// `error` must be NULL or an error this library returned, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn telemetry_error_message(error: *const Error) -> *const c_char {
    const EMPTY: &CStr = c"";
    guard_infallible(EMPTY.as_ptr(), || match unsafe { error.as_ref() } {
        // SAFETY: as in telemetry_error_code.
        Some(e) => e.message.as_ptr(),
        None => EMPTY.as_ptr(),
    })
}

/// Frees an error returned by any call. NULL is a no-op.
///
/// Takes ownership of `error`; call it once per error, from any thread.
///
/// # Safety
/// `error` must be NULL or an error this library returned, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn telemetry_error_free(error: *mut Error) {
    guard_infallible((), || {
        if !error.is_null() {
            // SAFETY: the pointer came from `Error::into_raw` and is freed only here.
            drop(unsafe { Box::from_raw(error) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_panic_error_with_its_message() {
        let err = guard(|| panic!("boom"));
        assert!(!err.is_null());
        assert_eq!(unsafe { telemetry_error_code(err) }, ErrorCode::PANIC);
        let msg = unsafe { CStr::from_ptr(telemetry_error_message(err)) };
        assert!(msg.to_str().unwrap().contains("boom"), "{msg:?}");
        unsafe { telemetry_error_free(err) };
    }

    #[test]
    fn a_formatted_panic_keeps_its_message() {
        let n = 7;
        let err = guard(|| panic!("index {n} out of range"));
        let msg = unsafe { CStr::from_ptr(telemetry_error_message(err)) };
        assert!(msg.to_str().unwrap().contains("index 7"), "{msg:?}");
        unsafe { telemetry_error_free(err) };
    }

    #[test]
    fn success_is_null_and_null_reads_as_ok() {
        let err = guard(|| Ok(()));
        assert!(err.is_null());
        assert_eq!(unsafe { telemetry_error_code(err) }, ErrorCode::OK);
        assert_eq!(
            unsafe { CStr::from_ptr(telemetry_error_message(err)) }.to_bytes(),
            b""
        );
        unsafe { telemetry_error_free(err) };
    }

    #[test]
    fn a_nul_in_a_message_is_escaped_not_lost() {
        let e = Error::new(ErrorCode::INVALID_EVENT, "a\0b");
        assert_eq!(e.message(), "a\\0b");
    }

    #[test]
    fn json_errors_split_syntax_from_shape() {
        let syntax = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert_eq!(
            json_error("x", &syntax, ErrorCode::INVALID_EVENT).code(),
            ErrorCode::INVALID_JSON
        );
        let shape = serde_json::from_str::<Vec<u8>>("{}").unwrap_err();
        assert_eq!(
            json_error("x", &shape, ErrorCode::INVALID_EVENT).code(),
            ErrorCode::INVALID_EVENT
        );
    }
}
