//! One anonymization, as the shared test vectors describe it, for bindings' vector runners.

use std::ffi::c_char;

use serde::Deserialize;
use serde_json::{json, Value};
use telemetry_core::anonymize::{anonymize_json, from_hex_secret, LocalNames, PropertyKind};

use crate::error::{guard, json_error, Error, ErrorCode};
use crate::io::{non_null, str_arg, write_string};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Names {
    #[serde(default)]
    home: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    host: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    secret_hex: String,
    precision: u32,
    #[serde(default)]
    local_names: Option<Names>,
    #[serde(default)]
    kind: Option<PropertyKind>,
    #[serde(default)]
    value: Value,
}

/// Anonymizes one property value the way the client's worker does, for test vectors and
/// previews. The request is JSON: `{"secret_hex": "<64 hex>", "precision": 3,
/// "local_names": {"home": ..., "user": ..., "host": ...}, "kind": null | "safe" |
/// "hashed" | "exact" | "number" | "text" | "dropped", "value": <any JSON>}`. The result
/// written to `*out_json` is `{"value": <anonymized>}`, or `{"dropped": true}` when the
/// property is not sent at all.
///
/// The request is borrowed; the caller owns `*out_json` and frees it with
/// `telemetry_string_free` (untouched on failure). Thread-safe, no shared state.
///
/// Errors: `NULL_POINTER`, `TOO_LARGE`, `INVALID_UTF8`, `INVALID_JSON`,
/// `INVALID_ARGUMENT` (unknown key, unknown kind, a secret that is not 64 hex characters).
///
/// # Safety
/// (`request_json`, `request_len`) readable (or NULL); `out_json` NULL or valid for a
/// write; `out_len` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn telemetry_anonymize(
    request_json: *const c_char,
    request_len: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> *mut Error {
    guard(|| {
        non_null("out_json", out_json)?;
        // SAFETY: the caller's contract.
        let text = unsafe { str_arg("request", request_json, request_len) }?;
        let req: Request = serde_json::from_str(text)
            .map_err(|e| json_error("anonymize request", &e, ErrorCode::INVALID_ARGUMENT))?;
        let secret = from_hex_secret(&req.secret_hex)
            .map_err(|e| Error::new(ErrorCode::INVALID_ARGUMENT, format!("secret_hex: {e}")))?;
        let names = req
            .local_names
            .map(|n| LocalNames {
                home: n.home,
                user: n.user,
                host: n.host,
            })
            .unwrap_or_default();
        let out = match anonymize_json(secret, req.precision, names, req.kind, req.value) {
            Some(value) => json!({ "value": value }),
            None => json!({ "dropped": true }),
        };
        // SAFETY: checked non-NULL.
        unsafe { write_string(out.to_string(), out_json, out_len) }
    })
}
