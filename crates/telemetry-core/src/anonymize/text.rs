//! The free-text scrubber: [`Anonymizer::scrub_text`] and the rules it applies.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::{Anonymizer, LocalNames, MAX_TEXT_BYTES, TRUNCATION_MARKER};

/// One regex matching the user and host names, longest first, so that a host name that
/// contains the user name (`alice-laptop`) is replaced as a whole, in a single pass.
#[derive(Clone)]
pub(super) struct NamePattern {
    regex: Regex,
    /// The placeholder of capture group `i + 1`.
    placeholders: Vec<&'static str>,
}

impl Anonymizer {
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
    pub(super) fn new(names: &LocalNames) -> Option<Self> {
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
