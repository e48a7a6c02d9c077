//! Values named by what precedes them: `password=...`, `"token": "..."`, `--password x`,
//! `host='db01'`, `lookup db01 on ...`, `user "alice"`. The key stays; the value becomes
//! `<secret>`, `<host>` or `<user>`.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use super::text::{within, Spans, MAX_FIELD_BYTES, PLACEHOLDERS};

/// A value after a key or a phrase: its range in the text (quotes excluded) and whether it
/// was quoted.
struct FieldValue {
    range: Range<usize>,
    quoted: bool,
    /// Quoted with an escaped quote (`\"x\"`).
    escaped: bool,
}

/// Characters that end a bare (unquoted) value: `password=x, retrying`, `(password=x)`,
/// `{"password": x}`; a backslash only before a quote (`password=x\"` in Rust's `Debug`).
fn ends_bare_value(c: char) -> bool {
    c.is_whitespace() || "\"'`,<>()[]{}|".contains(c)
}

/// The length of a bare value at the start of `rest`. `&` and `;` end it only where the
/// next field starts (`password=x&user=y`, `Pwd=x;Server=y`) or nothing follows: a password
/// may contain them (`Tr0ub4dor&3`).
fn bare_len(rest: &str) -> usize {
    let mut end = 0;
    for (i, c) in rest.char_indices() {
        if ends_bare_value(c) || (c == '\\' && rest[i + 1..].starts_with(['"', '\''])) {
            return i;
        }
        if c == '&' || c == ';' {
            let next = &rest[i + 1..];
            let key_len = next
                .find(|k: char| !(k.is_ascii_alphanumeric() || matches!(k, '_' | '-' | '.')))
                .unwrap_or(next.len());
            let field_follows = key_len > 0 && next[key_len..].starts_with('=');
            if field_follows || next.is_empty() || next.starts_with(ends_bare_value) {
                return i;
            }
        }
        end = i + c.len_utf8();
    }
    end
}

/// The value that starts at byte `at`: quoted with `"`, `'` or an escaped `\"` (Rust's
/// `Debug` of a string inside a string), up to the same quote on the same line within
/// [`MAX_FIELD_BYTES`] (or, when the quote is never closed there, a cut message, the word
/// after it), or else a bare run.
fn value_at(text: &str, mut at: usize) -> Option<FieldValue> {
    // Rust's `Debug` of an `Option`, perhaps of bytes: `password: Some(b"x")`.
    if let Some(inner) = text[at..].strip_prefix("Some(") {
        at += 5 + usize::from(inner.starts_with("b\"") || inner.starts_with("b'"));
    }
    let rest = &text[at..];
    let (quote, escaped) = if let Some(r) = rest.strip_prefix('\\') {
        match r.chars().next() {
            Some(q @ ('"' | '\'')) => (Some(q), true),
            _ => (None, false),
        }
    } else {
        match rest.chars().next() {
            Some(q @ ('"' | '\'')) => (Some(q), false),
            _ => (None, false),
        }
    };
    let Some(quote) = quote else {
        let len = bare_len(rest);
        return (len > 0).then(|| FieldValue {
            range: at..at + len,
            quoted: false,
            escaped: false,
        });
    };
    let start = at + if escaped { 2 } else { 1 };
    // The closing quote is looked for this far (then the value is the word after the
    // quote), which keeps the work per key bounded.
    let mut chars = within(&text[start..], MAX_FIELD_BYTES).char_indices();
    // Never closed on its line (a cut message): the word after the quote.
    let mut end = start + bare_len(&text[start..]);
    while let Some((i, c)) = chars.next() {
        match c {
            '\n' | '\r' => break,
            '\\' if escaped && text[start + i + 1..].starts_with(quote) => {
                end = start + i;
                break;
            }
            '\\' => {
                chars.next();
            }
            c if c == quote && !escaped => {
                end = start + i;
                break;
            }
            _ => {}
        }
    }
    Some(FieldValue {
        range: start..end,
        quoted: true,
        escaped,
    })
}

/// Adds the value at `range`, cut where an earlier rule's match starts inside it
/// (`token=abc https://x` in quotes, `csrftoken=p31:p://10.0.0.5/`): scrubbed again, the
/// value ends at that match's placeholder, so it must end there the first time too.
fn add_value(text: &str, spans: &mut Spans, range: Range<usize>, placeholder: &'static str) {
    let end = spans.first_start_in(&range).unwrap_or(range.end);
    let value = text[range.start..end].trim_end();
    if !hides_nothing(value) {
        spans.add(range.start..range.start + value.len(), placeholder);
    }
}

