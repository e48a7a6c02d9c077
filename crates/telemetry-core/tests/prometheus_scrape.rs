//! `/metrics` read by the real consumers: `promtool check metrics` accepts it, and a real
//! Prometheus server (Debian's `prometheus` package, started here on loopback) scrapes it
//! and answers queries with the recorded values.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use telemetry_core::anonymize::PropertyKind;
use telemetry_core::usage::Usage;

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert!(
        !found.is_empty(),
        "{name} not found: install Debian's prometheus package (make deps does, as root)"
    );
    found
}

/// Stops the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn recorded() -> Usage {
    let usage = Usage::standalone("qdrantlike", "1.19.0");
    let rest = usage
        .timing("rest_responses")
        .help("REST responses by route and status")
        .label("route", PropertyKind::Safe)
        .label("status", PropertyKind::Safe)
        .build()
        .unwrap();
    for ms in [2, 3, 40] {
        rest.record(&["GET /collections", "200"], Duration::from_millis(ms))
            .unwrap();
    }
    rest.record_failure(&["PUT /collections/{name}/points", "500"])
        .unwrap();
    usage
        .counter("points_upserted")
        .help("Points written")
        .label("collection", PropertyKind::Hashed)
        .build()
        .unwrap()
        .add(&["my \"quoted\"\\ name\n"], 42)
        .unwrap();
    // Declared, never used: present from the start, at zero.
    usage.counter("snapshots").build().unwrap();
    usage
        .timing("grpc_responses")
        .label("method", PropertyKind::Safe)
        .build()
        .unwrap();
    usage
}

#[test]
fn promtool_accepts_the_exposition_plain_and_anonymized() {
    let promtool = tool("promtool");
    let usage = recorded();
    for anonymize in [false, true] {
        let text = usage.prometheus(anonymize);
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool rejected (anonymize={anonymize}):\n{}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = usage.prometheus(false);
    assert!(text.contains("qdrantlike_snapshots_total 0\n"), "{text}");
    assert!(text.contains("# TYPE qdrantlike_grpc_responses_seconds histogram\n"));
}

#[test]
fn a_real_prometheus_scrapes_metrics_and_its_queries_return_the_values() {
    let prometheus = tool("prometheus");
    let usage = recorded();
    let server = usage.serve("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: usage\n    \
             static_configs:\n      - targets: ['{}']\n",
            server.addr()
        ),
    )
    .unwrap();
    let port = free_port();
    let _prom = Server(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let agent = ureq::Agent::new_with_defaults();
    let query = |q: &str| -> Option<Vec<Value>> {
        let url = format!("http://127.0.0.1:{port}/api/v1/query");
        let text = agent
            .get(&url)
            .query("query", q)
            .call()
            .ok()?
            .body_mut()
            .read_to_string()
            .ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let result = v["data"]["result"].as_array()?.clone();
        (!result.is_empty()).then_some(result)
    };
    let started = Instant::now();
    let counts = loop {
        if let Some(r) = query("qdrantlike_rest_responses_seconds_count") {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus never scraped {}",
            server.url()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let ok = counts
        .iter()
        .find(|s| s["metric"]["status"] == "200")
        .expect("the 200 series");
    assert_eq!(ok["metric"]["route"], "GET /collections");
    assert_eq!(ok["value"][1], "3");
    let failures = query("qdrantlike_rest_responses_failures_total{status=\"500\"}").unwrap();
    assert_eq!(failures[0]["value"][1], "1");
    let points = query("qdrantlike_points_upserted_total").unwrap();
    assert_eq!(points[0]["metric"]["collection"], "my \"quoted\"\\ name\n");
    assert_eq!(points[0]["value"][1], "42");
    // Histograms work as Prometheus histograms: two of three responses within 5 ms.
    let within =
        query("qdrantlike_rest_responses_seconds_bucket{status=\"200\",le=\"0.005\"}").unwrap();
    assert_eq!(within[0]["value"][1], "2");
    let sum = query("qdrantlike_rest_responses_seconds_sum{status=\"200\"}").unwrap();
    let seconds: f64 = sum[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((seconds - 0.045).abs() < 1e-9, "{seconds}");
    let zero = query("qdrantlike_snapshots_total").unwrap();
    assert_eq!(zero[0]["value"][1], "0");
}
