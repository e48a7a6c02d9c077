//! Host and domain names in free text, told apart from file names, code and versions.
//!
//! A dotted name whose last label is a known file extension is a file (`main.rs`, `app.py`,
//! `de.rs:42:5`), whatever else it could be. Otherwise a name is a host when
//!
//! - its last label is a top-level domain from [`TLDS_2_LABELS`] or a private suffix
//!   (`internal`, `local`, `lan`, `corp`, `svc`, `consul`, ...): `api.example.com`,
//!   `db.internal`;
//! - or its last label is a top-level domain from [`TLDS_3_LABELS`] (country codes and
//!   generic domains that are also code words: `io`, `ai`, `app`, `dev`, `info`, `me`, ...)
//!   and it has at least three labels: `api.acme.io`, not `scipy.io` or `args.lr`;
//! - or a port follows it (`:` and 1 to 65535, not a `:line:col`): a dotted name
//!   (`db.prod:5432`, `kafka-0.kafka-headless:9092`) or a bare one (`redis-node-3:6379`,
//!   `kafka-0:9092`, `db01:5432`) with a digit, a hyphen or an underscore in it, or with a
//!   well-known service port ([`WELL_KNOWN_PORTS`]: `redis:6379`, not `connectionpool:791`).
//!
//! Never hosts: names with a camel-case label without hyphens (`HTTPAdapter`, but
//! `Alices-MacBook-Pro.local` is a host), dotted names with an underscore (`self.conn_pool`),
//! starting with `self`, `cls` or `this`, or right after a dot (`.env.local`; but
//! `*.acme.com` is a wildcard host), a call
//! (`logger.info(`), names whose labels are all numbers (versions and IPv4 addresses, which
//! have their own rule), `localhost`, and the public module hosts that start a Go import path
//! (`github.com/lib/pq.(*conn).recv`), and settings modules (`myproj.settings.local`).

use std::ops::Range;
use std::sync::OnceLock;

use super::text::Spans;

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Candidate names: runs of labels (letters, digits, inner hyphens; underscores are let in
/// to be recognized as code) joined by dots, without the dots and hyphens at either end
/// (`.env` starts after its dot, `example.com.` ends before the full stop); a single label
/// only before `:<digit>`. A run with an empty label or a label starting or ending with a
/// hyphen is no name. A plain scan: it is the hot loop of long text.
fn candidates(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if !is_name_byte(bytes[i]) {
                i += 1;
                continue;
            }
            let run_start = i;
            while i < bytes.len() && is_name_byte(bytes[i]) {
                i += 1;
            }
            let run = &text[run_start..i];
            let name = run.trim_matches(['.', '-']);
            if name.is_empty() {
                continue;
            }
            let start = run_start + (run.len() - run.trim_start_matches(['.', '-']).len());
            let end = start + name.len();
            let dotted = name.contains('.');
            let before_port =
                bytes.get(end) == Some(&b':') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
            let labels_ok = name
                .split('.')
                .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
            if labels_ok && (dotted || before_port) {
                return Some(start..end);
            }
        }
        None
    })
}

/// File extensions, which win over top-level domains (`.rs`, `.py`, `.sh`, `.pl`, `.md`,
/// `.so`, `.zip` are both): source, scripts, configuration, data, archives, libraries.
const FILE_EXTENSIONS: &str =
    "a asm bak bash bat bin bz2 c cc cer cfg cjs ckpt class clj cmake cmd conf cpp crt cs \
     csr css csv cxx d dart db deb diff dist dll dylib egg env erl err ex example exe exs \
     fish fs fsx gif go gradle graphql groovy gz h h5 hcl hh hpp hrl hs htm html hxx ini \
     ipynb j2 jar java jinja jks jl jpeg jpg js json jsonl jsx key kt kts less lib lock \
     log lua m md mjs mk ml mli mm mov ndjson nim nix npy npz o onnx orig out p12 parquet \
     patch pb pdb pdf pem pfx php pickle pid pkl pl plist pm png proto ps1 psm1 pt pth pxd \
     py pyc pyd pyi pyo pyx r rb rej rpm rs rst s safetensors sample sc scala scss service \
     sh so sock socket sol sql sqlite sqlite3 svelte svg swift swp t tar tf tfvars tgz \
     timer tmp tmpl toml tpl ts tsv tsx txt v vue wasm whl xml xz yaml yml zig zip zsh zst";

