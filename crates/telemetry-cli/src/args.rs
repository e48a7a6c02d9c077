//! The command line, declared with clap's derive: each command's `--help` comes from the
//! doc comments below, and usage errors exit with status 2 as clap does by default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use telemetry_core::consent::RunMode;
use telemetry_core::profile::Profile;

/// Printed under every `--help`, so the exit codes are documented where people look.
const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  failure (a file that cannot be written, no install id to print, an invalid event)
  2  usage error (unknown command or flag, bad value, no profile)";

/// The product whose telemetry to show or change, given to every command.
const PROFILE_HELP: &str = "\
Which product's telemetry: chroma, qdrant, evidently, or any other product's name \
(a generic profile with <NAME>_TELEMETRY_DISABLED). Required, from this flag or \
TELEMETRY_PROFILE: choices are per product, and guessing one could leave the product \
you meant unchanged.";

/// See and change what anonymous usage telemetry does on this machine.
///
/// Products built on telemetry-core (Chroma-, Qdrant- and Evidently-style) read the choice
/// saved here on their next start, whatever their language (Rust, Go, Python). DO_NOT_TRACK=1
/// turns telemetry off for every product at once.
#[derive(Debug, Parser)]
#[command(name = "telemetry", version, after_help = EXIT_STATUS)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,

    #[arg(long, short = 'p', global = true, env = "TELEMETRY_PROFILE",
          value_name = "PROFILE", help = PROFILE_HELP, value_parser = parse_profile)]
    pub profile: Option<Profile>,
}

fn parse_profile(raw: &str) -> Result<Profile, String> {
    raw.parse()
        .map_err(|e: telemetry_core::profile::InvalidProfile| e.to_string())
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Whether telemetry is on, which source decided and what every source says; the
    /// install id, endpoint and state directory; what is collected and what never is.
    ///
    /// Reading the status never creates a file.
    #[command(after_help = EXIT_STATUS)]
    Status(StatusArgs),

    /// Turn telemetry off for the product: saves your choice, which every client
    /// (Rust, Go, Python) honours from its next start. Off beats every "on".
    #[command(after_help = EXIT_STATUS)]
    Disable,

    /// Turn telemetry back on for the product (saves your choice). Any other source that
    /// says off, such as DO_NOT_TRACK, still wins; the command says so.
    #[command(after_help = EXIT_STATUS)]
    Enable,

    /// Print exactly what would be sent for an event — anonymized, with its context — as
    /// JSON, without sending anything. Uses this install's id and hashing secret when they
    /// exist, and creates none.
    #[command(after_help = EXIT_STATUS)]
    Preview(PreviewArgs),

    /// Print the install id to quote in a request to delete data sent from this install.
    /// Prints nothing (exit status 1) when no id is stored; creates none.
    #[command(after_help = EXIT_STATUS)]
    Id,

    /// Delete the install id and its hashing secret; the next enabled run makes new ones.
    /// Prints the deleted id, to quote in a deletion request. Your on/off choice is kept.
    #[command(after_help = EXIT_STATUS)]
    Reset,
}

/// Run mode as a flag value; the core's [`RunMode`] has no clap derive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The product runs as a command-line program.
    Cli,
    /// The product is imported by another program.
    Library,
}

impl From<Mode> for RunMode {
    fn from(mode: Mode) -> RunMode {
        match mode {
            Mode::Cli => RunMode::Cli,
            Mode::Library => RunMode::Library,
        }
    }
}

/// `telemetry status` options.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object: the decision's keys (enabled, decided_by, sources, warnings)
    /// and profile, install_id, id_file, id_storage, endpoint, state_dir, notice_shown,
    /// notice_marker, collected, never_collected. Sources this command cannot see (the
    /// product's code and command line) say "not_visible", with a note.
    #[arg(long)]
    pub json: bool,

    /// The endpoint to report. The product configures where it sends; this command cannot
    /// know it, so without this flag (or TELEMETRY_ENDPOINT) it says "not configured here".
    #[arg(long, env = "TELEMETRY_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,

    /// How the product runs. Matters only for profiles that send only from a CLI
    /// (evidently); the default shows the case in which they may send.
    #[arg(long, value_enum, default_value_t = Mode::Cli)]
    pub mode: Mode,
}

/// `telemetry preview` options.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The event as JSON, from FILE or `-` for stdin:
    /// {"event": "name", "properties": {...}, "kinds": {"p": "safe"|"hashed"|"exact"|"number"|"text"|"dropped"}}.
    /// Without it, the product's own sample events are shown when it installed them
    /// (telemetry-core/<profile>/events.json under $XDG_DATA_HOME or $XDG_DATA_DIRS),
    /// otherwise a generic example of each kind of anonymization.
    #[arg(long, value_name = "FILE|-", conflicts_with = "samples")]
    pub event: Option<PathBuf>,

    /// A sample file to show instead of the installed one:
    /// {"product", "version", "runtime", "runtime_version", "events": [event, ...]}.
    #[arg(long, value_name = "FILE")]
    pub samples: Option<PathBuf>,

    /// The product name sent as context (default: the sample file's, else the profile's name).
    #[arg(long, value_name = "NAME")]
    pub product: Option<String>,

    /// The product version sent as context (default: the sample file's, else "unknown").
    #[arg(long, value_name = "VERSION")]
    pub product_version: Option<String>,
}
