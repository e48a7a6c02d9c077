//! PostHog's batch API over HTTP(S) with ureq and rustls (bundled root certificates by
//! default, so it works on any machine without the system's CA store; the platform's, and a
//! `ca_file`'s on top, as [`crate::tls`] says).
//!
//! One call is one attempt: `POST {endpoint}/batch/` with `{"api_key", "batch"}`, gzip
//! above 1 KB. Network errors, 408, 429 and 5xx are retryable; other 4xx are not, nor is a
//! server certificate the client does not trust (retrying cannot change it).
//!
//! ```
//! use telemetry_core::transport::check_endpoint;
//! assert!(check_endpoint("https://eu.i.posthog.com").is_ok());
//! assert!(check_endpoint("http://127.0.0.1:8080").is_ok());
//! assert!(check_endpoint("http://telemetry.example.com").is_err());
//! ```

use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use crate::context::CORE_VERSION;
use crate::sink::{SendError, Sink};
use crate::tls::{is_ureq_certificate_error, Trust};

/// Bodies above this size are gzip-compressed.
const GZIP_ABOVE: usize = 1024;
/// `Retry-After` is honoured up to this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Checks an endpoint: `https://` anywhere, `http://` only to loopback (plain HTTP to a
/// remote host would expose the events and the API key on the network).
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = endpoint
        .parse()
        .map_err(|e| format!("endpoint {endpoint:?} is not a valid URL: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("endpoint {endpoint:?} has no host"))?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "endpoint {endpoint:?} uses plain HTTP to a non-loopback host; use https://"
        )),
        _ => Err(format!(
            "endpoint {endpoint:?} must start with https:// (or http:// for loopback)"
        )),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The PostHog batch transport.
pub struct PostHogSink {
    agent: ureq::Agent,
    url: String,
    api_key: String,
}

impl std::fmt::Debug for PostHogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The API key is deliberately left out of every rendering.
        f.debug_struct("PostHogSink")
            .field("url", &self.url)
            .finish()
    }
}

impl PostHogSink {
    /// A transport to `endpoint` (already checked) with the given connect timeout,
    /// trusting the bundled roots.
    pub fn new(endpoint: &str, api_key: &str, connect_timeout: Duration) -> Self {
        Self::with_trust(endpoint, api_key, connect_timeout, &Trust::default())
    }

    /// A transport that trusts what `trust` says (the client's `tls_roots` and `ca_file`).
    /// Reads the system's certificate store when `trust` needs it.
    pub fn with_trust(
        endpoint: &str,
        api_key: &str,
        connect_timeout: Duration,
        trust: &Trust,
    ) -> Self {
        let agent = ureq::Agent::config_builder()
            .tls_config(trust.ureq_config())
            .timeout_connect(Some(connect_timeout))
            .http_status_as_error(false)
            .user_agent(format!("telemetry-core/{CORE_VERSION}"))
            .max_redirects(0)
            .build()
            .new_agent();
        PostHogSink {
            agent,
            url: format!("{}/batch/", endpoint.trim_end_matches('/')),
            api_key: api_key.to_string(),
        }
    }

    /// The request body for `batch`, and whether it is gzip-compressed.
    pub fn encode(&self, batch: &[Value]) -> (Vec<u8>, bool) {
        let body = json!({
            "api_key": self.api_key,
            "batch": batch,
            "sent_at": crate::anonymize::timestamp(SystemTime::now()),
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        if bytes.len() <= GZIP_ABOVE {
            return (bytes, false);
        }
        let mut gz = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
        match gz.write_all(&bytes).and_then(|_| gz.finish()) {
            Ok(compressed) => (compressed, true),
            Err(_) => (bytes, false),
        }
    }
}

impl Sink for PostHogSink {
    fn send(&mut self, batch: &[Value], timeout: Duration) -> Result<(), SendError> {
        let (body, gzipped) = self.encode(batch);
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        if gzipped {
            request = request.header("Content-Encoding", "gzip");
        }
        let response = request
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send(&body[..]);
        let response = match response {
            Ok(r) => r,
            Err(e) if is_ureq_certificate_error(&e) => {
                return Err(SendError::permanent(format!(
                    "{} failed: {e} (the server's certificate is not trusted: \
                     a ca_file or tls_roots \"platform\" may be missing)",
                    self.url
                )))
            }
            Err(e) => return Err(SendError::transient(format!("{} failed: {e}", self.url))),
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let message = format!("{} answered HTTP {status}", self.url);
        if status == 408 || status == 429 || status >= 500 {
            Err(SendError {
                retryable: true,
                retry_after,
                message,
            })
        } else {
            Err(SendError::permanent(message))
        }
    }
}

/// `Retry-After` as delay-seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let format = time::format_description::well_known::Rfc2822;
        let when = time::OffsetDateTime::parse(value, &format).ok()?;
        let now = time::OffsetDateTime::now_utc();
        let secs = (when - now).whole_milliseconds().max(0) as u64;
        Duration::from_millis(secs)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_unless_loopback() {
        assert!(check_endpoint("http://localhost:1").is_ok());
        assert!(check_endpoint("http://[::1]:9/x").is_ok());
        assert!(check_endpoint("http://127.8.9.10").is_ok());
        assert!(check_endpoint("http://10.0.0.1").is_err());
        assert!(check_endpoint("ftp://127.0.0.1").is_err());
        assert!(check_endpoint("not a url").is_err());
    }

    #[test]
    fn retry_after_is_capped_and_accepts_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("3600"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn large_bodies_are_gzipped_and_small_ones_are_not() {
        let sink = PostHogSink::new("http://127.0.0.1:1", "key", Duration::from_secs(1));
        let (_, small) = sink.encode(&[json!({"event": "x"})]);
        assert!(!small);
        let big: Vec<Value> = (0..50).map(|i| json!({"event": "x", "i": i})).collect();
        let (bytes, gz) = sink.encode(&big);
        assert!(gz);
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
    }
}
