//! `make bench`, collector ingest: events per second over HTTP (16 keep-alive
//! senders posting batches of 100 to `/batch/`) for SQLite and PostgreSQL, each
//! beside the same store's bulk-insert rate with no HTTP at all (`Store::insert_all`
//! in groups of 16 × 100, what the group commit writes at best under this load),
//! and a healthy sender's p50/p99 on an idle server beside the same while 500
//! connections trickle one byte every 500 ms. One table, every figure from this run.
//!
//! The collector runs **in this process** (`Collector::builder`): the load
//! generator and the server share the machine's cores exactly as a child process
//! would (the scheduler sees threads either way), and in-process the bench can
//! read the group commit's own figures (`CollectorHandle::commit_stats`: commits,
//! batches, events), which a child process does not expose. The events/s figure
//! is the committed-events delta over the measured window, so it counts only
//! what was acknowledged on disk.
//!
//! The load generator is deliberately small: one std thread per sender with its
//! own keep-alive `ureq::Agent` (the client telemetry-core sends with), posting a
//! pre-built JSON body whose 100 uuids are rewritten in place before each request
//! (fresh UUIDv7s at the event's second, as telemetry-core makes them; no
//! allocation), and timing every
//! request. Its cost is small beside the server's (a profile of the SQLite row:
//! the senders' threads take ~5% of the CPU samples), so ureq is not what limits.
//!
//! Environment (all optional):
//! - `BENCH_COLLECTOR_SECS`: measured seconds per row (default 3; each HTTP row
//!   also warms up for `BENCH_COLLECTOR_WARMUP_MS`, default 500).
//! - `BENCH_COLLECTOR_SENDERS` (16), `BENCH_COLLECTOR_BATCH` (100),
//!   `BENCH_COLLECTOR_TRICKLE` (500 slow connections).
//! - `BENCH_COLLECTOR_WORKERS`: the collector's tokio worker threads (its default, 2).
//! - `BENCH_COLLECTOR_PG=off`: skip the PostgreSQL rows (they need Debian's
//!   `postgresql` package; otherwise they fail with how to install it).
//! - `BENCH_COLLECTOR_ONLY=sqlite|postgres|latency`: run one group of rows (profiling).
//! - `BENCH_COLLECTOR_UUID=v4`: random v4 uuids in every row (as posthog-python
//!   and posthog-go send) instead of telemetry-core's v7; the SQLite rows show a
//!   v4 HTTP row beside the v7 ones either way.
//!
//! PostgreSQL runs in a temporary cluster of its own (the tests' harness,
//! tests/common/postgres.rs) with `fsync=on` and `full_page_writes=on`, so that
//! a commit is as durable as SQLite's (`synchronous=FULL`): both rows then pay
//! a real fsync per commit on this machine's disk.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use telemetry_collector::commit::GroupCommitStats;
use telemetry_collector::ingest::{now_rfc3339, parse, Endpoint};
use telemetry_collector::store::{Batch, Store};
use telemetry_collector::{Collector, CollectorHandle};

#[allow(dead_code)] // the bench uses a few of the harness's helpers
#[path = "../tests/common/postgres.rs"]
mod postgres;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[derive(Clone)]
struct Settings {
    secs: Duration,
    warmup: Duration,
    senders: usize,
    batch: usize,
    trickle: usize,
    workers: Option<usize>,
    postgres: bool,
    only: Option<String>,
    /// Random v4 uuids instead of telemetry-core's second-precision v7.
    random_uuids: bool,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            secs: Duration::from_secs_f64(env_or("BENCH_COLLECTOR_SECS", 3.0)),
            warmup: Duration::from_millis(env_or("BENCH_COLLECTOR_WARMUP_MS", 500)),
            senders: env_or("BENCH_COLLECTOR_SENDERS", 16usize).max(1),
            batch: env_or("BENCH_COLLECTOR_BATCH", 100usize).max(1),
            trickle: env_or("BENCH_COLLECTOR_TRICKLE", 500usize),
            workers: std::env::var("BENCH_COLLECTOR_WORKERS")
                .ok()
                .and_then(|v| v.parse().ok()),
            postgres: std::env::var("BENCH_COLLECTOR_PG").map_or(true, |v| v != "off"),
            only: std::env::var("BENCH_COLLECTOR_ONLY").ok(),
            random_uuids: std::env::var("BENCH_COLLECTOR_UUID").is_ok_and(|v| v == "v4"),
        }
    }

    fn runs(&self, group: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == group)
    }
}

/// A `/batch/` body of `n` events whose uuids are rewritten in place before
/// each request: version-7 uuids whose time is the current second and the rest
/// random, as telemetry-core makes them, so new keys land near the end of the
/// UNIQUE index; or random version-4 ones (as posthog-python and posthog-go
/// make them), which land on a random index page each.
struct Body {
    bytes: Vec<u8>,
    /// Offset of each event's 36-character uuid.
    slots: Vec<usize>,
    rng: u64,
    v7: bool,
}

