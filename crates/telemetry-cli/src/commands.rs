//! `enable`, `disable`, `preview`, `id` and `reset`: thin calls into the core, which owns
//! every rule; this file only words the results for people.

use std::io::Read;
use std::path::Path;

use telemetry_core::consent::{self, ConsentInputs, RunMode};
use telemetry_core::env::Environment;
use telemetry_core::identity;
use telemetry_core::profile::{IdLocation, Profile};
use telemetry_core::samples;
use telemetry_core::sink::{MemorySink, SinkConfig};
use telemetry_core::{Client, Event};

use crate::args::PreviewArgs;
use crate::{Failure, Io};

/// The decision as the products see it when run as a CLI; `enable` reports it when some
/// other source keeps telemetry off.
pub fn current_decision(profile: &Profile, env: &dyn Environment) -> consent::Decision {
    let inputs = ConsentInputs {
        mode: RunMode::Cli,
        ..ConsentInputs::default()
    };
    consent::resolve(profile, &inputs, env)
}

/// `telemetry enable` / `telemetry disable`.
pub fn set_choice(
    io: &mut Io<'_>,
    profile: &Profile,
    env: &dyn Environment,
    enabled: bool,
) -> Result<(), Failure> {
    let path = consent::write_user_choice(profile, env, enabled).map_err(|e| {
        let place = consent::user_choice_path(profile, env)
            .map(|p| format!(" in {}", p.display()))
            .unwrap_or_default();
        Failure(format!("cannot save your choice for {profile}{place}: {e}"))
    })?;
    let word = if enabled { "enabled" } else { "disabled" };
    io.emit(&format!(
        "telemetry {word} for {profile}: saved in {}\n",
        path.display()
    ))?;
    if enabled {
        // Off beats on: a saved "enabled" does not override DO_NOT_TRACK or an env switch,
        // and a person who just asked for "on" deserves to know.
        let decision = current_decision(profile, env);
        if !decision.enabled {
            let verdict = decision.to_string();
            let first_line = verdict.lines().next().unwrap_or_default();
            let see = io.suggest("status", profile);
            io.note(&format!("{first_line}; see `{see}`"));
        }
    }
    Ok(())
}

/// The generic example: one property of each kind of anonymization (hashed, exact,
/// rounded, safe, scrubbed), named so nobody mistakes it for a real product's event.
fn generic_example() -> Event {
    Event::new("example_event")
        .hashed("item_id", "2b1f5c8e-3a64-4e0f-9d7a-6c1e0b9a4f21")
        .exact("item_count", 20)
        .property("size_bytes", 123_456)
        .safe("mode", "default")
        .text(
            "error",
            "cannot open /home/ada/data/app.db for ada@example.com from 192.168.1.20",
        )
}

fn read_event(source: &Path) -> Result<Event, Failure> {
    let text = if source == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure(format!("cannot read the event from stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(source)
            .map_err(|e| Failure(format!("cannot read {}: {e}", source.display())))?
    };
    Event::from_json(&text).map_err(Failure)
}

/// What `preview` shows, with the context its events carry.
struct Preview {
    events: Vec<Event>,
    product: Option<String>,
    version: Option<String>,
    runtime: Option<(String, String)>,
    /// More than one event: print a JSON array.
    many: bool,
}

/// Picks the events: `--event`, else `--samples` or the product's installed samples, else
/// the generic example, saying on stderr which one it is.
fn choose(
    io: &mut Io<'_>,
    profile: &Profile,
    args: &PreviewArgs,
    env: &dyn Environment,
) -> Result<Preview, Failure> {
    let single = |event| Preview {
        events: vec![event],
        product: None,
        version: None,
        runtime: None,
        many: false,
    };
    if let Some(source) = &args.event {
        return Ok(single(read_event(source)?));
    }
    let found = match &args.samples {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
            let file: samples::SampleFile = serde_json::from_str(&text)
                .map_err(|e| Failure(format!("{} is not a sample file: {e}", path.display())))?;
            for event in &file.events {
                event
                    .validate()
                    .map_err(|e| Failure(format!("{}: {e}", path.display())))?;
            }
            Some((path.clone(), file))
        }
        None => samples::find(profile, env).map_err(Failure)?,
    };
    match found {
        Some((path, file)) if !file.events.is_empty() => {
            io.note(&format!(
                "{} sample event(s) that {profile} declares in {}",
                file.events.len(),
                path.display()
            ));
            Ok(Preview {
                many: true,
                runtime: file
                    .runtime
                    .map(|r| (r, file.runtime_version.unwrap_or_default())),
                product: file.product,
                version: file.version,
                events: file.events,
            })
        }
        Some((path, _)) => Err(Failure(format!("{} declares no events", path.display()))),
        None => {
            let looked: Vec<String> = samples::sample_paths(profile, env)
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            io.note(&format!(
                "{profile} installed no sample events (looked for {}): below is a generic \
                 example of how each kind of property is anonymized, not an event {profile} \
                 sends. {}. Context fields such as the runtime are shown as unknown.",
                looked.join(", "),
                samples::describe(profile)
            ));
            Ok(single(generic_example()))
        }
    }
}

