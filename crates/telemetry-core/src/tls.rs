//! Which certificate authorities a client trusts for HTTPS, for its events and its trace
//! exports alike: Mozilla's roots bundled in the library (the default, so it works on any
//! machine without a system store) or the platform's, plus the certificates of a PEM file
//! (`ca_file`: an internal CA that signed `https://telemetry.corp.internal`).
//!
//! A `ca_file` **adds** to the roots, it does not replace them: a client may send events to
//! a collector signed by the internal CA and traces to a hosted OpenTelemetry backend signed
//! by a public one. The file is read and checked once, when the client is built
//! ([`CaFile::load`]); a missing file, one without a certificate, or a certificate that
//! cannot be parsed is an error naming the file.
//!
//! ```
//! use telemetry_core::tls::{CaFile, TlsRoots};
//! let err = CaFile::load("/nonexistent/ca.pem").unwrap_err();
//! assert!(err.contains("/nonexistent/ca.pem") && err.contains("cannot be read"));
//! assert_eq!("platform".parse::<TlsRoots>(), Ok(TlsRoots::Platform));
//! assert_eq!(TlsRoots::default(), TlsRoots::Bundled);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize, Serializer};

/// The roots a client starts from; a [`CaFile`] adds to either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsRoots {
    /// Mozilla's root certificates, compiled into the library (`webpki-root-certs`): the same
    /// on every machine, whatever its system store holds.
    #[default]
    Bundled,
    /// The platform's: its verifier (`rustls-platform-verifier`: the system store on Linux,
    /// the Security framework on macOS, CryptoAPI on Windows), so CAs that an administrator
    /// installed are trusted. With a `ca_file` (or over gRPC), the system store's
    /// certificates plus the file's, checked by rustls.
    Platform,
}

impl TlsRoots {
    /// `bundled` or `platform`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsRoots::Bundled => "bundled",
            TlsRoots::Platform => "platform",
        }
    }
}

impl FromStr for TlsRoots {
    type Err = String;
    fn from_str(s: &str) -> Result<TlsRoots, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bundled" => Ok(TlsRoots::Bundled),
            "platform" => Ok(TlsRoots::Platform),
            _ => Err(format!("tls_roots {s:?} is neither bundled nor platform")),
        }
    }
}

impl fmt::Display for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The certificates of a PEM file, read and checked once.
#[derive(Clone, PartialEq, Eq)]
pub struct CaFile {
    path: PathBuf,
    certs: Arc<Vec<CertificateDer<'static>>>,
}

impl fmt::Debug for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaFile")
            .field("path", &self.path)
            .field("certificates", &self.certs.len())
            .finish()
    }
}

/// Largest CA file read: a bundle of every public root is about 250 KB.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Shown as its path (`telemetry status --json`).
impl Serialize for CaFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.path.serialize(s)
    }
}

impl CaFile {
    /// Reads the PEM file at `path`: every `CERTIFICATE` block in it, each checked to be a
    /// certificate a TLS client can trust as a root. Other blocks (a key, a CRL) are
    /// skipped. The error names the file and what is wrong with it.
    pub fn load(path: impl Into<PathBuf>) -> Result<CaFile, String> {
        let path = path.into();
        let shown = path.display();
        // Read like the consent files: a regular file of bounded size, so a path naming
        // /dev/zero, a FIFO or a huge file cannot hang or exhaust the host.
        let bytes = match crate::consent::read_bounded(&path, MAX_CA_FILE_BYTES) {
            crate::consent::Bounded::Content(bytes) => bytes,
            crate::consent::Bounded::Missing => {
                return Err(format!("{shown} cannot be read: no such file"))
            }
            crate::consent::Bounded::Problem(why) => return Err(format!("{shown} {why}")),
        };
        let mut certs = Vec::new();
        for (i, item) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
            let cert = item.map_err(|e| format!("{shown} is not a readable PEM file: {e}"))?;
            let mut check = rustls::RootCertStore::empty();
            check.add(cert.clone()).map_err(|e| {
                format!(
                    "{shown}: certificate {} is not a usable X.509 certificate: {e}",
                    i + 1
                )
            })?;
            certs.push(cert);
        }
        if certs.is_empty() {
            return Err(format!(
                "{shown} holds no certificate (a PEM file with -----BEGIN CERTIFICATE----- blocks)"
            ));
        }
        Ok(CaFile {
            path,
            certs: Arc::new(certs),
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its certificates, DER-encoded.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// Its certificates as trust anchors (what tonic takes).
    #[cfg(feature = "grpc")]
    fn trust_anchors(&self) -> Vec<rustls_pki_types::TrustAnchor<'static>> {
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(self.certs.iter().cloned());
        store.roots
    }
}

/// What one connection trusts: the roots and, maybe, a file's certificates on top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// The roots to start from.
    pub roots: TlsRoots,
    /// Certificates added to them.
    pub extra: Option<CaFile>,
}

