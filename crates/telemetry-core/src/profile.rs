//! Profiles: each product's telemetry conventions (switch names, defaults, id storage).
//!
//! A profile reproduces what users of that product already know, so an existing
//! `ANONYMIZED_TELEMETRY=False` or `QDRANT__TELEMETRY_DISABLED=true` keeps working.
//!
//! ```
//! use telemetry_core::profile::Profile;
//! let p: Profile = "qdrant".parse().unwrap();
//! assert_eq!(p.precision(), 6);
//! assert_eq!(p.cli_flag(), Some("--disable-telemetry"));
//! let g: Profile = "my-tool".parse().unwrap();
//! assert_eq!(g.env_switches()[0].name, "MY_TOOL_TELEMETRY_DISABLED");
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::env::{self, Environment};

/// Which product's conventions to follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Chroma: `ANONYMIZED_TELEMETRY`, `.env`, `Settings(anonymized_telemetry=False)`;
    /// id in `~/.cache/chroma/telemetry_user_id`.
    Chroma,
    /// Qdrant: `QDRANT__TELEMETRY_DISABLED`, `telemetry_disabled` in its YAML config,
    /// `--disable-telemetry`; a new id every process, nothing stored.
    Qdrant,
    /// Evidently: `EVIDENTLY_DISABLE_TELEMETRY`; telemetry only when run as a CLI.
    Evidently,
    /// Any other product, with `<NAME>_TELEMETRY_DISABLED` and `<NAME>_TELEMETRY`.
    Generic(GenericProfile),
}

/// Settings of a [`Profile::Generic`] profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenericProfile {
    /// Product name; also the prefix of its environment variables.
    pub name: String,
    /// Whether telemetry is on when no source says anything (false = opt-in).
    #[serde(default = "yes")]
    pub default_enabled: bool,
    /// Whether the install id is stored (true) or made anew each process (false).
    #[serde(default = "yes")]
    pub persist_id: bool,
    /// Significant digits kept when numbers are rounded.
    #[serde(default = "default_precision")]
    pub precision: u32,
}

fn yes() -> bool {
    true
}

fn default_precision() -> u32 {
    3
}

impl GenericProfile {
    /// An opt-out profile with a stored id and 3-digit precision.
    pub fn new(name: impl Into<String>) -> Self {
        GenericProfile {
            name: name.into(),
            default_enabled: true,
            persist_id: true,
            precision: default_precision(),
        }
    }
}

/// What setting an environment variable to a true value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// `true` turns telemetry on (`ANONYMIZED_TELEMETRY=True`).
    TrueEnables,
    /// `true` turns telemetry off (`QDRANT__TELEMETRY_DISABLED=true`).
    TrueDisables,
}

/// An environment variable that switches telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSwitch {
    /// The variable's name.
    pub name: String,
    /// What a true value means.
    pub polarity: Polarity,
}

/// A YAML config file key that switches telemetry off when true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSwitch {
    /// Path relative to the config directory, e.g. `config/config.yaml`.
    pub file: &'static str,
    /// Top-level key, e.g. `telemetry_disabled`.
    pub key: &'static str,
    /// What a true value means.
    pub polarity: Polarity,
}

/// Where the install id and hashing secret live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdLocation {
    /// Made anew each process, never written.
    PerProcess,
    /// Stored in these files (`secret` beside `id`).
    Files {
        /// Plain UUID text.
        id: PathBuf,
        /// 32 random bytes, hex encoded.
        secret: PathBuf,
    },
    /// Should be stored, but no home directory is known: kept in memory.
    Unavailable,
}

impl Profile {
    /// The profile's name: `chroma`, `qdrant`, `evidently` or the generic product name.
    pub fn name(&self) -> &str {
        match self {
            Profile::Chroma => "chroma",
            Profile::Qdrant => "qdrant",
            Profile::Evidently => "evidently",
            Profile::Generic(g) => &g.name,
        }
    }

    /// Whether telemetry is on when no source says anything.
    pub fn default_enabled(&self) -> bool {
        match self {
            Profile::Generic(g) => g.default_enabled,
            _ => true,
        }
    }

    /// Significant digits kept when numbers are anonymized (Qdrant documents 6).
    pub fn precision(&self) -> u32 {
        match self {
            Profile::Qdrant => 6,
            Profile::Generic(g) => g.precision.max(1),
            _ => default_precision(),
        }
    }

    /// The environment variables that switch telemetry, in the order they are reported.
    pub fn env_switches(&self) -> Vec<EnvSwitch> {
        let switch = |name: &str, polarity| EnvSwitch {
            name: name.to_string(),
            polarity,
        };
        match self {
            Profile::Chroma => vec![switch("ANONYMIZED_TELEMETRY", Polarity::TrueEnables)],
            Profile::Qdrant => vec![switch("QDRANT__TELEMETRY_DISABLED", Polarity::TrueDisables)],
            Profile::Evidently => {
                vec![switch(
                    "EVIDENTLY_DISABLE_TELEMETRY",
                    Polarity::TrueDisables,
                )]
            }
            Profile::Generic(g) => {
                let prefix = env_prefix(&g.name);
                vec![
                    switch(
                        &format!("{prefix}_TELEMETRY_DISABLED"),
                        Polarity::TrueDisables,
                    ),
                    switch(&format!("{prefix}_TELEMETRY"), Polarity::TrueEnables),
                ]
            }
        }
    }

