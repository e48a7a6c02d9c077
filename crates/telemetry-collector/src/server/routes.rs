//! Routing: which path and method does what.
//!
//! | method | path | answer |
//! |---|---|---|
//! | `POST` | `/batch/`, `/capture/`, `/e/`, `/i/v0/e/`, `/track/` | `{"status": 1}` once stored |
//! | `GET` | `/api/events?event=&distinct_id=&limit=` | newest events, oldest first |
//! | `GET` | `/api/summary` | [`Summary`](crate::Summary) |
//! | `GET` | `/api/usage?product=` | the newest usage report of each install |
//! | `GET` | `/api/errors?product=` | error reports grouped by fingerprint, most frequent first |
//! | `DELETE` | `/api/instances/{distinct_id}` | [`Deleted`](crate::store::Deleted) |
//! | `GET` | `/api/stats/{view}[.csv]` | the dashboard's data (see `pages`) |
//! | `GET` | `/health` | `ok` |
//! | `GET` | `/`, `/versions`, ... | the dashboard (see `pages`) |
//!
//! Trailing slashes are optional everywhere. Errors are `{"error": "..."}`.
//! The ingest routes answer CORS preflights (browser senders such as
//! posthog-js); `/api/*` does not, so no other origin's page can read it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::{middleware, Json, Router};
use log::{debug, error};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::budget::ReadFailure;
use super::guard::{self, too_many_requests, Limited};
use super::App;
use crate::commit::WriteFailure;
use crate::ingest::{self, Encoding, Endpoint, Rejection, MAX_BODY_BYTES};
use crate::store::{Batch, EventFilter, MAX_LIMIT};

/// Bodies up to this size are decoded on the async worker itself.
const INLINE_DECODE_BYTES: usize = 256 * 1024;

/// How long a sender is asked to wait before retrying a 503.
const RETRY_AFTER_UNAVAILABLE: &str = "1";

/// The whole application, before the per-connection layers.
pub(crate) fn router(app: Arc<App>) -> Router {
    let ingest_routes = Router::new()
        .route("/batch", ingest_route(Endpoint::Batch))
        .route("/capture", ingest_route(Endpoint::Capture))
        // `/e/` is the path posthog-js posts to; `/track/` the legacy one.
        .route("/i/v0/e", ingest_route(Endpoint::Event))
        .route("/e", ingest_route(Endpoint::Event))
        .route("/track", ingest_route(Endpoint::Event))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            guard::per_address,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(DefaultBodyLimit::disable())
        .layer(
            // Any page may send (posthog-js runs on the integrator's site).
            // The origin and headers are mirrored rather than `*` because
            // posthog-js's XHR fallback sends cookies, and a credentialed
            // request is refused by the browser on `*`; ingest reads no cookie,
            // so allowing them grants nothing.
            CorsLayer::new()
                .allow_origin(AllowOrigin::mirror_request())
                .allow_methods([Method::POST])
                .allow_headers(AllowHeaders::mirror_request())
                .allow_credentials(true)
                .max_age(Duration::from_secs(86_400)),
        );
    let api_routes = Router::new()
        .route("/api/events", get(events).fallback(not_allowed("GET")))
        .route("/api/summary", get(summary).fallback(not_allowed("GET")))
        .route("/api/usage", get(usage).fallback(not_allowed("GET")))
        .route("/api/errors", get(errors).fallback(not_allowed("GET")))
        .route(
            "/api/stats/{name}",
            super::pages::stats_route().fallback(not_allowed("GET")),
        )
        .route(
            "/api/instances/{distinct_id}",
            delete(delete_instance).fallback(not_allowed("DELETE")),
        )
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            guard::admin_only,
        ));
    Router::new()
        .merge(ingest_routes)
        .merge(api_routes)
        .merge(super::pages::page_routes(Arc::clone(&app)))
        .route(
            "/health",
            get(|| async { "ok" }).fallback(not_allowed("GET")),
        )
        .fallback(|uri: axum::http::Uri| async move {
            error_response(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {}", uri.path()),
            )
        })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            guard::loopback_host,
        ))
        // A request over REQUEST_TIMEOUT (a sender trickling its body) gets 408;
        // a panic (a bug, whatever the input) a 500 for that request only.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            super::listen::REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                error!("a handler panicked");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: the handler panicked; see the collector's log",
                )
            },
        ))
        .with_state(app)
}

