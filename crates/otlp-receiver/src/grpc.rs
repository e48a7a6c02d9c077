//! The gRPC port: `opentelemetry.proto.collector.trace.v1.TraceService/Export` through
//! the tonic-generated server of `opentelemetry-proto`, gzip accepted (and used for
//! answers when the client accepts it). The generated service is served by hyper
//! directly, wrapped by one function that sees the raw request (headers, path) and can
//! replace the answer with garbage, which a tonic service cannot express.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic_types::{ErrorDetails, StatusExt};
use tower_service::Service;

use crate::http::header_map;
use crate::span::{flatten, RequestMeta};
use crate::{Fault, Shared, MAX_BODY_BYTES};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// What the wrapper learnt about a request, handed to the service in its extensions.
#[derive(Clone)]
struct Exchange {
    meta: RequestMeta,
    fault: Fault,
}

struct Traces {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl TraceService for Traces {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let exchange = request
            .extensions()
            .get::<Exchange>()
            .cloned()
            .unwrap_or_else(|| Exchange {
                meta: RequestMeta {
                    protocol: "grpc",
                    ..RequestMeta::default()
                },
                fault: Fault::None,
            });
        match &exchange.fault {
            Fault::Delay { .. } => tokio::time::sleep(exchange.fault.delay()).await,
            Fault::Status {
                retry_after_secs, ..
            } => {
                let code = exchange.fault.grpc_code().unwrap_or(tonic::Code::Unknown);
                let message = "fault injected by the test receiver";
                // OTLP/gRPC says "retry after" with a google.rpc.RetryInfo detail.
                return Err(match retry_after_secs {
                    Some(secs) => tonic::Status::with_error_details(
                        code,
                        message,
                        ErrorDetails::with_retry_info(Some(Duration::from_secs(*secs))),
                    ),
                    None => tonic::Status::new(code, message),
                });
            }
            Fault::None | Fault::Garbage => {}
        }
        self.shared
            .record(flatten(request.get_ref(), &exchange.meta));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let traces = TraceServiceServer::new(Traces {
        shared: shared.clone(),
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(MAX_BODY_BYTES);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let traces = traces.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let shared = shared.clone();
                let mut traces = traces.clone();
                async move { Ok::<_, Infallible>(exchange(request, &shared, &mut traces).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn exchange(
    mut request: Request<Incoming>,
    shared: &Shared,
    traces: &mut TraceServiceServer<Traces>,
) -> Response<tonic::body::Body> {
    let is_export = request.uri().path() == EXPORT_PATH;
    let fault = if is_export {
        shared.begin_request()
    } else {
        Fault::None
    };
    let headers = header_map(request.headers());
    let gzip = headers
        .get("grpc-encoding")
        .is_some_and(|encoding| encoding.eq_ignore_ascii_case("gzip"));
    request.extensions_mut().insert(Exchange {
        meta: RequestMeta {
            headers,
            protocol: "grpc",
            gzip,
        },
        fault: fault.clone(),
    });
    // The generated server is always ready (its poll_ready returns Ready), so calling
    // it directly is what tonic's own router does too.
    let response = match traces.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if is_export && fault == Fault::Garbage {
        return garbage();
    }
    response
}

/// 200 with a gRPC frame holding bytes that are no protobuf message, and no trailers
/// (so no `grpc-status`): a client must fail to make sense of it, not hang.
fn garbage() -> Response<tonic::body::Body> {
    let frame: &[u8] = b"\x00\x00\x00\x00\x08\xff\xff\xff\xff\xff\xff\xff\xff";
    let mut response = Response::new(tonic::body::Body::new(Full::new(Bytes::from_static(frame))));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}