/// Top-level domains that make a name of two labels or more a host: generic ones, country
/// codes seldom taken for code words, and private suffixes (cloud and cluster DNS, mDNS,
/// home and office networks, reverse DNS, Tor).
const TLDS_2_LABELS: &str =
    "com net org edu gov mil int biz co eu asia mobi aero travel jobs museum coop xyz \
     online website tech de fr nl jp cn ru uk ch se dk fi br au nz kr tw hk sg za cz be ar \
     cl ie il ua vn hu ro internal local localdomain lan corp intranet intra svc consul \
     arpa onion";

/// Top-level domains that make a host only of a name with three labels or more: the other
/// country codes, and generic domains that are also attribute names or file extensions in
/// code (`scipy.io`, `flask.app`, `logger.info`, `args.lr`, `obj.pk`).
const TLDS_3_LABELS: &str =
    "io ai app dev cloud info me tv fm gg ly to top site store shop blog global group \
     network systems services solutions digital agency company works zone software space \
     world live home test example private invalid ac ad ae af ag al am ao aq as at aw ax \
     az ba bb bd bf bg bh bi bj bm bn bo bs bt bw by bz ca cd cf cg ci ck cm cr cu cv cw \
     cx cy dj dm do dz ec ee eg er es et fj fk fo ga gd ge gf gh gi gl gm gn gp gq gr gs \
     gt gu gw gy hm hn hr ht im iq ir is it je jm jo ke kg kh ki km kn kp kw ky kz la lb \
     lc li lk ls lt lu lv ma mc md mg mh mk mn mo mp mq mr ms mt mu mv mw mx my mz na nc \
     ne nf ng ni np nr nu om pa pe pf pg ph pk pn pr ps pt pw qa re rw sa sb sd sh si sk \
     sl sm sn so sr ss st su sv sx sy sz tc td tg th tj tk tl tm tn tr tt tz ug us uy uz \
     va vc ve vg vi vu wf ws ye yt zm zw";
// Left out on purpose, as the last word of too much code: `id`, `in`, `name`, `run`, `new`,
// `one`, `page`, `link`, `host`, `lr`, `no` (names ending so are hosts only with a port).

/// Ports of common services: next to one, even a plain word is a host (`redis:6379`).
pub(super) const WELL_KNOWN_PORTS: &[u16] = &[
    21, 22, 23, 25, 53, 80, 110, 143, 389, 443, 465, 587, 636, 993, 995, 1433, 1521, 2049, 2181,
    2375, 2376, 2379, 2380, 3000, 3306, 3389, 4222, 4317, 4318, 5000, 5432, 5433, 5672, 5984, 6333,
    6334, 6379, 6380, 6443, 7000, 7001, 7474, 7687, 8000, 8080, 8081, 8086, 8088, 8123, 8200, 8443,
    8500, 8888, 9000, 9042, 9090, 9092, 9093, 9200, 9300, 9418, 11211, 15672, 26257, 27017, 50051,
];

/// Public module hosts, kept where they start a Go import path (a function name in a Go
/// stack trace): `github.com/lib/pq.(*conn).recv`.
const GO_MODULE_HOSTS: &str =
    "github.com gitlab.com bitbucket.org golang.org google.golang.org cloud.google.com \
     gopkg.in go.uber.org go.opentelemetry.io go.etcd.io go.mongodb.org k8s.io sigs.k8s.io \
     gorm.io modernc.org honnef.co";

