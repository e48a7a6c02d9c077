//! Secrets recognized by what they look like: PEM blocks, `Authorization` and `Cookie`
//! headers, tokens with a vendor's prefix, JWTs, and long random-looking runs (hex, mixed
//! case with digits, base64). Each becomes `<secret>`.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use super::text::{within, Spans, MAX_FIELD_BYTES};

const SECRET: &str = "<secret>";

/// A PEM block (`-----BEGIN RSA PRIVATE KEY-----` to its `-----END ...-----`), or to the end of
/// the text when the message was cut before the end line.
static PEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)-----BEGIN [A-Z0-9 ]{1,64}-----.*?(?:-----END [A-Z0-9 ]{1,64}-----|\z)")
        .expect("PEM pattern compiles")
});

pub(super) fn collect_pem(text: &str, spans: &mut Spans) {
    for m in PEM.find_iter(text) {
        spans.add(m.range(), SECRET);
    }
}

/// `Authorization: <scheme> <credentials>` in any of the forms messages carry it: a header
/// line, `"Authorization": "Bearer ..."` (JSON, a Python dict), `authorization=...`.
static AUTH_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?-u:\b)(?:proxy-)?(authorization|set-cookie|cookie)(?-u:\b)["']?[ \t]*[:=][ \t]*(["']?)"#,
    )
    .expect("authorization header pattern compiles")
});

/// `Bearer <token>` and `Basic <credentials>` outside a header.
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)(?:bearer|basic)[ \t]+([a-z0-9._~+/-]+=*)")
        .expect("bearer pattern compiles")
});

/// Schemes of the `Authorization` header, which stay: only the credentials are secret.
const AUTH_SCHEMES: [&str; 13] = [
    "bearer",
    "basic",
    "token",
    "digest",
    "negotiate",
    "ntlm",
    "apikey",
    "api-key",
    "key",
    "bot",
    "oauth",
    "aws4-hmac-sha256",
    "sso-key",
];

/// A word that could be a credential rather than prose (`Bearer token expired`): a digit,
/// base64 punctuation, or an upper-case letter after the first.
fn credential_like(word: &str) -> bool {
    word.len() >= 8
        && (word.contains(|c: char| c.is_ascii_digit() || "+/=_-.~".contains(c))
            || word.chars().skip(1).any(|c| c.is_ascii_uppercase()))
}

