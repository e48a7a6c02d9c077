//! The free-text scrubber: [`Anonymizer::scrub_text`] and the rules it applies.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Captures, Regex, RegexSet};

use super::{fields, hosts, secrets};
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
    /// Replaces what free text (error messages, stack traces) must not carry: addresses,
    /// host and domain names, user names, secrets, and the directories of paths. Code stays:
    /// exception types, function and module names, file names and places in files.
    ///
    /// ```
    /// use telemetry_core::anonymize::Anonymizer;
    /// let a = Anonymizer::new([0; 32], 3);
    /// assert_eq!(
    ///     a.scrub_text(
    ///         "psycopg2.OperationalError: connection to server at \"pg-1.db.internal\" \
    ///          (10.0.0.7), port 5432 failed: FATAL: password authentication failed for user \"app\"\n\
    ///          \x20 File \"/home/bob/svc/db.py\", line 12, in connect (password=Tr0ub4dor&3)",
    ///     ),
    ///     "psycopg2.OperationalError: connection to server at \"<host>\" \
    ///      (<ip>), port 5432 failed: FATAL: password authentication failed for user \"<user>\"\n\
    ///      \x20 File \"db.py\", line 12, in connect (password=<secret>)",
    /// );
    /// ```
    ///
    /// What becomes what:
    ///
    /// - `<url>`: anything with a scheme (`https://...`, `postgres://user:pass@host/db`), and
    ///   scp-style remotes with a path (`git@github.com:team/repo.git`, `bob@db01:/backups`).
    /// - `<secret>`, for the value only (keys and schemes stay):
    ///   - PEM blocks (`-----BEGIN ... PRIVATE KEY-----` to their end line, or to the end of
    ///     a cut message);
    ///   - `Authorization` values after their scheme (`Bearer <secret>`, `Basic <secret>`,
    ///     `Digest <secret>`), `Cookie` and `Set-Cookie` values, and a credential after
    ///     `Bearer` or `Basic` anywhere (`Bearer token required` is prose and stays);
    ///   - values of keys whose last word names a secret: password, passwd, passphrase,
    ///     passcode, pwd, pass, pw, secret, token, api key, access key, secret key, private
    ///     key, auth/signing/encryption/master/client/account key, credential(s), signature,
    ///     sig, session id (`PGPASSWORD`, `client_secret`, `X-Api-Key`, `aws_secret_access_key`,
    ///     SQLAlchemy's `password_1`; the short words pwd, pass, pw and sig only as a word of
    ///     the key: not `bypass`), in the forms `k=v`, `k: v`, `"k": "v"`, `'k': 'v'`, Rust's
    ///     `k: Some("v")`, a query string (`?token=...&page=2`), a DSN
    ///     (`user=app password=x host=db`), ODBC (`Pwd=x;Server=...`), a flag (`--password x`,
    ///     `'--password', 'x'` in an argv list) and SQL (`PASSWORD 'x'`). Values that hide
    ///     nothing stay: `None`, `null`, `YES`, masks (`***`), format placeholders (`%s`,
    ///     `${VAR}`), type names (`password: str`), and a bare word followed by more words
    ///     after a colon (`token: expected identifier`);
    ///   - tokens with a vendor's prefix: GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/
    ///     `github_pat_`, GitLab `glpat-` and kin, Slack `xox[abposre]-`/`xapp-`, AWS
    ///     `AKIA`/`ASIA`/`ABIA`/`ACCA`, Google `AIza`/`ya29.`/`GOCSPX-`, Stripe
    ///     `sk_`/`pk_`/`rk_` `live_`/`test_` and `whsec_`, OpenAI-style `sk-` (`sk-proj-`,
    ///     `sk-ant-`), npm `npm_`, Hugging Face `hf_`, PostHog `phc_`/`phx_`, PyPI `pypi-`,
    ///     SendGrid, Shopify, DigitalOcean, Databricks, Twilio, age, Linear, Docker Hub,
    ///     Vault, Mailgun, Replicate, Groq, xAI, NVIDIA, Square, Atlassian, Grafana; and JWTs
    ///     (`eyJ...`, three dot-separated base64url parts);
    ///   - runs of base64 characters shaped like random data: a segment of 32 hex digits or
    ///     more; 20 characters or more (16 with `=` padding) mixing both letter cases and
    ///     digits in camel-case words averaging under 3 characters (random text averages
    ///     1.5, identifiers such as `Http2ServerConnectionHandler` 4 and more); 32 or more of
    ///     one letter case with at least 4 digits. At most one `+/_-` per 8 characters
    ///     (paths and `snake_case` have more). UUIDs stay.
    /// - `<email>`, `<ip>` (IPv4 and IPv6, with a CIDR suffix or zone if present).
    /// - `<host>`, ports staying: a dotted name whose last label is a known file extension
    ///   is a file, with or without `:line[:col]` (`main.rs:10:5`, `app.py`, `de.rs:42`,
    ///   `install.sh`, `README.md`), even where the extension is also a top-level domain
    ///   (`.rs`, `.py`, `.sh`, `.pl`, `.md`, `.so`, `.zip`); a file named after a host keeps
    ///   its extension (`api.example.com.log` gives `<host>.log`). Otherwise a dotted name is
    ///   a host when its last label is a top-level domain from a curated list (generic ones
    ///   such as `com`, `net`, `org`, `co`, `eu`, country codes seldom taken for code words
    ///   such as `de`, `uk`, `jp`) or a private suffix (`internal`, `local`, `localdomain`,
    ///   `lan`, `corp`, `intranet`, `svc`, `consul`, `arpa`, `onion`); or when it has three
    ///   labels or more and ends with a top-level domain that is also a code word (`io`,
    ///   `ai`, `app`, `dev`, `cloud`, `info`, `me`, `test`, the other country codes:
    ///   `api.acme.io` but not `scipy.io`, `flask.app`, `logger.info`, `args.lr`). A name is
    ///   also a host before a port (`:` and 1 to 65535, not `:line:col`): dotted
    ///   (`db.prod:5432`), or bare with a digit, hyphen or underscore (`redis-node-3:6379`,
    ///   `kafka-0:9092`, `db01:5432`), or bare before a well-known service port
    ///   (`redis:6379`, but not `connectionpool:791`). Never hosts: names with a camel-case
    ///   label without hyphens (`HTTPAdapter`, `OperationalError`; `Alices-MacBook-Pro.local`
    ///   is a host), dotted names with an underscore (`self.conn_pool`), starting with
    ///   `self`/`cls`/`this`/`super`, right after a dot (`.env.local`), called
    ///   (`logger.info(`), settings modules (`myproj.settings.local`), names made of numbers
    ///   only (versions; IPv4 has its own rule), `localhost`, and public module hosts
    ///   starting a Go import path (`github.com/lib/pq.(*conn).recv`; a private one is a
    ///   host: `<host>/team/svc.(*Server).Run`). Also hosts: values of `host=`,
    ///   `hostname:`, `DB_HOST=`, `Server=tcp:...`, `Data Source=`, `--host x` (a value that
    ///   is a path, a socket directory, whole), and names after `host "..."`,
    ///   `host name "..."`, `server at "..."`, `resolve '...'`, Rust's `Domain("...")` and
    ///   `Tcp("...")`, Go's `lookup <name> on` and `lookup <name>:`, curl's
    ///   `resolve host:`, OpenSSH's `resolve hostname` and `connect to host`, Node's
    ///   `ENOTFOUND`.
    /// - `<user>`: values of `user=`, `username:` (quoted), `Uid=`, `PGUSER=`, `--username x`,
    ///   names after `user "..."` and `role "..."` (PostgreSQL, MySQL), the directory after
    ///   `home/` or `Users/` at the start of a relative path, and this machine's user name;
    ///   `root` identifies nobody and stays.
    /// - `~`: a home directory on its own: `/home/bob`, `/Users/carol`, `C:\Users\dave`,
    ///   `C:\Documents and Settings\erin`, `~frank`, `/mnt/c/Users/gina` (WSL),
    ///   `/export/home/hal`, `/var/home/ivan` (but not `/api/v1/users/42`).
    /// - An absolute path (`/a/b/c.py`, `~/x.rs`, `~alice/x.rs`, `C:\a\c.txt`,
    ///   `\\?\C:\a\c.txt`, `\\server\share\f`) loses its directories; its last component
    ///   stays, where the other rules see it (`/var/log/10.0.0.1.log` gives `<ip>.log`). A
    ///   directory may contain single spaces (`Program Files`) when the path's separator
    ///   follows; a quoted path may contain spaces up to its closing quote
    ///   (`'/Users/Ada Lovelace/My Notes.txt'`); a request line is no directory
    ///   (`GET /v1/items HTTP/1.1`).
    ///
    /// Input longer than [`MAX_TEXT_BYTES`] is cut first and marked with
    /// [`TRUNCATION_MARKER`].
    ///
    /// Every rule finds its matches in the original text, in priority order: placeholders
    /// already there, PEM blocks, URLs, authorization headers, secret, host and user keys,
    /// scp remotes, IPv6, the home directory and paths, vendor tokens and JWTs, e-mails, host
    /// names, IPv4, user directories, random-looking runs (judged in the text between the
    /// other matches). A match that overlaps an earlier rule's match is dropped; a value
    /// or a path is cut where an earlier match starts inside it; a name or run glued to an
    /// earlier match is part of a longer word and left alone. This machine's user and host
    /// names are replaced only in the text between matches. So a placeholder is never
    /// scanned again and never re-mangled, whatever the user or host is called, and
    /// scrubbing scrubbed text changes nothing.
    pub fn scrub_text(&self, s: &str) -> String {
        let (text, truncated) = truncate_text(s);
        let mut out = self.scrub(text);
        // Rules meet one another only as overlaps, and one resolved in the first pass can
        // hide a secret its output shows plainly (a URL, a bearer token and a host:port
        // run together left `?token=abc`; fuzz/regressions/scrub_text). So a text that
        // changed is scrubbed again until it stops changing: a secret the rules can see
        // never survives, and the result is a fixed point, which is what idempotence
        // promises. A text with nothing to scrub costs one pass, a scrubbed one usually two.
        if out != text {
            for _ in 1..MAX_SCRUB_PASSES {
                let again = self.scrub(&out);
                if again == out {
                    break;
                }
                out = again;
            }
        }
        if truncated {
            out.push_str(TRUNCATION_MARKER);
        }
        out
    }

    /// One pass of every rule over `text`; see [`Anonymizer::scrub_text`].
    fn scrub(&self, text: &str) -> String {
        // The case-insensitive rules search this (same offsets: ASCII letters only change),
        // which lets their literal prefixes be searched for fast.
        let lower = text.to_ascii_lowercase();
        // Each rule runs only if the text has what every one of its matches needs: most
        // texts skip most rules.
        let has = |byte: u8| text.as_bytes().contains(&byte);
        let (dot, colon, at) = (has(b'.'), has(b':'), has(b'@'));
        let digit = text.bytes().any(|b| b.is_ascii_digit());
        let words = Cues::of(&lower);
        let mut spans = Spans::default();
        // Placeholders stay as they are, and no rule sees them (scrubbing scrubbed text).
        if has(b'<') {
            for m in PLACEHOLDER.find_iter(text) {
                if let Some(&placeholder) = PLACEHOLDERS.iter().find(|&&p| p == m.as_str()) {
                    spans.add(m.range(), placeholder);
                }
            }
        }
        if words.has(Cues::PEM) {
            secrets::collect_pem(text, &mut spans);
        }
        if words.has(Cues::URL) {
            collect_urls(text, &mut spans);
        }
        if words.has(Cues::AUTH) {
            secrets::collect_auth_headers(text, &lower, &mut spans);
        }
        if words.has(Cues::SECRET_KEY) {
            fields::collect_secrets(text, &lower, &mut spans);
        }
        // Before paths: a path given as a host or a user (`host=/var/run/postgresql`) goes
        // whole.
        if words.has(Cues::HOST) {
            fields::collect_hosts(text, &lower, &mut spans);
        }
        if words.has(Cues::USER) {
            fields::collect_users(text, &lower, &mut spans);
        }
        if at && colon {
            collect_scp_remotes(text, &mut spans);
        }
        if colon {
            collect_ipv6(text, &mut spans);
        }
        self.collect_home(text, &mut spans);
        if has(b'/') || has(b'\\') || has(b'~') {
            collect_paths(text, &mut spans);
        }
        if text.len() >= 14 {
            secrets::collect_known_tokens(text, &mut spans);
        }
        if at && dot {
            for m in EMAIL.find_iter(text) {
                if !spans.glued(text, &m.range()) {
                    spans.add(m.range(), "<email>");
                }
            }
        }
        if dot || colon {
            hosts::collect_hosts(text, &mut spans);
        }
        if dot && digit {
            collect_ipv4(text, &mut spans);
        }
        collect_user_dirs(text, &mut spans);
        if digit && text.len() >= 16 {
            secrets::collect_shaped(text, &mut spans);
        }

        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for (start, (end, replacement)) in spans.0 {
            self.replace_names(&text[pos..start], &mut out);
            out.push_str(replacement);
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
            let mut range = start..after_home + tail.len();
            extend_over_separators(text, &mut range);
            if let Some(cut) = spans.first_start_in(&range) {
                range.end = cut.max(after_home);
            }
            let (end, tail) = (range.end, &text[after_home..range.end]);
            match last_component(tail) {
                Some(name) => spans.add_path(start..end, offset_range(text, name)),
                None => spans.add(start..end, "~"),
            }
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
                        r"(?-u:\b)"
                    } else {
                        ""
                    }
                };
                format!(
                    "({}{}{})",
                    edge(w.chars().next()),
                    caseless_literal(w),
                    edge(w.chars().next_back())
                )
            })
            .collect();
        let regex = Regex::new(&alternatives.join("|")).ok()?;
        Some(NamePattern {
            regex,
            placeholders: words.into_iter().map(|(_, p)| p).collect(),
        })
    }
}

