//! Usage statistics in Qdrant's model: counters and operation timings that the host
//! records, system information, and sections the host supplies, rendered as one report at
//! a details level, as Prometheus text, and sent home through the client's pipeline.
//!
//! In: declarations (`counter`, `timing`), recordings through the handles they give, and
//! sections pushed or provided by the host. Out: [`Usage::report`] (JSON),
//! [`Usage::prometheus`] (text), [`Usage::handle`] (the `/telemetry` and `/metrics`
//! endpoints for any host server) and [`Usage::serve`] (those endpoints on a loopback
//! port).
//!
//! Recording never takes a lock and allocates only on a key's first use; rendering reads
//! the atomics and never stalls a recorder. Recording works whether or not telemetry is
//! enabled: the numbers are the operator's own and the local endpoints always answer.
//! Only sending home follows consent.
//!
//! ```
//! use telemetry_core::{anonymize::PropertyKind, usage::{ReportOptions, Usage}};
//! let usage = Usage::standalone("myapp", "1.0");
//! let requests = usage
//!     .timing("rest_requests")
//!     .label("route", PropertyKind::Safe)
//!     .label("status", PropertyKind::Safe)
//!     .build()
//!     .unwrap();
//! let get = requests.with(&["GET /collections", "200"]).unwrap();
//! get.record(std::time::Duration::from_millis(4));
//! let report = usage.report(&ReportOptions { details_level: 2, ..Default::default() });
//! assert_eq!(report["operations"]["rest_requests"]["count"], 1);
//! assert!(usage.prometheus(false).contains("myapp_rest_requests_seconds_count"));
//! ```

pub(crate) mod activation;
pub mod counter;
pub mod endpoint;
pub mod labels;
pub mod prometheus;
pub mod raw;
pub mod report;
pub mod server;
pub mod system;
pub mod timing;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use serde_json::Value;

use crate::anonymize::PropertyKind;
use crate::identity::Identity;
use activation::Activation;
pub use counter::Counter;
pub use endpoint::Response;
use labels::LabelTable;
pub use report::ReportOptions;
pub use server::UsageServer;
pub use timing::{Timing, TimingGuard, TimingSnapshot, DEFAULT_BOUNDS};

/// The name of the event that carries the usage report home (its properties are the
/// report, already anonymized); the collector's `GET /api/usage` serves the latest per
/// install.
pub const REPORT_EVENT: &str = "usage_report";

/// Most label sets one family holds by default; later new ones share an overflow key.
pub const DEFAULT_MAX_KEYS: usize = 1024;
/// The highest details level; any higher number means this one.
pub const MAX_DETAILS_LEVEL: u8 = 4;

/// A declaration or a recording the registry cannot accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "usage statistics: {}", self.0)
    }
}

impl std::error::Error for UsageError {}

/// One label of a family: its name and how its values are anonymized in reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The label's name (`route`, `status`, `collection`).
    pub name: String,
    /// How values are sent home and shown anonymized (default: hashed).
    pub kind: PropertyKind,
}

/// What a family counts; shared by its handles.
#[derive(Debug)]
pub(crate) struct FamilyShape {
    pub name: String,
    pub help: String,
    pub labels: Vec<Label>,
}

/// A declared counter family.
#[derive(Debug)]
pub(crate) struct CounterData {
    pub shape: FamilyShape,
    pub single: Arc<AtomicU64>,
    pub table: LabelTable<AtomicU64>,
}

/// A declared timing family.
#[derive(Debug)]
pub(crate) struct TimingData {
    pub shape: FamilyShape,
    /// Bucket bounds in nanoseconds, increasing.
    pub bounds: Arc<[u64]>,
    pub single: Arc<timing::TimingCell>,
    pub table: LabelTable<timing::TimingCell>,
}

/// A host-supplied part of the report (Qdrant's `collections`, `cluster`, ...).
#[derive(Clone)]
pub struct Section {
    content: SectionContent,
    kinds: BTreeMap<String, PropertyKind>,
    level: u8,
}

#[derive(Clone)]
enum SectionContent {
    Value(Value),
    Provider(Arc<dyn Fn() -> Value + Send + Sync>),
}

