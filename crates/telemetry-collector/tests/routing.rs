//! Routing cases the `collector_routing` fuzz target found (fuzz/regressions/collector_routing),
//! replayed in-process through `server::InProcess`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use telemetry_collector::server::InProcess;
use telemetry_collector::CollectorConfig;

fn answer(app: &InProcess, method: Method, path: &str) -> (StatusCode, Option<String>, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Body::empty())
        .unwrap();
    runtime.block_on(async {
        let response = app.handle(request).await;
        let status = response.status();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, allow, String::from_utf8(body.to_vec()).unwrap())
    })
}

/// A dashboard page, sign-in or asset asked with another method answered axum's bare
/// 405 (no body); every error is `{"error": ...}` with `Allow`, as on the API routes.
#[test]
fn every_405_says_what_is_allowed_in_json() {
    let config = CollectorConfig {
        listen: "127.0.0.1:0".into(),
        db: ":memory:".into(),
        ..CollectorConfig::default()
    };
    let app = InProcess::new(&config).unwrap();
    for (method, path, allowed) in [
        (Method::POST, "/", "GET"),
        (Method::PUT, "/versions", "GET"),
        (Method::DELETE, "/login", "GET, POST"),
        (Method::GET, "/logout", "POST"),
        (Method::POST, "/assets/dashboard.css", "GET"),
        (Method::PATCH, "/api/summary", "GET"),
    ] {
        let (status, allow, body) = answer(&app, method.clone(), path);
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(allow.as_deref(), Some(allowed), "{method} {path}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            json["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
}
