//! The collector's request routing: arbitrary methods, paths (percent-encoding, `..`,
//! doubled and trailing slashes, very long ones), queries, headers (`Host`,
//! `Content-Type`, `Content-Encoding`, `Authorization`, `Cookie`, CORS) and bodies,
//! driven through the real application in-process (`server::InProcess`: the axum
//! router behind the path normalisation, exactly what a connection serves) on a
//! current-thread tokio runtime, over in-memory SQLite stores.
//!
//! Must hold, beyond "never panics" (a handler's panic would be a 500 from the
//! catch-panic layer; libFuzzer's hook aborts on it first):
//! - every answer is one of the statuses bad client input may get: 200, 303, 400,
//!   401, 403, 404, 405, 413, 415; never a 5xx (nothing here is the server's fault:
//!   the stores are in memory and never full), never a 408;
//! - an error answer has a body; a 405 says what is allowed;
//! - on the collector with an admin token, a request carrying neither the token nor a
//!   session cookie gets a 2xx only from a public route (ingest, `/health`, `/login`,
//!   the two assets); a session alone never deletes.
//!
//! The input is structured (`arbitrary::Unstructured`): most choices pick from the
//! vocabulary of the routes, the rest are raw bytes, so both near-misses of real
//! routes and garbage are tried. A URI or header hyper would refuse before routing is
//! skipped.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use telemetry_collector::dashboard::View;
use telemetry_collector::server::InProcess;
use telemetry_collector::CollectorConfig;

const TOKEN: &str = "fuzz-admin-token-7b1f";
const API_KEY: &str = "phc_fuzz";

/// Segments of real routes, their near-misses, and path tricks.
const SEGMENTS: &[&str] = &[
    "api",
    "events",
    "summary",
    "usage",
    "errors",
    "stats",
    "instances",
    "batch",
    "capture",
    "e",
    "i",
    "v0",
    "track",
    "health",
    "login",
    "logout",
    "assets",
    "dashboard.css",
    "favicon.svg",
    "versions",
    "environment",
    "crashes",
    "ids",
    "products",
    "properties",
    "properties.csv",
    "events.csv",
    "usage.csv",
    "ids.csv",
    "instance-1",
    "..",
    ".",
    "",
    "%2e%2e",
    "%2F",
    "%61pi",
    "API",
    "Batch",
    "%00",
    "%ff",
    "%C3%A9",
    "a b",
    "*",
    "~",
    "index.html",
    "metrics",
    "telemetry",
    "%",
    "%%",
    ";",
    ":",
    "@",
];

/// Query names the handlers read, and some they do not.
const QUERY_NAMES: &[&str] = &[
    "event",
    "distinct_id",
    "limit",
    "product",
    "range",
    "from",
    "to",
    "table",
    "next",
    "compression",
    "api_key",
    "ver",
    "property",
    "version",
    "os",
    "_",
    "ip",
    "",
];

const QUERY_VALUES: &[&str] = &[
    "",
    "1",
    "0",
    "-1",
    "18446744073709551616",
    "gzip-js",
    "base64",
    "lz64",
    "phc_fuzz",
    "7",
    "30",
    "90",
    "all",
    "custom",
    "2024-01-01",
    "2024-13-40",
    "9999-12-31",
    "0000-01-01",
    "/versions",
    "//evil.example",
    "https://evil.example/",
    "/\\evil",
    "%0d%0aSet-Cookie:%20x",
    "server_start",
    "installs",
    "%ZZ",
    "+",
    "%2B",
    "a%00b",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/json; charset=utf-8",
    "multipart/form-data; boundary=x",
    "",
];

const CONTENT_ENCODINGS: &[&str] = &[
    "gzip",
    "identity",
    "br",
    "deflate",
    "GZIP",
    "gzip, gzip",
    "",
];

