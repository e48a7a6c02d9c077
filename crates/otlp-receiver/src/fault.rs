//! Fault injection: how the receiver misbehaves on purpose, so exporters' retry, drop and
//! deadline paths can be tested against a real endpoint. A fault applies to export
//! requests only (`POST /v1/traces` and gRPC `TraceService/Export`), never to the control
//! endpoints (`/spans`, `/tree`, `/fault`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the receiver answers export requests. Its JSON form (for `POST /fault`) is tagged
/// by `kind`:
///
/// ```
/// use otlp_receiver::Fault;
/// let fault: Fault = serde_json::from_str(
///     r#"{"kind": "status", "http_status": 503, "retry_after_secs": 2}"#).unwrap();
/// assert_eq!(fault, Fault::Status { http_status: 503, retry_after_secs: Some(2) });
/// assert_eq!(fault.grpc_code(), Some(tonic::Code::Unavailable));
/// let slow: Fault = serde_json::from_str(r#"{"kind": "delay", "ms": 3000}"#).unwrap();
/// assert_eq!(slow, Fault::Delay { ms: 3000 });
/// let _: Fault = serde_json::from_str(r#"{"kind": "garbage"}"#).unwrap();
/// let _: Fault = serde_json::from_str(r#"{"kind": "none"}"#).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Behave: decode, record, answer 200 / gRPC OK.
    #[default]
    None,
    /// Refuse without decoding or recording: HTTP answers `http_status` (with
    /// `Retry-After: N` when `retry_after_secs` is set and a `google.rpc.Status` body);
    /// gRPC answers the matching code ([`Fault::grpc_code`]) with a `RetryInfo` detail
    /// carrying the delay when `retry_after_secs` is set.
    Status {
        http_status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
    },
    /// A slow endpoint: wait `ms` milliseconds, then answer normally (the spans are
    /// recorded only if the client is still there to hear the answer).
    Delay { ms: u64 },
    /// Record the spans, then answer 200 with bytes that decode as no response at all
    /// (HTTP: same content type; gRPC: a malformed message and no `grpc-status`).
    Garbage,
}

impl Fault {
    /// The gRPC code that stands for this fault's HTTP status, as the OTLP spec pairs
    /// them: 429 → `RESOURCE_EXHAUSTED`, 502/503/504 → `UNAVAILABLE`, 400 →
    /// `INVALID_ARGUMENT`; other statuses map by the usual HTTP/gRPC correspondence, and
    /// anything unmapped (or a status below 400) to `UNKNOWN`. `None` for the faults that
    /// are not a status.
    pub fn grpc_code(&self) -> Option<tonic::Code> {
        let Fault::Status { http_status, .. } = self else {
            return None;
        };
        Some(match http_status {
            400 => tonic::Code::InvalidArgument,
            401 => tonic::Code::Unauthenticated,
            403 => tonic::Code::PermissionDenied,
            404 => tonic::Code::NotFound,
            408 => tonic::Code::DeadlineExceeded,
            409 => tonic::Code::Aborted,
            413 => tonic::Code::ResourceExhausted,
            429 => tonic::Code::ResourceExhausted,
            499 => tonic::Code::Cancelled,
            500 => tonic::Code::Internal,
            501 => tonic::Code::Unimplemented,
            502..=504 => tonic::Code::Unavailable,
            _ => tonic::Code::Unknown,
        })
    }

    /// The delay of a [`Fault::Delay`], zero otherwise.
    pub(crate) fn delay(&self) -> Duration {
        match self {
            Fault::Delay { ms } => Duration::from_millis(*ms),
            _ => Duration::ZERO,
        }
    }
}

/// The body of `POST /fault`: a [`Fault`] plus, optionally, how many export requests it
/// applies to before the receiver behaves again (`{"kind": "status", "http_status": 503,
/// "requests": 1}`: one 503, then success; what a retry test wants).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FaultRequest {
    #[serde(flatten)]
    pub fault: Fault,
    #[serde(default)]
    pub requests: Option<u32>,
}

/// The bytes a [`Fault::Garbage`] answer carries over HTTP: 0xff starts no valid
/// protobuf field (wire type 7) and no JSON value either.
pub(crate) const GARBAGE: &[u8] = b"\xff\xfe\x00garbage: not an OTLP response\x1f\x8b\x00";