/// A pattern matching `word` in any case: each letter becomes a class of its upper and
/// lower case forms (`[jJ][üÜ]…`), from the standard library's case tables, so the regex
/// crate needs none of its own (`(?i)` would need its `unicode-case` feature). A letter
/// whose other case is more than one character (`ß`, `ﬁ`) keeps its forms that are one.
fn caseless_literal(word: &str) -> String {
    let mut pattern = String::with_capacity(word.len() * 4);
    for c in word.chars() {
        let mut forms: Vec<char> = vec![c];
        let lower: Vec<char> = c.to_lowercase().collect();
        let upper: Vec<char> = c.to_uppercase().collect();
        for other in [lower, upper] {
            if let [one] = other[..] {
                if !forms.contains(&one) {
                    forms.push(one);
                }
            }
        }
        if forms.len() == 1 {
            pattern.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
        } else {
            pattern.push('[');
            for f in forms {
                pattern.push_str(&regex::escape(f.encode_utf8(&mut [0; 4])));
            }
            pattern.push(']');
        }
    }
    pattern
}

/// Which words that rules need appear in a text: one pass for all the rules.
#[derive(Clone, Copy)]
struct Cues(u8);

/// Every word a rule's matches contain, lower case, with the rules it wakes.
const CUE_WORDS: [(&str, u8); 29] = [
    ("-----begin ", Cues::PEM),
    ("://", Cues::URL),
    ("authorization", Cues::AUTH | Cues::SECRET_KEY),
    ("auth", Cues::AUTH | Cues::SECRET_KEY),
    ("cookie", Cues::AUTH),
    ("bearer", Cues::AUTH),
    ("basic", Cues::AUTH),
    ("pass", Cues::SECRET_KEY),
    ("pw", Cues::SECRET_KEY),
    ("secret", Cues::SECRET_KEY),
    ("token", Cues::SECRET_KEY),
    ("key", Cues::SECRET_KEY),
    ("credential", Cues::SECRET_KEY),
    ("session", Cues::SECRET_KEY),
    ("sig", Cues::SECRET_KEY),
    ("host", Cues::HOST),
    ("server", Cues::HOST),
    ("source", Cues::HOST),
    ("lookup", Cues::HOST),
    ("resolve", Cues::HOST),
    ("enotfound", Cues::HOST),
    ("eai_again", Cues::HOST),
    ("domain(", Cues::HOST),
    ("tcp(", Cues::HOST),
    ("users", Cues::USER),
    ("user", Cues::USER),
    ("uid", Cues::USER),
    ("login", Cues::USER),
    ("role", Cues::USER),
];

