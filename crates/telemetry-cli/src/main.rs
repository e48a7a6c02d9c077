//! `telemetry`: one place for people to see and change what telemetry does on their
//! machine, whatever language the product is written in.
//!
//! ```text
//! $ telemetry status --profile chroma
//! $ telemetry disable --profile chroma
//! $ TELEMETRY_PROFILE=qdrant telemetry preview --event event.json
//! ```
//!
//! Only the requested output goes to stdout; notes and errors go to stderr. Exit status:
//! 0 success, 1 failure, 2 usage error (clap's own code for bad arguments).

mod args;
mod commands;
mod status;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use telemetry_core::env::ProcessEnvironment;

use args::{Cli, Command};

/// A failure that ends the command with exit status 1; the text is for people.
#[derive(Debug)]
pub struct Failure(pub String);

/// Writes the command's output to stdout. A reader that went away (`telemetry id | head
/// -c0`) is not an error worth reporting; anything else is.
pub fn emit(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Failure(format!("cannot write the output: {e}")))
        }
        _ => Ok(()),
    }
}

/// A remark for people beside the output: stderr, so scripts reading stdout never see it.
pub fn note(text: &str) {
    let _ = writeln!(io::stderr(), "note: {text}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(profile) = cli.profile else {
        // clap cannot require a global argument; this is the same usage error, exit 2.
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "no profile given: pass --profile PROFILE (chroma, qdrant, evidently or a \
                 product name) or set TELEMETRY_PROFILE",
            )
            .exit();
    };
    let env = ProcessEnvironment;
    let result = match cli.command {
        Command::Status(a) => status::run(&profile, &env, &a),
        Command::Disable => commands::set_choice(&profile, &env, false),
        Command::Enable => commands::set_choice(&profile, &env, true),
        Command::Preview(a) => commands::preview(&profile, &a),
        Command::Id => commands::id(&profile, &env),
        Command::Reset => commands::reset(&profile, &env),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            let _ = writeln!(io::stderr(), "telemetry: {message}");
            ExitCode::FAILURE
        }
    }
}
