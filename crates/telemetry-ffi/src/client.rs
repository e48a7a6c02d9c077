//! The client handle: create from a JSON config, capture, flush, shut down, read.

use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};
use telemetry_core::{ClientConfig, Event, FlushOutcome};

use crate::error::{guard, guard_infallible, json_error, Error, ErrorCode};
use crate::io::{non_null, optional_str_arg, str_arg, timeout, write_string};

/// The longest event name accepted, in bytes; the core refuses longer names. Bindings may
/// check it before crossing the boundary (the Go package does).
pub const TELEMETRY_MAX_EVENT_NAME_BYTES: usize = 200;

/// A telemetry client. Opaque to C.
///
/// Made by `telemetry_client_new`, freed by `telemetry_client_free`. Every function taking
/// it is thread-safe except `telemetry_client_free`.
pub struct Client {
    inner: telemetry_core::Client,
    /// Set by `telemetry_client_shutdown`: later captures and flushes are refused with
    /// `SHUT_DOWN` instead of being silently counted as dropped.
    shut_down: AtomicBool,
}

impl Client {
    /// The core client, for this crate's tests.
    pub fn core(&self) -> &telemetry_core::Client {
        &self.inner
    }
}

/// # Safety
/// `client` is NULL or a live pointer from `telemetry_client_new`.
pub(crate) unsafe fn client_ref<'a>(client: *const Client) -> Result<&'a Client, Error> {
    // SAFETY: as documented.
    unsafe { client.as_ref() }.ok_or_else(|| Error::new(ErrorCode::NULL_POINTER, "client is NULL"))
}

pub(crate) fn refuse_after_shutdown(client: &Client, what: &str) -> Result<(), Error> {
    if client.shut_down.load(Ordering::Acquire) {
        Err(Error::new(
            ErrorCode::SHUT_DOWN,
            format!("{what} after telemetry_client_shutdown"),
        ))
    } else {
        Ok(())
    }
}

fn event_from_json(text: &str) -> Result<Event, Error> {
    let event: Event = serde_json::from_str(text)
        .map_err(|e| json_error("event", &e, ErrorCode::INVALID_EVENT))?;
    event
        .validate()
        .map_err(|e| Error::new(ErrorCode::INVALID_EVENT, e))?;
    Ok(event)
}

/// Creates a client from a JSON configuration (`config_json`, `config_len` bytes of UTF-8,
/// not NUL-terminated) and writes it to `*out_client`.
///
/// The keys are those of telemetry-core's `ClientConfig`: `product`, `version`, `profile`,
/// `endpoint`, `api_key`, `sink` (`posthog`, `file`, `debug`, `memory`), `file_path`,
/// delivery knobs (`queue_capacity`, `max_batch_events`, `max_batch_bytes`,
/// `flush_interval_ms`, `connect_timeout_ms`, `request_timeout_ms`, `max_retries`,
/// `backoff_base_ms`, `shutdown_timeout_ms`), TLS trust (`ca_file`: a PEM file of CA
/// certificates trusted besides the roots, for events and, unless
/// `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE` names another, trace exports; `tls_roots`:
/// `bundled`, Mozilla's roots compiled in, the default, or `platform`, the system's),
/// consent inputs (`explicit`, `args`, `config_dir`, `working_dir`, `mode`,
/// `environment`), `install_id` + `secret_hex`, `runtime`, `runtime_version` (default
/// `c`), `context`, and `crash`, how error reports are made (`{"deadline_ms": 1000,
/// "per_fingerprint_ms": 60000, "per_hour": 20}`, each optional: the deadline a crash
/// waits for its report, and the rate limits; see `telemetry_client_report_crash`). Unknown keys are refused, and so is a `ca_file` that
/// cannot be read or holds no certificate (`INVALID_CONFIG`, naming the file).
///
/// Consent is resolved here, once; nothing starts (no thread, no file, no socket) until
/// the first capture of an enabled client.
///
/// Ownership: the config is borrowed for the call. On success the caller owns
/// `*out_client` and frees it with `telemetry_client_free`; on failure `*out_client` is
/// left untouched and the caller owns the returned error. Thread-safe.
///
/// Errors: `NULL_POINTER`, `TOO_LARGE`, `INVALID_UTF8`, `INVALID_JSON`, `INVALID_CONFIG`.
///
/// ```c
/// const char *cfg = "{\"product\":\"myapp\",\"version\":\"1.2.0\",\"profile\":\"chroma\","
///                   "\"endpoint\":\"https://eu.i.posthog.com\",\"api_key\":\"phc_x\"}";
/// telemetry_client_t *client = NULL;
/// telemetry_error_t *err = telemetry_client_new(cfg, strlen(cfg), &client);
/// if (err) { fprintf(stderr, "%s\n", telemetry_error_message(err)); telemetry_error_free(err); }
/// ```
///
/// # Safety
/// `config_json` must point to `config_len` readable bytes (or be NULL); `out_client`
/// must be NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_new(
    config_json: *const c_char,
    config_len: usize,
    out_client: *mut *mut Client,
) -> *mut Error {
    guard(|| {
        non_null("out_client", out_client)?;
        // SAFETY: the caller's contract above.
        let text = unsafe { str_arg("config", config_json, config_len) }?;
        let mut config: ClientConfig = serde_json::from_str(text)
            .map_err(|e| json_error("config", &e, ErrorCode::INVALID_CONFIG))?;
        if config.runtime.is_none() {
            config.runtime = Some("c".into());
        }
        let inner = config
            .into_builder()
            .and_then(|b| b.build())
            .map_err(|e| Error::new(ErrorCode::INVALID_CONFIG, e.0))?;
        let client = Box::new(Client {
            inner,
            shut_down: AtomicBool::new(false),
        });
        // SAFETY: checked non-NULL; written only on success.
        unsafe { *out_client = Box::into_raw(client) };
        Ok(())
    })
}