impl std::fmt::Debug for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let content = match &self.content {
            SectionContent::Value(v) => v.to_string(),
            SectionContent::Provider(_) => "<provider>".into(),
        };
        f.debug_struct("Section")
            .field("content", &content)
            .field("kinds", &self.kinds)
            .field("level", &self.level)
            .finish()
    }
}

impl Section {
    /// A section holding `value` as it is now (hosts push a new one when it changes).
    pub fn new(value: Value) -> Self {
        Section {
            content: SectionContent::Value(value),
            kinds: BTreeMap::new(),
            level: 2,
        }
    }

    /// A section computed when a report is rendered, on the rendering thread (the host's
    /// server thread, or the client's worker when the report is sent home). For Rust hosts;
    /// bindings push values with [`Section::new`] instead, so no core thread calls into them.
    pub fn provided(f: impl Fn() -> Value + Send + Sync + 'static) -> Self {
        Section {
            content: SectionContent::Provider(Arc::new(f)),
            kinds: BTreeMap::new(),
            level: 2,
        }
    }

    /// Declares how the field `key` (at any depth) is anonymized; undeclared fields go by
    /// their type, as event properties do (strings hashed, numbers rounded, keys hashed).
    pub fn kind(mut self, key: impl Into<String>, kind: PropertyKind) -> Self {
        self.kinds.insert(key.into(), kind);
        self
    }

    /// Several declarations at once.
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = (String, PropertyKind)>) -> Self {
        self.kinds.extend(kinds);
        self
    }

    /// The lowest details level that shows the section (default 2, Qdrant's "full
    /// per-item configuration" level).
    pub fn level(mut self, level: u8) -> Self {
        self.level = level.min(MAX_DETAILS_LEVEL);
        self
    }

    pub(crate) fn value(&self) -> Value {
        match &self.content {
            SectionContent::Value(v) => v.clone(),
            SectionContent::Provider(f) => f(),
        }
    }
}

/// Where the report's install id and hashing secret come from.
pub(crate) enum IdentitySource {
    /// Fixed when the registry was made (a standalone registry, a fixed or per-process id).
    Fixed(Identity),
    /// The client's: the worker's once it runs, else the stored one, else one kept in
    /// memory for local rendering (nothing is created on disk by rendering).
    Client {
        profile: crate::profile::Profile,
        env: Arc<dyn crate::env::Environment>,
    },
}

/// Everything a registry holds.
pub(crate) struct UsageShared {
    pub product: String,
    pub version: String,
    /// Prometheus names start with this (the product name, sanitized).
    pub namespace: String,
    pub precision: u32,
    pub activation: Arc<Activation>,
    pub counters: RwLock<BTreeMap<String, Arc<CounterData>>>,
    pub timings: RwLock<BTreeMap<String, Arc<TimingData>>>,
    pub sections: Mutex<BTreeMap<String, Section>>,
    pub app: Mutex<Option<Section>>,
    pub data_dir: Mutex<Option<PathBuf>>,
    pub identity: IdentitySource,
    /// Set by the worker when it has resolved the install's identity.
    pub worker_identity: OnceLock<Identity>,
    /// The identity local rendering uses before the worker has one.
    pub local_identity: OnceLock<Identity>,
}

impl UsageShared {
    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The install id and secret a report is rendered with now; never creates a file.
    pub fn identity(&self) -> Identity {
        if let Some(id) = self.worker_identity.get() {
            return id.clone();
        }
        match &self.identity {
            IdentitySource::Fixed(id) => id.clone(),
            IdentitySource::Client { profile, env } => self
                .local_identity
                .get_or_init(|| crate::identity::reuse_without_storing(profile, &**env))
                .clone(),
        }
    }

    /// Whether the host uses usage statistics at all (something declared or supplied):
    /// a client whose host never does sends no usage reports.
    pub fn in_use(&self) -> bool {
        let declared = !self.counters.read().map(|c| c.is_empty()).unwrap_or(true)
            || !self.timings.read().map(|t| t.is_empty()).unwrap_or(true);
        declared || !Self::lock(&self.sections).is_empty() || Self::lock(&self.app).is_some()
    }
}