/// Words that are no host before `:<number>`, whatever the number: fields of log lines and
/// protocol names (`line:80`, `http2:443`).
const NOT_HOSTS: &str =
    "localhost line lines col column port pid tid uid gid code errno status offset pos \
     position len length size id row step attempt retry retries count timeout version page \
     index level depth error err warn warning info debug trace fatal http https http1 \
     http2 http3 tcp udp tcp4 tcp6 udp4 udp6 ipv4 ipv6 tls tls1 ssl sha1 sha256 sha512 md5 \
     utf8 utf-8 base64 x509 file unix";

/// Modules that hold settings per environment (`settings.local`, `config.dev`): names ending
/// with one of these and a top-level domain are code.
const CONFIG_MODULES: &str = "settings config configs conf env environments";

/// Labels that only code starts with.
const CODE_ROOTS: &str = "self cls this super";

/// One of the space-separated lists above (lower case), for lookups in any letter case.
#[derive(Clone, Copy)]
struct WordSet(u8);

static FILE_EXTENSION_SET: WordSet = WordSet(1);
static TLD_2_SET: WordSet = WordSet(1 << 1);
static TLD_3_SET: WordSet = WordSet(1 << 2);
static GO_MODULE_HOST_SET: WordSet = WordSet(1 << 3);
static NOT_HOST_SET: WordSet = WordSet(1 << 4);
static CONFIG_MODULE_SET: WordSet = WordSet(1 << 5);
static CODE_ROOT_SET: WordSet = WordSet(1 << 6);

/// Every listed word with the lists it is in, in an open-addressing table: one lookup per
/// label is on the hot path of long text.
struct WordTable {
    slots: Vec<Option<(&'static str, u8)>>,
}

static WORD_TABLE: OnceLock<WordTable> = OnceLock::new();

/// FNV-1a of the lower-case bytes.
fn fold_hash(word: &[u8]) -> usize {
    word.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
    }) as usize
}

impl WordTable {
    fn build() -> Self {
        let lists = [
            (FILE_EXTENSIONS, FILE_EXTENSION_SET),
            (TLDS_2_LABELS, TLD_2_SET),
            (TLDS_3_LABELS, TLD_3_SET),
            (GO_MODULE_HOSTS, GO_MODULE_HOST_SET),
            (NOT_HOSTS, NOT_HOST_SET),
            (CONFIG_MODULES, CONFIG_MODULE_SET),
            (CODE_ROOTS, CODE_ROOT_SET),
        ];
        let count: usize = lists
            .iter()
            .map(|(l, _)| l.split_whitespace().count())
            .sum();
        let mut slots = vec![None; (count * 4).next_power_of_two()];
        let mask = slots.len() - 1;
        for (list, set) in lists {
            for word in list.split_whitespace() {
                let mut i = fold_hash(word.as_bytes()) & mask;
                loop {
                    match &mut slots[i] {
                        Some((w, flags)) if *w == word => {
                            *flags |= set.0;
                            break;
                        }
                        Some(_) => i = (i + 1) & mask,
                        empty @ None => {
                            *empty = Some((word, set.0));
                            break;
                        }
                    }
                }
            }
        }
        WordTable { slots }
    }

    /// The lists `word` is in, as [`WordSet`] bits.
    fn lists_of(&self, word: &str) -> u8 {
        let mask = self.slots.len() - 1;
        let mut i = fold_hash(word.as_bytes()) & mask;
        while let Some((w, flags)) = self.slots[i] {
            if w.eq_ignore_ascii_case(word) {
                return flags;
            }
            i = (i + 1) & mask;
        }
        0
    }
}

impl WordSet {
    fn has(self, word: &str) -> bool {
        WORD_TABLE.get_or_init(WordTable::build).lists_of(word) & self.0 != 0
    }
}

