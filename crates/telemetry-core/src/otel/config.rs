//! Where traces go and which spans are kept: the `<PREFIX>_OTEL_*` variables of the
//! product, the standard `OTEL_*` ones, and settings in code, resolved into one
//! [`OtelConfig`].
//!
//! Precedence, for every setting: **code beats the environment; the product's variable
//! beats the standard one; a signal-specific standard variable beats the generic one.**
//! An empty value counts as unset. A value that cannot be understood is a warning that
//! names the variable and the value; resolving never fails and never panics.
//!
//! ```
//! use telemetry_core::env::MapEnvironment;
//! use telemetry_core::otel::{config, Granularity, OtelSettings, Protocol};
//! use telemetry_core::profile::Profile;
//!
//! let env = MapEnvironment::new()
//!     .with("CHROMA_OTEL_COLLECTION_ENDPOINT", "http://otel:4317")
//!     .with("CHROMA_OTEL_COLLECTION_HEADERS", r#"{"x-honeycomb-team": "abc"}"#);
//! let c = config::resolve(&Profile::Chroma, "1.0.0", &OtelSettings::default(), &env);
//! assert_eq!(c.endpoint.as_deref(), Some("http://otel:4317"));
//! assert_eq!(c.protocol, Protocol::Grpc); // Chroma's exporter speaks gRPC
//! assert_eq!(c.granularity, Granularity::Operation); // an endpoint means tracing is on
//! assert_eq!(c.service_name, "chromadb");
//! assert!(c.warnings.is_empty());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::Granularity;
use crate::env::Environment;
use crate::profile::{env_prefix, Profile};
use crate::tls::{CaFile, TlsRoots, Trust};

/// Observability settings made in code (Python `Settings(chroma_otel_*=...)`, Go options,
/// [`crate::ClientBuilder::otel`]); each one set beats every variable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtelSettings {
    /// Where traces go; read like `<PREFIX>_OTEL_COLLECTION_ENDPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `service.name` of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Headers sent with every export request (an API key for a hosted backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// `none`, `operation`, `operation_and_segment` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<String>,
    /// `grpc`, `http/protobuf` or `http/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// A sampler name as `OTEL_TRACES_SAMPLER` takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
    /// The sampler's argument (the ratio of `traceidratio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_arg: Option<String>,
    /// More resource attributes; they beat `OTEL_RESOURCE_ATTRIBUTES` key by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: BTreeMap<String, String>,
    /// `Some(true)` turns tracing off whatever the environment says (like `OTEL_SDK_DISABLED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// `gzip` (the default) or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Spans held for export at most; more are dropped and counted. Default 2048.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue_size: Option<usize>,
    /// Spans per export request at most. Default 512.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_export_batch_size: Option<usize>,
    /// How long a span waits for its batch to fill, in milliseconds. Default 5000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_delay_ms: Option<u64>,
    /// One export request's timeout, retries included, in milliseconds. Default 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_timeout_ms: Option<u64>,
}

/// How spans are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// OTLP over gRPC (HTTP/2), the collector's port 4317.
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP over HTTP with protobuf bodies, port 4318.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// OTLP over HTTP with JSON bodies.
    #[serde(rename = "http/json")]
    HttpJson,
}

impl Protocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }

    fn parse(raw: &str) -> Option<Protocol> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "grpc" => Some(Protocol::Grpc),
            "http/protobuf" | "http/proto" => Some(Protocol::HttpProtobuf),
            "http/json" => Some(Protocol::HttpJson),
            _ => None,
        }
    }
}

/// Which traces are kept, decided once per trace at its root (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sampler {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// A share of traces, chosen by trace id so every process agrees.
    TraceIdRatio {
        /// Between 0 and 1.
        ratio: f64,
    },
    /// Follow the parent's decision; a root uses the inner sampler.
    ParentBased {
        /// What decides for a root span.
        root: RootSampler,
    },
}

/// The sampler a [`Sampler::ParentBased`] uses for root spans.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RootSampler {
    /// Keep every root.
    AlwaysOn,
    /// Keep none.
    AlwaysOff,
    /// Keep a share, by trace id.
    TraceIdRatio {
        /// Between 0 and 1.
        ratio: f64,
    },
}

