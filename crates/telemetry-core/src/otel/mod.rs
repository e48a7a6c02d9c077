//! Observability: OpenTelemetry traces an operator sends to their own collector.
//!
//! This is not telemetry. Traces never go to the product's endpoint and the telemetry
//! opt-out does not touch them (nor they it): they are configured by the operator, with
//! the product's `<PREFIX>_OTEL_*` variables (Chroma's `CHROMA_OTEL_COLLECTION_ENDPOINT`,
//! `_SERVICE_NAME`, `_COLLECTION_HEADERS`, `_GRANULARITY`), the standard `OTEL_*` ones,
//! or settings in code ([`config`] has the precedence).
//!
//! Spans come from the [`Tracer`] API, from `tracing` spans through
//! [`Tracer::tracing_layer`], from the Go and Python bindings (one call per finished
//! span, [`wire`]), and join the host's current OpenTelemetry context. They are built by
//! the OpenTelemetry SDK (`opentelemetry_sdk`), queued by a bounded [`queue::SpanQueue`]
//! and exported over OTLP by [`export`]: HTTP (protobuf or JSON) through the core's ureq,
//! or gRPC through tonic on the export thread's own runtime. Nothing starts (no thread,
//! no socket) until a span is recorded with an endpoint configured.
//!
//! ```
//! use telemetry_core::env::MapEnvironment;
//! use telemetry_core::otel::{Granularity, OtelSettings, Tracer};
//! use telemetry_core::profile::Profile;
//!
//! // No endpoint: nothing is recorded, nothing starts, and the cost is one comparison.
//! let tracer = Tracer::new(&Profile::Chroma, "chroma", "1.0", "rust", &OtelSettings::default(), &MapEnvironment::new());
//! assert!(!tracer.is_recording(Granularity::Operation));
//! let n = tracer.in_span("collection.add", Granularity::Operation, |span| {
//!     span.set_attribute("ids_count", 3);
//!     3
//! });
//! assert_eq!(n, 3);
//! assert_eq!(tracer.stats().recorded, 0);
//! ```

pub mod config;
pub mod export;
#[cfg(feature = "grpc")]
mod grpc;
pub mod propagation;
pub mod queue;
mod tracer;
#[cfg(feature = "tracing")]
mod tracing_bridge;
pub mod wire;

pub use config::{OtelConfig, OtelSettings, Protocol};
pub use opentelemetry::trace::{SpanContext, SpanKind, Status};
pub use opentelemetry::{KeyValue, Value};
pub use queue::SpanStats;
pub use tracer::{EnteredSpan, Span, SpanBuilder, Tracer};
#[cfg(feature = "tracing")]
pub use tracing_bridge::{granularity_of_level, LevelFilter, TracingLayer};

use serde::{Deserialize, Serialize};

/// How fine the recorded spans are, Chroma's scale: a span declared at a finer
/// granularity than the configured one is not recorded.
///
/// ```
/// use telemetry_core::otel::Granularity;
/// assert!(Granularity::Operation.includes(Granularity::Operation));
/// assert!(!Granularity::Operation.includes(Granularity::OperationAndSegment));
/// assert_eq!(Granularity::parse("ALL"), Some(Granularity::All));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Granularity {
    /// No spans.
    None = 0,
    /// The public operations (`collection.add`, `query`).
    Operation = 1,
    /// Operations and the segments inside them.
    OperationAndSegment = 2,
    /// Everything, down to the finest helper.
    All = 3,
}

impl Granularity {
    /// Parses Chroma's names, case-insensitively (`operation_and_segment` also as
    /// `operation-and-segment`).
    pub fn parse(raw: &str) -> Option<Granularity> {
        match raw.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "none" => Some(Granularity::None),
            "operation" => Some(Granularity::Operation),
            "operation_and_segment" => Some(Granularity::OperationAndSegment),
            "all" => Some(Granularity::All),
            _ => None,
        }
    }

    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::None => "none",
            Granularity::Operation => "operation",
            Granularity::OperationAndSegment => "operation_and_segment",
            Granularity::All => "all",
        }
    }

    /// Whether a span declared at `declared` is recorded when this one is configured.
    /// A span declared at `None` never is.
    #[inline]
    pub fn includes(self, declared: Granularity) -> bool {
        declared != Granularity::None && declared <= self
    }

    /// The granularity for a numeric level (0–3), as the bindings pass it.
    pub fn from_level(level: u8) -> Option<Granularity> {
        match level {
            0 => Some(Granularity::None),
            1 => Some(Granularity::Operation),
            2 => Some(Granularity::OperationAndSegment),
            3 => Some(Granularity::All),
            _ => None,
        }
    }
}
