//! Consent: whether telemetry may run, and why.
//!
//! [`resolve`] reads every source a product's users already know — a setting in code,
//! the host's CLI flag, environment variables, YAML config keys, a `.env` file, the
//! user's persisted choice, `DO_NOT_TRACK`, library-vs-CLI mode — and applies one rule:
//! **off beats on; on beats the default.** The [`Decision`] names the source that decided,
//! lists every source with what it said, and carries warnings for values it could not
//! understand. Anything it cannot read or understand counts as "off": a typo in an
//! opt-out must never send data.
//!
//! Resolving never creates a file or directory, never panics and never fails.
//!
//! ```
//! use telemetry_core::consent::{self, ConsentInputs, SourceKind};
//! use telemetry_core::env::MapEnvironment;
//! use telemetry_core::profile::Profile;
//!
//! let env = MapEnvironment::new().with("ANONYMIZED_TELEMETRY", "False");
//! let inputs = ConsentInputs {
//!     explicit: Some(true),
//!     working_dir: Some(std::env::temp_dir()),
//!     ..ConsentInputs::default()
//! };
//! let decision = consent::resolve(&Profile::Chroma, &inputs, &env);
//! assert!(!decision.enabled); // the env var's "off" beats the code's "on"
//! assert_eq!(decision.decided_by.unwrap().kind, SourceKind::Env);
//! assert_eq!(consent::parse_bool(" YES "), Ok(Some(true)));
//! ```

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env::Environment;
use crate::profile::{Polarity, Profile};

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

/// The kind of a consent source, in the order sources are read and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// An explicit setting in code ([`ConsentInputs::explicit`]).
    Code,
    /// The host's command-line flag, e.g. Qdrant's `--disable-telemetry`.
    CliFlag,
    /// An environment variable, e.g. `ANONYMIZED_TELEMETRY`.
    Env,
    /// A key in a YAML config file, e.g. Qdrant's `telemetry_disabled`.
    ConfigFile,
    /// An environment switch set in a `.env` file in the working directory.
    Dotenv,
    /// The user's persisted choice (`telemetry enable` / `telemetry disable`).
    UserChoice,
    /// The Console Do Not Track convention, `DO_NOT_TRACK`.
    DoNotTrack,
    /// Library-vs-CLI mode, for profiles that allow telemetry only in a CLI.
    Mode,
    /// The profile's default, which decides only when no other source says anything.
    Default,
}

impl SourceKind {
    /// The snake_case name also used in JSON, e.g. `config_file`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Code => "code",
            SourceKind::CliFlag => "cli_flag",
            SourceKind::Env => "env",
            SourceKind::ConfigFile => "config_file",
            SourceKind::Dotenv => "dotenv",
            SourceKind::UserChoice => "user_choice",
            SourceKind::DoNotTrack => "do_not_track",
            SourceKind::Mode => "mode",
            SourceKind::Default => "default",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one source said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Says {
    /// Telemetry may run.
    On,
    /// Telemetry must not run.
    Off,
    /// The source is absent or empty.
    Unset,
}

impl fmt::Display for Says {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Says::On => "on",
            Says::Off => "off",
            Says::Unset => "unset",
        })
    }
}

/// The source that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedBy {
    /// Its kind.
    pub kind: SourceKind,
    /// Its name: the variable, the file path, `explicit setting`, or for the default the
    /// profile name.
    pub name: String,
    /// Its raw value as shown to people (long values are shortened), if it had one.
    pub value: Option<String>,
}

/// One source considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceReport {
    /// Its kind.
    pub kind: SourceKind,
    /// Its name: the variable, the file path, `explicit setting`, ...
    pub name: String,
    /// Its raw value as shown to people (long values are shortened); null when absent.
    pub value: Option<String>,
    /// What it said.
    pub says: Says,
}

/// The outcome of consent resolution, with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether telemetry may run.
    pub enabled: bool,
    /// The source that decided; [`resolve`] always fills it (with kind `default` when no
    /// source said anything), but a decision built elsewhere may leave it out.
    pub decided_by: Option<DecidedBy>,
    /// Every source read, in resolution order.
    pub sources: Vec<SourceReport>,
    /// Problems met while reading sources, for people.
    pub warnings: Vec<String>,
}

