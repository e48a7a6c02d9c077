//! The span API: a [`Tracer`] per client, [`Span`]s started from it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, ContextGuard, KeyValue, Value};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData};
use opentelemetry_sdk::Resource;

use super::config::{self, OtelConfig, OtelSettings, RootSampler, Sampler};
use super::propagation;
use super::queue::{SpanQueue, SpanStats};
use super::Granularity;
use crate::env::Environment;
use crate::profile::Profile;

/// The instrumentation scope of spans made through this library.
const SCOPE: &str = "telemetry-core";

/// Makes spans and exports them to the operator's endpoint. Cheap to clone; clones share
/// one queue. Spans are only recorded when an endpoint is configured, tracing is not
/// disabled, and the span's granularity is included; otherwise every call is a no-op
/// that costs one comparison.
#[derive(Clone)]
pub struct Tracer {
    /// The configured granularity, or `None` when nothing is recorded (a copy of
    /// `inner.level`, kept inline so a filtered span costs no pointer chase).
    level: Granularity,
    inner: Arc<Inner>,
}

struct Inner {
    config: OtelConfig,
    /// The configured granularity, or `None` when nothing is recorded at all.
    level: Granularity,
    resource: Resource,
    /// Built with the first span: the SDK's provider and tracer, and the queue they feed.
    pipeline: OnceLock<Pipeline>,
}

struct Pipeline {
    // Held so the SDK tracer and the layers made from it share one provider.
    _provider: SdkTracerProvider,
    tracer: opentelemetry_sdk::trace::SdkTracer,
    queue: SpanQueue,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("endpoint", &self.inner.config.endpoint)
            .field("granularity", &self.inner.level)
            .finish()
    }
}

impl Tracer {
    /// A tracer for `product` at `version`, configured from `settings` and `env`
    /// ([`config::resolve`]); `language` goes into `telemetry.sdk.language` (`rust`,
    /// `go`, `python`). Warnings about bad values are logged once, here.
    pub fn new(
        profile: &Profile,
        product: &str,
        version: &str,
        language: &str,
        settings: &OtelSettings,
        env: &dyn Environment,
    ) -> Tracer {
        let config = config::resolve(profile, product, settings, env);
        for w in &config.warnings {
            log::warn!("telemetry: {w}");
        }
        Tracer::from_config(config, version, language)
    }

    /// A tracer for an already resolved configuration.
    pub fn from_config(config: OtelConfig, version: &str, language: &str) -> Tracer {
        let level = if config.is_active() {
            config.granularity
        } else {
            Granularity::None
        };
        let mut attributes = vec![
            KeyValue::new("service.name", config.service_name.clone()),
            KeyValue::new("telemetry.sdk.name", SCOPE),
            KeyValue::new("telemetry.sdk.language", language.to_string()),
            KeyValue::new("telemetry.sdk.version", crate::context::CORE_VERSION),
        ];
        if !version.is_empty() {
            attributes.push(KeyValue::new("service.version", version.to_string()));
        }
        for (k, v) in &config.resource {
            if !matches!(
                k.as_str(),
                "service.name" | "telemetry.sdk.name" | "telemetry.sdk.language"
            ) {
                attributes.push(KeyValue::new(k.clone(), v.clone()));
            }
        }
        let resource = Resource::builder_empty()
            .with_attributes(attributes)
            .build();
        Tracer {
            level,
            inner: Arc::new(Inner {
                config,
                level,
                resource,
                pipeline: OnceLock::new(),
            }),
        }
    }

    /// A tracer that records nothing.
    pub fn disabled() -> Tracer {
        Tracer::new(
            &Profile::Qdrant,
            "",
            "",
            "rust",
            &OtelSettings {
                disabled: Some(true),
                ..OtelSettings::default()
            },
            &crate::env::MapEnvironment::new(),
        )
    }

    /// The resolved configuration.
    pub fn config(&self) -> &OtelConfig {
        &self.inner.config
    }

    /// The granularity spans are recorded at (`None` when nothing is recorded).
    #[inline]
    pub fn granularity(&self) -> Granularity {
        self.level
    }

    /// Whether a span declared at `granularity` would be recorded.
    #[inline(always)]
    pub fn is_recording(&self, granularity: Granularity) -> bool {
        self.level.includes(granularity)
    }