impl Sampler {
    /// Whether a span with this trace id is kept, given the parent's sampled flag (`None`
    /// for a root). The ratio rule is the specification's: the trace id's last 8 bytes,
    /// big-endian and shifted right once, below `ratio × 2^63`, so the Go and Python
    /// bindings decide identically.
    ///
    /// ```
    /// use telemetry_core::otel::config::Sampler;
    /// let half = Sampler::TraceIdRatio { ratio: 0.5 };
    /// let mut id = [0u8; 16];
    /// assert!(half.should_sample(&id, None));
    /// id[8] = 0xff;
    /// assert!(!half.should_sample(&id, None));
    /// ```
    pub fn should_sample(&self, trace_id: &[u8; 16], parent_sampled: Option<bool>) -> bool {
        match *self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::TraceIdRatio { ratio } => ratio_keeps(ratio, trace_id),
            Sampler::ParentBased { root } => match parent_sampled {
                Some(sampled) => sampled,
                None => match root {
                    RootSampler::AlwaysOn => true,
                    RootSampler::AlwaysOff => false,
                    RootSampler::TraceIdRatio { ratio } => ratio_keeps(ratio, trace_id),
                },
            },
        }
    }
}

fn ratio_keeps(ratio: f64, trace_id: &[u8; 16]) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    (u64::from_be_bytes(low) >> 1) < bound
}

/// Where a resolved setting came from, for `telemetry status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Origin {
    /// A setting in the product's code.
    Code,
    /// The environment variable named.
    Env(String),
    /// Nothing said anything.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Code => f.write_str("set in code"),
            Origin::Env(name) => write!(f, "from {name}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// The observability configuration a client uses, with where each part came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OtelConfig {
    /// The URL export requests go to (`/v1/traces` already appended for HTTP where the
    /// rules say so); `None` means nothing is exported and no span is recorded.
    pub endpoint: Option<String>,
    /// How spans are sent.
    pub protocol: Protocol,
    /// Headers sent with every export request, in order.
    pub headers: Vec<(String, String)>,
    /// `service.name`.
    pub service_name: String,
    /// Resource attributes other than `service.name`, sorted by key.
    pub resource: BTreeMap<String, String>,
    /// Spans declared finer than this are not recorded.
    pub granularity: Granularity,
    /// Which traces are kept.
    pub sampler: Sampler,
    /// Tracing turned off altogether (`OTEL_SDK_DISABLED=true` or in code).
    pub disabled: bool,
    /// Whether request bodies are gzipped.
    pub gzip: bool,
    /// Spans held for export at most.
    pub max_queue_size: usize,
    /// Spans per export request at most.
    pub max_export_batch_size: usize,
    /// How long a span waits for its batch.
    #[serde(with = "millis")]
    pub schedule_delay: Duration,
    /// One export's time budget, retries included.
    #[serde(with = "millis")]
    pub export_timeout: Duration,
    /// CA certificates trusted for HTTPS exports besides `tls_roots`' (a PEM file:
    /// `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CERTIFICATE`, else the
    /// client's `ca_file`).
    pub certificate: Option<CaFile>,
    /// The roots exports start from: the client's `tls_roots`.
    pub tls_roots: TlsRoots,
    /// Where each setting came from, by setting name.
    pub origins: BTreeMap<&'static str, Origin>,
    /// Values that could not be understood, each naming its variable and value.
    pub warnings: Vec<String>,
}

mod millis {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

impl OtelConfig {
    /// Whether spans are recorded at all: an endpoint, not disabled, granularity above
    /// `none`.
    pub fn is_active(&self) -> bool {
        self.endpoint.is_some() && !self.disabled && self.granularity != Granularity::None
    }

    /// The configuration as `telemetry status --json` shows it: header values hidden.
    ///
    /// ```
    /// use telemetry_core::env::MapEnvironment;
    /// use telemetry_core::otel::{config, OtelSettings};
    /// use telemetry_core::profile::Profile;
    /// let env = MapEnvironment::new()
    ///     .with("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    ///     .with("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret");
    /// let c = config::resolve(&Profile::Qdrant, "1.0", &OtelSettings::default(), &env);
    /// let shown = c.to_status_json().to_string();
    /// assert!(shown.contains("api-key") && !shown.contains("secret"));
    /// ```
    pub fn to_status_json(&self) -> Value {
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        json!({
            "active": self.is_active(),
            "endpoint": self.endpoint,
            "protocol": self.protocol.as_str(),
            "headers": headers,
            "service_name": self.service_name,
            "granularity": self.granularity.as_str(),
            "sampler": self.sampler,
            "disabled": self.disabled,
            "compression": if self.gzip { "gzip" } else { "none" },
            "certificate": self.certificate,
            "tls_roots": self.tls_roots,
            "origins": self.origins,
            "warnings": self.warnings,
        })
    }

