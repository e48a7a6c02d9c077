//! The local endpoints on a loopback port, for hosts without an HTTP server of their own.
//!
//! In: a loopback address the host names. Out: a thread answering `GET /telemetry` and
//! `GET /metrics` (through [`super::endpoint`]) until the [`UsageServer`] is dropped.
//! Only loopback: these numbers are the operator's, and serving them to the network is the
//! host's decision, made with its own server. Started only when asked, whatever the
//! consent says (it sends nothing anywhere).
//!
//! ```
//! let usage = telemetry_core::usage::Usage::standalone("myapp", "1.0");
//! let server = usage.serve("127.0.0.1:0").unwrap();
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! assert!(usage.serve("0.0.0.0:9464").is_err()); // not loopback
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Usage, UsageError};

/// A running loopback server; dropping it stops the thread.
pub struct UsageServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The process generation that started it (see `fork_generation`).
    generation: u64,
}

/// Parses `addr` and checks that it is loopback; `localhost:PORT` means 127.0.0.1 (no
/// name lookup).
fn loopback(addr: &str) -> Result<SocketAddr, UsageError> {
    let parsed = match addr.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| ()),
        None => addr.parse::<SocketAddr>().map_err(|_| ()),
    }
    .map_err(|_| {
        UsageError(format!(
            "invalid address {addr:?}: expected e.g. 127.0.0.1:9464"
        ))
    })?;
    if !parsed.ip().is_loopback() {
        return Err(UsageError(format!(
            "{addr} is not a loopback address: the core serves usage statistics on loopback \
             only; mount Usage::handle in your own server to serve them further"
        )));
    }
    Ok(parsed)
}

impl std::fmt::Debug for UsageServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl UsageServer {
    pub(crate) fn start(usage: Usage, addr: &str) -> Result<UsageServer, UsageError> {
        let addr = loopback(addr)?;
        let server = tiny_http::Server::http(addr)
            .map_err(|e| UsageError(format!("cannot listen on {addr}: {e}")))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| UsageError("the server has no IP address".into()))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let (srv, flag) = (server.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("telemetry-usage-http".into())
            .spawn(move || serve(&usage, &srv, &flag))
            .map_err(|e| UsageError(format!("cannot start the server thread: {e}")))?;
        Ok(UsageServer {
            addr,
            server,
            stop,
            thread: Some(thread),
            generation: crate::client::fork_generation(),
        })
    }

    /// The address it listens on (the port chosen when `:0` was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn serve(usage: &Usage, server: &tiny_http::Server, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        let request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => break,
        };
        let (path, query) = request.url().split_once('?').unwrap_or((request.url(), ""));
        let method = request.method().as_str().to_string();
        let answer = super::endpoint::handle_method(usage, &method, path, query);
        let mut response =
            tiny_http::Response::from_string(answer.body).with_status_code(answer.status);
        if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", answer.content_type) {
            response = response.with_header(h);
        }
        if answer.status == 405 {
            if let Ok(h) = tiny_http::Header::from_bytes("Allow", super::endpoint::ALLOWED_METHODS)
            {
                response = response.with_header(h);
            }
        }
        // A client that went away is its own problem, never the host's.
        let _ = request.respond(response);
    }
}

impl Drop for UsageServer {
    fn drop(&mut self) {
        // In a forked child the server's threads do not exist: nothing to stop or join,
        // and the parent's listener is left alone.
        if self.generation != crate::client::fork_generation() {
            if let Some(t) = self.thread.take() {
                std::mem::forget(t);
            }
            // The server's own drop would wait for its accept thread, which is not here.
            std::mem::forget(Arc::clone(&self.server));
            return;
        }
        self.stop.store(true, Ordering::Release);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
