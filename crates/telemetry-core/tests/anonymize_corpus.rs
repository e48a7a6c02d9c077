//! Properties of the free-text scrubber over the shared corpus of realistic error messages
//! and stack traces (`corpus: ...` cases of `tests/vectors/anonymize.json`, whose exact
//! outputs `anonymize_vectors.rs` and the Go and Python suites check):
//!
//! - no planted secret, host or user name survives scrubbing;
//! - at least 95% of the names that make a report useful (functions and files of frames,
//!   exception types, modules) do;
//! - scrubbing is idempotent: over every text vector, and over text spliced at random from
//!   the corpus, scrubbing scrubbed text changes nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use telemetry_core::anonymize::{Anonymizer, LocalNames};

#[derive(Clone)]
struct Case {
    name: String,
    input: String,
    names: LocalNames,
    planted: Vec<String>,
    keep: Vec<String>,
}

fn local_names(v: &Value) -> LocalNames {
    let field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    LocalNames {
        home: field("home"),
        user: field("user"),
        host: field("host"),
    }
}

fn strings(v: &Value, field: &str, case: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{case}: `{field}` is an array"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("{case}: `{field}` holds strings"))
                .to_owned()
        })
        .collect()
}

/// Every text vector whose input is a string, and which of them are the corpus.
fn text_cases() -> (Vec<Case>, Vec<Case>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/anonymize.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (mut all, mut corpus) = (Vec::new(), Vec::new());
    for case in doc["cases"].as_array().unwrap() {
        let (Some("text"), Some(input)) = (case["kind"].as_str(), case["input"].as_str()) else {
            continue;
        };
        let name = case["name"].as_str().unwrap().to_owned();
        let names = local_names(case.get("local_names").unwrap_or(&doc["local_names"]));
        let is_corpus = name.starts_with("corpus: ");
        let c = Case {
            planted: if is_corpus {
                strings(case, "planted", &name)
            } else {
                Vec::new()
            },
            keep: if is_corpus {
                strings(case, "keep", &name)
            } else {
                Vec::new()
            },
            name,
            input: input.to_owned(),
            names,
        };
        if is_corpus {
            corpus.push(c.clone());
        }
        all.push(c);
    }
    (all, corpus)
}

fn scrubber(names: &LocalNames) -> Anonymizer {
    Anonymizer::new([0; 32], 3).with_local_names(names.clone())
}

#[test]
fn the_corpus_is_large_and_its_markers_are_in_the_inputs() {
    let (_, corpus) = text_cases();
    assert!(corpus.len() >= 60, "only {} corpus cases", corpus.len());
    let planted: usize = corpus.iter().map(|c| c.planted.len()).sum();
    let kept: usize = corpus.iter().map(|c| c.keep.len()).sum();
    assert!(
        planted >= 100 && kept >= 200,
        "{planted} planted, {kept} kept"
    );
    // A marker that is not in the input proves nothing when it is not in the output.
    for case in &corpus {
        assert!(
            !(case.planted.is_empty() && case.keep.is_empty()),
            "{}: nothing to check",
            case.name
        );
        for marker in case.planted.iter().chain(&case.keep) {
            assert!(
                !marker.is_empty() && case.input.contains(marker.as_str()),
                "{}: `{marker}` is not in the input",
                case.name
            );
        }
    }
}

