//! `make bench`: error reports. How long a panic takes from the panic to its report being
//! delivered (memory sink: handed to the transport), beside the same panic without
//! reporting; a repeat of the same fingerprint (suppressed, never waits); and the delay a
//! dead endpoint adds to a crashing process (examples/crash_app, beside the same process
//! opted out). Printed side by side in the same run.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use telemetry_core::crash::CrashOptions;
use telemetry_core::env::MapEnvironment;
use telemetry_core::sink::{MemorySink, SinkConfig};
use telemetry_core::Client;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[inline(never)]
fn fails(i: usize) {
    panic!("bench panic {i}");
}

fn crash_app() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/crash_app")
}

fn run_crash_app(endpoint: &str, env: &[(&str, &str)]) -> Duration {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(crash_app());
    cmd.args(["--endpoint", endpoint])
        .env_clear()
        .env("HOME", home.path())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let _ = cmd.status();
    t.elapsed()
}

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    const N: usize = 200;
    let quiet: Vec<f64> = (0..N)
        .map(|i| {
            let t = Instant::now();
            let _ = std::panic::catch_unwind(|| fails(i));
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();

    // Each round a client that has not reported this fingerprint yet, so the crash waits
    // for its report's delivery (its worker starts with the report, as in a process
    // whose first telemetry is its crash).
    let mut delivered = 0;
    let reported: Vec<f64> = (0..N)
        .map(|i| {
            let memory = MemorySink::new();
            let client = Client::builder("bench", "1")
                .environment(MapEnvironment::new())
                .sink(SinkConfig::Memory(memory.clone()))
                .usage_reports(false)
                .build()
                .unwrap();
            client.report_panics(CrashOptions::default());
            let t = Instant::now();
            let _ = std::panic::catch_unwind(|| fails(i));
            let took = t.elapsed().as_secs_f64() * 1e6;
            delivered += memory.events().len();
            took
        })
        .collect();

    // Repeats of one fingerprint under the default limits: suppressed, no wait.
    let limited = Client::builder("bench2", "1")
        .environment(MapEnvironment::new())
        .sink(SinkConfig::Memory(MemorySink::new()))
        .usage_reports(false)
        .build()
        .unwrap();
    limited.report_panics(CrashOptions::default());
    let _ = std::panic::catch_unwind(|| fails(0));
    let repeats: Vec<f64> = (0..N)
        .map(|i| {
            let t = Instant::now();
            let _ = std::panic::catch_unwind(|| fails(i));
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();

    // A crashing process and a dead endpoint.
    let (dead, opted_out) = if crash_app().exists() {
        let reserved = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", reserved.local_addr().unwrap());
        drop(reserved);
        let off: Vec<f64> = (0..5)
            .map(|_| run_crash_app(&endpoint, &[("DO_NOT_TRACK", "1")]).as_secs_f64() * 1e3)
            .collect();
        let on: Vec<f64> = (0..5)
            .map(|_| run_crash_app(&endpoint, &[]).as_secs_f64() * 1e3)
            .collect();
        (Some(median(on)), Some(median(off)))
    } else {
        (None, None)
    };

    println!("\nerror reports (medians)");
    println!("{:<70} {:>12}  beside it", "what", "ours");
    println!(
        "{:<70} {:>9.1} us  the same panic unreported {:.1} us ({} reports delivered)",
        "a panic until its report is delivered (memory sink, waits for it)",
        median(reported),
        median(quiet.clone()),
        delivered
    );
    println!(
        "{:<70} {:>9.1} us  the same panic unreported {:.1} us",
        "a repeated panic, rate-limited (never waits)",
        median(repeats),
        median(quiet)
    );
    match (dead, opted_out) {
        (Some(on), Some(off)) => println!(
            "{:<70} {:>9.1} ms  the same process opted out {:.1} ms (target: at most the 1 s deadline added)",
            "a crashing process with the endpoint down (deadline 1 s)", on, off
        ),
        _ => println!("crash_app example not built: `cargo build --examples` first"),
    }
}
