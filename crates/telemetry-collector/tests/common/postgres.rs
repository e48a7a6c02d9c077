//! A real PostgreSQL server for the tests, started from the machine's own
//! binaries (Debian's `postgresql` package: `/usr/lib/postgresql/<major>/bin`).
//!
//! - [`TestPostgres::start`]: a fresh, empty database in a cluster shared by the
//!   whole test process (initdb and server start once, ~1.5 s; then each test
//!   pays only `CREATE DATABASE`, ~0.2 s). The cluster runs with `fsync=off`:
//!   none of its tests kill the machine, and a clean stop writes everything.
//! - [`TestPostgres::start_own_cluster`]: a cluster of its own, for tests that
//!   stop and restart the server ([`TestPostgres::stop`],
//!   [`TestPostgres::start_again`]); dropped, it stops the server and removes
//!   its directory. [`TestPostgres::start_own_cluster_with`] overrides settings
//!   (e.g. `("fsync", "on")`).
//!
//! The server listens on 127.0.0.1 at a free port (trust authentication, user
//! `postgres`) and on a unix socket in its own directory. Both URL forms work
//! with the `postgres` crate (0.19): [`TestPostgres::url`] is the TCP one,
//! `postgres://postgres@127.0.0.1:PORT/DB`, and [`TestPostgres::socket_url`] the
//! socket one, `postgres://postgres@%2Ftmp%2F...%2Fsock:PORT/DB` (the host is the
//! percent-encoded socket directory; the port names the socket file). The
//! query form `postgresql:///DB?host=/dir&user=postgres&port=PORT` is accepted
//! too; `postgres://postgres@%2Fdir/DB?port=PORT` (port as a parameter beside a
//! host in the authority) is refused by the crate ("invalid configuration").
//!
//! Tests run as root, and `initdb` refuses root: then every server command runs
//! as the `postgres` user (`runuser -u postgres -- ...`) in a directory under
//! /tmp (whose parents the postgres user can traverse) that it owns. As any
//! other user, the commands run as that user.
//!
//! A cluster never outlives the test process: a small watchdog shell stops it
//! and removes its directory when the process is gone, however it ended (the
//! shared cluster lives in a static, which is never dropped).
//!
//! Missing binaries fail the test with how to install them; nothing is skipped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the server may take to start (or stop) before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of every test cluster (on top of initdb's); later entries win, so
/// [`TestPostgres::start_own_cluster_with`] can override them.
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "200"),
    ("shared_buffers", "32MB"),
    // Logged on failure: enough to see why a test's statement failed.
    ("log_min_messages", "warning"),
    ("log_min_error_statement", "error"),
];

static SHARED: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(1);
static NEXT_DIR: AtomicU32 = AtomicU32::new(1);

/// One database in a running PostgreSQL test server.
pub struct TestPostgres {
    cluster: ClusterRef,
    db: String,
}

enum ClusterRef {
    Shared(&'static Cluster),
    Own(Box<Cluster>),
}

impl TestPostgres {
    /// A fresh, empty database in the process-wide shared cluster (started on
    /// first use).
    pub fn start() -> TestPostgres {
        let cluster = SHARED.get_or_init(|| Cluster::create(&[]));
        let db = cluster.create_database();
        TestPostgres {
            cluster: ClusterRef::Shared(cluster),
            db,
        }
    }

    /// A cluster of its own with one database, `telemetry`: for tests that stop
    /// and restart the server.
    pub fn start_own_cluster() -> TestPostgres {
        Self::start_own_cluster_with(&[])
    }

    /// Like [`TestPostgres::start_own_cluster`], with extra server settings
    /// (`-c name=value`), e.g. `&[("fsync", "on")]`.
    pub fn start_own_cluster_with(settings: &[(&str, &str)]) -> TestPostgres {
        let cluster = Box::new(Cluster::create(settings));
        cluster.psql("postgres", "CREATE DATABASE telemetry");
        TestPostgres {
            cluster: ClusterRef::Own(cluster),
            db: "telemetry".into(),
        }
    }

