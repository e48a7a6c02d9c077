//! The C ABI over telemetry-core, described by the generated `include/telemetry.h`.
//!
//! Conventions (docs/ARCHITECTURE.md, "The C ABI"):
//! - Opaque handles with `telemetry_<type>_new` / `telemetry_<type>_free`; free accepts NULL.
//! - A fallible call returns `telemetry_error_t*`: NULL on success, else an owned error with
//!   a code and a message, freed by `telemetry_error_free`. Results go to out-parameters
//!   that are written only on success. No thread-local "last error".
//! - Strings in are (pointer, length) UTF-8, checked; strings out are NUL-terminated, owned
//!   by the caller once returned and freed by `telemetry_string_free`.
//! - Config, events and results cross as JSON text, so the ABI stays small and stable.
//! - Usage statistics (`src/usage.rs`): families and label sets as handles, recording by
//!   handle, the report, the Prometheus text and the local endpoints.
//! - Error reports (`src/crash.rs`): a handled error or a crash as JSON, and what became of
//!   it through an out-parameter.
//! - Traces (`src/traces.rs`): the resolved observability configuration, one call per
//!   ended span (bytes, `telemetry_core::otel::wire`), span counters and flush.
//! - Every entry point catches panics (`TELEMETRY_ERROR_CODE_PANIC`); nothing unwinds
//!   into C.
//!
//! ```
//! use std::ptr;
//! use telemetry_ffi::*;
//! let cfg = r#"{"product": "myapp", "version": "1.0", "sink": "memory", "environment": {}}"#;
//! let mut client = ptr::null_mut();
//! let err = unsafe { telemetry_client_new(cfg.as_ptr().cast(), cfg.len(), &mut client) };
//! assert!(err.is_null());
//! let err = unsafe { telemetry_client_capture(client, c"started".as_ptr(), 7, ptr::null(), 0) };
//! assert!(err.is_null());
//! assert!(unsafe { telemetry_client_flush(client, 1000) }.is_null());
//! unsafe { telemetry_client_free(client) };
//! ```

mod anonymize;
mod client;
mod crash;
mod error;
mod io;
mod log;
mod traces;
mod usage;

use std::ffi::{c_char, CStr};

pub use self::log::{telemetry_log_enable, telemetry_log_take};
pub use anonymize::telemetry_anonymize;
pub use client::*;
pub use crash::{
    telemetry_client_capture_error, telemetry_client_report_crash, Reported,
    TELEMETRY_MAX_ERROR_CAUSES, TELEMETRY_MAX_ERROR_FRAMES,
};
pub use error::{
    telemetry_error_code, telemetry_error_free, telemetry_error_message, Error, ErrorCode,
};
pub use io::{telemetry_string_free, TELEMETRY_MAX_INPUT_BYTES, TELEMETRY_MAX_TIMEOUT_MS};
pub use traces::*;
pub use usage::*;

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the package version contains a NUL"),
    };

/// The library's version (telemetry-core's), e.g. `"0.1.0"`: NUL-terminated, static.
///
/// Do not free it. Thread-safe.
#[no_mangle]
pub extern "C" fn telemetry_version() -> *const c_char {
    VERSION.as_ptr()
}
