//! The client: consent decided once at build, a cheap capture, and bounded flush/shutdown.
//!
//! ```
//! use std::time::Duration;
//! use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client, Event};
//! let memory = MemorySink::new();
//! let client = Client::builder("myapp", "1.2.0")
//!     .environment(MapEnvironment::new()) // no HOME: the id stays in memory
//!     .sink(SinkConfig::Memory(memory.clone()))
//!     .build()
//!     .unwrap();
//! client.capture(Event::new("started").safe("mode", "server"));
//! client.shutdown(Duration::from_secs(1));
//! assert_eq!(memory.events()[0]["event"], "started");
//! ```
//!
//! The caller's thread does an atomic check and a bounded-queue send; nothing else. The
//! worker thread starts with the first enabled capture, so an opted-out client never
//! creates a thread, a file or a socket.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::consent::{self, ConsentInputs, Decision, RunMode};
use crate::context::{self, ClientContext};
use crate::crash::{CrashOptions, CrashReporter, ErrorReport, Limiter, Reported};
use crate::encoded::EncodedEvent;
use crate::env::{Environment, MapEnvironment, ProcessEnvironment};
use crate::event::Event;
use crate::identity::Identity;
use crate::notice::{self, Notice};
use crate::otel::{OtelSettings, Tracer};
use crate::payload::PayloadBuilder;
use crate::profile::IdLocation;
use crate::profile::Profile;
use crate::sink::{DebugSink, FileSink, MemorySink, Sink, SinkConfig};
use crate::stats::{Counters, Stats};
use crate::tls::{CaFile, TlsRoots, Trust};
use crate::transport::{check_endpoint, PostHogSink};
use crate::usage::activation::{Activation, Starter};
use crate::usage::{IdentitySource, Usage};
use crate::worker::{Msg, ReportSchedule, Shared, Tuning, Worker, WorkerSetup};

/// Default capacity of the queue between the caller and the worker.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default shutdown deadline.
pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(1);

/// A configuration the client cannot work with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "telemetry configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Builds a [`Client`]; see [`Client::builder`]. Every knob has the default in docs/ARCHITECTURE.md, "Delivery".
///
/// ```
/// use std::time::Duration;
/// use telemetry_core::{consent::RunMode, profile::Profile, Client};
/// let client = Client::builder("qdrant", "1.12.0")
///     .profile(Profile::Qdrant)
///     .endpoint("https://eu.i.posthog.com")
///     .api_key("phc_...")
///     .args(std::env::args())             // finds --disable-telemetry
///     .config_dir(".")                    // config/config.yaml, config/production.yaml
///     .mode(RunMode::Library)
///     .queue_capacity(10_000)
///     .max_batch_events(100)
///     .flush_interval(Duration::from_secs(5))
///     .request_timeout(Duration::from_secs(5))
///     .max_retries(3)
///     .shutdown_deadline(Duration::from_secs(1))
///     .build()
///     .unwrap();
/// # client.shutdown(Duration::ZERO);
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    product: String,
    version: String,
    profile: Option<Profile>,
    endpoint: Option<String>,
    api_key: Option<String>,
    sink: Option<SinkConfig>,
    queue_capacity: usize,
    tuning: Tuning,
    connect_timeout: Duration,
    tls_roots: TlsRoots,
    ca_file: Option<PathBuf>,
    shutdown_deadline: Duration,
    inputs: ConsentInputs,
    env: Arc<dyn Environment>,
    identity: Option<Identity>,
    runtime: (String, String),
    extra_context: Map<String, Value>,
    notice: Option<Notice>,
    reports: ReportSchedule,
    /// Error reports' options (`crash_options`); `None`: the first `report_panics` call's.
    crash: Option<CrashOptions>,
    /// Observability settings made in code; they beat the `*_OTEL_*` variables.
    otel: OtelSettings,
}

