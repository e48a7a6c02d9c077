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
    let uuid = match obj.get("uuid") {
        None | Some(Value::Null) => Uuid::new_v4().to_string(),
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

    Ok(Event {
        uuid,
        event,
        distinct_id,
        timestamp,
        api_key_hash: short_hash(api_key),
        properties,
    })
}

fn short_hash(key: &str) -> String {
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
    fn plain_body_is_passed_through_and_garbage_gzip_refused() {
        assert!(matches!(
            decode_body(b"{}", false).unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(decode_body(b"{}", true).unwrap_err().status, 400);
    }
}
