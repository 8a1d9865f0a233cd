//! The served certificate: loaded from PEM files, held in an `ArcSwap` that every handshake
//! reads, and replaced whole when the files change. A replacement that cannot be used (not
//! PEM, no certificate, a key that does not fit) leaves the old one in place.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::TlsError;
use super::client_cert::sha256_hex;

/// What is logged of a certificate: nothing secret, nothing about patients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// SHA-256 of the certificate's DER, lowercase hex.
    pub sha256_fingerprint: String,
    /// The serial number, lowercase hex.
    pub serial: String,
    /// End of validity, as the certificate states it (e.g. `Jan  1 00:00:00 2030 +00:00`).
    pub not_after: String,
    /// Whether the certificate is past its end of validity now.
    pub expired: bool,
}

/// A certificate being served, with what is logged of it.
struct Loaded {
    key: Arc<CertifiedKey>,
    summary: CertificateSummary,
}

/// What the two files looked like when last read: modification time and size of each.
type Stamp = [(Option<SystemTime>, u64); 2];

pub(super) struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<Loaded>,
    /// The files' stamp at the last attempt, successful or not: a broken file is reported
    /// once, and tried again when it changes.
    seen: Mutex<Stamp>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("current", &self.current.load().summary)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

impl ReloadingCert {
    pub(super) fn load(
        cert_path: PathBuf,
        key_path: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<ReloadingCert, TlsError> {
        let seen = stamp(&cert_path, &key_path);
        let loaded = read(&cert_path, &key_path, &provider)?;
        log_loaded(&loaded.summary, "serving TLS certificate");
        Ok(ReloadingCert {
            cert_path,
            key_path,
            provider,
            current: ArcSwap::from_pointee(loaded),
            seen: Mutex::new(seen),
        })
    }

    pub(super) fn summary(&self) -> CertificateSummary {
        self.current.load().summary.clone()
    }

    /// Reads the files again; on success, serves them from the next handshake on.
    pub(super) fn reload(&self) -> Result<CertificateSummary, TlsError> {
        let seen = stamp(&self.cert_path, &self.key_path);
        if let Ok(mut s) = self.seen.lock() {
            *s = seen;
        }
        match read(&self.cert_path, &self.key_path, &self.provider) {
            Ok(loaded) => {
                let summary = loaded.summary.clone();
                self.current.store(Arc::new(loaded));
                log_loaded(&summary, "TLS certificate reloaded");
                Ok(summary)
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "TLS certificate reload failed; still serving the previous certificate"
                );
                Err(e)
            }
        }
    }

    /// Reloads when either file's modification time or size changed since the last attempt.
    pub(super) fn reload_if_changed(&self) {
        let now = stamp(&self.cert_path, &self.key_path);
        let changed = self.seen.lock().map(|s| *s != now).unwrap_or(true);
        if changed {
            let _ = self.reload();
        }
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    // `metadata` follows symbolic links: a Kubernetes secret volume swaps a link.
    let one = |p: &Path| match std::fs::metadata(p) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    };
    [one(cert), one(key)]
}

fn log_loaded(summary: &CertificateSummary, message: &str) {
    if summary.expired {
        tracing::warn!(
            sha256 = %summary.sha256_fingerprint,
            serial = %summary.serial,
            not_after = %summary.not_after,
            "the TLS certificate has expired: clients will refuse it"
        );
    }
    tracing::info!(
        sha256 = %summary.sha256_fingerprint,
        serial = %summary.serial,
        not_after = %summary.not_after,
        "{message}"
    );
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads and checks a certificate chain and its key.
fn read(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<Loaded, TlsError> {
    let cert_pem = read_file(cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_path.to_owned(),
            what: format!("not a PEM certificate file ({e})"),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::Pem {
            path: cert_path.to_owned(),
            what: "holds no certificate".to_owned(),
        });
    };
    let summary = summarize(leaf).map_err(|what| TlsError::Pem {
        path: cert_path.to_owned(),
        what,
    })?;
    let key_pem = read_file(key_path)?;
    // The parser's error names the PEM problem, never the key's bytes.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        path: key_path.to_owned(),
        what: format!("no usable private key ({e})"),
    })?;
    // Checks that the key is the certificate's (a mismatch is refused here, not at the
    // first handshake).
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(TlsError::Certificate)?;
    Ok(Loaded {
        key: Arc::new(certified),
        summary,
    })
}

fn summarize(der: &CertificateDer<'_>) -> Result<CertificateSummary, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("the first certificate cannot be read ({e})"))?;
    let validity = cert.validity();
    Ok(CertificateSummary {
        sha256_fingerprint: sha256_hex(der.as_ref()),
        serial: cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        not_after: validity.not_after.to_string(),
        expired: validity.not_after.timestamp() < now_unix(),
    })
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
