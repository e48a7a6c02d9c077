//! The free-text scrubber (`Anonymizer::scrub_text`) on arbitrary text: never a
//! panic, output at most 2 × the input + 64 bytes, idempotent (placeholders are
//! shapes no rule matches), and planted e-mails, IPs, home paths and tokens
//! never survive it (more copies than the text without them keeps).
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_core::anonymize::Anonymizer;

/// Secrets of each kind the scrubber must remove, planted between fuzzed text.
const PLANTED: [&str; 4] = [
    "alice.smith@example.org",
    "10.20.30.40",
    "/home/alice/projects/secret-plan.txt",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
];

fuzz_target!(|data: &[u8]| {
    let scrubber = Anonymizer::new([7; 32], 3);
    let text = String::from_utf8_lossy(data);
    let once = scrubber.scrub_text(&text);
    assert!(
        once.len() <= 2 * text.len() + 64,
        "{} bytes from {}",
        once.len(),
        text.len()
    );
    assert_eq!(
        scrubber.scrub_text(&once),
        once,
        "scrubbing scrubbed text changed it"
    );

    // The same text with each kind of secret planted between spaces in it.
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(text.len(), |(i, _)| i);
    // The fuzzed text may hold the same characters where they are no secret
    // (`/10.20.30.40e` is no address), so what must hold is that the planted copy is
    // gone: no more of them survive than survive in the text without it, and none stands
    // between spaces (a lookalike cut in two at `mid` must not hide a survivor).
    for secret in PLANTED {
        let planted = format!("{} {secret} {}", &text[..mid], &text[mid..]);
        let out = scrubber.scrub_text(&planted);
        assert!(
            out.matches(secret).count() <= once.matches(secret).count()
                && !out.contains(&format!(" {secret} ")),
            "{secret:?} survived in {out:?}"
        );
    }
});
