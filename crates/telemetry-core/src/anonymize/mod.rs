//! Anonymization: what is left of a property value before it leaves the machine.
//!
//! Runs on the worker thread, never on the caller's. Each property is treated by its
//! declared [`PropertyKind`]; undeclared values are treated by their JSON type, and a string
//! that was not declared safe is replaced by a keyed hash ([`Anonymizer::hash`]): HMAC-SHA256
//! with the install's secret, so equal values still count as equal while a dictionary attack
//! from outside (hashing `"my_collection"` and comparing) gets nowhere.
//!
//! Numbers keep a profile's number of leading digits ([`round_number`]), free text loses
//! e-mail addresses, IPs, URLs, host and domain names, secrets, the directories of paths,
//! home directories and user names ([`Anonymizer::scrub_text`]), and timestamps are cut to
//! the second ([`timestamp`]).
//!
//! ```
//! use serde_json::json;
//! use telemetry_core::anonymize::{Anonymizer, LocalNames, PropertyKind};
//!
//! let names = LocalNames {
//!     home: Some("/home/ada".into()),
//!     user: Some("ada".into()),
//!     host: Some("ada-laptop".into()),
//! };
//! let anonymizer = Anonymizer::new([7; 32], 3).with_local_names(names);
//!
//! let rounded = anonymizer.value(Some(PropertyKind::Number), json!(123456789));
//! assert_eq!(rounded, Some(json!(123000000)));
//!
//! let hashed = anonymizer.value(None, json!("my_collection")).unwrap();
//! assert_eq!(hashed, json!(anonymizer.hash("my_collection")));
//! assert_eq!(hashed.as_str().unwrap().len(), 16);
//!
//! assert_eq!(
//!     anonymizer.scrub_text("ada on ada-laptop failed to open /home/ada/notes.txt for ada@example.com"),
//!     "<user> on <host> failed to open notes.txt for <email>",
//! );
//! assert_eq!(anonymizer.value(Some(PropertyKind::Dropped), json!("x")), None);
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use sha2::Sha256;

use crate::env::Environment;

mod fields;
mod hosts;
mod secrets;
mod text;

use text::NamePattern;

type HmacSha256 = Hmac<Sha256>;

/// Free text longer than this many bytes is cut before scrubbing, which bounds its cost.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Appended to free text that was cut at [`MAX_TEXT_BYTES`].
pub const TRUNCATION_MARKER: &str = "…[truncated]";

/// How a property is anonymized; serialized in snake case (`"hashed"`).
///
/// A property without a declared kind is treated by its JSON type: strings are hashed,
/// numbers rounded, booleans and null kept, arrays and objects treated element by element
/// (object keys hashed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyKind {
    /// Sent unchanged, nested values included: the integrator vouches that it is not private.
    Safe,
    /// Replaced by the keyed hash: strings directly, numbers and booleans from their JSON
    /// text, every leaf and key of arrays and objects. Null stays null.
    Hashed,
    /// Numbers sent unchanged, because sums must add up (`batch_size`, summed counters);
    /// anything else is treated as undeclared.
    Exact,
    /// Numbers rounded to the profile's precision; anything else is treated as undeclared.
    Number,
    /// Free text (error messages, backtraces): strings, and strings inside an array, are
    /// scrubbed by [`Anonymizer::scrub_text`]; anything else is treated as undeclared.
    Text,
    /// Never sent.
    Dropped,
}

impl PropertyKind {
    /// The kind's name as written in JSON and in the bindings: `"safe"`, `"hashed"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyKind::Safe => "safe",
            PropertyKind::Hashed => "hashed",
            PropertyKind::Exact => "exact",
            PropertyKind::Number => "number",
            PropertyKind::Text => "text",
            PropertyKind::Dropped => "dropped",
        }
    }
}

impl fmt::Display for PropertyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PropertyKind {
    type Err = String;

    /// Parses a kind's name as [`PropertyKind::as_str`] writes it, so the bindings can pass
    /// kinds as plain strings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALL: [PropertyKind; 6] = [
            PropertyKind::Safe,
            PropertyKind::Hashed,
            PropertyKind::Exact,
            PropertyKind::Number,
            PropertyKind::Text,
            PropertyKind::Dropped,
        ];
        ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("unknown property kind `{s}` (expected safe, hashed, exact, number, text or dropped)")
        })
    }
}

