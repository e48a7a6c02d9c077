//! Consent resolution (`consent::resolve`) over fuzzed inputs: the profile, the setting
//! in code, argv, environment values (not always UTF-8), the YAML config files, `.env` and
//! the user's persisted choice, written to a scratch directory of this process (the real
//! environment, home and working directory are never read: `MapEnvironment`, `HOME` and
//! `working_dir` point at the scratch directory).
//!
//! Must hold, beyond "never panics": a decision is always produced, with the source that
//! decided; a decision that is on has no warning and no source saying off. And from the
//! structured input alone: whenever a value read for one of the profile's switches is
//! not a boolean (or not UTF-8), a file holding one is malformed (bad YAML, not a mapping,
//! a key of another type, a bad `.env` line, a directory in its place), or any source
//! says off, the decision is off; when every file was generated from known shapes, it is
//! exactly "some source says on, or the profile's default is on".
#![no_main]

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use telemetry_core::consent::{self, ConsentInputs, RunMode, Says};
use telemetry_core::env::MapEnvironment;
use telemetry_core::profile::{GenericProfile, Polarity, Profile};

/// Words the boolean rules know, some spelled oddly, and some they do not.
const WORDS: &[&str] = &[
    "true", "false", "yes", "no", "on", "off", "1", "0", "", " ", " TRUE ", "False", "Yes", "OFF",
    "maybe", "2", "tru", "nope", "enabled", "disabled", "null", "-1", "y", "n",
];

/// What the test expects a boolean source to say: the rules of `consent::parse_bool`
/// restated. `Err` = not a boolean.
fn expected_bool(raw: &str) -> std::result::Result<Option<bool>, ()> {
    let word = raw.trim().to_ascii_lowercase();
    match word.as_str() {
        "" => Ok(None),
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        _ => Err(()),
    }
}

/// What a source says, as the oracle sees it.
#[derive(Default)]
struct Oracle {
    off: Vec<String>,
    on: bool,
    /// False once any input was raw bytes whose meaning the oracle does not know.
    exact: bool,
}

impl Oracle {
    fn boolean(&mut self, what: &str, raw: &str, polarity: Polarity) {
        match expected_bool(raw) {
            Ok(None) => {}
            Ok(Some(v)) => self.says(what, v == (polarity == Polarity::TrueEnables)),
            Err(()) => self.off.push(format!("{what}: non-boolean {raw:?}")),
        }
    }
    fn says(&mut self, what: &str, on: bool) {
        if on {
            self.on = true;
        } else {
            self.off.push(format!("{what} says off"));
        }
    }
}

/// A value for a textual switch: a known word or free text of a safe alphabet (one that
/// YAML single quotes and `.env` single quotes keep as it is).
fn safe_word(u: &mut Unstructured) -> Result<String> {
    if u.ratio(3, 4)? {
        return Ok(u.choose(WORDS)?.to_string());
    }
    const ALPHABET: &[u8] = b"abcdefnorstuyATFNOY019 -_.";
    let n = u.int_in_range(0..=8)?;
    (0..n)
        .map(|_| u.choose(ALPHABET).map(|&b| char::from(b)))
        .collect()
}

/// Any value for an environment variable or argument: usually a word, sometimes any
/// bytes (then possibly not UTF-8).
fn env_value(u: &mut Unstructured) -> Result<OsString> {
    Ok(match u.int_in_range(0..=3)? {
        0 | 1 => OsString::from(u.choose(WORDS)?.to_string()),
        2 => OsString::from(safe_word(u)?),
        _ => {
            let n = u.int_in_range(0..=12)?;
            OsString::from_vec(u.bytes(n)?.to_vec())
        }
    })
}