pub(super) fn collect_auth_headers(text: &str, lower: &str, spans: &mut Spans) {
    // Where the last header value ends: a match inside it is skipped (linear work).
    let mut resume = 0;
    for caps in AUTH_HEADER.captures_iter(lower) {
        let (Some(all), Some(name)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        if all.start() < resume {
            continue;
        }
        let quote = caps.get(2).and_then(|m| m.as_str().chars().next());
        // Headers are looked at this far; a credential of one word may run on.
        let rest = within(&text[all.end()..], 4 * MAX_FIELD_BYTES);
        let line_end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        // Quoted: up to the closing quote. A cookie header runs to the end of its line
        // (`a=1; b=2`); an unquoted `Authorization` value is a scheme and one word.
        let value_end = match quote {
            Some(q) => rest[..line_end].find(q).unwrap_or(line_end),
            None => line_end,
        };
        let mut value = &rest[..value_end];
        let mut start = all.end();
        // Go's `map[authorization:[Bearer x]]`.
        if quote.is_none() {
            let bracket = value.len() - value.trim_start_matches(['[', '(', '{']).len();
            start += bracket;
            value = &value[bracket..];
        }
        if name.as_str() != "authorization" {
            let value = value.trim_end();
            resume = start + value.len();
            if !value.is_empty() && !value.starts_with('<') {
                spans.add(start..start + value.len(), SECRET);
            }
            continue;
        }
        let scheme_len = value.find([' ', '\t']).filter(|&i| {
            AUTH_SCHEMES
                .iter()
                .any(|s| value[..i].eq_ignore_ascii_case(s))
        });
        let mut multi_word = quote.is_some();
        if let Some(len) = scheme_len {
            multi_word |= value[..len].eq_ignore_ascii_case("digest")
                || value[..len].eq_ignore_ascii_case("aws4-hmac-sha256");
            let skipped = value[len..].len() - value[len..].trim_start().len();
            start += len + skipped;
            value = &value[len + skipped..];
        }
        let ends_word = |c: char| c.is_whitespace() || "])},;\"'".contains(c);
        let mut end = start + value.trim_end().len();
        if !multi_word {
            end = start + value.find(ends_word).unwrap_or(value.len());
            if end == all.end() + rest.len() {
                let more = &text[end..];
                end += more.find(ends_word).unwrap_or(more.len());
            }
        }
        resume = end;
        if start < end && !text[start..].starts_with('<') {
            spans.add(start..end, SECRET);
        }
    }
    for caps in BEARER.captures_iter(lower) {
        if let Some(token) = caps.get(1) {
            if credential_like(&text[token.range()]) {
                spans.add(token.range(), SECRET);
            }
        }
    }
}

/// Tokens with a vendor's documented prefix, and JWTs. The lengths are the documented ones or
/// a floor well below them, so that a mention of the prefix alone (`sk-learn`) stays.
static KNOWN_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    let alternatives = [
        // GitHub: classic personal, OAuth, user-to-server, server-to-server and refresh
        // tokens, and fine-grained personal tokens.
        r"gh[pousr]_[A-Za-z0-9]{30,}",
        r"github_pat_[A-Za-z0-9_]{22,}",
        // GitLab: personal, deploy, runner, pipeline-trigger, CI-build, incoming-mail,
        // feed, SCIM/OAuth tokens; Grafana.
        r"gl(?:pat|dt|rt|ptt|cbt|imt|ft|soat|oas|agent)-[A-Za-z0-9_-]{20,}",
        r"gl(?:c|sa)_[A-Za-z0-9_+/=-]{20,}",
        // Slack bot, user, app-level, refresh and configuration tokens.
        r"xox[abposre]-[A-Za-z0-9-]{10,}",
        r"xapp-[0-9]+-[A-Za-z0-9-]{10,}",
        // AWS access key ids (long-term and temporary).
        r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",
        // Google API keys, OAuth access tokens and client secrets.
        r"AIza[0-9A-Za-z_-]{35}",
        r"ya29\.[0-9A-Za-z_-]{20,}",
        r"GOCSPX-[0-9A-Za-z_-]{20,}",
        // Stripe secret, publishable and restricted keys; webhook secrets.
        r"(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{10,}",
        r"whsec_[0-9A-Za-z]{20,}",
        // OpenAI-style (OpenAI, Anthropic, DeepSeek, ...): `sk-`, `sk-proj-`, `sk-ant-`.
        r"sk-[A-Za-z0-9_-]{20,}",
        // npm, Hugging Face, PostHog project and personal keys, PyPI.
        r"npm_[A-Za-z0-9]{36,}",
        r"hf_[A-Za-z0-9]{30,}",
        r"ph[cx]_[A-Za-z0-9]{20,}",
        r"pypi-[A-Za-z0-9_-]{50,}",
        // SendGrid, Shopify, DigitalOcean, Databricks, Twilio, age, Linear, Docker Hub,
        // HashiCorp Vault, Mailgun, Replicate, Groq, xAI, NVIDIA, Square, Atlassian.
        r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",
        r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
        r"do[por]_v1_[a-f0-9]{64}",
        r"dapi[a-f0-9]{32}",
        r"SK[0-9a-fA-F]{32}",
        r"AGE-SECRET-KEY-1[0-9A-Z]{58}",
        r"lin_api_[A-Za-z0-9]{40}",
        r"dckr_pat_[A-Za-z0-9_-]{20,}",
        r"hv[sbr]\.[A-Za-z0-9_-]{24,}",
        r"key-[0-9a-f]{32}",
        r"r8_[A-Za-z0-9]{30,}",
        r"gsk_[A-Za-z0-9]{40,}",
        r"xai-[A-Za-z0-9]{40,}",
        r"nvapi-[A-Za-z0-9_-]{40,}",
        r"sq0(?:atp|csp)-[0-9A-Za-z_-]{22,}",
        r"ATATT3[A-Za-z0-9_=-]{20,}",
        // JWT: base64url JSON header (`{"` is `eyJ`), payload, signature (empty for `none`).
        r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
    ];
    Regex::new(&format!(r"(?-u:\b)(?:{})", alternatives.join("|"))).expect("token pattern compiles")
});

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

