//! A program that crashes on purpose, for the crash-report tests and `make demo`: it sends
//! its panic to the collector at `--endpoint` through telemetry-core, then dies as it would
//! without us (exit status 101 and Rust's own message on stderr; with `--abort`, a host
//! hook that aborts, as `panic = "abort"` does after the hooks run).
//!
//! Run: `cargo run -p telemetry-core --example crash_app -- --endpoint http://127.0.0.1:8765`

use std::time::{Duration, Instant};

use telemetry_core::crash::{CrashOptions, ErrorReport, Frame};
use telemetry_core::Client;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Deep enough that the report has frames of the host's own.
#[inline(never)]
fn connect(host: &str) -> u32 {
    let port: u32 = 5432;
    if host.contains("db01") {
        panic!("cannot connect to {host}:{port} as alice@example.com (token ghp_abcdefghijklmnopqrstuvwxyz0123456789)");
    }
    port
}

#[inline(never)]
fn start(host: &str) -> u32 {
    connect(host) + 1
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let endpoint = flag(&args, "--endpoint").unwrap_or_else(|| "http://127.0.0.1:8765".into());
    let deadline = flag(&args, "--deadline-ms")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis);
    if args.iter().any(|a| a == "--abort") {
        // The host's own hook, installed first: ours runs before it, then it aborts.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            std::process::abort();
        }));
    }
    let client = Client::builder("crashapp", "2.1.0")
        .endpoint(endpoint)
        .api_key("phc_local_demo")
        .build()
        .unwrap_or_else(|e| {
            eprintln!("crash_app: {e}");
            std::process::exit(2)
        });
    client.report_panics(CrashOptions {
        deadline,
        ..CrashOptions::default()
    });
    // A handled error first, the way a host reports what it caught itself.
    client.capture_error(
        &ErrorReport::new(
            "ConfigWarning",
            "config file /home/alice/.crashapp.toml not found",
        )
        .frame(Frame::new("crash_app::main", file!(), line!()).in_app(true)),
    );
    eprintln!("crash_app: panicking at {:?}", Instant::now());
    let port = start(&flag(&args, "--host").unwrap_or_else(|| "db01.internal".into()));
    println!("never printed: {port}");
}
