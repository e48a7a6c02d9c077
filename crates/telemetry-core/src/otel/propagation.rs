//! W3C Trace Context: the `traceparent` and `tracestate` headers that carry a trace from
//! one service to the next. Formatting and `tracestate` are the OpenTelemetry SDK's
//! (`TraceContextPropagator`); `traceparent` is checked here first against the
//! recommendation's exact shape, which the SDK's parser is lenient about (it pads a
//! 31-digit trace id), so all three bindings accept exactly the same headers.
//!
//! ```
//! use telemetry_core::otel::propagation::{extract, inject};
//! let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
//! let parent = extract(header, Some("vendor=abc")).unwrap();
//! assert!(parent.is_remote() && parent.is_sampled());
//! let (traceparent, tracestate) = inject(&parent);
//! assert_eq!(traceparent, header);
//! assert_eq!(tracestate.as_deref(), Some("vendor=abc"));
//! assert!(extract("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None).is_none());
//! ```

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// The remote span context in `traceparent` (and `tracestate`), or `None` when the header
/// is not valid W3C Trace Context (all-zero ids, a bad version, wrong lengths).
pub fn extract(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
    if !well_formed(traceparent.trim()) {
        return None;
    }
    let mut carrier = HashMap::with_capacity(2);
    carrier.insert("traceparent".to_string(), traceparent.trim().to_string());
    if let Some(ts) = tracestate {
        carrier.insert("tracestate".to_string(), ts.to_string());
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// `version-traceid-spanid-flags`: two, 32, 16 and two lowercase hex digits; version
/// `ff` is invalid; version `00` has exactly four parts, a later version may add more.
pub fn well_formed(header: &str) -> bool {
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let parts: Vec<&str> = header.split('-').collect();
    if parts.len() < 4 || !hex(parts[0], 2) || parts[0] == "ff" {
        return false;
    }
    if parts[0] == "00" && parts.len() != 4 {
        return false;
    }
    hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1] != "00000000000000000000000000000000"
        && parts[2] != "0000000000000000"
}

/// The `traceparent` header for `span`, and `tracestate` when it has one.
pub fn inject(span: &SpanContext) -> (String, Option<String>) {
    let cx = Context::new().with_remote_span_context(span.clone());
    let mut carrier: HashMap<String, String> = HashMap::with_capacity(2);
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    let traceparent = carrier.remove("traceparent").unwrap_or_default();
    let tracestate = carrier.remove("tracestate").filter(|s| !s.is_empty());
    (traceparent, tracestate)
}

/// The `traceparent` of this thread's current span, if one is recorded: what an HTTP
/// client puts on its outgoing request.
pub fn current_traceparent() -> Option<String> {
    let sc = Context::map_current(|cx| cx.span().span_context().clone());
    sc.is_valid().then(|| inject(&sc).0)
}