impl Body {
    fn new(run: u32, sender: usize, n: usize, random_uuids: bool) -> Body {
        let mut bytes = br#"{"api_key":"phc_bench","batch":["#.to_vec();
        let mut slots = Vec::with_capacity(n);
        for i in 0..n {
            if i > 0 {
                bytes.push(b',');
            }
            // What telemetry-core sends for one merged event (see the README's summary).
            let head = format!(
                r#"{{"event":"collection_add","distinct_id":"install-{sender:04}","timestamp":"2024-05-01T10:00:00.123Z","uuid":""#
            );
            bytes.extend_from_slice(head.as_bytes());
            slots.push(bytes.len());
            bytes.extend_from_slice(b"00000000-0000-4000-8000-000000000000");
            bytes.extend_from_slice(
                br#"","properties":{"product":"chroma","product_version":"0.5.0","os":"linux","arch":"x86_64","python_version":"3.12","batch_size":100,"collection_uuid":"2b1f6c0e-9a3e-4c53-8f0e-0d7c1b2f3a4b","embedding_function":"default","$lib":"telemetry-core","$lib_version":"0.1.0"}}"#,
            );
        }
        bytes.extend_from_slice(b"]}");
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Body {
            bytes,
            slots,
            rng: seed ^ (u64::from(run) << 48) ^ ((sender as u64) << 32),
            v7: !random_uuids,
        }
    }

    /// splitmix64: fast, and plenty random for index keys.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Gives every event a fresh random uuid.
    fn renew(&mut self) -> &[u8] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for i in 0..self.slots.len() {
            let slot = self.slots[i];
            let (mut hi, mut lo) = (self.next_u64(), self.next_u64());
            if self.v7 {
                // 48 bits of Unix milliseconds at the whole second (what
                // telemetry-core sends), then random bits (uuid's rand_a).
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                hi = ((secs * 1000) << 16) | (hi & 0xfff);
            }
            let version = if self.v7 { b'7' } else { b'4' };
            let uuid = &mut self.bytes[slot..slot + 36];
            let mut digit = 0;
            for (at, b) in uuid.iter_mut().enumerate() {
                if matches!(at, 8 | 13 | 18 | 23) {
                    continue; // the hyphens stay
                }
                let v = if digit < 16 {
                    let v = hi >> 60;
                    hi <<= 4;
                    v
                } else {
                    let v = lo >> 60;
                    lo <<= 4;
                    v
                };
                *b = match at {
                    14 => version,
                    19 => HEX[(8 | (v & 3)) as usize], // variant 10xx
                    _ => HEX[v as usize],
                };
                digit += 1;
            }
        }
        &self.bytes
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn rate(events_per_s: f64) -> String {
    format!("{events_per_s:.0} ev/s")
}

/// The store's own rate: `insert_all` of `senders` batches of `batch` events per
/// transaction, timing only the call (building and parsing the batches is not
/// the store's work and is left out).
fn bulk_rate(store: &Store, s: &Settings, run: u32) -> (f64, u64) {
    let mut bodies: Vec<Body> = (0..s.senders)
        .map(|i| Body::new(run, i, s.batch, s.random_uuids))
        .collect();
    let mut busy = Duration::ZERO;
    let mut stored = 0u64;
    let mut commits = 0u64;
    while busy < s.secs {
        let batches: Vec<Batch> = bodies
            .iter_mut()
            .map(|b| Batch {
                events: parse(Endpoint::Batch, b.renew(), None).expect("the bench's body parses"),
                received_at: now_rfc3339(),
            })
            .collect();
        let refs: Vec<&Batch> = batches.iter().collect();
        let started = Instant::now();
        let inserted = store.insert_all(&refs).expect("bulk insert");
        busy += started.elapsed();
        commits += 1;
        stored += inserted.iter().map(|i| i.stored as u64).sum::<u64>();
    }
    (stored as f64 / busy.as_secs_f64(), commits)
}

/// One sender's requests (when each started, how long it took) and its failures.
type SenderResult = (Vec<(Instant, Duration)>, u64);

struct Load {
    events_per_s: f64,
    p50: Duration,
    p99: Duration,
    requests: usize,
    failed: u64,
    stats: GroupCommitStats,
}

impl Load {
    fn batches_per_commit(&self) -> f64 {
        self.stats.batches as f64 / self.stats.commits.max(1) as f64
    }
}

/// `senders` keep-alive senders posting to `/batch/` as fast as answers come,
/// for warm-up plus `secs`; figures over the measured window only.
fn http_load(collector: &CollectorHandle, s: &Settings, senders: usize, run: u32) -> Load {
    let url = format!("{}/batch/", collector.url());
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<JoinHandle<SenderResult>> = (0..senders)
        .map(|i| {
            let url = url.clone();
            let stop = Arc::clone(&stop);
            let mut body = Body::new(run, i, s.batch, s.random_uuids);
            thread::Builder::new()
                .name(format!("sender-{i}"))
                .spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let mut timings = Vec::with_capacity(1 << 16);
                    let mut failed = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let bytes = body.renew();
                        let started = Instant::now();
                        let ok = match agent
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .send(bytes)
                        {
                            Ok(mut response) => {
                                // Read to the end, so the connection goes back to the pool.
                                let _ = response.body_mut().read_to_vec();
                                response.status() == 200
                            }
                            Err(_) => false,
                        };
                        if ok {
                            timings.push((started, started.elapsed()));
                        } else {
                            failed += 1;
                        }
                    }
                    (timings, failed)
                })
                .expect("spawning a sender")
        })
        .collect();

    thread::sleep(s.warmup);
    let (stats0, from) = (collector.commit_stats(), Instant::now());
    thread::sleep(s.secs);
    let (stats1, to) = (collector.commit_stats(), Instant::now());
    stop.store(true, Ordering::Relaxed);

    let mut latencies = Vec::new();
    let mut failed = 0;
    for t in threads {
        let (timings, f) = t.join().expect("a sender panicked");
        failed += f;
        latencies.extend(
            timings
                .into_iter()
                .filter(|(at, took)| *at >= from && *at + *took <= to)
                .map(|(_, took)| took),
        );
    }
    latencies.sort_unstable();
    let stats = GroupCommitStats {
        commits: stats1.commits - stats0.commits,
        batches: stats1.batches - stats0.batches,
        events: stats1.events - stats0.events,
    };
    Load {
        events_per_s: stats.events as f64 / (to - from).as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        requests: latencies.len(),
        failed,
        stats,
    }
}

