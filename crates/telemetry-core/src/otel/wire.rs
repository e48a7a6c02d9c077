//! A finished span as bytes: what a binding hands the core in one call when its span ends.
//! The Go binding builds spans in Go memory (ids, clock, attributes, the `context.Context`
//! that carries them) and crosses cgo once per span, with this encoding.
//!
//! All integers little-endian; a string is a `u32` length and that many UTF-8 bytes.
//!
//! ```text
//! u8  version (1)
//! [16] trace id   [8] span id   [8] parent span id (all zero: a root)
//! u8  flags: bit 0 sampled, bit 1 parent is remote
//! u8  kind: 0 internal, 1 server, 2 client, 3 producer, 4 consumer
//! u64 start, u64 end (Unix nanoseconds)
//! u8  status: 0 unset, 1 ok, 2 error;  str status message
//! str name;  str tracestate
//! u32 attribute count, attributes;  u32 event count, events
//! attribute: str key, u8 type (1 string: str, 2 bool: u8, 3 int: i64, 4 float: f64)
//! event: str name, u64 time, u32 attribute count, attributes
//! ```
//!
//! ```
//! use telemetry_core::otel::wire::{decode, encode, FinishedSpan};
//! let span = FinishedSpan { name: "GET /items".into(), trace_id: [1; 16], span_id: [2; 8], ..FinishedSpan::default() };
//! let data = decode(&encode(&span)).unwrap();
//! assert_eq!(data.name, "GET /items");
//! assert!(decode(b"\x01garbage").is_err());
//! ```

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// Attributes kept per span and per event, as the SDK's default span limits; more are
/// counted as dropped.
pub const MAX_ATTRIBUTES: usize = 128;
/// Events kept per span.
pub const MAX_EVENTS: usize = 128;
/// The largest encoded span accepted.
pub const MAX_BYTES: usize = 4 << 20;

/// Attributes in wire order: key and value.
pub type Attributes = Vec<(String, AttributeValue)>;

/// An event: name, Unix nanoseconds, attributes.
pub type WireEvent = (String, u64, Attributes);

/// A span a binding built, in plain fields; [`encode`] gives its bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FinishedSpan {
    /// The trace id.
    pub trace_id: [u8; 16],
    /// The span id.
    pub span_id: [u8; 8],
    /// The parent's span id; all zero for a root.
    pub parent_span_id: [u8; 8],
    /// Whether the trace is sampled (the binding only sends sampled spans).
    pub sampled: bool,
    /// Whether the parent came from another process.
    pub parent_remote: bool,
    /// 0 internal, 1 server, 2 client, 3 producer, 4 consumer.
    pub kind: u8,
    /// Unix nanoseconds.
    pub start_unix_nanos: u64,
    /// Unix nanoseconds.
    pub end_unix_nanos: u64,
    /// 0 unset, 1 ok, 2 error.
    pub status: u8,
    /// The error status's description.
    pub status_message: String,
    /// The span name.
    pub name: String,
    /// The W3C `tracestate` inherited from the parent.
    pub trace_state: String,
    /// Attributes.
    pub attributes: Attributes,
    /// Events.
    pub events: Vec<WireEvent>,
}

/// An attribute value as the wire carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
}

/// Why bytes are not a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a finished span: {}", self.0)
    }
}

impl std::error::Error for WireError {}

