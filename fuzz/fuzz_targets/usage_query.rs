//! The usage endpoints' request parsing (`usage::endpoint::handle_method`): any method,
//! path and raw query string against a `Usage` with a labelled timing, a counter and a
//! section holding private values.
//!
//! Must hold, beyond "never panics": the answer is exactly what the documented rules
//! give, restated here independently (a differential oracle): 405 for a method other
//! than GET and HEAD; 404 for a path other than `/telemetry` and `/metrics` (trailing
//! slashes trimmed); 400 naming the parameter for an unknown or repeated one, a
//! `details_level` that is not digits, an `anonymize` that is not a boolean; else 200.
//! The query is split on `&`, names and values decoded as forms are (`+` is a space,
//! `%` and two hex digits a byte, any other `%` itself, then UTF-8 lossily). A 200 is
//! JSON for `/telemetry` (with `system` exactly from level 1) and the exposition for
//! `/metrics`; anonymized, neither holds a private label or section value.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use telemetry_core::anonymize::PropertyKind;
use telemetry_core::usage::{endpoint, Section, Usage};

const PRIVATE_LABEL: &str = "private-user-x42q";
const PRIVATE_SECTION: &str = "secret-collection-x42q";

fn usage() -> &'static Usage {
    static USAGE: OnceLock<Usage> = OnceLock::new();
    USAGE.get_or_init(|| {
        let usage = Usage::standalone("fuzzapp", "1.0");
        let timing = usage
            .timing("rest_requests")
            .label("route", PropertyKind::Safe)
            .label("user", PropertyKind::Hashed)
            .build()
            .expect("a timing family");
        timing
            .record(
                &["GET /x", PRIVATE_LABEL],
                std::time::Duration::from_millis(3),
            )
            .expect("recorded");
        let counter = usage
            .counter("points")
            .label("collection", PropertyKind::Hashed)
            .build()
            .expect("a counter family");
        counter.add(&[PRIVATE_LABEL], 7).expect("counted");
        usage
            .set_section(
                "collections",
                Section::new(serde_json::json!([{"id": PRIVATE_SECTION, "vectors": 12345}]))
                    .kind("id", PropertyKind::Hashed)
                    .level(0),
            )
            .expect("a section");
        usage
    })
}

const PATHS: &[&str] = &[
    "/telemetry",
    "/metrics",
    "/telemetry/",
    "/metrics//",
    "/Telemetry",
    "/telemetry/x",
    "telemetry",
    "/",
    "",
    "//telemetry",
    "/telemetry%2F",
    "/metrics?",
];
const NAMES: &[&str] = &[
    "details_level",
    "anonymize",
    "details%5Flevel",
    "anonymiz%65",
    "details_level+",
    "%64etails_level",
    "level",
    "",
    "ANONYMIZE",
];
const VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "99999999999999999999999",
    "-1",
    "1.5",
    "",
    "+1",
    "%31",
    "true",
    "false",
    "TRUE",
    "yes",
    "no",
    "on",
    "off",
    " true ",
    "+true+",
    "%20true",
    "tru",
    "%+9true",
    "%0",
    "%",
    "%zz",
    "%C3%A9",
    "١",
];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "get", "OPTIONS", "DELETE", ""];

/// Form decoding, restated: `+` is a space, `%XX` with two hex digits a byte, any
/// other `%` itself; the bytes then as UTF-8, lossily.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            out.push(b' ');
        } else if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            let hex = |c: u8| (c as char).to_digit(16).unwrap() as u8;
            out.push(hex(b[i + 1]) * 16 + hex(b[i + 2]));
            i += 2;
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn boolean(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// What the rules say: the status, the parameter a 400 must name, and the options.
fn expected(method: &str, path: &str, query: &str) -> (u16, Option<String>, u8, bool) {
    if method != "GET" && method != "HEAD" {
        return (405, None, 0, false);
    }
    let path = path.trim_end_matches('/');
    let allowed: &[&str] = match path {
        "/telemetry" => &["details_level", "anonymize"],
        "/metrics" => &["anonymize"],
        _ => return (404, None, 0, false),
    };
    // Names first (unknown or repeated), then values, each in order.
    let mut seen: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (k, v) = (decode(k), decode(v));
        if !allowed.contains(&k.as_str()) || seen.iter().any(|(s, _)| *s == k) {
            return (400, Some(format!("{k:?}")), 0, false);
        }
        seen.push((k, v));
    }
    let (mut level, mut anonymize) = (0u8, false);
    for (k, v) in seen {
        if k == "details_level" {
            if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
                return (400, Some("details_level".into()), 0, false);
            }
            let digits = v.trim_start_matches('0');
            level = if digits.len() > 1 {
                4
            } else {
                digits.parse::<u8>().unwrap_or(0).min(4)
            };
        } else {
            match boolean(&v) {
                Some(b) => anonymize = b,
                None => return (400, Some("anonymize".into()), 0, false),
            }
        }
    }
    (200, None, level, anonymize)
}

fn text(u: &mut Unstructured<'_>, words: &[&str]) -> Result<String> {
    if u.ratio(4, 5)? {
        Ok(u.choose(words)?.to_string())
    } else {
        let len = u.int_in_range(0..=24)?;
        Ok(String::from_utf8_lossy(u.bytes(len)?).into_owned())
    }
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let method = text(&mut u, METHODS)?;
    let path = text(&mut u, PATHS)?;
    let query = if u.ratio(1, 4)? {
        // Raw: whatever a host hands over.
        String::from_utf8_lossy(u.take_rest()).into_owned()
    } else {
        let mut parts = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            let k = text(&mut u, NAMES)?;
            match u.int_in_range(0..=5)? {
                0 => parts.push(k),
                1 => parts.push(String::new()),
                _ => parts.push(format!("{k}={}", text(&mut u, VALUES)?)),
            }
        }
        parts.join("&")
    };

    let r = endpoint::handle_method(usage(), &method, &path, &query);
    let (status, names, level, anonymize) = expected(&method, &path, &query);
    assert_eq!(
        r.status, status,
        "{method} {path:?} ?{query:?}: got {} ({}), the rules say {status}",
        r.status, r.body
    );
    if r.status != 200 {
        let body: serde_json::Value = serde_json::from_str(&r.body).expect("an error is JSON");
        let message = body["error"].as_str().expect("an error message");
        assert!(!message.is_empty());
        if let Some(name) = names {
            assert!(message.contains(&name), "{message:?} does not name {name}");
        }
        return Ok(());
    }
    let private = [PRIVATE_LABEL, PRIVATE_SECTION];
    if path.trim_end_matches('/') == "/telemetry" {
        let report: serde_json::Value = serde_json::from_str(&r.body).expect("a JSON report");
        assert_eq!(report.get("system").is_some(), level >= 1, "level {level}");
        assert!(report.get("collections").is_some());
        if anonymize {
            for p in private {
                assert!(!r.body.contains(p), "anonymized report holds {p}");
            }
        } else {
            assert!(r.body.contains(PRIVATE_SECTION));
        }
    } else {
        assert_eq!(r.content_type, endpoint::PROMETHEUS_CONTENT_TYPE);
        assert!(r.body.contains("fuzzapp_rest_requests_seconds_count"));
        if anonymize {
            assert!(
                !r.body.contains(PRIVATE_LABEL),
                "anonymized exposition holds a label"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