static CUES: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(CUE_WORDS.iter().map(|(w, _)| regex::escape(w))).expect("cue patterns compile")
});

impl Cues {
    const PEM: u8 = 1;
    const URL: u8 = 1 << 1;
    const AUTH: u8 = 1 << 2;
    const SECRET_KEY: u8 = 1 << 3;
    const HOST: u8 = 1 << 4;
    const USER: u8 = 1 << 5;

    /// `lower` is the text in lower case. A set finds every word, wherever it is, even
    /// inside another one (`secret` in `usersecret`).
    fn of(lower: &str) -> Cues {
        let found = CUES
            .matches(lower)
            .into_iter()
            .fold(0, |found, i| found | CUE_WORDS[i].1);
        Cues(found)
    }

    fn has(self, rules: u8) -> bool {
        self.0 & rules != 0
    }
}

/// Accepted matches by start offset, with what each becomes; they never overlap.
#[derive(Default)]
pub(super) struct Spans(BTreeMap<usize, (usize, &'static str)>);

impl Spans {
    /// Keeps the match unless it overlaps one accepted before (which has priority).
    pub(super) fn add(&mut self, range: Range<usize>, replacement: &'static str) {
        if range.is_empty() || self.overlaps(&range) {
            return;
        }
        self.0.insert(range.start, (range.end, replacement));
    }

    /// Where the first span that starts inside `range` starts.
    pub(super) fn first_start_in(&self, range: &Range<usize>) -> Option<usize> {
        self.0.range(range.clone()).next().map(|(&start, _)| start)
    }

    /// The text between the spans (and before and after them), with its offset.
    pub(super) fn gaps<'t>(&self, text: &'t str) -> Vec<(usize, &'t str)> {
        let mut gaps = Vec::with_capacity(self.0.len() + 1);
        let mut pos = 0;
        for (&start, &(end, _)) in &self.0 {
            gaps.push((pos, &text[pos..start]));
            pos = end;
        }
        gaps.push((pos, &text[pos..]));
        gaps
    }

    /// Whether `range`, perhaps with dots and hyphens around it, touches a span that leaves a
    /// placeholder: it was glued to what the span replaced (`acme.com.<token>`), so it is
    /// part of a longer word and must be judged as such whether scrubbed once or again.
    pub(super) fn glued(&self, text: &str, range: &Range<usize>) -> bool {
        let before = text[..range.start].trim_end_matches(['.', '-']).len();
        let after = text.len() - text[range.end..].trim_start_matches(['.', '-']).len();
        let ends_at_before = self
            .0
            .range(..before)
            .next_back()
            .is_some_and(|(_, &(end, placeholder))| end == before && !placeholder.is_empty());
        let starts_at_after = self
            .0
            .get(&after)
            .is_some_and(|&(_, placeholder)| !placeholder.is_empty());
        ends_at_before || starts_at_after
    }

    /// Drops the directories of the path at `path`, whose file name is at `name`: the name
    /// stays in the text, where the other rules see it in its context.
    fn add_path(&mut self, path: Range<usize>, name: Range<usize>) {
        if self.overlaps(&(path.start..name.start)) {
            return;
        }
        self.add(path.start..name.start, "");
        self.add(name.end..path.end, "");
    }

    /// Whether `range` overlaps an accepted span: a rule can skip judging such a match.
    pub(super) fn overlaps(&self, range: &Range<usize>) -> bool {
        // The spans are disjoint, so only the last one starting before `range.end` can reach
        // into `range`.
        self.0
            .range(..range.end)
            .next_back()
            .is_some_and(|(_, (end, _))| *end > range.start)
    }
}

/// Unicode's White_Space characters, the set `\s` stands for in a Unicode regex and
/// `char::is_whitespace` tests, written out for use inside a class: the patterns here use
/// no Unicode data of the regex crate, whose tables for `\s` and `(?i)` (the
/// `unicode-perl` and `unicode-case` features) are 240 KB of the shipped library.
macro_rules! white_space {
    () => {
        r"\t\n\x0B\x0C\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
    };
}

/// Characters of a path component: anything but separators, whitespace, quotes and the
/// punctuation that ends a path in messages (`file.rs:42:5`, `"a.py", line 3`, `(x)`).
const PATH_CHAR: &str = concat!("[^", white_space!(), r#"/\\:"'`<>|*?,;()\[\]{}]"#);

/// What may follow the start of a URL or an scp-style remote: anything but whitespace,
/// quotes and angle brackets.
const URL_CHARS: &str = concat!("[^", white_space!(), r#""'`<>]+"#);

fn is_path_char(c: char) -> bool {
    !c.is_whitespace() && !r#"/\:"'`<>|*?,;()[]{}"#.contains(c)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?-u:\b)[A-Za-z][A-Za-z0-9+.\-]*://{URL_CHARS}"))
        .expect("URL pattern compiles")
});

/// An scp-style remote, `user@host:path` (`git@github.com:team/repo.git`): a URL without
/// a scheme, which carries a user name.
static SCP_REMOTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?-u:\b)[A-Za-z0-9._-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?:{URL_CHARS}"
    ))
    .expect("scp remote pattern compiles")
});