fn start_collector(db: &str, s: &Settings) -> CollectorHandle {
    let mut builder = Collector::builder().listen("127.0.0.1:0").db(db);
    if let Some(n) = s.workers {
        builder = builder.worker_threads(n);
    }
    builder.start().expect("starting the collector")
}

/// `n` connections that each send one byte of a never-ending request head
/// every `every` (the slow-connection attack), until stopped; reconnects any
/// the server closes.
struct Trickle {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Trickle {
    fn start(addr: SocketAddr, n: usize, every: Duration) -> Trickle {
        const HEAD: &[u8] =
            b"POST /batch/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: ";
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop_flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let connect = || {
                let c = TcpStream::connect(addr).expect("trickle connect");
                let _ = c.set_nodelay(true); // one byte, one segment
                c
            };
            let mut conns: Vec<(TcpStream, usize)> = (0..n).map(|_| (connect(), 0)).collect();
            let gap = every / n.max(1) as u32;
            let mut reconnects = 0u64;
            let mut round = 0u64;
            while !stop_flag.load(Ordering::Relaxed) {
                for (conn, sent) in &mut conns {
                    let byte = HEAD.get(*sent).copied().unwrap_or(b'a');
                    if conn.write_all(&[byte]).is_err() {
                        *conn = connect();
                        *sent = 0;
                        reconnects += 1;
                    } else {
                        *sent += 1;
                    }
                    thread::sleep(gap);
                }
                round += 1;
                if round == 1 {
                    let _ = ready_tx.send(());
                }
            }
            reconnects
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the trickle connections did not start");
        Trickle { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the trickle thread panicked")
    }
}

struct Row {
    what: String,
    figure: String,
    beside: String,
    target: String,
    met: Option<bool>,
}

fn row(what: impl Into<String>, figure: impl Into<String>, beside: impl Into<String>) -> Row {
    Row {
        what: what.into(),
        figure: figure.into(),
        beside: beside.into(),
        target: String::new(),
        met: None,
    }
}

impl Row {
    fn target(mut self, target: impl Into<String>, met: bool) -> Row {
        self.target = target.into();
        self.met = Some(met);
        self
    }
}

/// The bulk row and the HTTP row of one store, and the HTTP row's latency and
/// group-commit figures.
fn store_rows(rows: &mut Vec<Row>, name: &str, bulk_db: &str, http_db: &str, s: &Settings) {
    let run = rows.len() as u32 + 1;
    let (bulk, commits) = {
        let store = Store::open(bulk_db).expect("opening the bulk store");
        bulk_rate(&store, s, run)
    };
    rows.push(row(
        format!("{name}: Store::insert_all, no HTTP (the bar)"),
        rate(bulk),
        format!("{commits} commits of {} × {} events", s.senders, s.batch),
    ));
    let collector = start_collector(http_db, s);
    let load = http_load(&collector, s, s.senders, run + 100);
    collector.shutdown();
    let slower = bulk / load.events_per_s.max(1.0);
    rows.push(
        row(
            format!(
                "{name}: HTTP, {} senders × batches of {}",
                s.senders, s.batch
            ),
            rate(load.events_per_s),
            format!("{slower:.2}× slower than the bar"),
        )
        .target(
            "≤ 2× slower than the bar",
            slower <= 2.0 && load.failed == 0,
        ),
    );
    if name == "SQLite" && !s.random_uuids {
        let v4 = Settings {
            random_uuids: true,
            ..s.clone()
        };
        let collector = start_collector(&format!("{http_db}-v4"), &v4);
        let random = http_load(&collector, &v4, v4.senders, run + 200);
        collector.shutdown();
        rows.push(row(
            "SQLite: HTTP, same, random v4 uuids (other SDKs)",
            rate(random.events_per_s),
            format!(
                "{:.2}× slower than the bar; p99 {}",
                bulk / random.events_per_s.max(1.0),
                ms(random.p99)
            ),
        ));
    }
    if name == "SQLite" {
        rows.push(
            row(
                "SQLite: HTTP rate beside the goal",
                rate(load.events_per_s),
                "the old server: 16009 ev/s",
            )
            .target("≥ 100000 ev/s (the goal)", load.events_per_s >= 100_000.0),
        );
    }
    rows.push(row(
        format!("{name}: a request's p50 / p99 under that load"),
        format!("{} / {}", ms(load.p50), ms(load.p99)),
        format!("{} requests, {} failed", load.requests, load.failed),
    ));
    rows.push(row(
        format!("{name}: group commit under that load"),
        format!("{:.1} batches/commit", load.batches_per_commit()),
        format!(
            "{} commits, {} batches, {} events",
            load.stats.commits, load.stats.batches, load.stats.events
        ),
    ));
}

fn main() {
    let s = Settings::from_env();
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name).to_str().expect("UTF-8").to_owned();

