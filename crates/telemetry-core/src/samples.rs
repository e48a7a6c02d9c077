//! A product's declared sample events: what `telemetry preview` shows an end user.
//!
//! In: a profile and the environment. Out: the sample file the integrator installed for
//! that profile, parsed, or a plain description of what the product's real telemetry looks
//! like when none is installed.
//!
//! The integrator ships `telemetry-core/<profile>/events.json` in a data directory: the
//! user's `$XDG_DATA_HOME` (default `~/.local/share`) is looked at first, then each entry
//! of `$XDG_DATA_DIRS` (default `/usr/local/share:/usr/share`), which is where packages
//! install shared data. The file holds the product's context and its events, each in the
//! event JSON every binding uses:
//!
//! ```json
//! {
//!   "product": "chromadb", "version": "1.3.0", "runtime": "python", "runtime_version": "3.12",
//!   "events": [
//!     {"event": "CollectionAddEvent",
//!      "properties": {"collection_uuid": "2b1f…", "add_amount": 20},
//!      "kinds": {"collection_uuid": "hashed", "add_amount": "exact"}}
//!   ]
//! }
//! ```
//!
//! ```
//! use telemetry_core::{env::MapEnvironment, profile::Profile, samples};
//! let dir = tempfile::tempdir().unwrap();
//! let env = MapEnvironment::new().with("XDG_DATA_HOME", dir.path()).with("XDG_DATA_DIRS", "/nonexistent");
//! let path = &samples::sample_paths(&Profile::Chroma, &env)[0];
//! assert!(path.ends_with("telemetry-core/chroma/events.json"));
//! std::fs::create_dir_all(path.parent().unwrap()).unwrap();
//! std::fs::write(path, r#"{"product": "chromadb", "events": [{"event": "ClientStartEvent"}]}"#).unwrap();
//! let (found, file) = samples::find(&Profile::Chroma, &env).unwrap().unwrap();
//! assert_eq!((found, file.events[0].name.as_str()), (path.clone(), "ClientStartEvent"));
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::consent::{read_bounded, Bounded};
use crate::env::{self, Environment};
use crate::event::Event;
use crate::profile::{file_name_safe, Profile};

/// Largest sample file read.
const MAX_SAMPLE_BYTES: u64 = 1024 * 1024;

/// A product's sample file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleFile {
    /// The product name its events carry as context.
    #[serde(default)]
    pub product: Option<String>,
    /// The product version its events carry.
    #[serde(default)]
    pub version: Option<String>,
    /// The language runtime the product runs on (`python`, `go`, `rust`, ...).
    #[serde(default)]
    pub runtime: Option<String>,
    /// That runtime's version.
    #[serde(default)]
    pub runtime_version: Option<String>,
    /// The events, in the event JSON of every binding.
    pub events: Vec<Event>,
}

/// Where sample files for `profile` are looked for, in order.
pub fn sample_paths(profile: &Profile, env: &dyn Environment) -> Vec<PathBuf> {
    let tail = PathBuf::from("telemetry-core")
        .join(file_name_safe(profile.name()))
        .join("events.json");
    env::data_home(env)
        .into_iter()
        .chain(env::data_dirs(env))
        .map(|dir| dir.join(&tail))
        .collect()
}

/// The first sample file found for `profile`: `Ok(None)` when none is installed, an error
/// naming the file when one is there but unusable (too big, not JSON, a bad event).
pub fn find(
    profile: &Profile,
    env: &dyn Environment,
) -> Result<Option<(PathBuf, SampleFile)>, String> {
    for path in sample_paths(profile, env) {
        match read_bounded(&path, MAX_SAMPLE_BYTES) {
            Bounded::Missing => continue,
            Bounded::Problem(p) => return Err(format!("{} {p}", path.display())),
            Bounded::Content(bytes) => {
                let file: SampleFile = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{} is not a sample file: {e}", path.display()))?;
                for event in &file.events {
                    event
                        .validate()
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
                return Ok(Some((path, file)));
            }
        }
    }
    Ok(None)
}

/// What the product's real telemetry looks like, for people, when it ships no samples.
pub fn describe(profile: &Profile) -> String {
    match profile {
        Profile::Chroma => "Chroma sends product events named after its classes \
            (ClientStartEvent, ClientCreateCollectionEvent, CollectionAddEvent, \
            CollectionQueryEvent, ...): counts and flags such as add_amount or n_results, \
            collection ids as keyed hashes, batched per collection with the counts summed"
            .into(),
        Profile::Qdrant => "Qdrant sends a usage report rather than product events: its \
            version and system information (OS, CPU, memory, disk type), and counts and \
            timings of its requests and collections, with names as keyed hashes"
            .into(),
        Profile::Evidently => "Evidently sends an event for each command its CLI runs (never \
            when used as a library): the command and its outcome"
            .into(),
        Profile::Generic(g) => format!(
            "{} declares its own events; its documentation lists them, and its packages can \
             install samples for this command",
            g.name
        ),
    }
}