impl Decision {
    /// The decision as indented JSON (`telemetry status --json`).
    pub fn to_json_pretty(&self) -> String {
        // Serializing plain strings, bools and enums cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl Decision {
    /// The same text as `Display`, with some sources' verdicts worded by `shown`: where it
    /// returns text, that text replaces ": on/off/unset" for the source. `telemetry status`
    /// uses it for what it cannot see (the product's code and command line).
    ///
    /// ```
    /// use telemetry_core::consent::{resolve, ConsentInputs, SourceKind};
    /// use telemetry_core::{env::MapEnvironment, profile::Profile};
    /// let d = resolve(&Profile::Chroma, &ConsentInputs::default(), &MapEnvironment::new());
    /// let text = d
    ///     .display_with(|s| (s.kind == SourceKind::Code).then(|| "not visible here".into()))
    ///     .to_string();
    /// assert!(text.contains("explicit setting: not visible here"));
    /// ```
    pub fn display_with<'a>(
        &'a self,
        shown: impl Fn(&SourceReport) -> Option<String> + 'a,
    ) -> impl fmt::Display + 'a {
        DecisionText {
            decision: self,
            shown: Box::new(shown),
        }
    }
}

/// Words a source's verdict differently; see [`Decision::display_with`].
type SourceWording<'a> = Box<dyn Fn(&SourceReport) -> Option<String> + 'a>;

/// A decision rendered for people; see [`Decision::display_with`].
struct DecisionText<'a> {
    decision: &'a Decision,
    shown: SourceWording<'a>,
}

impl fmt::Display for Decision {
    /// For people: the verdict and who decided, one line per source, then warnings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        DecisionText {
            decision: self,
            shown: Box::new(|_| None),
        }
        .fmt(f)
    }
}

impl fmt::Display for DecisionText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.decision;
        write!(f, "telemetry is {}", if d.enabled { "on" } else { "off" })?;
        match &d.decided_by {
            // The default's value is the verdict itself; repeating it says nothing.
            Some(by) if by.kind == SourceKind::Default => {
                write!(f, ": decided by the default for {}", by.name)?
            }
            Some(by) => {
                write!(f, ": decided by {} {}", by.kind, by.name)?;
                if let Some(value) = &by.value {
                    write!(f, " = {value:?}")?;
                }
            }
            None => {}
        }
        for source in &d.sources {
            write!(f, "\n  {:<12} {}", source.kind.as_str(), source.name)?;
            if let Some(text) = (self.shown)(source) {
                write!(f, ": {text}")?;
                continue;
            }
            match &source.value {
                Some(value) if source.kind != SourceKind::Default => write!(f, " = {value:?}")?,
                _ => {}
            }
            write!(f, ": {}", source.says)?;
        }
        for warning in &d.warnings {
            write!(f, "\nwarning: {warning}")?;
        }
        Ok(())
    }
}

/// A value that is neither a true nor a false word (see [`parse_bool`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidBool(pub String);

impl fmt::Display for InvalidBool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unrecognized boolean {:?} (use 1/true/yes/on or 0/false/no/off)",
            shorten(&self.0)
        )
    }
}

impl std::error::Error for InvalidBool {}

/// The boolean rules every source and binding shares: `1 true yes on` are true and
/// `0 false no off` are false, case-insensitive and trimmed; an empty (or all-blank)
/// value is `Ok(None)`, meaning unset. Anything else is an error, which callers treat as
/// "off" with a warning.
///
/// ```
/// use telemetry_core::consent::parse_bool;
/// assert_eq!(parse_bool("False"), Ok(Some(false)));
/// assert_eq!(parse_bool("  "), Ok(None));
/// assert!(parse_bool("maybe").is_err());
/// ```
pub fn parse_bool(raw: &str) -> Result<Option<bool>, InvalidBool> {
    let word = raw.trim();
    if word.is_empty() {
        return Ok(None);
    }
    match word.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        _ => Err(InvalidBool(raw.to_string())),
    }
}

/// Longest raw value shown in reports and warnings, in characters: a 1 MB variable must
/// not become a 1 MB status line.
const SHOWN_CHARS: usize = 64;

/// A value as shown to people: at most [`SHOWN_CHARS`] characters, then "…".
fn shorten(raw: &str) -> String {
    match raw.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_string(),
    }
}

