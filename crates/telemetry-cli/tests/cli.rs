//! The real `telemetry` binary as a subprocess, in a sandbox: its own HOME and XDG
//! directories, an empty working directory, and no other variable but PATH.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use telemetry_core::env::MapEnvironment;
use telemetry_core::profile::Profile;
use telemetry_core::sink::{MemorySink, SinkConfig};
use telemetry_core::{identity, notice, Client};

const PROFILES: [&str; 4] = ["chroma", "qdrant", "evidently", "acme"];

struct Sandbox {
    root: tempfile::TempDir,
    /// Variables beyond the sandbox's own.
    extra: Vec<(String, String)>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        for dir in ["home", "work"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        Sandbox {
            root,
            extra: Vec::new(),
        }
    }

    fn with(mut self, name: &str, value: impl AsRef<Path>) -> Sandbox {
        let value = value.as_ref().to_string_lossy().into_owned();
        self.extra.retain(|(n, _)| n != name);
        self.extra.push((name.to_string(), value));
        self
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// HOME, the XDG directories (inside the sandbox, not yet created) and the extras.
    fn vars(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = [
            ("HOME", "home"),
            ("XDG_STATE_HOME", "home/.local/state"),
            ("XDG_CONFIG_HOME", "home/.config"),
            ("XDG_CACHE_HOME", "home/.cache"),
            ("XDG_DATA_HOME", "home/.local/share"),
            ("XDG_DATA_DIRS", "share"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), self.path(v).display().to_string()))
        .collect();
        for (name, value) in &self.extra {
            vars.retain(|(n, _)| n != name);
            vars.push((name.clone(), value.clone()));
        }
        vars
    }

    /// The same environment for the core's functions and a Rust client.
    fn env(&self) -> MapEnvironment {
        self.vars().into_iter().collect()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_telemetry"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.vars())
            .current_dir(self.path("work"))
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn status_json(&self, profile: &str) -> Value {
        serde_json::from_str(&self.ok(&["status", "--profile", profile, "--json"])).unwrap()
    }

    /// Every file (not directory) under the sandbox's home.
    fn files(&self) -> BTreeSet<PathBuf> {
        fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else {
                    found.insert(path);
                }
            }
        }
        let mut found = BTreeSet::new();
        walk(self.root.path(), &mut found);
        found
    }

    /// A Rust client built as a product would build it, in the same environment.
    fn client(&self, profile: &str) -> Client {
        Client::builder(profile, "1.0")
            .profile(profile.parse().unwrap())
            .environment(self.env())
            .working_dir(self.path("work"))
            .mode(telemetry_core::consent::RunMode::Cli)
            .sink(SinkConfig::Memory(MemorySink::new()))
            .build()
            .unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let sb = Sandbox::new();
    let top = sb.ok(&["--help"]);
    for command in ["status", "disable", "enable", "preview", "id", "reset"] {
        assert!(top.contains(command), "{top}");
        let help = sb.ok(&[command, "--help"]);
        assert!(help.contains("Exit status:"), "{command}: {help}");
        assert!(help.contains("2  usage error"), "{command}: {help}");
        assert!(help.contains("--profile"), "{command}: {help}");
    }
    assert!(top.contains("TELEMETRY_PROFILE"));
    assert!(sb.ok(&["--version"]).starts_with("telemetry "));
}

#[test]
fn usage_errors_exit_2_with_usage_on_stderr_and_nothing_on_stdout() {
    let sb = Sandbox::new();
    for args in [
        &["status", "--profile", "chroma", "--bogus"][..],
        &["frobnicate"],
        &[],
        &["status", "--profile", "../etc"],
        &["status", "--profile", "chroma", "--mode", "daemon"],
        &["id", "--profile", "chroma", "extra"],
        // No profile at all: guessing one could change the wrong product.
        &["disable"],
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        // clap's message (or, with no command, the help), then the usage or a pointer
        // to --help.
        let message = stderr(&out);
        assert!(
            message.contains("Usage: telemetry") || message.contains("try '--help'"),
            "{args:?}: {message}"
        );
    }
    let none = stderr(&sb.run(&["status"]));
    assert!(none.contains("no profile given"), "{none}");
    assert!(sb.files().is_empty());
}