impl ClientBuilder {
    /// The product's conventions (default: a generic profile named after the product).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self
    }
    /// PostHog-compatible host, e.g. `https://eu.i.posthog.com` or the local collector.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }
    /// The project API key sent in each batch body (never logged).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    /// Where events go (default PostHog at the endpoint).
    pub fn sink(mut self, sink: SinkConfig) -> Self {
        self.sink = Some(sink);
        self
    }
    /// Queue capacity; when full, new events are dropped and counted.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }
    /// At most this many events per request (default 100).
    pub fn max_batch_events(mut self, n: usize) -> Self {
        self.tuning.max_batch_events = n.max(1);
        self
    }
    /// At most this many bytes per request before compression (default 500 KB).
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.tuning.max_batch_bytes = n.max(1);
        self
    }
    /// How often queued events and partial batches go out (default 5 s).
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.tuning.flush_interval = d.max(Duration::from_millis(1));
        self
    }
    /// Connect timeout (default 2 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// A PEM file of CA certificates trusted for HTTPS besides the roots (an internal CA
    /// that signed `https://telemetry.corp.internal`): for the events, and for trace exports
    /// unless `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE` names another file. Read and checked
    /// by [`build`](Self::build): a missing file, or one without a certificate, is a
    /// [`ConfigError`] naming it.
    ///
    /// ```
    /// let err = telemetry_core::Client::builder("myapp", "1.0")
    ///     .endpoint("https://telemetry.corp.internal")
    ///     .api_key("phc_...")
    ///     .ca_file("/etc/corp/missing-ca.pem")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("ca_file /etc/corp/missing-ca.pem cannot be read"));
    /// ```
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
    /// The roots HTTPS starts from (default [`TlsRoots::Bundled`], Mozilla's, compiled in);
    /// [`TlsRoots::Platform`] trusts the system's store (CAs an administrator installed).
    /// A [`ca_file`](Self::ca_file) adds to either.
    pub fn tls_roots(mut self, roots: TlsRoots) -> Self {
        self.tls_roots = roots;
        self
    }
    /// Whole-request timeout (default 5 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.tuning.request_timeout = d;
        self
    }
    /// Retries after a failed attempt (default 3).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.tuning.max_retries = n;
        self
    }
    /// First backoff delay, doubled each retry, with jitter (default 200 ms).
    pub fn backoff_base(mut self, d: Duration) -> Self {
        self.tuning.backoff_base = d;
        self
    }
    /// Deadline used when the client is dropped without an explicit shutdown (default 1 s).
    pub fn shutdown_deadline(mut self, d: Duration) -> Self {
        self.shutdown_deadline = d;
        self
    }
    /// An explicit setting in code (`Settings(anonymized_telemetry=False)` → `Some(false)`).
    pub fn explicit(mut self, enabled: Option<bool>) -> Self {
        self.inputs.explicit = enabled;
        self
    }
    /// The host's command-line arguments, searched for the profile's opt-out flag.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inputs.args = args.into_iter().map(Into::into).collect();
        self
    }
    /// Base directory of the product's config files (default the working directory).
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.inputs.config_dir = Some(dir.into());
        self
    }
    /// Directory whose `.env` is read (default the working directory).
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.inputs.working_dir = Some(dir.into());
        self
    }
    /// Whether the host runs as a CLI or a library (default library).
    pub fn mode(mut self, mode: RunMode) -> Self {
        self.inputs.mode = mode;
        self
    }
    /// The environment to read instead of the process's (tests, bindings' overrides).
    pub fn environment(mut self, env: impl Environment + 'static) -> Self {
        self.env = Arc::new(env);
        self
    }
    /// A fixed identity instead of the profile's stored one (tests, vectors).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }
    /// The language runtime of the host (bindings set theirs; default Rust).
    pub fn runtime(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.runtime = (name.into(), version.into());
        self
    }
    /// A context property sent as is with every event (binding-specific facts).
    pub fn context_property(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra_context.insert(key.into(), value.into());
        self
    }
    /// Shows `notice` on stderr on the first enabled run; see [`crate::notice`] for when it
    /// counts as seen and what its policy holds back.
    pub fn first_run_notice(mut self, notice: Notice) -> Self {
        self.notice = Some(notice);
        self
    }

    /// Whether the usage report ([`Client::usage`]) is sent home when telemetry is on
    /// (default true). The local endpoints answer either way.
    pub fn usage_reports(mut self, send: bool) -> Self {
        self.reports.enabled = send;
        self
    }
    /// How long after the worker starts (the first enabled capture or recording) the first
    /// usage report is sent (default 10 s).
    pub fn usage_report_delay(mut self, d: Duration) -> Self {
        self.reports.delay = d;
        self
    }
    /// How often the usage report is sent after the first (default 1 h).
    pub fn usage_report_interval(mut self, d: Duration) -> Self {
        self.reports.interval = d.max(Duration::from_millis(10));
        self
    }

    /// How this client reports errors: the deadline a crash waits for its report and the
    /// rate limits (default [`CrashOptions::default`]). Set here, they are fixed from the
    /// start, for hosts that report through [`Client::report_crash`] and
    /// [`Client::capture_error`] (the C ABI, bindings); [`Client::report_panics`]'s options
    /// then no longer count.
    pub fn crash_options(mut self, options: CrashOptions) -> Self {
        self.crash = Some(options);
        self
    }

    /// Observability settings made in code (endpoint, service name, headers,
    /// granularity...): each one set beats the environment's. Traces are independent of
    /// telemetry consent; see [`crate::otel`].
    ///
    /// ```
    /// use telemetry_core::otel::{Granularity, OtelSettings};
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}};
    /// let client = telemetry_core::Client::builder("chroma", "1.0")
    ///     .environment(MapEnvironment::new().with("ANONYMIZED_TELEMETRY", "False"))
    ///     .sink(SinkConfig::Memory(MemorySink::new()))
    ///     .otel(OtelSettings { endpoint: Some("http://127.0.0.1:4317".into()), ..Default::default() })
    ///     .build()
    ///     .unwrap();
    /// assert!(!client.is_enabled()); // telemetry is off...
    /// assert!(client.tracer().is_recording(Granularity::Operation)); // ...traces are not
    /// # client.shutdown(std::time::Duration::ZERO);
    /// ```
    pub fn otel(mut self, settings: OtelSettings) -> Self {
        self.otel = settings;
        self
    }

    /// Resolves consent and checks the configuration. Starts nothing: no thread, no file,
    /// no socket until the first enabled capture.
    ///
    /// ```
    /// let err = telemetry_core::Client::builder("myapp", "1.0")
    ///     .endpoint("http://telemetry.example.com") // plain HTTP to a remote host
    ///     .api_key("phc_...")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("https"));
    /// ```
    pub fn build(self) -> Result<Client, ConfigError> {
        if self.product.trim().is_empty() {
            return Err(ConfigError("product name is empty".into()));
        }
        let profile = match self.profile.clone() {
            Some(p) => p,
            None => self
                .product
                .parse()
                .map_err(|e: crate::profile::InvalidProfile| ConfigError(e.to_string()))?,
        };
        // Checked whatever the sink: trace exports use it too.
        let ca_file = match &self.ca_file {
            Some(path) => {
                Some(CaFile::load(path).map_err(|e| ConfigError(format!("ca_file {e}")))?)
            }
            None => None,
        };
        let trust = Trust {
            roots: self.tls_roots,
            extra: ca_file,
        };
        let debug = self
            .env
            .var("TELEMETRY_DEBUG")
            .and_then(|v| consent::parse_bool(&v).ok().flatten())
            .unwrap_or(false);
        let sink = if debug {
            SinkConfig::Debug
        } else {
            self.sink.clone().unwrap_or(SinkConfig::PostHog)
        };
        let endpoint_label;
        let make_sink: Arc<dyn Fn() -> Box<dyn Sink> + Send + Sync> = match sink.clone() {
            SinkConfig::PostHog => {
                let endpoint = self.endpoint.clone().ok_or_else(|| {
                    ConfigError(
                        "the posthog sink needs an endpoint (e.g. https://eu.i.posthog.com)".into(),
                    )
                })?;
                check_endpoint(&endpoint).map_err(ConfigError)?;
                let key = self
                    .api_key
                    .clone()
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| ConfigError("the posthog sink needs an api_key".into()))?;
                endpoint_label = endpoint.clone();
                let connect = self.connect_timeout;
                let trust = trust.clone();
                Arc::new(move || {
                    Box::new(PostHogSink::with_trust(&endpoint, &key, connect, &trust))
                        as Box<dyn Sink>
                })
            }
            SinkConfig::File(path) => {
                endpoint_label = path.display().to_string();
                Arc::new(move || Box::new(FileSink::new(path.clone())) as Box<dyn Sink>)
            }
            SinkConfig::Debug => {
                endpoint_label = "stderr (debug sink)".into();
                Arc::new(|| Box::new(DebugSink) as Box<dyn Sink>)
            }
            SinkConfig::Memory(m) => {
                endpoint_label = "memory".into();
                Arc::new(move || Box::new(m.clone()) as Box<dyn Sink>)
            }
        };
        let mut decision = consent::resolve(&profile, &self.inputs, &*self.env);
        for w in &decision.warnings {
            log::warn!("telemetry: {w}");
        }
        // Looked at only when consent says on: opted out, no text is printed and no marker
        // is written. Its verdict is a flag fixed here, so capture stays one check.
        let mut enabled = decision.enabled;
        if let Some(n) = self.notice.as_ref().filter(|_| enabled) {
            let check = notice::check_at_build(n, &profile, &*self.env);
            enabled = check.send;
            decision.warnings.extend(check.note);
        }
        let memory = match &sink {
            SinkConfig::Memory(m) => Some(m.clone()),
            _ => None,
        };
        // A memory or debug sink sends nothing anywhere: it reuses a stored id when there is
        // one (so a debug payload shows the real id) but never writes one.
        let store_identity = matches!(sink, SinkConfig::PostHog | SinkConfig::File(_));
        // A per-process id (Qdrant's) is made now, in memory, so the local /telemetry and
        // the reports sent home name the same install.
        let identity = self.identity.or_else(|| {
            matches!(profile.id_location(&*self.env), IdLocation::PerProcess)
                .then(Identity::ephemeral)
        });
        let usage_identity = match &identity {
            Some(id) => IdentitySource::Fixed(id.clone()),
            None => IdentitySource::Client {
                profile: profile.clone(),
                env: self.env.clone(),
            },
        };
        let activation = if enabled {
            Activation::armed()
        } else {
            Activation::inert()
        };
        let usage = Usage::with_parts(
            &self.product,
            &self.version,
            profile.precision(),
            usage_identity,
            activation,
        );
        let otel = crate::otel::config::resolve_with_trust(
            &profile,
            &self.product,
            &self.otel,
            &*self.env,
            &trust,
        );
        for w in &otel.warnings {
            log::warn!("telemetry: {w}");
        }
        let tracer = Tracer::from_config(otel, &self.version, &self.runtime.0);
        let setup = WorkerSetup {
            profile,
            env: self.env,
            identity,
            context: ClientContext {
                product: self.product,
                product_version: self.version,
                runtime: self.runtime.0,
                runtime_version: self.runtime.1,
                extra: self.extra_context,
            },
            tuning: self.tuning,
            make_sink,
            endpoint_label,
            store_identity,
            usage: usage.clone(),
            reports: self.reports,
        };
        let core = Arc::new(Core {
            counters: Arc::new(Counters::default()),
            pipeline: AtomicPtr::new(std::ptr::null_mut()),
            closed: AtomicBool::new(false),
            setup: Arc::new(setup),
            queue_capacity: self.queue_capacity,
            flush_mark: AtomicU64::new(0),
            enabled,
            crash: self
                .crash
                .map(|o| OnceLock::from((o, Limiter::new(o.limits))))
                .unwrap_or_default(),
            crash_started: Mutex::new(None),
        });
        let starter: Arc<dyn Starter> = core.clone();
        usage.shared.activation.connect(Arc::downgrade(&starter));
        Ok(Client {
            enabled,
            decision,
            core,
            shutdown_deadline: self.shutdown_deadline,
            memory,
            usage,
            tracer,
        })
    }
}

