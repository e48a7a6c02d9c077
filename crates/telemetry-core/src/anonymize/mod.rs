//! Anonymization: what is left of a property value before it leaves the machine.
//!
//! Runs on the worker thread, never on the caller's. Each property is treated by its
//! declared [`PropertyKind`]; undeclared values are treated by their JSON type, and a string
//! that was not declared safe is replaced by a keyed hash ([`Anonymizer::hash`]): HMAC-SHA256
//! with the install's secret, so equal values still count as equal while a dictionary attack
//! from outside (hashing `"my_collection"` and comparing) gets nowhere.
//!
//! Numbers keep a profile's number of leading digits ([`round_number`]), free text loses
//! e-mail addresses, IPs, URLs, paths, home directories, user and host names
//! ([`Anonymizer::scrub_text`]), and timestamps are cut to the second ([`timestamp`]).
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

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv6Addr;
use std::ops::Range;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use sha2::Sha256;

use crate::env::Environment;

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

/// One regex matching the user and host names, longest first, so that a host name that
/// contains the user name (`alice-laptop`) is replaced as a whole, in a single pass.
#[derive(Clone)]
struct NamePattern {
    regex: Regex,
    /// The placeholder of capture group `i + 1`.
    placeholders: Vec<&'static str>,
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

    /// Replaces e-mails, IPs, URLs, home dirs, user and host names; paths keep the file name.
    ///
    /// Placeholders: `<url>`, `<email>`, `<ip>` (IPv4 and IPv6, with a CIDR suffix or zone if
    /// present), `~` for a home directory on its own, `<user>`, `<host>`. An absolute path
    /// (`/a/b/c.py`, `~/x.rs`, `C:\a\c.txt`, `\\server\share\f`) becomes its last component,
    /// which is scrubbed in turn (`/var/log/10.0.0.1.log` gives `<ip>.log`). Input longer than
    /// [`MAX_TEXT_BYTES`] is cut first and marked with [`TRUNCATION_MARKER`].
    ///
    /// Every rule finds its matches in the original text, in priority order (URLs, IPv6,
    /// paths, e-mails, IPv4); a match that overlaps an earlier rule's match is dropped, and
    /// the names rule runs only on the text between matches. So a placeholder is never
    /// scanned again and never re-mangled, whatever the user or host is called.
    pub fn scrub_text(&self, s: &str) -> String {
        let (text, truncated) = truncate_text(s);
        let mut out = self.scrub(text, true);
        if truncated {
            out.push_str(TRUNCATION_MARKER);
        }
        out
    }

    /// `paths` is false when scrubbing a file name that a path was reduced to.
    fn scrub(&self, text: &str, paths: bool) -> String {
        let mut spans = Spans::default();
        for m in URL.find_iter(text) {
            let url = m
                .as_str()
                .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}']);
            spans.add(
                m.start()..m.start() + url.len(),
                Replacement::Fixed("<url>"),
            );
        }
        collect_ipv6(text, &mut spans);
        if paths {
            self.collect_home(text, &mut spans);
            collect_paths(text, &mut spans);
        }
        for m in EMAIL.find_iter(text) {
            spans.add(m.range(), Replacement::Fixed("<email>"));
        }
        collect_ipv4(text, &mut spans);

        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for (start, (end, replacement)) in spans.0 {
            self.replace_names(&text[pos..start], &mut out);
            match replacement {
                Replacement::Fixed(placeholder) => out.push_str(placeholder),
                Replacement::FileName(range) => out.push_str(&self.scrub(&text[range], false)),
            }
            pos = end;
        }
        self.replace_names(&text[pos..], &mut out);
        out
    }

    /// The detected home directory, wherever a path may start, with the path below it.
    /// Handled apart from [`PATH`] because a home may contain spaces (`/Users/Ada Lovelace`).
    fn collect_home(&self, text: &str, spans: &mut Spans) {
        let Some(home) = self.names.home.as_deref() else {
            return;
        };
        for (start, _) in text.match_indices(home) {
            let after_home = start + home.len();
            let starts_path = text[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !is_path_char(c) && c != '/' && c != '\\');
            // `/home/al` is not the home of `/home/alice`; a full stop after the home ends
            // the sentence.
            let ends_component = text[after_home..]
                .trim_start_matches('.')
                .chars()
                .next()
                .is_none_or(|c| !is_path_char(c));
            if !(starts_path && ends_component) {
                continue;
            }
            let tail_len = PATH_TAIL.find(&text[after_home..]).map_or(0, |m| m.end());
            let tail = trim_trailing_dots(&text[after_home..after_home + tail_len]);
            let end = after_home + tail.len();
            let replacement = match last_component(tail) {
                Some(name) => Replacement::FileName(offset_range(text, name)),
                None => Replacement::Fixed("~"),
            };
            spans.add(start..end, replacement);
        }
    }

    fn replace_names(&self, text: &str, out: &mut String) {
        let Some(pattern) = &self.name_pattern else {
            out.push_str(text);
            return;
        };
        let replaced = pattern.regex.replace_all(text, |caps: &Captures<'_>| {
            (1..caps.len())
                .find(|&i| caps.get(i).is_some())
                .map_or("", |i| pattern.placeholders[i - 1])
        });
        out.push_str(&replaced);
    }
}