    /// The configuration as `telemetry status` prints it, one line per setting.
    pub fn describe(&self) -> String {
        let origin = |key: &str| {
            self.origins
                .get(key)
                .map(|o| format!(" ({o})"))
                .unwrap_or_default()
        };
        let mut out = String::new();
        let state = if self.disabled {
            "off: disabled".to_string()
        } else if self.endpoint.is_none() {
            "off: no endpoint configured".to_string()
        } else if self.granularity == Granularity::None {
            "off: granularity none".to_string()
        } else {
            "on".to_string()
        };
        out.push_str(&format!("traces: {state}\n"));
        match &self.endpoint {
            Some(e) => out.push_str(&format!(
                "  endpoint: {e} over {}{}\n",
                self.protocol.as_str(),
                origin("endpoint")
            )),
            None => out.push_str("  endpoint: none\n"),
        }
        out.push_str(&format!(
            "  service name: {}{}\n",
            self.service_name,
            origin("service_name")
        ));
        out.push_str(&format!(
            "  granularity: {}{}\n",
            self.granularity.as_str(),
            origin("granularity")
        ));
        if let Some(file) = &self.certificate {
            out.push_str(&format!(
                "  certificate: {}, added to the {} roots{}\n",
                file.path().display(),
                self.tls_roots,
                origin("certificate")
            ));
        } else if self.tls_roots != TlsRoots::Bundled {
            out.push_str(&format!("  trusted roots: {}\n", self.tls_roots));
        }
        if !self.headers.is_empty() {
            let names: Vec<String> = self
                .headers
                .iter()
                .map(|(k, _)| format!("{k}=<hidden>"))
                .collect();
            out.push_str(&format!(
                "  headers: {}{}\n",
                names.join(", "),
                origin("headers")
            ));
        }
        for w in &self.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
        out
    }
}

/// The standard variables read, besides the product's four.
pub const STANDARD_VARIABLES: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
];

/// The prefix of a profile's `*_OTEL_*` variables: `CHROMA_` for Chroma, `QDRANT_` for
/// Qdrant, `MY_TOOL_` for a generic `my-tool`.
///
/// ```
/// use telemetry_core::profile::Profile;
/// assert_eq!(telemetry_core::otel::config::variable_prefix(&Profile::Chroma), "CHROMA_");
/// ```
pub fn variable_prefix(profile: &Profile) -> String {
    format!("{}_", env_prefix(profile.name()))
}

/// The `service.name` used when nothing sets one: `chromadb` for Chroma (its default),
/// the product's name otherwise.
pub fn default_service_name(profile: &Profile, product: &str) -> String {
    match profile {
        Profile::Chroma => "chromadb".to_string(),
        _ if !product.is_empty() => product.to_string(),
        _ => profile.name().to_string(),
    }
}

/// Where the endpoint came from, which decides its default protocol and path rule.
#[derive(Clone, Copy, PartialEq)]
enum EndpointKind {
    /// Code or the product's variable: a base URL; Chroma's exporter speaks gRPC.
    Product,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: a base URL, `http/protobuf` by default.
    StandardBase,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: used as given.
    StandardTraces,
}

struct Reader<'a> {
    env: &'a dyn Environment,
    warnings: Vec<String>,
    origins: BTreeMap<&'static str, Origin>,
}

impl Reader<'_> {
    /// A variable's value; empty (after trimming) and unset are the same; a value that
    /// is not UTF-8 is a warning.
    fn var(&mut self, name: &str) -> Option<String> {
        let raw = self.env.var_os(name)?;
        match raw.into_string() {
            Ok(v) if v.trim().is_empty() => None,
            Ok(v) => Some(v.trim().to_string()),
            Err(_) => {
                self.warnings
                    .push(format!("{name} is not valid UTF-8; it is ignored"));
                None
            }
        }
    }

    fn warn(&mut self, text: String) {
        self.warnings.push(text);
    }
}

/// Resolves the observability configuration for `profile` from the settings in code and
/// the environment. Never fails: what cannot be read is a warning and the default.
pub fn resolve(
    profile: &Profile,
    product: &str,
    settings: &OtelSettings,
    env: &dyn Environment,
) -> OtelConfig {
    resolve_with_trust(profile, product, settings, env, &Trust::default())
}

