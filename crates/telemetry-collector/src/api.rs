//! Routing: which path and method does what.
//!
//! | method | path | answer |
//! |---|---|---|
//! | `POST` | `/batch/`, `/capture/`, `/i/v0/e/` (and `/e/`) | `{"status": 1}` once stored |
//! | `GET` | `/api/events?event=&distinct_id=&limit=` | newest events, oldest first |
//! | `GET` | `/api/summary` | [`Summary`](crate::Summary) |
//! | `GET` | `/api/usage?product=` | the newest usage report of each install |
//! | `GET` | `/api/errors?product=` | error reports grouped by fingerprint, most frequent first |
//! | `DELETE` | `/api/instances/{distinct_id}` | `{"deleted": n}` |
//! | `GET` | `/health` | `ok` |
//!
//! Trailing slashes are optional everywhere. Errors are `{"error": "..."}`.

use log::{debug, error};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::http::{Request, Response};
use crate::ingest::{self, Endpoint, Rejection};
use crate::store::{EventFilter, Store, MAX_LIMIT};

/// Answers one request. Never panics on purpose; the caller still catches
/// panics so that a bug answers 500 instead of killing a connection thread.
pub(crate) fn handle(request: &Request, store: &Store) -> Response {
    let path = request.path.trim_end_matches('/');
    let method = request.method.as_str();
    let endpoint = match path {
        "/batch" => Some(Endpoint::Batch),
        "/capture" => Some(Endpoint::Capture),
        // `/e/` is the path posthog-js posts to; same handler as `/i/v0/e/`.
        "/i/v0/e" | "/e" => Some(Endpoint::Event),
        _ => None,
    };
    if let Some(endpoint) = endpoint {
        return match method {
            "POST" => ingest(request, endpoint, store),
            _ => method_not_allowed("POST"),
        };
    }
    match path {
        "/health" => match method {
            "GET" => Response::text(200, "ok"),
            _ => method_not_allowed("GET"),
        },
        "/api/events" => match method {
            "GET" => events(request, store),
            _ => method_not_allowed("GET"),
        },
        "/api/errors" => match method {
            "GET" => {
                let query = query_pairs(&request.query);
                let product = query_value(&query, "product").filter(|v| !v.is_empty());
                match store.error_groups(product) {
                    Ok(groups) => Response::json(200, &groups),
                    Err(e) => database_error(e),
                }
            }
            _ => method_not_allowed("GET"),
        },
        "/api/usage" => match method {
            "GET" => usage(request, store),
            _ => method_not_allowed("GET"),
        },
        "/api/summary" => match method {
            "GET" => match store.summary() {
                Ok(summary) => Response::json(200, &summary),
                Err(e) => database_error(e),
            },
            _ => method_not_allowed("GET"),
        },
        _ => match path.strip_prefix("/api/instances/") {
            Some(id) if !id.is_empty() && !id.contains('/') => match method {
                "DELETE" => delete_instance(id, store),
                _ => method_not_allowed("DELETE"),
            },
            _ => Response::error(404, format!("no such endpoint: {}", request.path)),
        },
    }
}

fn method_not_allowed(allowed: &'static str) -> Response {
    Response::error(405, format!("method not allowed; use {allowed}")).with_header("Allow", allowed)
}

fn database_error(e: crate::Error) -> Response {
    error!("{e}");
    Response::error(500, e.to_string())
}

fn ingest(request: &Request, endpoint: Endpoint, store: &Store) -> Response {
    match ingest_events(request, endpoint, store) {
        Ok(()) => Response::json(200, &json!({ "status": 1 })),
        Err(rejection) => {
            debug!(
                "{} {} refused: {}",
                request.method, request.path, rejection.message
            );
            Response::error(rejection.status, rejection.message)
        }
    }
}