fn ingest_route(endpoint: Endpoint) -> MethodRouter<Arc<App>> {
    post(
        move |state: State<Arc<App>>, query: RawQuery, headers: HeaderMap, body: Body| {
            ingest(state, endpoint, query, headers, body)
        },
    )
    .fallback(not_allowed("POST"))
}

/// `{"error": message}` with `status`.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

pub(crate) fn not_allowed(allowed: &'static str) -> MethodRouter<Arc<App>> {
    MethodRouter::new().fallback(move || async move {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method not allowed; use {allowed}"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, allowed.parse().expect("a method name"));
        response
    })
}

fn rejection(r: Rejection) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    error_response(status, r.message)
}

fn unavailable(message: String) -> Response {
    let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        RETRY_AFTER_UNAVAILABLE.parse().expect("digits"),
    );
    response
}

fn query_pairs(query: Option<&str>) -> HashMap<String, String> {
    // The first value of a repeated name wins, as it did before.
    let mut pairs = HashMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        pairs
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    pairs
}

fn non_empty<'a>(pairs: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    pairs
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

async fn ingest(
    State(app): State<Arc<App>>,
    endpoint: Endpoint,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (body, held) = match app.body_budget.read(body).await {
        Ok(read) => read,
        Err(ReadFailure::TooLarge) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {MAX_BODY_BYTES} bytes"),
            )
        }
        Err(ReadFailure::Broken(e)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                format!("could not read the body: {e}"),
            )
        }
    };
    let query = query_pairs(query.as_deref());
    let body_len = body.len();
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(header::CONTENT_TYPE);
    let content_encoding = header(header::CONTENT_ENCODING);
    let compression = non_empty(&query, "compression").map(str::to_owned);
    let api_key = non_empty(&query, "api_key").map(str::to_owned);
    let decode = move || {
        let encoding = Encoding {
            content_type: content_type.as_deref(),
            content_encoding: content_encoding.as_deref(),
            compression: compression.as_deref(),
        };
        ingest::decode_request(&body, &encoding)
            .and_then(|json| ingest::parse(endpoint, &json, api_key.as_deref()))
    };
    // Decoding and parsing are CPU work: a small body is done on the worker
    // thread at once; a large one (up to 32 MiB inflated) goes to the blocking
    // pool so it cannot stall the other connections of that worker.
    let parsed = if body_len <= INLINE_DECODE_BYTES {
        decode()
    } else {
        match tokio::task::spawn_blocking(decode).await {
            Ok(parsed) => parsed,
            Err(_) => {
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: decoding panicked; see the collector's log",
                )
            }
        }
    };
    // The events are in memory now (and bounded by the commit queue); the raw
    // body's budget goes back.
    drop(held);
    let events = match parsed {
        Ok(events) => events,
        Err(r) => {
            debug!("{endpoint:?} refused: {}", r.message);
            return rejection(r);
        }
    };
    if let Some(keys) = &app.api_keys {
        if let Some(e) = events.iter().find(|e| !keys.allows(&e.api_key)) {
            return error_response(
                StatusCode::UNAUTHORIZED,
                format!(
                    "unknown project API key (hash {}); this collector accepts only its configured keys",
                    e.api_key_hash
                ),
            );
        }
    }
    if let Some(limit) = &app.key_limit {
        // Counted per key over the whole request, so a batch passes or is
        // refused whole.
        let mut per_key: HashMap<&str, u32> = HashMap::new();
        for e in &events {
            *per_key.entry(&e.api_key).or_default() += 1;
        }
        for (key, n) in per_key {
            match limit.check(&key.to_owned(), n) {
                Ok(()) => {}
                Err(Limited::RetryAfter(wait)) => {
                    return too_many_requests(wait, "events per API key")
                }
                Err(Limited::TooMany(burst)) => {
                    return error_response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("{n} events under one API key in one request; the per-key rate limit allows {burst} at once"),
                    )
                }
            }
        }
    }
    let batch = Batch {
        events,
        received_at: ingest::now_rfc3339(),
    };
    let answer = match app.commit.submit(batch) {
        Ok(answer) => answer,
        Err(e) => return unavailable(e.to_string()),
    };
    match answer.await {
        Ok(Ok(inserted)) => {
            debug!(
                "{endpoint:?}: stored {} events, skipped {} already stored",
                inserted.stored, inserted.duplicates
            );
            Json(json!({ "status": 1 })).into_response()
        }
        // 503 and 500 are both retried by PostHog senders; nothing was
        // committed, so a retry cannot store anything twice.
        Ok(Err(WriteFailure {
            transient: true,
            message,
        })) => unavailable(format!("could not store events now: {message}")),
        Ok(Err(WriteFailure { message, .. })) => {
            error!("could not store events: {message}");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not store events: {message}"),
            )
        }
        Err(_) => unavailable("the collector is shutting down".into()),
    }
}