pub(super) fn collect_known_tokens(text: &str, spans: &mut Spans) {
    for m in KNOWN_TOKEN.find_iter(text) {
        // A fixed-length pattern may stop inside a longer run: the whole run goes.
        let tail = text[m.end()..]
            .find(|c: char| !is_token_char(c))
            .unwrap_or(text.len() - m.end());
        spans.add(m.start()..m.end() + tail, SECRET);
    }
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'_' | b'-')
}

/// Maximal runs of 16 or more base64 characters (standard or URL-safe), with up to two `=`
/// of padding: what [`looks_random`] judges. A plain scan: it is the hot loop of long text.
fn base64_runs(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if !is_base64_byte(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && is_base64_byte(bytes[i]) {
                i += 1;
            }
            if i - start < 16 {
                continue;
            }
            let run_end = i;
            while i < bytes.len() && i - run_end < 2 && bytes[i] == b'=' {
                i += 1;
            }
            return Some(start..i);
        }
        None
    })
}

/// The last rule: it judges runs in the text between the other rules' matches, so that the
/// same runs are judged when scrubbed text (with placeholders there) is scrubbed again.
pub(super) fn collect_shaped(text: &str, spans: &mut Spans) {
    for (offset, gap) in spans.gaps(text) {
        for range in shaped_in(gap) {
            let range = offset + range.start..offset + range.end;
            if !spans.glued(text, &range) {
                spans.add(range, SECRET);
            }
        }
    }
}

/// The runs of `text` that [`looks_random`].
fn shaped_in(text: &str) -> Vec<Range<usize>> {
    let mut secrets = Vec::new();
    for range in base64_runs(text) {
        let found = &text[range.clone()];
        // Every shape below has digits; most runs (paths, identifiers) have none.
        if !found.bytes().any(|b| b.is_ascii_digit()) {
            continue;
        }
        // A run glued to a word character or an `=` it did not take is the middle of
        // something longer (`key=value` continues, `x==y`).
        if text[range.end..].starts_with(|c: char| c == '=' || c.is_alphanumeric()) {
            continue;
        }
        let run = found.trim_matches(|c| matches!(c, '/' | '-' | '_' | '+'));
        let start =
            range.start + (found.len() - found.trim_start_matches(['/', '-', '_', '+']).len());
        if looks_random(run) {
            secrets.push(start..start + run.len());
            continue;
        }
        // A path-like run with one random component: `tokens/<token>/revoke`.
        let mut offset = start;
        for part in run.split('/') {
            if run.contains('/') && looks_random(part) {
                secrets.push(offset..offset + part.len());
            }
            offset += part.len() + 1;
        }
    }
    secrets
}

