//! The first-run notice: a short text on stderr, on the first enabled run, that says what
//! is collected and how to opt out — shown once, like Homebrew's and .NET's.
//!
//! An integrator asks for it with [`ClientBuilder::first_run_notice`]
//! (`"notice": {...}` in the JSON config of the bindings). At `build()`, and only when
//! consent says telemetry is on, the client prints the notice unless the profile's state
//! directory holds the marker file [`MARKER_FILE`]. The marker is written only when stderr
//! is a terminal: output that goes to a log or a pipe may never be read by a person, so
//! the notice is printed again on the next run. Opted out, nothing is printed and no file
//! is created.
//!
//! [`NoticePolicy`] decides whether the run that shows the notice sends anything. With
//! [`NoticePolicy::SendAfterNotice`] (the default, Homebrew's and .NET's rule), that run's
//! client captures nothing — a flag fixed at build, so the capture path is unchanged — and
//! its decision carries a line that says why. A program whose stderr is never a terminal
//! then never sends: nobody has seen the notice.
//!
//! ```
//! use telemetry_core::notice::{self, Notice, NoticeOutcome, NoticePolicy};
//! use telemetry_core::{env::MapEnvironment, profile::Profile};
//!
//! let home = std::env::temp_dir().join(format!("notice-doc-{}", std::process::id()));
//! let env = MapEnvironment::new().with("HOME", &home);
//! let acme: Profile = "acme".parse().unwrap();
//! let n = Notice::new("Acme").link("https://acme.example/telemetry");
//! assert_eq!(n.policy_value(), NoticePolicy::SendAfterNotice);
//!
//! // stderr is a pipe here: printed, but it does not count as seen.
//! let mut stderr = Vec::new();
//! let outcome = notice::present(&n, &acme, &env, &mut stderr, false);
//! assert!(matches!(outcome, NoticeOutcome::NotRecorded(_)));
//! assert!(String::from_utf8(stderr).unwrap().contains("ACME_TELEMETRY_DISABLED=1"));
//! assert!(!notice::was_shown(&acme, &env));
//!
//! // On a terminal it is recorded, and never shown again.
//! let outcome = notice::present(&n, &acme, &env, &mut Vec::new(), true);
//! assert_eq!(outcome, NoticeOutcome::Recorded);
//! assert_eq!(notice::present(&n, &acme, &env, &mut Vec::new(), true), NoticeOutcome::AlreadySeen);
//! # std::fs::remove_dir_all(&home).unwrap();
//! ```
//!
//! [`ClientBuilder::first_run_notice`]: crate::ClientBuilder::first_run_notice

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::env::Environment;
use crate::profile::{Polarity, Profile};

/// The marker's file name inside [`Profile::state_dir`]: present once the notice was seen.
pub const MARKER_FILE: &str = "telemetry_notice_shown";

/// What is collected, in plain words (docs/ARCHITECTURE.md, "Anonymization"). The
/// notice summarizes it; `telemetry status` prints it whole.
pub const COLLECTED: &[&str] = &[
    "which features are used and how often (the events the product records, and their counts)",
    "for products that keep usage statistics, a usage report about once an hour: counts, \
     failures and response times of its operations, and the product's own summaries \
     (e.g. how many collections, never their contents)",
    "for those products also: the OS distribution and version, CPU cores and instruction \
     flags, the amount of RAM, and the size and type (SSD or rotational) of the data disk",
    "for products that report crashes: the error's type, its message with e-mail and IP \
     addresses, host names, paths, user names and secrets removed, its stack frames \
     (function, file name without directories, line) and a fingerprint that groups the \
     same crash",
    "the product's name and version, and this library's version",
    "the operating system's name and version, and the CPU architecture",
    "the language runtime and its version (from Python also: conda, venv, Jupyter, Colab)",
    "whether it runs in a container, and whether it runs in CI",
    "a random install id (a UUID, never derived from your hardware, user or host name)",
    "names, ids and URLs only as keyed hashes, made with a secret that never leaves this machine",
    "numbers rounded to a few significant digits (counts that must add up are exact)",
    "error messages with e-mail and IP addresses, URLs, paths, user and host names removed",
    "timestamps truncated to the second",
];

