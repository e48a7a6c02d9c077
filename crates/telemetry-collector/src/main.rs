//! `telemetry-collector`: run the collector, or read a collector's database.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use telemetry_collector::{Collector, EventFilter, Store};

/// A local PostHog-compatible receiver that stores usage events in SQLite.
///
/// Point a sender's PostHog host at the printed URL; events land in the
/// database file and can be read with `summary`, `events`, the HTTP API
/// (GET /api/summary, GET /api/events) or any SQLite client.
#[derive(Parser)]
#[command(name = "telemetry-collector", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive events until SIGINT or SIGTERM.
    ///
    /// Prints exactly one line on stdout, `listening on http://HOST:PORT`, once
    /// ready (use --listen 127.0.0.1:0 and read the port from it). Logs go to
    /// stderr (RUST_LOG=debug for one line per request). On SIGINT/SIGTERM it
    /// stops accepting, answers the requests in flight, and exits 0.
    Serve {
        /// Address to listen on (host:port; port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8765")]
        listen: String,
        /// SQLite database file, created if missing (":memory:" keeps nothing).
        #[arg(long, default_value = "telemetry-collector.db")]
        db: PathBuf,
    },
    /// Print the totals of a database as JSON (same as GET /api/summary).
    Summary {
        /// SQLite database file written by `serve`.
        #[arg(long, default_value = "telemetry-collector.db")]
        db: PathBuf,
    },
    /// Print the newest events of a database as a JSON array, oldest first.
    Events {
        /// SQLite database file written by `serve`.
        #[arg(long, default_value = "telemetry-collector.db")]
        db: PathBuf,
        /// Only events with this name.
        #[arg(long)]
        event: Option<String>,
        /// Only events of this instance.
        #[arg(long)]
        distinct_id: Option<String>,
        /// At most this many (the newest), up to 10000.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Stderr)
        .init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("telemetry-collector: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve { listen, db } => serve(&listen, db),
        Command::Summary { db } => {
            let summary = open_existing(&db)?.summary()?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::Events {
            db,
            event,
            distinct_id,
            limit,
        } => {
            let filter = EventFilter {
                event,
                distinct_id,
                limit: Some(limit),
            };
            let events = open_existing(&db)?.events(&filter)?;
            println!("{}", serde_json::to_string_pretty(&events)?);
            Ok(())
        }
    }
}

/// Opens a database that must already exist: reading a mistyped path should
/// say so, not create an empty database and report zero events.
fn open_existing(db: &PathBuf) -> Result<Store, Box<dyn std::error::Error>> {
    if !db.exists() {
        return Err(format!("no database at {}", db.display()).into());
    }
    Ok(Store::open(db)?)
}

fn serve(listen: &str, db: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    // Register before starting, so a signal that arrives right after the
    // "listening" line is handled, not fatal.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let collector = Collector::start(listen, &db)?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", collector.url())?;
        stdout.flush()?;
    }
    if let Some(signal) = signals.forever().next() {
        log::info!("signal {signal} received; shutting down");
    }
    collector.shutdown();
    Ok(())
}
