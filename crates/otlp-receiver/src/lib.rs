//! A test-side OTLP trace receiver: what comes in is OTLP export requests over HTTP
//! (`POST /v1/traces`, protobuf or JSON, optionally gzip) and gRPC
//! (`TraceService/Export`, optionally gzip); what goes out is a flat list of
//! [`ReceivedSpan`]s that tests assert on, and a text tree of each trace.
//!
//! Decoding uses the official definitions (`opentelemetry-proto`'s prost messages and
//! its tonic-generated `TraceService` server), so a span that decodes here decodes in any
//! OTLP backend. It listens on loopback only, and nothing a client sends can crash it:
//! bodies are capped at [`MAX_BODY_BYTES`] (413 beyond), undecodable ones get 400,
//! unknown content types 415, as the OTLP/HTTP spec says.
//!
//! In-process, from a Rust test:
//!
//! ```
//! use std::time::Duration;
//! use otlp_receiver::{Fault, Options, Receiver};
//!
//! let receiver = Receiver::start(Options::default())?;
//! println!("send OTLP/HTTP to {}", receiver.http_traces_url());
//! println!("send OTLP/gRPC to {}", receiver.grpc_endpoint());
//! // ... export spans with the code under test, then:
//! let spans = receiver.wait_for_spans(0, Duration::from_millis(10));
//! assert!(spans.is_empty());
//! receiver.set_fault(Fault::Status { http_status: 503, retry_after_secs: Some(1) });
//! print!("{}", otlp_receiver::render_tree(&spans));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! From another process (Go, Python), run the `otlp-receiver` binary: it writes its
//! addresses to a ready file and serves `GET /spans`, `GET /tree`, `DELETE /spans` and
//! `POST /fault` on its HTTP port (see the binary's `--help`).

mod fault;
mod grpc;
mod http;
mod span;
mod tree;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use fault::Fault;
pub use span::{
    any_value_to_json, attributes_to_json, ReceivedEvent, ReceivedLink, ReceivedSpan,
    ReceivedStatus,
};
pub use tree::render_tree;

/// The largest request body accepted, compressed or after decompression: 16 MiB.
/// Larger ones get 413 over HTTP and `RESOURCE_EXHAUSTED` over gRPC.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Where to listen and what to keep.
///
/// ```
/// # use otlp_receiver::Options;
/// let options = Options {
///     http_addr: Some("127.0.0.1:0".parse().unwrap()),
///     jsonl: Some(std::env::temp_dir().join("spans.jsonl")),
///     ..Options::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// OTLP/HTTP (and control endpoints) address; `127.0.0.1:0` (an OS-chosen port) when
    /// unset. Must be a loopback address: a test receiver is never reachable from outside.
    pub http_addr: Option<SocketAddr>,
    /// OTLP/gRPC address; `127.0.0.1:0` when unset. Loopback only, too.
    pub grpc_addr: Option<SocketAddr>,
    /// Append every received span as one JSON line ([`ReceivedSpan`]) to this file.
    pub jsonl: Option<PathBuf>,
}

