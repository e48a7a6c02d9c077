//! Decoding and validating PostHog ingestion bodies.
//!
//! Pure functions, no I/O: bytes in, validated [`Event`]s or a [`Rejection`] out.
//! A request is all or nothing: one bad event rejects the whole body, so a sender
//! never has to guess which half of its batch was kept.
//!
//! Accepted shapes, per [`Endpoint`]:
//!
//! | endpoint | `{"batch": [...]}` | single event `{"event": ...}` | bare `[...]` |
//! |---|---|---|---|
//! | `/batch/` | yes | no | no |
//! | `/capture/` | yes | yes | no |
//! | `/i/v0/e/` | yes | yes | yes |
//!
//! ```
//! use telemetry_collector::ingest::{parse, Endpoint};
//!
//! let body = br#"{"api_key": "phc_x", "batch": [
//!     {"event": "started", "distinct_id": "i-1", "properties": {"batch_size": 3}}
//! ]}"#;
//! let events = parse(Endpoint::Batch, body, None).unwrap();
//! assert_eq!(events[0].event, "started");
//! assert_eq!(events[0].batch_size(), 3);
//!
//! let err = parse(Endpoint::Batch, br#"{"api_key": "k", "batch": [{"distinct_id": "i"}]}"#, None)
//!     .unwrap_err();
//! assert_eq!(err.message, r#"batch[0]: missing "event""#);
//! ```

use std::borrow::Cow;
use std::io::Read;

use flate2::read::MultiGzDecoder;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

/// Largest request body accepted on the wire (8 MiB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Largest body accepted after gunzip (32 MiB); more is treated as a gzip bomb.
pub const MAX_DECODED_BYTES: usize = 32 * 1024 * 1024;

/// Most events accepted in one request.
pub const MAX_EVENTS: usize = 10_000;

/// Which ingestion path a body arrived on; decides which shapes are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /batch/`: `{"api_key", "batch": [...]}` only.
    Batch,
    /// `POST /capture/`: a single event, or the batch form.
    Capture,
    /// `POST /i/v0/e/`: single, batch form, or a bare array of events.
    Event,
}

/// Why a body was refused, with the HTTP status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 400 for malformed input, 413 for too large, 415 for an unknown encoding.
    pub status: u16,
    /// Human-readable reason, e.g. `batch[3]: missing "event"`.
    pub message: String,
}

impl Rejection {
    fn bad(message: impl Into<String>) -> Rejection {
        Rejection {
            status: 400,
            message: message.into(),
        }
    }

    fn too_large(message: impl Into<String>) -> Rejection {
        Rejection {
            status: 413,
            message: message.into(),
        }
    }
}

/// One validated event, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Lowercase hyphenated UUID: the sender's (normalised) or a fresh v4.
    pub uuid: String,
    /// Event name, non-empty.
    pub event: String,
    /// Sending instance, non-empty.
    pub distinct_id: String,
    /// The properties object (empty when the sender gave none).
    pub properties: Map<String, Value>,
    /// The sender's RFC 3339 timestamp, exactly as sent.
    pub timestamp: Option<String>,
    /// First 12 hex digits of SHA-256 of the project API key. The key itself is
    /// never stored: it is a credential of the product team, not ours to keep.
    pub api_key_hash: String,
    /// The project API key, for the allow-list and the per-key rate limit only;
    /// never written to the database.
    pub api_key: String,
}

impl Event {
    fn string_property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Value::as_str)
    }

    /// `properties.product`.
    pub fn product(&self) -> Option<&str> {
        self.string_property("product")
    }

    /// `properties.product_version`.
    pub fn product_version(&self) -> Option<&str> {
        self.string_property("product_version")
    }

    /// `properties.os`, else PostHog's own `$os`.
    pub fn os(&self) -> Option<&str> {
        self.string_property("os")
            .or_else(|| self.string_property("$os"))
    }

    /// `properties.batch_size` when it is a whole number, else 1: an event that
    /// was not merged stands for one occurrence.
    pub fn batch_size(&self) -> i64 {
        match self.properties.get("batch_size") {
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .unwrap_or(1),
            _ => 1,
        }
    }
}