/// The JSON form of a client's configuration, used by the C ABI and the Python module.
///
/// ```
/// let cfg: telemetry_core::ClientConfig = serde_json::from_str(
///     r#"{"product": "myapp", "version": "1.0", "profile": "chroma", "sink": "memory"}"#,
/// ).unwrap();
/// let client = cfg.into_builder().unwrap().build().unwrap();
/// assert!(client.memory().is_some());
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The host product's name.
    pub product: String,
    /// The host product's version.
    #[serde(default)]
    pub version: String,
    /// `chroma`, `qdrant`, `evidently`, a product name, or `{"generic": {...}}`.
    #[serde(default)]
    pub profile: Option<Value>,
    /// PostHog-compatible host.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Project API key.
    #[serde(default)]
    pub api_key: Option<String>,
    /// `posthog` (default), `file`, `debug` or `memory`.
    #[serde(default)]
    pub sink: Option<String>,
    /// Path for the `file` sink.
    #[serde(default)]
    pub file_path: Option<PathBuf>,
    /// Queue capacity.
    #[serde(default)]
    pub queue_capacity: Option<usize>,
    /// Events per request.
    #[serde(default)]
    pub max_batch_events: Option<usize>,
    /// Bytes per request.
    #[serde(default)]
    pub max_batch_bytes: Option<usize>,
    /// Flush interval in milliseconds.
    #[serde(default)]
    pub flush_interval_ms: Option<u64>,
    /// Connect timeout in milliseconds.
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// A PEM file of CA certificates trusted besides the roots ([`ClientBuilder::ca_file`]).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `bundled` (default) or `platform` ([`ClientBuilder::tls_roots`]).
    #[serde(default)]
    pub tls_roots: Option<TlsRoots>,
    /// Request timeout in milliseconds.
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    /// Retries.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// First backoff delay in milliseconds.
    #[serde(default)]
    pub backoff_base_ms: Option<u64>,
    /// Deadline used on drop, in milliseconds.
    #[serde(default)]
    pub shutdown_timeout_ms: Option<u64>,
    /// Explicit setting in code.
    #[serde(default)]
    pub explicit: Option<bool>,
    /// Host arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Config directory.
    #[serde(default)]
    pub config_dir: Option<PathBuf>,
    /// `.env` directory.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    /// `library` or `cli`.
    #[serde(default)]
    pub mode: Option<RunMode>,
    /// Replaces the process environment entirely (tests, test vectors).
    #[serde(default)]
    pub environment: Option<BTreeMap<String, String>>,
    /// Fixed install id (tests, vectors); needs `secret_hex`.
    #[serde(default)]
    pub install_id: Option<uuid::Uuid>,
    /// Fixed hashing secret as 64 hex characters (tests, vectors).
    #[serde(default)]
    pub secret_hex: Option<String>,
    /// Runtime name, e.g. `go`.
    #[serde(default)]
    pub runtime: Option<String>,
    /// Runtime version.
    #[serde(default)]
    pub runtime_version: Option<String>,
    /// Extra safe context properties.
    #[serde(default)]
    pub context: Map<String, Value>,
    /// The first-run notice, e.g. `{"product": "Chroma", "link": "https://..."}`.
    #[serde(default)]
    pub notice: Option<Notice>,
    /// Whether the usage report is sent home when telemetry is on (default true).
    #[serde(default)]
    pub usage_reports: Option<bool>,
    /// Delay before the first usage report, in milliseconds (default 10,000).
    #[serde(default)]
    pub usage_report_delay_ms: Option<u64>,
    /// Interval between usage reports, in milliseconds (default 3,600,000).
    #[serde(default)]
    pub usage_report_interval_ms: Option<u64>,
    /// Error reports' options, `{"deadline_ms", "per_fingerprint_ms", "per_hour"}`.
    #[serde(default)]
    pub crash: Option<CrashConfig>,
    /// Observability settings made in code ([`OtelSettings`]'s keys).
    #[serde(default)]
    pub otel: Option<OtelSettings>,
}