/// Frees a client: shuts it down first if `telemetry_client_shutdown` was not called
/// (waiting at most its `shutdown_timeout_ms`, 1 s by default). NULL is a no-op.
///
/// Takes ownership of `client`. NOT thread-safe with respect to the client: no other call
/// on it may be running or follow.
///
/// # Safety
/// `client` must be NULL or a pointer from `telemetry_client_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_free(client: *mut Client) {
    guard_infallible((), || {
        if !client.is_null() {
            // SAFETY: as documented; Box::from_raw takes back what into_raw gave out.
            drop(unsafe { Box::from_raw(client) });
        }
    })
}

/// Writes whether telemetry is on for this client to `*out_enabled`. It never changes
/// during the client's life (consent is resolved once, in `telemetry_client_new`), so a
/// binding may read it once and skip calls while it is false.
///
/// Borrows `client`; thread-safe. Errors: `NULL_POINTER`.
///
/// # Safety
/// `client` NULL or live; `out_enabled` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_is_enabled(
    client: *const Client,
    out_enabled: *mut bool,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_enabled", out_enabled)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_enabled = client.inner.is_enabled() };
        Ok(())
    })
}

/// Captures one event: its name (`event`, `event_len` bytes of UTF-8) and its properties as
/// a JSON object (`properties_json`, `properties_len` bytes; NULL with length 0 for none).
/// Properties are anonymized by their JSON type (strings hashed, numbers rounded); to
/// declare kinds or a batch rule use `telemetry_client_capture_event`.
///
/// Never blocks: the event goes into the client's bounded queue; when the queue is full
/// it is dropped and counted (`dropped_queue_full` in the stats). When telemetry is off
/// this returns NULL at once without reading the arguments.
///
/// Borrows everything; thread-safe (any number of threads may capture at once).
///
/// Errors: `NULL_POINTER`, `SHUT_DOWN` (after `telemetry_client_shutdown`), `TOO_LARGE`,
/// `INVALID_UTF8`, `INVALID_JSON`, `INVALID_EVENT` (empty or over-long name, properties
/// not an object). Nothing is captured when an error is returned.
///
/// ```c
/// const char *props = "{\"collections\": 3}";
/// telemetry_error_t *err = telemetry_client_capture(client, "started", 7, props, strlen(props));
/// telemetry_error_free(err);
/// ```
///
/// # Safety
/// `client` NULL or live; each (pointer, length) pair readable (or NULL).
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_capture(
    client: *const Client,
    event: *const c_char,
    event_len: usize,
    properties_json: *const c_char,
    properties_len: usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        refuse_after_shutdown(client, "capture")?;
        if !client.inner.is_enabled() {
            return Ok(());
        }
        // SAFETY: the caller's contract.
        let name = unsafe { str_arg("event name", event, event_len) }?;
        // SAFETY: the caller's contract.
        let props = unsafe { optional_str_arg("properties", properties_json, properties_len) }?;
        let mut e = Event::new(name);
        if let Some(text) = props {
            let map: Map<String, Value> = serde_json::from_str(text)
                .map_err(|e| json_error("properties", &e, ErrorCode::INVALID_EVENT))?;
            e.properties = map;
        }
        e.validate()
            .map_err(|m| Error::new(ErrorCode::INVALID_EVENT, m))?;
        client.inner.capture(e);
        Ok(())
    })
}