fn ingest_events(request: &Request, endpoint: Endpoint, store: &Store) -> Result<(), Rejection> {
    let query = query_pairs(&request.query);
    let gzip = is_gzip(
        request.header("content-encoding"),
        query_value(&query, "compression"),
    )?;
    let body = ingest::decode_body(&request.body, gzip)?;
    let events = ingest::parse(endpoint, &body, query_value(&query, "api_key"))?;
    let received_at = now_rfc3339();
    match store.insert(&events, &received_at) {
        Ok(inserted) => {
            debug!(
                "{}: stored {} events, skipped {} already stored",
                request.path, inserted.stored, inserted.duplicates
            );
            Ok(())
        }
        Err(e) => {
            error!("could not store events: {e}");
            // 500 is retried by PostHog senders, which is what we want: nothing
            // was committed, so the retry cannot double-store.
            Err(Rejection {
                status: 500,
                message: format!("could not store events: {e}"),
            })
        }
    }
}

/// Whether the body is gzip, from `Content-Encoding` or posthog-js's
/// `?compression=` (`gzip-js` is what it sends). Other encodings (posthog-js's
/// `base64`/`lz64`, brotli) are refused with 415 rather than misread as JSON.
fn is_gzip(content_encoding: Option<&str>, compression: Option<&str>) -> Result<bool, Rejection> {
    let unsupported = |what: String| Rejection {
        status: 415,
        message: format!("unsupported {what}; send plain JSON or gzip"),
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
        "" | "none" => {}
        "gzip" | "gzip-js" => gzip = true,
        other => return Err(unsupported(format!("compression {other:?}"))),
    }
    Ok(gzip)
}

/// `[{"distinct_id", "timestamp", "received_at", "report": {...}}]`: the report is the
/// event's properties (the core's report with the event context beside it).
fn usage(request: &Request, store: &Store) -> Response {
    let query = query_pairs(&request.query);
    let product = query_value(&query, "product").filter(|v| !v.is_empty());
    match store.latest_usage_reports(product) {
        Ok(reports) => {
            let items: Vec<serde_json::Value> = reports
                .into_iter()
                .map(|e| {
                    json!({"distinct_id": e.distinct_id, "timestamp": e.timestamp,
                           "received_at": e.received_at, "report": e.properties})
                })
                .collect();
            Response::json(200, &items)
        }
        Err(e) => database_error(e),
    }
}

fn events(request: &Request, store: &Store) -> Response {
    let query = query_pairs(&request.query);
    let mut filter = EventFilter::default();
    if let Some(event) = query_value(&query, "event").filter(|v| !v.is_empty()) {
        filter = filter.event(event);
    }
    if let Some(id) = query_value(&query, "distinct_id").filter(|v| !v.is_empty()) {
        filter = filter.distinct_id(id);
    }
    if let Some(limit) = query_value(&query, "limit").filter(|v| !v.is_empty()) {
        match limit.parse::<usize>() {
            Ok(n) => filter = filter.limit(n.min(MAX_LIMIT)),
            Err(_) => {
                return Response::error(
                    400,
                    format!("\"limit\" must be a whole number from 0 to {MAX_LIMIT}"),
                )
            }
        }
    }
    match store.events(&filter) {
        Ok(events) => Response::json(200, &events),
        Err(e) => database_error(e),
    }
}

fn delete_instance(encoded_id: &str, store: &Store) -> Response {
    // In a path `+` is a literal plus; only query strings use it for space.
    let id = percent_decode(encoded_id, false);
    match store.delete_instance(&id) {
        Ok(n) => {
            debug!("deleted {n} events of instance {id:?}");
            Response::json(200, &json!({ "deleted": n }))
        }
        Err(e) => database_error(e),
    }
}

/// Receive time, RFC 3339 UTC with milliseconds (what PostHog senders send too).
fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `%XX` (and, in query strings, `+`) decoding; malformed escapes are kept literally and invalid
/// UTF-8 becomes U+FFFD, because a lookup key that matches nothing is a better
/// answer than an error here.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%2Fd", true), "a b c/d");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", true), "100%");
        assert_eq!(percent_decode("%zz%4", true), "%zz%4");
        assert_eq!(percent_decode("%C3%A9", true), "é");
    }

    #[test]
    fn gzip_detection() {
        assert_eq!(is_gzip(Some("GZIP"), None), Ok(true));
        assert_eq!(is_gzip(None, Some("gzip-js")), Ok(true));
        assert_eq!(is_gzip(Some("identity"), None), Ok(false));
        assert_eq!(is_gzip(None, Some("lz64")).unwrap_err().status, 415);
    }
}
