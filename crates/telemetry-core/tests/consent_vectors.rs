//! Runs the shared consent vectors (`tests/vectors/consent.json`, also run by the Go and
//! Python suites), then the cases a JSON vector cannot express: bytes that are not UTF-8,
//! huge values, and writing the user's choice.

mod common;
use common::listing;

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use telemetry_core::consent::{self, ConsentInputs, Decision, RunMode, Says, SourceKind};
use telemetry_core::env::MapEnvironment;
use telemetry_core::profile::Profile;

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/consent.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("consent.json is valid JSON")
}

fn with_root(text: &str, root: &Path) -> String {
    text.replace("{root}", &root.display().to_string())
}

fn profile_of(value: &Value) -> Profile {
    match value {
        Value::String(name) => name.parse().expect("profile name"),
        other => serde_json::from_value(other.clone()).expect("serde form of a profile"),
    }
}

fn build_files(root: &Path, files: &serde_json::Map<String, Value>) {
    for (relative, spec) in files {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        match spec {
            Value::String(content) => fs::write(&path, content).unwrap(),
            Value::Object(o) if o.get("directory") == Some(&Value::Bool(true)) => {
                fs::create_dir_all(&path).unwrap()
            }
            Value::Object(o) => {
                let target = o["symlink"]
                    .as_str()
                    .expect("file spec: directory or symlink");
                std::os::unix::fs::symlink(with_root(target, root), &path).unwrap()
            }
            other => panic!("bad file spec {other}"),
        }
    }
}

fn run_case(case: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let work = root.join("work");
    fs::create_dir_all(&work).unwrap();
    build_files(root, case["files"].as_object().expect("files"));

    let mut env = MapEnvironment::new().with("HOME", root.join("home"));
    for (name, value) in case["env"].as_object().expect("env") {
        match value {
            Value::Null => env.remove(name),
            Value::String(v) => env.set(name.as_str(), with_root(v, root)),
            other => panic!("env values are strings or null, not {other}"),
        }
    }
    let inputs_json = &case["inputs"];
    let inputs = ConsentInputs {
        explicit: inputs_json["explicit"].as_bool(),
        args: inputs_json["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("args are strings").to_string())
            .collect(),
        config_dir: Some(work.clone()),
        working_dir: Some(work),
        mode: serde_json::from_value(inputs_json["mode"].clone()).expect("mode"),
    };
    let profile = profile_of(&case["profile"]);

    let before = listing(root);
    let decision = consent::resolve(&profile, &inputs, &env);
    let after = listing(root);
    let explain = || format!("\n{decision}\n{}", decision.to_json_pretty());
    if before != after {
        return Err(format!(
            "resolving created {:?}",
            after.difference(&before).collect::<Vec<_>>()
        ));
    }

    let expect = &case["expect"];
    if decision.enabled != expect["enabled"].as_bool().expect("expect.enabled") {
        return Err(format!("enabled is {}{}", decision.enabled, explain()));
    }
    match (&expect["decided_by"], &decision.decided_by) {
        (Value::Null, None) => {}
        (Value::Null, Some(by)) => return Err(format!("decided by {by:?}, expected none")),
        (want, got) => {
            let kind: SourceKind = serde_json::from_value(want["kind"].clone()).expect("kind");
            let name = with_root(want["name"].as_str().expect("name"), root);
            let ok = got
                .as_ref()
                .is_some_and(|by| by.kind == kind && by.name == name);
            if !ok {
                return Err(format!(
                    "decided by {got:?}, expected {kind} {name}{}",
                    explain()
                ));
            }
        }
    }
    let count = expect["warnings"].as_u64().expect("expect.warnings") as usize;
    if decision.warnings.len() != count {
        return Err(format!(
            "{} warnings, expected {count}{}",
            decision.warnings.len(),
            explain()
        ));
    }
    for needle in expect["warnings_contain"].as_array().into_iter().flatten() {
        let needle = with_root(needle.as_str().expect("strings"), root);
        if !decision.warnings.iter().any(|w| w.contains(&needle)) {
            return Err(format!("no warning contains {needle:?}{}", explain()));
        }
    }
    // Every source is reported; the default always comes last.
    let last = decision.sources.last().map(|s| s.kind);
    if last != Some(SourceKind::Default) {
        return Err(format!("the default is not the last source{}", explain()));
    }
    Ok(())
}

#[test]
fn shared_consent_vectors() {
    let doc = vectors();
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 50, "only {} consent vectors", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let name = case["name"].as_str().unwrap_or("<unnamed>");
            run_case(case).err().map(|e| format!("{name}: {e}"))
        })
        .collect();
    println!("ran {} consent vectors", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Resolves `profile` in an empty working directory inside `root`.
fn resolve_in(root: &Path, profile: &Profile, env: &MapEnvironment) -> Decision {
    let inputs = ConsentInputs {
        working_dir: Some(root.join("work")),
        ..ConsentInputs::default()
    };
    consent::resolve(profile, &inputs, env)
}

fn home_env(root: &Path) -> MapEnvironment {
    MapEnvironment::new().with("HOME", root.join("home"))
}

#[test]
fn invalid_utf8_in_a_variable_means_off_and_is_shown_lossily() {
    let root = tempfile::tempdir().unwrap();
    let raw = OsString::from_vec(b"Fal\xffse".to_vec());
    let env = home_env(root.path()).with("ANONYMIZED_TELEMETRY", raw);
    let decision = resolve_in(root.path(), &Profile::Chroma, &env);
    assert!(!decision.enabled);
    assert_eq!(decision.decided_by.unwrap().kind, SourceKind::Env);
    assert_eq!(decision.warnings.len(), 1);
    assert!(
        decision.warnings[0].contains("Fal\u{fffd}se"),
        "{:?}",
        decision.warnings
    );
}

#[test]
fn a_one_megabyte_value_is_off_and_never_shown_in_full() {
    let root = tempfile::tempdir().unwrap();
    let huge = "x".repeat(1024 * 1024);
    let env = home_env(root.path())
        .with("QDRANT__TELEMETRY_DISABLED", huge.as_str())
        .with("DO_NOT_TRACK", huge.as_str());
    let decision = resolve_in(root.path(), &Profile::Qdrant, &env);
    assert!(!decision.enabled);
    let shown = decision.to_json_pretty().len() + decision.to_string().len();
    assert!(shown < 4096, "{shown} bytes of report for a 1 MB value");
    assert!(decision.warnings[0].contains("x…"));
}

#[test]
fn a_five_megabyte_config_file_is_refused_without_parsing() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("work/config");
    fs::create_dir_all(&config).unwrap();
    let mut content = "telemetry_disabled: false\n".to_string();
    content.push_str(&"# padding\n".repeat(512 * 1024));
    fs::write(config.join("config.yaml"), content).unwrap();
    let decision = resolve_in(root.path(), &Profile::Qdrant, &home_env(root.path()));
    assert!(!decision.enabled);
    assert_eq!(decision.decided_by.unwrap().kind, SourceKind::ConfigFile);
    assert!(
        decision.warnings[0].contains("larger than"),
        "{:?}",
        decision.warnings
    );
}