    /// YAML config keys that switch telemetry (Qdrant's `telemetry_disabled`).
    pub fn config_switches(&self) -> Vec<ConfigSwitch> {
        match self {
            Profile::Qdrant => ["config/config.yaml", "config/production.yaml"]
                .into_iter()
                .map(|file| ConfigSwitch {
                    file,
                    key: "telemetry_disabled",
                    polarity: Polarity::TrueDisables,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether a `.env` file in the working directory is read for the env switches
    /// (Chroma's pydantic settings read one; Qdrant and Evidently do not).
    pub fn reads_dotenv(&self) -> bool {
        matches!(self, Profile::Chroma | Profile::Generic(_))
    }

    /// The host's command-line flag that turns telemetry off, if the product has one.
    pub fn cli_flag(&self) -> Option<&'static str> {
        match self {
            Profile::Qdrant => Some("--disable-telemetry"),
            _ => None,
        }
    }

    /// Whether telemetry may run only when the host runs as a CLI (Evidently's rule).
    pub fn cli_mode_only(&self) -> bool {
        matches!(self, Profile::Evidently)
    }

    /// The profile's state directory, which holds the user's persisted choice (and, for
    /// profiles that store it outside Chroma's cache, the id): `$XDG_STATE_HOME/<name>`.
    pub fn state_dir(&self, env: &dyn Environment) -> Option<PathBuf> {
        Some(env::state_home(env)?.join(file_name_safe(self.name())))
    }

    /// Where this profile keeps its install id and secret.
    pub fn id_location(&self, env: &dyn Environment) -> IdLocation {
        let persist = match self {
            Profile::Qdrant => false,
            Profile::Generic(g) => g.persist_id,
            _ => true,
        };
        if !persist {
            return IdLocation::PerProcess;
        }
        // Chroma ignores XDG and uses ~/.cache/chroma: the same path keeps existing ids.
        let dir = match self {
            Profile::Chroma => env::home_dir(env).map(|h| h.join(".cache").join("chroma")),
            _ => self.state_dir(env),
        };
        match dir {
            Some(dir) => IdLocation::Files {
                id: dir.join("telemetry_user_id"),
                secret: dir.join("telemetry_secret"),
            },
            None => IdLocation::Unavailable,
        }
    }
}

/// `my-tool` -> `MY_TOOL`: the prefix of a generic product's environment variables.
pub fn env_prefix(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn file_name_safe(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "telemetry".to_string()
    } else {
        cleaned
    }
}

/// An error for a profile name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidProfile(pub String);

impl fmt::Display for InvalidProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid profile name {:?}: use chroma, qdrant, evidently or a product name of letters, digits, '-' and '_'", self.0)
    }
}

impl std::error::Error for InvalidProfile {}

impl FromStr for Profile {
    type Err = InvalidProfile;

    /// `chroma`, `qdrant`, `evidently`, or any other product name (optionally written
    /// `generic:NAME`) for a generic opt-out profile.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "chroma" | "chromadb" => return Ok(Profile::Chroma),
            "qdrant" => return Ok(Profile::Qdrant),
            "evidently" => return Ok(Profile::Evidently),
            _ => {}
        }
        let name = s.strip_prefix("generic:").unwrap_or(s);
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(Profile::Generic(GenericProfile::new(name)))
        } else {
            Err(InvalidProfile(s.to_string()))
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnvironment;

    #[test]
    fn chroma_keeps_its_id_where_chroma_does_even_with_xdg_set() {
        let env = MapEnvironment::new()
            .with("HOME", "/home/u")
            .with("XDG_CACHE_HOME", "/elsewhere");
        assert_eq!(
            Profile::Chroma.id_location(&env),
            IdLocation::Files {
                id: PathBuf::from("/home/u/.cache/chroma/telemetry_user_id"),
                secret: PathBuf::from("/home/u/.cache/chroma/telemetry_secret"),
            }
        );
    }

    #[test]
    fn qdrant_never_stores_an_id() {
        let env = MapEnvironment::new().with("HOME", "/home/u");
        assert_eq!(Profile::Qdrant.id_location(&env), IdLocation::PerProcess);
    }

    #[test]
    fn names_parse_and_bad_ones_are_refused() {
        assert_eq!("Chroma".parse::<Profile>().unwrap(), Profile::Chroma);
        assert_eq!("generic:acme".parse::<Profile>().unwrap().name(), "acme");
        assert!("../etc".parse::<Profile>().is_err());
        assert!("".parse::<Profile>().is_err());
    }
}