/// [`resolve`] for a client whose own TLS settings are `client`: exports start from its
/// `tls_roots`, and its `ca_file` is their certificate when neither
/// `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE` nor `OTEL_EXPORTER_OTLP_CERTIFICATE` names a
/// readable one (those are the operator's, for the operator's collector, so they beat the
/// product's setting for its telemetry endpoint).
///
/// ```
/// use telemetry_core::env::MapEnvironment;
/// use telemetry_core::otel::{config, OtelSettings};
/// use telemetry_core::profile::Profile;
/// use telemetry_core::tls::Trust;
/// let env = MapEnvironment::new()
///     .with("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel.corp.internal:4318")
///     .with("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/missing/ca.pem");
/// let c = config::resolve_with_trust(&Profile::Qdrant, "q", &OtelSettings::default(), &env, &Trust::default());
/// assert!(c.certificate.is_none()); // unreadable: a warning, and the bundled roots alone
/// assert!(c.warnings[0].contains("OTEL_EXPORTER_OTLP_CERTIFICATE"));
/// ```
pub fn resolve_with_trust(
    profile: &Profile,
    product: &str,
    settings: &OtelSettings,
    env: &dyn Environment,
    client: &Trust,
) -> OtelConfig {
    let prefix = variable_prefix(profile);
    let var_endpoint = format!("{prefix}OTEL_COLLECTION_ENDPOINT");
    let var_service = format!("{prefix}OTEL_SERVICE_NAME");
    let var_headers = format!("{prefix}OTEL_COLLECTION_HEADERS");
    let var_granularity = format!("{prefix}OTEL_GRANULARITY");
    let mut r = Reader {
        env,
        warnings: Vec::new(),
        origins: BTreeMap::new(),
    };

    // Disabled: code, then OTEL_SDK_DISABLED (only "true" turns it off, per the spec).
    let disabled = if let Some(d) = settings.disabled {
        r.origins.insert("disabled", Origin::Code);
        d
    } else if let Some(v) = r.var("OTEL_SDK_DISABLED") {
        r.origins
            .insert("disabled", Origin::Env("OTEL_SDK_DISABLED".into()));
        match v.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                r.warn(format!(
                    "OTEL_SDK_DISABLED={v:?} is neither true nor false; tracing stays enabled"
                ));
                false
            }
        }
    } else {
        r.origins.insert("disabled", Origin::Default);
        false
    };

    // Endpoint: code, the product's variable, the traces variable, the generic one.
    let mut endpoint: Option<(String, EndpointKind)> = None;
    let code_endpoint = settings
        .endpoint
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    if let Some(e) = code_endpoint {
        if let Some(url) = checked_url(&mut r, "the endpoint set in code", e) {
            r.origins.insert("endpoint", Origin::Code);
            endpoint = Some((url, EndpointKind::Product));
        }
    }
    for (name, kind) in [
        (var_endpoint.as_str(), EndpointKind::Product),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            EndpointKind::StandardTraces,
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", EndpointKind::StandardBase),
    ] {
        if endpoint.is_some() {
            break;
        }
        if let Some(v) = r.var(name) {
            if let Some(url) = checked_url(&mut r, name, &v) {
                r.origins.insert("endpoint", Origin::Env(name.to_string()));
                endpoint = Some((url, kind));
            }
        }
    }

    // Protocol: code, the traces variable, the generic one; else by the endpoint's kind.
    let mut protocol = None;
    if let Some(p) = settings
        .protocol
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        match Protocol::parse(p) {
            Some(p) => {
                r.origins.insert("protocol", Origin::Code);
                protocol = Some(p);
            }
            None => r.warn(format!(
                "the protocol set in code, {p:?}, is not grpc, http/protobuf or http/json; it is ignored"
            )),
        }
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if protocol.is_some() {
            break;
        }
        if let Some(v) = r.var(name) {
            match Protocol::parse(&v) {
                Some(p) => {
                    r.origins.insert("protocol", Origin::Env(name.to_string()));
                    protocol = Some(p);
                }
                None => r.warn(format!(
                    "{name}={v:?} is not grpc, http/protobuf or http/json; it is ignored"
                )),
            }
        }
    }
    let protocol = protocol.unwrap_or_else(|| {
        r.origins.insert("protocol", Origin::Default);
        match endpoint.as_ref().map(|e| e.1) {
            Some(EndpointKind::Product) => Protocol::Grpc,
            _ => Protocol::HttpProtobuf,
        }
    });
    let endpoint = endpoint.map(|(url, kind)| export_url(&url, kind, protocol));
    if endpoint.is_some() {
        let origin = r
            .origins
            .get("protocol")
            .cloned()
            .unwrap_or(Origin::Default);
        if let Some(w) = grpc_unavailable(protocol, &origin, cfg!(feature = "grpc")) {
            r.warn(w);
        }
    }

    // Certificate: the traces variable, the generic one, the client's ca_file. Read only
    // when there is somewhere to export to; an unreadable file is a warning and the next
    // source applies.
    let mut certificate = None;
    if endpoint.is_some() {
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
        ] {
            if certificate.is_some() {
                break;
            }
            if let Some(v) = r.var(name) {
                match CaFile::load(&v) {
                    Ok(file) => {
                        r.origins
                            .insert("certificate", Origin::Env(name.to_string()));
                        certificate = Some(file);
                    }
                    Err(e) => r.warn(format!("{name}={v:?}: {e}; it is not used")),
                }
            }
        }
        if certificate.is_none() {
            if let Some(file) = &client.extra {
                r.origins.insert("certificate", Origin::Code);
                certificate = Some(file.clone());
            }
        }
    }

    // Headers: the first source that is set wins whole.
    let mut headers = None;
    if let Some(h) = &settings.headers {
        r.origins.insert("headers", Origin::Code);
        headers = Some(checked_headers(
            &mut r,
            "headers set in code",
            h.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ));
    }
    if headers.is_none() {
        if let Some(v) = r.var(&var_headers) {
            match serde_json::from_str::<BTreeMap<String, Value>>(&v) {
                Ok(map) => {
                    let mut pairs = Vec::new();
                    let mut bad = Vec::new();
                    for (k, val) in map {
                        match val {
                            Value::String(s) => pairs.push((k, s)),
                            Value::Number(_) | Value::Bool(_) => pairs.push((k, val.to_string())),
                            _ => bad.push(format!("{k:?}")),
                        }
                    }
                    // Header values are secrets (API keys): warnings name headers, never
                    // show values.
                    if !bad.is_empty() {
                        r.warn(format!(
                            "{var_headers} has headers whose value is not a string ({}); they are ignored",
                            bad.join(", ")
                        ));
                    }
                    r.origins.insert("headers", Origin::Env(var_headers.clone()));
                    headers = Some(checked_headers(&mut r, &var_headers, pairs));
                }
                // Not `{e}`: serde_json's message quotes the value it did not expect.
                Err(e) => r.warn(format!(
                    "{var_headers} is not a JSON object of strings ({} error at line {} column {}; the value is not shown, it may hold secrets); no headers are sent from it",
                    match e.classify() {
                        serde_json::error::Category::Data => "type",
                        _ => "syntax",
                    },
                    e.line(),
                    e.column()
                )),
            }
        }
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ] {
        if headers.is_some() {
            break;
        }
        if let Some(v) = r.var(name) {
            let pairs = parse_key_values(&mut r, name, &v, Shown::No);
            r.origins.insert("headers", Origin::Env(name.to_string()));
            headers = Some(checked_headers(&mut r, name, pairs));
        }
    }
    let headers = headers.unwrap_or_default();

    // Resource attributes, then service.name on top of them.
    let mut resource = BTreeMap::new();
    if let Some(v) = r.var("OTEL_RESOURCE_ATTRIBUTES") {
        for (k, val) in parse_key_values(&mut r, "OTEL_RESOURCE_ATTRIBUTES", &v, Shown::Yes) {
            resource.insert(k, val);
        }
    }
    for (k, v) in &settings.resource_attributes {
        resource.insert(k.clone(), v.clone());
    }
    let code_service = settings
        .service_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let service_name = if let Some(s) = code_service {
        r.origins.insert("service_name", Origin::Code);
        s
    } else if let Some(s) = r.var(&var_service) {
        r.origins
            .insert("service_name", Origin::Env(var_service.clone()));
        s
    } else if let Some(s) = r.var("OTEL_SERVICE_NAME") {
        r.origins
            .insert("service_name", Origin::Env("OTEL_SERVICE_NAME".into()));
        s
    } else if let Some(s) = resource.get("service.name").filter(|s| !s.is_empty()) {
        r.origins.insert(
            "service_name",
            Origin::Env("OTEL_RESOURCE_ATTRIBUTES".into()),
        );
        s.clone()
    } else {
        r.origins.insert("service_name", Origin::Default);
        default_service_name(profile, product)
    };
    resource.remove("service.name");

    // Granularity: code, the product's variable; else on with an endpoint, off without.
    let mut granularity = None;
    if let Some(g) = settings
        .granularity
        .as_deref()
        .filter(|g| !g.trim().is_empty())
    {
        match Granularity::parse(g) {
            Some(g) => {
                r.origins.insert("granularity", Origin::Code);
                granularity = Some(g);
            }
            None => r.warn(format!(
                "the granularity set in code, {g:?}, is not none, operation, operation_and_segment or all; the default is used"
            )),
        }
    }
    if granularity.is_none() {
        if let Some(v) = r.var(&var_granularity) {
            match Granularity::parse(&v) {
                Some(g) => {
                    r.origins
                        .insert("granularity", Origin::Env(var_granularity.clone()));
                    granularity = Some(g);
                }
                None => r.warn(format!(
                    "{var_granularity}={v:?} is not none, operation, operation_and_segment or all; the default is used"
                )),
            }
        }
    }
    let granularity = granularity.unwrap_or_else(|| {
        r.origins.insert("granularity", Origin::Default);
        if endpoint.is_some() {
            Granularity::Operation
        } else {
            Granularity::None
        }
    });

    let sampler = resolve_sampler(&mut r, settings);

    let compression = match settings.compression.as_deref() {
        Some(c) => Some((c.to_string(), "compression set in code".to_string())),
        None => [
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ]
        .iter()
        .find_map(|n| r.var(n).map(|v| (v, n.to_string()))),
    };
    let gzip = match compression {
        None => true,
        Some((v, from)) => match v.trim().to_ascii_lowercase().as_str() {
            "gzip" => true,
            "none" => false,
            _ => {
                r.warn(format!(
                    "{from}={v:?} is neither gzip nor none; gzip is used"
                ));
                true
            }
        },
    };

    let export_timeout = settings
        .export_timeout_ms
        .map(Duration::from_millis)
        .or_else(|| {
            number(&mut r, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
                .or_else(|| number(&mut r, "OTEL_EXPORTER_OTLP_TIMEOUT"))
                .map(Duration::from_millis)
        })
        .unwrap_or(Duration::from_secs(10));
    let max_queue_size = settings
        .max_queue_size
        .or_else(|| number(&mut r, "OTEL_BSP_MAX_QUEUE_SIZE").map(|n| n as usize))
        .unwrap_or(2048)
        .clamp(1, 1 << 20);
    let max_export_batch_size = settings
        .max_export_batch_size
        .or_else(|| number(&mut r, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE").map(|n| n as usize))
        .unwrap_or(512)
        .clamp(1, max_queue_size);
    let schedule_delay = settings
        .schedule_delay_ms
        .or_else(|| number(&mut r, "OTEL_BSP_SCHEDULE_DELAY"))
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(5));

    OtelConfig {
        endpoint,
        protocol,
        headers,
        service_name,
        resource,
        granularity,
        sampler,
        disabled,
        gzip,
        max_queue_size,
        max_export_batch_size,
        schedule_delay,
        export_timeout,
        certificate,
        tls_roots: client.roots,
        origins: r.origins,
        warnings: r.warnings,
    }
}

/// The warning for a gRPC export this build cannot make: the C library and the wheel leave
/// gRPC out unless built with the `grpc` feature. Said when the configuration is read (in
/// `telemetry status` and the trace configuration), not only as each export fails.
fn grpc_unavailable(protocol: Protocol, origin: &Origin, grpc_compiled: bool) -> Option<String> {
    if protocol != Protocol::Grpc || grpc_compiled {
        return None;
    }
    let why = match origin {
        Origin::Default => "the default for the product's endpoint variable".to_string(),
        other => other.to_string(),
    };
    Some(format!(
        "the protocol is grpc ({why}), but this build of telemetry-core has no gRPC support \
         (the `grpc` feature): spans will not be exported; set \
         OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf and the collector's HTTP endpoint \
         (usually port 4318), or use a build with gRPC"
    ))
}

fn number(r: &mut Reader<'_>, name: &str) -> Option<u64> {
    let v = r.var(name)?;
    match v.parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            r.warn(format!(
                "{name}={v:?} is not a whole number; the default is used"
            ));
            None
        }
    }
}