/// What is never collected, in plain words (docs/ARCHITECTURE.md, "Anonymization").
pub const NEVER_COLLECTED: &[&str] = &[
    "your IP address (the receiver's GeoIP lookup is turned off)",
    "your host name or user name",
    "environment variables",
    "the working directory or any file path",
    "the data you store or process",
    "the hashing secret",
];

/// Whether the run that shows the notice sends anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticePolicy {
    /// Nothing is sent until the notice has been seen on a terminal on an earlier run
    /// (Homebrew, .NET). The default: a person gets the chance to opt out first.
    #[default]
    SendAfterNotice,
    /// The run that shows the notice sends too.
    SendFromFirstRun,
}

/// The notice an integrator asks for: the product's name, a link, the policy and
/// optionally the product's own opt-out command.
///
/// ```
/// use telemetry_core::notice::{Notice, NoticePolicy};
/// let n: Notice = serde_json::from_str(
///     r#"{"product": "Chroma", "link": "https://docs.trychroma.com/telemetry",
///         "policy": "send_from_first_run"}"#,
/// ).unwrap();
/// assert_eq!(n, Notice::new("Chroma")
///     .link("https://docs.trychroma.com/telemetry")
///     .policy(NoticePolicy::SendFromFirstRun));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// The product's name as people know it, e.g. `Chroma`.
    pub product: String,
    /// Where to read more about the product's telemetry.
    #[serde(default)]
    pub link: Option<String>,
    /// Whether the run that shows the notice sends anything.
    #[serde(default)]
    pub policy: NoticePolicy,
    /// The product's own opt-out command, e.g. `chroma telemetry disable`.
    #[serde(default)]
    pub opt_out_command: Option<String>,
}

impl Notice {
    /// A notice for `product`, with the default policy ([`NoticePolicy::SendAfterNotice`]).
    pub fn new(product: impl Into<String>) -> Self {
        Notice {
            product: product.into(),
            link: None,
            policy: NoticePolicy::default(),
            opt_out_command: None,
        }
    }

    /// Where to read more, printed at the end of the notice.
    pub fn link(mut self, url: impl Into<String>) -> Self {
        self.link = Some(url.into());
        self
    }