    if s.runs("sqlite") {
        store_rows(&mut rows, "SQLite", &path("bulk.db"), &path("http.db"), &s);
    }

    if s.postgres && s.runs("postgres") {
        let pg = postgres::TestPostgres::start_own_cluster_with(&[
            ("fsync", "on"),
            ("full_page_writes", "on"),
        ]);
        let http_db = pg.another_database();
        store_rows(&mut rows, "PostgreSQL", &pg.url(), &http_db, &s);
    }

    if s.runs("latency") {
        let collector = start_collector(&path("latency.db"), &s);
        let idle = http_load(&collector, &s, 1, 300);
        rows.push(row(
            "one sender, idle server: p50 / p99 (SQLite)",
            format!("{} / {}", ms(idle.p50), ms(idle.p99)),
            format!("{} requests, {} failed", idle.requests, idle.failed),
        ));
        let trickle = Trickle::start(collector.addr(), s.trickle, Duration::from_millis(500));
        let attacked = http_load(&collector, &s, 1, 301);
        let reconnects = trickle.stop();
        collector.shutdown();
        let ratio50 = attacked.p50.as_secs_f64() / idle.p50.as_secs_f64().max(1e-9);
        let ratio99 = attacked.p99.as_secs_f64() / idle.p99.as_secs_f64().max(1e-9);
        rows.push(
            row(
                format!("same, {} connections trickling 1 B/500 ms", s.trickle),
                format!("{} / {}", ms(attacked.p50), ms(attacked.p99)),
                format!(
                    "{ratio50:.2}× / {ratio99:.2}× idle; {} failed, {reconnects} reconnects",
                    attacked.failed
                ),
            )
            .target(
                "≤ 2× idle",
                ratio50 <= 2.0 && ratio99 <= 2.0 && attacked.failed == 0,
            ),
        );
    }

    // Other work on the machine takes cores from both sides of every comparison:
    // said beside the table, so a low run can be told from a slow collector.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "\ntelemetry-collector ingest benchmarks (same run, same machine, {} cores shared by \
         the senders and the collector; {:.1} s measured per row;\n load average at the end {}; \
         uuids {})\n",
        thread::available_parallelism().map_or(0, |n| n.get()),
        s.secs.as_secs_f64(),
        load.join(" "),
        if s.random_uuids {
            "v4 (random, as posthog-python and posthog-go send)"
        } else {
            "v7 at the event's second (as telemetry-core sends)"
        }
    );
    println!(
        "| {:<52} | {:>20} | {:<48} | {:<42} | {:<3} |",
        "measurement", "figure", "beside it", "target", "met"
    );
    println!("|{}|", "-".repeat(180));
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!(
            "| {:<52} | {:>20} | {:<48} | {:<42} | {met:<3} |",
            r.what, r.figure, r.beside, r.target
        );
    }
    println!("\n(whole bench: {:.1} s)", started.elapsed().as_secs_f64());
}