fn resolve_sampler(r: &mut Reader<'_>, settings: &OtelSettings) -> Sampler {
    let default = Sampler::ParentBased {
        root: RootSampler::AlwaysOn,
    };
    let (name, from) = match settings.sampler.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => (s.trim().to_string(), "the sampler set in code".to_string()),
        None => match r.var("OTEL_TRACES_SAMPLER") {
            Some(v) => (v, "OTEL_TRACES_SAMPLER".to_string()),
            None => return default,
        },
    };
    let (arg, arg_from) = match settings
        .sampler_arg
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        Some(a) => (
            Some(a.trim().to_string()),
            "the sampler argument set in code",
        ),
        None => (r.var("OTEL_TRACES_SAMPLER_ARG"), "OTEL_TRACES_SAMPLER_ARG"),
    };
    let mut ratio = || -> f64 {
        match arg.as_deref() {
            None => 1.0,
            Some(a) => match a.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => x,
                _ => {
                    r.warn(format!(
                        "{arg_from}={a:?} is not a ratio between 0 and 1; 1.0 is used"
                    ));
                    1.0
                }
            },
        }
    };
    match name.to_ascii_lowercase().as_str() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatio { ratio: ratio() },
        "parentbased_always_on" => default,
        "parentbased_always_off" => Sampler::ParentBased {
            root: RootSampler::AlwaysOff,
        },
        "parentbased_traceidratio" => Sampler::ParentBased {
            root: RootSampler::TraceIdRatio { ratio: ratio() },
        },
        _ => {
            r.warn(format!(
                "{from}={name:?} is not a sampler this library knows; parentbased_always_on is used"
            ));
            default
        }
    }
}

