//! Connections: accepting (plain or TLS), serving each with hyper, and the
//! graceful stop.
//!
//! Shutdown order, and why:
//! 1. stop accepting (the listener is dropped), so no new work arrives;
//! 2. hyper finishes every request in flight on each connection (its body
//!    read, its events committed, its answer written) and closes idle
//!    keep-alive connections; a sender whose next request finds the connection
//!    closed retries it, as it was never acknowledged;
//! 3. after at most [`SHUTDOWN_GRACE`] the rest is abandoned.
//!
//! What one slow or hostile client can hold is bounded: headers must arrive
//! within [`HEADER_TIMEOUT`], a whole request within [`REQUEST_TIMEOUT`], a TLS
//! handshake within [`HANDSHAKE_TIMEOUT`], and at most [`MAX_CONNECTIONS`]
//! connections are served at once (more are answered 503 and closed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use log::{debug, warn};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::{Layer, ServiceExt};
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

/// Connections served at once. Each is a small tokio task, so this bounds file
/// descriptors more than memory.
pub const MAX_CONNECTIONS: usize = 4096;
/// A request's headers must be complete this long after its first byte.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of request line and headers together.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A whole request (body read, stored, answered) must take at most this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A TLS handshake must finish within this long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight before abandoning them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accepts until `stop` turns true, then shuts down gracefully.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let app = application(router);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // A client that shuts its write side once the request is sent still gets the
        // answer; without this hyper may close on reading that end of input first.
        .half_close(true)
        .header_read_timeout(HEADER_TIMEOUT)
        // Request line and headers beyond this get 431; bodies stream through.
        .max_buf_size(MAX_HEAD_BYTES);
    let builder = Arc::new(builder);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually EMFILE or a reset before accept; back off a little
                    // so a persistent error does not spin a core.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(refuse_busy(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = per_connection(app.clone(), peer);
        let builder = Arc::clone(&builder);
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let result = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(e)) => {
                            debug!("TLS handshake with {peer} failed: {e}");
                            return;
                        }
                        Err(_) => {
                            debug!("TLS handshake with {peer} timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                debug!("connection from {peer}: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("requests still in flight after {SHUTDOWN_GRACE:?}; not waiting for them");
    }
}

/// What every connection serves: the router behind the path normalisation
/// (`/batch/` and `/batch` are one path, trimmed before routing).
pub(crate) fn application(router: Router) -> NormalizePath<Router> {
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// One connection's hyper service: the application, with the peer address in
/// each request's extensions for handlers that ask for it (the per-address
/// rate limit).
fn per_connection(
    app: NormalizePath<Router>,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    axum::http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<
        Output = Result<axum::response::Response, std::convert::Infallible>,
    > + Send,
> + Clone
       + Send {
    hyper::service::service_fn(
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        },
    )
}

/// Answers a connection over [`MAX_CONNECTIONS`] with 503 and closes it.
async fn refuse_busy(mut stream: TcpStream) {
    let body = r#"{"error":"too many connections; retry later"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(response.as_bytes()),
    )
    .await;
}
