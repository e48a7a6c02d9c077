//! Runs tests/vectors/usage.json: recorded operations give the same report at every level,
//! plain and anonymized, in every language. `TELEMETRY_WRITE_VECTORS=1` fills in the
//! expected reports from this implementation (review the diff before committing it).

use std::time::Duration;

use serde_json::Value;
use telemetry_core::anonymize::PropertyKind;
use telemetry_core::usage::{ReportOptions, Section, Usage};
use telemetry_core::ClientConfig;

fn kind(v: &Value) -> PropertyKind {
    v.as_str().unwrap().parse().unwrap()
}

/// Declares, records and sets what the case says, on a client built from its config.
fn prepare(case: &Value) -> (telemetry_core::Client, Usage) {
    let config: ClientConfig = serde_json::from_value(case["config"].clone()).unwrap();
    let client = config.into_builder().unwrap().build().unwrap();
    let usage = client.usage().clone();
    let mut timings = std::collections::BTreeMap::new();
    let mut counters = std::collections::BTreeMap::new();
    for d in case["declare"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        let labels = d["labels"].as_array().unwrap();
        if d["type"] == "timing" {
            let mut b = usage.timing(name);
            for l in labels {
                b = b.label(l[0].as_str().unwrap(), kind(&l[1]));
            }
            if let Some(bounds) = d.get("bounds_millis") {
                let bounds: Vec<Duration> = bounds
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| Duration::from_millis(b.as_u64().unwrap()))
                    .collect();
                b = b.bounds(&bounds);
            }
            timings.insert(name.to_string(), b.build().unwrap());
        } else {
            let mut b = usage.counter(name);
            for l in labels {
                b = b.label(l[0].as_str().unwrap(), kind(&l[1]));
            }
            counters.insert(name.to_string(), b.build().unwrap());
        }
    }
    for r in case["record"].as_array().unwrap() {
        let family = r["family"].as_str().unwrap();
        let labels: Vec<&str> = r["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if let Some(n) = r.get("add") {
            counters[family].add(&labels, n.as_u64().unwrap()).unwrap();
            continue;
        }
        let timing = timings[family].with(&labels).unwrap();
        let at = r["at"].as_u64().unwrap();
        if r["ok"] == true {
            let micros = r["duration_micros"].as_u64().unwrap();
            timing.record_at(Duration::from_micros(micros), at);
        } else {
            timing.record_failure_at(at);
        }
    }
    for s in case["sections"].as_array().unwrap() {
        let mut section =
            Section::new(s["value"].clone()).level(s["level"].as_u64().unwrap() as u8);
        for (k, v) in s["kinds"].as_object().unwrap() {
            section = section.kind(k.clone(), kind(v));
        }
        usage
            .set_section(s["name"].as_str().unwrap(), section)
            .unwrap();
    }
    (client, usage)
}

fn options(e: &Value) -> ReportOptions {
    ReportOptions {
        details_level: e["details_level"].as_u64().unwrap().min(255) as u8,
        anonymize: e["anonymize"].as_bool().unwrap(),
        histograms: e["histograms"].as_bool(),
    }
}

#[test]
fn usage_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/usage.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    let write = std::env::var("TELEMETRY_WRITE_VECTORS").is_ok_and(|v| v == "1");
    let mut checked = 0;
    for case in doc["cases"].as_array_mut().unwrap() {
        let name = case["name"].as_str().unwrap().to_string();
        let (client, usage) = prepare(case);
        for expect in case["expect"].as_array_mut().unwrap() {
            let mut got = usage.report(&options(expect));
            let system = got.as_object_mut().unwrap().remove("system");
            if write {
                if system.is_some() {
                    got["system"] = Value::String("<machine>".into());
                }
                expect["report"] = got;
                continue;
            }
            let mut want = expect["report"].clone();
            let wants_system = want.as_object_mut().unwrap().remove("system").is_some();
            assert_eq!(
                system.as_ref().is_some_and(Value::is_object),
                wants_system,
                "{name}: system at {expect}"
            );
            assert_eq!(
                got,
                want,
                "{name}: {}",
                serde_json::json!({
                "details_level": expect["details_level"], "anonymize": expect["anonymize"]})
            );
            checked += 1;
        }
        client.shutdown(Duration::ZERO);
    }
    if write {
        std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        println!("wrote {path}");
    } else {
        assert!(checked > 0);
        println!("{checked} usage report vectors passed");
    }
}
