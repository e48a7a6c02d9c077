//! The C ABI's text entry points (telemetry-ffi, called as C would through its rlib) on
//! arbitrary bytes, NUL-terminated as a C string would be and possibly not UTF-8: the
//! client config (`telemetry_client_new`), an event and a batch
//! (`telemetry_client_capture_event` / `_capture_batch`, on a memory-sink client that is
//! on and on a client whose consent is off, so nothing is ever sent), an event preview
//! (`telemetry_client_preview`, the same event parser with anonymization) and the
//! anonymize request (`telemetry_anonymize`).
//!
//! Must hold: no panic crosses the boundary (a caught one is `PANIC`, a bug); every
//! failure is an error with a documented code and a non-empty UTF-8 message, and leaves
//! the out-parameters untouched; every string returned is UTF-8 JSON whose length is the
//! one reported; everything returned is freed with its own free function, so
//! -detect_leaks (on with ASan) sees any leak.
#![no_main]

use std::ffi::{c_char, CStr};
use std::ptr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use telemetry_ffi::{
    telemetry_anonymize, telemetry_client_capture_batch, telemetry_client_capture_event,
    telemetry_client_decision, telemetry_client_free, telemetry_client_new,
    telemetry_client_preview, telemetry_error_code, telemetry_error_free, telemetry_error_message,
    telemetry_string_free, Client, Error, ErrorCode,
};

/// A client that is on, whose events go to memory (cleared after every input).
const ON: &str = r#"{"product": "fuzzapp", "version": "1.0", "sink": "memory",
  "explicit": true, "environment": {}, "working_dir": "/nonexistent-fuzz",
  "install_id": "6f9619ff-8b86-4d11-b42d-00c04fc964ff", "secret_hex":
  "0707070707070707070707070707070707070707070707070707070707070707",
  "queue_capacity": 64}"#;

/// A client whose consent is off; were it on, it would send to a port nothing listens on.
const OFF: &str = r#"{"product": "fuzzapp", "version": "1.0", "sink": "posthog",
  "endpoint": "http://127.0.0.1:9", "api_key": "phc_fuzz", "explicit": false,
  "environment": {}, "working_dir": "/nonexistent-fuzz"}"#;

struct Clients {
    on: *mut Client,
    off: *mut Client,
}
// SAFETY: every client function used here is documented thread-safe (all but free, which
// is never called on these).
unsafe impl Send for Clients {}
unsafe impl Sync for Clients {}

fn new_client(config: &str) -> *mut Client {
    let mut client = ptr::null_mut();
    // SAFETY: a valid (pointer, length) and out-parameter.
    let err = unsafe { telemetry_client_new(config.as_ptr().cast(), config.len(), &mut client) };
    assert!(err.is_null(), "harness client: {}", unsafe { message(err) });
    client
}

fn clients() -> &'static Clients {
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    CLIENTS.get_or_init(|| Clients {
        on: new_client(ON),
        off: new_client(OFF),
    })
}

/// The error's message, checked: non-empty UTF-8.
///
/// # Safety
/// `err` is a live error.
unsafe fn message(err: *const Error) -> String {
    let text = unsafe { CStr::from_ptr(telemetry_error_message(err)) };
    let text = text.to_str().expect("error message is UTF-8");
    assert!(!text.is_empty(), "an error without a message");
    text.to_string()
}

/// Checks a call's outcome and frees the error: Ok(()) on success, Err(code) on failure.
fn outcome(err: *mut Error, allowed: &[ErrorCode]) -> Result<(), ErrorCode> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a live error this library returned; freed once, here.
    let (code, text) = unsafe { (telemetry_error_code(err), message(err)) };
    unsafe { telemetry_error_free(err) };
    assert_ne!(
        code,
        ErrorCode::PANIC,
        "a panic was caught at the boundary: {text}"
    );
    assert!(
        allowed.contains(&code),
        "undocumented code {} ({text})",
        code.name()
    );
    Err(code)
}

/// Checks a string returned through (`out`, `out_len`) and frees it: NUL-terminated UTF-8
/// JSON of the reported length.
fn returned_json(out: *mut c_char, out_len: usize) -> serde_json::Value {
    assert!(!out.is_null(), "success without a string");
    // SAFETY: a live string this library returned; freed once, here.
    let bytes = unsafe { CStr::from_ptr(out) }.to_bytes().to_vec();
    unsafe { telemetry_string_free(out) };
    assert_eq!(bytes.len(), out_len, "reported length");
    let text = String::from_utf8(bytes).expect("returned string is UTF-8");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("returned string is not JSON ({e}): {text}"))
}

const TEXT_ERRORS: [ErrorCode; 4] = [
    ErrorCode::NULL_POINTER,
    ErrorCode::TOO_LARGE,
    ErrorCode::INVALID_UTF8,
    ErrorCode::INVALID_JSON,
];

fn with(extra: ErrorCode) -> Vec<ErrorCode> {
    let mut codes = TEXT_ERRORS.to_vec();
    codes.push(extra);
    codes
}

fn utf8_error_iff(result: Result<(), ErrorCode>, text: &[u8], is_null: bool) {
    let utf8 = std::str::from_utf8(text).is_ok();
    if is_null {
        assert_eq!(result, Err(ErrorCode::NULL_POINTER));
    } else {
        assert_eq!(
            result == Err(ErrorCode::INVALID_UTF8),
            !utf8,
            "INVALID_UTF8 exactly when the text is not UTF-8: {result:?}"
        );
    }
}