/// Un-gzips `body` when `gzip` says so or when it starts with the gzip magic
/// bytes (some senders compress without saying so; JSON never starts with 0x1f).
///
/// Reads at most [`MAX_DECODED_BYTES`] + 1 bytes of output, so a small bomb that
/// inflates to gigabytes costs 32 MiB of memory before it is refused with 413.
pub fn decode_body(body: &[u8], gzip: bool) -> Result<Cow<'_, [u8]>, Rejection> {
    if !gzip && !body.starts_with(&[0x1f, 0x8b]) {
        return Ok(Cow::Borrowed(body));
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(body)
        .take(MAX_DECODED_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Rejection::bad(format!("body is not valid gzip: {e}")))?;
    if out.len() > MAX_DECODED_BYTES {
        return Err(Rejection::too_large(format!(
            "body inflates to more than {MAX_DECODED_BYTES} bytes"
        )));
    }
    Ok(Cow::Owned(out))
}

/// How a request says its body is encoded: headers and posthog-js's query.
///
/// ```
/// use telemetry_collector::ingest::{decode_request, Encoding};
///
/// // posthog-js's form body: `data=` holding base64 of the JSON.
/// let enc = Encoding {
///     content_type: Some("application/x-www-form-urlencoded"),
///     compression: Some("base64"),
///     ..Encoding::default()
/// };
/// let body = decode_request(b"data=eyJldmVudCI6ImUifQ%3D%3D", &enc).unwrap();
/// assert_eq!(&body[..], br#"{"event":"e"}"#);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Encoding<'a> {
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The `Content-Encoding` header.
    pub content_encoding: Option<&'a str>,
    /// posthog-js's `?compression=` (`gzip-js`, `base64`, ...).
    pub compression: Option<&'a str>,
}

/// Turns a request body into JSON bytes, whatever way a PostHog SDK sent it:
/// plain JSON; gzip (`Content-Encoding: gzip`, `?compression=gzip` / `gzip-js`,
/// or just gzip magic bytes); a form body (`data=<JSON or base64 JSON>`, which
/// posthog-js sends with `?compression=base64` and older SDKs send as is).
///
/// Other encodings (brotli, posthog-js's `lz64`) are refused with 415 rather
/// than misread as JSON; a body inflating beyond [`MAX_DECODED_BYTES`] with 413.
pub fn decode_request<'b>(
    body: &'b [u8],
    encoding: &Encoding<'_>,
) -> Result<Cow<'b, [u8]>, Rejection> {
    let gzip = is_gzip(encoding.content_encoding, encoding.compression)?;
    let base64 = encoding.compression == Some("base64");
    let body = decode_body(body, gzip)?;
    let is_form = encoding
        .content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        || body.starts_with(b"data=");
    if !is_form {
        return if base64 {
            decode_base64(&body).map(Cow::Owned)
        } else {
            Ok(body)
        };
    }
    let data = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "data")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| Rejection::bad(r#"form body without a "data" field"#))?;
    let trimmed = data.trim_start();
    if !base64 && (trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return Ok(Cow::Owned(data.into_bytes()));
    }
    decode_base64(data.as_bytes()).map(Cow::Owned)
}

/// Standard or URL-safe base64, padded or not, surrounding whitespace ignored.
fn decode_base64(text: &[u8]) -> Result<Vec<u8>, Rejection> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let text = text.trim_ascii();
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or_else(|| Rejection::bad("body is not valid base64"))
}