#[test]
fn the_profile_can_come_from_telemetry_profile() {
    let sb = Sandbox::new().with("TELEMETRY_PROFILE", "qdrant");
    let status: Value = serde_json::from_str(&sb.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["profile"], "qdrant");
    // The flag wins over the variable, before or after the command.
    let status: Value =
        serde_json::from_str(&sb.ok(&["--profile", "chroma", "status", "--json"])).unwrap();
    assert_eq!(status["profile"], "chroma");
}

#[test]
fn status_of_every_profile_explains_the_decision_and_creates_nothing() {
    let sb = Sandbox::new();
    for profile in PROFILES {
        let s = sb.status_json(profile);
        assert_eq!(s["profile"], profile);
        assert_eq!(s["enabled"], true, "{s}");
        assert_eq!(s["decided_by"]["kind"], "default");
        assert!(s["warnings"].as_array().unwrap().is_empty());
        let kinds: Vec<&str> = s["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|src| src["kind"].as_str().unwrap())
            .collect();
        for kind in ["code", "env", "user_choice", "do_not_track", "default"] {
            assert!(kinds.contains(&kind), "{profile}: {kinds:?}");
        }
        assert_eq!(s["install_id"], Value::Null);
        assert_eq!(s["endpoint"], Value::Null);
        assert_eq!(s["notice_shown"], false);
        let state = sb.path("home/.local/state").join(profile);
        assert_eq!(s["state_dir"], state.display().to_string());
        assert!(!s["collected"].as_array().unwrap().is_empty());
        assert!(s["never_collected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|item| item.as_str().unwrap().contains("IP address")));

        let text = sb.ok(&["status", "--profile", profile]);
        assert!(
            text.starts_with("telemetry is on: decided by the default"),
            "{text}"
        );
        for part in [
            "install id",
            "endpoint",
            "state directory",
            "Never collected:",
        ] {
            assert!(text.contains(part), "{profile}: {text}");
        }
        // What a usage report holds is listed too, for the products that send one.
        assert!(text.contains("usage report"), "{text}");
        assert!(text.contains("SSD or rotational"), "{text}");
        assert!(text.contains("report crashes"), "{text}");
        // The command cannot see the product's code: it says so instead of "unset".
        assert!(
            text.contains("explicit setting: set by the product's code (not visible from here)"),
            "{text}"
        );
        assert!(!text.contains("explicit setting: unset"), "{text}");
        let code = s["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|src| src["kind"] == "code")
            .unwrap();
        assert_eq!(code["says"], "not_visible", "{code}");
        assert!(code["note"].as_str().unwrap().contains("product's code"));
    }
    let qdrant_text = sb.ok(&["status", "--profile", "qdrant"]);
    assert!(
        qdrant_text.contains(
            "--disable-telemetry: passed on the product's command line (not visible from here)"
        ),
        "{qdrant_text}"
    );
    let qdrant = sb.status_json("qdrant");
    assert_eq!(qdrant["id_storage"], "per_process");
    assert!(qdrant["sources"]
        .to_string()
        .contains("--disable-telemetry"));
    let chroma = sb.status_json("chroma");
    assert_eq!(
        chroma["id_file"],
        sb.path("home/.cache/chroma/telemetry_user_id")
            .display()
            .to_string()
    );
    assert!(sb.files().is_empty(), "{:?}", sb.files());
}

#[test]
fn status_reports_env_switches_endpoint_id_and_notice() {
    let sb = Sandbox::new()
        .with("ANONYMIZED_TELEMETRY", "maybe")
        .with("TELEMETRY_ENDPOINT", "https://eu.i.posthog.com");
    let s = sb.status_json("chroma");
    assert_eq!(s["enabled"], false);
    assert_eq!(s["decided_by"]["name"], "ANONYMIZED_TELEMETRY");
    assert!(s["warnings"][0].as_str().unwrap().contains("maybe"));
    assert_eq!(s["endpoint"], "https://eu.i.posthog.com");
    let flag: Value = serde_json::from_str(&sb.ok(&[
        "status",
        "-p",
        "chroma",
        "--json",
        "--endpoint",
        "http://127.0.0.1:8000",
    ]))
    .unwrap();
    assert_eq!(flag["endpoint"], "http://127.0.0.1:8000");

    let env = sb.env();
    let (id, _) = identity::load_or_create(&Profile::Chroma, &env);
    let n = notice::Notice::new("Chroma");
    notice::present(&n, &Profile::Chroma, &env, &mut Vec::new(), true);
    let s = sb.status_json("chroma");
    assert_eq!(s["install_id"], id.install_id().to_string());
    assert_eq!(s["notice_shown"], true);
    let text = sb.ok(&["status", "--profile", "chroma"]);
    assert!(text.contains(&id.install_id().to_string()));
    assert!(text.contains("first-run notice seen"), "{text}");

    let debug = Sandbox::new().with("TELEMETRY_DEBUG", "1");
    assert_eq!(debug.status_json("acme")["debug_sink"], true);
}

#[test]
fn status_shows_observability_with_header_values_hidden_and_bad_values_named() {
    let quiet = Sandbox::new();
    let s = quiet.status_json("chroma");
    assert_eq!(s["observability"]["active"], false);
    assert!(quiet
        .ok(&["status", "--profile", "chroma"])
        .contains("traces: off: no endpoint configured"));

    // Telemetry is off, traces are on: the two are independent.
    let sb = Sandbox::new()
        .with("ANONYMIZED_TELEMETRY", "False")
        .with(
            "CHROMA_OTEL_COLLECTION_ENDPOINT",
            "http://otel.internal:4317",
        )
        .with(
            "CHROMA_OTEL_COLLECTION_HEADERS",
            r#"{"x-honeycomb-team": "hc-secret-key"}"#,
        )
        .with("CHROMA_OTEL_GRANULARITY", "verbose");
    let s = sb.status_json("chroma");
    assert_eq!(s["enabled"], false);
    let o = &s["observability"];
    assert_eq!(o["active"], true);
    assert_eq!(o["endpoint"], "http://otel.internal:4317");
    assert_eq!(o["protocol"], "grpc");
    assert_eq!(o["service_name"], "chromadb");
    assert_eq!(o["headers"], serde_json::json!(["x-honeycomb-team"]));
    assert!(o["warnings"][0]
        .as_str()
        .unwrap()
        .contains("CHROMA_OTEL_GRANULARITY=\"verbose\""));
    let text = sb.ok(&["status", "--profile", "chroma"]);
    assert!(text.contains("x-honeycomb-team=<hidden>"), "{text}");
    assert!(
        text.contains("from CHROMA_OTEL_COLLECTION_ENDPOINT"),
        "{text}"
    );
    for shown in [s.to_string(), text] {
        assert!(!shown.contains("hc-secret-key"), "{shown}");
    }
}

#[test]
fn status_shows_the_traces_certificate_file_and_where_it_came_from() {
    let ca = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/certs/ca-a.pem"
    );
    let sb = Sandbox::new()
        .with(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://otel.corp.internal:4318",
        )
        .with("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", ca);
    let o = &sb.status_json("qdrant")["observability"];
    assert_eq!(o["certificate"], ca);
    assert_eq!(o["tls_roots"], "bundled");
    assert_eq!(
        o["origins"]["certificate"],
        serde_json::json!({"kind": "env", "name": "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"})
    );
    let text = sb.ok(&["status", "--profile", "qdrant"]);
    assert!(
        text.contains(&format!(
            "certificate: {ca}, added to the bundled roots (from OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE)"
        )),
        "{text}"
    );

    // A file that cannot be read is named in a warning; nothing fails.
    let bad = Sandbox::new()
        .with(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://otel.corp.internal:4318",
        )
        .with("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem");
    let text = bad.ok(&["status", "--profile", "qdrant"]);
    assert!(
        text.contains("warning: OTEL_EXPORTER_OTLP_CERTIFICATE=\"/nonexistent/ca.pem\""),
        "{text}"
    );
}

#[test]
fn evidently_in_library_mode_is_off() {
    let sb = Sandbox::new();
    let s: Value = serde_json::from_str(&sb.ok(&[
        "status",
        "--profile",
        "evidently",
        "--json",
        "--mode",
        "library",
    ]))
    .unwrap();
    assert_eq!(s["enabled"], false);
    assert_eq!(s["decided_by"]["kind"], "mode");
}

#[test]
fn disable_and_enable_are_honoured_by_a_rust_client_for_every_profile() {
    let sb = Sandbox::new();
    for profile in PROFILES {
        let out = sb.ok(&["disable", "--profile", profile]);
        let choice = sb
            .path("home/.local/state")
            .join(profile)
            .join("telemetry_choice");
        assert_eq!(
            out,
            format!(
                "telemetry disabled for {profile}: saved in {}\n",
                choice.display()
            )
        );
        let s = sb.status_json(profile);
        assert_eq!(s["enabled"], false);
        assert_eq!(s["decided_by"]["kind"], "user_choice");
        let text = sb.ok(&["status", "--profile", profile]);
        assert!(
            text.starts_with("telemetry is off: decided by user_choice"),
            "{text}"
        );
        let client = sb.client(profile);
        assert!(!client.is_enabled(), "{profile}");
        assert_eq!(
            client.decision().decided_by.as_ref().unwrap().kind.as_str(),
            "user_choice"
        );

        sb.ok(&["enable", "--profile", profile]);
        let s = sb.status_json(profile);
        assert_eq!(s["enabled"], true);
        assert_eq!(s["decided_by"]["kind"], "user_choice");
        assert_eq!(s["decided_by"]["value"], "enabled");
        assert!(sb.client(profile).is_enabled(), "{profile}");
    }
    // Choices are per product: a fresh one is untouched.
    assert_eq!(sb.status_json("other")["decided_by"]["kind"], "default");
}

#[test]
fn enable_says_when_another_source_keeps_telemetry_off() {
    let sb = Sandbox::new().with("DO_NOT_TRACK", "1");
    let out = sb.run(&["enable", "--profile", "chroma"]);
    assert_eq!(out.status.code(), Some(0));
    let note = stderr(&out);
    assert!(
        note.contains("telemetry is off: decided by do_not_track DO_NOT_TRACK"),
        "{note}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("telemetry enabled for chroma"));
    assert!(!sb.client("chroma").is_enabled());
}

#[test]
fn a_state_directory_that_cannot_be_created_fails_with_exit_1() {
    let sb = Sandbox::new();
    // Running as root, permissions would not stop the write; a regular file where a
    // directory must go stops everyone.
    let blocker = sb.path("blocker");
    std::fs::write(&blocker, "a file, not a directory").unwrap();
    let sb = sb.with("XDG_STATE_HOME", blocker.join("state"));
    for command in ["disable", "enable"] {
        let out = sb.run(&[command, "--profile", "acme"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty());
        let message = stderr(&out);
        assert!(
            message.starts_with("telemetry: cannot save your choice for acme in "),
            "{message}"
        );
        assert!(
            message.contains("blocker/state/acme/telemetry_choice"),
            "{message}"
        );
        assert!(message.contains("Not a directory"), "{message}");
    }
    // Status still works: a choice that could not be saved is no choice.
    let s = sb.status_json("acme");
    assert_eq!(s["enabled"], true, "{s}");
    assert_eq!(s["decided_by"]["kind"], "default");
}

#[test]
fn preview_prints_the_anonymized_payload_with_context_and_creates_nothing() {
    let sb = Sandbox::new();
    for profile in PROFILES {
        let out = sb.run(&["preview", "--profile", profile]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let p: Value = serde_json::from_slice(&out.stdout).unwrap();
        // Without samples from the product, a generic example that no product sends.
        assert_eq!(p["event"], "example_event");
        let props = &p["properties"];
        let hash = props["item_id"].as_str().unwrap();
        assert_eq!(hash.len(), 16);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(props["item_count"], 20);
        assert_eq!(props["mode"], "default");
        let rounded = if profile == "qdrant" {
            123_456
        } else {
            123_000
        };
        assert_eq!(props["size_bytes"], rounded, "{profile}");
        let error = props["error"].as_str().unwrap();
        for private in ["/home/ada", "ada@example.com", "192.168.1.20"] {
            assert!(!error.contains(private), "{error}");
        }
        assert_eq!(props["product"], profile);
        // Not the CLI's own Rust runtime and a made-up version, as if the product ran.
        assert_eq!(props["runtime"], "unknown");
        assert_eq!(props["product_version"], "unknown");
        assert_eq!(props["os"], std::env::consts::OS);
        assert_eq!(props["arch"], std::env::consts::ARCH);
        assert_eq!(props["$geoip_disable"], true);
        assert_eq!(props["$ip"], Value::Null);
        uuid::Uuid::parse_str(p["distinct_id"].as_str().unwrap()).unwrap();
        let notes = stderr(&out);
        assert!(notes.contains("generic example"), "{notes}");
        assert!(
            notes.contains(&format!("not an event {profile} sends")),
            "{notes}"
        );
        assert!(
            notes.contains(&format!("telemetry-core/{profile}/events.json")),
            "{notes}"
        );
        assert!(notes.contains("made up for this preview"), "{notes}");
    }
    let chroma = stderr(&sb.run(&["preview", "--profile", "chroma"]));
    assert!(chroma.contains("CollectionAddEvent"), "{chroma}");
    let qdrant = stderr(&sb.run(&["preview", "--profile", "qdrant"]));
    assert!(qdrant.contains("usage report"), "{qdrant}");
    assert!(sb.files().is_empty(), "{:?}", sb.files());
}

/// An integrator installs `telemetry-core/<profile>/events.json` in a data directory; the
/// user's own data directory wins over the system's, and `--samples` over both.
#[test]
fn preview_shows_the_products_installed_sample_events() {
    let sb = Sandbox::new();
    let sample = |name: &str| {
        format!(
            r#"{{"product": "chromadb", "version": "1.3.0", "runtime": "python",
                "runtime_version": "3.12", "events": [
                {{"event": "{name}", "properties": {{"collection_uuid": "2b1f", "add_amount": 20}},
                  "kinds": {{"collection_uuid": "hashed", "add_amount": "exact"}}}},
                {{"event": "ClientStartEvent"}}]}}"#
        )
    };
    let system = sb.path("share/telemetry-core/chroma/events.json");
    std::fs::create_dir_all(system.parent().unwrap()).unwrap();
    std::fs::write(&system, sample("FromSystem")).unwrap();
    let out = sb.run(&["preview", "--profile", "chroma"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = shown.as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "FromSystem");
    let props = &events[0]["properties"];
    assert_eq!(props["add_amount"], 20);
    assert_ne!(props["collection_uuid"], "2b1f");
    assert_eq!(props["product"], "chromadb");
    assert_eq!(props["product_version"], "1.3.0");
    assert_eq!(props["runtime"], "python");
    assert_eq!(events[1]["event"], "ClientStartEvent");
    let notes = stderr(&out);
    assert!(
        notes.contains("2 sample event(s) that chroma declares in")
            && notes.contains(&system.display().to_string()),
        "{notes}"
    );

    let user = sb.path("home/.local/share/telemetry-core/chroma/events.json");
    std::fs::create_dir_all(user.parent().unwrap()).unwrap();
    std::fs::write(&user, sample("FromUser")).unwrap();
    let shown: Value = serde_json::from_str(&sb.ok(&["preview", "-p", "chroma"])).unwrap();
    assert_eq!(shown[0]["event"], "FromUser");

    let given = sb.path("work/mine.json");
    std::fs::write(&given, sample("Given")).unwrap();
    let shown: Value = serde_json::from_str(&sb.ok(&[
        "preview",
        "-p",
        "chroma",
        "--samples",
        given.to_str().unwrap(),
        "--product-version",
        "9.9",
    ]))
    .unwrap();
    assert_eq!(shown[0]["event"], "Given");
    assert_eq!(shown[0]["properties"]["product_version"], "9.9");

    // A broken sample file is an error that names it, not a silent fallback.
    std::fs::write(&user, r#"{"events": [{"event": ""}]}"#).unwrap();
    let out = sb.run(&["preview", "-p", "chroma"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains(&user.display().to_string()),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("event name is empty"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn preview_reads_an_event_from_a_file_or_stdin_and_uses_the_stored_identity() {
    let sb = Sandbox::new();
    let env = sb.env();
    let (id, _) = identity::load_or_create(&Profile::Chroma, &env);
    let event = r#"{"event": "query", "properties": {"collection": "my_collection",
        "n_results": 10, "where": "safe-label"}, "kinds": {"where": "safe", "n_results": "exact"}}"#;
    let file = sb.path("work/event.json");
    std::fs::write(&file, event).unwrap();

    let from_file = sb.run(&["preview", "-p", "chroma", "--event", file.to_str().unwrap()]);
    assert_eq!(from_file.status.code(), Some(0), "{from_file:?}");
    assert!(stderr(&from_file).is_empty(), "{}", stderr(&from_file));

    let mut child = sb
        .command(&[
            "preview",
            "-p",
            "chroma",
            "--event",
            "-",
            "--product",
            "chromadb",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(event.as_bytes())
        .unwrap();
    let from_stdin = child.wait_with_output().unwrap();
    assert_eq!(from_stdin.status.code(), Some(0), "{from_stdin:?}");

    let a: Value = serde_json::from_slice(&from_file.stdout).unwrap();
    let b: Value = serde_json::from_slice(&from_stdin.stdout).unwrap();
    assert_eq!(a["distinct_id"], id.install_id().to_string());
    // The install's secret makes the hash: stable across runs, never the plain name.
    assert_eq!(a["properties"]["collection"], b["properties"]["collection"]);
    assert_ne!(a["properties"]["collection"], "my_collection");
    assert_eq!(a["properties"]["where"], "safe-label");
    assert_eq!(a["properties"]["n_results"], 10);
    assert_eq!(a["properties"]["product"], "chroma");
    assert_eq!(b["properties"]["product"], "chromadb");
}

#[test]
fn preview_when_off_still_shows_the_payload_and_says_so() {
    let sb = Sandbox::new().with("DO_NOT_TRACK", "1");
    let out = sb.run(&["preview", "--profile", "acme"]);
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice::<Value>(&out.stdout).unwrap();
    assert!(stderr(&out).contains("telemetry is off for acme: nothing is sent"));
}

#[test]
fn preview_of_an_invalid_event_fails_with_exit_1() {
    let sb = Sandbox::new();
    let bad = sb.path("work/bad.json");
    std::fs::write(&bad, r#"{"event": ""}"#).unwrap();
    for (args, expected) in [
        (
            vec!["preview", "-p", "chroma", "--event", bad.to_str().unwrap()],
            "event name is empty",
        ),
        (
            vec!["preview", "-p", "chroma", "--event", "missing.json"],
            "cannot read missing.json",
        ),
    ] {
        let out = sb.run(&args);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty());
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    }
}

#[test]
fn id_prints_the_stored_id_and_never_creates_one() {
    let sb = Sandbox::new();
    let out = sb.run(&["id", "--profile", "chroma"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("no install id is stored for chroma"),
        "{}",
        stderr(&out)
    );
    assert!(sb.files().is_empty());

    let out = sb.run(&["id", "--profile", "qdrant"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("new install id in every process"));

    for profile in ["chroma", "evidently", "acme"] {
        let parsed: Profile = profile.parse().unwrap();
        let (id, warning) = identity::load_or_create(&parsed, &sb.env());
        assert_eq!(warning, None);
        assert_eq!(
            sb.ok(&["id", "--profile", profile]),
            format!("{}\n", id.install_id())
        );
    }
}

#[test]
fn reset_deletes_the_id_and_secret_and_the_next_run_makes_new_ones() {
    let sb = Sandbox::new();
    let env = sb.env();
    let (old, _) = identity::load_or_create(&Profile::Chroma, &env);
    sb.ok(&["disable", "--profile", "chroma"]);

    let out = sb.ok(&["reset", "--profile", "chroma"]);
    assert!(
        out.contains(&format!("deleted install id {}", old.install_id())),
        "{out}"
    );
    assert!(
        out.contains(&format!("quote: {}", old.install_id())),
        "{out}"
    );
    assert!(identity::peek(&Profile::Chroma, &env).is_none());
    assert!(!sb.path("home/.cache/chroma/telemetry_secret").exists());
    assert_eq!(
        sb.run(&["id", "--profile", "chroma"]).status.code(),
        Some(1)
    );
    // The user's "off" survives a reset: a new id must not mean telemetry back on.
    assert_eq!(sb.status_json("chroma")["enabled"], false);

    let (new, _) = identity::load_or_create(&Profile::Chroma, &env);
    assert_ne!(new.install_id(), old.install_id());
    assert_ne!(new.secret(), old.secret());

    sb.ok(&["reset", "--profile", "chroma"]);
    let again = sb.ok(&["reset", "--profile", "chroma"]);
    assert_eq!(
        again,
        "no install id was stored for chroma: nothing to delete\n"
    );
    let qdrant = sb.ok(&["reset", "--profile", "qdrant"]);
    assert!(qdrant.contains("stores no install id"), "{qdrant}");
}