/// Whether a run of base64 characters is a secret by its shape:
///
/// - a segment (between `+/_-`) of 32 or more hex digits, with digits and letters (SHA
///   digests, API keys);
/// - 20 or more characters with upper- and lower-case letters and digits whose camel-case
///   words average under 3 characters (random text averages 1.5; identifiers such as
///   `Http2ServerConnectionHandler` 5 and more);
/// - 32 or more characters of one letter case with at least 4 digits and 4 letters;
/// - and at most one separator per 8 characters, which keeps paths and `snake_case` out.
///
/// UUIDs are ids, not secrets, and stay.
pub(super) fn looks_random(run: &str) -> bool {
    let body = run.trim_end_matches('=');
    if body.len() < 16 || is_uuid(body) {
        return false;
    }
    let hex_segment = body.split(['+', '/', '_', '-']).any(|s| {
        s.len() >= 32
            && s.bytes().all(|b| b.is_ascii_hexdigit())
            && s.bytes().any(|b| b.is_ascii_digit())
            && s.bytes().any(|b| b.is_ascii_alphabetic())
            && !(s.bytes().any(|b| b.is_ascii_uppercase())
                && s.bytes().any(|b| b.is_ascii_lowercase()))
    });
    if hex_segment {
        return true;
    }
    let separators = body.bytes().filter(|b| b"+/_-".contains(b)).count();
    if separators * 8 > body.len() {
        return false;
    }
    let upper = body.bytes().filter(u8::is_ascii_uppercase).count();
    let lower = body.bytes().filter(u8::is_ascii_lowercase).count();
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    let alnum = upper + lower + digits;
    let padded = body.len() < run.len();
    if upper > 0 && lower > 0 && digits > 0 && (body.len() >= 20 || padded) {
        return alnum < 3 * camel_words(body);
    }
    body.len() >= 32 && digits >= 4 && upper + lower >= 4 && (upper == 0 || lower == 0)
}

/// The number of camel-case words: `getV2ApiKey` is get, V, 2, Api, Key; `HTTPServer` is
/// HTTP, Server; separators split words and count for none.
fn camel_words(s: &str) -> usize {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Upper,
        Lower,
        Digit,
        Other,
    }
    let class = |b: u8| match b {
        b'A'..=b'Z' => Class::Upper,
        b'a'..=b'z' => Class::Lower,
        b'0'..=b'9' => Class::Digit,
        _ => Class::Other,
    };
    let bytes = s.as_bytes();
    let mut words = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let c = class(b);
        if c == Class::Other {
            continue;
        }
        let prev = i.checked_sub(1).map(|j| class(bytes[j]));
        let next = bytes.get(i + 1).map(|&n| class(n));
        let starts = match (prev, c) {
            (None | Some(Class::Other), _) => true,
            (Some(p), c) if p == c => {
                // `HTTPServer`: the last capital of a run starts the next word.
                c == Class::Upper && next == Some(Class::Lower)
            }
            // A capital after a lower-case letter or a digit starts a word; lower-case
            // letters after a single capital continue it (`Server`).
            (Some(Class::Upper), Class::Lower) => false,
            _ => true,
        };
        words += usize::from(starts);
    }
    words.max(1)
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_runs_are_secrets_and_identifiers_are_not() {
        for secret in [
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "Xk3pQ9zR2mN8vL5wT1yB7cF4hJ6dA0",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "k8s7x2q9m4n1b5v3c6z0p8w7e6r5t4y3",
            "dXNlcjpzM2NyM3QxMjM0NQ==",
        ] {
            assert!(looks_random(secret), "{secret}");
        }
        for code in [
            "Http2ServerConnectionHandler",
            "TestHTTP2ServerHandlesGOAWAY",
            "Sha256DigestComputationFailed",
            "_ZN5tokio7runtime4park16CachedParkThread8block_on17h0123456789abcdefE",
            "src/main/java/com/Acme2Service",
            "crates/telemetry-core/src/anonymize",
            "550e8400-e29b-41d4-a716-446655440000",
            "ERR_SSL_V3_ALERT_HANDSHAKE_FAILURE",
            "x86_64-unknown-linux-gnu",
            "CERTIFICATE_VERIFY_FAILED",
            "aws_secret_access_key",
        ] {
            assert!(!looks_random(code), "{code}");
        }
    }

    #[test]
    fn camel_words_split_like_a_reader_would() {
        assert_eq!(camel_words("getV2ApiKey"), 5);
        assert_eq!(camel_words("HTTPServer"), 2);
        assert_eq!(camel_words("snake_case_name"), 3);
        assert_eq!(camel_words("abc123DEF"), 3);
    }
}