/// Mixed case that names in DNS do not have: `HTTPAdapter`, `connectOne`; `Example` and
/// `DB01` are fine.
fn is_camel(label: &str) -> bool {
    let b = label.as_bytes();
    let lower_then_upper = b
        .windows(2)
        .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
    let upper_run_then_lower = b.windows(3).any(|w| {
        w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase() && w[2].is_ascii_lowercase()
    });
    lower_then_upper || upper_run_then_lower
}

/// Whether the dotted `labels` end with a top-level domain that makes them a host.
fn ends_with_tld(labels: &[&str]) -> bool {
    let Some(last) = labels.last() else {
        return false;
    };
    (labels.len() >= 2 && TLD_2_SET.has(last)) || (labels.len() >= 3 && TLD_3_SET.has(last))
}

/// The port after a name: `:` then 1 to 65535 without a leading zero, not followed by more
/// of a word, by `:<digit>` (`main:10:5` is a place in a file) or `.<digit>` (a ratio).
fn port_after(text: &str, at: usize) -> Option<u16> {
    let rest = text[at..].strip_prefix(':')?;
    let len = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let digits = &rest[..len];
    let after = &rest[len..];
    let port: u16 = digits.parse().ok()?;
    let continues = after.starts_with(|c: char| c.is_alphanumeric() || c == '_')
        || (after.starts_with([':', '.']) && after[1..].starts_with(|c: char| c.is_ascii_digit()));
    (digits.len() >= 2 && !digits.starts_with('0') && !continues).then_some(port)
}