/// Largest config or `.env` file read; bigger ones are refused rather than parsed.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Largest user-choice file read: it holds one word.
const MAX_CHOICE_BYTES: u64 = 1024;

/// The outcome of reading a small file that may legitimately be missing.
pub(crate) enum Bounded {
    /// Nothing at the path (or a parent is not a directory).
    Missing,
    /// The whole content.
    Content(Vec<u8>),
    /// The file exists but cannot be used; the text completes "<path> ...".
    Problem(String),
}

/// Reads a regular file of at most `limit` bytes without ever blocking on a FIFO or
/// device, or loading a huge file into memory. Also used by the identity module.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Bounded {
    let missing = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        )
    };
    match fs::symlink_metadata(path) {
        Err(e) if missing(&e) => return Bounded::Missing,
        Err(e) => return Bounded::Problem(format!("cannot be read: {e}")),
        Ok(_) => {}
    }
    // Present but its target is gone: a broken setup, not an absent file.
    let meta = match fs::metadata(path) {
        Err(e) if missing(&e) => {
            return Bounded::Problem("is a symbolic link to nothing".to_string())
        }
        Err(e) => return Bounded::Problem(format!("cannot be read: {e}")),
        Ok(meta) => meta,
    };
    if meta.is_dir() {
        return Bounded::Problem("is a directory".to_string());
    }
    if !meta.is_file() {
        return Bounded::Problem("is not a regular file".to_string());
    }
    let too_big = || Bounded::Problem(format!("is larger than {limit} bytes"));
    if meta.len() > limit {
        return too_big();
    }
    let mut content = Vec::new();
    let read = fs::File::open(path).and_then(|file| file.take(limit + 1).read_to_end(&mut content));
    match read {
        Err(e) => Bounded::Problem(format!("cannot be read: {e}")),
        // It grew between the size check and the read.
        Ok(_) if content.len() as u64 > limit => too_big(),
        Ok(_) => Bounded::Content(content),
    }
}

/// What a boolean means for telemetry given the switch's polarity.
fn says_for(value: bool, polarity: Polarity) -> Says {
    match (value, polarity) {
        (true, Polarity::TrueEnables) | (false, Polarity::TrueDisables) => Says::On,
        (true, Polarity::TrueDisables) | (false, Polarity::TrueEnables) => Says::Off,
    }
}

/// Collects source reports and warnings while resolving.
struct Collector {
    sources: Vec<SourceReport>,
    warnings: Vec<String>,
}

impl Collector {
    fn add(
        &mut self,
        kind: SourceKind,
        name: impl Into<String>,
        value: Option<String>,
        says: Says,
    ) {
        self.sources.push(SourceReport {
            kind,
            name: name.into(),
            value,
            says,
        });
    }

    /// A textual boolean source (env var, `.env` entry, YAML string).
    fn boolean(&mut self, kind: SourceKind, name: &str, raw: &str, polarity: Polarity) {
        let says = match parse_bool(raw) {
            Ok(None) => Says::Unset,
            Ok(Some(value)) => says_for(value, polarity),
            Err(_) => {
                self.warnings.push(format!(
                    "{name} has an unrecognized value {:?}: telemetry is off",
                    shorten(raw)
                ));
                Says::Off
            }
        };
        self.add(kind, name, Some(shorten(raw)), says);
    }

    /// A source that exists but cannot be used: it says off, and people are told why.
    fn broken(&mut self, kind: SourceKind, name: &str, value: Option<String>, problem: &str) {
        self.warnings
            .push(format!("{name} {problem}: telemetry is off"));
        self.add(kind, name, value, Says::Off);
    }
}

