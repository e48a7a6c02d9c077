//! `otlp-receiver`: the test receiver as a process, for Go and Python tests and the demo.
//!
//! ```text
//! otlp-receiver --ready-file /tmp/rx.json --jsonl /tmp/spans.jsonl --tree &
//! # /tmp/rx.json appears once both ports listen:
//! #   {"http": "127.0.0.1:40123", "grpc": "127.0.0.1:40124"}
//! curl -s http://127.0.0.1:40123/spans       # JSON array of received spans
//! curl -s http://127.0.0.1:40123/tree        # the text tree
//! curl -s -d '{"kind":"status","http_status":503,"retry_after_secs":1}' \
//!      http://127.0.0.1:40123/fault          # inject a fault
//! kill -TERM %1                              # prints the tree (--tree), exits 0
//! ```

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use otlp_receiver::{Options, Receiver};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// A test OTLP trace receiver: OTLP/HTTP (protobuf, JSON, gzip) and OTLP/gRPC on
/// loopback, decoded with the official opentelemetry-proto definitions. On the HTTP port
/// it also serves GET /spans (JSON), GET /tree (text), DELETE /spans and POST /fault
/// (e.g. {"kind":"status","http_status":503,"retry_after_secs":1,"requests":2},
/// {"kind":"delay","ms":3000}, {"kind":"garbage"}, {"kind":"none"}).
#[derive(Parser, Debug)]
#[command(name = "otlp-receiver", version)]
struct Args {
    /// OTLP/HTTP address (loopback only); default 127.0.0.1 with an OS-chosen port.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// OTLP/gRPC address (loopback only); default 127.0.0.1 with an OS-chosen port.
    #[arg(long, value_name = "ADDR")]
    grpc: Option<SocketAddr>,
    /// Once both ports listen, write {"http": "127.0.0.1:PORT", "grpc": "127.0.0.1:PORT"}
    /// here (atomically: the file never exists half-written).
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Append every received span here as one JSON line.
    #[arg(long, value_name = "PATH")]
    jsonl: Option<PathBuf>,
    /// On SIGTERM or SIGINT, print the tree of received traces on stdout before exiting.
    #[arg(long)]
    tree: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otlp-receiver: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> io::Result<()> {
    // Registered before the ready file exists: a SIGTERM sent the moment a test sees the
    // file must reach this handler, not the default action that kills without the tree.
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let receiver = Receiver::start(Options {
        http_addr: args.http,
        grpc_addr: args.grpc,
        jsonl: args.jsonl.clone(),
    })?;
    let ready = serde_json::json!({
        "http": receiver.http_addr().to_string(),
        "grpc": receiver.grpc_addr().to_string(),
    });
    if let Some(path) = &args.ready_file {
        write_atomically(path, format!("{ready}\n").as_bytes())?;
    }
    eprintln!(
        "otlp-receiver: OTLP/HTTP on {} (POST /v1/traces), OTLP/gRPC on {}",
        receiver.http_traces_url(),
        receiver.grpc_endpoint()
    );
    // Blocks until SIGTERM or SIGINT.
    let _ = signals.forever().next();
    if args.tree {
        let mut stdout = io::stdout().lock();
        stdout.write_all(receiver.tree().as_bytes())?;
        stdout.flush()?;
    }
    receiver.shutdown();
    Ok(())
}

fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}
