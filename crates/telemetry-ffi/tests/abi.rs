//! The exported functions called as C would call them, for what the C suite in tests/c
//! cannot see from outside: agreement with the core's own limits and versions.

use std::ffi::{c_char, CStr};
use std::ptr;

use telemetry_ffi::*;

fn new_client(cfg: &str) -> Result<*mut Client, (ErrorCode, String)> {
    let mut client = ptr::null_mut();
    let err = unsafe { telemetry_client_new(cfg.as_ptr().cast(), cfg.len(), &mut client) };
    if err.is_null() {
        Ok(client)
    } else {
        Err(take(err))
    }
}

fn take(err: *mut Error) -> (ErrorCode, String) {
    let code = unsafe { telemetry_error_code(err) };
    let msg = unsafe { CStr::from_ptr(telemetry_error_message(err)) }
        .to_string_lossy()
        .into_owned();
    unsafe { telemetry_error_free(err) };
    (code, msg)
}

fn capture_event(client: *const Client, json: &str) -> Option<(ErrorCode, String)> {
    let err = unsafe { telemetry_client_capture_event(client, json.as_ptr().cast(), json.len()) };
    (!err.is_null()).then(|| take(err))
}

const MEMORY: &str = r#"{"product": "abi", "version": "1", "sink": "memory", "environment": {}}"#;

#[test]
fn the_event_name_limit_is_the_cores() {
    let client = new_client(MEMORY).unwrap();
    let at_limit = "e".repeat(TELEMETRY_MAX_EVENT_NAME_BYTES);
    let over = "e".repeat(TELEMETRY_MAX_EVENT_NAME_BYTES + 1);
    assert_eq!(
        capture_event(client, &format!(r#"{{"event": "{at_limit}"}}"#)),
        None
    );
    let (code, msg) = capture_event(client, &format!(r#"{{"event": "{over}"}}"#)).unwrap();
    assert_eq!(code, ErrorCode::INVALID_EVENT, "{msg}");
    unsafe { telemetry_client_free(client) };
}

#[test]
fn the_version_is_the_cores() {
    let v = unsafe { CStr::from_ptr(telemetry_version()) };
    assert_eq!(v.to_str().unwrap(), telemetry_core::context::CORE_VERSION);
}

#[test]
fn the_client_runtime_defaults_to_c_and_a_binding_can_name_its_own() {
    let preview = |cfg: &str| {
        let client = new_client(cfg).unwrap();
        let ev = r#"{"event": "x"}"#;
        let mut out: *mut c_char = ptr::null_mut();
        let err = unsafe {
            telemetry_client_preview(
                client,
                ev.as_ptr().cast(),
                ev.len(),
                &mut out,
                ptr::null_mut(),
            )
        };
        assert!(err.is_null());
        let v: serde_json::Value =
            serde_json::from_str(unsafe { CStr::from_ptr(out) }.to_str().unwrap()).unwrap();
        unsafe { telemetry_string_free(out) };
        unsafe { telemetry_client_free(client) };
        v
    };
    let c = preview(MEMORY);
    assert_eq!(c["properties"]["runtime"], "c", "{c}");
    let go = preview(
        r#"{"product": "abi", "sink": "memory", "environment": {}, "runtime": "go", "runtime_version": "go1.26"}"#,
    );
    assert_eq!(go["properties"]["runtime"], "go", "{go}");
}

#[test]
fn a_batch_is_all_or_nothing() {
    let client = new_client(MEMORY).unwrap();
    let bad = r#"[{"event": "a"}, {"event": ""}, {"event": "c"}]"#;
    let mut count = 99usize;
    let err = unsafe {
        telemetry_client_capture_batch(client, bad.as_ptr().cast(), bad.len(), &mut count)
    };
    let (code, msg) = take(err);
    assert_eq!(code, ErrorCode::INVALID_EVENT);
    assert!(msg.contains("events[1]"), "{msg}");
    assert_eq!(count, 99, "out_count is untouched on failure");
    let good = r#"[{"event": "a"}, {"event": "b", "properties": {"n": 1}}]"#;
    let err = unsafe {
        telemetry_client_capture_batch(client, good.as_ptr().cast(), good.len(), &mut count)
    };
    assert!(err.is_null());
    assert_eq!(count, 2);
    assert!(unsafe { telemetry_client_flush(client, 5000) }.is_null());
    let stats = unsafe { &*client }.core().stats();
    assert_eq!((stats.captured, stats.sent), (2, 2));
    unsafe { telemetry_client_free(client) };
}

#[test]
fn a_timeout_near_u64_max_is_clamped_not_an_overflow() {
    let client = new_client(MEMORY).unwrap();
    assert_eq!(capture_event(client, r#"{"event": "x"}"#), None);
    assert!(unsafe { telemetry_client_flush(client, u64::MAX) }.is_null());
    assert!(unsafe { telemetry_client_shutdown(client, u64::MAX) }.is_null());
    unsafe { telemetry_client_free(client) };
}