    fn pipeline(&self) -> &Pipeline {
        self.inner.pipeline.get_or_init(|| {
            let config = &self.inner.config;
            let queue = SpanQueue::new(config.clone(), self.inner.resource.clone());
            let provider = SdkTracerProvider::builder()
                .with_span_processor(queue.clone())
                .with_sampler(sdk_sampler(config.sampler))
                .with_resource(self.inner.resource.clone())
                .build();
            let tracer = provider.tracer_with_scope(
                opentelemetry::InstrumentationScope::builder(SCOPE)
                    .with_version(crate::context::CORE_VERSION)
                    .build(),
            );
            Pipeline {
                _provider: provider,
                tracer,
                queue,
            }
        })
    }

    /// The OpenTelemetry SDK tracer behind this one, for code that uses the
    /// `opentelemetry` API directly (or the `tracing-opentelemetry` layer); `None` when
    /// nothing is recorded. Its spans go through this client's queue and counters.
    pub fn sdk_tracer(&self) -> Option<opentelemetry_sdk::trace::SdkTracer> {
        (self.inner.level != Granularity::None).then(|| self.pipeline().tracer.clone())
    }

    /// Starts describing a span named `name`, declared at `granularity`.
    ///
    /// ```
    /// # use telemetry_core::otel::{Granularity, Tracer, SpanKind};
    /// # let tracer = Tracer::disabled();
    /// let span = tracer
    ///     .span("query", Granularity::Operation)
    ///     .kind(SpanKind::Server)
    ///     .attribute("n_results", 10)
    ///     .start();
    /// span.end();
    /// ```
    #[inline]
    pub fn span(
        &self,
        name: impl Into<Cow<'static, str>>,
        granularity: Granularity,
    ) -> SpanBuilder<'_> {
        if !self.is_recording(granularity) {
            return SpanBuilder {
                tracer: self,
                builder: None,
                parent: None,
            };
        }
        SpanBuilder {
            tracer: self,
            builder: Some(opentelemetry::trace::SpanBuilder::from_name(name)),
            parent: None,
        }
    }

    /// Runs `f` inside a span that is the current one while it runs, and ends it after.
    ///
    /// ```
    /// # use telemetry_core::otel::{Granularity, Tracer};
    /// # let tracer = Tracer::disabled();
    /// let rows = tracer.in_span("db.query", Granularity::OperationAndSegment, |span| {
    ///     span.set_attribute("table", "items");
    ///     42
    /// });
    /// assert_eq!(rows, 42);
    /// ```
    #[inline]
    pub fn in_span<T>(
        &self,
        name: impl Into<Cow<'static, str>>,
        granularity: Granularity,
        f: impl FnOnce(&Span) -> T,
    ) -> T {
        if !self.is_recording(granularity) {
            return f(&Span::none());
        }
        let entered = self.span(name, granularity).start().enter();
        f(&entered.span)
    }

    /// The counters of this tracer's spans.
    pub fn stats(&self) -> SpanStats {
        self.inner
            .pipeline
            .get()
            .map(|p| p.queue.stats())
            .unwrap_or_default()
    }

    /// Exports what is queued and waits up to `timeout`; true when it all went out.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.inner
            .pipeline
            .get()
            .is_none_or(|p| p.queue.flush(timeout))
    }

    /// Stops accepting spans and lets the export thread send what it can until `by`.
    pub fn begin_shutdown(&self, by: Instant) {
        if let Some(p) = self.inner.pipeline.get() {
            p.queue.begin_shutdown(by);
        }
    }

    /// Waits for [`Tracer::begin_shutdown`]'s export until `by`.
    pub fn wait_closed(&self, by: Instant) {
        if let Some(p) = self.inner.pipeline.get() {
            p.queue.wait_closed(by);
        }
    }

    /// Shuts down within `deadline` and returns the final counters.
    pub fn shutdown(&self, deadline: Duration) -> SpanStats {
        let by = Instant::now() + deadline;
        self.begin_shutdown(by);
        self.wait_closed(by);
        self.stats()
    }

    /// Whether a binding's new span with `trace_id` is kept, given its parent's sampled
    /// flag (`None` for a root), by this tracer's sampler.
    pub fn should_sample(&self, trace_id: &[u8; 16], parent_sampled: Option<bool>) -> bool {
        self.inner
            .config
            .sampler
            .should_sample(trace_id, parent_sampled)
    }

    /// Queues a span a binding built and ended itself (the Go binding's one call per span).
    /// A span finer than the configured granularity is not expected here (the binding
    /// filtered it) but is dropped silently if it comes.
    pub fn record_finished(&self, span: SpanData) {
        if self.inner.level == Granularity::None {
            return;
        }
        self.pipeline().queue.push(span);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A tracer used without a client (or outliving it) is shut down here, within the
        // client's default deadline: the SDK provider's own drop would wait up to 5 s.
        if let Some(p) = self.pipeline.get() {
            let by = Instant::now() + crate::client::DEFAULT_SHUTDOWN;
            p.queue.begin_shutdown(by);
            p.queue.wait_closed(by);
        }
    }
}