/// Where the quote that ends a phrase's match starts: at its backslash if escaped.
fn quote_start(matched: &str, end: usize) -> usize {
    if matched[..matched.len() - 1].ends_with('\\') {
        end - 2
    } else {
        end - 1
    }
}

/// Values that hide nothing: `password=None`, `token: null`, `(using password: YES)`,
/// masks (`***`, `xxxx`, `** redacted **`), placeholders of our own or of other scrubbers
/// (`<secret>`, `[REDACTED]`), and those of format strings and SQL (`%s`, `%(password)s`,
/// `${DB_PASSWORD}`, `?`).
fn hides_nothing(value: &str) -> bool {
    const WORDS: [&str; 22] = [
        "none",
        "null",
        "nil",
        "undefined",
        "true",
        "false",
        "yes",
        "no",
        "empty",
        "unset",
        "redacted",
        "[redacted]",
        "hidden",
        "masked",
        "filtered",
        "[filtered]",
        "omitted",
        // Type names: `password: str` in a signature is no password.
        "str",
        "string",
        "bytes",
        "secretstr",
        "option",
    ];
    let v = value.trim();
    let unmasked = v.trim_matches(|c: char| c == '*' || c == ' ');
    let template = v == "?"
        || v == "$"
        || v.starts_with("%(")
        || v.starts_with("${")
        || (v.starts_with('%') && v.len() <= 2);
    v.is_empty()
        || template
        || PLACEHOLDERS.iter().any(|p| v.contains(p))
        || WORDS.iter().any(|w| unmasked.eq_ignore_ascii_case(w))
        || (v.starts_with('<') && v.ends_with('>'))
        || (v.chars().count() >= 3 && v.chars().all(|c| "*•xX·.".contains(c)))
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Where the key that ends with the keyword at `keyword` starts: back over key characters
/// (`db_password`, `sasl.password`, `X-Api-Key`, `--password`).
fn key_start(text: &str, keyword: usize) -> usize {
    text[..keyword]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_key_char(c))
        .last()
        .map_or(keyword, |(i, _)| i)
}

/// Whether a keyword that follows `prefix` inside one key starts a word of it: the key is
/// the keyword, or the prefix ends with a separator (`db_host`, `redis.host`) or in
/// camel case (`dbHost`, `DBPass` is not). Keeps `ghost=` and `bypass=` out.
fn starts_key_word(prefix: &str, keyword: &str) -> bool {
    match prefix.chars().next_back() {
        None => true,
        Some('_' | '-' | '.') => true,
        Some(c) => {
            (c.is_ascii_lowercase() || c.is_ascii_digit())
                && keyword.starts_with(|k: char| k.is_ascii_uppercase())
        }
    }
}

/// Whether `sep` (trimmed) separates a key from its value: `=` or `:`; blanks after a flag
/// (`--password x`), never between two words of prose (`password authentication`); a comma
/// between a quoted flag and a quoted value, the next item of an argv list
/// (`'--host', 'db01'`).
fn separates(sep: &str, flag: bool, key_quoted: bool, value_quoted: bool) -> bool {
    match sep {
        "=" | ":" => true,
        "" => flag,
        "," => flag && key_quoted && value_quoted,
        _ => false,
    }
}

/// Keys whose values are secrets, as the last word of a key: `password`, `PGPASSWORD`,
/// `db_pass`, `client_secret`, `access_token`, `X-Api-Key`, `aws_secret_access_key`,
/// `X-Amz-Signature`, `sig`, `sessionid`; a numbered key (`password_1`, SQLAlchemy's parameters) too. Then an optional
/// closing quote (`"password": ...`) and the separator: `=`, `:`, a comma (an argv list,
/// `'--password', 'x'`) or blanks (`--password x`, `PASSWORD 'x'`).
static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(password|passwd|passphrase|passcode|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|auth[_-]?key|signing[_-]?key|encryption[_-]?key|master[_-]?key|client[_-]?key|account[_-]?key|credentials?|signature|session[_-]?id|sessionid|pwd|pass|pw|sig)(?:_?[0-9]{1,3})?(["']?)([ \t]*[:=][ \t]*|[ \t]*,[ \t]*|[ \t]+)"#,
    )
    .expect("secret key pattern compiles")
});