/// Names of this machine that free text must not reveal.
///
/// ```
/// use telemetry_core::anonymize::LocalNames;
/// use telemetry_core::env::MapEnvironment;
/// let env = MapEnvironment::new().with("HOME", "/home/ada/").with("LOGNAME", "ada");
/// let names = LocalNames::detect(&env);
/// assert_eq!(names.home.as_deref(), Some("/home/ada"));
/// assert_eq!(names.user.as_deref(), Some("ada"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalNames {
    /// The user's home directory, without a trailing separator.
    pub home: Option<String>,
    /// The login name.
    pub user: Option<String>,
    /// The machine's host name, as the system reports it.
    pub host: Option<String>,
}

impl LocalNames {
    /// From `HOME` (else `USERPROFILE`), `USER`/`LOGNAME`/`USERNAME` (the first one set and
    /// non-empty) and the host name from the system (`gethostname`; `COMPUTERNAME` where
    /// there is no `gethostname`). A home of `/` is ignored: scrubbing it would eat every
    /// path separator.
    pub fn detect(env: &dyn Environment) -> Self {
        let non_empty = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
        let home = non_empty("HOME")
            .or_else(|| non_empty("USERPROFILE"))
            .map(|h| h.trim_end_matches(['/', '\\']).to_owned())
            .filter(|h| !h.is_empty());
        let user = ["USER", "LOGNAME", "USERNAME"]
            .into_iter()
            .find_map(non_empty)
            .map(|u| u.trim().to_owned());
        LocalNames {
            home,
            user,
            host: host_name(env),
        }
    }
}

#[cfg(unix)]
fn host_name(_env: &dyn Environment) -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes, and gethostname writes at most
    // that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    // POSIX leaves the result unterminated when the name was truncated.
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = std::str::from_utf8(&buf[..len]).ok()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(not(unix))]
fn host_name(env: &dyn Environment) -> Option<String> {
    env.var("COMPUTERNAME").filter(|v| !v.trim().is_empty())
}

/// Applies the anonymization rules with one install's secret.
///
/// Cheap to clone (the keyed HMAC state and compiled patterns are shared or small), so one
/// anonymizer can serve a worker for its lifetime.
#[derive(Clone)]
pub struct Anonymizer {
    /// HMAC state already keyed with the secret; cloned per hash instead of re-keying.
    mac: HmacSha256,
    precision: u32,
    names: LocalNames,
    name_pattern: Option<NamePattern>,
}

impl fmt::Debug for Anonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anonymizer")
            .field("secret", &"<redacted>")
            .field("precision", &self.precision)
            .field("names", &self.names)
            .finish()
    }
}

impl Anonymizer {
    /// An anonymizer keyed with the install's 32-byte `secret`, keeping `precision` leading
    /// digits of numbers (a precision of 0 is taken as 1).
    pub fn new(secret: [u8; 32], precision: u32) -> Self {
        let mac = HmacSha256::new_from_slice(&secret).expect("HMAC accepts keys of any length");
        Anonymizer {
            mac,
            precision: precision.max(1),
            names: LocalNames::default(),
            name_pattern: None,
        }
    }

    /// Also scrubs this machine's home directory, user name and host name from free text.
    /// User and host names shorter than 3 characters are not scrubbed (they would wreck
    /// ordinary words), nor are `root` and `localhost`, which identify nobody.
    pub fn with_local_names(mut self, names: LocalNames) -> Self {
        self.name_pattern = NamePattern::new(&names);
        self.names = LocalNames {
            home: names
                .home
                .map(|h| h.trim_end_matches(['/', '\\']).to_owned())
                .filter(|h| h.chars().count() >= 2),
            ..names
        };
        self
    }

    /// The number of leading digits numbers keep.
    pub fn precision(&self) -> u32 {
        self.precision
    }

    /// The names scrubbed from free text.
    pub fn local_names(&self) -> &LocalNames {
        &self.names
    }