fn sdk_sampler(s: Sampler) -> opentelemetry_sdk::trace::Sampler {
    use opentelemetry_sdk::trace::Sampler as S;
    let root = |r: RootSampler| match r {
        RootSampler::AlwaysOn => S::AlwaysOn,
        RootSampler::AlwaysOff => S::AlwaysOff,
        RootSampler::TraceIdRatio { ratio } => S::TraceIdRatioBased(ratio),
    };
    match s {
        Sampler::AlwaysOn => S::AlwaysOn,
        Sampler::AlwaysOff => S::AlwaysOff,
        Sampler::TraceIdRatio { ratio } => S::TraceIdRatioBased(ratio),
        Sampler::ParentBased { root: r } => S::ParentBased(Box::new(root(r))),
    }
}

/// A span being described; [`SpanBuilder::start`] starts it.
pub struct SpanBuilder<'a> {
    tracer: &'a Tracer,
    builder: Option<opentelemetry::trace::SpanBuilder>,
    parent: Option<Context>,
}

impl SpanBuilder<'_> {
    /// Adds an attribute.
    #[inline]
    pub fn attribute(
        mut self,
        key: impl Into<opentelemetry::Key>,
        value: impl Into<Value>,
    ) -> Self {
        if let Some(b) = &mut self.builder {
            b.attributes
                .get_or_insert_with(Vec::new)
                .push(KeyValue::new(key, value));
        }
        self
    }

    /// Sets the span kind (internal by default).
    pub fn kind(mut self, kind: SpanKind) -> Self {
        if let Some(b) = &mut self.builder {
            b.span_kind = Some(kind);
        }
        self
    }

    /// Sets the start time (now by default).
    pub fn start_time(mut self, at: SystemTime) -> Self {
        if let Some(b) = &mut self.builder {
            b.start_time = Some(at);
        }
        self
    }

    /// Makes `parent` the parent instead of the current span. A remote parent (from
    /// [`super::propagation::extract`]) joins its trace.
    pub fn parent(mut self, parent: SpanContext) -> Self {
        if self.builder.is_some() {
            // The SDK takes any span context in a Context as the parent; `is_remote`
            // travels with it into the exported span's flags.
            self.parent = Some(Context::new().with_remote_span_context(parent));
        }
        self
    }

    /// Makes the span whose W3C `traceparent` (and `tracestate`) came with a request the
    /// parent; an invalid header is ignored and the current span stays the parent.
    pub fn parent_traceparent(self, traceparent: &str, tracestate: Option<&str>) -> Self {
        match propagation::extract(traceparent, tracestate) {
            Some(sc) if self.builder.is_some() => self.parent(sc),
            _ => self,
        }
    }

    /// Makes the span a root: no parent, not even the current span.
    pub fn root(mut self) -> Self {
        if self.builder.is_some() {
            self.parent = Some(Context::new());
        }
        self
    }

    /// Starts the span. It ends when [`Span::end`] is called or it is dropped.
    #[inline]
    pub fn start(self) -> Span {
        let Some(builder) = self.builder else {
            return Span::none();
        };
        let tracer = &self.tracer.pipeline().tracer;
        let span = match &self.parent {
            Some(cx) => tracer.build_with_context(builder, cx),
            None => Context::map_current(|cx| tracer.build_with_context(builder, cx)),
        };
        Span {
            inner: SpanInner::Owned(RefCell::new(span)),
        }
    }
}

/// A started span; ends when [`Span::end`] is called or it is dropped. A span that is not
/// recorded (filtered, unsampled, no endpoint) accepts every call and does nothing.
pub struct Span {
    inner: SpanInner,
}

// Boxing the SDK span would cost an allocation per span; a `Span` lives on its caller's
// stack for the length of one operation.
#[allow(clippy::large_enum_variant)]
enum SpanInner {
    None,
    /// Not entered: the SDK's span, whose API takes `&mut self`.
    Owned(RefCell<opentelemetry_sdk::trace::Span>),
    /// Entered: the span lives in a Context, reached through its locked `SpanRef`.
    InContext(Context),
}

