//! The dashboard over real HTTP on loopback: every view renders what the
//! store holds, hostile stored strings stay text, CSV cells cannot become
//! formulas, the policy headers are there, and sign-in works as a browser
//! needs it. (tests/dashboard/ drives the same pages in headless Chromium.)

mod common;

use common::*;
use serde_json::{json, Value};
use telemetry_collector::sample_data::{self, SampleSpec};
use telemetry_collector::stats::format_day;
use telemetry_collector::Collector;

const VIEWS: [&str; 6] = [
    "/",
    "/versions",
    "/environment",
    "/events",
    "/usage",
    "/crashes",
];

fn today() -> String {
    format_day(time::OffsetDateTime::now_utc().date())
}

fn filled(events: usize) -> TestCollector {
    let c = start();
    let spec = SampleSpec {
        events,
        seed: 3,
        days: 30,
        end: today(),
    };
    sample_data::fill(c.handle.store(), &spec).unwrap();
    c
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The `data-value` of the element with `data-figure="name"`.
fn figure(html: &str, name: &str) -> u64 {
    let at = html
        .find(&format!("data-figure=\"{name}\""))
        .unwrap_or_else(|| panic!("no figure {name}"));
    let rest = &html[at..];
    let value = rest.split("data-value=\"").nth(1).unwrap();
    value[..value.find('"').unwrap()].parse().unwrap()
}

#[test]
fn every_view_renders_its_data_with_a_strict_policy_and_no_external_url() {
    let c = filled(3_000);
    for view in VIEWS {
        let page = get(c.handle.addr(), view);
        assert_eq!(page.status, 200, "{view}: {}", page.text());
        assert_eq!(
            header(&page, "content-type"),
            Some("text/html; charset=utf-8")
        );
        let csp = header(&page, "content-security-policy").unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(
            !csp.contains("unsafe") && !csp.contains("script-src"),
            "{csp}"
        );
        assert_eq!(header(&page, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&page, "cache-control"), Some("no-store"));
        let html = page.text();
        assert!(!html.contains("<script"), "{view} has a script");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{view} names another origin"
        );
        assert!(html.contains("data-table="), "{view} has no table");
        assert!(
            !html.contains("data-empty"),
            "{view} is empty with data stored"
        );
    }
    let ids = get(c.handle.addr(), "/api/stats/ids").json();
    let html = get(c.handle.addr(), "/").text();
    assert_eq!(
        figure(&html, "active-in-range"),
        ids["active_in_range"].as_u64().unwrap()
    );
    let new: u64 = ids["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["new"].as_u64().unwrap())
        .sum();
    assert_eq!(figure(&html, "new-in-range"), new);
    let crashes = get(c.handle.addr(), "/api/stats/crashes").json();
    assert!(crashes["reports"].as_u64().unwrap() > 0);
    let html = get(c.handle.addr(), "/crashes").text();
    assert_eq!(
        figure(&html, "crash-reports"),
        crashes["reports"].as_u64().unwrap()
    );
    let stylesheet = get(c.handle.addr(), "/assets/dashboard.css");
    assert_eq!(stylesheet.status, 200);
    assert_eq!(
        header(&stylesheet, "content-type"),
        Some("text/css; charset=utf-8")
    );
}

#[test]
fn an_empty_database_shows_empty_views() {
    let c = start();
    for view in VIEWS {
        let page = get(c.handle.addr(), view);
        assert_eq!(page.status, 200, "{view}");
        assert!(page.text().contains("data-empty"), "{view}");
    }
    assert_eq!(
        get(c.handle.addr(), "/api/stats/products").json(),
        json!([])
    );
}

#[test]
fn hostile_strings_stay_text_and_csv_cells_cannot_become_formulas() {
    let c = start();
    let hostile = json!({
        "event": "<script>alert(1)</script>",
        "distinct_id": "\"><img src=x onerror=alert(2)>",
        "uuid": uuid(90, 1),
        "timestamp": format!("{}T10:00:00Z", today()),
        "properties": {
            "product": "=HYPERLINK(\"http://evil.example\",\"x\")",
            "product_version": "@SUM(A1)",
            "os": "<b>bold</b>",
            "embedding_function": "</select><svg onload=alert(3)>",
        }
    });
    let formula = json!({
        "event": "+cmd|' /C calc'!A0", "distinct_id": "i2", "uuid": uuid(90, 2),
        "timestamp": format!("{}T11:00:00Z", today()), "properties": {"product": "-2+3"}
    });
    assert_eq!(
        post(c.handle.addr(), "/batch/", &batch(vec![hostile, formula])).status,
        200
    );
    for target in [
        "/",
        "/versions",
        "/environment",
        "/events",
        "/events?event=%3Cscript%3Ealert(1)%3C%2Fscript%3E&property=embedding_function",
    ] {
        let html = get(c.handle.addr(), target).text();
        for raw in ["<script", "<img", "<svg onload", "<b>bold", "</select><svg"] {
            assert!(!html.contains(raw), "{target} carries {raw:?} unescaped");
        }
    }
    let events = get(
        c.handle.addr(),
        "/events?event=%3Cscript%3Ealert(1)%3C%2Fscript%3E&property=embedding_function",
    )
    .text();
    assert!(events.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(events.contains("&lt;/select&gt;&lt;svg onload=alert(3)&gt;"));

    let csv = get(
        c.handle.addr(),
        "/api/stats/versions.csv?table=versions-now",
    );
    assert_eq!(csv.status, 200);
    assert_eq!(
        header(&csv, "content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert!(header(&csv, "content-disposition")
        .unwrap()
        .starts_with("attachment; filename=\"versions-now_"));
    let text = csv.text();
    assert!(text.starts_with("product,version,installs\r\n"), "{text}");
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",'@SUM(A1),1"),
        "{text}"
    );
    assert!(text.contains("'-2+3,unknown,1"), "{text}");
    let totals = get(c.handle.addr(), "/api/stats/events.csv?table=events-totals").text();
    assert!(totals.contains("'+cmd|' /C calc'!A0,1,1"), "{totals}");
    for line in text.lines().chain(totals.lines()).skip(1) {
        let first = line.trim_start_matches('"');
        assert!(!first.starts_with(['=', '+', '-', '@']), "{line}");
    }
}

#[test]
fn ranges_and_names_are_checked() {
    let c = start();
    let page = get(c.handle.addr(), "/?range=forever");
    assert_eq!(page.status, 400);
    assert!(page.text().contains("range"));
    let api = get(
        c.handle.addr(),
        "/api/stats/ids?from=2024-02-01&to=2024-01-01",
    );
    assert_eq!(api.status, 400);
    assert!(api.json()["error"]
        .as_str()
        .unwrap()
        .contains("after it ends"));
    assert_eq!(get(c.handle.addr(), "/api/stats/nope").status, 404);
    let csv = get(c.handle.addr(), "/api/stats/ids.csv?table=nope");
    assert_eq!(csv.status, 400);
    assert!(csv.json()["error"]
        .as_str()
        .unwrap()
        .contains("ids-daily, ids-weekly"));
    assert_eq!(get(c.handle.addr(), "/api/stats/properties").status, 400);
    let huge = get(
        c.handle.addr(),
        "/api/stats/ids?from=0001-01-01&to=9999-12-31",
    );
    assert_eq!(huge.status, 400);
    // A custom range is honoured exactly.
    let custom = get(
        c.handle.addr(),
        "/api/stats/ids?range=custom&from=2024-01-01&to=2024-01-31",
    );
    assert_eq!(custom.status, 200);
}

fn set_cookie(reply: &Reply) -> String {
    header(reply, "set-cookie").unwrap_or_default().to_owned()
}

#[test]
fn sign_in_gives_a_strict_cookie_that_reads_but_cannot_delete() {
    let dir = tempfile::tempdir().unwrap();
    let handle = Collector::builder()
        .listen("127.0.0.1:0")
        .db(dir.path().join("events.db"))
        .admin_token("s3cret-token")
        .start()
        .unwrap();
    let addr = handle.addr();
    let first = get(addr, "/versions?range=7");
    assert_eq!(first.status, 303);
    assert_eq!(
        header(&first, "location"),
        Some("/login?next=%2Fversions%3Frange%3D7")
    );
    assert_eq!(get(addr, "/api/stats/ids").status, 401);
    let form = get(addr, "/login?next=%2Fversions");
    assert_eq!(form.status, 200);
    assert!(form.text().contains("Admin token"));

    let form_post = |body: &str, cookie: Option<&str>| {
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(c) = cookie {
            headers.push(("Cookie", c));
        }
        request(addr, "POST", "/login", &headers, body.as_bytes())
    };
    let wrong = form_post("token=guess&next=%2Fversions", None);
    assert_eq!(wrong.status, 401);
    assert!(set_cookie(&wrong).is_empty());
    assert!(wrong.text().contains("not this collector"));

    let right = form_post("token=s3cret-token&next=%2F%2Fevil.example%2F", None);
    assert_eq!(right.status, 303);
    assert_eq!(
        header(&right, "location"),
        Some("/"),
        "an off-site next is not followed"
    );
    let cookie = set_cookie(&right);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();
    let with_session =
        |method: &str, target: &str| request(addr, method, target, &[("Cookie", &session)], b"");

    assert_eq!(with_session("GET", "/versions").status, 200);
    assert!(with_session("GET", "/").text().contains("Sign out"));
    assert_eq!(with_session("GET", "/api/stats/ids").status, 200);
    assert_eq!(with_session("GET", "/api/summary").status, 200);
    assert_eq!(
        with_session("DELETE", "/api/instances/someone").status,
        401,
        "a session cannot delete"
    );
    let bearer = request(
        addr,
        "DELETE",
        "/api/instances/someone",
        &[("Authorization", "Bearer s3cret-token")],
        b"",
    );
    assert_eq!(bearer.status, 200);
    // The Bearer header opens the pages too (scripts, curl).
    assert_eq!(
        request(
            addr,
            "GET",
            "/usage",
            &[("Authorization", "Bearer s3cret-token")],
            b""
        )
        .status,
        200
    );

    let out = with_session("POST", "/logout");
    assert_eq!(out.status, 303);
    assert!(set_cookie(&out).contains("Max-Age=0"));
    assert_eq!(with_session("GET", "/versions").status, 303);
    assert_eq!(with_session("GET", "/api/stats/ids").status, 401);
    handle.shutdown();
}

#[test]
fn deleting_an_install_removes_it_from_every_view() {
    let c = filled(4_000);
    let addr = c.handle.addr();
    let usage = get(addr, "/api/stats/usage").json();
    let victim = usage["reports"][0]["distinct_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before: Vec<Value> = ["ids", "environment", "usage"]
        .iter()
        .map(|v| get(addr, &format!("/api/stats/{v}")).json())
        .collect();
    let deleted = request(
        addr,
        "DELETE",
        &format!("/api/instances/{victim}"),
        &[],
        b"",
    )
    .json();
    assert!(deleted["deleted"].as_u64().unwrap() > 0);
    let after: Vec<Value> = ["ids", "environment", "usage"]
        .iter()
        .map(|v| get(addr, &format!("/api/stats/{v}")).json())
        .collect();
    assert_eq!(
        after[0]["active_in_range"].as_u64().unwrap() + 1,
        before[0]["active_in_range"].as_u64().unwrap()
    );
    assert_eq!(
        after[1]["installs"].as_u64().unwrap() + 1,
        before[1]["installs"].as_u64().unwrap()
    );
    assert_eq!(
        after[2]["reports"].as_array().unwrap().len() + 1,
        before[2]["reports"].as_array().unwrap().len()
    );
    for view in VIEWS {
        assert!(
            !get(addr, view).text().contains(&victim),
            "{view} still shows {victim}"
        );
    }
}