/// Resolves whether telemetry may run. Never panics, never fails: problems become warnings
/// and an "off".
///
/// Sources are read and reported in this order: code, CLI flag, environment variables,
/// config files, `.env`, the user's choice, `DO_NOT_TRACK`, mode, default. The first
/// source that says off decides; failing that the first that says on; failing that the
/// profile's default (reported last, with kind `default`).
pub fn resolve(profile: &Profile, inputs: &ConsentInputs, env: &dyn Environment) -> Decision {
    let mut c = Collector {
        sources: Vec::new(),
        warnings: Vec::new(),
    };

    let code = inputs
        .explicit
        .map(|on| if on { Says::On } else { Says::Off });
    c.add(
        SourceKind::Code,
        "explicit setting",
        inputs.explicit.map(|on| on.to_string()),
        code.unwrap_or(Says::Unset),
    );

    if let Some(flag) = profile.cli_flag() {
        read_cli_flag(&mut c, flag, &inputs.args);
    }

    for switch in profile.env_switches() {
        read_env_var(&mut c, env, &switch.name, switch.polarity);
    }

    let working_dir = match &inputs.working_dir {
        Some(dir) => Some(dir.clone()),
        None => match std::env::current_dir() {
            Ok(dir) => Some(dir),
            Err(e) => {
                c.warnings.push(format!(
                    "the working directory is unknown ({e}): config files and .env were not read"
                ));
                None
            }
        },
    };
    let config_dir = inputs.config_dir.clone().or_else(|| working_dir.clone());

    for switch in profile.config_switches() {
        let path = config_dir.as_deref().map(|dir| dir.join(switch.file));
        read_config_key(
            &mut c,
            path.as_deref(),
            switch.file,
            switch.key,
            switch.polarity,
        );
    }

    if profile.reads_dotenv() {
        read_dotenv(&mut c, profile, working_dir.as_deref());
    }

    read_choice_source(&mut c, profile, env);
    read_do_not_track(&mut c, env);

    if profile.cli_mode_only() {
        // Library mode forbids telemetry; CLI mode only permits it, so it says nothing
        // and leaves the decision to the other sources and the default.
        let (value, says) = match inputs.mode {
            RunMode::Library => ("library", Says::Off),
            RunMode::Cli => ("cli", Says::Unset),
        };
        c.add(SourceKind::Mode, "run mode", Some(value.to_string()), says);
    }

    let decisive = |wanted: Says| c.sources.iter().find(|s| s.says == wanted).cloned();
    let (enabled, decider) = if let Some(off) = decisive(Says::Off) {
        (false, off)
    } else if let Some(on) = decisive(Says::On) {
        (true, on)
    } else {
        let on = profile.default_enabled();
        let default = SourceReport {
            kind: SourceKind::Default,
            name: profile.name().to_string(),
            value: Some(if on { "on" } else { "off" }.to_string()),
            says: if on { Says::On } else { Says::Off },
        };
        (on, default)
    };

    // The default is reported even when it did not decide, so people see what it is; it
    // is added only now because an opt-in default "off" must not veto a source's "on".
    let default_on = profile.default_enabled();
    c.add(
        SourceKind::Default,
        profile.name(),
        Some(if default_on { "on" } else { "off" }.to_string()),
        if default_on { Says::On } else { Says::Off },
    );

    Decision {
        enabled,
        decided_by: Some(DecidedBy {
            kind: decider.kind,
            name: decider.name,
            value: decider.value,
        }),
        sources: c.sources,
        warnings: c.warnings,
    }
}

/// What one command-line argument says about `flag`, or `None` when it is another
/// argument. The bare flag and `=true` disable; `=false` enables; anything else is an
/// unrecognized value.
fn flag_says(arg: &str, flag: &str) -> Option<Result<Says, InvalidBool>> {
    let rest = arg.strip_prefix(flag)?;
    if rest.is_empty() {
        return Some(Ok(Says::Off));
    }
    let value = rest.strip_prefix('=')?;
    Some(match parse_bool(value) {
        // `--disable-telemetry=` is odd but means what the bare flag means.
        Ok(None) | Ok(Some(true)) => Ok(Says::Off),
        Ok(Some(false)) => Ok(Says::On),
        Err(e) => Err(e),
    })
}

/// The arguments before a `--` terminator: anything after it belongs to someone else.
fn own_args<S: AsRef<str>>(args: &[S]) -> impl Iterator<Item = &str> {
    args.iter()
        .map(AsRef::as_ref)
        .take_while(|arg| *arg != "--")
}

