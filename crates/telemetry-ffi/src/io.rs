//! Strings across the boundary: (pointer, length) UTF-8 in, NUL-terminated library-owned
//! text out (freed with `telemetry_string_free`).

use std::ffi::{c_char, CString};
use std::time::Duration;

use crate::error::{guard_infallible, Error, ErrorCode};

/// The largest string argument accepted, in bytes (64 MiB). Longer input is refused with
/// `TELEMETRY_ERROR_CODE_TOO_LARGE` before it is read: a length that large is a caller's
/// bug (an uninitialized length, a negative number cast to `size_t`), not telemetry.
pub const TELEMETRY_MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;

/// Timeouts longer than this (one day) are treated as this: a deadline in milliseconds
/// near `UINT64_MAX` means "wait as long as it takes", not an overflow.
pub const TELEMETRY_MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// Borrows a required (pointer, length) string argument named `what`.
///
/// # Safety
/// `ptr` must be NULL or point to `len` readable bytes that stay valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(
    what: &str,
    ptr: *const c_char,
    len: usize,
) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::new(
            ErrorCode::NULL_POINTER,
            format!("{what} is NULL"),
        ));
    }
    if len > TELEMETRY_MAX_INPUT_BYTES {
        return Err(Error::new(
            ErrorCode::TOO_LARGE,
            format!("{what} is {len} bytes; at most {TELEMETRY_MAX_INPUT_BYTES}"),
        ));
    }
    // SAFETY: non-NULL, the caller vouches for `len` bytes, and `len` <= 64 MiB keeps the
    // slice within isize::MAX.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|e| {
        Error::new(
            ErrorCode::INVALID_UTF8,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

/// Like [`str_arg`], but a NULL pointer with length 0 means "absent".
///
/// # Safety
/// As for [`str_arg`].
pub(crate) unsafe fn optional_str_arg<'a>(
    what: &str,
    ptr: *const c_char,
    len: usize,
) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() && len == 0 {
        return Ok(None);
    }
    // SAFETY: forwarded.
    unsafe { str_arg(what, ptr, len) }.map(Some)
}

/// Fails with `NULL_POINTER` when a required pointer is NULL.
pub(crate) fn non_null<T>(what: &str, ptr: *const T) -> Result<(), Error> {
    if ptr.is_null() {
        Err(Error::new(
            ErrorCode::NULL_POINTER,
            format!("{what} is NULL"),
        ))
    } else {
        Ok(())
    }
}

/// A timeout argument as a Duration, clamped to [`TELEMETRY_MAX_TIMEOUT_MS`].
pub(crate) fn timeout(ms: u64) -> Duration {
    Duration::from_millis(ms.min(TELEMETRY_MAX_TIMEOUT_MS))
}

/// Hands `text` to C through the out-parameters; the only write to them, done last, so
/// they stay untouched when a call fails earlier.
///
/// # Safety
/// `out` must be valid for a write (checked non-NULL by the caller); `out_len` NULL or
/// valid for a write.
pub(crate) unsafe fn write_string(
    text: String,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> Result<(), Error> {
    let len = text.len();
    let c = c_string(text)?;
    // SAFETY: as documented above.
    unsafe { write_c_string(c, len, out, out_len) };
    Ok(())
}

/// `text` as an owned C string, for calls that write several strings and must fail before
/// writing any of them.
pub(crate) fn c_string(text: String) -> Result<CString, Error> {
    // JSON text never holds a raw NUL (serde_json escapes control characters), and every
    // other text out is made from input checked for NUL, so this only fails on a bug;
    // report it instead of truncating silently.
    CString::new(text).map_err(|_| {
        Error::new(
            ErrorCode::PANIC,
            "output text contains a NUL byte (a bug, please report it)",
        )
    })
}

/// Hands an owned C string of `len` bytes (without the NUL) to C; cannot fail.
///
/// # Safety
/// As for [`write_string`].
pub(crate) unsafe fn write_c_string(
    c: CString,
    len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        *out = c.into_raw();
        if !out_len.is_null() {
            *out_len = len;
        }
    }
}

/// Frees a string this library returned through an out-parameter. NULL is a no-op.
///
/// Takes ownership of `s`; call it once per string, from any thread. Never pass a string
/// that did not come from this library, nor one returned by `telemetry_error_message` or
/// `telemetry_version` (those are not owned by the caller).
///
/// # Safety
/// `s` must be NULL or a string this library returned, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn telemetry_string_free(s: *mut c_char) {
    guard_infallible((), || {
        if !s.is_null() {
            // SAFETY: `s` came from `CString::into_raw` in `write_string`.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}
