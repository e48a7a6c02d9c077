//! The fault matrix: real sockets on loopback that misbehave in every way a network can.
//! In each case the caller's capture never blocks, shutdown returns within its deadline
//! plus 100 ms, every captured event is accounted for, and a failure streak logs at most
//! one warning.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use telemetry_core::env::MapEnvironment;
use telemetry_core::{Client, Event, FlushOutcome};

/// Keeps the core's warnings; tests tell theirs apart by the endpoint each message names.
struct CountingLogger {
    warnings: Mutex<Vec<String>>,
}

impl log::Log for CountingLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if r.level() <= log::Level::Warn && r.args().to_string().contains("telemetry") {
            self.warnings.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn logger() -> &'static CountingLogger {
    static LOGGER: OnceLock<&'static CountingLogger> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let l: &'static CountingLogger = Box::leak(Box::new(CountingLogger {
            warnings: Mutex::new(Vec::new()),
        }));
        log::set_logger(l).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
        l
    })
}

fn warnings_mentioning(endpoint: &str) -> usize {
    logger()
        .warnings
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains(endpoint))
        .count()
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    ClosedPort,
    NeverAnswers,
    Status500,
    TooManyRequests,
    SlowerThanTimeout,
    Garbage,
    Reset,
}

/// A misbehaving server that stops by itself when dropped (bounded in time).
struct FaultServer {
    url: String,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    /// When each request arrived, to check that Retry-After was waited out.
    arrivals: Arc<Mutex<Vec<Instant>>>,
    thread: Option<JoinHandle<()>>,
    /// For the closed port: a socket bound to it and not listening, so connections are
    /// refused and the port cannot go to another test running meanwhile (whose warnings
    /// would then be counted here, and whose server this client would reach).
    _reserved: Option<std::os::fd::OwnedFd>,
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let Ok(n) = stream.read(&mut chunk) else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return;
            }
        }
    }
}

fn start(fault: Fault) -> FaultServer {
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    if let Fault::ClosedPort = fault {
        let reserved = bound_not_listening();
        return FaultServer {
            url: format!("http://{}", local_addr(&reserved)),
            stop,
            requests,
            arrivals,
            thread: None,
            _reserved: Some(reserved),
        };
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let (stop2, requests2, arrivals2) = (stop.clone(), requests.clone(), arrivals.clone());
    let thread = std::thread::spawn(move || {
        let mut held = Vec::new();
        let started = Instant::now();
        while !stop2.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
            let mut stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            stream.set_nonblocking(false).ok();
            let n = requests2.fetch_add(1, Ordering::SeqCst);
            arrivals2.lock().unwrap().push(Instant::now());
            match fault {
                Fault::ClosedPort => unreachable!(),
                Fault::NeverAnswers => held.push(stream),
                Fault::Status500 => {
                    read_request(&mut stream);
                    let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                }
                Fault::TooManyRequests => {
                    read_request(&mut stream);
                    let answer: &[u8] = if n < 2 {
                        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    } else {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\nconnection: close\r\n\r\n{\"status\": 1}"
                    };
                    let _ = stream.write_all(answer);
                }
                Fault::SlowerThanTimeout => {
                    read_request(&mut stream);
                    let s2 = stop2.clone();
                    std::thread::spawn(move || {
                        let t = Instant::now();
                        while !s2.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(3) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                    });
                }
                Fault::Garbage => {
                    read_request(&mut stream);
                    let _ = stream.write_all(b"\x00\x01garbage, not HTTP at all\r\n\r\n");
                    let _ = stream.shutdown(Shutdown::Both);
                }
                Fault::Reset => {
                    // Linger 0 turns close() into a TCP RST.
                    let _ = socket_linger_zero(&stream);
                    drop(stream);
                }
            }
        }
    });
    FaultServer {
        url,
        stop,
        requests,
        arrivals,
        thread: Some(thread),
        _reserved: None,
    }
}

/// A TCP socket bound to a free loopback port, never listening: connecting is refused.
fn bound_not_listening() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor we own, with correctly sized addresses.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let rc = libc::bind(
            fd,
            std::ptr::from_ref(&addr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        owned
    }
}

fn local_addr(fd: &std::os::fd::OwnedFd) -> std::net::SocketAddr {
    use std::os::fd::AsRawFd;
    // SAFETY: getsockname into a correctly sized, zeroed sockaddr_in.
    unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::getsockname(
            fd.as_raw_fd(),
            std::ptr::from_mut(&mut addr).cast(),
            &mut len,
        );
        assert_eq!(rc, 0, "getsockname: {}", std::io::Error::last_os_error());
        let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
        std::net::SocketAddr::from((ip, u16::from_be(addr.sin_port)))
    }
}

