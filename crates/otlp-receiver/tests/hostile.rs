//! Raw HTTP and gRPC clients against the receiver: the OTLP/HTTP answers (415, 400, 413,
//! 405, 404), faults as a plain HTTP client sees them (503 with Retry-After, 429,
//! garbage, delay, one-shot faults), the control endpoints, and hostile input, after all
//! of which the receiver still takes a valid export.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlp_receiver::{Fault, Options, ReceivedSpan, Receiver, MAX_BODY_BYTES};
use prost::Message;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn send(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: &[u8],
) -> Answer {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    let request = request.body(body.to_vec()).unwrap();
    let mut response = agent().run(request).expect("an HTTP answer");
    Answer {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .unwrap(),
    }
}

fn post(receiver: &Receiver, content_type: &str, body: &[u8]) -> Answer {
    send(
        "POST",
        &receiver.http_traces_url(),
        Some(content_type),
        None,
        body,
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn request_with(span: Span) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_kv("service.name", "hostile-test")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn valid_request(name: &str) -> ExportTraceServiceRequest {
    request_with(Span {
        trace_id: vec![0x4b; 16],
        span_id: vec![0xf0; 8],
        name: name.to_string(),
        kind: 2,
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_012_300_000,
        attributes: vec![string_kv("k", "v")],
        ..Span::default()
    })
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..KeyValue::default()
    }
}

/// Writes `bytes` on a fresh connection and returns what came back until the server
/// closed it or a second passed.
fn raw(addr: SocketAddr, bytes: &[u8], close_write: bool) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let _ = stream.write_all(bytes);
    if close_write {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_still_serves(receiver: &Receiver, name: &str) {
    let answer = post(receiver, PROTOBUF, &valid_request(name).encode_to_vec());
    assert_eq!(answer.status, 200);
    let spans = receiver.wait_for_spans(1, Duration::from_secs(5));
    assert!(spans.iter().any(|s| s.name == name), "{spans:#?}");
}

#[test]
fn answers_per_the_otlp_http_spec() {
    let receiver = Receiver::start(Options::default()).unwrap();

    let ok = post(&receiver, PROTOBUF, &valid_request("a").encode_to_vec());
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some(PROTOBUF));
    assert!(ok.body.is_empty(), "an empty ExportTraceServiceResponse");

    let json = serde_json::to_vec(&valid_request("b")).unwrap();
    let ok = send(
        "POST",
        &receiver.http_traces_url(),
        Some("application/json; charset=utf-8"),
        Some("gzip"),
        &gzip(&json),
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some(JSON));
    assert_eq!(ok.body, b"{}");

    let spans = receiver.wait_for_spans(2, Duration::from_secs(5));
    assert_eq!(spans.len(), 2);
    assert_eq!(
        (spans[0].protocol.as_str(), spans[0].gzip),
        ("http/protobuf", false)
    );
    assert_eq!(
        (spans[1].protocol.as_str(), spans[1].gzip),
        ("http/json", true)
    );
    assert_eq!(spans[1].trace_id, "4b".repeat(16));
    assert_eq!(spans[1].kind, "server");
    assert_eq!(spans[1].duration_ms(), 12.3);
    assert_eq!(spans[1].service_name(), Some("hostile-test"));

    // An empty request is valid OTLP: nothing to record.
    assert_eq!(post(&receiver, PROTOBUF, b"").status, 200);

    let unsupported = post(&receiver, "text/plain", b"hello");
    assert_eq!(unsupported.status, 415);
    let no_type = raw(
        receiver.http_addr(),
        b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        true,
    );
    assert!(no_type.starts_with("HTTP/1.1 415"), "{no_type}");
    let brotli = send(
        "POST",
        &receiver.http_traces_url(),
        Some(PROTOBUF),
        Some("br"),
        b"x",
    );
    assert_eq!(brotli.status, 415);

    let bad_proto = post(&receiver, PROTOBUF, b"\xff\xff\xff\xff not protobuf");
    assert_eq!(bad_proto.status, 400);
    assert_eq!(bad_proto.header("content-type"), Some(PROTOBUF));
    assert!(!bad_proto.body.is_empty(), "a google.rpc.Status");
    let bad_json = post(&receiver, JSON, b"{\"resourceSpans\": ");
    assert_eq!(bad_json.status, 400);
    let status: serde_json::Value = serde_json::from_slice(&bad_json.body).unwrap();
    assert_eq!(status["code"], 3, "INVALID_ARGUMENT: {status}");
    assert!(status["message"].as_str().unwrap().contains("JSON"));
    assert_eq!(post(&receiver, JSON, b"{\"resourceSpans\": 5}").status, 400);
    let bad_hex =
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"00"}]}]}]}"#;
    assert_eq!(post(&receiver, JSON, bad_hex).status, 400);
    let not_gzip = send(
        "POST",
        &receiver.http_traces_url(),
        Some(PROTOBUF),
        Some("gzip"),
        b"plain",
    );
    assert_eq!(not_gzip.status, 400);

    let get = send("GET", &receiver.http_traces_url(), None, None, b"");
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));
    let unknown = send(
        "GET",
        &format!("http://{}/v2/nothing", receiver.http_addr()),
        None,
        None,
        b"",
    );
    assert_eq!(unknown.status, 404);

    // Every POST to /v1/traces counts, refused or not.
    assert_eq!(receiver.requests(), 11);
    assert_eq!(receiver.spans().len(), 2);
}

