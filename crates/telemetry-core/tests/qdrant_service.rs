//! The Qdrant-shaped example service (examples/qdrant_like.rs) as a real process against
//! the real collector: enabled, its usage report arrives and `GET /api/usage` serves it;
//! with each of Qdrant's three opt-outs nothing arrives, while `/telemetry` and `/metrics`
//! still answer.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use telemetry_collector::{Collector, EventFilter};

fn example() -> PathBuf {
    // target/debug/deps/<this test> -> target/debug/examples/qdrant_like
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/qdrant_like");
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` (make test-rust) builds the examples",
        path.display()
    );
    path
}

struct Service {
    child: Child,
    url: String,
}

impl Service {
    fn start(
        collector: &str,
        home: &Path,
        extra_env: &[(&str, &str)],
        extra_args: &[&str],
    ) -> Service {
        let mut cmd = Command::new(example());
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--endpoint",
            collector,
            "--report-delay-ms",
            "100",
        ])
        .arg("--config-dir")
        .arg(home)
        .args(extra_args)
        .env_clear()
        .env("HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_string();
        Service { child, url }
    }

    fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", self.url);
        let mut response = match method {
            "GET" => agent.get(&url).call(),
            "PUT" => agent.put(&url).send(body),
            _ => agent.post(&url).send(body),
        }
        .unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// Some traffic, and the local endpoints checked.
    fn exercise(&self) {
        assert_eq!(
            self.call("PUT", "/collections/docs/points", "[1,2,3]").0,
            200
        );
        assert_eq!(
            self.call("POST", "/collections/docs/points/search", "{}").0,
            200
        );
        assert_eq!(
            self.call("POST", "/collections/nope/points/search", "{}").0,
            404
        );
        let (status, body) = self.call("GET", "/telemetry?details_level=2&anonymize=true", "");
        assert_eq!(status, 200);
        let report: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(report["operations"]["rest_responses"]["count"], 3);
        assert_ne!(report["collections"]["collections"][0]["id"], "docs");
        let (status, metrics) = self.call("GET", "/metrics", "");
        assert_eq!(status, 200);
        assert!(metrics.contains("qdrant_rest_responses_seconds_count{route=\"POST /collections/{name}/points/search\",status=\"404\"} 1"), "{metrics}");
        assert_eq!(self.call("GET", "/telemetry?details_level=x", "").0, 400);
    }

    /// SIGTERM: the service stops and sends its last report.
    fn stop(mut self) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

/// One of Qdrant's opt-outs: a name, variables, arguments, a config/config.yaml.
struct OptOut {
    what: &'static str,
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    config: Option<&'static str>,
}

#[test]
fn the_service_reports_home_and_each_qdrant_opt_out_keeps_everything_local() {
    let db = tempfile::tempdir().unwrap();
    let collector = Collector::start("127.0.0.1:0", db.path().join("events.db")).unwrap();
    let reports = || {
        collector
            .events(&EventFilter::default().event("usage_report"))
            .unwrap()
            .len()
    };

    let home = tempfile::tempdir().unwrap();
    let service = Service::start(&collector.url(), home.path(), &[], &[]);
    service.exercise();
    collector
        .wait_for_events(1, Duration::from_secs(10))
        .unwrap();
    service.stop();
    let sent = reports();
    assert!(
        sent >= 2,
        "a report after the delay and one at exit, got {sent}"
    );
    let latest = collector
        .events(&EventFilter::default().event("usage_report"))
        .unwrap();
    let last = &latest.last().unwrap().properties;
    assert_eq!(last["operations"]["rest_responses"]["count"], 3);
    assert_eq!(last["collections"]["number_of_collections"], 1);

    let opt_outs = [
        OptOut {
            what: "QDRANT__TELEMETRY_DISABLED",
            env: &[("QDRANT__TELEMETRY_DISABLED", "true")],
            args: &[],
            config: None,
        },
        OptOut {
            what: "config/config.yaml",
            env: &[],
            args: &[],
            config: Some("telemetry_disabled: true\n"),
        },
        OptOut {
            what: "--disable-telemetry",
            env: &[],
            args: &["--disable-telemetry"],
            config: None,
        },
    ];
    for OptOut {
        what,
        env,
        args,
        config,
    } in opt_outs
    {
        let home = tempfile::tempdir().unwrap();
        if let Some(yaml) = config {
            std::fs::create_dir(home.path().join("config")).unwrap();
            std::fs::write(home.path().join("config/config.yaml"), yaml).unwrap();
        }
        let service = Service::start(&collector.url(), home.path(), env, args);
        service.exercise();
        std::thread::sleep(Duration::from_millis(300)); // past the report delay
        service.stop();
        assert_eq!(reports(), sent, "{what}: a report reached the collector");
    }
}
