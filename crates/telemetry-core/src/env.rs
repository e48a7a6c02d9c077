//! The environment the core reads: variables and the user's directories.
//!
//! Everything that looks at environment variables goes through [`Environment`], so tests
//! (and the shared test vectors) inject a map instead of mutating the process environment,
//! which is shared by every thread of a test binary.
//!
//! ```
//! use telemetry_core::env::{Environment, MapEnvironment};
//! let env = MapEnvironment::new().with("HOME", "/home/ada");
//! assert_eq!(env.var("HOME").as_deref(), Some("/home/ada"));
//! assert_eq!(telemetry_core::env::cache_home(&env).unwrap(), std::path::Path::new("/home/ada/.cache"));
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// A source of environment variables.
pub trait Environment: Send + Sync + fmt::Debug {
    /// The raw value of `name`, which may not be valid UTF-8.
    fn var_os(&self, name: &str) -> Option<OsString>;

    /// The value of `name` as UTF-8; `None` when unset or not valid UTF-8.
    fn var(&self, name: &str) -> Option<String> {
        self.var_os(name).and_then(|v| v.into_string().ok())
    }
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
}

/// A fixed set of variables, for tests, test vectors and bindings that pass an override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapEnvironment {
    vars: BTreeMap<String, OsString>,
}

impl MapEnvironment {
    /// An environment with no variables at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a variable, builder style.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<OsString>) -> Self {
        self.set(name, value);
        self
    }

    /// Adds or replaces a variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<OsString>) {
        self.vars.insert(name.into(), value.into());
    }

    /// Removes a variable.
    pub fn remove(&mut self, name: &str) {
        self.vars.remove(name);
    }
}

impl<K: Into<String>, V: Into<OsString>> FromIterator<(K, V)> for MapEnvironment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut env = MapEnvironment::new();
        for (k, v) in iter {
            env.set(k, v);
        }
        env
    }
}

impl Environment for MapEnvironment {
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.vars.get(name).cloned()
    }
}

/// An absolute path from a variable; relative or empty values are ignored, as the XDG
/// specification asks.
fn absolute_var(env: &dyn Environment, name: &str) -> Option<PathBuf> {
    let value = PathBuf::from(env.var_os(name)?);
    value.is_absolute().then_some(value)
}

/// The user's home directory: `$HOME` (never a lookup in the password database, so tests
/// isolate themselves by setting `HOME`).
pub fn home_dir(env: &dyn Environment) -> Option<PathBuf> {
    absolute_var(env, "HOME")
}

/// `$XDG_CACHE_HOME`, else `~/.cache`.
pub fn cache_home(env: &dyn Environment) -> Option<PathBuf> {
    absolute_var(env, "XDG_CACHE_HOME").or_else(|| home_dir(env).map(|h| h.join(".cache")))
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_home(env: &dyn Environment) -> Option<PathBuf> {
    absolute_var(env, "XDG_CONFIG_HOME").or_else(|| home_dir(env).map(|h| h.join(".config")))
}

/// `$XDG_STATE_HOME`, else `~/.local/state`.
pub fn state_home(env: &dyn Environment) -> Option<PathBuf> {
    absolute_var(env, "XDG_STATE_HOME")
        .or_else(|| home_dir(env).map(|h| h.join(".local").join("state")))
}

/// `$XDG_DATA_HOME`, else `~/.local/share`.
pub fn data_home(env: &dyn Environment) -> Option<PathBuf> {
    absolute_var(env, "XDG_DATA_HOME")
        .or_else(|| home_dir(env).map(|h| h.join(".local").join("share")))
}

/// `$XDG_DATA_DIRS` (absolute entries only), else `/usr/local/share` and `/usr/share`.
pub fn data_dirs(env: &dyn Environment) -> Vec<PathBuf> {
    let listed: Vec<PathBuf> = env
        .var("XDG_DATA_DIRS")
        .map(|v| {
            v.split(':')
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .collect()
        })
        .unwrap_or_default();
    if listed.is_empty() {
        vec![
            PathBuf::from("/usr/local/share"),
            PathBuf::from("/usr/share"),
        ]
    } else {
        listed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_variables_win_over_home_and_relative_ones_are_ignored() {
        let env = MapEnvironment::new()
            .with("HOME", "/h")
            .with("XDG_STATE_HOME", "/s")
            .with("XDG_CACHE_HOME", "relative");
        assert_eq!(state_home(&env).unwrap(), PathBuf::from("/s"));
        assert_eq!(cache_home(&env).unwrap(), PathBuf::from("/h/.cache"));
        assert_eq!(config_home(&env).unwrap(), PathBuf::from("/h/.config"));
    }

    #[test]
    fn no_home_means_no_directories() {
        let env = MapEnvironment::new();
        assert!(home_dir(&env).is_none());
        assert!(state_home(&env).is_none());
    }
}