#[test]
fn bodies_over_16_mib_get_413() {
    let receiver = Receiver::start(Options::default()).unwrap();
    let big = vec![0u8; MAX_BODY_BYTES + 1];

    // A gzip bomb: 16 MiB + 1 of zeros is a few KiB compressed.
    let bomb = gzip(&big);
    assert!(bomb.len() < 100 * 1024);
    let answer = send(
        "POST",
        &receiver.http_traces_url(),
        Some(PROTOBUF),
        Some("gzip"),
        &bomb,
    );
    assert_eq!(answer.status, 413);

    // Declared too large: refused before a byte of the body is read.
    let declared = raw(
        receiver.http_addr(),
        format!(
            "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: {PROTOBUF}\r\ncontent-length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        )
        .as_bytes(),
        false,
    );
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");

    // Chunked, so only counting the bytes can catch it.
    let mut stream = TcpStream::connect(receiver.http_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: {PROTOBUF}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1024 * 1024];
        let _ = writer.write_all(head.as_bytes());
        for _ in 0..17 {
            let frame = format!("{:x}\r\n", chunk.len());
            if writer.write_all(frame.as_bytes()).is_err()
                || writer.write_all(&chunk).is_err()
                || writer.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n");
    });
    let mut status = [0u8; 12];
    stream.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 413");
    drop(stream);
    sender.join().unwrap();

    // Exactly at the limit is not refused for its size (it is just not protobuf).
    let at_limit = post(&receiver, PROTOBUF, &vec![0xffu8; MAX_BODY_BYTES]);
    assert_eq!(at_limit.status, 400);
    assert_still_serves(&receiver, "after big bodies");
}

#[test]
fn hostile_input_never_crashes_it() {
    let receiver = Receiver::start(Options::default()).unwrap();

    // Broken HTTP, binary noise, an HTTP/2 preface followed by noise, a header flood.
    for noise in [
        &b"GARBAGE\r\n\r\n"[..],
        b"\x00\x01\x02\x03\xff\xfe\xfd",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        b"POST /v1/traces HTTP/1.1\r\ncontent-length: -5\r\n\r\n",
        b"POST /v1/traces HTTP/1.1\r\ncontent-length: 99999999999999999999999\r\n\r\n",
    ] {
        raw(receiver.http_addr(), noise, true);
        raw(receiver.grpc_addr(), noise, true);
    }
    let mut flood = b"POST /v1/traces HTTP/1.1\r\n".to_vec();
    for i in 0..5000 {
        flood.extend_from_slice(format!("x-h{i}: {}\r\n", "v".repeat(50)).as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    raw(receiver.http_addr(), &flood, true);

    // JSON nested far deeper than any decoder allows.
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(post(&receiver, JSON, deep_json.as_bytes()).status, 400);
    // An attribute value nested 200 deep (prost stops at 100).
    let mut value = AnyValue {
        value: Some(any_value::Value::StringValue("bottom".into())),
    };
    for _ in 0..200 {
        value = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![value],
            })),
        };
    }
    let deep = request_with(Span {
        name: "deep".into(),
        attributes: vec![KeyValue {
            key: "deep".into(),
            value: Some(value),
            ..KeyValue::default()
        }],
        ..Span::default()
    });
    assert_eq!(post(&receiver, PROTOBUF, &deep.encode_to_vec()).status, 400);
    // Odd but decodable: ids of the wrong length, control characters, end before start.
    let odd = request_with(Span {
        trace_id: vec![1, 2, 3],
        span_id: vec![],
        parent_span_id: vec![9; 8],
        name: "line\nbreak\u{7}".into(),
        kind: 99,
        start_time_unix_nano: u64::MAX,
        end_time_unix_nano: 0,
        ..Span::default()
    });
    assert_eq!(post(&receiver, PROTOBUF, &odd.encode_to_vec()).status, 200);
    let spans = receiver.wait_for_spans(1, Duration::from_secs(5));
    assert_eq!(spans[0].kind, "unknown(99)");
    assert_eq!(spans[0].trace_id, "010203");
    let tree = receiver.tree();
    assert_eq!(tree.lines().count(), 2, "{tree}");
    assert!(
        tree.contains("line\u{fffd}break\u{fffd} (hostile-test) 0.0 ms"),
        "{tree}"
    );

    // Random protobuf-ish bytes of many shapes.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [1usize, 2, 7, 64, 513, 4096] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let status = post(&receiver, PROTOBUF, &bytes).status;
        assert!(status == 200 || status == 400, "{status}");
        assert!(post(&receiver, JSON, &bytes).status == 400);
    }

    assert_still_serves(&receiver, "after hostile input");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
            .await
            .unwrap();
        client
            .export(valid_request("grpc after hostile input"))
            .await
            .unwrap();
    });
    assert!(receiver
        .spans()
        .iter()
        .any(|s| s.name == "grpc after hostile input" && s.protocol == "grpc"));
}