/// Whether the body is gzip, from `Content-Encoding` or posthog-js's
/// `?compression=` (`gzip-js` is what it sends).
fn is_gzip(content_encoding: Option<&str>, compression: Option<&str>) -> Result<bool, Rejection> {
    let unsupported = |what: String| Rejection {
        status: 415,
        message: format!("unsupported {what}; send plain JSON, gzip or base64"),
    };
    let mut gzip = false;
    for coding in content_encoding.unwrap_or("").split(',') {
        match coding.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => {}
            "gzip" | "x-gzip" => gzip = true,
            other => return Err(unsupported(format!("Content-Encoding {other:?}"))),
        }
    }
    match compression.unwrap_or("") {
        "" | "none" | "base64" => {}
        "gzip" | "gzip-js" => gzip = true,
        other => return Err(unsupported(format!("compression {other:?}"))),
    }
    Ok(gzip)
}

/// Parses and validates a (decoded) JSON body received on `endpoint`.
///
/// `query_api_key` is the `?api_key=` of the request, used when neither the body
/// nor the event carries one.
pub fn parse(
    endpoint: Endpoint,
    body: &[u8],
    query_api_key: Option<&str>,
) -> Result<Vec<Event>, Rejection> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Rejection::bad("empty body"));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Rejection::bad(format!("invalid JSON: {e}")))?;
    let query_api_key = query_api_key.filter(|k| !k.is_empty());

    let (items, top_key) = match value {
        Value::Object(mut obj) if obj.contains_key("batch") => {
            let top_key = api_key_in(&obj, "")?.map(str::to_owned);
            match obj.remove("batch") {
                Some(Value::Array(items)) => (items, top_key),
                _ => return Err(Rejection::bad(r#""batch" must be an array"#)),
            }
        }
        Value::Object(obj) if endpoint != Endpoint::Batch => {
            return Ok(vec![validate(Value::Object(obj), "", None, query_api_key)?]);
        }
        Value::Object(_) => return Err(Rejection::bad(r#"missing "batch""#)),
        Value::Array(items) if endpoint == Endpoint::Event => (items, None),
        _ => {
            return Err(Rejection::bad(match endpoint {
                Endpoint::Batch => r#"body must be a JSON object with "api_key" and "batch""#,
                Endpoint::Capture => "body must be a JSON object (an event, or a batch)",
                Endpoint::Event => "body must be a JSON object or an array of events",
            }))
        }
    };

    if items.len() > MAX_EVENTS {
        return Err(Rejection::too_large(format!(
            "{} events in one request; at most {MAX_EVENTS} are accepted",
            items.len()
        )));
    }
    let fallback_key = top_key.as_deref().or(query_api_key);
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| validate(item, &format!("batch[{i}]: "), fallback_key, None))
        .collect()
}

/// `"api_key"` (or PostHog's alias `"token"`) of `obj`, checked when present.
fn api_key_in<'a>(obj: &'a Map<String, Value>, prefix: &str) -> Result<Option<&'a str>, Rejection> {
    for name in ["api_key", "token"] {
        match obj.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if !s.is_empty() => return Ok(Some(s)),
            Some(_) => {
                return Err(Rejection::bad(format!(
                    r#"{prefix}"{name}" must be a non-empty string"#
                )))
            }
        }
    }
    Ok(None)
}

fn non_empty_string<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Option<&'a str>, Rejection> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(_) => Err(Rejection::bad(format!(
            r#"{prefix}"{name}" must be a non-empty string"#
        ))),
    }
}