/// Whether a config names a `ca_file` that exists but is not a regular file (`/dev/zero`,
/// `/dev/stdin`, a FIFO): the client reads it whole when it is built, which would hang or
/// exhaust memory. The integrator writes that path, so the harness skips such configs
/// rather than report them.
fn names_a_special_ca_file(text: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(config)) = serde_json::from_slice(text) else {
        return false;
    };
    match config.get("ca_file").and_then(|v| v.as_str()) {
        Some(path) => std::fs::metadata(path).is_ok_and(|m| !m.is_file()),
        None => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    // The text as C holds it: the bytes and a NUL after them (not counted in the length).
    let mut c_text = text.to_vec();
    c_text.push(0);
    // Bit 7: pass NULL (with length 0) instead of the text.
    let is_null = selector & 0x80 != 0;
    let (ptr_in, len): (*const c_char, usize) = if is_null {
        (ptr::null(), 0)
    } else {
        (c_text.as_ptr().cast(), text.len())
    };
    let Clients { on, off } = *clients();

    match selector % 5 {
        0 => {
            if names_a_special_ca_file(text) {
                return;
            }
            let mut client = ptr::null_mut();
            // SAFETY: valid (pointer, length) and out-parameter.
            let err = unsafe { telemetry_client_new(ptr_in, len, &mut client) };
            let result = outcome(err, &with(ErrorCode::INVALID_CONFIG));
            utf8_error_iff(result, text, is_null);
            if result.is_err() {
                assert!(client.is_null(), "out_client written on failure");
                return;
            }
            assert!(!client.is_null());
            let (mut out, mut out_len) = (ptr::null_mut(), 0);
            // SAFETY: a live client and valid out-parameters.
            let err = unsafe { telemetry_client_decision(client, &mut out, &mut out_len) };
            assert_eq!(outcome(err, &[]), Ok(()));
            let decision = returned_json(out, out_len);
            assert!(decision["enabled"].is_boolean(), "{decision}");
            // SAFETY: made above, freed once.
            unsafe { telemetry_client_free(client) };
        }
        1 => {
            // SAFETY: live clients, valid (pointer, length).
            let err = unsafe { telemetry_client_capture_event(on, ptr_in, len) };
            let result = outcome(err, &with(ErrorCode::INVALID_EVENT));
            utf8_error_iff(result, text, is_null);
            // Off: nothing is read, nothing fails.
            let err = unsafe { telemetry_client_capture_event(off, ptr_in, len) };
            assert_eq!(
                outcome(err, &[]),
                Ok(()),
                "a capture on a client that is off"
            );
        }
        2 => {
            let mut count = usize::MAX;
            // SAFETY: live clients, valid (pointer, length) and out-parameter.
            let err = unsafe { telemetry_client_capture_batch(on, ptr_in, len, &mut count) };
            let result = outcome(err, &with(ErrorCode::INVALID_EVENT));
            utf8_error_iff(result, text, is_null);
            if result.is_err() {
                assert_eq!(count, usize::MAX, "out_count written on failure");
            } else {
                let parsed: serde_json::Value =
                    serde_json::from_slice(text).expect("an accepted batch is JSON");
                assert_eq!(Some(count), parsed.as_array().map(Vec::len));
            }
            let mut count = usize::MAX;
            let err = unsafe { telemetry_client_capture_batch(off, ptr_in, len, &mut count) };
            assert_eq!(outcome(err, &[]), Ok(()), "a batch on a client that is off");
            assert_eq!(count, 0, "a client that is off captured a batch");
        }
        3 => {
            let (mut out, mut out_len) = (ptr::null_mut(), usize::MAX);
            // SAFETY: valid (pointer, length) and out-parameters.
            let err = unsafe { telemetry_anonymize(ptr_in, len, &mut out, &mut out_len) };
            let result = outcome(err, &with(ErrorCode::INVALID_ARGUMENT));
            utf8_error_iff(result, text, is_null);
            if result.is_err() {
                assert!(
                    out.is_null() && out_len == usize::MAX,
                    "out written on failure"
                );
                return;
            }
            let value = returned_json(out, out_len);
            let map = value.as_object().expect("an object");
            assert!(
                map.len() == 1 && (map.contains_key("value") || map["dropped"] == true),
                "{value}"
            );
        }
        _ => {
            // The preview works whatever the consent: the off client.
            let (mut out, mut out_len) = (ptr::null_mut(), usize::MAX);
            // SAFETY: a live client, valid (pointer, length) and out-parameters.
            let err = unsafe { telemetry_client_preview(off, ptr_in, len, &mut out, &mut out_len) };
            let result = outcome(err, &with(ErrorCode::INVALID_EVENT));
            utf8_error_iff(result, text, is_null);
            if result.is_err() {
                assert!(
                    out.is_null() && out_len == usize::MAX,
                    "out written on failure"
                );
                return;
            }
            let item = returned_json(out, out_len);
            assert!(item["event"].is_string(), "{item}");
        }
    }
    // SAFETY: a live client. Forget what the memory sink kept, so memory stays flat.
    if let Some(memory) = unsafe { &*on }.core().memory() {
        memory.clear();
    }
});
