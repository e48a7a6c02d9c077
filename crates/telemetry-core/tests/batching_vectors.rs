//! Runs tests/vectors/batching.json: every offer and drain emits exactly what it says.

use serde_json::Value;
use telemetry_core::batch::Batcher;
use telemetry_core::Event;

fn emitted(events: Vec<telemetry_core::batch::Outgoing>) -> Vec<Value> {
    events
        .into_iter()
        .map(|o| serde_json::json!({"event": o.event.name, "properties": o.event.properties}))
        .collect()
}

#[test]
fn batching_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/batching.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut batcher = Batcher::default();
        for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let got = if let Some(offer) = step.get("offer") {
                let event: Event = serde_json::from_value(offer.clone()).unwrap();
                emitted(batcher.offer(event).into_iter().collect())
            } else {
                emitted(batcher.drain())
            };
            assert_eq!(
                got,
                step["emits"].as_array().unwrap().clone(),
                "{name}, step {i}"
            );
        }
    }
    println!("{} batching vectors passed", cases.len());
}