fn read_cli_flag(c: &mut Collector, flag: &str, args: &[String]) {
    let mut first: Option<(&str, Says)> = None;
    for arg in own_args(args) {
        let says = match flag_says(arg, flag) {
            None => continue,
            Some(Ok(says)) => says,
            Some(Err(_)) => {
                c.warnings.push(format!(
                    "{flag} has an unrecognized value {:?}: telemetry is off",
                    shorten(arg)
                ));
                Says::Off
            }
        };
        // An "off" anywhere on the command line wins over an earlier "on".
        if first.is_none() || says == Says::Off {
            first = Some((arg, says));
        }
        if says == Says::Off {
            break;
        }
    }
    match first {
        Some((arg, says)) => c.add(SourceKind::CliFlag, flag, Some(shorten(arg)), says),
        None => c.add(SourceKind::CliFlag, flag, None, Says::Unset),
    }
}

/// Whether the profile's CLI flag (e.g. `--disable-telemetry`) is among `args`, as the
/// bare flag or `--disable-telemetry=<value>` with any value other than a false word
/// (an unrecognized value disables, as everywhere). Arguments after `--` are not looked
/// at; profiles without a flag always give false.
pub fn cli_flag_present<S: AsRef<str>>(profile: &Profile, args: &[S]) -> bool {
    let Some(flag) = profile.cli_flag() else {
        return false;
    };
    own_args(args).any(|arg| matches!(flag_says(arg, flag), Some(Ok(Says::Off)) | Some(Err(_))))
}

fn read_env_var(c: &mut Collector, env: &dyn Environment, name: &str, polarity: Polarity) {
    match env.var_os(name).map(OsString::into_string) {
        None => c.add(SourceKind::Env, name, None, Says::Unset),
        Some(Ok(raw)) => c.boolean(SourceKind::Env, name, &raw, polarity),
        Some(Err(raw)) => {
            let shown = shorten(&raw.to_string_lossy());
            let problem = format!("is not valid UTF-8 ({shown:?})");
            c.broken(SourceKind::Env, name, Some(shown), &problem);
        }
    }
}

/// A YAML type's name, for warnings about a key of the wrong type.
fn yaml_type(value: &serde_norway::Value) -> &'static str {
    use serde_norway::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn read_config_key(
    c: &mut Collector,
    path: Option<&Path>,
    file: &str,
    key: &str,
    polarity: Polarity,
) {
    let Some(path) = path else {
        c.add(SourceKind::ConfigFile, file, None, Says::Unset);
        return;
    };
    let name = path.display().to_string();
    let content = match read_bounded(path, MAX_CONFIG_BYTES) {
        Bounded::Missing => return c.add(SourceKind::ConfigFile, name, None, Says::Unset),
        Bounded::Problem(problem) => {
            return c.broken(SourceKind::ConfigFile, &name, None, &problem)
        }
        Bounded::Content(content) => content,
    };
    // serde_norway refuses alias expansion beyond a fixed multiple of the document's
    // size, so a "billion laughs" file fails fast here instead of exhausting memory.
    let document: serde_norway::Value = match serde_norway::from_slice(&content) {
        Ok(document) => document,
        Err(e) => {
            let problem = format!("is not valid YAML ({})", shorten_error(&e.to_string()));
            return c.broken(SourceKind::ConfigFile, &name, None, &problem);
        }
    };
    let mapping = match &document {
        serde_norway::Value::Mapping(mapping) => mapping,
        // An empty file is an empty config.
        serde_norway::Value::Null => return c.add(SourceKind::ConfigFile, name, None, Says::Unset),
        other => {
            let problem = format!("has {} at the top level, not a mapping", yaml_type(other));
            return c.broken(SourceKind::ConfigFile, &name, None, &problem);
        }
    };
    let keyed = format!("{name}: {key}");
    match mapping.get(key) {
        None | Some(serde_norway::Value::Null) => {
            c.add(SourceKind::ConfigFile, name, None, Says::Unset)
        }
        Some(serde_norway::Value::Bool(value)) => c.add(
            SourceKind::ConfigFile,
            name,
            Some(value.to_string()),
            says_for(*value, polarity),
        ),
        Some(serde_norway::Value::String(raw)) => match parse_bool(raw) {
            Ok(None) => c.add(
                SourceKind::ConfigFile,
                name,
                Some(shorten(raw)),
                Says::Unset,
            ),
            Ok(Some(value)) => c.add(
                SourceKind::ConfigFile,
                name,
                Some(shorten(raw)),
                says_for(value, polarity),
            ),
            Err(_) => {
                c.warnings.push(format!(
                    "{keyed} has an unrecognized value {:?}: telemetry is off",
                    shorten(raw)
                ));
                c.add(SourceKind::ConfigFile, name, Some(shorten(raw)), Says::Off);
            }
        },
        Some(other) => {
            c.warnings.push(format!(
                "{keyed} is {}, not a boolean: telemetry is off",
                yaml_type(other)
            ));
            c.add(SourceKind::ConfigFile, name, None, Says::Off);
        }
    }
}