/// Validates one event. `prefix` is `batch[i]: ` inside a batch, empty for a
/// single event, so every message says which event was wrong.
fn validate(
    item: Value,
    prefix: &str,
    outer_key: Option<&str>,
    query_key: Option<&str>,
) -> Result<Event, Rejection> {
    let Value::Object(mut obj) = item else {
        return Err(Rejection::bad(format!(
            "{prefix}event must be a JSON object"
        )));
    };

    let event = non_empty_string(&obj, "event", prefix)?
        .ok_or_else(|| Rejection::bad(format!(r#"{prefix}missing "event""#)))?
        .to_owned();

    let properties = match obj.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(Rejection::bad(format!(
                r#"{prefix}"properties" must be an object"#
            )))
        }
    };

    // PostHog lets the id live in the properties too (posthog-js does that).
    let distinct_id = match non_empty_string(&obj, "distinct_id", prefix)? {
        Some(id) => id.to_owned(),
        None => non_empty_string(&properties, "distinct_id", &format!("{prefix}properties."))?
            .ok_or_else(|| Rejection::bad(format!(r#"{prefix}missing "distinct_id""#)))?
            .to_owned(),
    };

    let timestamp = match obj.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => Some(s.clone()),
        Some(other) => {
            return Err(Rejection::bad(format!(
                r#"{prefix}"timestamp" must be an RFC 3339 date-time string, got {other}"#
            )))
        }
    };

    // Normalised so that the same id in another spelling (upper case, braces)
    // still hits the UNIQUE index on a retry.
    // An empty string counts as no uuid: posthog-go sends `"uuid": ""` for
    // every event its caller gave none, and PostHog's own ingestion reads it so.
    let uuid = match obj.get("uuid") {
        None | Some(Value::Null) => Uuid::new_v4().to_string(),
        Some(Value::String(s)) if s.is_empty() => Uuid::new_v4().to_string(),
        Some(Value::String(s)) => Uuid::parse_str(s)
            .map_err(|_| Rejection::bad(format!(r#"{prefix}"uuid" is not a UUID: "{s}""#)))?
            .to_string(),
        Some(_) => {
            return Err(Rejection::bad(format!(
                r#"{prefix}"uuid" must be a string"#
            )))
        }
    };

    let api_key = match api_key_in(&obj, prefix)? {
        Some(key) => key,
        None => match outer_key {
            Some(key) => key,
            None => match api_key_in(&properties, &format!("{prefix}properties."))? {
                Some(key) => key,
                None => query_key
                    .ok_or_else(|| Rejection::bad(format!(r#"{prefix}missing "api_key""#)))?,
            },
        },
    };

    if let Some(place) = nul_in(&event, &distinct_id, &properties) {
        return Err(Rejection::bad(format!(
            "{prefix}{place} contains a NUL character (\\u0000), which no store keeps"
        )));
    }

    Ok(Event {
        uuid,
        event,
        distinct_id,
        timestamp,
        api_key_hash: short_hash(api_key),
        api_key: api_key.to_owned(),
        properties,
    })
}

/// Where a NUL character hides, if anywhere: PostgreSQL refuses it in text and
/// JSON, so both stores refuse it alike (a clear 400 rather than one store
/// taking what the other cannot).
fn nul_in(event: &str, distinct_id: &str, properties: &Map<String, Value>) -> Option<String> {
    fn in_value(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(in_value),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || in_value(v)),
            _ => false,
        }
    }
    if event.contains('\0') {
        return Some(r#""event""#.into());
    }
    if distinct_id.contains('\0') {
        return Some(r#""distinct_id""#.into());
    }
    properties
        .iter()
        .find(|(k, v)| k.contains('\0') || in_value(v))
        .map(|(k, _)| format!("properties.{k:?}"))
}

/// Receive time, RFC 3339 UTC with milliseconds (what PostHog senders send
/// too). One fixed format, so text order is time order in both stores.
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// `at` in the [`now_rfc3339`] format: `2024-05-01T10:00:01.456Z`.
pub fn format_rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

pub(crate) fn short_hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_event_without_index_prefix() {
        let err = parse(
            Endpoint::Capture,
            br#"{"api_key":"k","distinct_id":"i"}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(err.message, r#"missing "event""#);
    }

    #[test]
    fn api_key_from_query_for_bare_array() {
        let body = br#"[{"event":"e","distinct_id":"i"}]"#;
        assert!(parse(Endpoint::Event, body, None).is_err());
        let events = parse(Endpoint::Event, body, Some("phc_1")).unwrap();
        assert_eq!(events[0].api_key_hash, short_hash("phc_1"));
        assert_eq!(events[0].api_key_hash.len(), 12);
    }

    #[test]
    fn distinct_id_from_properties_and_uuid_normalised() {
        let body = br#"{"api_key":"k","event":"e","uuid":"0190B7D4-AAAA-4BBB-8CCC-000000000001",
            "properties":{"distinct_id":"inst"}}"#;
        let e = &parse(Endpoint::Capture, body, None).unwrap()[0];
        assert_eq!(e.distinct_id, "inst");
        assert_eq!(e.uuid, "0190b7d4-aaaa-4bbb-8ccc-000000000001");
    }

    #[test]
    fn batch_endpoint_refuses_single_event() {
        let err = parse(
            Endpoint::Batch,
            br#"{"api_key":"k","event":"e","distinct_id":"i"}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (400, r#"missing "batch""#)
        );
    }

    #[test]
    fn bad_timestamp_and_batch_size_fallback() {
        let bad =
            br#"{"api_key":"k","batch":[{"event":"e","distinct_id":"i","timestamp":"yesterday"}]}"#;
        assert!(parse(Endpoint::Batch, bad, None)
            .unwrap_err()
            .message
            .starts_with("batch[0]: \"timestamp\""));
        let ok = br#"{"api_key":"k","batch":[{"event":"e","distinct_id":"i","timestamp":"2024-05-01T10:00:00.123+02:00","properties":{"batch_size":"7"}}]}"#;
        let e = &parse(Endpoint::Batch, ok, None).unwrap()[0];
        assert_eq!(
            e.timestamp.as_deref(),
            Some("2024-05-01T10:00:00.123+02:00")
        );
        assert_eq!(e.batch_size(), 1);
    }

    #[test]
    fn gzip_detection() {
        assert_eq!(is_gzip(Some("GZIP"), None), Ok(true));
        assert_eq!(is_gzip(None, Some("gzip-js")), Ok(true));
        assert_eq!(is_gzip(Some("identity"), None), Ok(false));
        assert_eq!(is_gzip(None, Some("lz64")).unwrap_err().status, 415);
    }

    #[test]
    fn form_bodies_plain_and_base64() {
        let form = Encoding {
            content_type: Some("application/x-www-form-urlencoded; charset=UTF-8"),
            ..Encoding::default()
        };
        // Older SDKs: the JSON itself, URL-encoded.
        let plain = decode_request(b"data=%7B%22event%22%3A%22e%22%7D", &form).unwrap();
        assert_eq!(&plain[..], br#"{"event":"e"}"#);
        // Unpadded URL-safe base64 is accepted as well.
        let b64 = decode_request(b"data=eyJldmVudCI6ImUifQ", &form).unwrap();
        assert_eq!(&b64[..], br#"{"event":"e"}"#);
        assert_eq!(decode_request(b"other=1", &form).unwrap_err().status, 400);
        assert_eq!(decode_request(b"data=%%%", &form).unwrap_err().status, 400);
    }

    #[test]
    fn nul_characters_are_refused_with_their_place() {
        let body =
            br#"{"api_key":"k","event":"e","distinct_id":"i","properties":{"a":["x\u0000"]}}"#;
        let err = parse(Endpoint::Capture, body, None).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.message.starts_with(r#"properties."a""#),
            "{}",
            err.message
        );
    }

    #[test]
    fn receive_times_have_one_fixed_width() {
        let at = OffsetDateTime::from_unix_timestamp(1_714_557_601).unwrap();
        assert_eq!(format_rfc3339(at), "2024-05-01T10:00:01.000Z");
    }

    #[test]
    fn plain_body_is_passed_through_and_garbage_gzip_refused() {
        assert!(matches!(
            decode_body(b"{}", false).unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(decode_body(b"{}", true).unwrap_err().status, 400);
    }
}
