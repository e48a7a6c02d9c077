//! Traces over the C ABI: a host builds each span itself and hands it over once, ended,
//! as bytes (`telemetry_core::otel::wire`); the core queues and exports it to the
//! operator's OTLP endpoint. The Go package keeps span ids, clocks, attributes and the
//! `context.Context` that carries the current span in Go memory, so a span costs one cgo
//! call. The configuration (granularity, sampler) is read once, as JSON, so the host
//! filters and samples without crossing.
//!
//! Traces are independent of telemetry consent: they are the operator's, sent only to the
//! operator's endpoint.

use std::ffi::c_char;
use std::time::Duration;

use serde_json::json;
use telemetry_core::otel::wire;

use crate::client::client_ref;
use crate::error::{guard, Error, ErrorCode};
use crate::io::{non_null, timeout, write_string};

/// Writes the client's resolved observability configuration as JSON to `*out_json`:
/// `{"active", "level" (0 none … 3 all), "granularity", "endpoint", "protocol",
/// "headers" (names only), "service_name", "sampler" ({"kind": "always_on" | "always_off"
/// | "trace_id_ratio" | "parent_based", "ratio", "root"}), "disabled", "compression",
/// "origins", "warnings"}`. A span declared at a level above `level` is not recorded.
///
/// The string is owned by the caller and freed with `telemetry_string_free`; `out_len`
/// (may be NULL) gets its length. Thread-safe. Errors: `NULL_POINTER`.
///
/// # Safety
/// `client` NULL or live; `out_json` NULL or writable; `out_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_trace_config(
    client: *const crate::client::Client,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_json", out_json)?;
        let tracer = client.core().tracer();
        let mut value = tracer.config().to_status_json();
        value["level"] = json!(tracer.granularity() as u8);
        // SAFETY: checked non-NULL.
        unsafe { write_string(value.to_string(), out_json, out_len) }
    })
}

/// Queues one ended span, encoded as `telemetry_core::otel::wire` describes, for export.
/// Never blocks: a full queue drops the span and counts it. Ignored (not an error) when
/// the client records no spans. After `telemetry_client_shutdown` the span is counted as
/// dropped at shutdown.
///
/// The bytes are only read during the call. Thread-safe.
/// Errors: `NULL_POINTER`, `TOO_LARGE` (over 4 MiB), `INVALID_ARGUMENT` (bytes that are not
/// a span: truncated, an unknown version, kind or type, zero ids, invalid UTF-8 in a
/// string; the message says which).
///
/// # Safety
/// `client` NULL or live; (`span`, `span_len`) NULL or `span_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_record_span(
    client: *const crate::client::Client,
    span: *const u8,
    span_len: usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("span", span)?;
        if span_len > wire::MAX_BYTES {
            return Err(Error::new(
                ErrorCode::TOO_LARGE,
                format!("span is {span_len} bytes; at most {}", wire::MAX_BYTES),
            ));
        }
        // SAFETY: non-NULL, the caller vouches for `span_len` bytes, at most 4 MiB.
        let bytes = unsafe { std::slice::from_raw_parts(span, span_len) };
        let data = wire::decode(bytes)
            .map_err(|e| Error::new(ErrorCode::INVALID_ARGUMENT, e.to_string()))?;
        client.core().tracer().record_finished(data);
        Ok(())
    })
}

/// Writes the span counters as JSON to `*out_json`: `{"recorded", "exported",
/// "dropped_queue_full", "dropped_failed", "dropped_shutdown", "queued",
/// "failed_requests", "retries"}`; `exported + dropped_* + queued = recorded` always.
///
/// Ownership as for `telemetry_client_trace_config`. Thread-safe; works after shutdown.
/// Errors: `NULL_POINTER`.
///
/// # Safety
/// As for `telemetry_client_trace_config`.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_span_stats(
    client: *const crate::client::Client,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_json", out_json)?;
        let text = serde_json::to_string(&client.core().tracer().stats())
            .map_err(|e| Error::new(ErrorCode::PANIC, format!("span stats: {e}")))?;
        // SAFETY: checked non-NULL.
        unsafe { write_string(text, out_json, out_len) }
    })
}

/// Exports the queued spans and waits up to `timeout_ms`. Returns NULL when every span
/// queued went out (or none was queued), `TIMEOUT` when time ran out first, and
/// `NOT_DELIVERED` when spans were dropped instead.
///
/// Thread-safe. Errors: `NULL_POINTER`, `TIMEOUT`, `NOT_DELIVERED`.
///
/// # Safety
/// `client` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_flush_spans(
    client: *const crate::client::Client,
    timeout_ms: u64,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        let tracer = client.core().tracer();
        let before = tracer.stats();
        let wait: Duration = timeout(timeout_ms);
        if tracer.flush(wait) {
            return Ok(());
        }
        let after = tracer.stats();
        if after.queued > 0 {
            Err(Error::new(
                ErrorCode::TIMEOUT,
                format!("{} spans still queued after {timeout_ms} ms", after.queued),
            ))
        } else {
            Err(Error::new(
                ErrorCode::NOT_DELIVERED,
                format!("{} spans were dropped", after.dropped() - before.dropped()),
            ))
        }
    })
}