const HOSTS: &[&str] = &[
    "localhost",
    "127.0.0.1:8765",
    "[::1]:8765",
    "app.localhost",
    "evil.example",
    "127.0.0.1.evil.example",
    "localhost.evil",
    "",
];

/// Which collector, and the session cookie valid on it.
struct Target {
    app: InProcess,
    admin_token: bool,
}

struct World {
    runtime: tokio::runtime::Runtime,
    /// With an admin token and an API-key allow-list; then an open loopback one.
    targets: [Target; 2],
    session: std::sync::Mutex<String>,
    runs: std::sync::atomic::AtomicU64,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = |token: bool| CollectorConfig {
            listen: "127.0.0.1:0".into(),
            db: ":memory:".into(),
            admin_token: token.then(|| TOKEN.to_owned()),
            api_keys: token.then(|| vec![API_KEY.to_owned(), "phc_demo".to_owned()]),
            retention: None,
            ..CollectorConfig::default()
        };
        let targets = [
            Target {
                app: InProcess::new(&config(true)).expect("collector with a token"),
                admin_token: true,
            },
            Target {
                app: InProcess::new(&config(false)).expect("open collector"),
                admin_token: false,
            },
        ];
        let world = World {
            runtime,
            targets,
            session: std::sync::Mutex::new(String::new()),
            runs: std::sync::atomic::AtomicU64::new(0),
        };
        let cookie = sign_in(&world);
        *world.session.lock().unwrap() = cookie;
        world
    })
}

