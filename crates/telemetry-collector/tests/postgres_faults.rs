//! PostgreSQL faults under load, with real servers on loopback: a collector
//! killed with SIGKILL beside another on the same database, the database
//! stopped and started again, its connections terminated. In each, senders
//! behave as PostHog's do: a batch keeps its event uuids and is posted again
//! (to the other collector, when there are two) until it is answered 200.
//! Afterwards every event of every batch must be stored exactly once, and
//! every acknowledged one must be there.
//!
//! The three tests take turns (one lock): each puts a few senders' load on the
//! machine's cores, and their timing assertions (how soon the collector serves
//! again) should measure the collector, not the neighbouring test.

mod common;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::postgres::TestPostgres;
use common::{batch, event};
use telemetry_collector::Collector;

const BIN: &str = env!("CARGO_BIN_EXE_telemetry-collector");

/// Events per batch.
const PER_BATCH: u32 = 10;

/// How long a sender keeps retrying one batch before it gives up (and the test
/// fails: the batch was never acknowledged).
const GIVE_UP: Duration = Duration::from_secs(15);

/// How long a sender waits before posting a refused batch again. Shorter than
/// the collector's `Retry-After: 1` on purpose: the tests measure how soon the
/// collector serves again, and senders that waited a second would hide it.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// The senders and what they saw.

/// What one POST got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// An HTTP answer: its status and `Retry-After` header.
    Status {
        code: u16,
        retry_after: Option<String>,
    },
    /// No HTTP answer: connection refused or reset, timeout.
    Failed(String),
}

impl Outcome {
    fn ok(&self) -> bool {
        matches!(self, Outcome::Status { code: 200, .. })
    }

    fn code(&self) -> Option<u16> {
        match self {
            Outcome::Status { code, .. } => Some(*code),
            Outcome::Failed(_) => None,
        }
    }
}

/// One POST of one batch to one collector; `at` is when its answer (or
/// failure) arrived.
#[derive(Debug, Clone)]
struct Attempt {
    at: Instant,
    target: usize,
    outcome: Outcome,
}

/// A batch that was answered 200.
#[derive(Debug, Clone)]
struct Delivered {
    uuids: Vec<String>,
    /// The collector that answered 200, and when.
    by: usize,
    at: Instant,
    /// POSTs it took, the last one included.
    attempts: u32,
}

#[derive(Debug, Default)]
struct Log {
    attempts: Vec<Attempt>,
    delivered: Vec<Delivered>,
    /// Batches given up on after [`GIVE_UP`]: never acknowledged.
    undelivered: Vec<Vec<String>>,
}

