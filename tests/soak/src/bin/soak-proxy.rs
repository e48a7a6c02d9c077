//! The soak's flapping endpoint (tests/soak/README.md): an HTTP/1.1 proxy on loopback in
//! front of the collector that answers some requests itself, badly.
//!
//! Each request, by chance: 429 with `Retry-After: 1` (SOAK_P_429), 500 (SOAK_P_500), a
//! hang that never answers and closes after SOAK_HANG_SECONDS (SOAK_P_HANG), or forwarded
//! to the collector and its answer held back for SOAK_HANG_SECONDS (SOAK_P_HANG_AFTER: the
//! events are stored while the client times out, the "commit before the reply" case).
//! Every SOAK_STORM_EVERY seconds a storm of SOAK_STORM_SECONDS gives every request one of
//! those faults. The rest is forwarded as it came, one connection per request
//! (`Connection: close`); when the collector is down or dies mid-request, the client's
//! connection is closed without an answer. The proxy never makes up a success.
//!
//! `GET /__soak/stats` answers the proxy's counters as JSON.
//!
//! Usage: soak-proxy LISTEN UPSTREAM (e.g. 127.0.0.1:0 127.0.0.1:8765); prints
//! `listening on http://ADDR`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use telemetry_soak::{env_or, env_secs, Rng};

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    forwarded: AtomicU64,
    answered_429: AtomicU64,
    answered_500: AtomicU64,
    hung: AtomicU64,
    hung_after_forward: AtomicU64,
    upstream_down: AtomicU64,
    upstream_failed: AtomicU64,
    bad_requests: AtomicU64,
}

impl Counters {
    fn json(&self) -> String {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "requests": c(&self.requests), "forwarded": c(&self.forwarded),
            "answered_429": c(&self.answered_429), "answered_500": c(&self.answered_500),
            "hung": c(&self.hung), "hung_after_forward": c(&self.hung_after_forward),
            "upstream_down": c(&self.upstream_down), "upstream_failed": c(&self.upstream_failed),
            "bad_requests": c(&self.bad_requests),
        })
        .to_string()
    }
}

struct Faults {
    p429: f64,
    p500: f64,
    hang: f64,
    hang_after: f64,
    hang_for: Duration,
    storm_every: Duration,
    storm_for: Duration,
    started: Instant,
}

enum Fault {
    None,
    TooMany,
    ServerError,
    Hang,
    HangAfterForward,
}

impl Faults {
    fn pick(&self, rng: &mut Rng) -> Fault {
        let x = (rng.below(1_000_000) as f64) / 1_000_000.0;
        let since = self.started.elapsed();
        let storm = !self.storm_every.is_zero()
            && since > self.storm_every
            && Duration::from_nanos((since.as_nanos() % self.storm_every.as_nanos()) as u64)
                < self.storm_for;
        if storm {
            return match rng.below(4) {
                0 => Fault::TooMany,
                1 => Fault::ServerError,
                2 => Fault::Hang,
                _ => Fault::HangAfterForward,
            };
        }
        let mut edge = self.p429;
        if x < edge {
            return Fault::TooMany;
        }
        edge += self.p500;
        if x < edge {
            return Fault::ServerError;
        }
        edge += self.hang;
        if x < edge {
            return Fault::Hang;
        }
        edge += self.hang_after;
        if x < edge {
            return Fault::HangAfterForward;
        }
        Fault::None
    }
}

/// Reads one request: its head (up to the blank line) and its body (Content-Length).
fn read_request(conn: &mut TcpStream) -> Option<(Vec<u8>, String)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut length = 0usize;
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name == "content-length" {
                length = value.trim().parse().ok()?;
            } else if name == "transfer-encoding" {
                return None; // the core sends a Content-Length; anything else is a finding
            }
        }
    }
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.truncate(head_end + length);
    Some((buf, head))
}

/// The request as sent upstream: the same, with `Connection: close`.
fn upstream_request(raw: &[u8], head: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 32);
    for (i, line) in head.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if i > 0 && (lower.starts_with("connection:") || lower.starts_with("keep-alive:")) {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&raw[head.len()..]);
    out
}