impl NamePattern {
    fn new(names: &LocalNames) -> Option<Self> {
        let mut words: Vec<(String, &'static str)> = Vec::new();
        if let Some(host) = names
            .host
            .as_deref()
            .map(|h| h.trim().trim_end_matches('.'))
        {
            words.push((host.to_owned(), "<host>"));
            // Messages often carry only the first label of a fully qualified host name.
            if let Some((short, _)) = host.split_once('.') {
                words.push((short.to_owned(), "<host>"));
            }
        }
        if let Some(user) = names.user.as_deref() {
            words.push((user.trim().to_owned(), "<user>"));
        }
        words.retain(|(w, _)| {
            w.chars().count() >= 3
                && !w.eq_ignore_ascii_case("root")
                && !w.eq_ignore_ascii_case("localhost")
        });
        words.sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
        words.dedup_by(|a, b| a.0.to_lowercase() == b.0.to_lowercase());
        if words.is_empty() {
            return None;
        }
        // `\b` only where the name's edge is a word character; elsewhere it would demand a
        // word character next to the name.
        let alternatives: Vec<String> = words
            .iter()
            .map(|(w, _)| {
                let edge = |c: Option<char>| {
                    if c.is_some_and(is_word_char) {
                        r"\b"
                    } else {
                        ""
                    }
                };
                format!(
                    "({}{}{})",
                    edge(w.chars().next()),
                    regex::escape(w),
                    edge(w.chars().next_back())
                )
            })
            .collect();
        let regex = Regex::new(&format!("(?i){}", alternatives.join("|"))).ok()?;
        Some(NamePattern {
            regex,
            placeholders: words.into_iter().map(|(_, p)| p).collect(),
        })
    }
}

/// What a matched span of free text becomes.
enum Replacement {
    Fixed(&'static str),
    /// The file name a path is reduced to, scrubbed again for names, e-mails and IPs.
    FileName(Range<usize>),
}

/// Accepted matches by start offset; they never overlap.
#[derive(Default)]
struct Spans(BTreeMap<usize, (usize, Replacement)>);

impl Spans {
    /// Keeps the match unless it overlaps one accepted before (which has priority).
    fn add(&mut self, range: Range<usize>, replacement: Replacement) {
        if range.is_empty() {
            return;
        }
        // The spans are disjoint, so only the last one starting before `range.end` can reach
        // into `range`.
        if let Some((_, (end, _))) = self.0.range(..range.end).next_back() {
            if *end > range.start {
                return;
            }
        }
        self.0.insert(range.start, (range.end, replacement));
    }
}

/// Characters of a path component: anything but separators, whitespace, quotes and the
/// punctuation that ends a path in messages (`file.rs:42:5`, `"a.py", line 3`, `(x)`).
const PATH_CHAR: &str = r#"[^\s/\\:"'`<>|*?,;()\[\]{}]"#;

fn is_path_char(c: char) -> bool {
    !c.is_whitespace() && !r#"/\:"'`<>|*?,;()[]{}"#.contains(c)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b[a-z][a-z0-9+.\-]*://[^\s"'`<>]+"#).expect("URL pattern compiles")
});

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b",
    )
    .expect("e-mail pattern compiles")
});

/// A run of hex digits, dots and at least two colons, with an optional zone and prefix
/// length: only a candidate, which must also parse as an IPv6 address.
static IPV6_CANDIDATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z_.\-]+)?(?:/[0-9]{1,3})?")
        .expect("IPv6 pattern compiles")
});

static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}\b(?:/[0-9]{1,2}\b)?")
        .expect("IPv4 pattern compiles")
});

/// An absolute path after a character that may precede one. The path alternatives: below
/// `~`, Unix, a Windows drive (either separator), a UNC share.
///
/// A directory may contain single spaces (`C:\Program Files\`, `Application Support/`)
/// because a separator follows it; the last component may not, or the sentence after a
/// path would be taken for part of its file name.
static PATH: LazyLock<Regex> = LazyLock::new(|| {
    let (c, dir) = (PATH_CHAR, path_dir());
    Regex::new(&format!(
        r#"(?:^|[\s"'`(\[{{<>=,;:|])(~(?:[/\\]{dir})*[/\\]{c}*|(?:/{dir})*/{c}+/?|[A-Za-z]:(?:[\\/]{dir})*[\\/]{c}*|\\\\(?:{dir}\\)*{c}+)"#
    ))
    .expect("path pattern compiles")
});

/// A directory name: path characters with single spaces inside.
fn path_dir() -> String {
    format!("{PATH_CHAR}+(?: {PATH_CHAR}+)*")
}

/// The rest of a path after the home directory.
static PATH_TAIL: LazyLock<Regex> = LazyLock::new(|| {
    let (c, dir) = (PATH_CHAR, path_dir());
    Regex::new(&format!(r"^(?:[/\\]{dir})*(?:[/\\]{c}*)?")).expect("path tail pattern compiles")
});

