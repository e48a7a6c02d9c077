//! A small Qdrant-shaped service: an HTTP server whose routes record per-route timings
//! (keyed `"METHOD /pattern"` and status, as Qdrant's are), serves `/telemetry` and
//! `/metrics` itself, and reports its usage home through telemetry-core. Opt-outs are
//! Qdrant's: `QDRANT__TELEMETRY_DISABLED`, `telemetry_disabled` in `config/config.yaml`
//! under `--config-dir`, and `--disable-telemetry`. Opted out, `/telemetry` and `/metrics`
//! still answer (they are the operator's); nothing is sent.
//!
//! Run: `cargo run -p telemetry-core --example qdrant_like -- --listen 127.0.0.1:6333
//! --endpoint http://127.0.0.1:8765` (the local collector), then e.g.
//! `curl -X PUT localhost:6333/collections/docs/points -d '[1,2,3]'`. It prints
//! `listening on http://ADDR` and stops on SIGTERM or SIGINT, sending a last report.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use telemetry_core::anonymize::PropertyKind;
use telemetry_core::profile::Profile;
use telemetry_core::usage::{Section, TimingFamily, Usage};
use telemetry_core::Client;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The service's state: collections and their point counts.
struct Service {
    usage: Usage,
    rest: TimingFamily,
    collections: BTreeMap<String, u64>,
}

impl Service {
    /// Answers one request and records its timing under its route pattern and status.
    fn handle(&mut self, method: &str, path: &str, body: &str) -> (u16, String, &'static str) {
        let started = Instant::now();
        let (route, answer) = self.route(method, path, body);
        let status = answer.0.to_string();
        // `/telemetry` and `/metrics` are not timed: reading the numbers is not usage.
        if let Some(route) = route {
            let _ = self.rest.record(&[&route, &status], started.elapsed());
        }
        answer
    }

    fn route(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> (Option<String>, (u16, String, &'static str)) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let json = "application/json";
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", ["telemetry"]) | ("GET", ["metrics"]) => {
                let r = self.usage.handle(path, query);
                (None, (r.status, r.body, r.content_type))
            }
            ("GET", ["collections"]) => {
                let names: Vec<&String> = self.collections.keys().collect();
                (
                    Some("GET /collections".into()),
                    (200, json!({"collections": names}).to_string(), json),
                )
            }
            ("PUT", ["collections", name, "points"]) => {
                let route = Some("PUT /collections/{name}/points".to_string());
                match serde_json::from_str::<Vec<serde_json::Value>>(body) {
                    Ok(points) => {
                        *self.collections.entry(name.to_string()).or_default() +=
                            points.len() as u64;
                        self.publish_collections();
                        (
                            route,
                            (
                                200,
                                json!({"status": "ok", "added": points.len()}).to_string(),
                                json,
                            ),
                        )
                    }
                    Err(e) => (
                        route,
                        (400, json!({"error": e.to_string()}).to_string(), json),
                    ),
                }
            }
            ("POST", ["collections", name, "points", "search"]) => {
                let route = Some("POST /collections/{name}/points/search".to_string());
                match self.collections.get(*name) {
                    // A pretend search: its cost grows with the collection.
                    Some(n) => {
                        std::thread::sleep(Duration::from_micros(200 + 10 * n.min(&1000)));
                        (route, (200, json!({"result": []}).to_string(), json))
                    }
                    None => (
                        route,
                        (
                            404,
                            json!({"error": "no such collection"}).to_string(),
                            json,
                        ),
                    ),
                }
            }
            _ => (
                Some(format!("{method} unknown")),
                (404, json!({"error": "not found"}).to_string(), json),
            ),
        }
    }

    /// Pushes the collections section: names hashed in reports, counts exact.
    fn publish_collections(&self) {
        let items: Vec<_> = self
            .collections
            .iter()
            .map(|(name, points)| json!({"id": name, "points": points}))
            .collect();
        let section =
            Section::new(json!({"number_of_collections": items.len(), "collections": items}))
                .kind("id", PropertyKind::Hashed)
                .kind("points", PropertyKind::Exact)
                .kind("number_of_collections", PropertyKind::Exact);
        let _ = self.usage.set_section("collections", section);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = flag(&args, "--listen").unwrap_or_else(|| "127.0.0.1:6333".into());
    let endpoint = flag(&args, "--endpoint").unwrap_or_else(|| "http://127.0.0.1:8765".into());
    let config_dir = flag(&args, "--config-dir").unwrap_or_else(|| ".".into());
    let delay = flag(&args, "--report-delay-ms")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    let client = match Client::builder("qdrant", "1.19.0")
        .profile(Profile::Qdrant)
        .args(args.iter().cloned())
        .config_dir(&config_dir)
        .endpoint(endpoint)
        .api_key("phc_local_demo")
        .usage_report_delay(delay)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("qdrant_like: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "qdrant_like: {}",
        client.decision().to_string().lines().next().unwrap_or("")
    );
    let usage = client.usage().clone();
    usage.set_data_dir(&config_dir);
    let rest = usage
        .timing("rest_responses")
        .help("REST responses by route pattern and status")
        .label("route", PropertyKind::Safe)
        .label("status", PropertyKind::Safe)
        .build()
        .expect("a valid declaration");
    let mut service = Service {
        usage,
        rest,
        collections: BTreeMap::new(),
    };
    service.publish_collections();

    let server = match tiny_http::Server::http(&listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("qdrant_like: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    println!("listening on http://{}", server.server_addr());
    while !STOP.load(Ordering::SeqCst) {
        let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let mut body = String::new();
        let _ = request.as_reader().take(1 << 20).read_to_string(&mut body);
        let method = request.method().to_string();
        let (status, text, content_type) = service.handle(&method, request.url(), &body);
        let mut response = tiny_http::Response::from_string(text).with_status_code(status);
        if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", content_type) {
            response = response.with_header(h);
        }
        let _ = request.respond(response);
    }
    let stats = client.shutdown(Duration::from_secs(1));
    eprintln!(
        "qdrant_like: stopped; reports sent {}, dropped {}",
        stats.sent,
        stats.dropped_failed + stats.dropped_shutdown
    );
}