    /// HMAC-SHA256 of the UTF-8 bytes of `s` keyed with the secret; the first 8 bytes as 16
    /// lowercase hex characters.
    pub fn hash(&self, s: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(s.as_bytes());
        let tag = mac.finalize().into_bytes();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(16);
        for &b in &tag[..8] {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }

    /// Anonymizes one property value; `None` drops it. `kind` None = by value type.
    /// See [`PropertyKind`] for what each kind does.
    pub fn value(&self, kind: Option<PropertyKind>, value: Value) -> Option<Value> {
        let Some(kind) = kind else {
            return Some(self.undeclared(value));
        };
        Some(match (kind, value) {
            (PropertyKind::Dropped, _) => return None,
            (PropertyKind::Safe, v) => v,
            (PropertyKind::Exact, v @ Value::Number(_)) => v,
            (PropertyKind::Number, Value::Number(n)) => round_number(&n, self.precision),
            (PropertyKind::Hashed, v) => self.hashed(v),
            (PropertyKind::Text, Value::String(s)) => Value::String(self.scrub_text(&s)),
            (PropertyKind::Text, Value::Array(items)) => Value::Array(
                items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) => Value::String(self.scrub_text(&s)),
                        other => self.undeclared(other),
                    })
                    .collect(),
            ),
            (PropertyKind::Exact | PropertyKind::Number | PropertyKind::Text, v) => {
                self.undeclared(v)
            }
        })
    }

    fn undeclared(&self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.hash(&s)),
            Value::Number(n) => round_number(&n, self.precision),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.undeclared(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.hash(&k), self.undeclared(v)))
                    .collect(),
            ),
            v @ (Value::Bool(_) | Value::Null) => v,
        }
    }

    fn hashed(&self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.hash(&s)),
            // serde_json's text of the number: `42`, `1.5`, `1e20`.
            Value::Number(n) => Value::String(self.hash(&n.to_string())),
            Value::Bool(b) => Value::String(self.hash(if b { "true" } else { "false" })),
            Value::Null => Value::Null,
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.hashed(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.hash(&k), self.hashed(v)))
                    .collect(),
            ),
        }
    }
}

/// Rounds a JSON number to `precision` leading digits (0 is taken as 1); see [`round_u64`]
/// for integers and [`round_f64`] for floats.
pub fn round_number(n: &Number, precision: u32) -> Value {
    if let Some(u) = n.as_u64() {
        Value::from(round_u64(u, precision))
    } else if let Some(i) = n.as_i64() {
        Value::from(round_i64(i, precision))
    } else {
        round_f64(n.as_f64().unwrap_or(f64::NAN), precision)
    }
}

/// Keeps the `precision` leading digits of `x` (0 is taken as 1) and zeroes the rest:
/// with 3, `123456789` gives `123000000`, `1234` gives `1230`, `999` stays.
pub fn round_u64(x: u64, precision: u32) -> u64 {
    let digits = x.checked_ilog10().map_or(1, |d| d + 1);
    let precision = precision.max(1);
    if digits <= precision {
        return x;
    }
    // At most 20 digits and at least 1 kept: the unit is at most 10^19, which fits.
    let unit = 10u64.pow(digits - precision);
    x / unit * unit
}

/// [`round_u64`] of the absolute value, truncating toward zero: with 3, `-98765` gives
/// `-98700`; `i64::MIN` works.
pub fn round_i64(x: i64, precision: u32) -> i64 {
    let magnitude = round_u64(x.unsigned_abs(), precision);
    if x < 0 {
        // `magnitude` is at most 2^63, so the subtraction is exact (2^63 gives i64::MIN).
        0i64.wrapping_sub_unsigned(magnitude)
    } else {
        // At most `x`, so it fits.
        magnitude as i64
    }
}

