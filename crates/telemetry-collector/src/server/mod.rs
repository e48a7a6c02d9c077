//! The running server: hyper through axum on a tokio runtime of its own, the
//! group-commit writer, the retention sweep, and a synchronous handle.
//!
//! [`Collector::start`] (and [`CollectorBuilder::start`]) return once the
//! socket is bound and the database is ready, so a client may connect as soon
//! as they return; the server runs on background threads until
//! [`CollectorHandle::shutdown`] (or drop). Every `200` is sent only after the
//! request's transaction committed, so nothing acknowledged is ever lost,
//! whenever the process stops.
//!
//! ```
//! use telemetry_collector::{Collector, EventFilter};
//!
//! let collector = Collector::start("127.0.0.1:0", ":memory:").unwrap();
//! assert!(collector.url().starts_with("http://127.0.0.1:"));
//! assert!(collector.events(&EventFilter::default()).unwrap().is_empty());
//! collector.shutdown();
//! ```

mod budget;
mod guard;
pub mod listen;
mod pages;
mod routes;
mod session;
mod tls;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{error, info, warn};
use tokio::sync::watch;

use crate::commit::{GroupCommit, GroupCommitStats};
use crate::config::{is_loopback, CollectorConfig, Rate};
use crate::error::Error;
use crate::store::{Deleted, EventFilter, Store, StoredEvent, Summary};
use guard::{AdminToken, ApiKeys, KeyedLimit};

/// What every request handler shares.
pub(crate) struct App {
    store: Arc<Store>,
    commit: Arc<GroupCommit>,
    /// The listener is on loopback only: requests must name a loopback host.
    loopback_only: bool,
    admin_token: Option<AdminToken>,
    api_keys: Option<ApiKeys>,
    address_limit: Option<KeyedLimit<IpAddr>>,
    key_limit: Option<KeyedLimit<String>>,
    /// Request-body memory shared by all connections.
    body_budget: budget::BodyBudget,
    /// Dashboard sign-ins.
    sessions: session::Sessions,
    /// Served over HTTPS: session cookies are `Secure`.
    secure_cookies: bool,
}

impl App {
    fn new(
        config: &CollectorConfig,
        store: Arc<Store>,
        commit: Arc<GroupCommit>,
        loopback_only: bool,
        secure_cookies: bool,
    ) -> Arc<App> {
        Arc::new(App {
            store,
            commit,
            loopback_only,
            admin_token: config.admin_token.as_deref().map(AdminToken::new),
            api_keys: config.api_keys.as_deref().map(ApiKeys::new),
            address_limit: config.rate_per_address.map(KeyedLimit::new),
            key_limit: config.rate_per_key.map(KeyedLimit::new),
            body_budget: budget::BodyBudget::new(budget::BODY_BUDGET_BYTES),
            sessions: session::Sessions::new(),
            secure_cookies,
        })
    }
}

/// Entry point: starts a collector. See [`Collector::start`] and [`Collector::builder`].
pub struct Collector;

impl Collector {
    /// Opens (or creates) the database `db` and listens on `listen` (`host:port`;
    /// port 0 picks a free one, see [`CollectorHandle::addr`]), with every other
    /// setting at its default ([`CollectorConfig::default`]).
    ///
    /// `db` is a SQLite path, `":memory:"` for a throw-away in-memory database
    /// (readable through the handle's query methods while the collector runs),
    /// or a `postgres://` URL.
    pub fn start(listen: &str, db: impl AsRef<Path>) -> Result<CollectorHandle, Error> {
        Collector::builder().listen(listen).db(db).start()
    }

    /// A collector with settings beyond address and database.
    pub fn builder() -> CollectorBuilder {
        CollectorBuilder {
            config: CollectorConfig::default(),
        }
    }
}

/// Settings for [`CollectorBuilder::start`]; see [`CollectorConfig`] for each.
#[derive(Debug, Clone)]
pub struct CollectorBuilder {
    config: CollectorConfig,
}

impl CollectorBuilder {
    /// `host:port` to listen on.
    pub fn listen(mut self, listen: &str) -> Self {
        self.config.listen = listen.to_owned();
        self
    }

    /// SQLite path, `":memory:"`, or a `postgres://` URL.
    pub fn db(mut self, db: impl AsRef<Path>) -> Self {
        self.config.db = db.as_ref().to_path_buf();
        self
    }