/// Sender threads posting batches of fresh events until stopped; each retries
/// a refused batch, with the same uuids, on the next collector in `targets`.
struct Load {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `senders` threads posting to `targets` (base URLs) in turn: sender `s`
    /// posts its batch `n` first to `targets[(s + n) % len]`, as a round-robin
    /// load balancer would spread them. `tag` keeps the uuids of one test apart.
    fn start(tag: u8, senders: u8, targets: &[String]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Log::default()));
        let threads = (0..senders)
            .map(|s| {
                let (stop, log, targets) = (Arc::clone(&stop), Arc::clone(&log), targets.to_vec());
                thread::Builder::new()
                    .name(format!("sender-{s}"))
                    .spawn(move || send(tag, s, &targets, &stop, &log))
                    .unwrap()
            })
            .collect();
        Load { stop, log, threads }
    }

    /// Batches delivered so far that match `which`.
    fn delivered(&self, which: impl Fn(&Delivered) -> bool) -> usize {
        lock(&self.log)
            .delivered
            .iter()
            .filter(|d| which(d))
            .count()
    }

    /// Waits until at least `n` delivered batches match `which`; panics after
    /// `timeout`, naming `what`.
    fn wait_for(
        &self,
        n: usize,
        timeout: Duration,
        what: &str,
        which: impl Fn(&Delivered) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.delivered(&which);
            if got >= n {
                return;
            }
            if Instant::now() > deadline {
                let log = lock(&self.log);
                let last: Vec<_> = log.attempts.iter().rev().take(5).collect();
                panic!(
                    "only {got} of {n} batches {what} within {timeout:?}; last attempts: {last:#?}"
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops starting new batches, lets each sender finish (deliver or give
    /// up on) the batch at hand, and returns what they saw.
    fn finish(self) -> Log {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("a sender thread panicked");
        }
        Arc::try_unwrap(self.log)
            .expect("the senders are done")
            .into_inner()
            .unwrap()
    }
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

fn send(tag: u8, s: u8, targets: &[String], stop: &AtomicBool, log: &Mutex<Log>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let uuids: Vec<String> = (0..PER_BATCH)
            .map(|i| {
                format!(
                    "00000000-0000-4000-8000-{tag:02x}{s:02x}{:08x}",
                    n * PER_BATCH + i
                )
            })
            .collect();
        let body = batch(
            uuids
                .iter()
                .map(|u| event("fault_load", &format!("sender-{s}"), u))
                .collect(),
        )
        .to_string();
        let mut target = (s as usize + n as usize) % targets.len();
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = post(&agent, &targets[target], &body);
            let at = Instant::now();
            let ok = outcome.ok();
            lock(log).attempts.push(Attempt {
                at,
                target,
                outcome,
            });
            if ok {
                lock(log).delivered.push(Delivered {
                    uuids,
                    by: target,
                    at,
                    attempts,
                });
                break;
            }
            if started.elapsed() > GIVE_UP {
                lock(log).undelivered.push(uuids);
                return;
            }
            target = (target + 1) % targets.len();
            thread::sleep(RETRY_PAUSE);
        }
        n += 1;
    }
}

fn post(agent: &ureq::Agent, base: &str, body: &str) -> Outcome {
    match agent
        .post(format!("{base}/batch/"))
        .header("Content-Type", "application/json")
        .send(body)
    {
        Ok(mut response) => {
            let code = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            // Read to the end, so the connection goes back to the pool.
            let text = response.body_mut().read_to_string().unwrap_or_default();
            if code == 200 {
                assert_eq!(text, r#"{"status":1}"#, "a 200 with an unexpected body");
            }
            Outcome::Status { code, retry_after }
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Every batch was acknowledged in the end, and the database holds each of
/// their events exactly once and nothing else. Returns the number of events.
fn assert_stored_exactly_once(pg: &TestPostgres, log: &Log) -> usize {
    assert!(
        log.undelivered.is_empty(),
        "{} batches were never acknowledged within {GIVE_UP:?} of retrying, e.g. {:?}",
        log.undelivered.len(),
        log.undelivered.first()
    );
    let sent: Vec<&String> = log.delivered.iter().flat_map(|d| &d.uuids).collect();
    let unique: HashSet<&String> = sent.iter().copied().collect();
    assert_eq!(unique.len(), sent.len(), "the senders reused a uuid");

    let counts = pg.psql("SELECT COUNT(*) || ' ' || COUNT(DISTINCT uuid) FROM events");
    let (rows, distinct) = counts.split_once(' ').unwrap();
    let (rows, distinct): (usize, usize) = (rows.parse().unwrap(), distinct.parse().unwrap());
    assert_eq!(rows, distinct, "some uuid is stored more than once");

    let mut stored: HashMap<String, usize> = HashMap::new();
    for uuid in pg.psql("SELECT uuid::text FROM events").lines() {
        *stored.entry(uuid.to_owned()).or_default() += 1;
    }
    let missing: Vec<&&String> = unique
        .iter()
        .filter(|u| !stored.contains_key(**u))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events are not stored, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let unsent: Vec<_> = stored.keys().filter(|u| !unique.contains(u)).collect();
    assert!(unsent.is_empty(), "stored but never sent: {unsent:?}");
    assert_eq!(rows, unique.len());
    rows
}

/// Attempts answered with an HTTP status other than 200 and 503, and every
/// 503 that came without `Retry-After`.
fn unexpected_statuses(log: &Log) -> Vec<&Attempt> {
    log.attempts
        .iter()
        .filter(|a| match &a.outcome {
            Outcome::Status { code: 200, .. } => false,
            Outcome::Status {
                code: 503,
                retry_after,
            } => retry_after.is_none(),
            Outcome::Status { .. } => true,
            Outcome::Failed(_) => false,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Collectors in child processes.

/// `telemetry-collector serve` in a child process, killed (SIGKILL) on drop.
struct ChildCollector {
    child: Child,
    url: String,
}

impl ChildCollector {
    /// Spawns it; [`ChildCollector::ready`] waits for its "listening" line.
    fn spawn(db: &str, log: &Path) -> (Child, BufReader<std::process::ChildStdout>) {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--db", db])
            .stdout(Stdio::piped())
            .stderr(File::create(log).unwrap())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (child, stdout)
    }

    fn ready(
        (child, mut stdout): (Child, BufReader<std::process::ChildStdout>),
        log: &Path,
    ) -> ChildCollector {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "the collector printed {line:?}; its log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .to_owned();
        ChildCollector { child, url }
    }

    /// SIGKILL, and reaps it.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildCollector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The tests.

/// Two collectors on one PostgreSQL, senders spread over both, one killed with
/// SIGKILL in the middle: every event that got a 200 is stored exactly once;
/// the senders' retries land on the other.
///
/// The kill is timed for the worst moment: A has sent its group's COMMIT and
/// the server is still committing it (a deferred trigger, for A's database
/// user only, holds that commit for half a second). The server finishes the
/// commit, A never answers, the senders post those batches again to B, whose
/// insert waits for A's transaction and then skips every event it stored.
#[test]
fn a_collector_killed_mid_load_loses_nothing_and_retries_land_on_the_other() {
    let _turn = one_at_a_time();
    let pg = TestPostgres::start();
    // A connects as a role of its own, so the server can tell its sessions
    // (and its commits) from B's.
    pg.psql(
        "DO $$ BEGIN CREATE ROLE collector_a LOGIN SUPERUSER; \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    let url_a = pg.url().replacen("postgres@", "collector_a@", 1);
    let logs = tempfile::tempdir().unwrap();
    let (log_a, log_b) = (logs.path().join("a.log"), logs.path().join("b.log"));
    // Both start (and migrate the empty database) at once.
    let spawned_a = ChildCollector::spawn(&url_a, &log_a);
    let spawned_b = ChildCollector::spawn(&pg.url(), &log_b);
    let mut a = ChildCollector::ready(spawned_a, &log_a);
    let b = ChildCollector::ready(spawned_b, &log_b);
    const A: usize = 0;
    const B: usize = 1;

    let began = Instant::now();
    let load = Load::start(1, 6, &[a.url.clone(), b.url.clone()]);
    load.wait_for(100, Duration::from_secs(10), "acknowledged by A", |d| {
        d.by == A
    });
    load.wait_for(100, Duration::from_secs(10), "acknowledged by B", |d| {
        d.by == B
    });
    // From now on each of A's commits takes half a second on the server.
    pg.psql(
        "CREATE FUNCTION slow_commit_for_a() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF session_user = 'collector_a'
                AND current_setting('fault.slept', true) IS DISTINCT FROM 'yes' THEN
                 PERFORM set_config('fault.slept', 'yes', true);
                 PERFORM pg_sleep(0.5);
             END IF;
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER slow_commit_for_a AFTER INSERT ON events
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit_for_a();",
    );
    let armed = Instant::now();
    while pg.psql(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE usename = 'collector_a' AND wait_event = 'PgSleep'",
    ) != "1"
    {
        assert!(
            armed.elapsed() < Duration::from_secs(5),
            "A never committed with the slow trigger"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let killed_at = Instant::now();
    let killed_at_text = telemetry_collector::ingest::now_rfc3339();
    a.kill();
    load.wait_for(
        150,
        Duration::from_secs(10),
        "acknowledged after A was killed",
        |d| d.at > killed_at,
    );
    let log = load.finish();
    let ended = Instant::now();

    // The kill happened mid-load: both served before it, B alone after it,
    // and the batches that were for A then were refused and retried on B.
    let by_a = log.delivered.iter().filter(|d| d.by == A).count();
    let after_kill = log.delivered.iter().filter(|d| d.at > killed_at).count();
    let failed_on_a: Vec<&Attempt> = log
        .attempts
        .iter()
        .filter(|a| a.target == A && a.at > killed_at && matches!(a.outcome, Outcome::Failed(_)))
        .collect();
    let retried_on_b: Vec<&Delivered> = log
        .delivered
        .iter()
        .filter(|d| d.by == B && d.attempts > 1 && d.at > killed_at)
        .collect();
    assert!(by_a >= 100, "A acknowledged only {by_a} batches");
    assert!(
        !failed_on_a.is_empty(),
        "no request to A failed after the kill: the kill did not happen under load"
    );
    assert!(
        retried_on_b.len() >= 50,
        "only {} batches refused by the killed A were retried on B",
        retried_on_b.len()
    );
    assert!(
        log.delivered
            .iter()
            .filter(|d| d.by == A)
            .all(|d| d.at <= killed_at + Duration::from_millis(200)),
        "A acknowledged a batch well after it was killed"
    );
    // B was never refused, and A answered nothing but 200 until it died.
    let refused: Vec<&Attempt> = log
        .attempts
        .iter()
        .filter(|a| !a.outcome.ok() && (a.target == B || a.at < killed_at))
        .collect();
    assert!(
        refused.is_empty(),
        "refused: {refused:#?}\nB's log:\n{}",
        std::fs::read_to_string(&log_b).unwrap_or_default()
    );

    let events = assert_stored_exactly_once(&pg, &log);
    // The batches of A's last group: committed by the server after A died,
    // never acknowledged by A, acknowledged by B (which stored none of their
    // events again). An event received by A has a received_at from before
    // the kill; B received its retries after it.
    let received: HashMap<String, String> = pg
        .psql("SELECT uuid::text || ' ' || received_at FROM events")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(u, r)| (u.to_owned(), r.to_owned()))
        .collect();
    let committed_by_dead_a = retried_on_b
        .iter()
        .filter(|d| {
            d.uuids
                .iter()
                .all(|u| received[u].as_str() <= killed_at_text.as_str())
        })
        .count();
    assert!(
        committed_by_dead_a >= 1,
        "none of the batches retried on B had been committed by A: the kill did not land \
         during A's commit"
    );
    println!(
        "two collectors, A killed after {:?} (during a commit, {:?} after arming): {} batches \
         ({events} events), {by_a} acknowledged by A, {after_kill} after the kill, {} POSTs to \
         the dead A failed, {} batches retried on B ({committed_by_dead_a} of them committed by \
         A as it died); load {:?}",
        killed_at - began,
        killed_at - armed,
        log.delivered.len(),
        failed_on_a.len(),
        retried_on_b.len(),
        ended - began
    );
}

/// PostgreSQL stopped and started during a load: the collector answers 503
/// meanwhile (senders retry), recovers by itself, loses nothing acknowledged,
/// stores nothing twice.
#[test]
fn postgres_stopped_and_started_under_load_is_503s_then_service_again() {
    let _turn = one_at_a_time();
    let pg = TestPostgres::start_own_cluster();
    let collector = Collector::builder()
        .listen("127.0.0.1:0")
        .db(pg.url())
        .start()
        .unwrap();

    // The reader connection (for /api/*) is open before the stop, too.
    assert_eq!(collector.summary().unwrap().events, 0);
    let began = Instant::now();
    let load = Load::start(2, 4, &[collector.url()]);
    load.wait_for(100, Duration::from_secs(10), "acknowledged", |_| true);
    let stopping = Instant::now();
    pg.stop();
    let stopped = Instant::now();
    thread::sleep(Duration::from_millis(1500));
    let starting = Instant::now();
    pg.start_again();
    let started = Instant::now();
    load.wait_for(
        100,
        Duration::from_secs(10),
        "acknowledged after the restart",
        |d| d.at > started,
    );
    let log = load.finish();
    let ended = Instant::now();

    // While the server was down, every request was refused with 503 and
    // Retry-After, and none acknowledged: there was nowhere to store it.
    // (A request committed just before the stop may be answered a moment
    // later; hence the margin.)
    let down = |a: &&Attempt| a.at > stopped + Duration::from_millis(200) && a.at < starting;
    let during: Vec<&Attempt> = log.attempts.iter().filter(down).collect();
    assert!(
        during.len() >= 10,
        "only {} requests while PostgreSQL was down",
        during.len()
    );
    let not_503: Vec<&&Attempt> = during
        .iter()
        .filter(|a| a.outcome.code() != Some(503))
        .collect();
    assert!(
        not_503.is_empty(),
        "answered while PostgreSQL was down: {not_503:#?}"
    );
    assert!(
        during.iter().all(|a| matches!(
            &a.outcome,
            Outcome::Status { retry_after: Some(r), .. } if r == "1"
        )),
        "a 503 without Retry-After: 1: {during:#?}"
    );
    // Nothing but 200 and 503 (with Retry-After) at any time, and the
    // collector itself never went away.
    let odd = unexpected_statuses(&log);
    assert!(odd.is_empty(), "unexpected answers: {odd:#?}");
    let failed: Vec<&Attempt> = log
        .attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Failed(_)))
        .collect();
    assert!(failed.is_empty(), "requests without an answer: {failed:#?}");

    // It serves again by itself, soon after the server is back.
    let first_200 = log
        .attempts
        .iter()
        .filter(|a| a.at > starting && a.outcome.ok())
        .map(|a| a.at)
        .min()
        .expect("a 200 after the restart");
    // `started` is when the harness saw the server ready; the collector may
    // well get there first.
    let recovery = first_200.saturating_duration_since(started);
    assert!(
        recovery < Duration::from_secs(3),
        "the first 200 came {recovery:?} after PostgreSQL accepted connections again"
    );
    let refused = log
        .attempts
        .iter()
        .filter(|a| a.outcome.code() == Some(503))
        .count();
    let events = assert_stored_exactly_once(&pg, &log);

    // The reader reconnects too (at most a 503 or two on the way).
    let deadline = Instant::now() + Duration::from_secs(3);
    let summary = loop {
        match collector.summary() {
            Ok(summary) => break summary,
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("the summary after the restart: {e}"),
        }
    };
    assert_eq!(summary.events, events as u64);
    println!(
        "PostgreSQL stopped in {:?}, down {:?}, started in {:?}: {refused} answers 503 ({} in \
         the outage), first 200 {:?} after the start began ({recovery:?} after it was ready); \
         {} batches ({events} events) in {:?}",
        stopped - stopping,
        starting - stopped,
        started - starting,
        during.len(),
        first_200 - starting,
        log.delivered.len(),
        ended - began
    );
}

/// The collector's connections terminated (`pg_terminate_backend`) several
/// times under load: it reconnects, loses nothing acknowledged, stores
/// nothing twice, and refuses at most with 503.
#[test]
fn killed_connections_under_load_are_reopened_and_nothing_is_lost() {
    let _turn = one_at_a_time();
    let pg = TestPostgres::start();
    let collector = Collector::builder()
        .listen("127.0.0.1:0")
        .db(pg.url())
        .start()
        .unwrap();
    let sessions = || -> HashSet<String> {
        pg.psql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'telemetry-collector'",
        )
        .lines()
        .map(str::to_owned)
        .collect()
    };
    let before = sessions();
    assert!(!before.is_empty(), "the collector holds no session");

    let began = Instant::now();
    let load = Load::start(3, 4, &[collector.url()]);
    load.wait_for(100, Duration::from_secs(10), "acknowledged", |_| true);
    let mut kills = Vec::new();
    for round in 0..5 {
        let at = Instant::now();
        let killed = pg.kill_connections();
        assert!(killed >= 1, "kill {round}: no session to terminate");
        kills.push((at, killed));
        // Served again after each kill.
        load.wait_for(
            30,
            Duration::from_secs(5),
            &format!("acknowledged after kill {round}"),
            |d| d.at > at,
        );
    }
    let after = sessions();
    let log = load.finish();
    let ended = Instant::now();

    assert!(
        before.is_disjoint(&after),
        "the collector still uses a terminated session: before {before:?}, after {after:?}"
    );
    assert!(!after.is_empty(), "the collector did not reconnect");
    let odd = unexpected_statuses(&log);
    assert!(odd.is_empty(), "unexpected answers: {odd:#?}");
    let failed: Vec<&Attempt> = log
        .attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Failed(_)))
        .collect();
    assert!(failed.is_empty(), "requests without an answer: {failed:#?}");
    let refused = log
        .attempts
        .iter()
        .filter(|a| a.outcome.code() == Some(503))
        .count();
    let events = assert_stored_exactly_once(&pg, &log);
    println!(
        "{} kills ({:?} sessions each): {refused} answers 503, {} batches ({events} events) \
         in {:?}",
        kills.len(),
        kills.iter().map(|k| k.1).collect::<Vec<_>>(),
        log.delivered.len(),
        ended - began
    );
}