    /// Whether the run that shows the notice sends anything.
    pub fn policy(mut self, policy: NoticePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The product's own opt-out command, named beside the environment switches.
    pub fn opt_out_command(mut self, command: impl Into<String>) -> Self {
        self.opt_out_command = Some(command.into());
        self
    }

    /// The policy in force.
    pub fn policy_value(&self) -> NoticePolicy {
        self.policy
    }

    /// The notice's text for `profile`, ending with a newline; the opt-out switches are
    /// the profile's own, so a Chroma user reads `ANONYMIZED_TELEMETRY=False`.
    ///
    /// ```
    /// use telemetry_core::{notice::Notice, profile::Profile};
    /// let text = Notice::new("Chroma").text(&Profile::Chroma);
    /// assert!(text.contains("ANONYMIZED_TELEMETRY=False"));
    /// assert!(text.contains("DO_NOT_TRACK=1"));
    /// ```
    pub fn text(&self, profile: &Profile) -> String {
        let mut switches = vec!["DO_NOT_TRACK=1".to_string()];
        // The first switch is the product's documented opt-out; a second one (a generic
        // profile's `<NAME>_TELEMETRY`) would only repeat it.
        if let Some(switch) = profile.env_switches().first() {
            let off = match switch.polarity {
                Polarity::TrueEnables => "False",
                Polarity::TrueDisables => "1",
            };
            switches.push(format!("{}={off}", switch.name));
        }
        if let Some(flag) = profile.cli_flag() {
            switches.push(format!("pass {flag}"));
        }
        if let Some(command) = &self.opt_out_command {
            switches.push(format!("run `{command}`"));
        }
        let mut text = format!(
            "{product} collects anonymous usage statistics: which features are used and how\n\
             often, the {product} and OS versions, and a random install id. Names and ids are\n\
             sent only as keyed hashes; numbers are rounded. It never collects your IP\n\
             address, host or user name, file paths, environment variables or your data.\n\
             {}",
            wrap(&format!("To opt out: {}.", switches.join(", or ")), 80),
            product = self.product,
        );
        if let Some(link) = &self.link {
            text.push_str(&format!("Learn more: {link}\n"));
        }
        text.push_str("(This notice is shown once.)\n");
        text
    }
}

/// `text` as lines of at most `width` characters (a longer word gets a line of its own),
/// each ending with a newline: a terminal's notice should not wrap mid-word.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// Where the marker lives for `profile`; `None` when no home directory is known (the
/// notice is then shown on every enabled run, since it cannot be recorded).
pub fn marker_path(profile: &Profile, env: &dyn Environment) -> Option<PathBuf> {
    Some(profile.state_dir(env)?.join(MARKER_FILE))
}

/// Whether the notice was seen on an earlier run (the marker exists). Creates nothing.
pub fn was_shown(profile: &Profile, env: &dyn Environment) -> bool {
    marker_path(profile, env).is_some_and(|p| p.is_file())
}

/// What [`present`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// Seen on an earlier run: not printed again.
    AlreadySeen,
    /// Printed on a terminal and recorded: this is the last time.
    Recorded,
    /// Printed (or tried), but it does not count as seen, for the reason given; it will be
    /// printed again on the next enabled run.
    NotRecorded(String),
}

/// Prints the notice to `out` unless it was seen before, and records it as seen when
/// `out_is_terminal` (the client passes stderr and `isatty(2)`; tests pass a buffer and
/// either answer). A failed write never counts as seen.
pub fn present(
    notice: &Notice,
    profile: &Profile,
    env: &dyn Environment,
    out: &mut dyn Write,
    out_is_terminal: bool,
) -> NoticeOutcome {
    if was_shown(profile, env) {
        return NoticeOutcome::AlreadySeen;
    }
    let written = out
        .write_all(notice.text(profile).as_bytes())
        .and_then(|()| out.flush());
    if let Err(e) = written {
        return NoticeOutcome::NotRecorded(format!("it could not be printed: {e}"));
    }
    if !out_is_terminal {
        return NoticeOutcome::NotRecorded("stderr is not a terminal".into());
    }
    match record(profile, env) {
        Ok(()) => NoticeOutcome::Recorded,
        Err(e) => NoticeOutcome::NotRecorded(e),
    }
}

fn record(profile: &Profile, env: &dyn Environment) -> Result<(), String> {
    let path = marker_path(profile, env)
        .ok_or_else(|| "no home directory is known to record it in".to_string())?;
    let write = || -> io::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        // Only the file's presence matters; the word helps a person who finds it.
        fs::write(&path, "shown\n")
    };
    write().map_err(|e| format!("{} cannot be written: {e}", path.display()))
}

/// What the client does with the notice at build time (only when consent says on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCheck {
    /// Whether this run's client may send.
    pub send: bool,
    /// A line for the decision's warnings, when there is something to explain.
    pub note: Option<String>,
}

/// Presents the notice on the process's stderr and applies the policy: the hook
/// [`ClientBuilder::build`](crate::ClientBuilder::build) calls when telemetry is on.
pub fn check_at_build(notice: &Notice, profile: &Profile, env: &dyn Environment) -> BuildCheck {
    // SAFETY: isatty only inspects a file descriptor number.
    let terminal = unsafe { libc::isatty(2) } == 1;
    let outcome = present(notice, profile, env, &mut io::stderr().lock(), terminal);
    decide(notice.policy, &outcome)
}

