//! The running server: accepting connections, one thread per connection, and
//! graceful shutdown.
//!
//! Shutdown order, and why:
//! 1. stop accepting (the listener is closed), so no new work arrives;
//! 2. every request whose first byte has arrived is read, stored and answered;
//!    idle keep-alive connections are closed (their next request, if any, fails
//!    to connect and the sender retries — it was never acknowledged);
//! 3. the database is closed once the last connection thread is done.
//!
//! Every `200` is sent only after the request's transaction committed, so
//! nothing acknowledged is ever lost, whenever the process stops.
//!
//! ```
//! use telemetry_collector::{Collector, EventFilter};
//!
//! let collector = Collector::start("127.0.0.1:0", ":memory:").unwrap();
//! assert!(collector.url().starts_with("http://127.0.0.1:"));
//! assert!(collector.events(&EventFilter::default()).unwrap().is_empty());
//! collector.shutdown();
//! ```

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};

use crate::api;
use crate::error::Error;
use crate::http::{self, ReadError, Request, Response};
use crate::ingest::MAX_BODY_BYTES;
use crate::store::{EventFilter, Store, StoredEvent, Summary};

/// Connections served at once; more are answered 503 and closed, so a flood
/// cannot exhaust threads or file descriptors.
const MAX_CONNECTIONS: usize = 256;
/// How long a request may take to arrive once it has started, and how long a
/// response write may block. Bounds what a stalled client can hold.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle keep-alive connection is closed after this long. Longer than the
/// idle time of common client pools (ureq: 15 s) so the client closes first.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(60);
/// How often an idle connection checks whether the server is shutting down.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// How long shutdown waits for requests in flight before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Entry point: starts a collector. See [`Collector::start`].
pub struct Collector;

/// A running collector. Dropping it shuts it down like [`CollectorHandle::shutdown`].
pub struct CollectorHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

/// State shared by the accept thread, connection threads and the handle.
struct Shared {
    store: Arc<Store>,
    stopping: AtomicBool,
    /// Live connection threads; shutdown waits for it to reach zero.
    active: Mutex<usize>,
    idle: Condvar,
}

