//! `telemetry status`: the core's decision and everything else a person asks about —
//! for people, or as one JSON object. Only reads: no file or directory is ever created.

use std::fmt::Write as _;

use serde_json::{json, Value};
use telemetry_core::consent::{self, ConsentInputs, Decision, SourceKind, SourceReport};
use telemetry_core::env::Environment;
use telemetry_core::identity;
use telemetry_core::notice::{self, COLLECTED, NEVER_COLLECTED};
use telemetry_core::profile::{IdLocation, Profile};

use crate::args::StatusArgs;
use crate::{Failure, Io};

/// What this command cannot see: a setting in the product's code, or a flag passed on the
/// product's command line. Saying "unset" there would claim knowledge it does not have.
fn not_visible(source: &SourceReport) -> Option<String> {
    match source.kind {
        SourceKind::Code => Some("set by the product's code (not visible from here)".into()),
        SourceKind::CliFlag => {
            Some("passed on the product's command line (not visible from here)".into())
        }
        _ => None,
    }
}

/// Everything the status reports, gathered once for both renderings.
struct Status {
    profile: Profile,
    decision: Decision,
    install_id: Option<String>,
    id_location: IdLocation,
    endpoint: Option<String>,
    debug_sink: bool,
    state_dir: Option<String>,
    notice_shown: bool,
    notice_marker: Option<String>,
    otel: telemetry_core::otel::OtelConfig,
}

fn gather(profile: &Profile, env: &dyn Environment, args: &StatusArgs) -> Status {
    let inputs = ConsentInputs {
        mode: args.mode.into(),
        ..ConsentInputs::default()
    };
    let shown = |p: std::path::PathBuf| p.display().to_string();
    Status {
        profile: profile.clone(),
        decision: consent::resolve(profile, &inputs, env),
        install_id: identity::peek(profile, env).map(|id| id.to_string()),
        id_location: profile.id_location(env),
        endpoint: args.endpoint.clone().filter(|e| !e.trim().is_empty()),
        // Every client in this environment would print instead of sending.
        debug_sink: env
            .var("TELEMETRY_DEBUG")
            .and_then(|v| consent::parse_bool(&v).ok().flatten())
            .unwrap_or(false),
        state_dir: profile.state_dir(env).map(shown),
        notice_shown: notice::was_shown(profile, env),
        notice_marker: notice::marker_path(profile, env).map(shown),
        // The product name is the profile's: a generic product's default service name.
        otel: telemetry_core::otel::config::resolve(
            profile,
            profile.name(),
            &telemetry_core::otel::OtelSettings::default(),
            env,
        ),
    }
}

impl Status {
    fn id_file(&self) -> Option<String> {
        match &self.id_location {
            IdLocation::Files { id, .. } => Some(id.display().to_string()),
            _ => None,
        }
    }

