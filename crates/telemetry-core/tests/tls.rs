//! HTTPS to a collector whose certificate an internal CA signed, made here with rcgen: the
//! real collector serving TLS on loopback, and the real OTLP receiver behind a TLS
//! terminator (HTTP and gRPC). With the CA in `ca_file` (or, for traces,
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`) events and spans arrive; without it, the request fails
//! on the certificate, is not retried, and is counted as the core counts failures, within
//! the deadline; a bad CA file is a configuration error naming it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use telemetry_collector::{Collector, CollectorHandle, EventFilter};
use telemetry_core::env::MapEnvironment;
use telemetry_core::otel::{Granularity, OtelSettings};
use telemetry_core::sink::{MemorySink, SinkConfig};
use telemetry_core::tls::TlsRoots;
use telemetry_core::{Client, ClientConfig, Event, FlushOutcome};

/// A CA and a server certificate it signed for `localhost` and `127.0.0.1`, as PEM files
/// in a temporary directory: `ca.pem`, `server.pem` (the chain, leaf first), `server.key`.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "telemetry-core test internal CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();

        let mut leaf =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "telemetry.corp.internal");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf.signed_by(&leaf_key, &ca).unwrap();

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(
            dir.path().join("server.pem"),
            format!("{}{}", leaf.pem(), ca.pem()),
        )
        .unwrap();
        std::fs::write(dir.path().join("server.key"), leaf_key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

fn collector(pki: &Pki) -> CollectorHandle {
    let collector = Collector::builder()
        .listen("127.0.0.1:0")
        .db(":memory:")
        .tls(pki.cert(), pki.key())
        .start()
        .unwrap();
    assert!(collector.url().starts_with("https://127.0.0.1:"));
    collector
}

/// A client of `endpoint` that reads nothing of this machine's environment but `HOME`.
fn builder(endpoint: &str, home: &Path) -> telemetry_core::ClientBuilder {
    Client::builder("myapp", "2.0.0")
        .environment(MapEnvironment::new().with("HOME", home))
        .working_dir(home)
        .endpoint(endpoint)
        .api_key("phc_tls")
        .backoff_base(Duration::from_millis(10))
}

/// Log records of this test binary, kept for the assertions about what a failure logs.
static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());
struct Keep;
impl log::Log for Keep {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LOGGED
            .lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}
fn logged() -> Vec<String> {
    let _ = log::set_logger(&Keep);
    log::set_max_level(log::LevelFilter::Debug);
    LOGGED.lock().unwrap().clone()
}

#[test]
fn events_reach_a_collector_signed_by_the_ca_in_ca_file() {
    let pki = Pki::new();
    let collector = collector(&pki);
    let home = tempfile::tempdir().unwrap();
    let client = builder(&collector.url(), home.path())
        .ca_file(pki.ca())
        .build()
        .unwrap();
    assert!(client.is_enabled());
    client.capture(Event::new("server_start").safe("tls", true));
    assert_eq!(
        client.flush_outcome(Duration::from_secs(10)),
        FlushOutcome::Delivered
    );
    let stats = client.shutdown(Duration::from_secs(2));
    assert_eq!((stats.sent, stats.failed_requests), (1, 0), "{stats:?}");
    let stored = collector
        .events(&EventFilter::default().event("server_start"))
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].properties["tls"], true);
}

#[test]
fn the_json_config_takes_ca_file_and_tls_roots() {
    let pki = Pki::new();
    let collector = collector(&pki);
    let home = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "product": "myapp",
        "version": "2.0.0",
        "endpoint": collector.url(),
        "api_key": "phc_tls",
        "ca_file": pki.ca(),
        "tls_roots": "bundled",
        "environment": {"HOME": home.path()},
        "working_dir": home.path(),
    });
    let client = ClientConfig::from_json(&config.to_string())
        .unwrap()
        .into_builder()
        .unwrap()
        .build()
        .unwrap();
    client.capture(Event::new("from_json"));
    assert!(client.flush(Duration::from_secs(10)));
    assert_eq!(
        collector
            .events(&EventFilter::default().event("from_json"))
            .unwrap()
            .len(),
        1
    );

    // Keys are still checked strictly.
    let bad = ClientConfig::from_json(r#"{"product": "p", "tls_roots": "system"}"#).unwrap_err();
    assert!(bad.to_string().contains("unknown variant"), "{bad}");
    let typo = ClientConfig::from_json(r#"{"product": "p", "ca_files": "x"}"#).unwrap_err();
    assert!(typo.to_string().contains("unknown field"), "{typo}");
}

#[test]
fn without_the_ca_the_certificate_fails_once_is_counted_and_logged() {
    logged();
    let pki = Pki::new();
    let collector = collector(&pki);
    let home = tempfile::tempdir().unwrap();
    let client = builder(&collector.url(), home.path())
        .max_retries(3)
        .build()
        .unwrap();
    client.capture(Event::new("untrusted"));
    let started = Instant::now();
    let outcome = client.flush_outcome(Duration::from_secs(5));
    assert_eq!(outcome, FlushOutcome::Dropped(1));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let stats = client.shutdown(Duration::from_secs(1));
    // Not retried: another attempt cannot make the certificate trusted.
    assert_eq!(
        (stats.dropped_failed, stats.failed_requests, stats.retries),
        (1, 1, 0),
        "{stats:?}"
    );
    let warning = logged()
        .into_iter()
        .find(|l| l.starts_with("WARN") && l.contains(&collector.url()))
        .expect("a warning about the lost event");
    assert!(warning.contains("certificate"), "{warning}");
    assert!(collector
        .events(&EventFilter::default())
        .unwrap()
        .is_empty());
}

#[test]
fn platform_roots_trust_the_system_store_and_a_ca_file_on_top() {
    let pki = Pki::new();
    let collector = collector(&pki);
    let home = tempfile::tempdir().unwrap();

    // The platform's verifier alone does not know the internal CA...
    let alone = builder(&collector.url(), home.path())
        .tls_roots(TlsRoots::Platform)
        .build()
        .unwrap();
    alone.capture(Event::new("platform_alone"));
    assert_eq!(
        alone.flush_outcome(Duration::from_secs(5)),
        FlushOutcome::Dropped(1)
    );
    alone.shutdown(Duration::ZERO);

    // ...the system store plus the CA file does.
    let with_ca = builder(&collector.url(), home.path())
        .tls_roots(TlsRoots::Platform)
        .ca_file(pki.ca())
        .build()
        .unwrap();
    with_ca.capture(Event::new("platform_with_ca"));
    assert!(with_ca.flush(Duration::from_secs(10)));
    let stored = collector.events(&EventFilter::default()).unwrap();
    let names: Vec<&str> = stored.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["platform_with_ca"]);
}

#[test]
fn a_bad_ca_file_is_a_configuration_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "# the CA goes here\n").unwrap();
    let key_only = dir.path().join("key.pem");
    std::fs::write(&key_only, KeyPair::generate().unwrap().serialize_pem()).unwrap();

    for (path, says) in [
        (&missing, "cannot be read"),
        (&empty, "holds no certificate"),
        (&key_only, "holds no certificate"),
    ] {
        let err = builder("https://telemetry.corp.internal", dir.path())
            .ca_file(path)
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("ca_file") && text.contains(&path.display().to_string()),
            "{text}"
        );
        assert!(text.contains(says), "{text}");
        // The JSON config (the C ABI's and the bindings') says the same.
        let config = serde_json::json!({"product": "p", "sink": "memory", "ca_file": path});
        let err = ClientConfig::from_json(&config.to_string())
            .unwrap()
            .into_builder()
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
}

/// A TLS terminator in front of a plain server: accepts TLS on loopback with the PKI's
/// server certificate (ALPN h2 and http/1.1, so gRPC works through it) and relays the
/// bytes to `backend`. Counts the handshakes that succeeded.
struct Terminator {
    addr: std::net::SocketAddr,
    handshakes: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

fn terminator(pki: &Pki, backend: std::net::SocketAddr) -> Terminator {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(pki.cert())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.key()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(AtomicU64::new(0));
    let counted = handshakes.clone();
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    Terminator {
        addr,
        handshakes,
        _runtime: runtime,
    }
}

fn traced(env: MapEnvironment, settings: OtelSettings, ca_file: Option<&Path>) -> Client {
    let mut b = Client::builder("chroma", "1.2.3")
        .environment(env)
        .sink(SinkConfig::Memory(MemorySink::new()))
        .otel(OtelSettings {
            schedule_delay_ms: Some(20),
            export_timeout_ms: Some(3_000),
            ..settings
        })
        .shutdown_deadline(Duration::from_millis(500));
    if let Some(path) = ca_file {
        b = b.ca_file(path);
    }
    b.build().unwrap()
}

fn one_span(client: &Client) {
    client
        .tracer()
        .in_span("collection.add", Granularity::Operation, |_| ());
}

#[test]
fn traces_over_https_trust_the_otlp_certificate_variables_then_ca_file() {
    let pki = Pki::new();
    let rx = otlp_receiver::Receiver::start(otlp_receiver::Options::default()).unwrap();
    let http = terminator(&pki, rx.http_addr());
    let grpc = terminator(&pki, rx.grpc_addr());
    let other = Pki::new(); // a CA that signed nothing here

    for (protocol, front) in [("http/protobuf", &http), ("grpc", &grpc)] {
        let endpoint = format!("https://localhost:{}", front.addr.port());
        let settings = || OtelSettings {
            endpoint: Some(endpoint.clone()),
            protocol: Some(protocol.into()),
            ..OtelSettings::default()
        };
        let base = MapEnvironment::new;

        // The generic variable.
        let env = base().with("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.ca());
        let client = traced(env, settings(), None);
        let config = client.tracer().config();
        assert_eq!(config.certificate.as_ref().unwrap().path(), pki.ca());
        one_span(&client);
        assert!(client.tracer().flush(Duration::from_secs(10)), "{protocol}");
        let stats = client.tracer().stats();
        assert_eq!(
            (stats.exported, stats.failed_requests),
            (1, 0),
            "{protocol} {stats:?}"
        );
        client.shutdown(Duration::from_secs(1));

        // The traces variable beats the generic one (which names the wrong CA here).
        let env = base()
            .with("OTEL_EXPORTER_OTLP_CERTIFICATE", other.ca())
            .with("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", pki.ca());
        let client = traced(env, settings(), Some(&other.ca()));
        one_span(&client);
        assert!(client.tracer().flush(Duration::from_secs(10)), "{protocol}");
        client.shutdown(Duration::from_secs(1));

        // Neither variable: the client's ca_file.
        let client = traced(base(), settings(), Some(&pki.ca()));
        assert_eq!(
            client.tracer().config().origins["certificate"],
            telemetry_core::otel::config::Origin::Code
        );
        one_span(&client);
        assert!(client.tracer().flush(Duration::from_secs(10)), "{protocol}");
        client.shutdown(Duration::from_secs(1));

        // No CA at all: the export fails on the certificate, once, within the budget.
        let handshakes = front.handshakes.load(Ordering::SeqCst);
        let client = traced(base(), settings(), None);
        one_span(&client);
        let started = Instant::now();
        assert!(!client.tracer().flush(Duration::from_secs(5)), "{protocol}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{protocol}: {:?}",
            started.elapsed()
        );
        let stats = client.tracer().stats();
        assert_eq!(
            (stats.exported, stats.dropped_failed, stats.retries),
            (0, 1, 0),
            "{protocol} {stats:?}"
        );
        assert_eq!(
            front.handshakes.load(Ordering::SeqCst),
            handshakes,
            "{protocol}"
        );
        client.shutdown(Duration::from_secs(1));
    }
    // Three accepted exports per protocol.
    assert_eq!(rx.wait_for_spans(6, Duration::from_secs(10)).len(), 6);
}