/// The JSON form of [`CrashOptions`] in a [`ClientConfig`]; every key is optional and
/// defaults to [`CrashOptions::default`]'s.
///
/// ```
/// let cfg: telemetry_core::ClientConfig = serde_json::from_str(
///     r#"{"product": "myapp", "crash": {"deadline_ms": 500, "per_hour": 5}}"#,
/// ).unwrap();
/// let options = cfg.crash.unwrap().options();
/// assert_eq!(options.deadline, std::time::Duration::from_millis(500));
/// assert_eq!((options.limits.per_hour, options.limits.per_fingerprint.as_secs()), (5, 60));
/// ```
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashConfig {
    /// How long a crash waits at most for its report's delivery, in milliseconds.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// Least time between two reports of the same fingerprint, in milliseconds.
    #[serde(default)]
    pub per_fingerprint_ms: Option<u64>,
    /// Most reports in any hour.
    #[serde(default)]
    pub per_hour: Option<u32>,
}

impl CrashConfig {
    /// The options, defaults filled in.
    pub fn options(&self) -> CrashOptions {
        let d = CrashOptions::default();
        CrashOptions {
            deadline: self.deadline_ms.map_or(d.deadline, Duration::from_millis),
            limits: crate::crash::RateLimits {
                per_fingerprint: self
                    .per_fingerprint_ms
                    .map_or(d.limits.per_fingerprint, Duration::from_millis),
                per_hour: self.per_hour.unwrap_or(d.limits.per_hour),
            },
        }
    }
}

impl ClientConfig {
    /// Parses the JSON text bindings pass.
    pub fn from_json(text: &str) -> Result<ClientConfig, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError(format!("invalid config JSON: {e}")))
    }

    /// Turns the configuration into a builder, checking what serde cannot.
    pub fn into_builder(self) -> Result<ClientBuilder, ConfigError> {
        let ms = Duration::from_millis;
        let mut b = Client::builder(self.product, self.version);
        if let Some(p) = self.profile {
            let profile = match p {
                Value::String(s) => s
                    .parse::<Profile>()
                    .map_err(|e| ConfigError(e.to_string()))?,
                other => serde_json::from_value(other)
                    .map_err(|e| ConfigError(format!("invalid profile: {e}")))?,
            };
            b = b.profile(profile);
        }
        if let Some(e) = self.endpoint {
            b = b.endpoint(e);
        }
        if let Some(k) = self.api_key {
            b = b.api_key(k);
        }
        match self.sink.as_deref() {
            None | Some("posthog") => {}
            Some("debug") => b = b.sink(SinkConfig::Debug),
            Some("memory") => b = b.sink(SinkConfig::Memory(MemorySink::new())),
            Some("file") => {
                let path = self
                    .file_path
                    .ok_or_else(|| ConfigError("the file sink needs file_path".into()))?;
                b = b.sink(SinkConfig::File(path));
            }
            Some(other) => {
                return Err(ConfigError(format!(
                    "unknown sink {other:?}: use posthog, file, debug or memory"
                )))
            }
        }
        if let Some(n) = self.queue_capacity {
            b = b.queue_capacity(n);
        }
        if let Some(n) = self.max_batch_events {
            b = b.max_batch_events(n);
        }
        if let Some(n) = self.max_batch_bytes {
            b = b.max_batch_bytes(n);
        }
        if let Some(n) = self.flush_interval_ms {
            b = b.flush_interval(ms(n));
        }
        if let Some(n) = self.connect_timeout_ms {
            b = b.connect_timeout(ms(n));
        }
        if let Some(path) = self.ca_file {
            b = b.ca_file(path);
        }
        if let Some(roots) = self.tls_roots {
            b = b.tls_roots(roots);
        }
        if let Some(n) = self.request_timeout_ms {
            b = b.request_timeout(ms(n));
        }
        if let Some(n) = self.max_retries {
            b = b.max_retries(n);
        }
        if let Some(n) = self.backoff_base_ms {
            b = b.backoff_base(ms(n));
        }
        if let Some(n) = self.shutdown_timeout_ms {
            b = b.shutdown_deadline(ms(n));
        }
        b = b.explicit(self.explicit).args(self.args);
        if let Some(d) = self.config_dir {
            b = b.config_dir(d);
        }
        if let Some(d) = self.working_dir {
            b = b.working_dir(d);
        }
        if let Some(m) = self.mode {
            b = b.mode(m);
        }
        if let Some(vars) = self.environment {
            b = b.environment(vars.into_iter().collect::<MapEnvironment>());
        }
        match (self.install_id, self.secret_hex) {
            (Some(id), Some(hex)) => {
                let secret = crate::anonymize::from_hex_secret(&hex).map_err(ConfigError)?;
                b = b.identity(Identity::from_parts(id, secret));
            }
            (None, None) => {}
            _ => return Err(ConfigError("install_id and secret_hex go together".into())),
        }
        if let Some(r) = self.runtime {
            b = b.runtime(r, self.runtime_version.unwrap_or_default());
        }
        for (k, v) in self.context {
            b = b.context_property(k, v);
        }
        if let Some(n) = self.notice {
            b = b.first_run_notice(n);
        }
        if let Some(send) = self.usage_reports {
            b = b.usage_reports(send);
        }
        if let Some(n) = self.usage_report_delay_ms {
            b = b.usage_report_delay(ms(n));
        }
        if let Some(n) = self.usage_report_interval_ms {
            b = b.usage_report_interval(ms(n));
        }
        if let Some(c) = self.crash {
            b = b.crash_options(c.options());
        }
        if let Some(o) = self.otel {
            b = b.otel(o);
        }
        Ok(b)
    }
}