/// The part of the dotted name `name` (at `range`) that is a host, if any.
fn host_in(text: &str, range: Range<usize>) -> Option<Range<usize>> {
    let name = &text[range.clone()];
    let last = name.rsplit('.').next().unwrap_or_default();
    let port = port_after(text, range.end);
    // The common case, dotted code (`os.path.join`): nothing can make it a host.
    let ending = FILE_EXTENSION_SET.0 | TLD_2_SET.0 | TLD_3_SET.0;
    if port.is_none() && !WordSet(ending).has(last) {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let before = text[..range.start].chars().next_back();
    let after = &text[range.end..];

    // Camel case is code (`HTTPAdapter`), unless hyphens join words as in host names
    // (`Alices-MacBook-Pro.local`); a name right after a dot is a dotfile (`.env.local`).
    let code_label = |l: &&str| is_camel(l) && !l.contains('-');
    let dotfile = before == Some('.') && !text[..range.start].ends_with("*.");
    if labels.iter().any(code_label) || CODE_ROOT_SET.has(labels[0]) || dotfile {
        return None;
    }
    if labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    // A file, perhaps named after a host: `main.rs:10`, `api.example.com.log`.
    if labels.len() >= 2 && FILE_EXTENSION_SET.has(last) {
        let stem = &labels[..labels.len() - 1];
        let stem_len = name.len() - last.len() - 1;
        return (!stem.iter().any(|l| l.contains('_')) && ends_with_tld(stem))
            .then(|| range.start..range.start + stem_len);
    }
    // A call or a method: `logger.info(`, `client.get::<T>`.
    if after.starts_with('(') || after.starts_with("::") {
        return None;
    }
    let is_word = |l: &str| l.bytes().all(|b| b.is_ascii_alphabetic());
    if labels.len() == 1 {
        // A bare name is a host only before a port.
        let port = port?;
        let plain = is_word(last);
        let version = last
            .trim_start_matches(['v', 'V'])
            .bytes()
            .all(|b| b.is_ascii_digit());
        let shaped = last.contains(['-', '_']) || last.bytes().any(|b| b.is_ascii_digit());
        let ok = last.len() >= 2
            && last.starts_with(|c: char| c.is_ascii_alphabetic())
            && !version
            && !NOT_HOST_SET.has(last)
            && (shaped || (plain && WELL_KNOWN_PORTS.contains(&port)))
            // `Makefile:12` is a file and a line.
            && (last == last.to_ascii_lowercase() || last == last.to_ascii_uppercase());
        return ok.then_some(range);
    }
    if labels.iter().any(|l| l.contains('_')) {
        return None;
    }
    if after.starts_with('/') && GO_MODULE_HOST_SET.has(name) && before != Some('/') {
        return None;
    }
    // Configuration modules: `myproj.settings.local`, `config.local`.
    let config_module = labels.len() >= 2 && CONFIG_MODULE_SET.has(labels[labels.len() - 2]);
    if ends_with_tld(&labels) && !config_module {
        return Some(range);
    }
    let port = port?;
    let shaped = name.contains('-') || name.bytes().any(|b| b.is_ascii_digit());
    (last.starts_with(|c: char| c.is_ascii_alphabetic())
        && (shaped || WELL_KNOWN_PORTS.contains(&port)))
    .then_some(range)
}

/// Host names (dotted, or bare before a port) become `<host>`; a port stays.
pub(super) fn collect_hosts(text: &str, spans: &mut Spans) {
    for name in candidates(text) {
        if spans.overlaps(&name) {
            continue;
        }
        if let Some(host) = host_in(text, name.clone()).filter(|_| !spans.glued(text, &name)) {
            spans.add(host, "<host>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> Option<&str> {
        let name = candidates(text).next()?;
        host_in(text, name).map(|r| &text[r])
    }

    #[test]
    fn hosts_by_top_level_domain_private_suffix_or_port() {
        for (text, name) in [
            ("name.example.com", "name.example.com"),
            ("db.internal", "db.internal"),
            ("api.svc.cluster.local", "api.svc.cluster.local"),
            ("api.acme.io", "api.acme.io"),
            ("redis-node-3:6379", "redis-node-3"),
            ("kafka-0:9092", "kafka-0"),
            ("db01:5432", "db01"),
            ("redis:6379", "redis"),
            ("db.prod:5432", "db.prod"),
            ("api.example.com.log", "api.example.com"),
            ("project_db_1:5432", "project_db_1"),
            ("DB01.CORP:1433", "DB01.CORP"),
            ("Alices-MacBook-Pro.local", "Alices-MacBook-Pro.local"),
        ] {
            assert_eq!(host(text), Some(name), "{text}");
        }
    }

    #[test]
    fn files_code_versions_and_times_are_not_hosts() {
        for text in [
            "main.rs:10:5",
            "app.py",
            "de.rs:42",
            "server.go:88",
            "install.sh",
            "README.md",
            "libssl.so.3",
            "requests.adapters",
            "os.path.join",
            "self.conn.cursor",
            "scipy.io",
            "args.lr",
            "logger.info(",
            "requests.adapters.HTTPAdapter.send",
            "psycopg2.OperationalError",
            "url.Error",
            "connectionpool:791",
            "Makefile:12",
            "1.2.3",
            "10.0.0.5:5432",
            "12:30:45",
            "localhost:8080",
            "line:80",
            "v2:443",
            "github.com/lib/pq.(*conn).recv",
            "event.data.id",
            ".env.local",
            "myproj.settings.local",
            "com.acme.billing.InvoiceService.charge",
            "InvoiceService.java:42",
        ] {
            assert_eq!(host(text), None, "{text}");
        }
    }

    #[test]
    fn ports_exclude_places_in_files() {
        assert_eq!(port_after("x:5432", 1), Some(5432));
        assert_eq!(port_after("x:10:5", 1), None);
        assert_eq!(port_after("x:0123", 1), None);
        assert_eq!(port_after("x:99999", 1), None);
        assert_eq!(port_after("x:80ms", 1), None);
        assert_eq!(port_after("x:1.5", 1), None);
    }

    #[test]
    fn the_tables_do_not_overlap() {
        for ext in FILE_EXTENSIONS.split_whitespace() {
            assert!(!TLD_2_SET.has(ext), "{ext}");
        }
        for tld in TLDS_2_LABELS.split_whitespace() {
            assert!(!TLD_3_SET.has(tld), "{tld}");
            assert_eq!(tld, tld.to_ascii_lowercase());
        }
    }
}