/// Values of keys that name secrets (see [`SECRET_KEY`]) become `<secret>`.
pub(super) fn collect_secrets(text: &str, lower: &str, spans: &mut Spans) {
    // Where the last value looked at ends: a match inside it is skipped, which keeps the
    // work linear when a value runs long (`host=host=host=...`).
    let mut resume = 0;
    for caps in SECRET_KEY.captures_iter(lower) {
        let (Some(all), Some(keyword)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        if all.start() < resume {
            continue;
        }
        let close_quote = caps.get(2).map_or("", |m| m.as_str());
        let separator = caps.get(3).map_or("", |m| m.as_str());
        let start = key_start(text, keyword.start());
        let prefix = &text[start..keyword.start()];
        let short = matches!(keyword.as_str(), "pwd" | "pass" | "pw" | "sig");
        // `bypass=`, `oldpwd=`: a short keyword must be a word of its own.
        if short && !starts_key_word(prefix, &text[keyword.range()]) {
            continue;
        }
        let open_quote = text[..start].chars().next_back();
        if !close_quote.is_empty() && open_quote != close_quote.chars().next() {
            continue;
        }
        let flag = prefix.starts_with('-');
        let Some(value) = value_at(text, all.end()) else {
            continue;
        };
        resume = value.range.end;
        // `getpass("Password: ")`: the quote after the key closes the string the key is in.
        let same_string = value.quoted
            && !value.escaped
            && close_quote.is_empty()
            && open_quote.is_some_and(|q| text[..value.range.start].ends_with(q));
        if same_string {
            continue;
        }
        let sep = separator.trim();
        // Blanks alone also separate a key from a quoted value (`PASSWORD 'x'`).
        let sql = sep.is_empty() && value.quoted;
        if !(sql || separates(sep, flag, !close_quote.is_empty(), value.quoted)) {
            continue;
        }
        if hides_nothing(&text[value.range.clone()]) {
            continue;
        }
        // `token: expected identifier`, `DEBUG:app.credentials:Using ...`: after a colon, a
        // bare word followed by more words (or by what replaced them) is prose.
        let word = &text[value.range.clone()];
        let prose = sep == ":"
            && !value.quoted
            && word.bytes().all(|b| b.is_ascii_alphabetic())
            && text[value.range.end..]
                .strip_prefix(' ')
                .is_some_and(|r| r.starts_with(|c: char| c.is_alphabetic() || c == '<'));
        if prose {
            continue;
        }
        add_value(text, spans, value.range, "<secret>");
    }
}

/// Keys whose values are host names: `host=db01`, `DB_HOST=...`, `'host': 'db01'`,
/// `Server=tcp:db01,1433`, `Data Source=db01`, flags (`--host db01`, `'--host', 'db01'`).
static HOST_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(hostname|hostaddr|host_name|host|servername|server_name|server|data source)(["']?)([ \t]*[:=][ \t]*|[ \t]*,[ \t]*|[ \t]+)"#,
    )
    .expect("host key pattern compiles")
});

/// Phrases that precede a quoted host name in error messages: PostgreSQL's
/// `could not translate host name "db01"` and `connection to server at "db01"`, MySQL's
/// `Unknown MySQL server host 'db01'`, urllib3's and librdkafka's `Failed to resolve 'db01'`;
/// and Rust's `Debug` of a host: `Domain("db01")` (url), `Tcp("db01")` (tokio-postgres).
static HOST_PHRASE_QUOTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?-u:\b)(?:(?:host[ \t]+name|hostname|host|server[ \t]+at|server|resolve|lookup)[ \t]+|domain\(|tcp\()\\?["']"#,
    )
    .expect("quoted host phrase pattern compiles")
});

/// Phrases that precede a bare host name: Go's `lookup db01 on 10.0.0.2:53` and
/// `lookup db01: no such host`, curl's `Could not resolve host: db01`, OpenSSH's
/// `Could not resolve hostname db01:` and `connect to host db01 port 22`, Node's
/// `getaddrinfo ENOTFOUND db01`, aiohttp's `Cannot connect to host db01:5432`.
static HOST_PHRASE_BARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?-u:\b)(?:(lookup)|resolve[ \t]+host(?:name)?:?|enotfound|eai_again|connect[ \t]+to[ \t]+host)[ \t]+",
    )
    .expect("bare host phrase pattern compiles")
});