/// The bytes for `span` (the Rust side of the contract, for tests and vectors).
pub fn encode(span: &FinishedSpan) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(1);
    out.extend_from_slice(&span.trace_id);
    out.extend_from_slice(&span.span_id);
    out.extend_from_slice(&span.parent_span_id);
    out.push(u8::from(span.sampled) | (u8::from(span.parent_remote) << 1));
    out.push(span.kind);
    out.extend_from_slice(&span.start_unix_nanos.to_le_bytes());
    out.extend_from_slice(&span.end_unix_nanos.to_le_bytes());
    out.push(span.status);
    put_str(&mut out, &span.status_message);
    put_str(&mut out, &span.name);
    put_str(&mut out, &span.trace_state);
    put_attributes(&mut out, &span.attributes);
    out.extend_from_slice(&(span.events.len() as u32).to_le_bytes());
    for (name, time, attrs) in &span.events {
        put_str(&mut out, name);
        out.extend_from_slice(&time.to_le_bytes());
        put_attributes(&mut out, attrs);
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_attributes(out: &mut Vec<u8>, attrs: &[(String, AttributeValue)]) {
    out.extend_from_slice(&(attrs.len() as u32).to_le_bytes());
    for (k, v) in attrs {
        put_str(out, k);
        match v {
            AttributeValue::Str(s) => {
                out.push(1);
                put_str(out, s);
            }
            AttributeValue::Bool(b) => {
                out.push(2);
                out.push(u8::from(*b));
            }
            AttributeValue::Int(i) => {
                out.push(3);
                out.extend_from_slice(&i.to_le_bytes());
            }
            AttributeValue::Float(f) => {
                out.push(4);
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| WireError(format!("it ends inside the {what}")))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self, what: &str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, WireError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self, what: &str) -> Result<&'a str, WireError> {
        let n = self.u32(what)? as usize;
        let b = self.take(n, what)?;
        std::str::from_utf8(b).map_err(|_| WireError(format!("the {what} is not valid UTF-8")))
    }
    fn attributes(&mut self, what: &str) -> Result<(Vec<KeyValue>, u32), WireError> {
        let n = self.u32(what)? as usize;
        // Every attribute takes at least 6 bytes: a count beyond what is left is a lie.
        if n > (self.bytes.len() - self.at) / 6 {
            return Err(WireError(format!(
                "its {what} count {n} is larger than the span"
            )));
        }
        let mut kept = Vec::with_capacity(n.min(MAX_ATTRIBUTES));
        let mut dropped = 0;
        for _ in 0..n {
            let key = self.str("attribute key")?;
            let value = match self.u8("attribute type")? {
                1 => Value::from(self.str("attribute value")?.to_string()),
                2 => Value::Bool(self.u8("attribute value")? != 0),
                3 => Value::I64(self.u64("attribute value")? as i64),
                4 => Value::F64(f64::from_bits(self.u64("attribute value")?)),
                t => return Err(WireError(format!("attribute type {t} is unknown"))),
            };
            if kept.len() < MAX_ATTRIBUTES {
                kept.push(KeyValue::new(key.to_string(), value));
            } else {
                dropped += 1;
            }
        }
        Ok((kept, dropped))
    }
}

fn time(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// The span in `bytes`, ready for the queue; an error says what is wrong, and nothing is
/// read past the buffer whatever the bytes say.
pub fn decode(bytes: &[u8]) -> Result<SpanData, WireError> {
    if bytes.len() > MAX_BYTES {
        return Err(WireError(format!(
            "{} bytes is more than the {MAX_BYTES} a span may take",
            bytes.len()
        )));
    }
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8("version")?;
    if version != 1 {
        return Err(WireError(format!("version {version} is unknown")));
    }
    let mut trace_id = [0u8; 16];
    trace_id.copy_from_slice(r.take(16, "trace id")?);
    let mut span_id = [0u8; 8];
    span_id.copy_from_slice(r.take(8, "span id")?);
    let mut parent = [0u8; 8];
    parent.copy_from_slice(r.take(8, "parent span id")?);
    if trace_id == [0; 16] || span_id == [0; 8] {
        return Err(WireError("its trace or span id is all zero".into()));
    }
    let flags = r.u8("flags")?;
    let kind = match r.u8("kind")? {
        0 => SpanKind::Internal,
        1 => SpanKind::Server,
        2 => SpanKind::Client,
        3 => SpanKind::Producer,
        4 => SpanKind::Consumer,
        k => return Err(WireError(format!("span kind {k} is unknown"))),
    };
    let start = r.u64("start time")?;
    let end = r.u64("end time")?.max(start);
    let status_code = r.u8("status")?;
    let status_message = r.str("status message")?;
    let status = match status_code {
        0 => Status::Unset,
        1 => Status::Ok,
        2 => Status::error(status_message.to_string()),
        s => return Err(WireError(format!("status {s} is unknown"))),
    };
    let name = r.str("name")?.to_string();
    let trace_state = r.str("tracestate")?;
    let trace_state = if trace_state.is_empty() {
        TraceState::default()
    } else {
        trace_state.parse::<TraceState>().unwrap_or_default()
    };
    let (attributes, dropped_attributes_count) = r.attributes("attribute")?;
    let n_events = r.u32("event count")? as usize;
    if n_events > (bytes.len() - r.at) / 16 {
        return Err(WireError(format!(
            "its event count {n_events} is larger than the span"
        )));
    }
    let mut events = SpanEvents::default();
    for _ in 0..n_events {
        let event_name = r.str("event name")?.to_string();
        let at = r.u64("event time")?;
        let (attrs, dropped) = r.attributes("event attribute")?;
        if events.events.len() < MAX_EVENTS {
            let mut e = opentelemetry::trace::Event::new(event_name, time(at), attrs, dropped);
            e.dropped_attributes_count = dropped;
            events.events.push(e);
        } else {
            events.dropped_count += 1;
        }
    }
    if r.at != bytes.len() {
        return Err(WireError(format!(
            "{} bytes are left after the span",
            bytes.len() - r.at
        )));
    }
    let trace_flags = if flags & 1 != 0 {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    Ok(SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(trace_id),
            SpanId::from_bytes(span_id),
            trace_flags,
            false,
            trace_state,
        ),
        parent_span_id: SpanId::from_bytes(parent),
        parent_span_is_remote: flags & 2 != 0,
        span_kind: kind,
        name: Cow::Owned(name),
        start_time: time(start),
        end_time: time(end),
        attributes,
        dropped_attributes_count,
        events,
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope(),
    })
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("telemetry-core")
        .with_version(crate::context::CORE_VERSION)
        .build()
}