    fn cluster(&self) -> &Cluster {
        match &self.cluster {
            ClusterRef::Shared(c) => c,
            ClusterRef::Own(c) => c,
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`: the database over TCP.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port(), self.db)
    }

    /// `postgres://postgres@%2F...%2Fsock:PORT/DB`: the database over the unix
    /// socket (host = percent-encoded socket directory).
    pub fn socket_url(&self) -> String {
        let dir = self.socket_dir().to_str().expect("socket dir is UTF-8");
        format!(
            "postgres://postgres@{}:{}/{}",
            dir.replace('%', "%25").replace('/', "%2F"),
            self.port(),
            self.db
        )
    }

    /// `postgresql:///DB?host=/dir&user=postgres&port=PORT`: the socket again,
    /// in the query-parameter form.
    pub fn socket_url_query_form(&self) -> String {
        format!(
            "postgresql:///{}?host={}&user=postgres&port={}",
            self.db,
            self.socket_dir().display(),
            self.port()
        )
    }

    /// This test's database name.
    pub fn database(&self) -> &str {
        &self.db
    }

    /// The TCP port on 127.0.0.1 (also the number in the socket's file name).
    pub fn port(&self) -> u16 {
        self.cluster().port
    }

    /// The directory holding the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.cluster().sock
    }

    /// Another fresh database in the same cluster; returns its TCP URL.
    pub fn another_database(&self) -> String {
        let db = self.cluster().create_database();
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port())
    }

    /// Runs `sql` in this database with psql (as superuser `postgres`) and
    /// returns its unaligned, tuples-only output, trimmed. Panics on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.cluster().psql(&self.db, sql)
    }

