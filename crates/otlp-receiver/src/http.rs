//! The HTTP port: OTLP/HTTP `POST /v1/traces` (protobuf or JSON, optionally gzip), per
//! the OTLP spec's answers, plus the control endpoints other processes use:
//! `GET /spans` (JSON array of spans), `DELETE /spans` (forget them), `GET /tree` (the
//! text tree), `GET /fault` and `POST /fault` (a JSON [`Fault`], optionally with
//! `"requests": N`). HTTP/1.1 and HTTP/2 (prior knowledge) both work.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;

use crate::fault::{FaultRequest, GARBAGE};
use crate::span::{flatten, RequestMeta};
use crate::{render_tree, Fault, Shared, MAX_BODY_BYTES};

type Body = Full<Bytes>;

/// Control requests are small JSON; a megabyte is plenty.
const MAX_CONTROL_BODY: usize = 1024 * 1024;

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: wait instead of spinning or dying.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(request, &shared).await) }
            });
            // A client that sends broken HTTP or hangs up only ends its own connection. One
            // that shuts its write side after the request still gets the answer: without
            // half_close hyper may close as soon as it reads that end of input, and the
            // client reads nothing.
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http1().half_close(true);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(request: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let path = request.uri().path().to_string();
    match (request.method().clone(), path.as_str()) {
        (Method::POST, "/v1/traces") => export(request, shared).await,
        (_, "/v1/traces") => method_not_allowed("POST"),
        (Method::GET, "/spans") => {
            let body = serde_json::to_vec(&shared.spans()).unwrap_or_default();
            respond(StatusCode::OK, "application/json", body)
        }
        (Method::DELETE, "/spans") => {
            shared.clear();
            respond(StatusCode::NO_CONTENT, "text/plain", Vec::new())
        }
        (_, "/spans") => method_not_allowed("GET, DELETE"),
        (Method::GET, "/tree") => respond(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            render_tree(&shared.spans()).into_bytes(),
        ),
        (_, "/tree") => method_not_allowed("GET"),
        (Method::GET, "/fault") => fault_response(&shared.fault()),
        (Method::POST, "/fault") => set_fault(request, shared).await,
        (_, "/fault") => method_not_allowed("GET, POST"),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

async fn export(request: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let fault = shared.begin_request();
    if let Fault::Delay { .. } = fault {
        tokio::time::sleep(fault.delay()).await;
    }
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;

    let encoding = match media_type(headers, CONTENT_TYPE).as_deref() {
        Some("application/x-protobuf") | Some("application/protobuf") => Encoding::Protobuf,
        Some("application/json") => Encoding::Json,
        other => {
            let message = format!(
                "unsupported content type {:?}: send application/x-protobuf or application/json\n",
                other.unwrap_or("")
            );
            return respond(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "text/plain",
                message.into_bytes(),
            );
        }
    };
    if let Fault::Status {
        http_status,
        retry_after_secs,
    } = fault
    {
        let status = StatusCode::from_u16(http_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut response = error(encoding, status, "fault injected by the test receiver");
        if let Some(secs) = retry_after_secs {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        return response;
    }
    let gzip = match media_type(headers, CONTENT_ENCODING).as_deref() {
        None | Some("") | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            let message = format!("unsupported content encoding {other:?}: send gzip or none\n");
            return respond(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "text/plain",
                message.into_bytes(),
            );
        }
    };
    let declared_length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared_length.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return too_large(encoding);
    }
    let raw = match read_body(body, MAX_BODY_BYTES).await {
        Ok(raw) => raw,
        Err(BodyError::TooLarge) => return too_large(encoding),
        Err(BodyError::Broken) => {
            return error(encoding, StatusCode::BAD_REQUEST, "could not read the body")
        }
    };
    let body = if gzip {
        match gunzip(&raw, MAX_BODY_BYTES) {
            Ok(body) => Bytes::from(body),
            Err(BodyError::TooLarge) => return too_large(encoding),
            Err(BodyError::Broken) => {
                return error(
                    encoding,
                    StatusCode::BAD_REQUEST,
                    "the body is not valid gzip",
                )
            }
        }
    } else {
        raw
    };
    let decoded = match encoding {
        Encoding::Protobuf => {
            ExportTraceServiceRequest::decode(body).map_err(|e| format!("not protobuf: {e}"))
        }
        Encoding::Json => serde_json::from_slice::<ExportTraceServiceRequest>(&body)
            .map_err(|e| format!("not OTLP JSON: {e}")),
    };
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(message) => return error(encoding, StatusCode::BAD_REQUEST, &message),
    };
    let meta = RequestMeta {
        headers: header_map(headers),
        protocol: match encoding {
            Encoding::Protobuf => "http/protobuf",
            Encoding::Json => "http/json",
        },
        gzip,
    };
    shared.record(flatten(&decoded, &meta));

    let content_type = match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    };
    if fault == Fault::Garbage {
        return respond(StatusCode::OK, content_type, GARBAGE.to_vec());
    }
    let body = match encoding {
        Encoding::Protobuf => ExportTraceServiceResponse::default().encode_to_vec(),
        // An unset partial_success is simply absent in OTLP/JSON.
        Encoding::Json => b"{}".to_vec(),
    };
    respond(StatusCode::OK, content_type, body)
}