/// Bumped in the child after every `fork()`: a pipeline from another generation belongs
/// to the parent and must not be touched (its worker thread does not exist here).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

/// How many forks this process is from the one that loaded the library (0 in it).
#[inline]
pub(crate) fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

fn register_fork_handler() {
    ATFORK.call_once(|| {
        // SAFETY: registering a handler that only touches an atomic is async-signal-safe.
        #[cfg(unix)]
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
}

/// One generation's queue and worker.
struct Pipeline {
    generation: u64,
    tx: SyncSender<Msg>,
    rx: Mutex<Option<Receiver<Msg>>>,
    shared: Arc<Shared>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Captures events and delivers them in the background; see the module docs.
pub struct Client {
    enabled: bool,
    decision: Decision,
    core: Arc<Core>,
    shutdown_deadline: Duration,
    memory: Option<MemorySink>,
    usage: Usage,
    tracer: Tracer,
}

/// The pipeline's state, shared by the client and by its usage registry, whose first
/// recording may start the worker too (the registry holds it weakly, so dropping the
/// client frees it).
struct Core {
    counters: Arc<Counters>,
    pipeline: AtomicPtr<Pipeline>,
    closed: AtomicBool,
    setup: Arc<WorkerSetup>,
    queue_capacity: usize,
    /// Events dropped (any reason) when the last flush reported: a flush is judged on the
    /// drops that happened since.
    flush_mark: AtomicU64,
    /// The consent decision's verdict (error reports check it).
    enabled: bool,
    /// Error reports' options and rate limits, fixed by the first call that needs them.
    crash: OnceLock<(CrashOptions, Limiter)>,
    /// When the last crash report that waits began: its deadline also bounds a shutdown
    /// during the same crash.
    crash_started: Mutex<Option<Instant>>,
}

/// What [`Client::flush_outcome`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Every event captured before the flush (and since the previous one) was delivered.
    Delivered,
    /// The timeout passed first; what is left stays queued and goes out later.
    TimedOut,
    /// The flush finished, but this many events were dropped since the previous flush
    /// (refused by the endpoint, out of retries, queue full, or after shutdown).
    Dropped(u64),
}

impl FlushOutcome {
    /// True only for [`FlushOutcome::Delivered`].
    pub fn delivered(self) -> bool {
        self == FlushOutcome::Delivered
    }
}

impl std::fmt::Display for FlushOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlushOutcome::Delivered => f.write_str("every event was delivered"),
            FlushOutcome::TimedOut => f.write_str("the timeout passed before delivery finished"),
            FlushOutcome::Dropped(1) => f.write_str("1 event was dropped, not delivered"),
            FlushOutcome::Dropped(n) => write!(f, "{n} events were dropped, not delivered"),
        }
    }
}