/// Keeps `precision` significant digits of a float (0 is taken as 1), truncating toward
/// zero; NaN and infinities give null.
///
/// The digits truncated are those of the shortest decimal that reads back as `x` (what
/// `repr` in Python and `{}` in Rust print), and the result is parsed back from those
/// digits, so `3.14159` gives exactly `3.14`, never `3.1399999`, and `0.1 + 0.2` gives
/// `0.3`. Large integral floats follow the same rule: `1.2345e20` gives `1.23e20`.
///
/// ```
/// use serde_json::json;
/// use telemetry_core::anonymize::round_f64;
/// assert_eq!(round_f64(-2.71828, 3), json!(-2.71));
/// assert_eq!(round_f64(f64::NAN, 3), json!(null));
/// ```
pub fn round_f64(x: f64, precision: u32) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    let precision = precision.max(1) as usize;
    // `{:e}` prints the shortest round-tripping digits: `-2.71828e0`, `1e20`, `1.23e-3`.
    let repr = format!("{x:e}");
    let (mantissa, exponent) = repr.split_once('e').unwrap_or((&repr, "0"));
    let (sign, mantissa) = mantissa
        .strip_prefix('-')
        .map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let rounded = if digits.len() <= precision {
        x
    } else {
        let (first, rest) = digits[..precision].split_at(1);
        let text = if rest.is_empty() {
            format!("{sign}{first}e{exponent}")
        } else {
            format!("{sign}{first}.{rest}e{exponent}")
        };
        text.parse().unwrap_or(x)
    };
    Number::from_f64(rounded).map_or(Value::Null, Value::Number)
}

/// RFC 3339 UTC, truncated to the second: `2026-11-23T09:14:52Z`.
///
/// Times before 1970 give `1970-01-01T00:00:00Z` and times after 9999 give
/// `9999-12-31T23:59:59Z`: a clock that far off is wrong, and the event is still worth
/// sending.
pub fn timestamp(t: SystemTime) -> String {
    const LAST_SECOND_OF_9999: u64 = 253_402_300_799;
    let seconds = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(LAST_SECOND_OF_9999);
    let at = i64::try_from(seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Parses a secret written as 64 hex characters (either case), as the test vectors and the
/// bindings' test helpers pass it.
///
/// ```
/// let secret = telemetry_core::anonymize::from_hex_secret(&"0f".repeat(32)).unwrap();
/// assert_eq!(secret, [0x0f; 32]);
/// ```
pub fn from_hex_secret(hex: &str) -> Result<[u8; 32], String> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return Err(format!(
            "a secret is 64 hex characters, got {} bytes",
            hex.len()
        ));
    }
    let nibble = |b: u8| {
        char::from(b)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| format!("`{}` is not a hex digit", char::from(b)))
    };
    let mut secret = [0u8; 32];
    for (byte, pair) in secret.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Ok(secret)
}

