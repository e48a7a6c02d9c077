//! HTTPS: a rustls server configuration from PEM files.
//!
//! The certificate file holds the chain, leaf first (what certbot's
//! `fullchain.pem` and most CAs hand out); the key file one private key in
//! PKCS#8, PKCS#1 (RSA) or SEC1 (EC) form. Both are read once at start, so a
//! wrong path or a key that does not match the certificate stops the start
//! with a message saying which.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::Error;

/// A TLS acceptor for the certificate chain in `cert` and the key in `key`,
/// offering HTTP/2 and HTTP/1.1 by ALPN.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, Error> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        Error::Config(format!("TLS {what} {}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("certificate", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", cert, &e))?;
    if chain.is_empty() {
        return Err(bad(
            "certificate",
            cert,
            &"no CERTIFICATE block in the file",
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("key", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            Error::Config(format!(
                "TLS certificate {} and key {} do not work together: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