#[test]
fn an_alias_bomb_fails_fast() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("work/config");
    fs::create_dir_all(&config).unwrap();
    // Ten levels of ten: 10^10 strings if expanded.
    let mut bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
    for level in 1..10 {
        let refs = vec![format!("*a{}", level - 1); 10].join(", ");
        bomb.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
    }
    fs::write(config.join("config.yaml"), bomb).unwrap();
    let started = Instant::now();
    let decision = resolve_in(root.path(), &Profile::Qdrant, &home_env(root.path()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!decision.enabled);
    assert!(
        decision.warnings[0].contains("not valid YAML"),
        "{:?}",
        decision.warnings
    );
}

#[test]
fn unreadable_config_files_mean_off() {
    // Tests run as root, where permissions do not stop reads: use a directory and a
    // dangling symbolic link instead.
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("work/config");
    fs::create_dir_all(config.join("config.yaml")).unwrap();
    std::os::unix::fs::symlink("gone.yaml", config.join("production.yaml")).unwrap();
    let decision = resolve_in(root.path(), &Profile::Qdrant, &home_env(root.path()));
    assert!(!decision.enabled);
    assert_eq!(decision.warnings.len(), 2, "{:?}", decision.warnings);
    let config_sources: Vec<_> = decision
        .sources
        .iter()
        .filter(|s| s.kind == SourceKind::ConfigFile)
        .map(|s| s.says)
        .collect();
    assert_eq!(config_sources, [Says::Off, Says::Off]);
}

#[test]
fn a_fifo_is_refused_instead_of_blocking() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("work")).unwrap();
    let fifo = root.path().join("work/.env");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let decision = resolve_in(root.path(), &Profile::Chroma, &home_env(root.path()));
    assert!(!decision.enabled);
    assert!(decision.warnings[0].contains("not a regular file"));
}

#[test]
fn every_source_is_reported_in_order() {
    let root = tempfile::tempdir().unwrap();
    let env = home_env(root.path()).with("QDRANT__TELEMETRY_DISABLED", "false");
    let inputs = ConsentInputs {
        explicit: Some(true),
        args: vec!["--disable-telemetry".into()],
        working_dir: Some(root.path().join("work")),
        ..ConsentInputs::default()
    };
    let decision = consent::resolve(&Profile::Qdrant, &inputs, &env);
    let kinds: Vec<_> = decision.sources.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "code",
            "cli_flag",
            "env",
            "config_file",
            "config_file",
            "user_choice",
            "do_not_track",
            "default"
        ]
    );
    let json: Value = serde_json::from_str(&decision.to_json_pretty()).unwrap();
    assert_eq!(json["enabled"], false);
    assert_eq!(json["decided_by"]["kind"], "cli_flag");
    assert_eq!(json["sources"][0]["value"], "true");
    assert_eq!(json["sources"][3]["value"], Value::Null);
    assert_eq!(json["sources"][3]["says"], "unset");
    let text = decision.to_string();
    assert!(text.starts_with("telemetry is off: decided by cli_flag --disable-telemetry"));
    assert_eq!(text.lines().count(), 1 + decision.sources.len());
}