/// A value that starts like an absolute path. Taken whole (these rules run before the
/// path rule), so that what is left of it once the directories are gone is not judged
/// anew when the text is scrubbed again.
fn looks_like_path(value: &str) -> bool {
    let b = value.as_bytes();
    value.starts_with(['/', '~', '\\'])
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && matches!(b[2], b'\\' | b'/'))
}

/// The host name a value starts with: `db01` of `db01`, `kafka-0:9092`, `tcp:db01,1433`;
/// a socket directory (`/var/run/postgresql`) or any path whole.
fn host_part(text: &str, value: Range<usize>) -> Option<Range<usize>> {
    // A Unix socket's directory (`host=/var/run/postgresql`), which names the host too.
    if looks_like_path(&text[value.clone()]) {
        return Some(value);
    }
    let mut start = value.start;
    if text[start..value.end]
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("tcp:"))
    {
        start += 4;
    }
    let run = &text[start..value.end];
    let len = run
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(run.len());
    let host = run[..len].trim_end_matches('.');
    let first_ok = host.starts_with(|c: char| c.is_ascii_alphanumeric());
    let is_number = host.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !first_ok || is_number || host.eq_ignore_ascii_case("localhost") || hides_nothing(host) {
        return None;
    }
    Some(start..start + host.len())
}

/// Host names given by a key or a phrase become `<host>`. Ports stay.
pub(super) fn collect_hosts(text: &str, lower: &str, spans: &mut Spans) {
    let mut resume = 0;
    for caps in HOST_KEY.captures_iter(lower) {
        let (Some(all), Some(keyword)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        if all.start() < resume {
            continue;
        }
        let start = key_start(text, keyword.start());
        if !starts_key_word(&text[start..keyword.start()], &text[keyword.range()]) {
            continue;
        }
        let sep = caps.get(3).map_or("", |m| m.as_str().trim());
        let Some(value) = value_at(text, all.end()) else {
            continue;
        };
        resume = value.range.end;
        let key_quoted = caps.get(2).is_some_and(|m| !m.as_str().is_empty());
        if !separates(
            sep,
            text[start..].starts_with('-'),
            key_quoted,
            value.quoted,
        ) {
            continue;
        }
        let colon = sep == ":";
        let Some(host) = host_part(text, value.range.clone()) else {
            continue;
        };
        // `host: unreachable` is prose; `Host: db-1` and `"host": "db"` are not.
        let looks_like_host = text[host.clone()].contains(['-', '.'])
            || text[host.clone()].contains(|c: char| c.is_ascii_digit());
        if colon && !value.quoted && !looks_like_host {
            continue;
        }
        add_value(text, spans, host, "<host>");
    }
    let mut resume = 0;
    for m in HOST_PHRASE_QUOTED.find_iter(lower) {
        if m.start() < resume {
            continue;
        }
        let Some(value) = value_at(text, quote_start(m.as_str(), m.end())) else {
            continue;
        };
        resume = value.range.end;
        if let Some(host) = host_part(text, value.range) {
            add_value(text, spans, host, "<host>");
        }
    }
    let mut resume = 0;
    for caps in HOST_PHRASE_BARE.captures_iter(lower) {
        let Some(all) = caps.get(0) else { continue };
        if all.start() < resume {
            continue;
        }
        let Some(value) = value_at(text, all.end()) else {
            continue;
        };
        resume = value.range.end;
        let Some(host) = host_part(text, value.range) else {
            continue;
        };
        // Go's resolver: `lookup <name> on <server>` or `lookup <name>: <reason>`, the name
        // perhaps ending in the root's dot. Anything else after `lookup` is prose.
        if caps.get(1).is_some() {
            let after = text[host.end..]
                .strip_prefix('.')
                .unwrap_or(&text[host.end..]);
            if !(after.starts_with(':') || after.starts_with(" on ")) {
                continue;
            }
        }
        add_value(text, spans, host, "<host>");
    }
}

/// Keys whose values are user names: a DSN's `user=app`, `PGUSER=app`, `"username": "x"`,
/// ODBC's `Uid=app`, flags (`--username app`).
static USER_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(username|user_name|user[ \t]id|user|uid|login|pguser)(["']?)([ \t]*[:=][ \t]*|[ \t]*,[ \t]*|[ \t]+)"#)
        .expect("user key pattern compiles")
});

/// Phrases that precede a quoted user name: PostgreSQL's `for user "app"` and
/// `role "app" does not exist`, MySQL's `for user 'app'@'host'`.
static USER_PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?-u:\b)(?:user|role|username)[ \t]+\\?["']"#)
        .expect("user phrase pattern compiles")
});