/// One YAML config file, and what it means for `telemetry_disabled`.
fn yaml_file(u: &mut Unstructured, oracle: &mut Oracle, what: &str) -> Result<Option<FileSpec>> {
    const MALFORMED: &[&str] = &[
        "telemetry_disabled: [\n",
        "telemetry_disabled: 'open\n",
        "- telemetry_disabled\n- false\n",
        "just a string\n",
        "telemetry_disabled: false\n  bad: indentation: here\n",
        "{telemetry_disabled: false\n",
    ];
    Ok(Some(match u.int_in_range(0..=9)? {
        0 | 1 => return Ok(None),
        2 => {
            oracle.off.push(format!("{what}: a directory"));
            FileSpec::Directory
        }
        3 => {
            oracle.off.push(format!("{what}: malformed"));
            FileSpec::Content(u.choose(MALFORMED)?.as_bytes().to_vec())
        }
        4 => {
            oracle.exact = false;
            let n = u.int_in_range(0..=64)?;
            FileSpec::Content(u.bytes(n)?.to_vec())
        }
        _ => {
            let mut text = String::from("log_level: INFO\n");
            match u.int_in_range(0..=7)? {
                0 => {}
                1 => {
                    let v = u.ratio(1, 2)?;
                    oracle.says(what, !v);
                    text += &format!("telemetry_disabled: {v}\n");
                }
                2 | 3 => {
                    let word = safe_word(u)?;
                    oracle.boolean(what, &word, Polarity::TrueDisables);
                    text += &format!("telemetry_disabled: '{word}'\n");
                }
                4 => text += "telemetry_disabled: ~\n",
                5 => {
                    oracle.off.push(format!("{what}: a number"));
                    text += "telemetry_disabled: 42\n";
                }
                6 => {
                    oracle.off.push(format!("{what}: a list"));
                    text += "telemetry_disabled: [true]\n";
                }
                _ => {
                    oracle.off.push(format!("{what}: a mapping"));
                    text += "telemetry_disabled: {enabled: false}\n";
                }
            }
            if u.ratio(1, 2)? {
                text += "storage:\n  path: ./storage\n";
            }
            FileSpec::Content(text.into_bytes())
        }
    }))
}

/// The `.env` file, and what it means for each of the profile's switches.
fn dotenv_file(
    u: &mut Unstructured,
    oracle: &mut Oracle,
    switches: &[(String, Polarity)],
) -> Result<Option<FileSpec>> {
    const MALFORMED: &[&str] = &["A='never closed\n", "A=\"never closed\n"];
    Ok(Some(match u.int_in_range(0..=7)? {
        0 | 1 => return Ok(None),
        2 => {
            oracle.off.push(".env: a directory".into());
            FileSpec::Directory
        }
        3 => {
            oracle.off.push(".env: malformed".into());
            FileSpec::Content(u.choose(MALFORMED)?.as_bytes().to_vec())
        }
        4 => {
            oracle.exact = false;
            let n = u.int_in_range(0..=64)?;
            FileSpec::Content(u.bytes(n)?.to_vec())
        }
        _ => {
            let mut text = String::from("# generated\nOTHER_SETTING=1\n");
            let mut last: Vec<Option<String>> = vec![None; switches.len()];
            for _ in 0..u.int_in_range(0..=4)? {
                let i = u.int_in_range(0..=switches.len())?;
                let word = safe_word(u)?;
                let key = switches.get(i).map_or("UNRELATED", |s| s.0.as_str());
                text += &format!("{key}='{word}'\n");
                if let Some(slot) = last.get_mut(i) {
                    *slot = Some(word);
                }
            }
            for ((name, polarity), value) in switches.iter().zip(last) {
                if let Some(word) = value {
                    oracle.boolean(&format!(".env {name}"), &word, *polarity);
                }
            }
            FileSpec::Content(text.into_bytes())
        }
    }))
}

enum FileSpec {
    Content(Vec<u8>),
    Directory,
}

fn place(path: &Path, spec: Option<FileSpec>) {
    match spec {
        None => {}
        Some(FileSpec::Directory) => fs::create_dir_all(path).unwrap(),
        Some(FileSpec::Content(bytes)) => {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
    }
}

/// This process's scratch directory.
fn scratch() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        std::env::temp_dir().join(format!("telemetry-fuzz-consent-{}", std::process::id()))
    })
}