async fn set_fault(request: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let raw = match read_body(request.into_body(), MAX_CONTROL_BODY).await {
        Ok(raw) => raw,
        Err(_) => {
            return respond(
                StatusCode::BAD_REQUEST,
                "text/plain",
                b"unreadable body\n".to_vec(),
            )
        }
    };
    match serde_json::from_slice::<FaultRequest>(&raw) {
        Ok(request) => {
            shared.set_fault(request.fault, request.requests);
            fault_response(&shared.fault())
        }
        Err(e) => respond(
            StatusCode::BAD_REQUEST,
            "text/plain",
            format!(
                "not a fault: {e}; e.g. {{\"kind\": \"status\", \"http_status\": 503, \"retry_after_secs\": 1}}\n"
            )
            .into_bytes(),
        ),
    }
}

fn fault_response(fault: &Fault) -> Response<Body> {
    let body = serde_json::to_vec(fault).unwrap_or_default();
    respond(StatusCode::OK, "application/json", body)
}

enum BodyError {
    TooLarge,
    Broken,
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Broken),
    }
}

/// Decompresses at most `limit` bytes: a small gzip bomb must not become a large buffer.
fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(raw).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|_| BodyError::Broken)?;
    if out.len() > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

/// A header's value up to any `;` parameters, trimmed and lowercase.
fn media_type(headers: &HeaderMap, name: hyper::header::HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Headers as names (lowercase, as `http` keeps them) to values; a repeated header's
/// values are joined with `", "`, and bytes that are not UTF-8 are replaced.
pub(crate) fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_string())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

/// The google.rpc.Status message the OTLP spec puts in error bodies.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn error(encoding: Encoding, status: StatusCode, message: &str) -> Response<Body> {
    let code = Fault::Status {
        http_status: status.as_u16(),
        retry_after_secs: None,
    }
    .grpc_code()
    .unwrap_or(tonic::Code::Unknown) as i32;
    match encoding {
        Encoding::Protobuf => {
            let body = RpcStatus {
                code,
                message: message.to_string(),
            }
            .encode_to_vec();
            respond(status, "application/x-protobuf", body)
        }
        Encoding::Json => {
            let body = serde_json::json!({ "code": code, "message": message });
            respond(status, "application/json", body.to_string().into_bytes())
        }
    }
}

fn too_large(encoding: Encoding) -> Response<Body> {
    error(
        encoding,
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body exceeds {MAX_BODY_BYTES} bytes"),
    )
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = respond(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain",
        b"method not allowed\n".to_vec(),
    );
    response
        .headers_mut()
        .insert("allow", HeaderValue::from_static(allow));
    response
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