    /// Serve HTTPS with this PEM certificate chain and PEM private key.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.config.tls = Some((cert.into(), key.into()));
        self
    }

    /// Require `Authorization: Bearer <token>` on `/api/*`.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.config.admin_token = Some(token.into());
        self
    }

    /// Accept only these project API keys from senders.
    pub fn api_keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.config.api_keys = Some(keys.into_iter().map(Into::into).collect());
        self
    }

    /// Limit requests per source address.
    pub fn rate_per_address(mut self, rate: Rate) -> Self {
        self.config.rate_per_address = Some(rate);
        self
    }

    /// Limit events per project API key.
    pub fn rate_per_key(mut self, rate: Rate) -> Self {
        self.config.rate_per_key = Some(rate);
        self
    }

    /// Delete events received longer ago than this (`None`: keep everything).
    pub fn retention(mut self, age: Option<Duration>) -> Self {
        self.config.retention = age;
        self
    }

    /// How often the retention sweep runs.
    pub fn retention_interval(mut self, every: Duration) -> Self {
        self.config.retention_interval = every;
        self
    }

    /// Tokio worker threads serving HTTP.
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.config.worker_threads = n;
        self
    }

    /// All settings at once.
    pub fn config(mut self, config: CollectorConfig) -> Self {
        self.config = config;
        self
    }

    /// Opens the database, binds the address and starts serving.
    pub fn start(self) -> Result<CollectorHandle, Error> {
        start(self.config)
    }
}