/// Parser messages can quote the input; keep them short like raw values.
fn shorten_error(message: &str) -> String {
    match message.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}

fn read_dotenv(c: &mut Collector, profile: &Profile, working_dir: Option<&Path>) {
    let switches = profile.env_switches();
    let name_of = |var: &str| format!(".env: {var}");
    let unset_all = |c: &mut Collector| {
        for switch in &switches {
            c.add(SourceKind::Dotenv, name_of(&switch.name), None, Says::Unset);
        }
    };
    let Some(dir) = working_dir else {
        return unset_all(c);
    };
    let path = dir.join(".env");
    let shown_path = path.display().to_string();
    let content = match read_bounded(&path, MAX_CONFIG_BYTES) {
        Bounded::Missing => return unset_all(c),
        Bounded::Problem(problem) => {
            return c.broken(SourceKind::Dotenv, &shown_path, None, &problem)
        }
        Bounded::Content(content) => content,
    };
    let text = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&content);
    // The iterator API parses without touching the process environment.
    let mut values: Vec<Option<String>> = vec![None; switches.len()];
    for item in dotenvy::from_read_iter(text) {
        match item {
            Ok((key, value)) => {
                if let Some(i) = switches.iter().position(|s| s.name == key) {
                    // Later lines override earlier ones, as in python-dotenv.
                    values[i] = Some(value);
                }
            }
            Err(e) => {
                // Never quote the line: .env files hold secrets such as API keys.
                let problem = match e {
                    dotenvy::Error::LineParse(line, _) => {
                        let at = String::from_utf8_lossy(text)
                            .find(line.trim_end())
                            .map(|pos| text[..pos].iter().filter(|&&b| b == b'\n').count() + 1);
                        match at {
                            Some(n) => format!("has a malformed line (line {n})"),
                            None => "has a malformed line".to_string(),
                        }
                    }
                    dotenvy::Error::Io(e) => format!("cannot be read: {e}"),
                    other => format!("cannot be parsed: {}", shorten_error(&other.to_string())),
                };
                return c.broken(SourceKind::Dotenv, &shown_path, None, &problem);
            }
        }
    }
    for (switch, value) in switches.iter().zip(values) {
        match value {
            Some(raw) => c.boolean(
                SourceKind::Dotenv,
                &name_of(&switch.name),
                &raw,
                switch.polarity,
            ),
            None => c.add(SourceKind::Dotenv, name_of(&switch.name), None, Says::Unset),
        }
    }
}

fn read_choice_source(c: &mut Collector, profile: &Profile, env: &dyn Environment) {
    let Some(path) = user_choice_path(profile, env) else {
        return c.add(
            SourceKind::UserChoice,
            "user choice (no home directory)",
            None,
            Says::Unset,
        );
    };
    let name = path.display().to_string();
    match read_choice_file(&path) {
        Ok(None) => c.add(SourceKind::UserChoice, name, None, Says::Unset),
        Ok(Some(on)) => c.add(
            SourceKind::UserChoice,
            name,
            Some(choice_word(on).to_string()),
            if on { Says::On } else { Says::Off },
        ),
        Err(ChoiceError::Unreadable(problem)) => {
            c.broken(SourceKind::UserChoice, &name, None, &problem)
        }
        Err(ChoiceError::Garbage(raw)) => {
            let problem = format!("holds {:?}, not \"enabled\" or \"disabled\"", shorten(&raw));
            c.broken(SourceKind::UserChoice, &name, Some(shorten(&raw)), &problem);
        }
    }
}