fn collect_urls(text: &str, spans: &mut Spans) {
    for m in URL.find_iter(text) {
        let url = trim_url(m.as_str());
        spans.add(m.start()..m.start() + url.len(), "<url>");
    }
}

/// Drops the punctuation that ends the sentence or the parenthesis around a URL.
fn trim_url(url: &str) -> &str {
    url.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}'])
}

/// Runs after the secret keys, so that `Pwd=p@ss:w0rd` is a password, and takes only a
/// remote with a path (`:team/repo.git`, `:/var/backups`, `:~/x`). A remote running into
/// a span found before (`bob@db:/x?token=<secret>`) ends where that span starts: the
/// second pass, which meets the placeholder there, then finds the same remote.
fn collect_scp_remotes(text: &str, spans: &mut Spans) {
    for m in SCP_REMOTE.find_iter(text) {
        let end = spans.first_start_in(&m.range()).unwrap_or(m.end());
        let remote = trim_url(&text[m.start()..end]);
        let path = remote.split_once(':').map_or("", |(_, p)| p);
        if path.starts_with(['/', '~']) || path.contains('/') || path.ends_with(".git") {
            spans.add(m.start()..m.start() + remote.len(), "<url>");
        }
    }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?-u:\b)",
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
    Regex::new(r"(?-u:\b)[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?-u:\b)(?:/[0-9]{1,2}(?-u:\b))?")
        .expect("IPv4 pattern compiles")
});