/// Sends the request to the collector and reads its whole answer (it closes after it).
fn forward(upstream: SocketAddr, request: &[u8], counters: &Counters) -> Option<Vec<u8>> {
    let mut up = match TcpStream::connect_timeout(&upstream, Duration::from_secs(1)) {
        Ok(up) => up,
        Err(_) => {
            counters.upstream_down.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    up.set_read_timeout(Some(Duration::from_secs(30))).ok();
    up.set_write_timeout(Some(Duration::from_secs(30))).ok();
    let mut answer = Vec::new();
    let ok = up.write_all(request).is_ok() && up.read_to_end(&mut answer).is_ok();
    // An answer without its status line or head (the collector killed mid-request) is no
    // answer.
    if !ok || !answer.starts_with(b"HTTP/1.1 ") || !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        counters.upstream_failed.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    Some(answer)
}

fn answer(conn: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    conn.write_all(text.as_bytes()).ok();
}

fn serve(
    mut conn: TcpStream,
    upstream: SocketAddr,
    faults: &Faults,
    counters: &Counters,
    seed: u64,
) {
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
    conn.set_write_timeout(Some(Duration::from_secs(30))).ok();
    let mut rng = Rng::new(seed);
    let Some((raw, head)) = read_request(&mut conn) else {
        counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if head.starts_with("GET /__soak/stats ") {
        answer(&mut conn, "200 OK", "", &counters.json());
        return;
    }
    counters.requests.fetch_add(1, Ordering::Relaxed);
    match faults.pick(&mut rng) {
        Fault::TooMany => {
            counters.answered_429.fetch_add(1, Ordering::Relaxed);
            answer(
                &mut conn,
                "429 Too Many Requests",
                "Retry-After: 1\r\n",
                r#"{"error":"soak: slow down"}"#,
            );
        }
        Fault::ServerError => {
            counters.answered_500.fetch_add(1, Ordering::Relaxed);
            answer(
                &mut conn,
                "500 Internal Server Error",
                "",
                r#"{"error":"soak: flapping"}"#,
            );
        }
        Fault::Hang => {
            counters.hung.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(faults.hang_for);
        }
        Fault::HangAfterForward => {
            counters.hung_after_forward.fetch_add(1, Ordering::Relaxed);
            let reply = forward(upstream, &upstream_request(&raw, &head), counters);
            std::thread::sleep(faults.hang_for);
            if let Some(reply) = reply {
                conn.write_all(&reply).ok(); // the client has usually given up by now
            }
        }
        Fault::None => {
            if let Some(reply) = forward(upstream, &upstream_request(&raw, &head), counters) {
                counters.forwarded.fetch_add(1, Ordering::Relaxed);
                conn.write_all(&reply).ok();
            }
        }
    }
    conn.shutdown(Shutdown::Both).ok();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: soak-proxy LISTEN UPSTREAM");
        std::process::exit(2);
    }
    let upstream: SocketAddr = args[2].parse().unwrap_or_else(|e| {
        eprintln!("soak-proxy: upstream {}: {e}", args[2]);
        std::process::exit(2)
    });
    let listener = TcpListener::bind(&args[1]).unwrap_or_else(|e| {
        eprintln!("soak-proxy: listen {}: {e}", args[1]);
        std::process::exit(2)
    });
    let faults = Arc::new(Faults {
        p429: env_or("SOAK_P_429", 0.05),
        p500: env_or("SOAK_P_500", 0.05),
        hang: env_or("SOAK_P_HANG", 0.02),
        hang_after: env_or("SOAK_P_HANG_AFTER", 0.02),
        hang_for: env_secs("SOAK_HANG_SECONDS", 7.0),
        storm_every: env_secs("SOAK_STORM_EVERY", 20.0),
        storm_for: env_secs("SOAK_STORM_SECONDS", 2.0),
        started: Instant::now(),
    });
    let counters = Arc::new(Counters::default());
    let mut seeds = Rng::new(env_or("SOAK_SEED", 1));
    println!("listening on http://{}", listener.local_addr().unwrap());
    std::io::stdout().flush().ok();
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                let (faults, counters, seed) = (faults.clone(), counters.clone(), seeds.next_u64());
                std::thread::spawn(move || serve(conn, upstream, &faults, &counters, seed));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("soak-proxy: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