/// A registry of usage statistics: one per client, so two products in one process never
/// mix their numbers. Cheap to clone (a shared handle).
#[derive(Clone)]
pub struct Usage {
    pub(crate) shared: Arc<UsageShared>,
}

impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Usage")
            .field("product", &self.shared.product)
            .finish()
    }
}

impl Usage {
    /// A registry without a client: it records and renders, and never sends or starts
    /// anything. Its hashing secret is made at random and kept in memory.
    pub fn standalone(product: &str, version: &str) -> Usage {
        Usage::with_parts(
            product,
            version,
            3,
            IdentitySource::Fixed(Identity::ephemeral()),
            Activation::inert(),
        )
    }

    /// A standalone registry with a fixed identity and precision (tests, shared vectors).
    pub fn with_identity(
        product: &str,
        version: &str,
        identity: Identity,
        precision: u32,
    ) -> Usage {
        Usage::with_parts(
            product,
            version,
            precision,
            IdentitySource::Fixed(identity),
            Activation::inert(),
        )
    }

    pub(crate) fn with_parts(
        product: &str,
        version: &str,
        precision: u32,
        identity: IdentitySource,
        activation: Activation,
    ) -> Usage {
        Usage {
            shared: Arc::new(UsageShared {
                product: product.to_string(),
                version: version.to_string(),
                namespace: prometheus::sanitize_name(product),
                precision: precision.max(1),
                activation: Arc::new(activation),
                counters: RwLock::new(BTreeMap::new()),
                timings: RwLock::new(BTreeMap::new()),
                sections: Mutex::new(BTreeMap::new()),
                app: Mutex::new(None),
                data_dir: Mutex::new(None),
                identity,
                worker_identity: OnceLock::new(),
                local_identity: OnceLock::new(),
            }),
        }
    }

    /// Declares a counter family; see [`CounterBuilder`].
    pub fn counter(&self, name: &str) -> CounterBuilder<'_> {
        CounterBuilder {
            usage: self,
            name: name.to_string(),
            help: String::new(),
            labels: Vec::new(),
            max_keys: DEFAULT_MAX_KEYS,
        }
    }

    /// Declares an operation timing family; see [`TimingBuilder`].
    pub fn timing(&self, name: &str) -> TimingBuilder<'_> {
        TimingBuilder {
            usage: self,
            name: name.to_string(),
            help: String::new(),
            labels: Vec::new(),
            bounds: DEFAULT_BOUNDS.to_vec(),
            max_keys: DEFAULT_MAX_KEYS,
        }
    }

    /// Sets (or replaces) the section `name` of the report. Names `id`, `app`, `system`,
    /// `counters` and `operations` are the core's.
    ///
    /// ```
    /// use serde_json::json;
    /// use telemetry_core::{anonymize::PropertyKind, usage::{ReportOptions, Section, Usage}};
    /// let usage = Usage::standalone("myapp", "1.0");
    /// usage.set_section("collections", Section::new(json!({"number": 2, "names": ["a", "b"]}))
    ///     .kind("number", PropertyKind::Exact)).unwrap();
    /// let r = usage.report(&ReportOptions { details_level: 2, anonymize: true, ..Default::default() });
    /// assert_eq!(r["collections"]["number"], 2);
    /// assert_ne!(r["collections"]["names"][0], "a"); // hashed
    /// ```
    pub fn set_section(&self, name: &str, section: Section) -> Result<(), UsageError> {
        if report::RESERVED.contains(&name) {
            return Err(UsageError(format!(
                "section name {name:?} is the core's own; choose another"
            )));
        }
        check_name(name)?;
        self.shared.activation.touch();
        UsageShared::lock(&self.shared.sections).insert(name.to_string(), section);
        Ok(())
    }

    /// Removes the section `name`; true if it was there.
    pub fn remove_section(&self, name: &str) -> bool {
        UsageShared::lock(&self.shared.sections)
            .remove(name)
            .is_some()
    }

    /// Fields the integrator adds to the report's `app` object (features, startup time,
    /// ...), anonymized by the section's kinds; `name` and `version` stay the core's.
    pub fn set_app_fields(&self, fields: Section) {
        *UsageShared::lock(&self.shared.app) = Some(fields);
    }

    /// The directory the host keeps its data in: the report gives the size and type (SSD
    /// or rotational) of the disk holding it, never its path.
    pub fn set_data_dir(&self, dir: impl Into<PathBuf>) {
        *UsageShared::lock(&self.shared.data_dir) = Some(dir.into());
    }

    /// The report as JSON; see [`report`] for what each details level holds.
    pub fn report(&self, options: &ReportOptions) -> Value {
        report::render(&self.shared, options)
    }

    /// The Prometheus text exposition (version 0.0.4) of every declared family.
    pub fn prometheus(&self, anonymize: bool) -> String {
        prometheus::render(&self.shared, anonymize)
    }

    /// Answers a request for `/telemetry` or `/metrics` (any other path is a 404), for any
    /// host server to mount: `query` is the raw query string, without `?`.
    ///
    /// ```
    /// let usage = telemetry_core::usage::Usage::standalone("myapp", "1.0");
    /// let r = usage.handle("/telemetry", "details_level=1&anonymize=true");
    /// assert_eq!((r.status, r.content_type), (200, "application/json"));
    /// assert_eq!(usage.handle("/telemetry", "details_level=high").status, 400);
    /// ```
    pub fn handle(&self, path: &str, query: &str) -> Response {
        endpoint::handle(self, path, query)
    }

    /// Serves `/telemetry` and `/metrics` on `addr`, which must be a loopback address
    /// (`127.0.0.1:9464`, `[::1]:0`), on a thread of its own until the server is dropped.
    pub fn serve(&self, addr: &str) -> Result<UsageServer, UsageError> {
        server::UsageServer::start(self.clone(), addr)
    }
}