impl Client {
    /// Starts a builder for `product` at `version`.
    ///
    /// ```
    /// let builder = telemetry_core::Client::builder("myapp", "1.2.0")
    ///     .profile(telemetry_core::profile::Profile::Qdrant);
    /// # let _ = builder;
    /// ```
    pub fn builder(product: impl Into<String>, version: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            product: product.into(),
            version: version.into(),
            profile: None,
            endpoint: None,
            api_key: None,
            sink: None,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            tuning: Tuning {
                max_batch_events: 100,
                max_batch_bytes: 500_000,
                flush_interval: Duration::from_secs(5),
                request_timeout: Duration::from_secs(5),
                max_retries: 3,
                backoff_base: Duration::from_millis(200),
                backoff_cap: Duration::from_secs(30),
            },
            connect_timeout: Duration::from_secs(2),
            tls_roots: TlsRoots::Bundled,
            ca_file: None,
            shutdown_deadline: DEFAULT_SHUTDOWN,
            inputs: ConsentInputs::default(),
            env: Arc::new(ProcessEnvironment),
            identity: None,
            runtime: ("rust".into(), context::rust_version().into()),
            extra_context: Map::new(),
            notice: None,
            reports: ReportSchedule::default(),
            crash: None,
            otel: OtelSettings::default(),
        }
    }

    /// Whether telemetry is on for this client.
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client, Event};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// assert!(client.is_enabled()); // nothing in this empty environment says off
    /// ```
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The consent decision with its explanation.
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client, Event};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// let d = client.decision();
    /// assert_eq!(d.decided_by.as_ref().unwrap().kind.as_str(), "default");
    /// println!("{d}"); // one line per source, for people
    /// ```
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The delivery counters.
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client, Event};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// client.capture(Event::new("started"));
    /// client.flush(std::time::Duration::from_secs(5));
    /// assert_eq!(client.stats().sent, 1);
    /// ```
    pub fn stats(&self) -> Stats {
        self.core.counters.snapshot()
    }

    /// The client's tracer: spans for the operator's OpenTelemetry endpoint, configured by
    /// [`ClientBuilder::otel`] and the `*_OTEL_*` variables, independent of consent.
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// use telemetry_core::otel::Granularity;
    /// client.tracer().in_span("startup", Granularity::Operation, |_| ());
    /// assert_eq!(client.tracer().stats().recorded, 0); // no endpoint configured
    /// ```
    pub fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    /// Reports this process's panics to this client, under its consent: installs the panic
    /// hook once per process (chained to the one there before, so the host's own output and
    /// behaviour stay) and registers this client. Opted out, it only chains the hook. The
    /// first call's options stay.
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// client.report_panics(telemetry_core::crash::CrashOptions::default());
    /// let _ = std::panic::catch_unwind(|| panic!("boom"));
    /// client.flush(std::time::Duration::from_secs(5));
    /// let sent = client.memory().unwrap().events();
    /// assert_eq!(sent[0]["properties"]["$exception_list"][0]["value"], "boom");
    /// ```
    pub fn report_panics(&self, options: CrashOptions) {
        self.core.crash_state(options);
        let reporter: Option<std::sync::Weak<dyn CrashReporter>> = self.enabled.then(|| {
            let strong: Arc<dyn CrashReporter> = self.core.clone();
            Arc::downgrade(&strong)
        });
        crate::crash::hook::install(reporter);
    }

    /// Queues a report of an error the host handled; never waits. False when telemetry is
    /// off or the rate limits held it back (it is then counted and told with the next).
    pub fn capture_error(&self, report: &ErrorReport) -> bool {
        let report = ErrorReport {
            handled: true,
            ..report.clone()
        };
        matches!(self.core.report(&report, None), Reported::Queued { .. })
    }

    /// Reports a crash (an uncaught exception, a panic the binding caught on its way out):
    /// the first report of a fingerprint waits up to the deadline for its delivery, so it
    /// goes out before the process dies; repeats never wait.
    pub fn report_crash(&self, report: &ErrorReport) -> Reported {
        let report = ErrorReport {
            handled: false,
            ..report.clone()
        };
        self.core.report(&report, Some(Instant::now()))
    }

    /// This client's usage statistics: declare counters and timings, record, render the
    /// report, serve `/telemetry` and `/metrics`. Recording works whether or not
    /// telemetry is on; only sending the report home follows consent.
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// let queries = client.usage().timing("query").build().unwrap().handle();
    /// drop(queries.start()); // times an (empty) query
    /// assert_eq!(queries.snapshot().count, 1);
    /// ```
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// The memory sink's contents, when the client was built with one.
    pub fn memory(&self) -> Option<&MemorySink> {
        self.memory.as_ref()
    }

    /// Exactly what would be sent for `event` (anonymized, with context), built on this
    /// thread and sent nowhere, whatever the consent decision. Uses the install's stored
    /// identity when there is one, and creates none.
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client, Event};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// let item = client.preview(Event::new("query").property("collection", "docs"));
    /// assert_eq!(item["properties"]["collection"].as_str().unwrap().len(), 16); // hashed
    /// ```
    pub fn preview(&self, event: Event) -> Value {
        let setup = &self.core.setup;
        let identity = setup
            .identity
            .clone()
            .or_else(|| crate::identity::load_existing(&setup.profile, &*setup.env))
            .unwrap_or_else(Identity::ephemeral);
        let builder = PayloadBuilder::new(&identity, &setup.profile, &*setup.env, &setup.context);
        // A fresh batcher emits the event as its first of a key: with `batch_size` set.
        let out = crate::batch::Batcher::default().offer(event);
        out.map(|o| builder.build(o.event)).unwrap_or(Value::Null)
    }

    /// Queues an event; returns at once. Opted out, it does nothing at all; with the queue
    /// full, the event is dropped and counted.
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client, Event};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// client.capture(Event::new("collection_add").exact("add_amount", 20));
    /// assert_eq!(client.stats().captured, 1);
    /// ```
    #[inline]
    pub fn capture(&self, event: Event) {
        if self.enabled {
            self.core.offer(Msg::Event(Box::new(event)));
        }
    }

    /// Queues an event whose properties are already JSON text (see [`EncodedEvent`]);
    /// the worker parses them. What bindings use on their hot path.
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// use telemetry_core::EncodedEvent;
    /// let props = serde_json::json!({"add_amount": 20});
    /// client.capture_encoded(EncodedEvent::new("collection_add", &props).unwrap());
    /// assert_eq!(client.stats().captured, 1);
    /// ```
    #[inline]
    pub fn capture_encoded(&self, event: EncodedEvent) {
        if self.enabled {
            self.core.offer(Msg::Encoded(event));
        }
    }

    /// Sends everything captured so far, including partial batches; waits at most
    /// `timeout`. Returns true only when every event captured before the call (and since
    /// the previous flush) was delivered; false when the timeout passed first or when an
    /// event was dropped (see [`Client::flush_outcome`] for which).
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client, Event};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// client.capture(Event::new("started"));
    /// assert!(client.flush(std::time::Duration::from_secs(5)));
    /// assert_eq!(client.memory().unwrap().events().len(), 1);
    /// ```
    pub fn flush(&self, timeout: Duration) -> bool {
        self.flush_outcome(timeout).delivered()
    }

    /// [`Client::flush`], saying why it did not deliver. Drops are judged against the
    /// previous flush's report, so an event lost between two flushes makes the next one
    /// report it once; a drop of an event captured on another thread while this flush ran
    /// counts too (the answer errs on the side of "not delivered").
    ///
    /// ```
    /// use std::time::Duration;
    /// use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}};
    /// use telemetry_core::{Client, Event, FlushOutcome};
    /// let client = Client::builder("app", "1.0")
    ///     .environment(MapEnvironment::new())
    ///     .sink(SinkConfig::Memory(MemorySink::new()))
    ///     .build()
    ///     .unwrap();
    /// client.capture(Event::new("started"));
    /// match client.flush_outcome(Duration::from_secs(5)) {
    ///     FlushOutcome::Delivered => {}
    ///     FlushOutcome::TimedOut => eprintln!("still queued; it goes out later"),
    ///     FlushOutcome::Dropped(n) => eprintln!("{n} events lost; see the stats"),
    /// }
    /// ```
    pub fn flush_outcome(&self, timeout: Duration) -> FlushOutcome {
        if let Some(p) = self.core.current() {
            if !self.core.wait_for_flush(p, timeout) {
                return FlushOutcome::TimedOut;
            }
        }
        let s = self.core.counters.snapshot();
        let dropped = s.dropped_queue_full + s.dropped_shutdown + s.dropped_failed;
        let before = self.core.flush_mark.fetch_max(dropped, Ordering::AcqRel);
        match dropped.saturating_sub(before) {
            0 => FlushOutcome::Delivered,
            n => FlushOutcome::Dropped(n),
        }
    }

    /// Flushes what can go out within `deadline`, then stops the worker. Never waits
    /// longer than the deadline (plus scheduling noise); what could not go out is
    /// counted as `dropped_shutdown`. Later captures are dropped. Idempotent.
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client, Event};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// client.capture(Event::new("started"));
    /// let stats = client.shutdown(std::time::Duration::from_secs(1));
    /// assert_eq!(stats.sent + stats.dropped_shutdown, 1);
    /// ```
    pub fn shutdown(&self, deadline: Duration) -> Stats {
        // Spans and events share the deadline: both export threads start on their last
        // batch now, and both waits end by the same instant.
        let by = Instant::now() + deadline;
        self.tracer.begin_shutdown(by);
        let stats = self.shutdown_events(by);
        self.tracer.wait_closed(by);
        stats
    }

    fn shutdown_events(&self, by: Instant) -> Stats {
        self.core.closed.store(true, Ordering::Release);
        let Some(p) = self.core.current() else {
            return self.stats();
        };
        {
            let mut c = p.shared.lock();
            if c.shutdown_by.is_none() {
                c.shutdown_by = Some(by);
            }
        }
        p.shared.changed.notify_all();
        let _ = p.tx.try_send(Msg::Wake);
        let mut c = p.shared.lock();
        // A small grace lets a worker that met the deadline finish its accounting.
        let limit = by + Duration::from_millis(20);
        while !c.finished && !c.abandoned {
            let left = limit.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // The worker is stuck in a request: give up on it, account for its events.
                c.abandoned = true;
                let s = self.core.counters.snapshot();
                Counters::add(&self.core.counters.dropped_shutdown, s.queued);
                break;
            }
            c = p
                .shared
                .changed
                .wait_timeout(c, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let finished = c.finished;
        drop(c);
        if finished {
            if let Some(h) = p.worker.lock().ok().and_then(|mut w| w.take()) {
                let _ = h.join();
            }
        }
        self.stats()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Dropped while a crash unwinds the thread: the crash report already had its
        // deadline, and a dying process must not wait a second time.
        let deadline = match self.core.crash_window_left() {
            Some(left) if std::thread::panicking() => left.min(self.shutdown_deadline),
            _ => self.shutdown_deadline,
        };
        self.shutdown(deadline);
    }
}