    /// Like [`TestPostgres::psql`], but returns psql's error instead of panicking.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        self.cluster().try_psql(&self.db, sql)
    }

    /// Terminates every other session connected to this database (as a DBA's
    /// `pg_terminate_backend` would); returns how many.
    pub fn kill_connections(&self) -> u32 {
        let n = self.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
        n.parse()
            .unwrap_or_else(|_| panic!("count of terminated sessions: {n:?}"))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.cluster().log_text()
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, a clean
    /// shutdown). Only for a cluster of its own.
    pub fn stop(&self) {
        self.own("stop").stop("fast");
    }

    /// Starts the stopped server again, same data directory and port.
    pub fn start_again(&self) {
        let cluster = self.own("start_again");
        cluster
            .start_server()
            .unwrap_or_else(|why| cluster.fail(&why));
    }

    /// Whether the server is running (as far as this harness started/stopped it).
    pub fn is_running(&self) -> bool {
        *lock(&self.cluster().running)
    }

    fn own(&self, what: &str) -> &Cluster {
        match &self.cluster {
            ClusterRef::Own(c) => c,
            ClusterRef::Shared(_) => panic!(
                "TestPostgres::{what}: the shared cluster serves other tests too; \
                 use TestPostgres::start_own_cluster() for a server to stop and start"
            ),
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // A shared cluster's databases go with the cluster at process exit.
        if let ClusterRef::Own(cluster) = &self.cluster {
            if *lock(&cluster.running) {
                cluster.run_server_tool(
                    &cluster.bins.pg_ctl,
                    &[
                        "-D".as_ref(),
                        cluster.data.as_os_str(),
                        "-m".as_ref(),
                        "immediate".as_ref(),
                        "-w".as_ref(),
                        "stop".as_ref(),
                    ],
                );
            }
            let _ = std::fs::remove_dir_all(&cluster.dir);
        }
    }
}

/// The programs used, each from the newest `/usr/lib/postgresql/*/bin` (or
/// `$TELEMETRY_TEST_PG_BIN`), else from `PATH`.
struct Bins {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    psql: PathBuf,
    pg_isready: PathBuf,
}

impl Bins {
    fn find() -> Bins {
        let dir = bin_dir();
        let find = |name: &str| -> PathBuf {
            dir.iter()
                .map(|d| d.join(name))
                .chain(path_lookup(name))
                .find(|p| p.is_file())
                .unwrap_or_else(|| {
                    panic!(
                        "PostgreSQL's `{name}` was not found (looked in {}, and on PATH). The \
                         PostgreSQL tests need a real server: install it with \
                         `apt-get install postgresql` (Debian/Ubuntu; `make deps` and .ci/run do \
                         it), or point TELEMETRY_TEST_PG_BIN at a directory holding initdb, \
                         pg_ctl, postgres, psql and pg_isready",
                        dir.as_ref().map_or_else(
                            || "/usr/lib/postgresql/*/bin".to_owned(),
                            |d| d.display().to_string()
                        )
                    )
                })
        };
        Bins {
            initdb: find("initdb"),
            pg_ctl: find("pg_ctl"),
            psql: find("psql"),
            pg_isready: find("pg_isready"),
        }
    }
}

fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TELEMETRY_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    // The newest major version installed: /usr/lib/postgresql/15/bin, 16/bin, ...
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn path_lookup(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

extern "C" {
    fn geteuid() -> u32;
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One initdb'ed data directory and its server.
struct Cluster {
    bins: Bins,
    /// Everything of the cluster: `data/`, `sock/`, `postgres.log`.
    dir: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    port: u16,
    /// `runuser -u postgres --` in front of server commands (when root).
    runuser: Option<PathBuf>,
    running: Mutex<bool>,
}

impl Cluster {
    fn create(settings: &[(&str, &str)]) -> Cluster {
        let started = Instant::now();
        let bins = Bins::find();
        let root = is_root();
        let runuser = root.then(|| {
            path_lookup("runuser")
                .or_else(|| {
                    ["/usr/sbin/runuser", "/sbin/runuser"]
                        .iter()
                        .map(PathBuf::from)
                        .find(|p| p.is_file())
                })
                .expect("runuser (util-linux) is needed to run PostgreSQL as root's tests")
        });
        // As root the postgres user must reach the directory: /tmp is
        // world-traversable, a $TMPDIR may not be.
        let base = if root && Path::new("/tmp").is_dir() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "telemetry-pg-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let sock = dir.join("sock");
        std::fs::create_dir(&sock).unwrap();
        if root {
            let (uid, gid) = postgres_ids();
            for path in [&dir, &sock] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("chown postgres {}: {e}", path.display()));
            }
        }
        let mut cluster = Cluster {
            bins,
            data: dir.join("data"),
            log: dir.join("postgres.log"),
            sock,
            dir,
            port: 0,
            runuser,
            running: Mutex::new(false),
        };
        cluster.spawn_watchdog();

        let out = cluster.run_server_tool(
            &cluster.bins.initdb,
            &[
                "-D".as_ref(),
                cluster.data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                // Byte-order collation, the same on every machine.
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        if !out.status.success() {
            panic!(
                "initdb failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let conf = cluster.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("\ninclude = 'telemetry_test.conf'\n");
        std::fs::write(&conf, text).unwrap();

        // A free port can be taken between our probe and the server's bind: retry.
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port();
            cluster.write_settings(settings);
            match cluster.start_server() {
                Ok(()) => {
                    eprintln!(
                        "test PostgreSQL at 127.0.0.1:{} ({}) started in {} ms",
                        cluster.port,
                        cluster.dir.display(),
                        started.elapsed().as_millis()
                    );
                    return cluster;
                }
                Err(why) if why.contains("already in use") => last = why,
                Err(why) => cluster.fail(&why),
            }
        }
        cluster.fail(&format!("no free port after 5 tries: {last}"))
    }

    fn write_settings(&self, extra: &[(&str, &str)]) {
        let mut text = String::from("# written by the tests' harness (tests/common/postgres.rs)\n");
        let sock = self.sock.to_str().expect("socket dir is UTF-8");
        for (name, value) in [
            ("listen_addresses", "127.0.0.1"),
            ("port", &self.port.to_string()),
            ("unix_socket_directories", sock),
        ]
        .iter()
        .map(|(n, v)| (*n, *v))
        .chain(DEFAULT_SETTINGS.iter().copied())
        .chain(extra.iter().copied())
        {
            writeln!(text, "{name} = '{}'", value.replace('\'', "''")).unwrap();
        }
        let path = self.data.join("telemetry_test.conf");
        std::fs::write(&path, text).unwrap();
    }

    /// `pg_ctl start -w`, then waits for `pg_isready`. Err carries the log.
    fn start_server(&self) -> Result<(), String> {
        let out = self.run_server_tool(
            &self.bins.pg_ctl,
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                self.log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                START_TIMEOUT.as_secs().to_string().as_ref(),
                "start".as_ref(),
            ],
        );
        if !out.status.success() {
            // A server that did come up must not be left behind by a retry.
            self.stop_quietly();
            return Err(format!(
                "pg_ctl start failed ({}): {}{}\n--- server log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_text()
            ));
        }
        *lock(&self.running) = true;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = Command::new(&self.bins.pg_isready)
                .arg("-h")
                .arg(&self.sock)
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-t",
                    "5",
                ])
                .stdin(Stdio::null())
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ready && self.try_psql("postgres", "SELECT 1").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the server did not accept connections within {START_TIMEOUT:?}\n--- server log:\n{}",
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&self, mode: &str) {
        let out = self.run_server_tool(
            &self.bins.pg_ctl,
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                mode.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                START_TIMEOUT.as_secs().to_string().as_ref(),
                "stop".as_ref(),
            ],
        );
        if !out.status.success() {
            self.fail(&format!(
                "pg_ctl stop -m {mode} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        *lock(&self.running) = false;
    }

    fn stop_quietly(&self) {
        self.run_server_tool(
            &self.bins.pg_ctl,
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "stop".as_ref(),
            ],
        );
        *lock(&self.running) = false;
    }

    /// A new database named after the running test (the thread's name), unique
    /// in the process.
    fn create_database(&self) -> String {
        let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
        let thread = std::thread::current();
        let test: String = thread
            .name()
            .unwrap_or("test")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let mut db = format!("t{n}_{test}");
        db.truncate(63);
        // Two CREATE DATABASEs from template1 at once can clash ("source
        // database is being accessed by other users"): retry briefly.
        let mut tries = 0;
        loop {
            match self.try_psql("postgres", &format!("CREATE DATABASE \"{db}\"")) {
                Ok(_) => return db,
                Err(e) if tries < 20 && e.contains("being accessed by other users") => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => self.fail(&format!("CREATE DATABASE {db}: {e}")),
            }
        }
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql -d {db} -c {sql:?} failed: {e}"))
    }

    fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(&self.bins.psql)
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.sock)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", self.bins.psql.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ))
        }
    }

    /// Runs a server program (initdb, pg_ctl): as the postgres user when root.
    fn run_server_tool(&self, program: &Path, args: &[&std::ffi::OsStr]) -> Output {
        let mut cmd = match &self.runuser {
            Some(runuser) => {
                let mut c = Command::new(runuser);
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args)
            // Not the caller's directory, which the postgres user may not read.
            .current_dir(&self.dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
    }

    /// Stops the server and removes the directory once this process is gone,
    /// however it ends (a `static` is never dropped; a test may be killed).
    /// Never waited for: it outlives this process by design, and init reaps it.
    #[allow(clippy::zombie_processes)]
    fn spawn_watchdog(&self) {
        let script = r#"pid=$1; dir=$2; shift 2
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
"$@" -D "$dir/data" -m immediate stop >/dev/null 2>&1
rm -rf "$dir""#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(std::process::id().to_string())
            .arg(&self.dir);
        if let Some(runuser) = &self.runuser {
            cmd.arg(runuser).args(["-u", "postgres", "--"]);
        }
        cmd.arg(&self.bins.pg_ctl)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning the test cluster's watchdog (sh)");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    fn fail(&self, why: &str) -> ! {
        panic!(
            "test PostgreSQL in {} (port {}): {why}\n--- server log:\n{}",
            self.dir.display(),
            self.port,
            self.log_text()
        )
    }
}

/// uid and gid of the `postgres` user (made by Debian's postgresql package).
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("running id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "there is no `postgres` user to run PostgreSQL as (tests run as root, and \
                 initdb refuses root): install PostgreSQL with `apt-get install postgresql`, \
                 which creates it"
                )
            })
    };
    (id("-u"), id("-g"))
}

/// A port nobody listens on at the moment (the OS's pick for port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}
