//! Dashboard sessions: a browser cannot send a Bearer header on a page load,
//! so after the admin token is typed once into `/login` it gets a cookie.
//!
//! The cookie holds 256 random bits; the collector keeps only their SHA-256,
//! with an expiry (12 hours), in memory (a restart signs everyone out, which
//! is fine for an admin page). `HttpOnly` keeps it from scripts,
//! `SameSite=Strict` from requests other sites start, `Secure` is added when
//! the collector serves HTTPS. A session reads (GET); changing data, such as
//! `DELETE /api/instances/{id}`, still needs the Bearer header.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

/// The cookie's name.
pub(crate) const COOKIE: &str = "telemetry_session";

/// How long a session lasts.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Sessions kept at most; beyond, the one closest to expiry goes.
const MAX_SESSIONS: usize = 10_000;

pub(crate) struct Sessions {
    expiry_by_hash: Mutex<HashMap<[u8; 32], Instant>>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The value of cookie `COOKIE` in the request's `Cookie` headers.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

impl Sessions {
    pub(crate) fn new() -> Self {
        Sessions {
            expiry_by_hash: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        self.expiry_by_hash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a session; returns the cookie's value.
    pub(crate) fn create(&self) -> String {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut map = self.map();
        map.retain(|_, expiry| *expiry > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(hash(&token), now + LIFETIME);
        token
    }

    /// Whether the request carries a live session's cookie.
    pub(crate) fn valid(&self, headers: &HeaderMap) -> bool {
        let Some(token) = cookie_value(headers) else {
            return false;
        };
        self.map()
            .get(&hash(token))
            .is_some_and(|expiry| *expiry > Instant::now())
    }

    /// Ends the request's session, if it has one.
    pub(crate) fn end(&self, headers: &HeaderMap) {
        if let Some(token) = cookie_value(headers) {
            self.map().remove(&hash(token));
        }
    }
}

/// `Set-Cookie` for a new session.
pub(crate) fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that makes the browser forget the session.
pub(crate) fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, value.parse().unwrap());
        h
    }

    #[test]
    fn a_session_is_valid_until_ended() {
        let sessions = Sessions::new();
        let token = sessions.create();
        assert_eq!(token.len(), 64);
        let headers = with_cookie(&format!("other=1; {COOKIE}={token}"));
        assert!(sessions.valid(&headers));
        assert!(!sessions.valid(&with_cookie(&format!("{COOKIE}={token}x"))));
        assert!(!sessions.valid(&with_cookie("other=1")));
        assert!(!sessions.valid(&HeaderMap::new()));
        sessions.end(&headers);
        assert!(!sessions.valid(&headers));
    }

    #[test]
    fn tokens_differ_and_cookies_are_strict() {
        let sessions = Sessions::new();
        assert_ne!(sessions.create(), sessions.create());
        let c = set_cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!set_cookie("abc", false).contains("Secure"));
    }
}