fn start(config: CollectorConfig) -> Result<CollectorHandle, Error> {
    let addrs: Vec<SocketAddr> = config
        .listen
        .to_socket_addrs()
        .map_err(|_| Error::InvalidAddress(config.listen.clone()))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::InvalidAddress(config.listen.clone()));
    }
    config.check(&addrs)?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    // The database first: a bad path or URL should fail before the port is taken.
    let store = Arc::new(Store::open(&config.db)?);
    let listener = std::net::TcpListener::bind(&addrs[..])?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let commit = Arc::new(GroupCommit::start(Arc::clone(&store))?);
    let app = App::new(
        &config,
        Arc::clone(&store),
        Arc::clone(&commit),
        is_loopback(addr.ip()),
        tls.is_some(),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .thread_name("collector-http")
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    let router = routes::router(Arc::clone(&app));
    let sweeper_stop = stop_rx.clone();
    let retention = config.retention;
    let interval = config.retention_interval;
    let server_thread = thread::Builder::new()
        .name("collector-server".into())
        .spawn(move || {
            runtime.spawn(housekeeping(app, retention, interval, sweeper_stop));
            runtime.block_on(listen::serve(listener, router, tls, stop_rx));
            // Handlers still running past the grace period are dropped here.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    info!("listening on {scheme}://{addr}");
    Ok(CollectorHandle {
        addr,
        scheme,
        store,
        commit,
        stop: stop_tx,
        server_thread: Some(server_thread),
    })
}

/// The retention sweep (first right away, then every `interval`) and the rate
/// limiters' forgetting of idle keys, until `stop`.
async fn housekeeping(
    app: Arc<App>,
    retention: Option<Duration>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        if let Some(limit) = &app.address_limit {
            limit.forget_idle();
        }
        if let Some(limit) = &app.key_limit {
            limit.forget_idle();
        }
        let Some(age) = retention else { continue };
        let store = Arc::clone(&app.store);
        let swept = tokio::task::spawn_blocking(move || {
            let cutoff = time::OffsetDateTime::now_utc() - age;
            store.delete_received_before(&crate::ingest::format_rfc3339(cutoff))
        })
        .await;
        match swept {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(
                "retention: deleted {n} events older than {} days",
                age.as_secs() / 86_400
            ),
            Ok(Err(e)) => warn!("retention sweep failed (retried at the next one): {e}"),
            Err(_) => error!("retention sweep panicked"),
        }
    }
}

/// The collector's HTTP application without a socket, for in-process tests and the
/// `collector_routing` fuzz target (`fuzz/`): exactly what each connection of a
/// listening collector serves (the router, the trailing-slash normalisation before
/// it, the peer address its handlers read), answering on the caller's tokio runtime
/// (a current-thread one is enough), over the store `config.db` names and a
/// group-commit writer of its own. `config.listen` is not bound: it only decides,
/// as it would for a listening collector, whether the loopback `Host` check applies,
/// and the same settings are refused ([`CollectorBuilder::start`]'s checks). No TLS,
/// header limits or timeouts of the connection layer, no retention sweep. Not a
/// stable API.
///
/// ```
/// use axum::body::Body;
/// use axum::http::{Request, StatusCode};
/// use telemetry_collector::server::InProcess;
/// use telemetry_collector::CollectorConfig;
///
/// let config = CollectorConfig {
///     listen: "127.0.0.1:0".into(),
///     db: ":memory:".into(),
///     admin_token: Some("s3cret".into()),
///     ..CollectorConfig::default()
/// };
/// let app = InProcess::new(&config).unwrap();
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// let get = |path: &str, token: Option<&str>| {
///     let mut request = Request::get(path).header("host", "localhost");
///     if let Some(t) = token {
///         request = request.header("authorization", format!("Bearer {t}"));
///     }
///     runtime.block_on(app.handle(request.body(Body::empty()).unwrap())).status()
/// };
/// assert_eq!(get("/health/", None), StatusCode::OK);
/// assert_eq!(get("/api/summary", None), StatusCode::UNAUTHORIZED);
/// assert_eq!(get("/api/summary", Some("s3cret")), StatusCode::OK);
/// ```
#[doc(hidden)]
pub struct InProcess {
    service: tower_http::normalize_path::NormalizePath<axum::Router>,
    peer: SocketAddr,
    store: Arc<Store>,
    commit: Arc<GroupCommit>,
}

impl InProcess {
    /// Opens the store and starts the writer; requests go to [`InProcess::handle`].
    pub fn new(config: &CollectorConfig) -> Result<InProcess, Error> {
        let addrs: Vec<SocketAddr> = config
            .listen
            .to_socket_addrs()
            .map_err(|_| Error::InvalidAddress(config.listen.clone()))?
            .collect();
        let Some(first) = addrs.first() else {
            return Err(Error::InvalidAddress(config.listen.clone()));
        };
        config.check(&addrs)?;
        let store = Arc::new(Store::open(&config.db)?);
        let commit = Arc::new(GroupCommit::start(Arc::clone(&store))?);
        let app = App::new(
            config,
            Arc::clone(&store),
            Arc::clone(&commit),
            is_loopback(first.ip()),
            false,
        );
        Ok(InProcess {
            service: listen::application(routes::router(app)),
            peer: SocketAddr::from(([127, 0, 0, 1], 40_000)),
            store,
            commit,
        })
    }

    /// Answers one request as a connection from `127.0.0.1` would be answered.
    pub async fn handle(
        &self,
        mut request: axum::http::Request<axum::body::Body>,
    ) -> axum::response::Response {
        use tower::ServiceExt;
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        match self.service.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// The store requests write to.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.commit.shutdown();
    }
}

/// A running collector. Dropping it shuts it down like [`CollectorHandle::shutdown`].
pub struct CollectorHandle {
    addr: SocketAddr,
    scheme: &'static str,
    store: Arc<Store>,
    commit: Arc<GroupCommit>,
    stop: watch::Sender<bool>,
    server_thread: Option<JoinHandle<()>>,
}

impl CollectorHandle {
    /// The bound address, with the real port when started on port 0.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for senders, e.g. `http://127.0.0.1:41234` (no trailing slash);
    /// `https://` when serving TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The database this collector writes.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The stored events matching `filter` (see [`Store::events`]).
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, Error> {
        self.store.events(filter)
    }

    /// Totals over everything stored (what `GET /api/summary` answers).
    pub fn summary(&self) -> Result<Summary, Error> {
        self.store.summary()
    }

    /// Deletes everything of install `distinct_id`.
    pub fn delete_instance(&self, distinct_id: &str) -> Result<Deleted, Error> {
        self.store.delete_instance(distinct_id)
    }

    /// Transactions, requests and events the group commit has written.
    pub fn commit_stats(&self) -> GroupCommitStats {
        self.commit.stats()
    }

    /// Waits until at least `at_least` events are stored or `timeout` passes;
    /// returns the number stored at that point. For tests whose sender
    /// delivers from a background thread.
    pub fn wait_for_events(&self, at_least: u64, timeout: Duration) -> Result<u64, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.summary()?.events;
            if n >= at_least || Instant::now() >= deadline {
                return Ok(n);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops accepting, finishes and answers the requests in flight (waiting at
    /// most [`listen::SHUTDOWN_GRACE`] for them), writes what is queued, then
    /// closes the database.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(server_thread) = self.server_thread.take() else {
            return;
        };
        let _ = self.stop.send(true);
        if server_thread.join().is_err() {
            error!("the server thread panicked");
        }
        self.commit.shutdown();
        info!("stopped listening on {}", self.url());
    }
}

impl Drop for CollectorHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
