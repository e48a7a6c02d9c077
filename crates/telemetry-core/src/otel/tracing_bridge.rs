//! `tracing` spans exported through a client's tracer: the idiomatic bridge for Rust
//! services, built on the `tracing-opentelemetry` layer. Levels map to granularities:
//! `ERROR`, `WARN` and `INFO` spans are operations, `DEBUG` spans segments, `TRACE` spans
//! everything else; spans finer than the configured granularity are not recorded.

use tracing::Level;
use tracing_subscriber::filter::{FilterFn, Filtered};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::{Granularity, Tracer};

/// The granularity a `tracing` span of `level` is declared at.
///
/// ```
/// use telemetry_core::otel::{granularity_of_level, Granularity};
/// assert_eq!(granularity_of_level(&tracing::Level::INFO), Granularity::Operation);
/// assert_eq!(granularity_of_level(&tracing::Level::TRACE), Granularity::All);
/// ```
pub fn granularity_of_level(level: &Level) -> Granularity {
    if *level <= Level::INFO {
        Granularity::Operation
    } else if *level == Level::DEBUG {
        Granularity::OperationAndSegment
    } else {
        Granularity::All
    }
}

/// The layer [`Tracer::tracing_layer`] returns.
pub type TracingLayer<S> = Filtered<
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>,
    FilterFn<LevelFilter>,
    S,
>;

/// The filter of [`TracingLayer`]: a plain function pointer, so the layer's type can be
/// named.
pub type LevelFilter = fn(&tracing::Metadata<'_>) -> bool;

impl Tracer {
    /// A `tracing-subscriber` layer that records `tracing` spans (and the events inside
    /// them, as span events) with this tracer; `None` when nothing is recorded, which
    /// `tracing-subscriber` accepts as a layer that does nothing.
    ///
    /// ```
    /// use tracing_subscriber::layer::SubscriberExt;
    /// let tracer = telemetry_core::otel::Tracer::disabled();
    /// let subscriber = tracing_subscriber::registry().with(tracer.tracing_layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let _span = tracing::info_span!("collection.add", ids_count = 3).entered();
    /// });
    /// ```
    pub fn tracing_layer<S>(&self) -> Option<TracingLayer<S>>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let sdk = self.sdk_tracer()?;
        // A function pointer cannot capture the configured granularity: each level's
        // verdict is one of four, chosen here.
        let filter: LevelFilter = match self.granularity() {
            Granularity::All => |_| true,
            Granularity::OperationAndSegment => |m| *m.level() <= Level::DEBUG,
            Granularity::Operation => |m| *m.level() <= Level::INFO,
            Granularity::None => |_| false,
        };
        let filter = FilterFn::new(filter);
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(sdk)
                .with_filter(filter),
        )
    }
}
