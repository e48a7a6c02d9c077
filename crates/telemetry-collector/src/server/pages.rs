//! The dashboard over HTTP: its pages, sign-in, its stylesheet, and
//! `/api/stats/*` (JSON, and CSV per table). What each view holds is in
//! [`crate::dashboard`].
//!
//! | method | path | answer |
//! |---|---|---|
//! | `GET` | `/`, `/versions`, `/environment`, `/events`, `/usage`, `/crashes` | a view (HTML) |
//! | `GET`, `POST` | `/login` | the sign-in form; the admin token in, a session cookie out |
//! | `POST` | `/logout` | ends the session |
//! | `GET` | `/assets/dashboard.css`, `/assets/favicon.svg` | the stylesheet, the icon |
//! | `GET` | `/api/stats/{view}` | the view's data as JSON (`ids`, `versions`, `environment`, `events`, `properties`, `usage`, `crashes`, `products`) |
//! | `GET` | `/api/stats/{view}.csv?table=NAME` | one of its tables as CSV |
//!
//! Access is as for `/api/*`: open on a collector without an admin token;
//! with one, a session (from `/login`) or the Bearer header. Every page
//! carries a Content-Security-Policy that allows nothing but the collector's
//! own stylesheet and forms: no script, no frame, no other origin.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use log::error;
use time::OffsetDateTime;

use super::routes::{error_response, not_allowed};
use super::session;
use super::App;
use crate::dashboard::{self, page, Params, View};
use crate::Error;

/// The policy every dashboard response carries.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../dashboard/assets/dashboard.css");

/// The tab's icon: without one, browsers ask for `/favicon.ico` on every page.
const FAVICON: &str = include_str!("../dashboard/assets/favicon.svg");

/// Longest sign-in form body read.
const MAX_LOGIN_BODY: usize = 4096;

/// The page routes (the `/api/stats` routes join the other `/api/*` ones).
pub(crate) fn page_routes(app: Arc<App>) -> Router<Arc<App>> {
    let mut views = Router::new();
    for view in View::ALL {
        views = views.route(
            view.path(),
            get(
                move |state: State<Arc<App>>, query: RawQuery, headers: HeaderMap| {
                    page(state, view, query, headers)
                },
            )
            .fallback(not_allowed("GET")),
        );
    }
    let views = views.layer(middleware::from_fn_with_state(
        Arc::clone(&app),
        signed_in_only,
    ));
    Router::new()
        .merge(views)
        .route(
            "/login",
            get(login_form)
                .post(login)
                .fallback(not_allowed("GET, POST")),
        )
        .route(
            "/logout",
            axum::routing::post(logout).fallback(not_allowed("POST")),
        )
        .route(
            "/assets/favicon.svg",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "image/svg+xml"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    FAVICON,
                )
            })
            .fallback(not_allowed("GET")),
        )
        .route(
            "/assets/dashboard.css",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    STYLESHEET,
                )
            })
            .fallback(not_allowed("GET")),
        )
        .layer(middleware::from_fn(page_headers))
}

/// The stats API route, for the admin-guarded `/api` router.
pub(crate) fn stats_route() -> axum::routing::MethodRouter<Arc<App>> {
    get(stats)
}

/// Headers on every dashboard response: the policy, no sniffing, no
/// referrer, no framing, and no caching of pages that hold data.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Whether a request may read the dashboard: no token configured, the Bearer
/// header, or (for reading) a live session.
pub(crate) fn may_read(app: &App, headers: &HeaderMap) -> bool {
    match &app.admin_token {
        None => true,
        Some(token) => token.accepts(headers) || app.sessions.valid(headers),
    }
}

/// Middleware on the views: without access, to `/login` and back.
async fn signed_in_only(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if may_read(&app, request.headers()) {
        return next.run(request).await;
    }
    let back = request
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |pq| pq.as_str().to_owned());
    let target = format!(
        "/login?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &back)
            .finish()
    );
    (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response()
}

fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn params(query: Option<&str>) -> Result<Params, String> {
    let owned = pairs(query);
    let borrowed: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Params::from_pairs(&borrowed, today())
}

fn html_page(status: StatusCode, markup: maud::Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// A store failure as the page or API answers it: 503 when a retry may help.
fn failure_status(e: &Error) -> StatusCode {
    if e.is_transient() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// Runs `work` on the blocking pool (the store's calls block).
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    work: impl FnOnce(&crate::Store) -> Result<T, Error> + Send + 'static,
) -> Result<T, (StatusCode, String)> {
    let store = Arc::clone(&app.store);
    match tokio::task::spawn_blocking(move || work(&store)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            error!("dashboard query failed: {e}");
            Err((failure_status(&e), e.to_string()))
        }
        Err(_) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the query panicked; see the collector's log".into(),
        )),
    }
}