/// An endpoint as given, with `http://` added when it names no scheme (Chroma's docs show
/// `http://localhost:4317`, but `localhost:4317` is what gRPC users often write). `None`,
/// with a warning, when it is not a URL a request can go to.
fn checked_url(r: &mut Reader<'_>, from: &str, raw: &str) -> Option<String> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let ok = match with_scheme.split_once("://") {
        Some((scheme, rest)) => {
            matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
                && !rest.is_empty()
                && !rest.starts_with('/')
                && with_scheme
                    .parse::<ureq::http::Uri>()
                    .is_ok_and(|uri| uri.authority().is_some_and(reachable_authority))
        }
        None => false,
    };
    if ok {
        Some(with_scheme)
    } else {
        r.warn(format!(
            "{from}={raw:?} is not an http or https URL; no endpoint is set from it"
        ));
        None
    }
}

/// Whether an authority names somewhere a request can go: a host (the URI grammar allows
/// `http://:4318`, which no client can connect to) and, when a port is written, a number
/// that fits one (`http://host:z8` parses as a URI too).
fn reachable_authority(a: &ureq::http::uri::Authority) -> bool {
    let host = a.host();
    // What follows the host (after any `user@`): nothing, or `:` and the port. The port
    // is read from the text, because `Authority::port` is `None` for one that is no number.
    let host_port = a.as_str().rsplit('@').next().unwrap_or_default();
    let port_ok = match host_port.strip_prefix(host) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix(':')
            .is_some_and(|p| p.parse::<u16>().is_ok()),
        None => false,
    };
    !host.is_empty() && port_ok
}