/// Family and section names: what Prometheus accepts, in lower case.
fn check_name(name: &str) -> Result<(), UsageError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "invalid name {name:?}: use 1 to 100 of a-z, 0-9 and _, not starting with a digit"
        )))
    }
}

fn check_labels(labels: &[Label]) -> Result<(), UsageError> {
    for (i, l) in labels.iter().enumerate() {
        check_name(&l.name).map_err(|e| UsageError(format!("label {}", e.0)))?;
        // Prometheus keeps `le` for histogram buckets, `quantile` for summaries and names
        // starting with `__` for itself.
        if l.name == "le" || l.name == "quantile" || l.name.starts_with("__") {
            return Err(UsageError(format!(
                "label name {:?} is reserved by Prometheus",
                l.name
            )));
        }
        if labels[..i].iter().any(|o| o.name == l.name) {
            return Err(UsageError(format!("label {:?} declared twice", l.name)));
        }
    }
    if labels.len() > 8 {
        return Err(UsageError("at most 8 labels per family".into()));
    }
    Ok(())
}

/// Declares a counter family: `usage.counter("name").label("collection", kind).build()`.
/// Declaring the same name again with the same labels returns the same family.
#[derive(Debug)]
pub struct CounterBuilder<'a> {
    usage: &'a Usage,
    name: String,
    help: String,
    labels: Vec<Label>,
    max_keys: usize,
}

impl CounterBuilder<'_> {
    /// The `# HELP` text.
    pub fn help(mut self, text: &str) -> Self {
        self.help = text.to_string();
        self
    }
    /// Adds a label, anonymized in reports by `kind`.
    pub fn label(mut self, name: &str, kind: PropertyKind) -> Self {
        self.labels.push(Label {
            name: name.to_string(),
            kind,
        });
        self
    }
    /// Most label sets kept (default 1024); later new ones share an overflow key.
    pub fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = n.max(1);
        self
    }
    /// Registers the family.
    pub fn build(self) -> Result<CounterFamily, UsageError> {
        check_name(&self.name)?;
        check_labels(&self.labels)?;
        let shared = &self.usage.shared;
        if shared
            .timings
            .read()
            .is_ok_and(|t| t.contains_key(&self.name))
        {
            return Err(UsageError(format!(
                "{:?} is already a timing family",
                self.name
            )));
        }
        let mut counters = shared.counters.write().unwrap_or_else(|p| p.into_inner());
        let data = match counters.get(&self.name) {
            Some(existing) if existing.shape.labels == self.labels => existing.clone(),
            Some(_) => {
                return Err(UsageError(format!(
                    "counter {:?} is already declared with other labels",
                    self.name
                )))
            }
            None => {
                let data = Arc::new(CounterData {
                    table: LabelTable::new(self.labels.len(), self.max_keys),
                    shape: FamilyShape {
                        name: self.name.clone(),
                        help: self.help,
                        labels: self.labels,
                    },
                    single: Arc::new(AtomicU64::new(0)),
                });
                counters.insert(self.name, data.clone());
                data
            }
        };
        drop(counters);
        Ok(CounterFamily {
            data,
            activation: shared.activation.clone(),
        })
    }
}