#[test]
fn faults_seen_by_a_raw_http_client() {
    let receiver = Receiver::start(Options::default()).unwrap();
    let body = valid_request("faulted").encode_to_vec();

    receiver.set_fault(Fault::Status {
        http_status: 503,
        retry_after_secs: Some(7),
    });
    let answer = raw(
        receiver.http_addr(),
        &[
            format!(
                "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: {PROTOBUF}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
            &body,
        ]
        .concat(),
        false,
    );
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nretry-after: 7\r\n"),
        "{answer}"
    );
    assert!(
        receiver.spans().is_empty(),
        "a refused request records nothing"
    );

    receiver.set_fault(Fault::Status {
        http_status: 429,
        retry_after_secs: None,
    });
    let answer = post(&receiver, PROTOBUF, &body);
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("retry-after"), None);

    receiver.set_fault(Fault::Garbage);
    let answer = post(&receiver, PROTOBUF, &body);
    assert_eq!(answer.status, 200);
    assert!(ExportTraceServiceRequest::decode(&answer.body[..]).is_err());
    let answer = post(
        &receiver,
        JSON,
        &serde_json::to_vec(&valid_request("g")).unwrap(),
    );
    assert!(serde_json::from_slice::<serde_json::Value>(&answer.body).is_err());
    assert_eq!(receiver.spans().len(), 2, "garbage answers still record");

    receiver.set_fault(Fault::Delay { ms: 300 });
    let start = Instant::now();
    assert_eq!(post(&receiver, PROTOBUF, &body).status, 200);
    assert!(start.elapsed() >= Duration::from_millis(300));

    // The control endpoint, as Go and Python tests use it: one 503, then success.
    let fault_url = format!("http://{}/fault", receiver.http_addr());
    let set = send(
        "POST",
        &fault_url,
        Some(JSON),
        None,
        br#"{"kind": "status", "http_status": 503, "retry_after_secs": 1, "requests": 1}"#,
    );
    assert_eq!(set.status, 200);
    let current: Fault = serde_json::from_slice(&set.body).unwrap();
    assert_eq!(
        current,
        Fault::Status {
            http_status: 503,
            retry_after_secs: Some(1)
        }
    );
    assert_eq!(post(&receiver, PROTOBUF, &body).status, 503);
    assert_eq!(post(&receiver, PROTOBUF, &body).status, 200);
    assert_eq!(receiver.fault(), Fault::None);
    assert_eq!(
        send(
            "POST",
            &fault_url,
            Some(JSON),
            None,
            b"{\"kind\": \"explode\"}"
        )
        .status,
        400
    );
    let got = send("GET", &fault_url, None, None, b"");
    assert_eq!(got.body, br#"{"kind":"none"}"#);
}

#[test]
fn control_endpoints() {
    let receiver = Receiver::start(Options::default()).unwrap();
    let base = format!("http://{}", receiver.http_addr());
    assert_eq!(
        post(
            &receiver,
            PROTOBUF,
            &valid_request("listed").encode_to_vec()
        )
        .status,
        200
    );
    receiver.wait_for_spans(1, Duration::from_secs(5));

    let spans = send("GET", &format!("{base}/spans"), None, None, b"");
    assert_eq!(spans.status, 200);
    let spans: Vec<ReceivedSpan> = serde_json::from_slice(&spans.body).unwrap();
    assert_eq!(spans, receiver.spans());
    assert_eq!(spans[0].header("content-type"), Some(PROTOBUF));

    let tree = send("GET", &format!("{base}/tree"), None, None, b"");
    let tree = String::from_utf8(tree.body).unwrap();
    assert_eq!(
        tree,
        format!(
            "trace {}\n  listed (hostile-test) 12.3 ms\n",
            "4b".repeat(16)
        )
    );

    assert_eq!(
        send("DELETE", &format!("{base}/spans"), None, None, b"").status,
        204
    );
    assert!(receiver.spans().is_empty());
    assert_eq!(receiver.requests(), 0);
    assert_eq!(
        send("PUT", &format!("{base}/spans"), None, None, b"").status,
        405
    );
}
