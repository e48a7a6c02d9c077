//! The collector against ureq 3, the client telemetry-core delivers with:
//! pooled keep-alive connections, gzip bodies, and 4xx seen as errors.

mod common;

use common::*;
use serde_json::json;

#[test]
fn ureq_agent_posts_gzip_batches_over_one_pooled_connection() {
    let c = start();
    let agent = ureq::Agent::new_with_defaults();
    for n in 0..3 {
        let body = serde_json::to_vec(&batch(vec![event("ureq", "inst", &uuid(40, n))])).unwrap();
        let mut response = agent
            .post(format!("{}/batch/", c.handle.url()))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .send(&gzip(&body)[..])
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.body_mut().read_to_string().unwrap(),
            r#"{"status":1}"#
        );
    }
    assert_eq!(c.handle.summary().unwrap().events, 3);

    let refused = agent
        .post(format!("{}/batch/", c.handle.url()))
        .send(&serde_json::to_vec(&json!({"api_key": "k", "batch": [{}]})).unwrap()[..]);
    assert!(
        matches!(refused, Err(ureq::Error::StatusCode(400))),
        "{refused:?}"
    );

    let summary = agent
        .get(format!("{}/api/summary", c.handle.url()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(summary.contains(r#""events":3"#), "{summary}");
}