/// Declares a timing family: `usage.timing("name").label("route", kind).build()`.
/// Declaring the same name again with the same labels and bounds returns the same family.
#[derive(Debug)]
pub struct TimingBuilder<'a> {
    usage: &'a Usage,
    name: String,
    help: String,
    labels: Vec<Label>,
    bounds: Vec<Duration>,
    max_keys: usize,
}

impl TimingBuilder<'_> {
    /// The `# HELP` text.
    pub fn help(mut self, text: &str) -> Self {
        self.help = text.to_string();
        self
    }
    /// Adds a label, anonymized in reports by `kind`.
    pub fn label(mut self, name: &str, kind: PropertyKind) -> Self {
        self.labels.push(Label {
            name: name.to_string(),
            kind,
        });
        self
    }
    /// Histogram bucket bounds, increasing, at most [`timing::MAX_BOUNDS`] (default
    /// [`DEFAULT_BOUNDS`], Qdrant's).
    pub fn bounds(mut self, bounds: &[Duration]) -> Self {
        self.bounds = bounds.to_vec();
        self
    }
    /// Most label sets kept (default 1024); later new ones share an overflow key.
    pub fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = n.max(1);
        self
    }
    /// Registers the family.
    pub fn build(self) -> Result<TimingFamily, UsageError> {
        check_name(&self.name)?;
        check_labels(&self.labels)?;
        if self.bounds.is_empty()
            || self.bounds.len() > timing::MAX_BOUNDS
            || self.bounds.windows(2).any(|w| w[0] >= w[1])
            || self.bounds[0].is_zero()
        {
            return Err(UsageError(format!(
                "bounds of {:?} must be 1 to {} increasing, positive durations",
                self.name,
                timing::MAX_BOUNDS
            )));
        }
        let bounds: Arc<[u64]> = self
            .bounds
            .iter()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .collect();
        let shared = &self.usage.shared;
        if shared
            .counters
            .read()
            .is_ok_and(|c| c.contains_key(&self.name))
        {
            return Err(UsageError(format!(
                "{:?} is already a counter family",
                self.name
            )));
        }
        let mut timings = shared.timings.write().unwrap_or_else(|p| p.into_inner());
        let data = match timings.get(&self.name) {
            Some(e) if e.shape.labels == self.labels && e.bounds == bounds => e.clone(),
            Some(_) => {
                return Err(UsageError(format!(
                    "timing {:?} is already declared with other labels or bounds",
                    self.name
                )))
            }
            None => {
                let data = Arc::new(TimingData {
                    table: LabelTable::new(self.labels.len(), self.max_keys),
                    shape: FamilyShape {
                        name: self.name.clone(),
                        help: self.help,
                        labels: self.labels,
                    },
                    bounds,
                    single: Arc::new(timing::TimingCell::default()),
                });
                timings.insert(self.name, data.clone());
                data
            }
        };
        drop(timings);
        Ok(TimingFamily {
            data,
            activation: shared.activation.clone(),
        })
    }
}

/// A declared counter family: gives a [`Counter`] per label set.
#[derive(Debug, Clone)]
pub struct CounterFamily {
    data: Arc<CounterData>,
    activation: Arc<Activation>,
}

