//! `telemetry`: one place for people to see and change what telemetry does on their
//! machine, whatever language the product is written in.
//!
//! ```text
//! $ telemetry status --profile chroma
//! $ telemetry disable --profile chroma
//! $ TELEMETRY_PROFILE=qdrant telemetry preview --event event.json
//! ```
//!
//! The command is this library's [`run`]: the `telemetry` binary calls it, and so does the
//! Python wheel's `telemetry` console script (through `telemetry_core._native.run_cli`), so
//! both give the same output and exit status from the same code. An integrator's own
//! command (`acme-telemetry status`) is [`run`] with the profile fixed.
//!
//! Only the requested output goes to stdout; notes and errors go to stderr. Exit status:
//! 0 success, 1 failure, 2 usage error (clap's own code for bad arguments).
//!
//! ```
//! let mut out = Vec::new();
//! let mut err = Vec::new();
//! let acme: telemetry_cli::Profile = "acme".parse().unwrap();
//! let code = telemetry_cli::run(["acme-telemetry", "--help"], Some(&acme), &mut out, &mut err);
//! assert_eq!(code, 0);
//! let help = String::from_utf8(out).unwrap();
//! assert!(help.contains("Usage: acme-telemetry"));
//! assert!(!help.contains("--profile"), "the profile is fixed");
//! ```

mod args;
mod commands;
mod status;

use std::ffi::OsString;
use std::io::{self, Write};

use clap::{CommandFactory, FromArgMatches};
use telemetry_core::env::ProcessEnvironment;
pub use telemetry_core::profile::Profile;

use args::{Cli, Command};

/// A failure that ends the command with exit status 1; the text is for people.
#[derive(Debug)]
pub(crate) struct Failure(pub String);

/// Where the command writes, and how its remarks name the command itself.
pub(crate) struct Io<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// The command as the person typed it: `telemetry`, `acme-telemetry`, `python -m
    /// telemetry_core`.
    program: String,
    /// The profile is the command's own (`acme-telemetry`): remarks leave out `--profile`.
    fixed: bool,
}

impl Io<'_> {
    /// Writes the command's output to stdout. A reader that went away (`telemetry id |
    /// head -c0`) is not an error worth reporting; anything else is.
    pub(crate) fn emit(&mut self, text: &str) -> Result<(), Failure> {
        match self
            .out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
        {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                Err(Failure(format!("cannot write the output: {e}")))
            }
            _ => Ok(()),
        }
    }

    /// A remark for people beside the output: stderr, so scripts reading stdout never
    /// see it.
    pub(crate) fn note(&mut self, text: &str) {
        let _ = writeln!(self.err, "note: {text}");
        let _ = self.err.flush();
    }

    /// How to run `command` for `profile`, as remarks suggest it: `telemetry disable
    /// --profile acme`, or `acme-telemetry disable` when the profile is the command's.
    pub(crate) fn suggest(&self, command: &str, profile: &Profile) -> String {
        if self.fixed {
            format!("{} {command}", self.program)
        } else {
            format!("{} {command} --profile {profile}", self.program)
        }
    }
}

/// Reads a profile as the bindings pass one: a name (`chroma`, `qdrant`, `evidently`, any
/// other product's name) or the JSON form of a generic profile
/// (`{"generic": {"name": "acme", "default_enabled": false}}`), so an integrator's opt-in
/// profile shows its real default.
///
/// ```
/// let p = telemetry_cli::parse_profile(r#"{"generic": {"name": "acme", "default_enabled": false}}"#).unwrap();
/// assert_eq!(p.name(), "acme");
/// assert!(!p.default_enabled());
/// assert_eq!(telemetry_cli::parse_profile("qdrant").unwrap().precision(), 6);
/// ```
pub fn parse_profile(spec: &str) -> Result<Profile, String> {
    if spec.trim_start().starts_with('{') {
        serde_json::from_str(spec).map_err(|e| format!("invalid profile {spec}: {e}"))
    } else {
        spec.parse()
            .map_err(|e: telemetry_core::profile::InvalidProfile| e.to_string())
    }
}

