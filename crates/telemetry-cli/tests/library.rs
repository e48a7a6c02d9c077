//! `telemetry_cli::run` called in-process, as the Python wheel's console scripts call it:
//! the program name taken from `argv[0]`, output into the caller's writers, and a fixed
//! profile (an integrator's own `acme-telemetry`). Only commands that read nothing from
//! the home directory, or only read it, run here; tests/cli.rs runs the binary in a sandbox.

use serde_json::Value;
use telemetry_cli::{parse_profile, run, Profile};

struct Ran {
    code: u8,
    out: String,
    err: String,
}

fn call(args: &[&str], fixed: Option<&Profile>) -> Ran {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(args.iter().copied(), fixed, &mut out, &mut err);
    Ran {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

#[test]
fn the_program_name_comes_from_argv0_in_help_usage_and_errors() {
    let help = call(&["/venv/bin/telemetry", "--help"], None);
    assert_eq!(help.code, 0);
    assert!(
        help.out.contains("Usage: telemetry [OPTIONS] <COMMAND>"),
        "{}",
        help.out
    );
    assert!(help.err.is_empty());
    let module = call(&["python -m telemetry_core", "status"], None);
    assert_eq!(module.code, 2);
    assert!(module.out.is_empty());
    assert!(module.err.contains("no profile given"), "{}", module.err);
    assert!(
        module.err.contains("Usage: python -m telemetry_core"),
        "{}",
        module.err
    );
    let version = call(&["telemetry", "--version"], None);
    assert_eq!(
        (version.code, version.out.as_str()),
        (0, concat!("telemetry ", env!("CARGO_PKG_VERSION"), "\n"))
    );
}

#[test]
fn a_fixed_profile_needs_no_flag_and_hides_it() {
    let acme: Profile = "acme".parse().unwrap();
    let help = call(&["acme-telemetry", "status", "--help"], Some(&acme));
    assert_eq!(help.code, 0);
    assert!(
        help.out.contains("Usage: acme-telemetry status"),
        "{}",
        help.out
    );
    assert!(!help.out.contains("--profile"), "{}", help.out);
    let top = call(&["acme-telemetry", "--help"], Some(&acme));
    assert!(
        top.out.contains("acme's anonymous usage telemetry"),
        "{}",
        top.out
    );
    assert!(!top.out.contains("TELEMETRY_PROFILE"), "{}", top.out);
    // Usage errors keep clap's status and name the command.
    let bad = call(&["acme-telemetry", "frobnicate"], Some(&acme));
    assert_eq!(bad.code, 2);
    assert!(bad.err.contains("Usage: acme-telemetry"), "{}", bad.err);
}

#[test]
fn a_fixed_profile_refuses_another_products_flag_but_takes_its_own() {
    let qdrant: Profile = "qdrant".parse().unwrap();
    let other = call(
        &["qdrant-telemetry", "id", "--profile", "chroma"],
        Some(&qdrant),
    );
    assert_eq!(other.code, 2, "{}", other.err);
    assert!(
        other
            .err
            .contains("qdrant-telemetry is qdrant's own command"),
        "{}",
        other.err
    );
    // Qdrant stores no id, so `id` fails the same way whoever asks, reading no file.
    for args in [
        &["qdrant-telemetry", "id"][..],
        &["qdrant-telemetry", "id", "--profile", "qdrant"],
    ] {
        let own = call(args, Some(&qdrant));
        assert_eq!(own.code, 1, "{args:?}");
        assert!(own.out.is_empty());
        assert_eq!(
            own.err,
            "qdrant-telemetry: qdrant makes a new install id in every process and stores \
             none: there is no id to quote\n"
        );
    }
}

#[test]
fn an_integrators_opt_in_profile_is_shown_with_its_own_default() {
    // A name no real product has, so the machine's saved choices cannot speak.
    let spec = r#"{"generic": {"name": "cli-lib-test-optin", "default_enabled": false}}"#;
    let profile = parse_profile(spec).unwrap();
    let ran = call(&["optin-telemetry", "status", "--json"], Some(&profile));
    assert_eq!(ran.code, 0, "{}", ran.err);
    let status: Value = serde_json::from_str(&ran.out).unwrap();
    assert_eq!(status["profile"], "cli-lib-test-optin");
    assert_eq!(status["enabled"], false);
    let default = status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "default")
        .unwrap();
    assert_eq!(default["says"], "off", "{default}");
    let text = call(&["optin-telemetry", "status"], Some(&profile));
    assert!(
        text.out.contains("Turn it on: optin-telemetry enable ("),
        "{}",
        text.out
    );
    assert!(parse_profile("{not json").is_err());
    assert!(parse_profile("../etc").is_err());
}