impl CounterFamily {
    /// The counter of a family without labels.
    pub fn handle(&self) -> Counter {
        self.with(&[]).unwrap_or_else(|_| Counter {
            // A labeled family asked for its unlabeled handle: the overflow key takes it,
            // so nothing panics and the numbers stay visible.
            cell: self
                .data
                .table
                .get_or_insert(&vec![labels::OVERFLOW_LABEL; self.data.table.arity()])
                .clone(),
            activation: self.activation.clone(),
        })
    }

    /// Adds `n` to one label set's counter without making a handle.
    pub fn add(&self, values: &[&str], n: u64) -> Result<(), UsageError> {
        let cell = pick_ref(
            &self.data.shape,
            values,
            &self.data.single,
            &self.data.table,
        )?;
        self.activation.touch();
        cell.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The counter of one label set, in the declared order (made on first use).
    pub fn with(&self, values: &[&str]) -> Result<Counter, UsageError> {
        let cell = pick(
            &self.data.shape,
            values,
            &self.data.single,
            &self.data.table,
        )?;
        Ok(Counter {
            cell,
            activation: self.activation.clone(),
        })
    }
}

/// A declared timing family: gives a [`Timing`] per label set.
#[derive(Debug, Clone)]
pub struct TimingFamily {
    data: Arc<TimingData>,
    activation: Arc<Activation>,
}

impl TimingFamily {
    /// The timing of a family without labels.
    pub fn handle(&self) -> Timing {
        self.with(&[]).unwrap_or_else(|_| {
            let overflow = vec![labels::OVERFLOW_LABEL; self.data.table.arity()];
            self.timing(self.data.table.get_or_insert(&overflow).clone())
        })
    }

    /// The timing of one label set, in the declared order (made on first use).
    pub fn with(&self, values: &[&str]) -> Result<Timing, UsageError> {
        let cell = pick(
            &self.data.shape,
            values,
            &self.data.single,
            &self.data.table,
        )?;
        Ok(self.timing(cell))
    }

    /// Records one operation of a label set that worked, without making a handle: for
    /// hosts that learn a label (the status) only when the operation ends.
    ///
    /// ```
    /// # use telemetry_core::{anonymize::PropertyKind, usage::Usage};
    /// # let usage = Usage::standalone("myapp", "1.0");
    /// let rest = usage.timing("rest").label("status", PropertyKind::Safe).build().unwrap();
    /// rest.record(&["200"], std::time::Duration::from_millis(2)).unwrap();
    /// assert_eq!(rest.with(&["200"]).unwrap().snapshot().count, 1);
    /// ```
    pub fn record(&self, values: &[&str], elapsed: Duration) -> Result<(), UsageError> {
        let cell = pick_ref(
            &self.data.shape,
            values,
            &self.data.single,
            &self.data.table,
        )?;
        self.activation.touch();
        let end = std::time::Instant::now();
        timing::record_into(cell, elapsed, &self.data.bounds, end);
        Ok(())
    }

    /// Counts one failed operation of a label set, without making a handle.
    pub fn record_failure(&self, values: &[&str]) -> Result<(), UsageError> {
        let cell = pick_ref(
            &self.data.shape,
            values,
            &self.data.single,
            &self.data.table,
        )?;
        self.activation.touch();
        timing::fail_into(cell, std::time::Instant::now());
        Ok(())
    }

    fn timing(&self, cell: Arc<timing::TimingCell>) -> Timing {
        Timing {
            cell,
            bounds: self.data.bounds.clone(),
            activation: self.activation.clone(),
        }
    }
}

fn pick<C: Default>(
    shape: &FamilyShape,
    values: &[&str],
    single: &Arc<C>,
    table: &LabelTable<C>,
) -> Result<Arc<C>, UsageError> {
    pick_ref(shape, values, single, table).cloned()
}

fn pick_ref<'a, C: Default>(
    shape: &FamilyShape,
    values: &[&str],
    single: &'a Arc<C>,
    table: &'a LabelTable<C>,
) -> Result<&'a Arc<C>, UsageError> {
    if values.len() != shape.labels.len() {
        return Err(UsageError(format!(
            "{} takes {} label value(s) ({}), got {}",
            shape.name,
            shape.labels.len(),
            shape
                .labels
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            values.len()
        )));
    }
    if values.is_empty() {
        return Ok(single);
    }
    Ok(table.get_or_insert(values))
}