/// `telemetry preview`.
pub fn preview(io: &mut Io<'_>, profile: &Profile, args: &PreviewArgs) -> Result<(), Failure> {
    let env = telemetry_core::env::ProcessEnvironment;
    let chosen = choose(io, profile, args, &env)?;
    let product = args
        .product
        .clone()
        .or(chosen.product)
        .unwrap_or_else(|| profile.name().to_string());
    let version = args
        .product_version
        .clone()
        .or(chosen.version)
        .unwrap_or_else(|| "unknown".into());
    let (runtime, runtime_version) = chosen
        .runtime
        .unwrap_or_else(|| ("unknown".into(), String::new()));
    // The memory sink needs no endpoint and never opens a socket; preview() does not
    // even queue the event.
    let client = Client::builder(product, version)
        .profile(profile.clone())
        .mode(RunMode::Cli)
        .runtime(runtime, runtime_version)
        .sink(SinkConfig::Memory(MemorySink::new()))
        .build()
        .map_err(|e| Failure(e.to_string()))?;
    if identity::load_existing(profile, &env).is_none() {
        io.note(
            "no install id and secret are stored yet: the id and hashes below are made up \
             for this preview (the first enabled run makes the real ones)",
        );
    }
    if !client.decision().enabled {
        io.note(&format!(
            "telemetry is off for {profile}: nothing is sent; this is what would be sent if it were on"
        ));
    }
    let payloads: Vec<serde_json::Value> = chosen
        .events
        .into_iter()
        .map(|e| client.preview(e))
        .collect();
    // Serializing a JSON value cannot fail.
    let text = if chosen.many {
        serde_json::to_string_pretty(&payloads)
    } else {
        serde_json::to_string_pretty(&payloads[0])
    }
    .unwrap_or_default();
    io.emit(&format!("{text}\n"))
}

/// `telemetry id`.
pub fn id(io: &mut Io<'_>, profile: &Profile, env: &dyn Environment) -> Result<(), Failure> {
    let path = match profile.id_location(env) {
        IdLocation::PerProcess => {
            return Err(Failure(format!(
                "{profile} makes a new install id in every process and stores none: \
                 there is no id to quote"
            )))
        }
        IdLocation::Unavailable => {
            return Err(Failure(
                "no home directory is known (set HOME): no install id is stored".into(),
            ))
        }
        IdLocation::Files { id, .. } => id,
    };
    match identity::peek(profile, env) {
        Some(id) => io.emit(&format!("{id}\n")),
        None if path.exists() => Err(Failure(format!(
            "{} does not hold an install id",
            path.display()
        ))),
        None => Err(Failure(format!(
            "no install id is stored for {profile} ({} does not exist); \
             one is made on the first enabled run",
            path.display()
        ))),
    }
}

/// `telemetry reset`.
pub fn reset(io: &mut Io<'_>, profile: &Profile, env: &dyn Environment) -> Result<(), Failure> {
    let IdLocation::Files { id: path, .. } = profile.id_location(env) else {
        return io.emit(&format!(
            "{profile} stores no install id on this machine: nothing to delete\n"
        ));
    };
    // Read first: once deleted, the old id is what a deletion request must quote.
    let old = identity::peek(profile, env);
    let deleted = identity::reset(profile, env).map_err(|e| {
        Failure(format!(
            "cannot delete the install id or secret beside {}: {e}",
            path.display()
        ))
    })?;
    match (deleted, old) {
        (false, _) => io.emit(&format!(
            "no install id was stored for {profile}: nothing to delete\n"
        )),
        (true, Some(old)) => io.emit(&format!(
            "deleted install id {old} and its secret ({}); the next enabled run makes new ones.\n\
             To ask for deletion of data sent under the old id, quote: {old}\n",
            path.display()
        )),
        (true, None) => io.emit(&format!(
            "deleted the install id files beside {}; the next enabled run makes new ones\n",
            path.display()
        )),
    }
}
