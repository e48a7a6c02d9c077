//! The local endpoints, `/telemetry` and `/metrics`, as a function any host server calls:
//! from a path and a raw query string to a status, a content type and a body.
//!
//! In: `details_level=N` (0 to 4; higher means 4) and `anonymize=true|false` for
//! `/telemetry` (defaults 0 and false, as Qdrant's), `anonymize` for `/metrics`. Out: 200
//! with the report or the exposition; 400 with a message naming the parameter for anything
//! else (a negative or non-numeric level, a value that is not a boolean, an unknown or
//! repeated parameter); 404 for other paths. Nothing here panics on any input.
//!
//! ```
//! let usage = telemetry_core::usage::Usage::standalone("myapp", "1.0");
//! let r = usage.handle("/metrics", "");
//! assert_eq!(r.content_type, telemetry_core::usage::endpoint::PROMETHEUS_CONTENT_TYPE);
//! let bad = usage.handle("/telemetry", "details_level=-1");
//! assert_eq!(bad.status, 400);
//! assert!(bad.body.contains("details_level"));
//! ```

use serde_json::json;

use super::{ReportOptions, Usage, MAX_DETAILS_LEVEL};

/// The exposition format's content type.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An HTTP answer for the host's server to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// 200, 400 or 404.
    pub status: u16,
    /// `application/json` or the exposition format's.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

fn error(status: u16, message: &str) -> Response {
    Response {
        status,
        content_type: "application/json",
        body: json!({ "error": message }).to_string(),
    }
}

/// Decodes `%XX` and `+` in a query component; invalid escapes are kept as they are.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            // Two hex digits exactly: `u8::from_str_radix` alone would also take a sign
            // (`%+9` as a tab), which no form decoder does.
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push((hex(bytes[i + 1]) << 4) | hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query's parameters, or a message for a 400.
fn parameters(query: &str, allowed: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (k, v) = (decode(k), decode(v));
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "unknown parameter {k:?}; this endpoint takes {}",
                allowed.join(" and ")
            ));
        }
        if seen.iter().any(|(s, _)| *s == k) {
            return Err(format!("parameter {k:?} given twice"));
        }
        seen.push((k, v));
    }
    Ok(seen)
}

fn boolean(name: &str, v: &str) -> Result<bool, String> {
    match crate::consent::parse_bool(v) {
        Ok(Some(b)) => Ok(b),
        _ => Err(format!("{name} must be true or false, not {v:?}")),
    }
}

fn level(v: &str) -> Result<u8, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "details_level must be a whole number from 0 (higher numbers mean {MAX_DETAILS_LEVEL}), not {v:?}"
        ));
    }
    // Any higher number means the highest level, however many digits it has.
    Ok(v.parse::<u64>().map_or(MAX_DETAILS_LEVEL, |n| {
        n.min(u64::from(MAX_DETAILS_LEVEL)) as u8
    }))
}

/// Answers one request; see the module documentation.
pub fn handle(usage: &Usage, path: &str, query: &str) -> Response {
    let path = path.trim_end_matches('/');
    match path {
        "/telemetry" => {
            let params = match parameters(query, &["details_level", "anonymize"]) {
                Ok(p) => p,
                Err(m) => return error(400, &m),
            };
            let mut options = ReportOptions::default();
            for (k, v) in params {
                let parsed = match k.as_str() {
                    "details_level" => level(&v).map(|l| options.details_level = l),
                    _ => boolean("anonymize", &v).map(|b| options.anonymize = b),
                };
                if let Err(m) = parsed {
                    return error(400, &m);
                }
            }
            Response {
                status: 200,
                content_type: "application/json",
                body: usage.report(&options).to_string(),
            }
        }
        "/metrics" => {
            let params = match parameters(query, &["anonymize"]) {
                Ok(p) => p,
                Err(m) => return error(400, &m),
            };
            let mut anonymize = false;
            for (_, v) in params {
                match boolean("anonymize", &v) {
                    Ok(b) => anonymize = b,
                    Err(m) => return error(400, &m),
                }
            }
            Response {
                status: 200,
                content_type: PROMETHEUS_CONTENT_TYPE,
                body: usage.prometheus(anonymize),
            }
        }
        _ => error(
            404,
            "not found: this server answers /telemetry and /metrics",
        ),
    }
}

/// The methods the endpoints answer, as an `Allow` header lists them (sent with a 405).
pub const ALLOWED_METHODS: &str = "GET, HEAD";

/// Answers one request given its method as well, for host servers that pass every method
/// through (WSGI, ASGI, `net/http`): `GET` and `HEAD` as [`handle`] (the host's server
/// leaves the body out for `HEAD`), anything else 405.
///
/// ```
/// use telemetry_core::usage::{endpoint, Usage};
/// let usage = Usage::standalone("myapp", "1.0");
/// assert_eq!(endpoint::handle_method(&usage, "HEAD", "/metrics", "").status, 200);
/// assert_eq!(endpoint::handle_method(&usage, "POST", "/metrics", "").status, 405);
/// ```
pub fn handle_method(usage: &Usage, method: &str, path: &str, query: &str) -> Response {
    match method {
        "GET" | "HEAD" => handle(usage, path, query),
        _ => error(405, "only GET and HEAD are served"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_escape_is_not_a_boolean() {
        let usage = Usage::standalone("myapp", "1.0");
        let r = handle(&usage, "/telemetry", "anonymiz%65=%+9true");
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("anonymize"));
    }

    #[test]
    fn queries_are_decoded_and_checked() {
        assert_eq!(decode("a%20b+c%zz%4"), "a b c%zz%4");
        // Not an escape: a sign is not a hex digit (found by the usage_query fuzz target,
        // fuzz/regressions/usage_query/plus-sign-in-percent-escape.bin).
        assert_eq!(decode("%+9true"), "% 9true");
        assert_eq!(decode("%-1%C3%A9"), "%-1é");
        assert_eq!(level("6"), Ok(4));
        assert_eq!(level("99999999999999999999999"), Ok(4));
        assert!(level("1.5").is_err() && level("").is_err() && level("-1").is_err());
        assert!(parameters("details_level=1&details_level=2", &["details_level"]).is_err());
        assert!(parameters("x=1", &["anonymize"])
            .unwrap_err()
            .contains("takes anonymize"));
    }
}