async fn page(
    State(app): State<Arc<App>>,
    view: View,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = match params(query.as_deref()) {
        Ok(p) => p,
        Err(message) => {
            return html_page(
                StatusCode::BAD_REQUEST,
                page::error("That range cannot be shown", &message),
            )
        }
    };
    let signed_in = app.admin_token.is_some() && app.sessions.valid(&headers);
    let loaded = blocking(&app, move |store| {
        let products = store.products()?;
        let data = dashboard::load(store, view, &params)?;
        Ok((products, data, params))
    })
    .await;
    match loaded {
        Ok((products, data, params)) => {
            let ctx = page::PageContext {
                view,
                params: &params,
                products: &products,
                signed_in,
            };
            html_page(StatusCode::OK, page::render(&ctx, &data))
        }
        Err((status, message)) => html_page(
            status,
            page::error("The database could not answer", &message),
        ),
    }
}

/// `next` if it is a path on this collector, else `/` (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

async fn login_form(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let owned = pairs(query.as_deref());
    let next = safe_next(
        owned
            .iter()
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.as_str()),
    );
    if app.admin_token.is_none() {
        // Nothing to sign in to.
        return (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
    }
    html_page(StatusCode::OK, page::login(&next, None))
}

async fn login(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let Some(token) = &app.admin_token else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    };
    if body.len() > MAX_LOGIN_BODY {
        return html_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            page::error("Sign-in refused", "the form is larger than a token"),
        );
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let next = safe_next(field("next"));
    if !field("token").is_some_and(|t| token.matches(t)) {
        // A pause makes guessing slow; it holds no thread (tokio's timer).
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        return html_page(
            StatusCode::UNAUTHORIZED,
            page::login(&next, Some("That is not this collector's admin token.")),
        );
    }
    let cookie = session::set_cookie(&app.sessions.create(), app.secure_cookies);
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, next), (header::SET_COOKIE, cookie)],
    )
        .into_response()
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    app.sessions.end(&headers);
    let target = if app.admin_token.is_some() {
        "/login"
    } else {
        "/"
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, target.to_owned()),
            (
                header::SET_COOKIE,
                session::clear_cookie(app.secure_cookies),
            ),
        ],
    )
        .into_response()
}

/// `GET /api/stats/{name}` and `GET /api/stats/{name}.csv?table=`.
async fn stats(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (name, csv) = match name.strip_suffix(".csv") {
        Some(base) => (base.to_owned(), true),
        None => (name, false),
    };
    let params = match params(query.as_deref()) {
        Ok(p) => p,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
    };
    if name == "products" && !csv {
        return match blocking(&app, |store| store.products()).await {
            Ok(products) => Json(products).into_response(),
            Err((status, message)) => error_response(status, message),
        };
    }
    if name == "properties" && !csv {
        let Some(event) = params.event.clone() else {
            return error_response(
                StatusCode::BAD_REQUEST,
                "\"event\" is required: the event whose properties to break down",
            );
        };
        let answer = blocking(&app, move |store| {
            dashboard::property_stats(store, &params.range, &event, params.property.as_deref())
        })
        .await;
        return match answer {
            Ok(stats) => Json(stats).into_response(),
            Err((status, message)) => error_response(status, message),
        };
    }
    // The property tables belong to the events view (its page links them there).
    let name = if name == "properties" && csv {
        "events".to_owned()
    } else {
        name
    };
    let Some(view) = View::from_api_name(&name) else {
        return error_response(
            StatusCode::NOT_FOUND,
            format!("no such view: {name:?}; views are ids, versions, environment, events, properties, usage, crashes, products"),
        );
    };
    let table = pairs(query.as_deref())
        .into_iter()
        .find(|(k, _)| k == "table")
        .map(|(_, v)| v);
    let range = params.range.clone();
    let loaded = blocking(&app, move |store| dashboard::load(store, view, &params)).await;
    let data = match loaded {
        Ok(data) => data,
        Err((status, message)) => return error_response(status, message),
    };
    if !csv {
        return match data {
            dashboard::ViewData::Ids(s) => Json(s).into_response(),
            dashboard::ViewData::Versions(s) => Json(s).into_response(),
            dashboard::ViewData::Environment(s) => Json(s).into_response(),
            dashboard::ViewData::Events { events, .. } => Json(events).into_response(),
            dashboard::ViewData::Usage(s) => Json(s).into_response(),
            dashboard::ViewData::Crashes(s) => Json(s).into_response(),
        };
    }
    let tables = dashboard::tables(&data);
    let names: Vec<&str> = tables.iter().map(|t| t.name).collect();
    let Some(table) = tables.iter().find(|t| Some(t.name) == table.as_deref()) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            format!(
                "\"table\" must name one of this view's tables: {}",
                names.join(", ")
            ),
        );
    };
    let file = format!("{}_{}_{}.csv", table.name, range.from, range.to);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        table.to_csv(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_collector() {
        assert_eq!(safe_next(Some("/versions?range=7")), "/versions?range=7");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "evil",
            "/a\r\nSet-Cookie: x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