/// An absolute path after a character that may precede one. The path alternatives: below
/// `~`, below `~user`, Unix, a Windows drive (with backslashes, perhaps after the `\\?\`
/// of extended-length paths and perhaps ending in `/` components as Python writes them, or
/// with slashes), a UNC share.
///
/// A directory may contain single spaces (`C:\Program Files\`, `Application Support/`)
/// because a separator follows it (on Windows, the same separator as before it); the last
/// component may not, or the sentence after a path would be taken for part of its file name.
static PATH: LazyLock<Regex> = LazyLock::new(|| {
    let (c, dir, ws) = (PATH_CHAR, path_dir(), white_space!());
    Regex::new(&format!(
        r#"(?:^|[{ws}"'`(\[{{<>=,;:|])(~(?:[/\\]{dir})*[/\\]{c}*|~[A-Za-z_][A-Za-z0-9._-]*(?:(?:[/\\]{dir})*[/\\]{c}*)?|(?:/{dir})*/{c}+/?|(?:\\\\\?\\)?[A-Za-z]:\\(?:{dir}\\)*(?:{c}+[/\\])*{c}*|[A-Za-z]:/(?:{dir}/)*{c}*|\\\\(?:{dir}\\)*{c}+)"#
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
            && !spans.glued(text, &(start..end))
        {
            spans.add(start..end, "<ip>");
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
        if octets_ok && !longer_before && !longer_after && !spans.glued(text, &m.range()) {
            spans.add(m.range(), "<ip>");
        }
    }
}

/// The longest value, quoted string or header the rules look into: a key's value or a quoted
/// path is cut there, which keeps each match's work bounded and the whole scrub linear.
pub(super) const MAX_FIELD_BYTES: usize = 1024;

/// Passes of `scrub_text` at most: the fuzzer's inputs settle in two.
const MAX_SCRUB_PASSES: usize = 4;

/// The start of `s`, at most `max` bytes, cut on a character boundary.
pub(super) fn within(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The placeholders that replace what free text must not carry; no rule matches them, and
/// no path starts right after one (scrubbing `<host>/a/b`, from `git.acme.com/a/b`, again
/// must leave it).
pub(super) const PLACEHOLDERS: [&str; 6] =
    ["<url>", "<host>", "<ip>", "<email>", "<user>", "<secret>"];

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&PLACEHOLDERS.map(regex::escape).join("|")).expect("placeholder pattern compiles")
});

fn collect_paths(text: &str, spans: &mut Spans) {
    for found in PATH.find_iter(text) {
        // The path without the character before it that the pattern takes (none at the
        // start of the text; no path starts with one of those).
        let lead = found
            .as_str()
            .chars()
            .next()
            .filter(|&c| is_path_lead(c))
            .map_or(0, char::len_utf8);
        let start = found.start() + lead;
        if PLACEHOLDERS.iter().any(|p| text[..start].ends_with(p)) {
            continue;
        }
        let path = &text[start..found.end()];
        // A request line is no directory with a space: `GET /v1/items HTTP/1.1`.
        let path = path.find(" HTTP/").map_or(path, |i| &path[..i]);
        let path = trim_trailing_dots(path);
        let mut range = start..start + path.len();
        extend_over_separators(text, &mut range);
        extend_to_quote(text, &mut range);
        // Cut where an earlier rule's match starts inside: scrubbed again, the path ends at
        // that match's placeholder.
        if let Some(cut) = spans.first_start_in(&range) {
            range.end = start + trim_trailing_dots(&text[start..cut]).len();
        }
        let path = &text[range.clone()];
        // `\\?\C:\...` is `C:\...`.
        let path = path.strip_prefix(r"\\?\").unwrap_or(path);
        if is_home_dir(path) {
            spans.add(range, "~");
        } else if let Some(name) = last_component(path) {
            spans.add_path(range, offset_range(text, name));
        }
    }
}

/// The characters [`PATH`] accepts right before a path.
fn is_path_lead(c: char) -> bool {
    c.is_whitespace() || "\"'`([{<>=,;:|".contains(c)
}

/// A path goes on over separators the pattern did not take (`/home/bob//x`, `/a/b\\c`): what
/// follows them is no path on its own once the directories are gone, so it must be part of
/// this one.
fn extend_over_separators(text: &str, range: &mut Range<usize>) {
    loop {
        let rest = &text[range.end..];
        let seps = rest.len() - rest.trim_start_matches(['/', '\\']).len();
        if seps == 0 {
            return;
        }
        let after = &rest[seps..];
        let name = after
            .find(|c: char| !is_path_char(c))
            .unwrap_or(after.len());
        range.end += seps + trim_trailing_dots(&after[..name]).len();
    }
}

/// A quoted path runs to its closing quote, spaces included (`'/Users/Ada Lovelace'`,
/// `"C:\My Files\a b.txt"`), as long as what follows the match on the line up to that quote
/// could be part of a path.
fn extend_to_quote(text: &str, range: &mut Range<usize>) {
    let Some(quote) = text[..range.start]
        .chars()
        .next_back()
        .filter(|&c| c == '"' || c == '\'')
    else {
        return;
    };
    let rest = within(&text[range.end..], MAX_FIELD_BYTES);
    let Some(close) = rest.find(quote) else {
        return;
    };
    let between = &rest[..close];
    let fits = between.starts_with(' ')
        && !between.contains("  ")
        && !between.contains(": ")
        && between
            .chars()
            .all(|c| c == ' ' || c == '/' || c == '\\' || c == '(' || c == ')' || is_path_char(c));
    if fits {
        range.end += close;
    }
}

/// A home directory on its own: `~`, `~alice`, `/home/<name>`, `/Users/<name>`,
/// `C:\Users\<name>`, `C:\Documents and Settings\<name>`, and the homes of WSL
/// (`/mnt/c/Users/<name>`), Solaris and NFS (`/export/home/<name>`) and Fedora Atomic
/// (`/var/home/<name>`). A deeper `users/<name>` is data (`/api/v1/users/42`).
fn is_home_dir(path: &str) -> bool {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let is = |part: &str, name: &str| part.eq_ignore_ascii_case(name);
    let drive = |part: &str| part.len() == 2 && part.ends_with(':');
    match parts.as_slice() {
        [tilde] => tilde.starts_with('~'),
        [parent, _] => !drive(parent) && (is(parent, "home") || is(parent, "users")),
        [root, parent, _] if drive(root) => {
            is(parent, "users") || is(parent, "documents and settings")
        }
        [root, parent, _] => (is(root, "export") || is(root, "var")) && is(parent, "home"),
        [mnt, letter, parent, _] => is(mnt, "mnt") && letter.len() == 1 && is(parent, "users"),
        _ => false,
    }
}

/// The user directory at the start of a relative path: `home/alice/...`, `Users/bob/...`,
/// `./Users/bob/...` (absolute paths were reduced already); `users/models.py` of a web
/// app and `app/home/views.py` are no homes.
fn collect_user_dirs(text: &str, spans: &mut Spans) {
    let lead = |before: &str| before.chars().next_back().is_none_or(is_path_lead);
    for dir in ["home", "Users"] {
        for (at, _) in text.match_indices(dir) {
            let before = &text[..at];
            let dotted = before
                .strip_suffix(['/', '\\'])
                .and_then(|b| b.strip_suffix("..").or_else(|| b.strip_suffix('.')));
            if !(lead(before) || dotted.is_some_and(lead)) {
                continue;
            }
            let Some(rest) = text[at + dir.len()..].strip_prefix(['/', '\\']) else {
                continue;
            };
            let len = rest.find(|c| !is_path_char(c)).unwrap_or(rest.len());
            let name = &rest[..len];
            if name.is_empty() || name == "~" || !rest[len..].starts_with(['/', '\\']) {
                continue;
            }
            spans.add(offset_range(text, name), "<user>");
        }
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