fn socket_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized struct.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn run_fault(fault: Fault) {
    logger();
    let server = start(fault);
    let home = tempfile::tempdir().unwrap();
    let client = Client::builder("faults", "1")
        .environment(MapEnvironment::new().with("HOME", home.path()))
        .working_dir(home.path())
        .endpoint(&server.url)
        .api_key("phc_secret_key_never_logged")
        .request_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(300))
        .flush_interval(Duration::from_millis(50))
        .queue_capacity(2_000)
        .build()
        .unwrap();

    // Capture while the endpoint misbehaves; time every call on this thread.
    let mut latencies = Vec::with_capacity(5_000);
    for i in 0..5_000u32 {
        let e = Event::new("op").property("i", i);
        let t = Instant::now();
        client.capture(e);
        latencies.push(t.elapsed());
        if i % 1000 == 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = *latencies.last().unwrap();
    // Not a speed target: proof that capture never waits on the network (a blocked call
    // would take the request timeout, 500 ms).
    assert!(
        p99 < Duration::from_millis(1),
        "{fault:?}: p99 capture {p99:?}"
    );
    assert!(
        max < Duration::from_millis(100),
        "{fault:?}: max capture {max:?}"
    );

    if let Fault::TooManyRequests = fault {
        // Two 429s with Retry-After: 1 come first; wait (bounded) for the retry that
        // follows them, however slow this machine is, before shutting down.
        let waiting = Instant::now();
        while server.requests.load(Ordering::SeqCst) < 3
            && waiting.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Duration::from_secs(1);
    let t = Instant::now();
    let stats = client.shutdown(deadline);
    let took = t.elapsed();
    assert!(
        took <= deadline + Duration::from_millis(100),
        "{fault:?}: shutdown took {took:?}"
    );
    assert_eq!(stats.captured, 5_000, "{fault:?}: {stats:?}");
    assert_eq!(
        stats.sent + stats.dropped_queue_full + stats.dropped_shutdown + stats.dropped_failed,
        stats.captured,
        "{fault:?}: events unaccounted for: {stats:?}"
    );
    assert_eq!(stats.queued, 0, "{fault:?}: {stats:?}");
    match fault {
        Fault::TooManyRequests => {
            assert!(stats.retries >= 1, "{stats:?}");
            assert!(stats.sent > 0, "429 then 200 must deliver: {stats:?}");
            // One worker sends one request at a time, so the second request is the retry
            // of the first: it waited out Retry-After (1 s), not the 200 ms backoff.
            let arrivals = server.arrivals.lock().unwrap().clone();
            let gap = arrivals[1].duration_since(arrivals[0]);
            assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
        }
        _ => {
            assert_eq!(stats.sent, 0, "{fault:?}: {stats:?}");
            assert!(
                warnings_mentioning(&server.url) <= 1,
                "{fault:?}: more than one warning"
            );
        }
    }
    if !matches!(
        fault,
        Fault::ClosedPort | Fault::NeverAnswers | Fault::SlowerThanTimeout
    ) {
        assert!(
            server.requests.load(Ordering::SeqCst) > 0,
            "{fault:?}: no request made"
        );
    }
    assert!(
        warnings_mentioning(&server.url) <= 1,
        "{fault:?}: more than one warning"
    );
    let logged = logger().warnings.lock().unwrap().clone();
    assert!(
        logged
            .iter()
            .all(|m| !m.contains("phc_secret_key_never_logged")),
        "the API key appeared in a log line"
    );
}

#[test]
fn closed_port() {
    run_fault(Fault::ClosedPort);
}

#[test]
fn accepts_and_never_answers() {
    run_fault(Fault::NeverAnswers);
}

#[test]
fn always_500() {
    run_fault(Fault::Status500);
}

#[test]
fn too_many_requests_with_retry_after_then_ok() {
    run_fault(Fault::TooManyRequests);
}

#[test]
fn answers_slower_than_the_timeout() {
    run_fault(Fault::SlowerThanTimeout);
}

#[test]
fn garbage_instead_of_http() {
    run_fault(Fault::Garbage);
}

#[test]
fn connection_reset() {
    run_fault(Fault::Reset);
}

#[test]
fn a_4xx_refusal_is_not_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = std::thread::spawn(move || {
        let mut count = 0;
        listener.set_nonblocking(true).unwrap();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if let Ok((mut s, _)) = listener.accept() {
                s.set_nonblocking(false).unwrap();
                read_request(&mut s);
                let _ = s.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                count += 1;
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        count
    });
    let home = tempfile::tempdir().unwrap();
    let client = Client::builder("faults", "1")
        .environment(MapEnvironment::new().with("HOME", home.path()))
        .working_dir(home.path())
        .endpoint(&url)
        .api_key("bad")
        .build()
        .unwrap();
    client.capture(Event::new("x"));
    // The refusal dropped the event: the flush must not report it delivered.
    assert_eq!(
        client.flush_outcome(Duration::from_secs(2)),
        FlushOutcome::Dropped(1)
    );
    let stats = client.shutdown(Duration::from_secs(1));
    assert_eq!(
        (stats.failed_requests, stats.retries, stats.dropped_failed),
        (1, 0, 1)
    );
    assert_eq!(served.join().unwrap(), 1);
}

/// A dead endpoint: flush says the events were lost (not "delivered"), the one warning says
/// what happened (dropped, after how many retries) rather than promising a retry, and the
/// next flush, with nothing new lost, reports delivery again.
#[test]
fn flush_against_a_dead_endpoint_reports_the_drop_and_the_warning_says_so() {
    logger();
    let reserved = bound_not_listening();
    let url = format!("http://{}", local_addr(&reserved));
    let home = tempfile::tempdir().unwrap();
    let client = Client::builder("faults", "1")
        .environment(MapEnvironment::new().with("HOME", home.path()))
        .working_dir(home.path())
        .endpoint(&url)
        .api_key("phc_test")
        .max_retries(2)
        .backoff_base(Duration::from_millis(10))
        .build()
        .unwrap();
    client.capture(Event::new("x"));
    client.capture(Event::new("y"));
    assert!(!client.flush(Duration::from_secs(10)));
    let stats = client.stats();
    assert_eq!((stats.dropped_failed, stats.retries), (2, 2), "{stats:?}");
    let warnings: Vec<String> = logger()
        .warnings
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains(&url))
        .cloned()
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("dropped 2 events") && warnings[0].contains("after 2 retries"),
        "{warnings:?}"
    );
    assert!(!warnings[0].contains("retrying"), "{warnings:?}");
    // Nothing captured since, nothing lost since: delivered.
    assert_eq!(
        client.flush_outcome(Duration::from_secs(5)),
        FlushOutcome::Delivered
    );
    client.capture(Event::new("z"));
    assert_eq!(
        client.flush_outcome(Duration::from_secs(10)),
        FlushOutcome::Dropped(1)
    );
    // Still the same failure streak: no second warning.
    assert_eq!(warnings_mentioning(&url), 1);
    client.shutdown(Duration::ZERO);
}