/// One call for the bindings and the test vectors: anonymizes `value` as a property of
/// `kind` (None = undeclared) with this secret, precision and set of local names; `None`
/// means the property is dropped.
///
/// ```
/// use serde_json::json;
/// use telemetry_core::anonymize::{anonymize_json, LocalNames, PropertyKind};
/// let out = anonymize_json([0; 32], 6, LocalNames::default(), Some(PropertyKind::Number), json!(123456789));
/// assert_eq!(out, Some(json!(123456000)));
/// ```
pub fn anonymize_json(
    secret: [u8; 32],
    precision: u32,
    local_names: LocalNames,
    kind: Option<PropertyKind>,
    value: Value,
) -> Option<Value> {
    Anonymizer::new(secret, precision)
        .with_local_names(local_names)
        .value(kind, value)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::env::MapEnvironment;

    fn alice() -> Anonymizer {
        Anonymizer::new([1; 32], 3).with_local_names(LocalNames {
            home: Some("/home/alice".into()),
            user: Some("alice".into()),
            host: Some("alice-laptop.example.com".into()),
        })
    }

    #[test]
    fn detect_reads_the_injected_environment() {
        let env = MapEnvironment::new()
            .with("HOME", "/Users/Ada Lovelace/")
            .with("USER", "")
            .with("LOGNAME", "ada");
        let names = LocalNames::detect(&env);
        assert_eq!(names.home.as_deref(), Some("/Users/Ada Lovelace"));
        assert_eq!(names.user.as_deref(), Some("ada"));

        let bare = LocalNames::detect(&MapEnvironment::new().with("HOME", "/"));
        assert_eq!((bare.home, bare.user), (None, None));
    }

    #[test]
    fn a_detected_home_with_spaces_is_scrubbed_whole() {
        let a = Anonymizer::new([1; 32], 3).with_local_names(LocalNames {
            home: Some("/Users/Ada Lovelace".into()),
            ..LocalNames::default()
        });
        assert_eq!(
            a.scrub_text("in /Users/Ada Lovelace/src/x.py and /Users/Ada Lovelace."),
            "in x.py and ~."
        );
    }

    #[test]
    fn a_directory_that_merely_starts_with_the_home_is_not_the_home() {
        let a = Anonymizer::new([1; 32], 3).with_local_names(LocalNames {
            home: Some("/srv/ada".into()),
            ..LocalNames::default()
        });
        assert_eq!(a.scrub_text("/srv/adam and /srv/ada"), "adam and ~");
        assert_eq!(a.scrub_text("/srv/ada.bak/y.txt"), "y.txt");
    }

    #[test]
    fn placeholders_are_never_scrubbed_again() {
        let a = Anonymizer::new([1; 32], 3).with_local_names(LocalNames {
            home: None,
            user: Some("host".into()),
            host: Some("url".into()),
        });
        assert_eq!(
            a.scrub_text("host on url fetched https://x.io for a@b.io"),
            "<user> on <host> fetched <url> for <email>"
        );
    }

    #[test]
    fn fully_qualified_host_names_are_scrubbed_with_their_first_label() {
        assert_eq!(
            alice().scrub_text("alice-laptop.example.com aka alice-laptop, user alice"),
            "<host> aka <host>, user <user>"
        );
    }

    #[test]
    fn local_names_are_found_in_any_case_beyond_ascii() {
        let a = Anonymizer::new([1; 32], 3).with_local_names(LocalNames {
            home: None,
            user: Some("jürgen".into()),
            host: Some("Straße-PC".into()),
        });
        assert_eq!(
            a.scrub_text("JÜRGEN on STRASSE-PC, Jürgen on straße-pc"),
            // `ß` has no one-letter upper case, so `SS` is another spelling, not its case.
            "<user> on STRASSE-PC, <user> on <host>"
        );
    }

    #[test]
    fn a_url_ends_at_any_unicode_white_space() {
        assert_eq!(
            alice().scrub_text("see https://x.example/a?k=v\u{3000}then\u{a0}more"),
            "see <url>\u{3000}then\u{a0}more"
        );
    }

    #[test]
    fn root_and_localhost_identify_nobody_and_stay() {
        let a = Anonymizer::new([1; 32], 3).with_local_names(LocalNames {
            home: Some("/root".into()),
            user: Some("root".into()),
            host: Some("localhost".into()),
        });
        assert_eq!(
            a.scrub_text("root cause: localhost refused, see /root/log.txt"),
            "root cause: localhost refused, see log.txt"
        );
    }

    #[test]
    fn long_text_is_cut_at_64_kib_on_a_char_boundary() {
        // 'é' is two bytes, so the limit falls inside a character.
        let long = format!("x{}", "é".repeat(MAX_TEXT_BYTES));
        let out = alice().scrub_text(&long);
        let kept = out
            .strip_suffix(TRUNCATION_MARKER)
            .expect("marked as truncated");
        assert_eq!(kept.len(), MAX_TEXT_BYTES - 1);

        // A word cut in half is dropped rather than left half-scrubbed.
        let mut text = "a ".repeat(MAX_TEXT_BYTES / 2 - 4);
        text.push_str("alice@example.com");
        let out = alice().scrub_text(&text);
        assert!(out.ends_with(&format!(" a{TRUNCATION_MARKER}")));
        assert!(!out.contains("alice"));

        let short = "a".repeat(MAX_TEXT_BYTES);
        assert_eq!(alice().scrub_text(&short), short);
    }

    #[test]
    fn adversarial_text_is_scrubbed_in_bounded_time() {
        for unit in [
            "1:",
            "a::",
            "1.",
            "/a",
            "/a b",
            "a@",
            "C:\\",
            "http://",
            "alice ",
            // The rules for secrets, hosts and users: keys whose quoted values never close,
            // phrases, dotted names, ports, runs, paths glued together, placeholders.
            "password=\"",
            "token: '",
            "Authorization: \"",
            "Cookie: ",
            "Bearer a1b2c3d4e5 ",
            "host \"",
            "user '",
            "lookup a",
            "host=",
            "a.b",
            "a.com.",
            "a:80 ",
            "a-1:5432",
            "eyJ",
            "ghp_",
            "-----BEGIN A-----",
            "Aa1",
            "/a//",
            "~a/",
            "C:\\a b\\",
            "\"/a b",
            "home/a/",
            "x=y&",
            "--password ",
            "'--host', '",
            "<host>",
            "<secret>.",
        ] {
            let text = unit.repeat(MAX_TEXT_BYTES / unit.len() + 10);
            let started = std::time::Instant::now();
            let out = alice().scrub_text(&text);
            assert!(out.ends_with(TRUNCATION_MARKER));
            // Generous: linear work on 64 KiB takes milliseconds even unoptimized.
            assert!(started.elapsed() < Duration::from_secs(10), "{unit}");
        }
    }

    #[test]
    fn hash_is_keyed() {
        let a = Anonymizer::new([1; 32], 3);
        let b = Anonymizer::new([2; 32], 3);
        assert_eq!(a.hash("my_collection"), a.clone().hash("my_collection"));
        assert_ne!(a.hash("my_collection"), b.hash("my_collection"));
        assert!(a
            .hash("")
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let shown = format!("{:?}", Anonymizer::new([0xab; 32], 3));
        assert!(
            shown.contains("<redacted>") && !shown.contains("171"),
            "{shown}"
        );
    }

    #[test]
    fn precision_zero_is_taken_as_one() {
        let a = Anonymizer::new([1; 32], 0);
        assert_eq!(a.precision(), 1);
        assert_eq!(a.value(None, json!(987)), Some(json!(900)));
        assert_eq!(round_u64(987, 0), 900);
    }

    #[test]
    fn integers_round_without_floats() {
        assert_eq!(round_u64(u64::MAX, 19), 18_446_744_073_709_551_610);
        assert_eq!(round_u64(u64::MAX, 20), u64::MAX);
        assert_eq!(round_i64(i64::MIN, 19), i64::MIN);
        assert_eq!(round_i64(i64::MIN, 1), -9_000_000_000_000_000_000);
        assert_eq!(round_i64(i64::MAX, 2), 9_200_000_000_000_000_000);
    }

    #[test]
    fn non_finite_floats_become_null_and_signed_zero_stays() {
        assert_eq!(round_f64(f64::NAN, 3), Value::Null);
        assert_eq!(round_f64(f64::INFINITY, 3), Value::Null);
        assert_eq!(round_f64(f64::NEG_INFINITY, 3), Value::Null);
        assert_eq!(round_f64(-0.0, 3).to_string(), "-0.0");
        assert_eq!(round_f64(f64::MAX, 3), json!(1.79e308));
        assert_eq!(round_f64(5e-324, 3), json!(5e-324));
    }

    #[test]
    fn timestamps_are_cut_to_the_second_and_clamped() {
        let at = UNIX_EPOCH + Duration::new(1_795_425_292, 999_999_999);
        assert_eq!(timestamp(at), "2026-11-23T09:14:52Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            timestamp(UNIX_EPOCH - Duration::from_secs(86_400)),
            "1970-01-01T00:00:00Z"
        );
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(timestamp(far), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn kinds_parse_and_serialize_by_their_snake_case_names() {
        for kind in ["safe", "hashed", "exact", "number", "text", "dropped"] {
            let parsed: PropertyKind = kind.parse().unwrap();
            assert_eq!(parsed.to_string(), kind);
            assert_eq!(serde_json::to_value(parsed).unwrap(), json!(kind));
        }
        assert!("Safe".parse::<PropertyKind>().is_err());
    }

    #[test]
    fn hex_secrets_must_be_64_hex_characters() {
        let hex = "00".repeat(31) + "fF";
        assert_eq!(from_hex_secret(&hex).unwrap()[31], 0xff);
        assert!(from_hex_secret("00").is_err());
        assert!(from_hex_secret(&"zz".repeat(32)).is_err());
        assert!(from_hex_secret(&"é".repeat(32)).is_err());
    }
}