/// A running receiver. Dropping it stops it (without blocking, so it may be dropped
/// inside an async runtime too).
pub struct Receiver {
    shared: Arc<Shared>,
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("http_addr", &self.http_addr)
            .field("grpc_addr", &self.grpc_addr)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Binds both ports and starts serving on a runtime of the receiver's own (one worker
    /// thread). The ports are listening when this returns, so a client may send at once.
    pub fn start(options: Options) -> io::Result<Receiver> {
        let any_loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let http_listener = bind_loopback(options.http_addr.unwrap_or(any_loopback))?;
        let grpc_listener = bind_loopback(options.grpc_addr.unwrap_or(any_loopback))?;
        let http_addr = http_listener.local_addr()?;
        let grpc_addr = grpc_listener.local_addr()?;
        let jsonl = match &options.jsonl {
            Some(path) => Some(Mutex::new(
                OpenOptions::new().create(true).append(true).open(path)?,
            )),
            None => None,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            jsonl,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-receiver")
            .enable_all()
            .build()?;
        {
            // from_std needs the runtime's reactor in context.
            let _entered = runtime.enter();
            let http_listener = tokio::net::TcpListener::from_std(http_listener)?;
            let grpc_listener = tokio::net::TcpListener::from_std(grpc_listener)?;
            runtime.spawn(http::serve(http_listener, shared.clone()));
            runtime.spawn(grpc::serve(grpc_listener, shared.clone()));
        }
        Ok(Receiver {
            shared,
            http_addr,
            grpc_addr,
            runtime: Some(runtime),
        })
    }

    /// The OTLP/HTTP address, e.g. `127.0.0.1:41234`.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The OTLP/gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// `http://127.0.0.1:PORT/v1/traces`: the full URL an OTLP/HTTP traces exporter takes.
    pub fn http_traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.http_addr)
    }

    /// `http://127.0.0.1:PORT`: the endpoint an OTLP/gRPC exporter takes.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.shared.lock().spans.clone()
    }

    /// How many export requests arrived (faulted, refused and undecodable ones included).
    pub fn requests(&self) -> u64 {
        self.shared.lock().requests
    }

    /// Waits until at least `n` spans have arrived or `timeout` has passed, and returns
    /// the spans received by then (check their number: a timeout is not an error here).
    /// Blocks the calling thread.
    pub fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        self.shared
            .wait_until(timeout, |state| state.spans.len() >= n)
            .spans
            .clone()
    }

    /// Waits until at least `n` export requests have arrived or `timeout` has passed and
    /// returns the count: for faults, where requests arrive but no span is recorded.
    pub fn wait_for_requests(&self, n: u64, timeout: Duration) -> u64 {
        self.shared
            .wait_until(timeout, |state| state.requests >= n)
            .requests
    }

    /// Answers every later export request with `fault` ([`Fault::None`] to behave again).
    pub fn set_fault(&self, fault: Fault) {
        self.shared.set_fault(fault, None);
    }

    /// Answers the next `requests` export requests with `fault`, then behaves again.
    pub fn set_fault_for(&self, fault: Fault, requests: u32) {
        self.shared.set_fault(fault, Some(requests));
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        self.shared.lock().fault.clone()
    }

    /// Forgets the spans received so far and resets the request count.
    pub fn clear(&self) {
        self.shared.clear();
    }

    /// [`render_tree`] of every span received so far.
    pub fn tree(&self) -> String {
        render_tree(&self.spans())
    }

    /// Stops serving; the same as dropping the receiver.
    pub fn shutdown(self) {}
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Not shutdown_timeout: that blocks, and panics inside an async context.
            runtime.shutdown_background();
        }
    }
}

fn bind_loopback(addr: SocketAddr) -> io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("otlp-receiver listens on loopback only, not {addr}"),
        ));
    }
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// What the servers and the handle share. Every lock is short and never held across I/O
/// on a socket.
pub(crate) struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    jsonl: Option<Mutex<File>>,
}

#[derive(Default)]
pub(crate) struct State {
    spans: Vec<ReceivedSpan>,
    requests: u64,
    fault: Fault,
    /// How many more requests the fault applies to; `None`: until changed.
    fault_left: Option<u32>,
}

impl Shared {
    /// A poisoned lock still holds consistent data here (every update is a push or an
    /// assignment), so it is used rather than turned into a panic.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&State) -> bool,
    ) -> MutexGuard<'_, State> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state
    }

    /// Counts an export request and returns the fault it gets.
    pub(crate) fn begin_request(&self) -> Fault {
        let mut state = self.lock();
        state.requests += 1;
        let fault = state.fault.clone();
        if let Some(left) = state.fault_left.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                state.fault = Fault::None;
                state.fault_left = None;
            }
        }
        drop(state);
        self.changed.notify_all();
        fault
    }

    pub(crate) fn set_fault(&self, fault: Fault, requests: Option<u32>) {
        let mut state = self.lock();
        match requests {
            Some(0) => {
                state.fault = Fault::None;
                state.fault_left = None;
            }
            _ => {
                state.fault = fault;
                state.fault_left = requests;
            }
        }
    }

    pub(crate) fn fault(&self) -> Fault {
        self.lock().fault.clone()
    }

    pub(crate) fn spans(&self) -> Vec<ReceivedSpan> {
        self.lock().spans.clone()
    }

    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.spans.clear();
        state.requests = 0;
    }

    pub(crate) fn record(&self, spans: Vec<ReceivedSpan>) {
        if let Some(file) = &self.jsonl {
            let mut lines = Vec::new();
            for span in &spans {
                // Serializing our own plain struct cannot fail.
                if serde_json::to_writer(&mut lines, span).is_ok() {
                    lines.push(b'\n');
                }
            }
            // One write per request, so concurrent requests never interleave lines. A
            // full disk loses lines, not the receiver.
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = file.write_all(&lines).and_then(|()| file.flush());
        }
        self.lock().spans.extend(spans);
        self.changed.notify_all();
    }
}
