//! OTLP requests: spans grouped under their resource, encoded with the OpenTelemetry
//! project's own message definitions (`opentelemetry-proto`), sent over HTTP (protobuf or
//! JSON, through the core's ureq) or gRPC (tonic, on the export thread's own runtime).
//!
//! One [`Exporter::attempt`] is one request; the retry policy lives in the queue's
//! worker, which owns the time budget. What is retryable follows the OTLP specification:
//! HTTP 429, 502, 503, 504 and transport errors (after `Retry-After` when given); gRPC
//! `UNAVAILABLE`, `RESOURCE_EXHAUSTED` (after the `RetryInfo` delay when given),
//! `ABORTED`, `CANCELLED`, `DEADLINE_EXCEEDED`, `OUT_OF_RANGE` and `DATA_LOSS`. A
//! server certificate the client does not trust is never retried (over HTTP or gRPC):
//! trying again cannot change it.
//!
//! HTTPS trusts the configuration's `tls_roots` plus its `certificate` (a PEM file), for
//! both protocols: [`crate::tls::Trust`].

use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::SpanData;
use prost::Message;

use super::config::{OtelConfig, Protocol};
use crate::tls::{is_ureq_certificate_error, Trust};
use crate::transport::parse_retry_after;

/// What one export request came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Accepted; the receiver may say it rejected some spans (OTLP partial success).
    Accepted {
        /// Spans the receiver said it did not keep.
        rejected: u64,
    },
    /// Worth trying again, after the delay the receiver asked for if it asked.
    Retry {
        /// `Retry-After` (HTTP) or the gRPC `RetryInfo` delay.
        after: Option<Duration>,
        /// What went wrong, for the one warning per failure streak.
        why: String,
    },
    /// Not worth retrying (a bad request, an unusable endpoint).
    Fail(String),
}

/// A batch ready to send, encoded once for all its attempts.
pub enum Prepared {
    /// The HTTP body, gzipped or not.
    Http(Vec<u8>),
    /// The gRPC request message (tonic encodes and compresses it).
    Grpc(ExportTraceServiceRequest),
}

/// Sends batches to one endpoint.
pub struct Exporter {
    resource: ResourceAttributesWithSchema,
    url: String,
    protocol: Protocol,
    gzip: bool,
    headers: Vec<(String, String)>,
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    trust: Trust,
    http: Option<ureq::Agent>,
    #[cfg(feature = "grpc")]
    grpc: Option<super::grpc::GrpcChannel>,
}

impl Exporter {
    /// An exporter for `config`'s endpoint, with `resource` on every request. Creating it
    /// opens nothing; the first request connects. Reads the system's certificate store when
    /// the configuration needs it (platform roots with a certificate file).
    pub fn new(config: &OtelConfig, resource: &opentelemetry_sdk::Resource) -> Exporter {
        let url = config.endpoint.clone().unwrap_or_default();
        let trust = Trust {
            roots: config.tls_roots,
            extra: config.certificate.clone(),
        };
        let http = match config.protocol {
            Protocol::Grpc => None,
            _ => Some(
                ureq::Agent::config_builder()
                    .tls_config(trust.ureq_config())
                    .timeout_connect(Some(Duration::from_secs(2)))
                    .http_status_as_error(false)
                    .user_agent(format!("telemetry-core/{}", crate::context::CORE_VERSION))
                    .max_redirects(0)
                    .build()
                    .new_agent(),
            ),
        };
        Exporter {
            resource: resource.into(),
            url,
            protocol: config.protocol,
            gzip: config.gzip,
            headers: config.headers.clone(),
            trust,
            http,
            #[cfg(feature = "grpc")]
            grpc: None,
        }
    }

    /// Groups and encodes `spans` for this exporter's protocol.
    pub fn prepare(&self, spans: Vec<SpanData>) -> Prepared {
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(spans, &self.resource),
        };
        match self.protocol {
            Protocol::Grpc => Prepared::Grpc(request),
            Protocol::HttpProtobuf => Prepared::Http(self.compress(request.encode_to_vec())),
            Protocol::HttpJson => {
                Prepared::Http(self.compress(serde_json::to_vec(&request).unwrap_or_default()))
            }
        }
    }

    fn compress(&self, body: Vec<u8>) -> Vec<u8> {
        if !self.gzip {
            return body;
        }
        let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 3), Compression::fast());
        // Cannot fail writing to a Vec; an empty body (refused by the receiver) would
        // still be better than a plain one sent as gzip.
        gz.write_all(&body)
            .and_then(|_| gz.finish())
            .unwrap_or_default()
    }

    /// One request with `prepared`, given at most `timeout`.
    pub fn attempt(&mut self, prepared: &Prepared, timeout: Duration) -> Attempt {
        match prepared {
            Prepared::Http(body) => self.attempt_http(body, timeout),
            #[cfg(feature = "grpc")]
            Prepared::Grpc(request) => {
                let channel = self.grpc.get_or_insert_with(|| {
                    super::grpc::GrpcChannel::new(&self.url, self.gzip, &self.headers, &self.trust)
                });
                channel.export(request, timeout)
            }
            #[cfg(not(feature = "grpc"))]
            Prepared::Grpc(_) => Attempt::Fail(
                "this build has no gRPC support; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
                    .into(),
            ),
        }
    }

    fn attempt_http(&mut self, body: &[u8], timeout: Duration) -> Attempt {
        let Some(agent) = &self.http else {
            return Attempt::Fail("no HTTP client for a gRPC exporter".into());
        };
        let content_type = match self.protocol {
            Protocol::HttpJson => "application/json",
            _ => "application/x-protobuf",
        };
        let mut request = agent.post(&self.url).header("Content-Type", content_type);
        if self.gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        for (k, v) in &self.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let response = request
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send(body);
        let mut response = match response {
            Ok(r) => r,
            Err(e) if is_ureq_certificate_error(&e) => {
                return Attempt::Fail(format!(
                    "{} failed: {e} (the server's certificate is not trusted: see \
                     OTEL_EXPORTER_OTLP_CERTIFICATE)",
                    self.url
                ))
            }
            Err(e) => {
                return Attempt::Retry {
                    after: None,
                    why: format!("{} failed: {e}", self.url),
                }
            }
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            // A partial success names spans the receiver dropped; an unreadable answer
            // still means accepted (the spec says a 2xx is success).
            let bytes = response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_vec()
                .unwrap_or_default();
            let rejected = match self.protocol {
                Protocol::HttpJson => serde_json::from_slice::<ExportTraceServiceResponse>(&bytes)
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map_or(0, |p| p.rejected_spans.max(0) as u64),
                _ => ExportTraceServiceResponse::decode(&bytes[..])
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map_or(0, |p| p.rejected_spans.max(0) as u64),
            };
            return Attempt::Accepted { rejected };
        }
        let after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let why = format!("{} answered HTTP {status}", self.url);
        if matches!(status, 429 | 502 | 503 | 504) {
            Attempt::Retry { after, why }
        } else {
            Attempt::Fail(why)
        }
    }
}
