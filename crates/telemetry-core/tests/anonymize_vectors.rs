//! Runs the shared anonymization vectors (`tests/vectors/anonymize.json`), which the Go and
//! Python suites run too, so the three languages agree on every byte that leaves a machine.

use std::path::Path;

use serde_json::Value;
use telemetry_core::anonymize::{anonymize_json, from_hex_secret, LocalNames, PropertyKind};

fn local_names(v: &Value) -> LocalNames {
    let field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    LocalNames {
        home: field("home"),
        user: field("user"),
        host: field("host"),
    }
}

#[test]
fn every_anonymization_vector_holds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/anonymize.json");
    let text = std::fs::read_to_string(&path).expect("the vectors file is readable");
    let doc: Value = serde_json::from_str(&text).expect("the vectors file is JSON");
    let secret = from_hex_secret(doc["secret_hex"].as_str().expect("secret_hex is a string"))
        .expect("secret_hex is 64 hex characters");
    let cases = doc["cases"].as_array().expect("cases is an array");

    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("every case has a name");
        let names = local_names(case.get("local_names").unwrap_or(&doc["local_names"]));
        let precision = case["precision"].as_u64().expect("precision is a number") as u32;
        let kind: Option<PropertyKind> =
            serde_json::from_value(case["kind"].clone()).expect("kind is null or a known kind");
        let expected = if case["dropped"] == Value::Bool(true) {
            None
        } else {
            Some(
                case.get("expect")
                    .cloned()
                    .expect("a case has expect or dropped"),
            )
        };
        let actual = anonymize_json(secret, precision, names, kind, case["input"].clone());
        if actual != expected {
            failures.push(format!(
                "{name}\n   input:    {}\n   expected: {expected:?}\n   actual:   {actual:?}",
                case["input"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!("{} anonymization vectors passed", cases.len());
}