fn run(u: &mut Unstructured) -> Result<()> {
    let mut oracle = Oracle {
        exact: true,
        ..Oracle::default()
    };
    let profile = match u.int_in_range(0..=4)? {
        0 => Profile::Chroma,
        1 => Profile::Qdrant,
        2 => Profile::Evidently,
        3 => Profile::Generic(GenericProfile::new("fuzzapp")),
        _ => Profile::Generic(GenericProfile {
            default_enabled: false,
            ..GenericProfile::new("fuzzapp")
        }),
    };

    let explicit = match u.int_in_range(0..=2)? {
        0 => None,
        1 => Some(true),
        _ => Some(false),
    };
    if let Some(on) = explicit {
        oracle.says("explicit", on);
    }

    let mut args = Vec::new();
    let flag = profile.cli_flag();
    let mut ended = false;
    for _ in 0..u.int_in_range(0..=4)? {
        let arg = match (u.int_in_range(0..=5)?, flag) {
            (0, _) => "--".to_string(),
            (1, Some(f)) => f.to_string(),
            (2 | 3, Some(f)) => format!("{f}={}", safe_word(u)?),
            _ => String::from_utf8_lossy(&env_value(u)?.into_vec()).into_owned(),
        };
        if !ended {
            if arg == "--" {
                ended = true;
            } else if let Some(f) = flag {
                if arg == f {
                    oracle.says("cli flag", false);
                } else if let Some(value) = arg.strip_prefix(f).and_then(|r| r.strip_prefix('=')) {
                    // The bare flag and `=true` disable, `=false` enables.
                    match expected_bool(value) {
                        Ok(Some(false)) => oracle.says("cli flag", true),
                        Ok(_) => oracle.says("cli flag", false),
                        Err(()) => oracle.off.push(format!("cli flag: non-boolean {value:?}")),
                    }
                }
            }
        }
        args.push(arg);
    }

    let root = scratch();
    let work = root.join("work");
    let home = root.join("home");
    // Clear what an earlier input placed (cheaper than removing the whole tree).
    for stale in [work.join("config"), work.join(".env"), home.join(".local")] {
        let _ = fs::remove_file(&stale).or_else(|_| fs::remove_dir_all(&stale));
    }
    fs::create_dir_all(&work).unwrap();
    fs::create_dir_all(&home).unwrap();

    let mut env = MapEnvironment::new().with("HOME", home.clone());
    let switches: Vec<(String, Polarity)> = profile
        .env_switches()
        .into_iter()
        .map(|s| (s.name, s.polarity))
        .collect();
    for (name, polarity) in &switches {
        if u.ratio(1, 2)? {
            let value = env_value(u)?;
            match value.to_str() {
                Some(text) => oracle.boolean(name, text, *polarity),
                None => oracle.off.push(format!("{name}: not UTF-8")),
            }
            env.set(name.clone(), value);
        }
    }
    if u.ratio(1, 4)? {
        let value = env_value(u)?;
        let word = value.to_string_lossy().trim().to_ascii_lowercase();
        if !(word.is_empty() || word == "0" || word == "false") {
            oracle.says("DO_NOT_TRACK", false);
        }
        env.set("DO_NOT_TRACK", value);
    }

    for switch in profile.config_switches() {
        let spec = yaml_file(u, &mut oracle, switch.file)?;
        place(&work.join(switch.file), spec);
    }
    if profile.reads_dotenv() {
        let spec = dotenv_file(u, &mut oracle, &switches)?;
        place(&work.join(".env"), spec);
    }

    // The user's persisted choice, where the profile keeps it under this HOME.
    let choice_path = consent::user_choice_path(&profile, &env).expect("HOME is set");
    match u.int_in_range(0..=5)? {
        0 => {
            oracle.says("user choice", true);
            place(&choice_path, Some(FileSpec::Content(b"enabled\n".to_vec())));
        }
        1 => {
            oracle.says("user choice", false);
            place(&choice_path, Some(FileSpec::Content(b" Disabled".to_vec())));
        }
        2 => {
            oracle.off.push("user choice: garbage".into());
            place(&choice_path, Some(FileSpec::Content(b"maybe".to_vec())));
        }
        _ => {}
    }

    let mode = if u.ratio(1, 2)? {
        RunMode::Cli
    } else {
        RunMode::Library
    };
    if profile.cli_mode_only() && mode == RunMode::Library {
        oracle.says("library mode", false);
    }

    let inputs = ConsentInputs {
        explicit,
        args,
        config_dir: None,
        working_dir: Some(work),
        mode,
    };
    let decision = consent::resolve(&profile, &inputs, &env);

    // Always a decision, with the source that made it, printable both ways.
    assert!(decision.decided_by.is_some(), "{decision:?}");
    let _ = decision.to_string();
    let _ = decision.to_json_pretty();
    if decision.enabled {
        assert!(
            decision.warnings.is_empty(),
            "on despite warnings: {decision:?}"
        );
        assert!(
            decision
                .sources
                .iter()
                .all(|s| s.says != Says::Off || s.kind == consent::SourceKind::Default),
            "on although a source says off: {decision:?}"
        );
    }
    assert!(
        oracle.off.is_empty() || !decision.enabled,
        "on although {:?}: {decision:?}",
        oracle.off
    );
    if oracle.exact && oracle.off.is_empty() {
        let expected = oracle.on || profile.default_enabled();
        assert_eq!(decision.enabled, expected, "{decision:?}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
});