impl Core {
    /// Counts the event captured and offers it to the queue without waiting.
    fn offer(&self, msg: Msg) {
        let generation = fork_generation();
        let current = self.pipeline.load(Ordering::Acquire);
        // SAFETY: a pipeline is freed only in Drop, which cannot run while &self lives.
        let pipeline = match unsafe { current.as_ref() } {
            Some(p) if p.generation == generation => p,
            _ => match self.start(current, generation) {
                Some(p) => p,
                None => {
                    Counters::add(&self.counters.captured, 1);
                    Counters::add(&self.counters.dropped_shutdown, 1);
                    return;
                }
            },
        };
        Counters::add(&self.counters.captured, 1);
        match pipeline.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => Counters::add(&self.counters.dropped_queue_full, 1),
            Err(TrySendError::Disconnected(_)) => Counters::add(&self.counters.dropped_shutdown, 1),
        }
    }

    /// The slow path of the first capture (or the first after a fork): makes a pipeline
    /// and its worker. Lock-free, so a child forked while another thread held a lock here
    /// cannot deadlock.
    #[cold]
    fn start(&self, seen: *mut Pipeline, generation: u64) -> Option<&Pipeline> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        register_fork_handler();
        if generation != 0 && !seen.is_null() {
            // The parent's queued events stay the parent's: the child starts its own count.
            self.counters.reset();
            self.flush_mark.store(0, Ordering::Release);
        }
        let (tx, rx) = sync_channel(self.queue_capacity);
        let fresh = Box::into_raw(Box::new(Pipeline {
            generation,
            tx,
            rx: Mutex::new(Some(rx)),
            shared: Arc::new(Shared::default()),
            worker: Mutex::new(None),
        }));
        let won = self
            .pipeline
            .compare_exchange(seen, fresh, Ordering::AcqRel, Ordering::Acquire);
        let pipeline: &Pipeline = match won {
            // The replaced pipeline (if any) is the parent's copy: it is left alone, never
            // freed, because its locks may have been held by a thread that is gone.
            Ok(_) => unsafe { &*fresh },
            Err(other) => {
                // Another thread started one first; ours was never shared.
                drop(unsafe { Box::from_raw(fresh) });
                return unsafe { other.as_ref() }.filter(|p| p.generation == generation);
            }
        };
        let rx = pipeline.rx.lock().ok()?.take()?;
        let worker = Worker::new(
            self.setup.clone(),
            self.counters.clone(),
            pipeline.shared.clone(),
            rx,
        );
        let spawned = std::thread::Builder::new()
            .name("telemetry-worker".into())
            .spawn(move || worker.run());
        match spawned {
            Ok(handle) => {
                if let Ok(mut w) = pipeline.worker.lock() {
                    *w = Some(handle);
                }
            }
            Err(e) => log::warn!("telemetry: cannot start the worker thread: {e}"),
        }
        Some(pipeline)
    }

    fn current(&self) -> Option<&Pipeline> {
        let p = self.pipeline.load(Ordering::Acquire);
        // SAFETY: see `capture`.
        unsafe { p.as_ref() }.filter(|p| p.generation == fork_generation())
    }

    /// Asks the worker to flush and waits for it; false when `timeout` passed first.
    fn wait_for_flush(&self, p: &Pipeline, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let ticket = {
            let mut c = p.shared.lock();
            if c.finished {
                return true;
            }
            c.flush_requested += 1;
            c.flush_requested
        };
        let _ = p.tx.try_send(Msg::Wake);
        let mut c = p.shared.lock();
        while c.flush_done < ticket && !c.finished {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            c = p
                .shared
                .changed
                .wait_timeout(c, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl Core {
    /// Events dropped so far, for any reason.
    fn dropped(&self) -> u64 {
        let s = self.counters.snapshot();
        s.dropped_queue_full + s.dropped_shutdown + s.dropped_failed
    }

    /// What is left of the deadline of the crash being reported, if one is.
    fn crash_window_left(&self) -> Option<Duration> {
        let started = (*self.crash_started.lock().unwrap_or_else(|p| p.into_inner()))?;
        let deadline = self
            .crash
            .get()
            .map_or(CrashOptions::default().deadline, |c| c.0.deadline);
        Some(deadline.saturating_sub(started.elapsed()))
    }

    fn crash_state(&self, options: CrashOptions) -> &(CrashOptions, Limiter) {
        self.crash
            .get_or_init(|| (options, Limiter::new(options.limits)))
    }

    /// Scrubs, rate-limits and queues `report`; with `crash_started`, a first report of its
    /// fingerprint waits for delivery until the deadline counted from then.
    fn report(&self, report: &ErrorReport, crash_started: Option<Instant>) -> Reported {
        if !self.enabled {
            return Reported::Disabled;
        }
        let (options, limiter) = self.crash_state(CrashOptions::default());
        let scrubber = crate::crash::scrubber();
        // The fingerprint needs only the frames: a report the limits hold back (a storm's)
        // costs no scrubbing of its messages.
        let fingerprint = report.scrub_frames(&scrubber).fingerprint();
        let Some(admitted) = limiter.admit(&fingerprint) else {
            return Reported::Suppressed;
        };
        let mut scrubbed = report.scrub(&scrubber);
        if scrubbed.platform.is_empty() || scrubbed.platform == "custom" {
            scrubbed.platform = self.setup.context.runtime.clone();
        }
        let dropped_before = self.dropped();
        self.offer(Msg::Event(Box::new(scrubbed.to_event(admitted.suppressed))));
        // A panic of our own worker must not wait for that worker.
        let on_worker = std::thread::current().name() == Some("telemetry-worker");
        if let Some(started) = crash_started {
            *self.crash_started.lock().unwrap_or_else(|p| p.into_inner()) = Some(started);
        }
        let delivered = match crash_started {
            Some(started) if admitted.first && !on_worker => {
                let left = options.deadline.saturating_sub(started.elapsed());
                // Delivered: flushed in time and nothing dropped meanwhile (a refusal
                // finishes a flush too).
                let flushed = self.current().is_some_and(|p| self.wait_for_flush(p, left));
                Some(flushed && self.dropped() == dropped_before)
            }
            _ => None,
        };
        Reported::Queued { delivered }
    }
}

impl CrashReporter for Core {
    fn report_crash(&self, report: &ErrorReport, started: Instant) -> Reported {
        self.report(report, Some(started))
    }
}

/// Crashes caught by a binding's own hook (Python's `sys.excepthook`): the deadline counts
/// from the hook's entry, as the panic hook's does.
impl Client {
    /// [`Client::report_crash`] with the deadline counted from `started`, when the host's
    /// hook was entered, rather than from this call: building the report is part of what
    /// the crash waits for, and several clients reporting one crash share one deadline
    /// (the second waits only for what the first left of it).
    ///
    /// ```
    /// # use telemetry_core::{env::MapEnvironment, sink::{MemorySink, SinkConfig}, Client};
    /// # use telemetry_core::crash::{ErrorReport, Reported};
    /// # let client = Client::builder("app", "1.0").environment(MapEnvironment::new())
    /// #     .sink(SinkConfig::Memory(MemorySink::new())).build().unwrap();
    /// let started = std::time::Instant::now(); // the hook's entry
    /// let report = ErrorReport::new("ValueError", "bad input").platform("python");
    /// let outcome = client.report_crash_since(&report, started);
    /// assert_eq!(outcome, Reported::Queued { delivered: Some(true) });
    /// ```
    pub fn report_crash_since(&self, report: &ErrorReport, started: Instant) -> Reported {
        let report = ErrorReport {
            handled: false,
            ..report.clone()
        };
        self.core.report(&report, Some(started))
    }
}

impl Starter for Core {
    fn start_worker(&self) {
        let generation = fork_generation();
        let current = self.pipeline.load(Ordering::Acquire);
        // SAFETY: as in `offer`: the pipeline lives as long as this Core.
        match unsafe { current.as_ref() } {
            Some(p) if p.generation == generation => {}
            _ => {
                self.start(current, generation);
            }
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let p = *self.pipeline.get_mut();
        // SAFETY: we own the current pipeline. Freeing it is safe even when shutdown
        // abandoned a worker stuck in a request: the worker owns only the receiver and an
        // Arc of the control state, never the pipeline. A parent's copy (another
        // generation) is leaked on purpose: its locks may be held by a thread that is gone.
        if let Some(pipeline) = unsafe { p.as_ref() } {
            if pipeline.generation == fork_generation() {
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("enabled", &self.enabled)
            .field("stats", &self.stats())
            .finish()
    }
}