/// The program's name from `argv[0]`, as clap shows it: the file name of a path
/// (`/venv/bin/telemetry`), or the text (`python3 -m telemetry_core`).
fn program_name(arg0: Option<&OsString>) -> String {
    let Some(arg0) = arg0 else {
        return "telemetry".into();
    };
    let text = arg0.to_string_lossy();
    std::path::Path::new(&*text)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "telemetry".into())
}

/// Runs the command line `args` (`args[0]` is the program, as in `std::env::args_os`)
/// and returns its exit status: 0 success, 1 failure, 2 usage error.
///
/// `fixed_profile` makes the command one product's own (`acme-telemetry status`): no
/// `--profile` is needed or shown, `TELEMETRY_PROFILE` is not read, and a `--profile`
/// naming another product is a usage error. The command reads the process's environment
/// (HOME, the XDG directories, the products' switches) and, for `preview --event -`, its
/// stdin.
pub fn run<I, T>(
    args: I,
    fixed_profile: Option<&Profile>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let program = program_name(args.first());
    let mut io = Io {
        out: stdout,
        err: stderr,
        program: program.clone(),
        fixed: fixed_profile.is_some(),
    };
    let mut command = Cli::command()
        .name(program.clone())
        .bin_name(program.clone());
    if let Some(p) = fixed_profile {
        command = command
            .about(format!(
                "See and change what {p}'s anonymous usage telemetry does on this machine."
            ))
            .long_about(format!(
                "See and change what {p}'s anonymous usage telemetry does on this machine.\n\n\
                 The choice saved here is {p}'s, read on its next start. DO_NOT_TRACK=1 turns \
                 telemetry off for every product at once; the `telemetry` command shows and \
                 changes other products'."
            ))
            .mut_arg("profile", |a| a.hide(true).env(None));
    }
    let parsed = command
        .clone()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&mut io, &e),
    };
    let profile = match (fixed_profile, cli.profile) {
        (Some(fixed), Some(given)) if given.name() != fixed.name() => {
            let e = command.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{program} is {fixed}'s own command: --profile {given} does not apply \
                     (`telemetry --profile {given}` shows another product's telemetry)"
                ),
            );
            return clap_exit(&mut io, &e);
        }
        (Some(fixed), _) => fixed.clone(),
        (None, Some(given)) => given,
        (None, None) => {
            // clap cannot require a global argument; this is the same usage error, exit 2.
            let e = command.error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "no profile given: pass --profile PROFILE (chroma, qdrant, evidently or a \
                 product name) or set TELEMETRY_PROFILE",
            );
            return clap_exit(&mut io, &e);
        }
    };
    let env = ProcessEnvironment;
    let result = match cli.command {
        Command::Status(a) => status::run(&mut io, &profile, &env, &a),
        Command::Disable => commands::set_choice(&mut io, &profile, &env, false),
        Command::Enable => commands::set_choice(&mut io, &profile, &env, true),
        Command::Preview(a) => commands::preview(&mut io, &profile, &a),
        Command::Id => commands::id(&mut io, &profile, &env),
        Command::Reset => commands::reset(&mut io, &profile, &env),
    };
    match result {
        Ok(()) => 0,
        Err(Failure(message)) => {
            let _ = writeln!(io.err, "{program}: {message}");
            let _ = io.err.flush();
            1
        }
    }
}

/// What clap's `Error::exit` does, into our writers: help and version on stdout with
/// status 0, usage errors on stderr with status 2. Plain text, never colours: the same
/// bytes whoever runs the command and wherever its output goes.
fn clap_exit(io: &mut Io<'_>, e: &clap::Error) -> u8 {
    let text = e.render().to_string();
    let to = if e.use_stderr() {
        &mut *io.err
    } else {
        &mut *io.out
    };
    let _ = to.write_all(text.as_bytes());
    let _ = to.flush();
    u8::try_from(e.exit_code()).unwrap_or(2)
}