fn read_do_not_track(c: &mut Collector, env: &dyn Environment) {
    const NAME: &str = "DO_NOT_TRACK";
    let Some(raw) = env.var_os(NAME) else {
        return c.add(SourceKind::DoNotTrack, NAME, None, Says::Unset);
    };
    // The convention: any value but empty, 0 or false asks not to be tracked, so an odd
    // value is not a mistake worth a warning.
    let raw = raw.to_string_lossy();
    let word = raw.trim().to_ascii_lowercase();
    let says = if word.is_empty() || word == "0" || word == "false" {
        Says::Unset
    } else {
        Says::Off
    };
    c.add(SourceKind::DoNotTrack, NAME, Some(shorten(&raw)), says);
}

/// The file name of the persisted choice inside [`Profile::state_dir`].
const CHOICE_FILE: &str = "telemetry_choice";

fn choice_word(enabled: bool) -> &'static str {
    if enabled {
        "enabled"
    } else {
        "disabled"
    }
}

enum ChoiceError {
    /// The text completes "<path> ...".
    Unreadable(String),
    /// The content, which is neither word.
    Garbage(String),
}

fn read_choice_file(path: &Path) -> Result<Option<bool>, ChoiceError> {
    let content = match read_bounded(path, MAX_CHOICE_BYTES) {
        Bounded::Missing => return Ok(None),
        Bounded::Problem(problem) => return Err(ChoiceError::Unreadable(problem)),
        Bounded::Content(content) => content,
    };
    let text = String::from_utf8_lossy(&content);
    match text.trim().to_ascii_lowercase().as_str() {
        "enabled" => Ok(Some(true)),
        "disabled" => Ok(Some(false)),
        _ => Err(ChoiceError::Garbage(text.into_owned())),
    }
}

/// Where the user's persisted choice lives for this profile:
/// `<state dir>/telemetry_choice`; `None` when no home directory is known.
pub fn user_choice_path(profile: &Profile, env: &dyn Environment) -> Option<PathBuf> {
    Some(profile.state_dir(env)?.join(CHOICE_FILE))
}

/// The user's persisted choice: `Ok(None)` when none was made, `Ok(Some(enabled))`
/// otherwise. A file that cannot be read or holds neither `enabled` nor `disabled` is an
/// error (which [`resolve`] treats as "off").
pub fn read_user_choice(profile: &Profile, env: &dyn Environment) -> io::Result<Option<bool>> {
    let Some(path) = user_choice_path(profile, env) else {
        return Ok(None);
    };
    read_choice_file(&path).map_err(|e| match e {
        ChoiceError::Unreadable(problem) => {
            io::Error::other(format!("{} {problem}", path.display()))
        }
        ChoiceError::Garbage(raw) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} holds {:?}, not \"enabled\" or \"disabled\"",
                path.display(),
                shorten(&raw)
            ),
        ),
    })
}

fn no_home() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "no home directory is known (set HOME or XDG_STATE_HOME)",
    )
}

/// Persists the user's choice (what `telemetry enable/disable` writes) and returns the
/// file's path. The file is written to a temporary name and renamed into place, so a
/// concurrent reader sees the old choice or the new one, never half a file. A state
/// directory that cannot be created (a file in the way, a dangling link, a read-only
/// disk) is an error.
pub fn write_user_choice(
    profile: &Profile,
    env: &dyn Environment,
    enabled: bool,
) -> io::Result<PathBuf> {
    let path = user_choice_path(profile, env).ok_or_else(no_home)?;
    let dir = path.parent().ok_or_else(no_home)?;
    fs::create_dir_all(dir)?;
    let tmp = dir.join(temp_file_name(CHOICE_FILE));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let written = file
        .write_all(choice_word(enabled).as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, &path));
    if written.is_err() {
        // Only this call's own temporary file, which it created above.
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| path)
}

/// Deletes the user's persisted choice (`telemetry reset`); true when there was one.
pub fn clear_user_choice(profile: &Profile, env: &dyn Environment) -> io::Result<bool> {
    let Some(path) = user_choice_path(profile, env) else {
        return Ok(false);
    };
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A name for a temporary file beside `final_name` that no other thread or live process
/// picks: the process id and a per-process counter make it unique, and callers still
/// create it with `create_new` so a stale leftover is never reused. Also used by the
/// identity module.
pub(crate) fn temp_file_name(final_name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        ".{final_name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