/// Runs a blocking store query on tokio's blocking pool and answers its JSON.
async fn query<T: serde::Serialize + Send + 'static>(
    app: &Arc<App>,
    run: impl FnOnce(&crate::Store) -> Result<T, crate::Error> + Send + 'static,
) -> Response {
    let store = Arc::clone(&app.store);
    match tokio::task::spawn_blocking(move || run(&store)).await {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(e)) if e.is_transient() => unavailable(e.to_string()),
        Ok(Err(e)) => {
            error!("{e}");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(_) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the query panicked; see the collector's log",
        ),
    }
}

async fn events(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    let q = query_pairs(q.as_deref());
    let mut filter = EventFilter::default();
    if let Some(event) = non_empty(&q, "event") {
        filter = filter.event(event);
    }
    if let Some(id) = non_empty(&q, "distinct_id") {
        filter = filter.distinct_id(id);
    }
    if let Some(limit) = non_empty(&q, "limit") {
        match limit.parse::<usize>() {
            Ok(n) => filter = filter.limit(n.min(MAX_LIMIT)),
            Err(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    format!("\"limit\" must be a whole number from 0 to {MAX_LIMIT}"),
                )
            }
        }
    }
    query(&app, move |store| store.events(&filter)).await
}

async fn summary(State(app): State<Arc<App>>) -> Response {
    query(&app, |store| store.summary()).await
}

/// `[{"distinct_id", "timestamp", "received_at", "report": {...}}]`: the report is
/// the event's properties (the core's report with the event context beside it).
async fn usage(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    let product = non_empty(&query_pairs(q.as_deref()), "product").map(str::to_owned);
    query(&app, move |store| {
        Ok(store
            .latest_usage_reports(product.as_deref())?
            .into_iter()
            .map(|e| {
                json!({"distinct_id": e.distinct_id, "timestamp": e.timestamp,
                       "received_at": e.received_at, "report": e.properties})
            })
            .collect::<Vec<_>>())
    })
    .await
}

async fn errors(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    let product = non_empty(&query_pairs(q.as_deref()), "product").map(str::to_owned);
    query(&app, move |store| store.error_groups(product.as_deref())).await
}

async fn delete_instance(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    query(&app, move |store| {
        let deleted = store.delete_instance(&id)?;
        debug!("deleted install {id:?}: {deleted:?}");
        Ok(json!({
            "deleted": deleted.events,
            "usage_reports": deleted.usage_reports,
            "error_reports": deleted.error_reports,
        }))
    })
    .await
}
