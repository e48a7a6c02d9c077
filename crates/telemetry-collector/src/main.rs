//! `telemetry-collector`: run the collector, or read a collector's database.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::time::Duration;

use telemetry_collector::sample_data::{self, SampleSpec};
use telemetry_collector::store::is_postgres_url;
use telemetry_collector::{Collector, CollectorConfig, EventFilter, Rate, Store};

/// A PostHog-compatible ingest server storing usage events in SQLite or PostgreSQL.
///
/// Point a sender's PostHog host at the printed URL; events land in the
/// database and can be read with `summary`, `events`, the HTTP API
/// (GET /api/summary, GET /api/events) or any SQLite/PostgreSQL client.
#[derive(Parser)]
#[command(name = "telemetry-collector", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `serve`'s options.
#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (host:port; port 0 picks a free port). Beyond
    /// loopback (e.g. 0.0.0.0:8765) an admin token is required.
    #[arg(long, default_value = "127.0.0.1:8765")]
    listen: String,
    /// SQLite database file, created if missing (":memory:" keeps nothing), or a
    /// PostgreSQL URL (postgres://user@host/dbname) shared by several collectors.
    #[arg(long, default_value = "telemetry-collector.db")]
    db: PathBuf,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// File holding the admin token that /api/* requires as `Authorization:
    /// Bearer <token>` (or set TELEMETRY_COLLECTOR_ADMIN_TOKEN). Not an argument
    /// of its own, so it does not show in `ps`.
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// Accept only this project API key from senders (repeat for several);
    /// others get 401. Default: any key.
    #[arg(long = "api-key")]
    api_keys: Vec<String>,
    /// Requests per second one source address may send (burst: two seconds'
    /// worth); 429 with Retry-After beyond. Behind a load balancer every request
    /// comes from its address, so this is off by default.
    #[arg(long)]
    rate_per_address: Option<u32>,
    /// Events per second one project API key may send (burst: two seconds' worth).
    #[arg(long)]
    rate_per_key: Option<u32>,
    /// Delete events received more than this many days ago (0 keeps everything).
    #[arg(long, default_value_t = 365)]
    retention_days: u64,
    /// Tokio worker threads serving HTTP.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Receive events until SIGINT or SIGTERM.
    ///
    /// Prints exactly one line on stdout, `listening on http://HOST:PORT`, once
    /// ready (use --listen 127.0.0.1:0 and read the port from it). Logs go to
    /// stderr (RUST_LOG=debug for one line per request). On SIGINT/SIGTERM it
    /// stops accepting, answers the requests in flight, and exits 0.
    Serve(ServeArgs),
    /// Print the totals of a database as JSON (same as GET /api/summary).
    Summary {
        /// Database written by `serve`: a SQLite file or a postgres:// URL.
        #[arg(long, default_value = "telemetry-collector.db")]
        db: PathBuf,
    },
    /// Print the newest events of a database as a JSON array, oldest first.
    Events {
        /// Database written by `serve`: a SQLite file or a postgres:// URL.
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
    /// Fill a database with a generated, realistic data set (three products,
    /// their versions and environments, feature events, usage reports, crashes)
    /// for trying the dashboard; prints what it stored as one JSON line. Each
    /// event is stored as received a moment after its timestamp, so `serve`'s
    /// retention (--retention-days) treats it as it would real data.
    SampleData {
        /// SQLite file (created if missing) or postgres:// URL.
        #[arg(long)]
        db: PathBuf,
        /// Events to generate.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Seed: the same seed and end day give the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Days the events spread over.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Last day, YYYY-MM-DD (default: today, UTC).
        #[arg(long)]
        end: Option<String>,
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
        Command::Serve(args) => serve(args),
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
        Command::SampleData {
            db,
            events,
            seed,
            days,
            end,
        } => {
            let end = end.unwrap_or_else(|| {
                telemetry_collector::stats::format_day(time::OffsetDateTime::now_utc().date())
            });
            let spec = SampleSpec {
                events,
                seed,
                days,
                end,
            };
            let started = std::time::Instant::now();
            let filled = sample_data::fill(&Store::open(&db)?, &spec)?;
            let mut line = serde_json::to_value(&filled)?;
            line["seconds"] = started.elapsed().as_secs_f64().into();
            println!("{line}");
            Ok(())
        }
    }
}

/// Opens a database that must already exist: reading a mistyped path should
/// say so, not create an empty database and report zero events.
fn open_existing(db: &PathBuf) -> Result<Store, Box<dyn std::error::Error>> {
    if !is_postgres_url(&db.to_string_lossy()) && !db.exists() {
        return Err(format!("no database at {}", db.display()).into());
    }
    Ok(Store::open(db)?)
}

fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    // Register before starting, so a signal that arrives right after the
    // "listening" line is handled, not fatal.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let db_text = args.db.to_string_lossy();
    if !is_postgres_url(&db_text) && db_text != ":memory:" {
        if let Some(dir) = args.db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    let admin_token = match &args.admin_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("admin token file {}: {e}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("TELEMETRY_COLLECTOR_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.trim().to_owned()),
    };
    raise_open_file_limit();
    let config = CollectorConfig {
        listen: args.listen,
        db: args.db,
        tls: args.tls_cert.zip(args.tls_key),
        admin_token,
        api_keys: (!args.api_keys.is_empty()).then_some(args.api_keys),
        rate_per_address: args.rate_per_address.map(Rate::per_second),
        rate_per_key: args.rate_per_key.map(Rate::per_second),
        retention: (args.retention_days > 0)
            .then(|| Duration::from_secs(args.retention_days.saturating_mul(86_400))),
        worker_threads: args.workers,
        ..CollectorConfig::default()
    };
    let collector = Collector::builder().config(config).start()?;
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

/// Lifts the soft open-file limit to the hard one: each connection is a file
/// descriptor, and the usual soft default (1024) is below the server's
/// connection limit.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