#[test]
fn no_planted_secret_host_or_user_name_survives() {
    let (_, corpus) = text_cases();
    let mut leaks = Vec::new();
    for case in &corpus {
        let out = scrubber(&case.names).scrub_text(&case.input);
        for planted in &case.planted {
            if out.contains(planted.as_str()) {
                leaks.push(format!("{}: `{planted}` in\n{out}", case.name));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n\n"));
}

#[test]
fn at_least_95_percent_of_frames_keep_their_function_and_file_names() {
    let (_, corpus) = text_cases();
    let (mut kept, mut total, mut lost) = (0, 0, Vec::new());
    for case in &corpus {
        let out = scrubber(&case.names).scrub_text(&case.input);
        for name in &case.keep {
            total += 1;
            if out.contains(name.as_str()) {
                kept += 1;
            } else {
                lost.push(format!("{}: `{name}`", case.name));
            }
        }
    }
    println!("{kept} of {total} names kept; lost: {lost:#?}");
    assert!(
        kept * 100 >= total * 95,
        "only {kept} of {total} names kept; lost: {lost:#?}"
    );
}

#[test]
fn scrubbing_scrubbed_vectors_changes_nothing() {
    let (all, _) = text_cases();
    let mut changed = Vec::new();
    for case in &all {
        let scrubber = scrubber(&case.names);
        let once = scrubber.scrub_text(&case.input);
        let twice = scrubber.scrub_text(&once);
        if once != twice {
            changed.push(format!(
                "{}\n  once:  {once:?}\n  twice: {twice:?}",
                case.name
            ));
        }
    }
    assert!(changed.is_empty(), "{}", changed.join("\n"));
}

/// SplitMix64: a fixed sequence, so that a failure names its seed and reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A piece of `text` from one random character boundary to another, at most `max` bytes.
fn piece<'a>(rng: &mut Rng, text: &'a str, max: usize) -> &'a str {
    let mut start = rng.below(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + 1 + rng.below(max)).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    &text[start..end]
}

/// Property: for text made of random pieces of every vector input (cut anywhere, so tokens,
/// paths, quotes and hosts are cut in half), joined by the punctuation the rules look at,
/// scrubbing twice gives what scrubbing once gives.
#[test]
fn scrubbing_is_idempotent_on_text_spliced_from_the_corpus() {
    let (all, _) = text_cases();
    let glue = [
        " ", "\n", ": ", ":", "/", "\\", "=", "\"", "'", ", ", "@", ".", "(", ")", "&", "; ",
        " on ", "=\"", "\": \"", "//",
    ];
    let names = [
        LocalNames::default(),
        LocalNames {
            home: Some("/home/alice".into()),
            user: Some("alice".into()),
            host: Some("alice-laptop".into()),
        },
    ];
    // More rounds or another seed from the environment, to search further by hand.
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env("SCRUB_PROPERTY_ROUNDS", 3000) as usize;
    let mut rng = Rng(env("SCRUB_PROPERTY_SEED", 0x5eed_0fc0_ffee));
    let mut failures = Vec::new();
    for round in 0..rounds {
        let mut text = String::new();
        for _ in 0..1 + rng.below(6) {
            let case = &all[rng.below(all.len())];
            text.push_str(piece(&mut rng, &case.input, 120));
            text.push_str(glue[rng.below(glue.len())]);
        }
        let scrubber = scrubber(&names[round % names.len()]);
        let once = scrubber.scrub_text(&text);
        let twice = scrubber.scrub_text(&once);
        if once != twice {
            failures.push(format!(
                "round {round}\n  text:  {text:?}\n  once:  {once:?}\n  twice: {twice:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {rounds} spliced texts changed when scrubbed again:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A 4 KiB traceback made of the corpus scrubs in bounded time: generous enough for an
/// unoptimized build on a busy machine, far below what quadratic work on it would take.
#[test]
fn a_4_kib_traceback_scrubs_quickly() {
    let (_, corpus) = text_cases();
    let mut text = String::new();
    for case in corpus.iter().cycle() {
        if text.len() >= 4096 {
            break;
        }
        text.push_str(&case.input);
        text.push('\n');
    }
    let scrubber = scrubber(&corpus[0].names);
    let started = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        std::hint::black_box(scrubber.scrub_text(std::hint::black_box(&text)));
    }
    let each = started.elapsed() / rounds;
    println!("{} bytes scrubbed in {each:?}", text.len());
    assert!(each < Duration::from_millis(100), "{each:?}");
}

/// The inputs `cargo fuzz` found against the scrubber (fuzz/regressions/scrub_text/),
/// each fixed and kept: scrubbing them twice gives what scrubbing once gave.
#[test]
fn fuzz_findings_scrub_idempotently() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/scrub_text");
    let scrub = scrubber(&LocalNames::default());
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let input = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let once = scrub.scrub_text(&input);
        assert_eq!(
            scrub.scrub_text(&once),
            once,
            "{}: {input:?}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen > 0, "no regression inputs in {}", dir.display());
    // The second: a URL, a bearer token and a host:port run together hid `?token=abc` from
    // the first pass; a scrubbed text is scrubbed again until it stops changing.
    let run_together = std::fs::read_to_string(dir.join("url-bearer-scp-run-together")).unwrap();
    let out = scrub.scrub_text(&run_together);
    assert!(out.contains("?token=<secret>&page=2"), "{out}");
    // The first finding: an scp remote running into a secret ends where the secret starts.
    assert_eq!(scrub.scrub_text("A@g:/?token=a"), "<url><secret>");
    assert_eq!(
        scrub.scrub_text("pull from bob@db01:/backups?token=abc failed"),
        "pull from <url><secret> failed"
    );
}
