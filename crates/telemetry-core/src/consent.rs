//! CONTRACT STUB — being implemented by a helper; signatures are fixed.
#![allow(missing_docs)] // stub only: the real module documents everything
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::env::Environment;
use crate::profile::Profile;

/// Whether the host runs as a command-line program or is used as a library.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Imported by another program (the default).
    #[default]
    Library,
    /// Run as a CLI by a person.
    Cli,
}

/// What the host knows that the environment does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentInputs {
    /// An explicit setting in code, e.g. `Settings(anonymized_telemetry=False)`.
    pub explicit: Option<bool>,
    /// The host's command-line arguments, passed through (searched for the profile's flag).
    pub args: Vec<String>,
    /// Base directory of config files such as `config/config.yaml`; default the working dir.
    pub config_dir: Option<PathBuf>,
    /// Directory holding `.env`; default the process's working directory.
    pub working_dir: Option<PathBuf>,
    /// CLI or library.
    pub mode: RunMode,
}

/// The kind of a consent source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Code,
    CliFlag,
    Env,
    ConfigFile,
    Dotenv,
    UserChoice,
    DoNotTrack,
    Mode,
    Default,
}

/// What one source said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Says {
    On,
    Off,
    Unset,
}

/// The source that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedBy {
    pub kind: SourceKind,
    pub name: String,
    pub value: Option<String>,
}

/// One source considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceReport {
    pub kind: SourceKind,
    pub name: String,
    pub value: Option<String>,
    pub says: Says,
}

/// The outcome of consent resolution, with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub enabled: bool,
    pub decided_by: Option<DecidedBy>,
    pub sources: Vec<SourceReport>,
    pub warnings: Vec<String>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "telemetry is {}", if self.enabled { "on" } else { "off" })
    }
}

/// Resolves whether telemetry may run. Never panics, never fails: problems become warnings
/// and an "off".
pub fn resolve(_profile: &Profile, _inputs: &ConsentInputs, _env: &dyn Environment) -> Decision {
    unimplemented!("consent::resolve")
}

/// Whether the profile's CLI flag (e.g. `--disable-telemetry`) is among `args`.
pub fn cli_flag_present<S: AsRef<str>>(_profile: &Profile, _args: &[S]) -> bool {
    unimplemented!()
}

/// Where the user's persisted choice lives for this profile.
pub fn user_choice_path(_profile: &Profile, _env: &dyn Environment) -> Option<PathBuf> {
    unimplemented!()
}

/// Persists the user's choice (what `telemetry enable/disable` writes).
pub fn write_user_choice(
    _profile: &Profile,
    _env: &dyn Environment,
    _enabled: bool,
) -> std::io::Result<PathBuf> {
    unimplemented!()
}
