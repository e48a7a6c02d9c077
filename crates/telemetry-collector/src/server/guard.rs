//! Who may do what: the loopback `Host` check, the admin token, the API-key
//! allow-list and the rate limits.
//!
//! - **Host**: a collector that listens on loopback answers only requests
//!   addressed to a loopback name. A web page can make a browser resolve its
//!   own domain to 127.0.0.1 (DNS rebinding) and then read `/api/*` as if it were
//!   same-origin; the `Host` header still carries that domain, so it is refused.
//! - **Admin token**: `/api/*` and the dashboard need `Authorization: Bearer
//!   <token>` whenever a token is configured (a collector beyond loopback
//!   refuses to start without); a dashboard session (see `session`) may read.
//! - **Senders**: with an allow-list, a request with any other project API key
//!   gets 401 and nothing of it is stored.
//! - **Rate limits** (token buckets): requests per source address, checked
//!   before the body is read, and events per API key, checked after it is
//!   parsed; 429 with `Retry-After`. Never per distinct id, which a sender
//!   chooses freely.

use std::collections::HashSet;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use super::routes::error_response;
use super::App;
use crate::config::{is_loopback, Rate};

/// A rate limit per key, e.g. per source address or per API key.
pub(crate) struct KeyedLimit<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    burst: NonZeroU32,
}

/// Why a [`KeyedLimit`] refused.
pub(crate) enum Limited {
    /// Over the rate: retry after this long.
    RetryAfter(Duration),
    /// More at once than the burst allows: never passes, send less per request.
    TooMany(NonZeroU32),
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    pub(crate) fn new(rate: Rate) -> Self {
        let quota = Quota::per_second(rate.per_second).allow_burst(rate.burst);
        KeyedLimit {
            limiter: RateLimiter::keyed(quota),
            burst: rate.burst,
        }
    }

    /// Takes `n` tokens for `key`, or says why not.
    pub(crate) fn check(&self, key: &K, n: u32) -> Result<(), Limited> {
        let Some(n) = NonZeroU32::new(n) else {
            return Ok(());
        };
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Limited::RetryAfter(
                not_until.wait_time_from(DefaultClock::default().now()),
            )),
            Err(_) => Err(Limited::TooMany(self.burst)),
        }
    }

    /// Forgets keys whose bucket is full again, so memory tracks the active
    /// senders, not every address or key ever seen.
    pub(crate) fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// 429 with a whole-second `Retry-After` (at least 1, as HTTP wants seconds).
pub(crate) fn too_many_requests(wait: Duration, what: &str) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "rate limit of {what} exceeded; retry after {} s",
            secs.max(1)
        ),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        secs.max(1)
            .to_string()
            .parse()
            .expect("digits are a valid header value"),
    );
    response
}

/// The admin token, kept as its SHA-256 so comparing takes the same time
/// whatever the presented token shares with it.
pub(crate) struct AdminToken([u8; 32]);

impl AdminToken {
    pub(crate) fn new(token: &str) -> Self {
        AdminToken(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `token` is the admin token.
    pub(crate) fn matches(&self, token: &str) -> bool {
        <[u8; 32]>::from(Sha256::digest(token.trim().as_bytes())) == self.0
    }

    /// Whether the request carries `Authorization: Bearer <the token>`.
    pub(crate) fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && self.matches(token)
    }
}

/// The API keys senders may use; `None` in [`App`] means any.
pub(crate) struct ApiKeys(HashSet<String>);

impl ApiKeys {
    pub(crate) fn new(keys: &[String]) -> Self {
        ApiKeys(keys.iter().cloned().collect())
    }

    pub(crate) fn allows(&self, key: &str) -> bool {
        self.0.contains(key)
    }
}

/// Middleware on every route: the loopback `Host` check.
pub(crate) async fn loopback_host(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    if app.loopback_only {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| request.uri().authority().map(|a| a.to_string()));
        if let Some(host) = host {
            if !is_loopback_name(&host) {
                return error_response(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Host {host:?} is not a loopback name; this collector listens on loopback \
                         and answers only localhost, 127.0.0.1 or [::1] (DNS-rebinding protection)"
                    ),
                );
            }
        }
    }
    next.run(request).await
}

/// Middleware on `/api/*`: the admin token, when one is configured; a
/// dashboard session may read (GET) but not change anything.
pub(crate) async fn admin_only(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &app.admin_token {
        let reads = matches!(*request.method(), Method::GET | Method::HEAD);
        let session = reads && app.sessions.valid(request.headers());
        if !session && !token.accepts(request.headers()) {
            let mut response = error_response(
                StatusCode::UNAUTHORIZED,
                "this endpoint needs the admin token: Authorization: Bearer <token>",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"telemetry-collector\""
                    .parse()
                    .expect("a valid header value"),
            );
            return response;
        }
    }
    next.run(request).await
}

/// Middleware on the ingest routes: requests per source address, before the
/// body is read (so a runaway sender costs no parsing and no storage).
pub(crate) async fn per_address(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limit) = &app.address_limit {
        let ip: IpAddr = peer.ip().to_canonical();
        if let Err(Limited::RetryAfter(wait)) = limit.check(&ip, 1) {
            return too_many_requests(wait, "requests per source address");
        }
    }
    next.run(request).await.into_response()
}

/// Whether a `Host` value (`name[:port]`, `[v6][:port]`) names this machine's loopback.
pub(crate) fn is_loopback_name(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, _port)) => v6,
            None => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(is_loopback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for ok in [
            "localhost",
            "localhost:8765",
            "127.0.0.1:1",
            "127.1.2.3",
            "[::1]:80",
            "[::1]",
            "app.localhost",
            "LOCALHOST.",
        ] {
            assert!(is_loopback_name(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8765",
            "127.0.0.1.evil.example",
            "[::2]:80",
            "10.0.0.1",
            "",
            "localhost.evil",
        ] {
            assert!(!is_loopback_name(bad), "{bad}");
        }
    }

    #[test]
    fn bearer_token() {
        let token = AdminToken::new("s3cret");
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            token.accepts(&h)
        };
        assert!(with("Bearer s3cret"));
        assert!(with("bearer s3cret"));
        assert!(!with("Bearer s3cre"));
        assert!(!with("Basic s3cret"));
        assert!(!token.accepts(&HeaderMap::new()));
    }

    #[test]
    fn keyed_limit_refuses_then_says_when() {
        let limit = KeyedLimit::new(Rate::per_second(1));
        assert!(limit.check(&"k", 2).is_ok()); // the burst: two seconds' worth
        match limit.check(&"k", 1) {
            Err(Limited::RetryAfter(wait)) => assert!(wait <= Duration::from_secs(1)),
            _ => panic!("the third token within a second must wait"),
        }
        assert!(limit.check(&"other", 1).is_ok());
        assert!(matches!(limit.check(&"new", 3), Err(Limited::TooMany(_))));
    }
}