/// Signs in on the collector with a token; returns the `Cookie` header value.
fn sign_in(world: &World) -> String {
    let request = Request::post("/login")
        .header("host", "localhost")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={TOKEN}&next=%2F")))
        .unwrap();
    let response = world.runtime.block_on(world.targets[0].app.handle(request));
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The path as `NormalizePath::trim_trailing_slash` hands it to the router.
fn normalized(path: &str) -> String {
    if !path.ends_with('/') && !path.starts_with("//") {
        return path.to_owned();
    }
    format!("/{}", path.trim_matches('/'))
}

/// Routes that answer 2xx without the admin token.
fn public(path: &str) -> bool {
    matches!(
        path,
        "/batch"
            | "/capture"
            | "/i/v0/e"
            | "/e"
            | "/track"
            | "/health"
            | "/login"
            | "/logout"
            | "/assets/dashboard.css"
            | "/assets/favicon.svg"
    )
}

fn pick<'a>(u: &mut Unstructured<'_>, words: &[&'a str]) -> Result<&'a str> {
    u.choose(words).copied()
}

/// Text from the input: a word of `words`, or raw bytes (lossily UTF-8).
fn word_or_bytes(u: &mut Unstructured<'_>, words: &[&str]) -> Result<String> {
    if u.ratio(3, 4)? {
        Ok(pick(u, words)?.to_owned())
    } else {
        let len = u.int_in_range(0..=40)?;
        Ok(String::from_utf8_lossy(u.bytes(len)?).into_owned())
    }
}

fn percent_encode_some(u: &mut Unstructured<'_>, s: &str) -> Result<String> {
    let mut out = String::new();
    for b in s.bytes() {
        if !b.is_ascii_alphanumeric() || u.ratio(1, 16)? {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    Ok(out)
}

fn path(u: &mut Unstructured<'_>) -> Result<String> {
    let mut p = String::new();
    if u.ratio(1, 8)? {
        p.push('/');
    }
    let n = u.int_in_range(0..=6)?;
    for _ in 0..n {
        p.push('/');
        let seg = word_or_bytes(u, SEGMENTS)?;
        if u.ratio(1, 8)? {
            p.push_str(&percent_encode_some(u, &seg)?);
        } else {
            p.push_str(&seg);
        }
    }
    if u.ratio(1, 32)? {
        // Very long: one segment repeated, or many segments.
        let seg = pick(u, SEGMENTS)?;
        let times = u.int_in_range(100..=20_000)?;
        for _ in 0..times {
            p.push('/');
            p.push_str(seg);
        }
    }
    if p.is_empty() || u.ratio(1, 6)? {
        p.push('/');
    }
    Ok(p)
}

fn query(u: &mut Unstructured<'_>) -> Result<Option<String>> {
    if u.ratio(1, 3)? {
        return Ok(None);
    }
    let n = u.int_in_range(0..=4)?;
    let mut parts = Vec::new();
    for _ in 0..n {
        let k = word_or_bytes(u, QUERY_NAMES)?;
        let v = word_or_bytes(u, QUERY_VALUES)?;
        let k = if u.ratio(1, 2)? {
            percent_encode_some(u, &k)?
        } else {
            k
        };
        let v = if u.ratio(1, 2)? {
            percent_encode_some(u, &v)?
        } else {
            v
        };
        parts.push(if u.ratio(1, 10)? {
            k
        } else {
            format!("{k}={v}")
        });
    }
    Ok(Some(parts.join("&")))
}

fn method(u: &mut Unstructured<'_>) -> Result<Method> {
    Ok(match u.int_in_range(0..=10)? {
        0 | 1 | 2 => Method::GET,
        3 | 4 | 5 => Method::POST,
        6 => Method::HEAD,
        7 => Method::DELETE,
        8 => Method::OPTIONS,
        9 => {
            [Method::PUT, Method::PATCH, Method::TRACE, Method::CONNECT][u.choose_index(4)?].clone()
        }
        _ => {
            let len = u.int_in_range(1..=12)?;
            match Method::from_bytes(u.bytes(len)?) {
                Ok(m) => m,
                Err(_) => Method::GET,
            }
        }
    })
}

/// What the request carried, for the oracle.
#[derive(Default, Debug)]
struct Credentials {
    /// The admin token, in some spelling the guard may or may not accept.
    token: bool,
    /// The session cookie (valid, or ended by a fuzzed `/logout`).
    session: bool,
}

fn headers(
    u: &mut Unstructured<'_>,
    request: &mut axum::http::request::Builder,
    session: &str,
    body_len: usize,
    creds: &mut Credentials,
) -> Result<()> {
    let add = |request: &mut axum::http::request::Builder, name: &str, value: String| {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            let builder = std::mem::take(request);
            *request = builder.header(n, v);
        }
    };
    // Host: present nearly always, as HTTP/1.1 requires.
    if u.ratio(15, 16)? {
        let host = word_or_bytes(u, HOSTS)?;
        add(request, "host", host);
    }
    if u.ratio(1, 2)? {
        let v = word_or_bytes(u, CONTENT_TYPES)?;
        add(request, "content-type", v);
    }
    if u.ratio(1, 4)? {
        let v = word_or_bytes(u, CONTENT_ENCODINGS)?;
        add(request, "content-encoding", v);
    }
    if u.ratio(1, 2)? {
        let v = match u.int_in_range(0..=6)? {
            0 => format!("Bearer {TOKEN}"),
            1 => format!("bearer  {TOKEN} "),
            2 => format!("BEARER {TOKEN}x"),
            3 => format!("Basic {TOKEN}"),
            4 => "Bearer wrong".to_owned(),
            5 => "Bearer".to_owned(),
            _ => {
                let len = u.int_in_range(0..=40)?;
                String::from_utf8_lossy(u.bytes(len)?).into_owned()
            }
        };
        creds.token = v.contains(TOKEN);
        add(request, "authorization", v);
    }
    if u.ratio(1, 3)? {
        let v = match u.int_in_range(0..=4)? {
            0 => session.to_owned(),
            1 => format!("a=b; {session}; c=d"),
            2 => "telemetry_session=00000000".to_owned(),
            3 => format!("{session}x"),
            _ => {
                let len = u.int_in_range(0..=40)?;
                String::from_utf8_lossy(u.bytes(len)?).into_owned()
            }
        };
        creds.session = v.contains(session.trim_start_matches("telemetry_session="));
        add(request, "cookie", v);
    }
    if u.ratio(1, 4)? {
        add(request, "origin", "https://site.example".into());
        if u.ratio(1, 2)? {
            add(request, "access-control-request-method", "POST".into());
            add(
                request,
                "access-control-request-headers",
                "content-type".into(),
            );
        }
    }
    if u.ratio(1, 2)? {
        // As hyper would have it from the wire: the length of the body sent.
        add(request, "content-length", body_len.to_string());
    }
    Ok(())
}

fn run(data: &[u8]) -> Result<()> {
    let world = world();
    let mut u = Unstructured::new(data);
    let which = usize::from(u.ratio(1, 4)?);
    let target = &world.targets[which];
    let method = method(&mut u)?;
    let path = path(&mut u)?;
    let query = query(&mut u)?;
    let absolute = u.ratio(1, 16)?;
    let session = world.session.lock().unwrap().clone();
    // The body is the rest of the input, so seeds can be real ingest bodies; its
    // length is known before the headers are drawn, and the headers come from the
    // front of what is left.
    let header_bytes = u.int_in_range(0..=64)?;
    let header_input = u.bytes(header_bytes.min(u.len()))?.to_vec();
    let body = u.take_rest().to_vec();
    let mut hu = Unstructured::new(&header_input);

    let target_text = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let target_text = if absolute {
        format!("http://localhost{target_text}")
    } else {
        target_text
    };
    // A URI hyper could not have parsed never reaches the router.
    let Ok(uri) = target_text.parse::<Uri>() else {
        return Ok(());
    };
    let routed = normalized(uri.path());
    let mut builder = Request::builder().method(method.clone()).uri(uri);
    // What was added before the input ran out is sent, and counted.
    let mut creds = Credentials::default();
    let _ = headers(&mut hu, &mut builder, &session, body.len(), &mut creds);
    let Ok(request) = builder.body(Body::from(body)) else {
        return Ok(());
    };

    // A wrong sign-in waits 300 ms on tokio's timer: paused time lets it pass at
    // once (nothing else is waited for on that route).
    let pause = method == Method::POST && routed == "/login";
    let (status, headers, bytes) = world.runtime.block_on(async {
        if pause {
            tokio::time::pause();
        }
        let response = target.app.handle(request).await;
        if pause {
            tokio::time::resume();
        }
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("an in-memory body");
        (parts.status, parts.headers, bytes)
    });

    let allowed = [200, 303, 400, 401, 403, 404, 405, 413, 415];
    assert!(
        allowed.contains(&status.as_u16()),
        "{method} {target_text:?} got {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    if status.is_client_error() && method != Method::HEAD {
        assert!(
            !bytes.is_empty(),
            "{method} {target_text:?} answered {status} without a body"
        );
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        assert!(headers.contains_key("allow"), "405 without Allow");
    }
    if target.admin_token && status.is_success() {
        let protected = !public(&routed);
        assert!(
            !(protected && !creds.token && !creds.session),
            "{method} {target_text:?} answered {status} without the token or a session ({creds:?})"
        );
        assert!(
            !(method == Method::DELETE && !creds.token),
            "{method} {target_text:?} deleted with a session alone"
        );
        // A view or an API answer is never public, whatever the path looked like.
        let is_view = View::ALL.iter().any(|v| v.path() == routed);
        if is_view || routed.starts_with("/api/") {
            assert!(creds.token || creds.session);
        }
    }
    // A fuzzed sign-out may end the session the harness holds: sign in again.
    if which == 0 && routed == "/logout" && creds.session {
        *world.session.lock().unwrap() = sign_in(world);
    }
    // Keep memory flat: every so often, forget what was stored.
    let runs = world
        .runs
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if runs % 4096 == 4095 {
        for t in &world.targets {
            t.app
                .store()
                .delete_received_before("9999-12-31T23:59:59.999Z")
                .expect("delete everything");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