/// Captures one event given as JSON: `{"event": "name", "properties": {...}, "kinds":
/// {"prop": "safe"|"hashed"|"exact"|"number"|"text"|"dropped"}, "batch": {"key": "...",
/// "max_size": 3000, "sum": ["add_amount"]}}` (only `event` is required).
///
/// Same behaviour, ownership, thread-safety and errors as `telemetry_client_capture`.
///
/// # Safety
/// `client` NULL or live; (`event_json`, `event_len`) readable (or NULL).
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_capture_event(
    client: *const Client,
    event_json: *const c_char,
    event_len: usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        refuse_after_shutdown(client, "capture")?;
        if !client.inner.is_enabled() {
            return Ok(());
        }
        // SAFETY: the caller's contract.
        let text = unsafe { str_arg("event", event_json, event_len) }?;
        client.inner.capture(event_from_json(text)?);
        Ok(())
    })
}

/// Captures many events given as a JSON array of events in the form
/// `telemetry_client_capture_event` takes, in order. One crossing for many events: the Go
/// package buffers captures and hands them over this way.
///
/// All or nothing: every element is parsed and checked first; if any is invalid, none is
/// captured and the error names the first bad index. `*out_count`, when `out_count` is not
/// NULL, receives the number of events captured (written on success only).
///
/// Same ownership and thread-safety as `telemetry_client_capture`. Errors: `NULL_POINTER`,
/// `SHUT_DOWN`, `TOO_LARGE`, `INVALID_UTF8`, `INVALID_JSON`, `INVALID_EVENT`.
///
/// # Safety
/// `client` NULL or live; (`events_json`, `events_len`) readable (or NULL); `out_count`
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_capture_batch(
    client: *const Client,
    events_json: *const c_char,
    events_len: usize,
    out_count: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        refuse_after_shutdown(client, "capture")?;
        let count = if client.inner.is_enabled() {
            // SAFETY: the caller's contract.
            let text = unsafe { str_arg("events", events_json, events_len) }?;
            let events: Vec<Event> = serde_json::from_str(text)
                .map_err(|e| json_error("events", &e, ErrorCode::INVALID_EVENT))?;
            if let Some((i, why)) = events
                .iter()
                .enumerate()
                .find_map(|(i, e)| e.validate().err().map(|why| (i, why)))
            {
                return Err(Error::new(
                    ErrorCode::INVALID_EVENT,
                    format!("events[{i}]: {why}; none of the {} captured", events.len()),
                ));
            }
            let n = events.len();
            for e in events {
                client.inner.capture(e);
            }
            n
        } else {
            0
        };
        if !out_count.is_null() {
            // SAFETY: the caller's contract.
            unsafe { *out_count = count };
        }
        Ok(())
    })
}

/// Sends everything captured so far, partial batches included, waiting at most
/// `timeout_ms` milliseconds (values above one day count as one day). Returns NULL only
/// when every event captured before the call (and since the previous flush) was delivered.
///
/// Blocks the calling thread; thread-safe. Errors: `NULL_POINTER`, `SHUT_DOWN`, `TIMEOUT`
/// (the rest stays queued and goes out later), `NOT_DELIVERED` (events were dropped:
/// refused, out of retries or queue full; the message says how many).
///
/// # Safety
/// `client` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_flush(
    client: *const Client,
    timeout_ms: u64,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        refuse_after_shutdown(client, "flush")?;
        match client.inner.flush_outcome(timeout(timeout_ms)) {
            FlushOutcome::Delivered => Ok(()),
            FlushOutcome::TimedOut => Err(Error::new(
                ErrorCode::TIMEOUT,
                format!("flush did not finish within {timeout_ms} ms"),
            )),
            dropped @ FlushOutcome::Dropped(_) => Err(Error::new(
                ErrorCode::NOT_DELIVERED,
                format!("flush finished, but {dropped}"),
            )),
        }
    })
}

