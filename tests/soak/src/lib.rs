//! What the soak's Rust programs share: the client's settings from the environment the
//! driver (tests/soak/soak.py) sets, and the process's own resources read from /proc.

use std::path::PathBuf;
use std::time::Duration;

/// A setting from the environment, or `default` when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Seconds as a duration, from a setting in (possibly fractional) seconds.
pub fn env_secs(name: &str, default: f64) -> Duration {
    Duration::from_secs_f64(env_or(name, default).max(0.0))
}

/// The directory results are written to (`SOAK_RESULTS`).
pub fn results_dir() -> PathBuf {
    PathBuf::from(std::env::var("SOAK_RESULTS").unwrap_or_else(|_| ".".into()))
}

/// Entries of a /proc/self directory (fd or task); the directory's own descriptor, open
/// while it is read, is not counted.
fn count_entries(dir: &str) -> u64 {
    let n = std::fs::read_dir(dir)
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    if dir.ends_with("/fd") {
        n.saturating_sub(1)
    } else {
        n
    }
}

/// Open file descriptors, threads and resident memory (KiB) of this process.
#[derive(Debug, Clone, Copy)]
pub struct Resources {
    pub fds: u64,
    pub threads: u64,
    /// Threads the library named (`telemetry-worker`, ...).
    pub lib_threads: u64,
    pub rss_kb: u64,
}

impl Resources {
    pub fn now() -> Resources {
        let rss_kb = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0);
        let lib_threads = std::fs::read_dir("/proc/self/task")
            .map(|d| {
                d.filter_map(|t| t.ok())
                    .filter(|t| {
                        std::fs::read_to_string(t.path().join("comm"))
                            .is_ok_and(|c| c.starts_with("telemetry-"))
                    })
                    .count() as u64
            })
            .unwrap_or(0);
        Resources {
            fds: count_entries("/proc/self/fd"),
            threads: count_entries("/proc/self/task"),
            lib_threads,
            rss_kb,
        }
    }
}

/// A small deterministic generator (xorshift64*): the load's choices differ per process
/// without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Waits (at most `limit`) until this process is back at `before`: the library's threads
/// gone, as many descriptors and threads as then. A shutdown that reached its deadline
/// returns while the worker may still wait for the request it had sent (up to the request
/// timeout); that thread and its socket end by themselves. Returns the resources at the
/// end and how long it took.
pub fn settle(before: &Resources, limit: Duration) -> (Resources, Duration) {
    let started = std::time::Instant::now();
    loop {
        let now = Resources::now();
        let back = now.lib_threads == 0 && now.fds == before.fds && now.threads == before.threads;
        if back || started.elapsed() >= limit {
            return (now, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
