//! HTTPS: a collector with a certificate from a private CA, reached by ureq
//! (the client telemetry-core sends with) trusting that CA; refused by one that
//! does not; and clear start errors for unusable certificate files.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use telemetry_collector::{Collector, Error};

/// A CA and a server certificate for 127.0.0.1/localhost signed by it, as PEM
/// files in `dir`; returns the CA certificate's PEM.
fn make_certificates(dir: &Path) -> String {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "telemetry test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    ca.pem()
}

/// A client trusting the CA in `ca_pem`, or else Mozilla's roots (as telemetry-core's
/// bundled roots are: ureq is built without a root set or a crypto provider of its own).
fn agent_trusting(ca_pem: Option<&str>) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots = match ca_pem {
        Some(pem) => RootCerts::Specific(Arc::new(vec![
            Certificate::from_pem(pem.as_bytes()).unwrap()
        ])),
        None => RootCerts::new_with_certs(
            &webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()))
                .collect::<Vec<_>>(),
        ),
    };
    let tls = TlsConfig::builder()
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .new_agent()
}

#[test]
fn events_arrive_over_https_from_a_client_that_trusts_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_certificates(dir.path());
    let collector = Collector::builder()
        .listen("127.0.0.1:0")
        .db(":memory:")
        .tls(dir.path().join("cert.pem"), dir.path().join("key.pem"))
        .start()
        .unwrap();
    let url = collector.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let body = json!({"api_key": "phc_tls", "batch": [
        {"event": "over_tls", "distinct_id": "i-1", "properties": {"product": "chroma"}}]});
    let agent = agent_trusting(Some(&ca));
    let mut response = agent
        .post(&format!("{url}/batch/"))
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.body_mut().read_to_string().unwrap(),
        r#"{"status":1}"#
    );
    // By name as well as by address.
    let by_name = url.replace("127.0.0.1", "localhost");
    let health = agent.get(&format!("{by_name}/health")).call().unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(collector.summary().unwrap().events, 1);

    // The public roots do not know this CA: the handshake fails, nothing is stored.
    let untrusting = agent_trusting(None);
    let err = untrusting
        .post(&format!("{url}/batch/"))
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate")
            || err.to_string().to_lowercase().contains("issuer"),
        "{err}"
    );
    // Plain HTTP to the TLS port is not served.
    let plain = agent
        .get(&format!("http://{}/health", collector.addr()))
        .call();
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    assert_eq!(collector.summary().unwrap().events, 1);
}

#[test]
fn unusable_certificate_files_stop_the_start_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let start = |cert: &str, key: &str| {
        Collector::builder()
            .listen("127.0.0.1:0")
            .db(":memory:")
            .tls(dir.path().join(cert), dir.path().join(key))
            .start()
    };
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.path().join("other-key.pem"), other.serialize_pem()).unwrap();

    for (cert, key, says) in [
        ("missing.pem", "key.pem", "missing.pem"),
        ("empty.pem", "key.pem", "empty.pem"),
        ("cert.pem", "missing-key.pem", "missing-key.pem"),
        ("cert.pem", "other-key.pem", "do not work together"),
    ] {
        match start(cert, key) {
            Err(Error::Config(message)) => assert!(message.contains(says), "{message}"),
            Err(e) => panic!("{cert}/{key}: wrong error {e}"),
            Ok(_) => panic!("{cert}/{key}: started"),
        }
    }
}
