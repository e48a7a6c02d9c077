//! OTLP over gRPC with tonic. tonic needs an async runtime; a host may have none, so the
//! export thread builds a single-threaded tokio runtime of its own, only when gRPC is the
//! protocol in use, and drives each request to completion on it.

use std::str::FromStr;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use tonic_types::StatusExt;

use super::export::Attempt;
use crate::tls::{is_certificate_error, Trust};

/// A lazily connected channel to one gRPC endpoint and the runtime that drives it.
pub struct GrpcChannel {
    runtime: Option<tokio::runtime::Runtime>,
    client: Result<TraceServiceClient<Channel>, String>,
    metadata: MetadataMap,
    url: String,
}

/// The export headers as gRPC metadata. A name ending `-bin` is binary metadata in gRPC
/// (tonic refuses it as ASCII): its value's bytes are sent base64-encoded, as grpc-go (the
/// OpenTelemetry Go SDK's exporter) sends them, instead of being dropped unseen. The
/// configuration already kept only valid HTTP header names and values.
fn metadata(headers: &[(String, String)]) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    for (k, v) in headers {
        if k.ends_with("-bin") {
            if let Ok(key) = MetadataKey::from_bytes(k.as_bytes()) {
                metadata.insert_bin(key, MetadataValue::from_bytes(v.as_bytes()));
            }
        } else if let (Ok(key), Ok(value)) = (
            MetadataKey::from_str(k),
            MetadataValue::try_from(v.as_str()),
        ) {
            metadata.insert(key, value);
        }
    }
    metadata
}

impl GrpcChannel {
    /// A channel to `url` trusting `trust` for HTTPS; nothing connects until the first
    /// export.
    pub fn new(url: &str, gzip: bool, headers: &[(String, String)], trust: &Trust) -> GrpcChannel {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok();
        let client = match &runtime {
            None => Err("could not start the gRPC runtime".to_string()),
            Some(rt) => {
                // `connect_lazy` must run inside the runtime: it spawns the connection task.
                let _guard = rt.enter();
                connect(url, trust).map(|channel| {
                    let client = TraceServiceClient::new(channel);
                    if gzip {
                        client
                            .send_compressed(CompressionEncoding::Gzip)
                            .accept_compressed(CompressionEncoding::Gzip)
                    } else {
                        client
                    }
                })
            }
        };
        let metadata = metadata(headers);
        GrpcChannel {
            runtime,
            client,
            metadata,
            url: url.to_string(),
        }
    }

    /// One Export call, bounded by `timeout`.
    pub fn export(&mut self, request: &ExportTraceServiceRequest, timeout: Duration) -> Attempt {
        let (Some(rt), Ok(client)) = (&self.runtime, &mut self.client) else {
            return Attempt::Fail(match &self.client {
                Err(e) => e.clone(),
                Ok(_) => "could not start the gRPC runtime".into(),
            });
        };
        let mut req = tonic::Request::new(request.clone());
        *req.metadata_mut() = self.metadata.clone();
        req.set_timeout(timeout);
        let url = &self.url;
        rt.block_on(async {
            match tokio::time::timeout(timeout, client.export(req)).await {
                Err(_) => Attempt::Retry {
                    after: None,
                    why: format!("{url} did not answer within {} ms", timeout.as_millis()),
                },
                Ok(Ok(response)) => Attempt::Accepted {
                    rejected: response
                        .into_inner()
                        .partial_success
                        .map_or(0, |p| p.rejected_spans.max(0) as u64),
                },
                Ok(Err(status)) if is_certificate_error(&status) => Attempt::Fail(format!(
                    "{url} failed: {} (the server's certificate is not trusted: see \
                     OTEL_EXPORTER_OTLP_CERTIFICATE)",
                    certificate_reason(&status)
                )),
                Ok(Err(status)) => {
                    let why = format!(
                        "{url} answered gRPC {:?}: {}",
                        status.code(),
                        status.message()
                    );
                    match status.code() {
                        Code::Unavailable
                        | Code::ResourceExhausted
                        | Code::Aborted
                        | Code::Cancelled
                        | Code::DeadlineExceeded
                        | Code::OutOfRange
                        | Code::DataLoss => Attempt::Retry {
                            // The receiver's delay, when it says one (OTLP: a RetryInfo
                            // detail, typically with RESOURCE_EXHAUSTED).
                            after: status
                                .get_details_retry_info()
                                .and_then(|info| info.retry_delay)
                                .map(|d| d.min(crate::transport::MAX_RETRY_AFTER)),
                            why,
                        },
                        _ => Attempt::Fail(why),
                    }
                }
            }
        })
    }
}

/// The innermost error's text: tonic's own message for a failed connection is only
/// "transport error".
fn certificate_reason(status: &tonic::Status) -> String {
    let mut last: &(dyn std::error::Error + 'static) = status;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

fn connect(url: &str, trust: &Trust) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| format!("{url} is not a gRPC endpoint: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    let endpoint = if url.starts_with("https://") {
        endpoint
            .tls_config(trust.tonic_config())
            .map_err(|e| format!("TLS for {url}: {e}"))?
    } else {
        endpoint
    };
    Ok(endpoint.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the otel_config fuzz target: a `-bin` header the configuration kept was
    /// dropped silently by tonic's ASCII metadata.
    #[test]
    fn every_configured_header_becomes_metadata() {
        let headers = [
            ("api-key".to_string(), "caf\u{e9} 1".to_string()),
            ("x-trace-bin".to_string(), "raw bytes".to_string()),
        ];
        let m = metadata(&headers);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.get("api-key").unwrap().as_bytes(),
            "caf\u{e9} 1".as_bytes()
        );
        let bin = m.get_bin("x-trace-bin").unwrap();
        assert_eq!(bin.to_bytes().unwrap().as_ref(), b"raw bytes");
    }
}