/// The URL requests go to. HTTP: a base endpoint (code, the product's variable,
/// `OTEL_EXPORTER_OTLP_ENDPOINT`) gets `/v1/traces` appended to its path unless it
/// already ends so; `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as given. gRPC: as given.
fn export_url(url: &str, kind: EndpointKind, protocol: Protocol) -> String {
    if protocol == Protocol::Grpc || kind == EndpointKind::StandardTraces {
        return url.to_string();
    }
    // The path ends before a query or a fragment, which stay after it.
    let (base, rest) = url.split_at(url.find(['?', '#']).unwrap_or(url.len()));
    let trimmed = base.trim_end_matches('/');
    if trimmed.ends_with("/v1/traces") {
        return format!("{trimmed}{rest}");
    }
    format!("{trimmed}/v1/traces{rest}")
}

/// Whether a variable's entries may appear in a warning: resource attributes are shown
/// anyway, header values never are.
#[derive(Clone, Copy, PartialEq)]
enum Shown {
    Yes,
    No,
}

/// `k=v,k2=v2` with percent-encoded values, as `OTEL_EXPORTER_OTLP_HEADERS` and
/// `OTEL_RESOURCE_ATTRIBUTES` take them; an entry without `=` is a warning (quoting the
/// entry only when `shown`: a header entry without `=` may be a bare secret).
fn parse_key_values(
    r: &mut Reader<'_>,
    name: &str,
    raw: &str,
    shown: Shown,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, entry) in raw.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        match entry.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.push((percent_decode(k.trim()), percent_decode(v.trim())))
            }
            _ if shown == Shown::Yes => r.warn(format!(
                "{name} has {entry:?}, which is not key=value; it is ignored"
            )),
            _ => r.warn(format!(
                "{name}: entry {} is not key=value (not shown: header values are secrets); it is ignored",
                i + 1
            )),
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Keeps the headers an HTTP request can carry; warns about the others by name.
fn checked_headers(
    r: &mut Reader<'_>,
    from: &str,
    pairs: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        let name_ok = ureq::http::HeaderName::from_bytes(k.as_bytes()).is_ok();
        let value_ok = ureq::http::HeaderValue::from_str(&v).is_ok();
        if name_ok && value_ok {
            out.push((k.to_ascii_lowercase(), v));
        } else if name_ok {
            r.warn(format!(
                "{from} has header {k:?}, whose value is not a valid HTTP header value; it is not sent"
            ));
        } else {
            // An invalid name may be the whole header, secret included
            // (`Authorization: Bearer abc=` read as name `Authorization: Bearer abc`).
            r.warn(format!(
                "{from} has a header whose name is not a valid HTTP header name (not shown: it may hold its value; write name=value); it is not sent"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnvironment;

    fn chroma(env: MapEnvironment) -> OtelConfig {
        resolve(&Profile::Chroma, "chroma", &OtelSettings::default(), &env)
    }

    #[test]
    fn empty_endpoint_is_unset_and_nothing_is_active() {
        let c = chroma(MapEnvironment::new().with("CHROMA_OTEL_COLLECTION_ENDPOINT", "  "));
        assert_eq!(c.endpoint, None);
        assert_eq!(c.granularity, Granularity::None);
        assert!(!c.is_active());
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn standard_base_endpoint_gets_the_traces_path() {
        let c = chroma(MapEnvironment::new().with("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/"));
        assert_eq!(c.endpoint.as_deref(), Some("http://h:4318/v1/traces"));
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
    }

    #[test]
    fn an_endpoint_without_a_host_or_with_a_bad_port_is_a_warning() {
        // `http://:z8` came from the otel_config fuzz target: the URI grammar accepts it.
        for raw in [
            "http://:z8",
            "http://:4318",
            ":4318",
            "http://h:z8",
            "h:99999",
        ] {
            let c = chroma(MapEnvironment::new().with("OTEL_EXPORTER_OTLP_ENDPOINT", raw));
            assert_eq!(c.endpoint, None, "{raw:?} gave an endpoint");
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.contains("is not an http or https URL")),
                "{raw:?}: {:?}",
                c.warnings
            );
        }
        for (raw, url) in [
            ("h:4318", "http://h:4318/v1/traces"),
            ("https://u@h", "https://u@h/v1/traces"),
            ("http://[::1]:4318", "http://[::1]:4318/v1/traces"),
        ] {
            let c = chroma(MapEnvironment::new().with("OTEL_EXPORTER_OTLP_ENDPOINT", raw));
            assert_eq!(c.endpoint.as_deref(), Some(url), "{raw:?}");
        }
    }

    #[test]
    fn a_grpc_export_without_grpc_compiled_is_explained() {
        let w = grpc_unavailable(Protocol::Grpc, &Origin::Default, false).expect("a warning");
        assert!(
            w.contains("default for the product's endpoint variable"),
            "{w}"
        );
        assert!(
            w.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
            "{w}"
        );
        let env = Origin::Env("OTEL_EXPORTER_OTLP_PROTOCOL".into());
        let w = grpc_unavailable(Protocol::Grpc, &env, false).expect("a warning");
        assert!(w.contains("from OTEL_EXPORTER_OTLP_PROTOCOL"), "{w}");
        assert_eq!(
            grpc_unavailable(Protocol::Grpc, &Origin::Default, true),
            None
        );
        assert_eq!(
            grpc_unavailable(Protocol::HttpProtobuf, &Origin::Default, false),
            None
        );
        // The build's own answer: a Chroma-style endpoint warns exactly when gRPC is missing.
        let c =
            chroma(MapEnvironment::new().with("CHROMA_OTEL_COLLECTION_ENDPOINT", "http://h:4317"));
        assert_eq!(
            c.warnings.iter().any(|w| w.contains("no gRPC support")),
            !cfg!(feature = "grpc")
        );
    }

    /// Found by the otel_config fuzz target: warnings quoted header variables whole,
    /// secrets included (fuzz/regressions/otel_config/header-value-in-warning.bin), and
    /// invalid header names, which may be a whole `Name: value` header
    /// (`header-value-in-invalid-name.bin`).
    #[test]
    fn header_values_never_appear_in_warnings() {
        for (name, value) in [
            (
                "CHROMA_OTEL_COLLECTION_HEADERS",
                r#"{"api-key": ["s3cret"]}"#,
            ),
            ("CHROMA_OTEL_COLLECTION_HEADERS", r#"{"api-key": "s3cret""#),
            ("CHROMA_OTEL_COLLECTION_HEADERS", r#""s3cret""#),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a,s3cret"),
            // curl's syntax, with base64's padding: the name would be the secret.
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization: Bearer s3cret==",
            ),
        ] {
            let c = chroma(MapEnvironment::new().with(name, value));
            assert_eq!(c.warnings.len(), 1, "{name}={value}: {:?}", c.warnings);
            assert!(c.warnings[0].contains(name));
            assert!(
                !c.describe().contains("s3cret"),
                "{name}={value}: {}",
                c.describe()
            );
            assert!(!c.to_status_json().to_string().contains("s3cret"));
        }
        // Resource attributes are shown anyway; their warning quotes the entry.
        let c = chroma(MapEnvironment::new().with("OTEL_RESOURCE_ATTRIBUTES", "a=b,oops"));
        assert!(c.warnings[0].contains("\"oops\""));
    }

    /// Found by the otel_config fuzz target: `/v1/traces` went after the query
    /// (fuzz/regressions/otel_config/traces-path-after-query.bin).
    #[test]
    fn the_traces_path_goes_before_a_query() {
        for (given, sent) in [
            ("http://h:4318/?x=1", "http://h:4318/v1/traces?x=1"),
            (
                "http://h:4318/otlp?q=1#f",
                "http://h:4318/otlp/v1/traces?q=1#f",
            ),
            ("http://h:4318/v1/traces/?q", "http://h:4318/v1/traces?q"),
            ("http://h:4318#f", "http://h:4318/v1/traces#f"),
        ] {
            let c = chroma(MapEnvironment::new().with("OTEL_EXPORTER_OTLP_ENDPOINT", given));
            assert_eq!(c.endpoint.as_deref(), Some(sent), "{given}");
        }
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
    }
}