/// User names given by a key or a phrase become `<user>`; `root` identifies nobody and stays.
pub(super) fn collect_users(text: &str, lower: &str, spans: &mut Spans) {
    let add = |value: FieldValue, spans: &mut Spans| {
        let name = &text[value.range.clone()];
        if !hides_nothing(name) && !name.eq_ignore_ascii_case("root") {
            add_value(text, spans, value.range, "<user>");
        }
    };
    let mut resume = 0;
    for caps in USER_KEY.captures_iter(lower) {
        let (Some(all), Some(keyword)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        if all.start() < resume {
            continue;
        }
        let start = key_start(text, keyword.start());
        if !starts_key_word(&text[start..keyword.start()], &text[keyword.range()]) {
            continue;
        }
        let sep = caps.get(3).map_or("", |m| m.as_str().trim());
        let Some(value) = value_at(text, all.end()) else {
            continue;
        };
        resume = value.range.end;
        let key_quoted = caps.get(2).is_some_and(|m| !m.as_str().is_empty());
        if !separates(
            sep,
            text[start..].starts_with('-'),
            key_quoted,
            value.quoted,
        ) {
            continue;
        }
        // `user: not found` is prose; `"user": "app"` and `user=app` are not.
        if sep == ":" && !value.quoted {
            continue;
        }
        add(value, spans);
    }
    let mut resume = 0;
    for m in USER_PHRASE.find_iter(lower) {
        if m.start() < resume {
            continue;
        }
        if let Some(value) = value_at(text, quote_start(m.as_str(), m.end())) {
            resume = value.range.end;
            add(value, spans);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, bool)> {
        [0, 6]
            .into_iter()
            .filter(|&at| at <= text.len())
            .filter_map(|at| value_at(text, at))
            .map(|v| (text[v.range].to_owned(), v.quoted))
            .collect()
    }

    #[test]
    fn values_are_quoted_escaped_unterminated_or_bare() {
        assert_eq!(
            values(r#""a b" x"#),
            [("a b".to_owned(), true), ("x".to_owned(), false)]
        );
        assert_eq!(values(r#"\"p\"q\" "#)[0], ("p".to_owned(), true));
        assert_eq!(values("'a\\'b'")[0], ("a\\'b".to_owned(), true));
        assert_eq!(values("\"cut\nnext")[0], ("cut".to_owned(), true));
        assert_eq!(values("abc&d=1")[0], ("abc".to_owned(), false));
        assert_eq!(
            values("Tr0ub4dor&3 x")[0],
            ("Tr0ub4dor&3".to_owned(), false)
        );
        assert_eq!(values("ab;Server=x")[0], ("ab".to_owned(), false));
        assert_eq!(values("ab;")[0], ("ab".to_owned(), false));
        assert_eq!(values("Some(b\"pw\")")[0], ("pw".to_owned(), true));
        assert!(value_at(",x", 0).is_none());
    }

    #[test]
    fn masks_and_placeholders_hide_nothing() {
        for v in [
            "None",
            "null",
            "YES",
            "***",
            "xxxx",
            "<secret>",
            "[REDACTED]",
            " ",
        ] {
            assert!(hides_nothing(v), "{v}");
        }
        for v in ["hunter2", "x", "no-way", "<secret"] {
            assert!(!hides_nothing(v), "{v}");
        }
    }

    #[test]
    fn a_short_keyword_must_start_a_word_of_the_key() {
        assert!(starts_key_word("", "pass"));
        assert!(starts_key_word("db_", "pass"));
        assert!(starts_key_word("db", "Pass"));
        assert!(!starts_key_word("by", "pass"));
        assert!(!starts_key_word("OLD", "PWD"));
        assert_eq!(key_start("x --db.pass=1", 10), 2);
    }
}