impl Trust {
    /// ureq's TLS configuration for this trust: the bundled roots (Mozilla's, from
    /// `webpki-root-certs`) or the platform verifier, or, with a file, the bundled roots or the
    /// system store's certificates plus the file's; always ring as rustls's provider (ureq is
    /// built without a provider or a root set of its own). Reads the system store with a
    /// file and platform roots, so call it where I/O may happen (a worker or export thread,
    /// not the host's capture path).
    pub(crate) fn ureq_config(&self) -> ureq::tls::TlsConfig {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let roots = match (&self.extra, self.roots) {
            (None, TlsRoots::Bundled) => RootCerts::Specific(bundled_roots()),
            (None, TlsRoots::Platform) => RootCerts::PlatformVerifier,
            (Some(file), roots) => {
                let mut all: Vec<Certificate<'static>> = match roots {
                    TlsRoots::Bundled => bundled_roots().as_ref().clone(),
                    TlsRoots::Platform => system_store()
                        .iter()
                        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                        .collect(),
                };
                all.extend(
                    file.certificates()
                        .iter()
                        .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
                );
                RootCerts::Specific(Arc::new(all))
            }
        };
        TlsConfig::builder()
            .root_certs(roots)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build()
    }

    /// tonic's TLS configuration for this trust: Mozilla's roots or the system store's, plus
    /// the file's certificates (tonic adds them to the roots).
    #[cfg(feature = "grpc")]
    pub(crate) fn tonic_config(&self) -> tonic::transport::ClientTlsConfig {
        let mut config = tonic::transport::ClientTlsConfig::new();
        config = match self.roots {
            TlsRoots::Bundled => config.with_webpki_roots(),
            TlsRoots::Platform => config.with_native_roots(),
        };
        if let Some(file) = &self.extra {
            config = config.trust_anchors(file.trust_anchors());
        }
        config
    }
}

/// Mozilla's roots as ureq certificates, made once: they borrow the static DER bytes of
/// `webpki-root-certs`, so the list is about 150 pointers, shared by every client.
fn bundled_roots() -> Arc<Vec<ureq::tls::Certificate<'static>>> {
    static ROOTS: std::sync::OnceLock<Arc<Vec<ureq::tls::Certificate<'static>>>> =
        std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            Arc::new(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()))
                    .collect(),
            )
        })
        .clone()
}

/// The platform store's certificates (rustls-native-certs, which the platform verifier
/// itself reads on Linux); what cannot be read is logged at debug level and skipped.
fn system_store() -> Vec<CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        log::debug!("telemetry: reading the system's certificate store: {e}");
    }
    found.certs
}

/// Whether `error`, or an error it wraps, is a certificate the client does not trust (an
/// unknown issuer, a name mismatch, an expired certificate): retrying cannot fix it.
pub(crate) fn is_certificate_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(rustls::Error::InvalidCertificate(_)) = e.downcast_ref::<rustls::Error>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if is_certificate_error(inner) {
                    return true;
                }
            }
        }
        next = e.source();
    }
    false
}

/// [`is_certificate_error`] for ureq's error (which names no source).
pub(crate) fn is_ureq_certificate_error(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Rustls(e) => matches!(e, rustls::Error::InvalidCertificate(_)),
        ureq::Error::Io(e) => is_certificate_error(e),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = CaFile::load(&empty).unwrap_err();
        assert!(
            err.contains("empty.pem") && err.contains("holds no certificate"),
            "{err}"
        );

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = CaFile::load(&garbage).unwrap_err();
        assert!(err.contains("certificate 1 is not a usable"), "{err}");

        let err = CaFile::load(dir.path()).unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
        // A device or FIFO is refused before reading: /dev/zero would never end.
        let err = CaFile::load("/dev/zero").unwrap_err();
        assert!(err.contains("is not a regular file"), "{err}");
    }
}