fn collect_ipv6(text: &str, spans: &mut Spans) {
    for m in IPV6_CANDIDATE.find_iter(text) {
        // An address never ends with a dot: that one ends the sentence.
        let candidate = m.as_str().trim_end_matches('.');
        let start = m.start();
        let (address, suffix) = candidate
            .find(['%', '/'])
            .map_or((candidate, ""), |i| candidate.split_at(i));
        // `fe80::1:` in `at fe80::1: refused` is the address and a colon, unless a suffix
        // follows it.
        let trimmed = address.trim_end_matches(':');
        let address = if address.parse::<Ipv6Addr>().is_ok() {
            address
        } else if suffix.is_empty() && trimmed.parse::<Ipv6Addr>().is_ok() {
            trimmed
        } else {
            continue;
        };
        let end = start + address.len() + suffix.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        // Digits rule out Rust and C++ paths made of hex letters (`add::be`), the boundaries
        // rule out pieces of longer words (`f64::EPSILON` is not `f64::e`).
        if address.bytes().any(|b| b.is_ascii_digit())
            && !before.is_some_and(is_word_char)
            && !after.is_some_and(is_word_char)
        {
            spans.add(start..end, Replacement::Fixed("<ip>"));
        }
    }
}

fn collect_ipv4(text: &str, spans: &mut Spans) {
    for m in IPV4.find_iter(text) {
        let address = m.as_str().split('/').next().unwrap_or_default();
        let octets_ok = address.split('.').all(|o| o.parse::<u8>().is_ok());
        // Part of a longer dotted number (`1.2.3.4.5`, an OID or a version) is no address.
        let before = &text[..m.start()];
        let longer_before = before
            .strip_suffix('.')
            .is_some_and(|b| b.ends_with(|c: char| c.is_ascii_alphanumeric()));
        let after = &text[m.end()..];
        let longer_after = after
            .strip_prefix('.')
            .is_some_and(|a| a.starts_with(|c: char| c.is_ascii_digit()));
        if octets_ok && !longer_before && !longer_after {
            spans.add(m.range(), Replacement::Fixed("<ip>"));
        }
    }
}

fn collect_paths(text: &str, spans: &mut Spans) {
    for caps in PATH.captures_iter(text) {
        let Some(m) = caps.get(1) else { continue };
        let path = trim_trailing_dots(m.as_str());
        let range = m.start()..m.start() + path.len();
        if is_home_dir(path) {
            spans.add(range, Replacement::Fixed("~"));
        } else if let Some(name) = last_component(path) {
            spans.add(range, Replacement::FileName(offset_range(text, name)));
        }
    }
}

/// `~`, `/home/<name>`, `/Users/<name>`, `C:\Users\<name>`: a home directory on its own.
fn is_home_dir(path: &str) -> bool {
    let mut parts = path.split(['/', '\\']).filter(|p| !p.is_empty());
    let first = parts.next();
    let rest: Vec<&str> = parts.collect();
    match first {
        Some("~") => rest.is_empty(),
        Some("home") => rest.len() == 1 && path.starts_with('/'),
        Some(p) if p.eq_ignore_ascii_case("users") => rest.len() == 1 && path.starts_with('/'),
        Some(drive) if drive.len() == 2 && drive.ends_with(':') => {
            rest.len() == 2 && rest[0].eq_ignore_ascii_case("users")
        }
        _ => false,
    }
}

/// The last component of a path, unless it is the drive (`C:`) or the `~` it starts with.
fn last_component(path: &str) -> Option<&str> {
    let last = path.rsplit(['/', '\\']).find(|p| !p.is_empty())?;
    let is_root = path.starts_with(last) && (last == "~" || last.ends_with(':'));
    (!is_root).then_some(last)
}

/// Drops the full stop that ends a sentence after a path, not the dots of `..`.
fn trim_trailing_dots(path: &str) -> &str {
    let trimmed = path.trim_end_matches('.');
    if trimmed.is_empty() || trimmed.ends_with(['/', '\\', '~']) {
        path
    } else {
        trimmed
    }
}

/// Where `part`, a subslice of `text`, lies in it.
fn offset_range(text: &str, part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - text.as_ptr() as usize;
    start..start + part.len()
}

/// Cuts text to [`MAX_TEXT_BYTES`] on a character boundary; a word cut in half (half an
/// e-mail address) would no longer match its pattern, so the cut goes back to the last
/// whitespace if there is one in the final KiB.
fn truncate_text(s: &str) -> (&str, bool) {
    if s.len() <= MAX_TEXT_BYTES {
        return (s, false);
    }
    let mut end = MAX_TEXT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let kept = &s[..end];
    let cut = kept
        .rfind(char::is_whitespace)
        .filter(|&i| i + 1024 >= end)
        .unwrap_or(end);
    (&kept[..cut], true)
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
            "1:", "a::", "1.", "/a", "/a b", "a@", "C:\\", "http://", "alice ",
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