    fn id_storage(&self) -> &'static str {
        match self.id_location {
            IdLocation::Files { .. } => "files",
            IdLocation::PerProcess => "per_process",
            IdLocation::Unavailable => "unavailable",
        }
    }

    fn endpoint_text(&self) -> String {
        match (&self.endpoint, self.debug_sink) {
            (_, true) => {
                "stderr: TELEMETRY_DEBUG is set, so payloads are printed and nothing is sent".into()
            }
            (Some(e), false) => e.clone(),
            (None, false) => "not configured here (each product sets its own; pass --endpoint \
                              or set TELEMETRY_ENDPOINT to show it)"
                .into(),
        }
    }

    fn to_json(&self) -> Value {
        let mut object = match serde_json::to_value(&self.decision) {
            Ok(Value::Object(map)) => map,
            // A struct always serializes to an object.
            _ => serde_json::Map::new(),
        };
        // The sources this command cannot see say so, instead of a misleading "unset".
        if let Some(Value::Array(sources)) = object.get_mut("sources") {
            for (value, report) in sources.iter_mut().zip(&self.decision.sources) {
                if let (Some(text), Value::Object(map)) = (not_visible(report), value) {
                    map.insert("says".into(), "not_visible".into());
                    map.insert("note".into(), text.into());
                }
            }
        }
        let rest = json!({
            "profile": self.profile.name(),
            "install_id": self.install_id,
            "id_file": self.id_file(),
            "id_storage": self.id_storage(),
            "endpoint": if self.debug_sink { None } else { self.endpoint.clone() },
            "debug_sink": self.debug_sink,
            "state_dir": self.state_dir,
            "notice_shown": self.notice_shown,
            "notice_marker": self.notice_marker,
            "collected": COLLECTED,
            "never_collected": NEVER_COLLECTED,
            // Observability is the operator's, independent of consent; header values are
            // credentials and stay hidden.
            "observability": self.otel.to_status_json(),
        });
        if let Value::Object(rest) = rest {
            object.extend(rest);
        }
        Value::Object(object)
    }

    fn to_text(&self, io: &Io<'_>) -> String {
        let p = &self.profile;
        let mut t = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(t, "{}", self.decision.display_with(not_visible));
        let _ = writeln!(
            t,
            "  (the product's own code and command line can still turn it off; this \
             command cannot see them)"
        );
        let _ = writeln!(t);
        let id = match (&self.install_id, &self.id_location) {
            (Some(id), IdLocation::Files { id: file, .. }) => {
                format!("{id} (in {})", file.display())
            }
            (None, IdLocation::Files { id: file, .. }) => format!(
                "none stored yet (the first enabled run makes one in {})",
                file.display()
            ),
            (_, IdLocation::PerProcess) => {
                format!("none stored ({p} makes a new one in every process)")
            }
            (_, IdLocation::Unavailable) => {
                "none stored (no home directory is known: each process keeps one in memory)".into()
            }
        };
        let notice = match (self.notice_shown, &self.notice_marker) {
            (true, Some(marker)) => format!("seen ({marker})"),
            _ => "not seen yet (shown on the first enabled run by products that ask for it)".into(),
        };
        let rows = [
            ("profile", p.name().to_string()),
            ("install id", id),
            ("endpoint", self.endpoint_text()),
            (
                "state directory",
                self.state_dir
                    .clone()
                    .unwrap_or_else(|| "none (no home directory is known)".into()),
            ),
            ("first-run notice", notice),
        ];
        for (label, value) in rows {
            let _ = writeln!(t, "{label:<17}{value}");
        }
        let _ = writeln!(
            t,
            "\nCollected, anonymized (see `{}`):",
            io.suggest("preview", p)
        );
        for item in COLLECTED {
            let _ = writeln!(t, "  - {item}");
        }
        let _ = writeln!(t, "\nNever collected:");
        for item in NEVER_COLLECTED {
            let _ = writeln!(t, "  - {item}");
        }
        let switch = if self.decision.enabled {
            format!(
                "\nTurn it off: {} (or DO_NOT_TRACK=1 for every product)",
                io.suggest("disable", p)
            )
        } else {
            format!(
                "\nTurn it on: {} (any source that says off still wins)",
                io.suggest("enable", p)
            )
        };
        let _ = writeln!(t, "{switch}");
        let _ = writeln!(
            t,
            "\nObservability (OpenTelemetry traces to the operator's own collector, never to \
             the product's team; independent of the setting above):"
        );
        for line in self.otel.describe().lines() {
            let _ = writeln!(t, "  {line}");
        }
        let _ = writeln!(
            t,
            "  (settings in the product's code beat these variables; this command cannot see them)"
        );
        t
    }
}

/// `telemetry status`.
pub fn run(
    io: &mut Io<'_>,
    profile: &Profile,
    env: &dyn Environment,
    args: &StatusArgs,
) -> Result<(), Failure> {
    let status = gather(profile, env, args);
    if args.json {
        // Serializing a JSON value cannot fail.
        let text = serde_json::to_string_pretty(&status.to_json()).unwrap_or_default();
        io.emit(&format!("{text}\n"))
    } else {
        io.emit(&status.to_text(io))
    }
}
