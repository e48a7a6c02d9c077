//! What a test sees of an exported span: [`ReceivedSpan`], one flat record per span, made
//! from the decoded `ExportTraceServiceRequest` plus what the request itself carried
//! (headers, protocol, gzip). Ids are lowercase hex, times Unix nanoseconds, attributes
//! JSON values, so tests in any language compare plain strings and numbers.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One span as received, flattened out of its resource and scope.
///
/// ```
/// # use otlp_receiver::ReceivedSpan;
/// let span: ReceivedSpan = serde_json::from_str(r#"{
///     "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
///     "name": "GET /items", "start_time_unix_nano": 1000000, "end_time_unix_nano": 13300000,
///     "resource": {"service.name": "go-client"}, "protocol": "grpc"
/// }"#).unwrap();
/// assert!(span.is_root());
/// assert_eq!(span.service_name(), Some("go-client"));
/// assert_eq!(span.duration_ms(), 12.3);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ReceivedSpan {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// 16 lowercase hex digits, or empty for a root span.
    pub parent_span_id: String,
    /// The W3C `tracestate` the span carried, often empty.
    pub trace_state: String,
    /// The span's flags field (the low 8 bits are the W3C trace flags).
    pub flags: u32,
    pub name: String,
    /// `unspecified`, `internal`, `server`, `client`, `producer`, `consumer`, or
    /// `unknown(N)` for a value outside the enum.
    pub kind: String,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    /// The span's attributes; see [`any_value_to_json`] for how values map.
    pub attributes: Map<String, Value>,
    pub events: Vec<ReceivedEvent>,
    pub links: Vec<ReceivedLink>,
    pub status: ReceivedStatus,
    /// The attributes of the resource the span came with (`service.name` among them).
    pub resource: Map<String, Value>,
    /// The instrumentation scope's name (the tracer's name).
    pub scope_name: String,
    pub scope_version: String,
    /// The export request's headers, names lowercase, repeated names joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// `grpc`, `http/protobuf` or `http/json`: how the span arrived.
    pub protocol: String,
    /// Whether the request body was gzip-compressed (HTTP `Content-Encoding: gzip`, gRPC
    /// `grpc-encoding: gzip`).
    pub gzip: bool,
}

/// A span event (an exception is one: name `exception`, attributes `exception.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ReceivedEvent {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Map<String, Value>,
}

/// A link to another span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ReceivedLink {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: Map<String, Value>,
}

/// The span's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReceivedStatus {
    /// `unset`, `ok`, `error`, or `unknown(N)`.
    pub code: String,
    pub message: String,
}

impl Default for ReceivedStatus {
    fn default() -> Self {
        ReceivedStatus {
            code: "unset".into(),
            message: String::new(),
        }
    }
}

impl ReceivedSpan {
    /// True when the span has no parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_empty()
    }

    /// The resource's `service.name`, when it is a string.
    pub fn service_name(&self) -> Option<&str> {
        self.resource.get("service.name").and_then(Value::as_str)
    }

    /// A span attribute by key.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    /// A request header by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The first event with this name.
    pub fn event(&self, name: &str) -> Option<&ReceivedEvent> {
        self.events.iter().find(|event| event.name == name)
    }

    /// End minus start in milliseconds, rounded to 0.1 ms; 0 when the end is before the
    /// start (a hostile or clock-skewed span must not make the tree print nonsense).
    pub fn duration_ms(&self) -> f64 {
        let nanos = self
            .end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano);
        (nanos as f64 / 100_000.0).round() / 10.0
    }
}

/// What the transport knew about a request, stamped on every span it carried.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestMeta {
    pub headers: BTreeMap<String, String>,
    pub protocol: &'static str,
    pub gzip: bool,
}

/// Flattens a decoded request into one [`ReceivedSpan`] per span.
pub(crate) fn flatten(
    request: &ExportTraceServiceRequest,
    meta: &RequestMeta,
) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map(|r| attributes_to_json(&r.attributes))
            .unwrap_or_default();
        for scope_spans in &resource_spans.scope_spans {
            let (scope_name, scope_version) = scope_spans
                .scope
                .as_ref()
                .map(|s| (s.name.clone(), s.version.clone()))
                .unwrap_or_default();
            for span in &scope_spans.spans {
                let status = span.status.as_ref();
                out.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    trace_state: span.trace_state.clone(),
                    flags: span.flags,
                    name: span.name.clone(),
                    kind: kind_name(span.kind),
                    start_time_unix_nano: span.start_time_unix_nano,
                    end_time_unix_nano: span.end_time_unix_nano,
                    attributes: attributes_to_json(&span.attributes),
                    events: span
                        .events
                        .iter()
                        .map(|e| ReceivedEvent {
                            name: e.name.clone(),
                            time_unix_nano: e.time_unix_nano,
                            attributes: attributes_to_json(&e.attributes),
                        })
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|l| ReceivedLink {
                            trace_id: hex(&l.trace_id),
                            span_id: hex(&l.span_id),
                            attributes: attributes_to_json(&l.attributes),
                        })
                        .collect(),
                    status: ReceivedStatus {
                        code: status_name(status.map_or(0, |s| s.code)),
                        message: status.map(|s| s.message.clone()).unwrap_or_default(),
                    },
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    scope_version: scope_version.clone(),
                    headers: meta.headers.clone(),
                    protocol: meta.protocol.to_string(),
                    gzip: meta.gzip,
                });
            }
        }
    }
    out
}

fn kind_name(kind: i32) -> String {
    match kind {
        0 => "unspecified".into(),
        1 => "internal".into(),
        2 => "server".into(),
        3 => "client".into(),
        4 => "producer".into(),
        5 => "consumer".into(),
        other => format!("unknown({other})"),
    }
}

fn status_name(code: i32) -> String {
    match code {
        0 => "unset".into(),
        1 => "ok".into(),
        2 => "error".into(),
        other => format!("unknown({other})"),
    }
}

/// Lowercase hex of an id; empty bytes give an empty string (a root's parent).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Key-value pairs as a JSON object; a repeated key keeps its last value.
pub fn attributes_to_json(attributes: &[KeyValue]) -> Map<String, Value> {
    attributes
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or(Value::Null, any_value_to_json),
            )
        })
        .collect()
}

/// An OTLP `AnyValue` as JSON: strings, booleans and arrays as themselves, integers as
/// JSON integers, doubles as numbers (NaN and infinities, which JSON lacks, as the
/// strings `"NaN"`, `"inf"`, `"-inf"`), key-value lists as objects, bytes as lowercase
/// hex, and an empty value as `null`.
///
/// ```
/// use otlp_receiver::any_value_to_json;
/// use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue};
/// let v = AnyValue { value: Some(Value::IntValue(42)) };
/// assert_eq!(any_value_to_json(&v), serde_json::json!(42));
/// ```
pub fn any_value_to_json(value: &AnyValue) -> Value {
    // Recursion is bounded: prost refuses messages nested deeper than 100 and serde_json
    // input nested deeper than 128, so no decoded value can exhaust the stack here.
    match &value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => match serde_json::Number::from_f64(*d) {
            Some(n) => Value::Number(n),
            None if d.is_nan() => Value::String("NaN".into()),
            None if *d > 0.0 => Value::String("inf".into()),
            None => Value::String("-inf".into()),
        },
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_value_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(l)) => Value::Object(attributes_to_json(&l.values)),
        Some(any_value::Value::BytesValue(b)) => Value::String(hex(b)),
        // A string-table index (profiles only); traces never use it.
        Some(any_value::Value::StringValueStrindex(i)) => Value::from(*i),
    }
}
