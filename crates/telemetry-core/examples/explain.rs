//! Shows, for a few environments, whether telemetry runs and why, then the exact
//! anonymized payloads the debug sink prints for a Chroma-style session.
//!
//! Run: `cargo run -p telemetry-core --example explain`

use std::time::Duration;

use telemetry_core::consent::RunMode;
use telemetry_core::env::MapEnvironment;
use telemetry_core::profile::Profile;
use telemetry_core::sink::SinkConfig;
use telemetry_core::{Client, Event};

fn main() {
    let home = tempfile::tempdir().expect("temporary HOME");
    let base = || MapEnvironment::new().with("HOME", home.path());
    let scenarios: Vec<(&str, Profile, MapEnvironment, Vec<&str>, RunMode)> = vec![
        (
            "chroma, nothing set",
            Profile::Chroma,
            base(),
            vec![],
            RunMode::Library,
        ),
        (
            "chroma, ANONYMIZED_TELEMETRY=False",
            Profile::Chroma,
            base().with("ANONYMIZED_TELEMETRY", "False"),
            vec![],
            RunMode::Library,
        ),
        (
            "chroma, ANONYMIZED_TELEMETRY=maybe (unrecognized: off, with a warning)",
            Profile::Chroma,
            base().with("ANONYMIZED_TELEMETRY", "maybe"),
            vec![],
            RunMode::Library,
        ),
        (
            "qdrant, DO_NOT_TRACK=1 and QDRANT__TELEMETRY_DISABLED=false",
            Profile::Qdrant,
            base()
                .with("DO_NOT_TRACK", "1")
                .with("QDRANT__TELEMETRY_DISABLED", "false"),
            vec![],
            RunMode::Library,
        ),
        (
            "qdrant --disable-telemetry",
            Profile::Qdrant,
            base(),
            vec!["qdrant", "--disable-telemetry"],
            RunMode::Library,
        ),
        (
            "evidently used as a library",
            Profile::Evidently,
            base(),
            vec![],
            RunMode::Library,
        ),
        (
            "evidently run as a CLI",
            Profile::Evidently,
            base(),
            vec![],
            RunMode::Cli,
        ),
    ];
    let work = tempfile::tempdir().expect("temporary working dir");
    for (title, profile, env, args, mode) in scenarios {
        let client = Client::builder("demo", "0.1.0")
            .profile(profile)
            .environment(env)
            .args(args)
            .mode(mode)
            .working_dir(work.path())
            .config_dir(work.path())
            .sink(SinkConfig::Debug)
            .build()
            .expect("valid configuration");
        println!("== {title}\n{}\n", client.decision());
    }

    println!("== what a Chroma session sends (debug sink, on stderr):");
    let client = Client::builder("chromadb", "1.3.0")
        .profile(Profile::Chroma)
        .environment(base())
        .working_dir(work.path())
        .sink(SinkConfig::Debug)
        .build()
        .expect("valid configuration");
    client.capture(
        Event::new("client_start")
            .safe("is_persistent", true)
            .safe("api_impl", "segment"),
    );
    for n in [10, 20, 30] {
        client.capture(
            Event::new("collection_add")
                .hashed("collection_uuid", "2b1f6c0e-my-docs")
                .exact("add_amount", n)
                .batched("add:my-docs", 3000, &["add_amount"]),
        );
    }
    client.capture(
        Event::new("server_error")
            .text(
                "message",
                "open /home/alice/data/chroma.sqlite3 failed for alice@example.com from 10.1.2.3",
            )
            .property("latency_us", 1_234_567),
    );
    let stats = client.shutdown(Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(50));
    println!(
        "\nstats: {}",
        serde_json::to_string(&stats).unwrap_or_default()
    );
}