#[test]
fn evidently_reports_its_mode() {
    let root = tempfile::tempdir().unwrap();
    let inputs = ConsentInputs {
        working_dir: Some(root.path().to_path_buf()),
        mode: RunMode::Cli,
        ..ConsentInputs::default()
    };
    let decision = consent::resolve(&Profile::Evidently, &inputs, &home_env(root.path()));
    let mode = decision
        .sources
        .iter()
        .find(|s| s.kind == SourceKind::Mode)
        .unwrap();
    assert_eq!(
        (mode.value.as_deref(), mode.says),
        (Some("cli"), Says::Unset)
    );
    assert!(decision.enabled);
}

#[test]
fn cli_flag_forms() {
    let q = Profile::Qdrant;
    assert!(consent::cli_flag_present(
        &q,
        &["qdrant", "--disable-telemetry"]
    ));
    assert!(consent::cli_flag_present(&q, &["--disable-telemetry=TRUE"]));
    assert!(consent::cli_flag_present(
        &q,
        &["--disable-telemetry=maybe"]
    ));
    assert!(!consent::cli_flag_present(
        &q,
        &["--disable-telemetry=false"]
    ));
    assert!(!consent::cli_flag_present(&q, &["--disable-telemetry-x"]));
    assert!(!consent::cli_flag_present(
        &q,
        &["--", "--disable-telemetry"]
    ));
    assert!(!consent::cli_flag_present(
        &Profile::Chroma,
        &["--disable-telemetry"]
    ));
    let none: [&str; 0] = [];
    assert!(!consent::cli_flag_present(&q, &none));
}

#[test]
fn write_read_and_clear_the_user_choice() {
    let root = tempfile::tempdir().unwrap();
    let env = home_env(root.path());
    let p = Profile::Chroma;
    assert_eq!(consent::read_user_choice(&p, &env).unwrap(), None);
    let path = consent::write_user_choice(&p, &env, false).unwrap();
    assert_eq!(
        path,
        root.path()
            .join("home/.local/state/chroma/telemetry_choice")
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), "disabled\n");
    assert_eq!(consent::read_user_choice(&p, &env).unwrap(), Some(false));
    consent::write_user_choice(&p, &env, true).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "enabled\n");
    // Only the choice itself is left: no temporary files.
    let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(names.len(), 1);
    assert!(consent::clear_user_choice(&p, &env).unwrap());
    assert!(!consent::clear_user_choice(&p, &env).unwrap());
    assert!(!path.exists());
}

#[test]
fn concurrent_writers_leave_a_whole_choice() {
    let root = tempfile::tempdir().unwrap();
    let env = home_env(root.path());
    let path = consent::user_choice_path(&Profile::Chroma, &env).unwrap();
    consent::write_user_choice(&Profile::Chroma, &env, true).unwrap();
    std::thread::scope(|s| {
        for i in 0..4 {
            let env = &env;
            s.spawn(move || {
                for _ in 0..50 {
                    consent::write_user_choice(&Profile::Chroma, env, i % 2 == 0).unwrap();
                }
            });
        }
        s.spawn(|| {
            for _ in 0..200 {
                let text = fs::read_to_string(&path).unwrap();
                assert!(text == "enabled\n" || text == "disabled\n", "{text:?}");
            }
        });
    });
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn writing_the_choice_fails_cleanly_when_the_state_dir_is_unusable() {
    let root = tempfile::tempdir().unwrap();
    let env = home_env(root.path());
    let state = root.path().join("home/.local/state");
    fs::create_dir_all(&state).unwrap();
    // A file where the state directory should be.
    fs::write(state.join("chroma"), "not a directory").unwrap();
    assert!(consent::write_user_choice(&Profile::Chroma, &env, false).is_err());
    // A dangling symbolic link there instead.
    fs::remove_file(state.join("chroma")).unwrap();
    std::os::unix::fs::symlink(root.path().join("nowhere"), state.join("chroma")).unwrap();
    assert!(consent::write_user_choice(&Profile::Chroma, &env, false).is_err());
    // No home at all.
    assert!(consent::write_user_choice(&Profile::Chroma, &MapEnvironment::new(), false).is_err());
    // Through the dangling link there is simply no choice: the default decides.
    let decision = resolve_in(root.path(), &Profile::Chroma, &env);
    assert!(decision.enabled, "{decision}");
}

#[test]
fn parse_bool_rules() {
    for word in ["1", "true", "YES", " on\t"] {
        assert_eq!(consent::parse_bool(word), Ok(Some(true)), "{word}");
    }
    for word in ["0", "False", "no", "OFF "] {
        assert_eq!(consent::parse_bool(word), Ok(Some(false)), "{word}");
    }
    assert_eq!(consent::parse_bool(""), Ok(None));
    assert!(consent::parse_bool("2").is_err());
    assert!(consent::parse_bool("enabled").is_err());
}