/// Runs the same span method on whichever form the span has.
macro_rules! on_span {
    ($self:expr, $s:ident => $body:expr) => {
        match &$self.inner {
            SpanInner::None => {}
            SpanInner::Owned(cell) => {
                let $s = &mut *cell.borrow_mut();
                $body;
            }
            SpanInner::InContext(cx) => {
                let $s = cx.span();
                $body;
            }
        }
    };
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Span")
            .field("context", &self.span_context())
            .finish()
    }
}

impl Span {
    /// A span that records nothing.
    pub fn none() -> Span {
        Span {
            inner: SpanInner::None,
        }
    }

    /// Whether this span is recorded.
    pub fn is_recording(&self) -> bool {
        match &self.inner {
            SpanInner::None => false,
            SpanInner::Owned(cell) => cell.borrow().is_recording(),
            SpanInner::InContext(cx) => cx.span().is_recording(),
        }
    }

    /// The span's context (trace and span id), `None` when not recorded.
    pub fn span_context(&self) -> Option<SpanContext> {
        match &self.inner {
            SpanInner::None => None,
            SpanInner::Owned(cell) => Some(cell.borrow().span_context().clone()),
            SpanInner::InContext(cx) => Some(cx.span().span_context().clone()),
        }
    }

    /// The W3C `traceparent` header value that makes a remote service's span this one's
    /// child.
    pub fn traceparent(&self) -> Option<String> {
        self.span_context().map(|sc| propagation::inject(&sc).0)
    }

    /// Sets an attribute (replacing one of the same key).
    #[inline]
    pub fn set_attribute(&self, key: impl Into<opentelemetry::Key>, value: impl Into<Value>) {
        if let SpanInner::None = self.inner {
            return;
        }
        let kv = KeyValue::new(key, value);
        on_span!(self, s => s.set_attribute(kv));
    }

    /// Adds an event with attributes.
    pub fn add_event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        on_span!(self, s => s.add_event(name, attributes));
    }

    /// Records `error` as an `exception` event and sets the status to error.
    pub fn record_error(&self, error: &dyn std::error::Error) {
        self.record_exception(std::any::type_name_of_val(error), &error.to_string(), None);
    }

    /// Records an exception by its parts, as the semantic conventions name them:
    /// `exception.type`, `exception.message` and, if given, `exception.stacktrace`; sets
    /// the status to error with the message.
    pub fn record_exception(&self, kind: &str, message: &str, stacktrace: Option<&str>) {
        if let SpanInner::None = self.inner {
            return;
        }
        let mut attrs = vec![
            KeyValue::new("exception.type", kind.to_string()),
            KeyValue::new("exception.message", message.to_string()),
        ];
        if let Some(st) = stacktrace {
            attrs.push(KeyValue::new("exception.stacktrace", st.to_string()));
        }
        let status = Status::error(message.to_string());
        on_span!(self, s => {
            s.add_event("exception", attrs);
            s.set_status(status)
        });
    }

    /// Sets the status.
    pub fn set_status(&self, status: Status) {
        on_span!(self, s => s.set_status(status));
    }

    /// Ends the span now.
    pub fn end(self) {
        on_span!(self, s => s.end());
    }

    /// Makes this span the current one (for this thread) until the guard is dropped, when
    /// the span ends too.
    pub fn enter(self) -> EnteredSpan {
        match self.inner {
            SpanInner::None => EnteredSpan {
                span: Span::none(),
                guard: None,
            },
            SpanInner::Owned(cell) => {
                let cx = Context::current_with_span(cell.into_inner());
                let guard = cx.clone().attach();
                EnteredSpan {
                    span: Span {
                        inner: SpanInner::InContext(cx),
                    },
                    guard: Some(guard),
                }
            }
            SpanInner::InContext(cx) => {
                let guard = cx.clone().attach();
                EnteredSpan {
                    span: Span {
                        inner: SpanInner::InContext(cx),
                    },
                    guard: Some(guard),
                }
            }
        }
    }
}

/// A span made current by [`Span::enter`]; ends it when dropped.
pub struct EnteredSpan {
    span: Span,
    guard: Option<ContextGuard>,
}

impl std::ops::Deref for EnteredSpan {
    type Target = Span;
    fn deref(&self) -> &Span {
        &self.span
    }
}

impl Drop for EnteredSpan {
    fn drop(&mut self) {
        // Restore the previous current context first, then end: the span's end time is
        // the scope's end either way.
        drop(self.guard.take());
        on_span!(self.span, s => s.end());
    }
}
