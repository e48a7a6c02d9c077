//! The `telemetry` binary: [`telemetry_cli::run`] on the process's arguments and streams.

use std::io;
use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(telemetry_cli::run(
        std::env::args_os(),
        None,
        &mut io::stdout(),
        &mut io::stderr(),
    ))
}