/// Flushes what can go out within `timeout_ms` milliseconds, then stops the background
/// worker; what could not go out is counted as `dropped_shutdown`. Never waits much longer
/// than the deadline. Later captures and flushes fail with `SHUT_DOWN`; the stats, the
/// decision and previews stay readable. Idempotent: a second call returns NULL at once.
///
/// The client still has to be freed with `telemetry_client_free`.
///
/// Blocks the calling thread; thread-safe. Errors: `NULL_POINTER`.
///
/// # Safety
/// `client` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_shutdown(
    client: *const Client,
    timeout_ms: u64,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        client.shut_down.store(true, Ordering::Release);
        client.inner.shutdown(timeout(timeout_ms));
        Ok(())
    })
}

/// Writes the consent decision as JSON to `*out_json` (and its length, without the NUL, to
/// `*out_len` unless `out_len` is NULL): `{"enabled", "decided_by": {"kind", "name",
/// "value"}, "sources": [{"kind", "name", "value", "says"}], "warnings": [...],
/// "explanation": "telemetry is on: ..."}` — `explanation` is the text
/// `telemetry status` prints.
///
/// The caller owns `*out_json` and frees it with `telemetry_string_free`; untouched on
/// failure. Thread-safe. Errors: `NULL_POINTER`.
///
/// # Safety
/// `client` NULL or live; `out_json` NULL or valid for a write; `out_len` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_decision(
    client: *const Client,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_json", out_json)?;
        let decision = client.inner.decision();
        let mut value = serde_json::to_value(decision)
            .map_err(|e| Error::new(ErrorCode::PANIC, format!("decision: {e}")))?;
        if let Value::Object(map) = &mut value {
            map.insert("explanation".into(), decision.to_string().into());
        }
        // SAFETY: checked non-NULL.
        unsafe { write_string(value.to_string(), out_json, out_len) }
    })
}

/// Writes the delivery counters as JSON to `*out_json`: `{"captured", "merged", "sent",
/// "dropped_queue_full", "dropped_shutdown", "dropped_failed", "queued",
/// "failed_requests", "retries"}`. `sent + dropped_* + queued = captured` always holds.
///
/// Ownership as for `telemetry_client_decision`. Thread-safe; works after shutdown.
/// Errors: `NULL_POINTER`.
///
/// # Safety
/// As for `telemetry_client_decision`.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_stats(
    client: *const Client,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_json", out_json)?;
        let text = serde_json::to_string(&client.inner.stats())
            .map_err(|e| Error::new(ErrorCode::PANIC, format!("stats: {e}")))?;
        // SAFETY: checked non-NULL.
        unsafe { write_string(text, out_json, out_len) }
    })
}

/// Writes exactly what would be sent for an event (given as in
/// `telemetry_client_capture_event`) — anonymized, with the context — as a JSON PostHog
/// batch item to `*out_json`, sending nothing, whatever the consent decision. Creates no
/// file: an install id is used only if one is already stored.
///
/// Ownership as for `telemetry_client_decision`. Thread-safe; works after shutdown.
/// Errors: `NULL_POINTER`, `TOO_LARGE`, `INVALID_UTF8`, `INVALID_JSON`, `INVALID_EVENT`.
///
/// # Safety
/// `client` NULL or live; (`event_json`, `event_len`) readable (or NULL); out-parameters
/// as for `telemetry_client_decision`.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_preview(
    client: *const Client,
    event_json: *const c_char,
    event_len: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_json", out_json)?;
        // SAFETY: the caller's contract.
        let text = unsafe { str_arg("event", event_json, event_len) }?;
        let item = client.inner.preview(event_from_json(text)?);
        // SAFETY: checked non-NULL.
        unsafe { write_string(item.to_string(), out_json, out_len) }
    })
}

/// For tests and test vectors: writes every event a `"sink": "memory"` client has
/// delivered so far, in delivery order, as a JSON array of PostHog batch items (after
/// anonymization and batching) to `*out_json`. Call `telemetry_client_flush` first to
/// deliver what is queued.
///
/// Ownership as for `telemetry_client_decision`. Thread-safe. Errors: `NULL_POINTER`,
/// `NO_MEMORY_SINK`.
///
/// # Safety
/// As for `telemetry_client_decision`.
#[no_mangle]
pub unsafe extern "C" fn telemetry_client_memory_events(
    client: *const Client,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_ref(client) }?;
        non_null("out_json", out_json)?;
        let memory = client.inner.memory().ok_or_else(|| {
            Error::new(
                ErrorCode::NO_MEMORY_SINK,
                "this client's sink is not \"memory\"",
            )
        })?;
        let text = Value::Array(memory.events()).to_string();
        // SAFETY: checked non-NULL.
        unsafe { write_string(text, out_json, out_len) }
    })
}
