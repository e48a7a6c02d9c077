//! The shared observability vectors (`tests/vectors/otel.json`): configuration
//! resolution, sampler decisions, W3C `traceparent` parsing and the finished-span wire
//! encoding. The Go and Python suites run the same file through their bindings.

use serde_json::Value;
use telemetry_core::env::MapEnvironment;
use telemetry_core::otel::config::{self, Sampler};
use telemetry_core::otel::propagation;
use telemetry_core::otel::wire::{self, AttributeValue, FinishedSpan};
use telemetry_core::otel::OtelSettings;
use telemetry_core::profile::Profile;
use telemetry_core::tls::{CaFile, TlsRoots, Trust};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors");

fn vectors() -> Value {
    let path = format!("{VECTORS}/otel.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `{vectors}` in a case's paths: the absolute path of tests/vectors.
fn paths(text: &str) -> String {
    let dir = std::fs::canonicalize(VECTORS).unwrap();
    text.replace("{vectors}", &dir.display().to_string())
}

fn hex16(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn configuration_vectors() {
    let v = vectors();
    let cases = v["config"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let profile: Profile = case["profile"].as_str().unwrap().parse().unwrap();
        let mut env = MapEnvironment::new();
        for (k, val) in case["env"].as_object().unwrap() {
            env.set(k.clone(), paths(val.as_str().unwrap()));
        }
        let settings: OtelSettings = serde_json::from_value(case["settings"].clone()).unwrap();
        // The client's own TLS settings (`ca_file`, `tls_roots`), as a client passes them.
        let trust = Trust {
            roots: case["tls_roots"]
                .as_str()
                .map_or(TlsRoots::Bundled, |r| r.parse().unwrap()),
            extra: case["ca_file"]
                .as_str()
                .map(|p| CaFile::load(paths(p)).unwrap()),
        };
        let c = config::resolve_with_trust(
            &profile,
            case["product"].as_str().unwrap(),
            &settings,
            &env,
            &trust,
        );
        let shown = c.to_status_json();
        let expect = case["expect"].as_object().unwrap();
        for (key, want) in expect {
            match key.as_str() {
                "endpoint" => assert_eq!(&serde_json::json!(c.endpoint), want, "{name}: endpoint"),
                "protocol" => assert_eq!(c.protocol.as_str(), want, "{name}: protocol"),
                "granularity" => assert_eq!(c.granularity.as_str(), want, "{name}: granularity"),
                "active" => assert_eq!(&Value::Bool(c.is_active()), want, "{name}: active"),
                "disabled" => assert_eq!(&Value::Bool(c.disabled), want, "{name}: disabled"),
                "service_name" => assert_eq!(c.service_name, *want, "{name}: service name"),
                "compression" => assert_eq!(shown["compression"], *want, "{name}: compression"),
                "certificate" => {
                    let want = want.as_str().map(paths);
                    let got = c
                        .certificate
                        .as_ref()
                        .map(|f| f.path().display().to_string());
                    assert_eq!(got, want, "{name}: certificate");
                    assert_eq!(shown["certificate"], serde_json::json!(got), "{name}");
                }
                "tls_roots" => assert_eq!(shown["tls_roots"], *want, "{name}: tls_roots"),
                "headers" => {
                    let got: Vec<Value> = c
                        .headers
                        .iter()
                        .map(|(k, v)| serde_json::json!([k, v]))
                        .collect();
                    assert_eq!(&Value::Array(got), want, "{name}: headers");
                }
                "resource" => assert_eq!(
                    &serde_json::to_value(&c.resource).unwrap(),
                    want,
                    "{name}: resource"
                ),
                "sampler" => assert_eq!(
                    &serde_json::to_value(c.sampler).unwrap(),
                    want,
                    "{name}: sampler"
                ),
                "warnings" => assert_eq!(
                    &serde_json::to_value(&c.warnings).unwrap(),
                    want,
                    "{name}: warnings"
                ),
                "warnings_contain" => {
                    let parts: Vec<String> = want
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| paths(p.as_str().unwrap()))
                        .collect();
                    assert!(
                        c.warnings
                            .iter()
                            .any(|w| parts.iter().all(|p| w.contains(p.as_str()))),
                        "{name}: no warning holds {parts:?}: {:?}",
                        c.warnings
                    );
                }
                other => panic!("{name}: unknown expectation {other}"),
            }
        }
        // Header values never reach the status output.
        for (_, value) in &c.headers {
            assert!(!shown.to_string().contains(&format!("\"{value}\"")) || value.len() < 2);
        }
    }
}

#[test]
fn sampling_vectors() {
    for case in vectors()["sampling"].as_array().unwrap() {
        let sampler: Sampler = serde_json::from_value(case["sampler"].clone()).unwrap();
        let id = hex16(case["trace_id"].as_str().unwrap());
        let parent = case["parent_sampled"].as_bool();
        assert_eq!(
            sampler.should_sample(&id, parent),
            case["expect"].as_bool().unwrap(),
            "{case}"
        );
    }
}

#[test]
fn traceparent_vectors() {
    for case in vectors()["traceparent"].as_array().unwrap() {
        let header = case["traceparent"].as_str().unwrap();
        let got = propagation::extract(header, case["tracestate"].as_str());
        match &case["expect"] {
            Value::Null => assert!(got.is_none(), "{header} should be refused: {got:?}"),
            want => {
                let sc = got.unwrap_or_else(|| panic!("{header} should parse"));
                assert_eq!(sc.trace_id().to_string(), want["trace_id"], "{header}");
                assert_eq!(sc.span_id().to_string(), want["span_id"], "{header}");
                assert_eq!(Value::Bool(sc.is_sampled()), want["sampled"], "{header}");
                if let Some(ts) = want.get("tracestate") {
                    assert_eq!(Value::String(sc.trace_state().header()), *ts, "{header}");
                }
                // Formatting it again gives the canonical version-00 header.
                let (again, _) = propagation::inject(&sc);
                assert_eq!(again.len(), 55);
                assert!(again.starts_with("00-"));
            }
        }
    }
}

fn wire_span(case: &Value) -> FinishedSpan {
    let s = &case["span"];
    let attrs = |v: &Value| -> Vec<(String, AttributeValue)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let key = a[0].as_str().unwrap().to_string();
                let value = match a[1].as_str().unwrap() {
                    "str" => AttributeValue::Str(a[2].as_str().unwrap().into()),
                    "bool" => AttributeValue::Bool(a[2].as_bool().unwrap()),
                    "int" => AttributeValue::Int(a[2].as_i64().unwrap()),
                    "float" => AttributeValue::Float(a[2].as_f64().unwrap()),
                    t => panic!("type {t}"),
                };
                (key, value)
            })
            .collect()
    };
    let mut span_id = [0u8; 8];
    span_id.copy_from_slice(&hex16(&format!("{:0>32}", s["span_id"].as_str().unwrap()))[8..]);
    let mut parent = [0u8; 8];
    parent.copy_from_slice(&hex16(&format!("{:0>32}", s["parent_span_id"].as_str().unwrap()))[8..]);
    FinishedSpan {
        trace_id: hex16(s["trace_id"].as_str().unwrap()),
        span_id,
        parent_span_id: parent,
        sampled: s["sampled"].as_bool().unwrap(),
        parent_remote: s["parent_remote"].as_bool().unwrap(),
        kind: s["kind"].as_u64().unwrap() as u8,
        start_unix_nanos: s["start_unix_nanos"].as_u64().unwrap(),
        end_unix_nanos: s["end_unix_nanos"].as_u64().unwrap(),
        status: s["status"].as_u64().unwrap() as u8,
        status_message: s["status_message"].as_str().unwrap().into(),
        name: s["name"].as_str().unwrap().into(),
        trace_state: s["trace_state"].as_str().unwrap().into(),
        attributes: attrs(&s["attributes"]),
        events: s["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["time_unix_nanos"].as_u64().unwrap(),
                    attrs(&e["attributes"]),
                )
            })
            .collect(),
    }
}

#[test]
fn wire_vectors() {
    let v = vectors();
    let cases = v["wire"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let span = wire_span(case);
        let bytes = wire::encode(&span);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, case["hex"].as_str().unwrap(), "{}", case["name"]);
        let data = wire::decode(&bytes).unwrap();
        assert_eq!(data.name, span.name);
        assert_eq!(data.attributes.len(), span.attributes.len());
    }
    for case in v["wire_invalid"].as_array().unwrap() {
        let hex = case["hex"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let err = wire::decode(&bytes).unwrap_err();
        assert!(
            err.to_string()
                .contains(case["error_contains"].as_str().unwrap()),
            "{}: {err}",
            case["name"]
        );
    }
}