/// The policy applied to an outcome; separate from the printing so it is tested alone.
fn decide(policy: NoticePolicy, outcome: &NoticeOutcome) -> BuildCheck {
    let hold = policy == NoticePolicy::SendAfterNotice;
    let (send, note) = match (outcome, hold) {
        (NoticeOutcome::AlreadySeen, _) => (true, None),
        (NoticeOutcome::Recorded, false) => (true, None),
        (NoticeOutcome::Recorded, true) => (
            false,
            Some(
                "the first-run notice was shown in this run: nothing is sent before the next \
                 run (notice policy send_after_notice)"
                    .to_string(),
            ),
        ),
        (NoticeOutcome::NotRecorded(why), false) => (
            true,
            Some(format!(
                "the first-run notice was printed but not recorded as seen ({why}): it will \
                 be printed again"
            )),
        ),
        (NoticeOutcome::NotRecorded(why), true) => (
            false,
            Some(format!(
                "the first-run notice was printed but not recorded as seen ({why}): nothing \
                 is sent until it has been seen on a terminal (notice policy send_after_notice)"
            )),
        ),
    };
    BuildCheck { send, note }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnvironment;
    use std::path::Path;
    use std::process::{Command, Stdio};

    fn home(dir: &Path) -> MapEnvironment {
        MapEnvironment::new().with("HOME", dir)
    }

    #[test]
    fn not_a_terminal_prints_but_records_nothing_and_prints_again() {
        let tmp = tempfile::tempdir().unwrap();
        let env = home(tmp.path());
        let n = Notice::new("Chroma").link("https://docs.trychroma.com/telemetry");
        for _ in 0..2 {
            let mut out = Vec::new();
            let outcome = present(&n, &Profile::Chroma, &env, &mut out, false);
            assert_eq!(
                outcome,
                NoticeOutcome::NotRecorded("stderr is not a terminal".into())
            );
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with("Chroma collects anonymous usage statistics"));
            assert!(text.contains("Learn more: https://docs.trychroma.com/telemetry"));
        }
        // Not even the state directory was made.
        assert!(!tmp.path().join(".local").exists());
    }

    #[test]
    fn a_terminal_records_it_once_in_the_profile_state_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let env = home(tmp.path());
        let qdrant = Profile::Qdrant;
        let n = Notice::new("Qdrant");
        assert_eq!(
            present(&n, &qdrant, &env, &mut Vec::new(), true),
            NoticeOutcome::Recorded
        );
        let marker = tmp.path().join(".local/state/qdrant").join(MARKER_FILE);
        assert!(marker.is_file());
        assert!(was_shown(&qdrant, &env));
        let mut out = Vec::new();
        assert_eq!(
            present(&n, &qdrant, &env, &mut out, true),
            NoticeOutcome::AlreadySeen
        );
        assert!(out.is_empty());
        // Another profile has its own marker.
        assert!(!was_shown(&Profile::Chroma, &env));
    }

    #[test]
    fn a_marker_that_cannot_be_written_does_not_count() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        // A state home under a regular file: even root cannot create it.
        let env = MapEnvironment::new().with("XDG_STATE_HOME", file.join("state"));
        let outcome = present(
            &Notice::new("Acme"),
            &Profile::Chroma,
            &env,
            &mut Vec::new(),
            true,
        );
        let NoticeOutcome::NotRecorded(why) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(why.contains("cannot be written"), "{why}");
        let nowhere = present(
            &Notice::new("Acme"),
            &Profile::Chroma,
            &MapEnvironment::new(),
            &mut Vec::new(),
            true,
        );
        assert!(matches!(nowhere, NoticeOutcome::NotRecorded(_)));
    }

    #[test]
    fn a_failed_write_is_not_seen() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let env = home(tmp.path());
        let outcome = present(
            &Notice::new("Acme"),
            &Profile::Chroma,
            &env,
            &mut Closed,
            true,
        );
        assert!(matches!(outcome, NoticeOutcome::NotRecorded(_)));
        assert!(!was_shown(&Profile::Chroma, &env));
    }

    #[test]
    fn the_policy_holds_the_showing_run_only_when_asked() {
        use NoticePolicy::*;
        let not = NoticeOutcome::NotRecorded("stderr is not a terminal".into());
        assert!(decide(SendAfterNotice, &NoticeOutcome::AlreadySeen).send);
        assert!(!decide(SendAfterNotice, &NoticeOutcome::Recorded).send);
        assert!(!decide(SendAfterNotice, &not).send);
        assert!(decide(SendFromFirstRun, &NoticeOutcome::Recorded).send);
        assert!(decide(SendFromFirstRun, &not).send);
        assert_eq!(
            decide(SendAfterNotice, &NoticeOutcome::AlreadySeen).note,
            None
        );
        assert!(decide(SendAfterNotice, &not)
            .note
            .unwrap()
            .contains("not a terminal"));
    }

    #[test]
    fn the_text_names_each_profile_own_switches() {
        let n = Notice::new("X").opt_out_command("x telemetry disable");
        // Lines are wrapped; compare with single spaces.
        let flat = |p: &Profile| n.text(p).split_whitespace().collect::<Vec<_>>().join(" ");
        let qdrant = flat(&Profile::Qdrant);
        assert!(qdrant.contains("QDRANT__TELEMETRY_DISABLED=1"));
        assert!(qdrant.contains("or pass --disable-telemetry"));
        assert!(qdrant.contains("or run `x telemetry disable`."));
        assert!(flat(&Profile::Evidently).contains("EVIDENTLY_DISABLE_TELEMETRY=1"));
        assert!(!flat(&Profile::Chroma).contains("Learn more"));
        for profile in [
            Profile::Chroma,
            Profile::Qdrant,
            "a-long-product-name".parse().unwrap(),
        ] {
            for line in n.text(&profile).lines() {
                assert!(line.chars().count() <= 80, "{line:?}");
            }
        }
    }

    #[test]
    fn wrapping_keeps_words_whole() {
        assert_eq!(wrap("aa bb cc", 5), "aa bb\ncc\n");
        assert_eq!(wrap("a verylongword b", 4), "a\nverylongword\nb\n");
    }

    #[test]
    fn opted_out_the_notice_is_not_looked_at() {
        let tmp = tempfile::tempdir().unwrap();
        let client = crate::Client::builder("acme", "1.0")
            .environment(home(tmp.path()).with("DO_NOT_TRACK", "1"))
            .working_dir(tmp.path())
            .sink(crate::sink::SinkConfig::Memory(
                crate::sink::MemorySink::new(),
            ))
            .first_run_notice(Notice::new("Acme"))
            .build()
            .unwrap();
        assert!(!client.is_enabled());
        assert!(client.decision().warnings.is_empty());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    /// Set in the environment of the child processes below, which re-run this test binary.
    const CHILD: &str = "TELEMETRY_NOTICE_CHILD";

    /// The child: builds a real client with a notice, captures one event and reports.
    /// Does nothing in an ordinary test run.
    #[test]
    fn child_builds_a_client_with_a_notice() {
        let Ok(policy) = std::env::var(CHILD) else {
            return;
        };
        let policy: NoticePolicy = serde_json::from_value(policy.into()).unwrap();
        let memory = crate::sink::MemorySink::new();
        let home = std::env::var("HOME").unwrap();
        let client = crate::Client::builder("acme", "1.0")
            .environment(crate::env::ProcessEnvironment)
            .working_dir(&home)
            .sink(crate::sink::SinkConfig::Memory(memory.clone()))
            .first_run_notice(Notice::new("Acme").policy(policy))
            .build()
            .unwrap();
        client.capture(crate::Event::new("started"));
        client.shutdown(std::time::Duration::from_secs(5));
        println!(
            "RESULT sent={} notes={}",
            memory.events().len(),
            client.decision().warnings.len()
        );
    }

    /// Runs the child with an isolated HOME and `stderr` as given; returns its stderr (empty
    /// when not piped) and its RESULT line.
    fn run_child(home: &Path, policy: &str, stderr: Stdio) -> (String, String) {
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "notice::tests::child_builds_a_client_with_a_notice",
                "--nocapture",
                "--test-threads=1",
            ])
            .env_clear()
            .env("HOME", home)
            .env(CHILD, policy)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        // libtest prints the test's name on the same line, before the test's own output.
        let result = stdout
            .lines()
            .find_map(|l| l.find("RESULT ").map(|at| &l[at..]));
        let result = result.unwrap_or_else(|| panic!("{stdout}")).to_string();
        (String::from_utf8_lossy(&output.stderr).into_owned(), result)
    }

    #[test]
    fn a_real_process_with_stderr_piped_sees_the_notice_every_time_and_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let env = home(tmp.path());
        let acme: Profile = "acme".parse().unwrap();
        for _ in 0..2 {
            let (stderr, result) = run_child(tmp.path(), "send_after_notice", Stdio::piped());
            assert!(stderr.contains("Acme collects anonymous usage statistics"));
            assert_eq!(result, "RESULT sent=0 notes=1");
            assert!(!was_shown(&acme, &env));
        }
        // Sending from the first run: this run sends although the notice is not recorded.
        let (stderr, result) = run_child(tmp.path(), "send_from_first_run", Stdio::piped());
        assert!(stderr.contains("Acme collects anonymous usage statistics"));
        assert_eq!(result, "RESULT sent=1 notes=1");
        assert!(!was_shown(&acme, &env));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_terminal_records_the_notice_and_the_next_run_sends() {
        use std::fs::File;
        use std::io::Read;
        use std::os::fd::FromRawFd;

        let tmp = tempfile::tempdir().unwrap();
        let env = home(tmp.path());
        let acme: Profile = "acme".parse().unwrap();

        // A pseudo-terminal: the child's stderr is its slave side, we read the master.
        // SAFETY: plain libc calls on descriptors this test owns; each is checked.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(master >= 0, "posix_openpt: {}", io::Error::last_os_error());
        let mut master = unsafe { File::from_raw_fd(master) };
        let mut name = [0 as libc::c_char; 128];
        unsafe {
            use std::os::fd::AsRawFd;
            assert_eq!(libc::grantpt(master.as_raw_fd()), 0);
            assert_eq!(libc::unlockpt(master.as_raw_fd()), 0);
            assert_eq!(
                libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
                0
            );
        }
        let slave_path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_str()
            .unwrap()
            .to_string();
        let slave = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&slave_path)
            .unwrap();
        // Read while the child writes, until every slave descriptor is closed (EIO).
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match master.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            String::from_utf8_lossy(&seen).into_owned()
        });
        // `slave` moves into the Command, which drops it when run_child returns, so the
        // reader sees EIO once the child has exited.
        let (_, first) = run_child(tmp.path(), "send_after_notice", Stdio::from(slave));
        let printed = reader.join().unwrap();
        assert!(
            printed.contains("Acme collects anonymous usage statistics"),
            "{printed:?}"
        );
        assert_eq!(first, "RESULT sent=0 notes=1");
        assert!(was_shown(&acme, &env));

        // Seen: the next run prints nothing and sends.
        let (stderr, next) = run_child(tmp.path(), "send_after_notice", Stdio::piped());
        assert!(!stderr.contains("Acme collects"), "{stderr}");
        assert_eq!(next, "RESULT sent=1 notes=0");
    }
}