impl Collector {
    /// Opens (or creates) the SQLite database `db` and listens on `listen`
    /// (`host:port`; port 0 picks a free one, see [`CollectorHandle::addr`]).
    ///
    /// `db` may be `":memory:"` for a throw-away in-memory database, readable
    /// through the handle's query methods while the collector runs.
    ///
    /// Returns once the socket is bound and the database is ready, so a client
    /// may connect as soon as this returns.
    pub fn start(listen: &str, db: impl AsRef<Path>) -> Result<CollectorHandle, Error> {
        let addrs: Vec<SocketAddr> = listen
            .to_socket_addrs()
            .map_err(|_| Error::InvalidAddress(listen.to_owned()))?
            .collect();
        // Open the database first: a bad path should fail before the port is taken.
        let store = Arc::new(Store::open(db)?);
        let listener = TcpListener::bind(&addrs[..])?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            store,
            stopping: AtomicBool::new(false),
            active: Mutex::new(0),
            idle: Condvar::new(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("collector-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))?;
        info!("listening on http://{addr}");
        Ok(CollectorHandle {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        })
    }
}

impl CollectorHandle {
    /// The bound address, with the real port when started on port 0.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for senders, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The stored events matching `filter` (see [`crate::Store::events`]).
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, Error> {
        self.shared.store.events(filter)
    }

    /// Totals over everything stored (what `GET /api/summary` answers).
    pub fn summary(&self) -> Result<Summary, Error> {
        self.shared.store.summary()
    }

    /// Deletes every event of instance `distinct_id`; returns how many.
    pub fn delete_instance(&self, distinct_id: &str) -> Result<u64, Error> {
        self.shared.store.delete_instance(distinct_id)
    }

    /// Waits until at least `at_least` events are stored or `timeout` passes;
    /// returns the number stored at that point. For tests whose sender
    /// delivers from a background thread.
    pub fn wait_for_events(&self, at_least: u64, timeout: Duration) -> Result<u64, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.summary()?.events;
            if n >= at_least || Instant::now() >= deadline {
                return Ok(n);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops accepting, finishes and answers the requests in flight (waiting at
    /// most 10 s for them), then closes the database.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(accept_thread) = self.accept_thread.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // The accept thread is blocked in accept(); a connection of our own wakes
        // it, it sees `stopping` and returns, dropping (closing) the listener.
        if TcpStream::connect_timeout(&wake_address(self.addr), Duration::from_secs(1)).is_err() {
            warn!("could not wake the accept thread; it stops at the next connection");
        }
        if accept_thread.join().is_err() {
            error!("accept thread panicked");
        }

        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut active = self.shared.lock_active();
        while *active > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                warn!(
                    "{} connection(s) still busy after {SHUTDOWN_GRACE:?}; not waiting for them",
                    *active
                );
                break;
            }
            active = self
                .shared
                .idle
                .wait_timeout(active, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(active);
        info!("stopped listening on http://{}", self.addr);
        // The database closes when the last `Arc<Store>` goes: the handle's,
        // right after this, unless a straggling connection thread still has one.
    }
}

impl Drop for CollectorHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock_active(&self) -> std::sync::MutexGuard<'_, usize> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Counts one live connection; decrements and wakes shutdown when dropped,
/// also when the connection thread panics or could not be spawned.
struct ActiveGuard(Arc<Shared>);

impl ActiveGuard {
    fn enter(shared: &Arc<Shared>) -> Option<ActiveGuard> {
        let mut active = shared.lock_active();
        if *active >= MAX_CONNECTIONS {
            return None;
        }
        *active += 1;
        Some(ActiveGuard(Arc::clone(shared)))
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut active = self.0.lock_active();
        *active -= 1;
        if *active == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// Where to connect to wake our own listener: an unspecified bind address
/// (0.0.0.0, ::) is not connectable everywhere, its loopback is.
fn wake_address(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping() {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Usually EMFILE or a connection reset before accept; back off a
                // little so a persistent error does not spin a core.
                warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Some(guard) = ActiveGuard::enter(&shared) else {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let busy = Response::error(503, "too many connections; retry later");
            let _ = http::write_response(&mut &stream, &busy, false);
            continue;
        };
        let conn_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("collector-conn".into())
            .spawn(move || {
                let _guard = guard;
                serve_connection(stream, &conn_shared);
            });
        if let Err(e) = spawned {
            error!("could not start a connection thread: {e}");
        }
    }
    debug!("accept loop finished");
}

/// Serves requests on one connection until the client closes it, it idles too
/// long, or the server stops.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = &stream;
    let mut idle_since = Instant::now();
    loop {
        // Wait for the first byte of the next request in short slices, so an
        // idle connection notices shutdown quickly.
        let _ = stream.set_read_timeout(Some(IDLE_POLL));
        match reader.fill_buf() {
            Ok([]) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if shared.stopping() || idle_since.elapsed() > KEEP_ALIVE_IDLE {
                    return;
                }
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        // A request has started: from here on it is in flight and is finished
        // even if shutdown begins meanwhile.
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let request = match http::read_request(&mut reader, &mut writer, MAX_BODY_BYTES) {
            Ok(request) => request,
            Err(ReadError::Closed) => return,
            Err(ReadError::Reject(response)) => {
                let _ = http::write_response(&mut writer, &response, false);
                linger_close(&stream, reader);
                return;
            }
        };
        let response = answer(&request, &shared.store, api::handle);
        debug!("{} {} -> {}", request.method, request.path, response.status);
        let keep_alive = request.keep_alive && !shared.stopping();
        if http::write_response(&mut writer, &response, keep_alive).is_err() || !keep_alive {
            return;
        }
        idle_since = Instant::now();
    }
}

/// Runs `handler`; a panic (a bug, whatever the input) becomes a 500 for this
/// request instead of a dropped connection, and the server keeps serving.
fn answer(request: &Request, store: &Store, handler: fn(&Request, &Store) -> Response) -> Response {
    // AssertUnwindSafe: the only shared state is the store, whose transactions
    // roll back on unwind (see Store::conn).
    catch_unwind(AssertUnwindSafe(|| handler(request, store))).unwrap_or_else(|_| {
        error!("handler panicked on {} {}", request.method, request.path);
        Response::error(
            500,
            "internal error: the handler panicked; see the collector's log",
        )
    })
}

/// Closes a connection whose request was refused before its body was read.
///
/// Closing a socket with unread input makes the kernel send RST, and the client
/// may then lose our 413 before reading it. So: half-close our side, swallow
/// what the client is still sending (bounded in bytes and time), then close.
fn linger_close(stream: &TcpStream, reader: BufReader<TcpStream>) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut rest = reader.take(2 * MAX_BODY_BYTES as u64);
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_handler_answers_500() {
        let store = Store::open(":memory:").unwrap();
        let request = Request {
            method: "GET".into(),
            path: "/boom".into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
            keep_alive: true,
        };
        let response = answer(&request, &store, |_, _| panic!("boom"));
        assert_eq!(response.status, 500);
        // The store still works after the panic.
        assert_eq!(answer(&request, &store, api::handle).status, 404);
    }
}
