//! TLS served by the server itself: rustls with the ring provider, TLS 1.2 and 1.3 only,
//! a certificate that is reloaded from its files without a restart, and optional client
//! certificates (mutual TLS).
//!
//! - Protocol versions: 1.3 and 1.2. rustls implements nothing older, so a TLS 1.0 or 1.1
//!   client gets a `protocol_version` alert.
//! - Cipher suites: rustls' defaults for the ring provider, every one an AEAD with an
//!   ephemeral (EC)DHE key exchange: TLS 1.3 AES-256-GCM, AES-128-GCM and ChaCha20-Poly1305;
//!   TLS 1.2 ECDHE-ECDSA and ECDHE-RSA with AES-256-GCM, AES-128-GCM and ChaCha20-Poly1305.
//!   No CBC, no RC4, no static RSA key exchange, no export or null suites. Groups: X25519,
//!   P-256, P-384.
//! - ALPN offers `h2` and `http/1.1`.
//! - The certificate (`certs`): a [`rustls::server::ResolvesServerCert`] over an `ArcSwap`,
//!   reloaded when its files change (polled) or when [`TlsAcceptor::reload`] is called
//!   (the binary does on SIGHUP). A reload that fails keeps the certificate being served.
//! - Client certificates (`client_cert`): with a client CA, the handshake asks for a
//!   certificate verified against it (optional or required); a verified one is handed to
//!   every request of the connection as a [`ClientCertificate`] extension.

mod certs;
mod client_cert;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;

pub use certs::CertificateSummary;
pub use client_cert::ClientCertificate;

/// Where the served certificate comes from, and whether clients must present one.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM file with the certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file of the CAs that issue client certificates; `None`: none are asked for.
    pub client_ca: Option<PathBuf>,
    /// With a client CA: whether a client without a certificate may connect at all.
    pub client_auth: ClientAuth,
}

/// Whether a client certificate is required (with a client CA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Asked for; a client without one connects (and must authenticate otherwise). One it
    /// does present must verify.
    #[default]
    Optional,
    /// The handshake fails without a certificate that verifies against the client CA.
    Required,
}

/// Why TLS could not be set up or a certificate not (re)loaded. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file is not the PEM that was expected.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// The key does not fit the certificate, or rustls refused them.
    #[error("the certificate and key cannot be used: {0}")]
    Certificate(rustls::Error),
    /// The client CA cannot verify client certificates.
    #[error("the client CA cannot be used: {0}")]
    ClientCa(String),
}

/// Accepts TLS connections. Cheap to clone: clones share the certificate being served.
#[derive(Clone)]
pub struct TlsAcceptor {
    acceptor: tokio_rustls::TlsAcceptor,
    certs: Arc<certs::ReloadingCert>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("certs", &self.certs)
            .finish_non_exhaustive()
    }
}

/// The one crypto provider: ring (never aws-lc-rs, which needs a C and cmake build).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsAcceptor {
    /// Loads the certificate, key and client CA, and builds the TLS configuration.
    pub fn new(settings: &TlsSettings) -> Result<TlsAcceptor, TlsError> {
        let provider = provider();
        let certs = Arc::new(certs::ReloadingCert::load(
            settings.cert.clone(),
            settings.key.clone(),
            provider.clone(),
        )?);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsError::Certificate)?;
        let builder = match &settings.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let verifier = client_verifier(path, settings.client_auth, provider)?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(certs.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            certs,
        })
    }

    /// The certificate being served.
    pub fn current(&self) -> CertificateSummary {
        self.certs.summary()
    }

    /// Reads the certificate and key files again and serves them from the next handshake
    /// on. On error the certificate being served stays.
    pub fn reload(&self) -> Result<CertificateSummary, TlsError> {
        self.certs.reload()
    }

    /// Polls the certificate and key files every `interval` (modification time and size)
    /// and reloads when either changed, logging the outcome; stops when the task is
    /// aborted or the runtime ends.
    pub fn spawn_watcher(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let certs = self.certs.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let certs = certs.clone();
                // File reads and parsing are blocking work.
                let _ = tokio::task::spawn_blocking(move || certs.reload_if_changed()).await;
            }
        })
    }

    /// The handshake; then the verified client certificate, if any.
    pub(crate) async fn accept(
        &self,
        tcp: TcpStream,
    ) -> io::Result<(
        tokio_rustls::server::TlsStream<TcpStream>,
        Option<ClientCertificate>,
    )> {
        let stream = self.acceptor.accept(tcp).await?;
        let client = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|der| match ClientCertificate::from_der(der) {
                Ok(c) => Some(c),
                Err(e) => {
                    // Verified by webpki, so this is an oddity of the parser: the request
                    // goes on without a client identity rather than failing.
                    tracing::warn!(error = %e, "a verified client certificate could not be read");
                    None
                }
            });
        Ok((stream, client))
    }
}

/// Verifies client certificates against the CAs of `path`.
fn client_verifier(
    path: &std::path::Path,
    auth: ClientAuth,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            what: format!("not a PEM certificate file ({e})"),
        })?;
        roots
            .add(cert)
            .map_err(|e| TlsError::ClientCa(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "holds no certificate".to_owned(),
        });
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = match auth {
        ClientAuth::Required => builder,
        ClientAuth::Optional => builder.allow_unauthenticated(),
    };
    builder
        .build()
        .map_err(|e| TlsError::ClientCa(e.to_string()))
}

/// Marks a request that came over TLS (so the base URL derived from `Host` is `https`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverTls;

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType, SerialNumber,
    };

    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        pem: String,
    }

    fn ca() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "unit test CA");
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A leaf certificate and its key, PEM.
    fn leaf(ca: &Ca, serial: u64, params: CertificateParams) -> (String, String, Vec<u8>) {
        let mut params = params;
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    fn server_params() -> CertificateParams {
        CertificateParams::new(vec!["localhost".to_owned()]).unwrap()
    }

    #[test]
    fn a_failed_reload_keeps_the_certificate_being_served() {
        let dir = std::env::temp_dir().join(format!("caduceus-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        let ca = ca();
        let (cert1, key1, der1) = leaf(&ca, 1, server_params());
        std::fs::write(&cert_path, &cert1).unwrap();
        std::fs::write(&key_path, &key1).unwrap();
        let acceptor = TlsAcceptor::new(&TlsSettings {
            cert: cert_path.clone(),
            key: key_path.clone(),
            client_ca: None,
            client_auth: ClientAuth::Optional,
        })
        .unwrap();
        let first = acceptor.current();
        assert_eq!(first.sha256_fingerprint, client_cert::sha256_hex(&der1));
        assert_eq!(first.serial, "01");
        assert!(!first.expired);

        // Not PEM.
        std::fs::write(&cert_path, "garbage").unwrap();
        assert!(matches!(acceptor.reload(), Err(TlsError::Pem { .. })));
        assert_eq!(acceptor.current(), first);
        // A key that is not the certificate's.
        let (cert2, key2, der2) = leaf(&ca, 2, server_params());
        std::fs::write(&cert_path, &cert2).unwrap();
        assert!(matches!(acceptor.reload(), Err(TlsError::Certificate(_))));
        assert_eq!(acceptor.current(), first);
        // The pair: served.
        std::fs::write(&key_path, &key2).unwrap();
        let second = acceptor.reload().unwrap();
        assert_eq!(second.sha256_fingerprint, client_cert::sha256_hex(&der2));
        assert_eq!(acceptor.current(), second);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_files_and_bad_client_cas_are_errors() {
        let settings = TlsSettings {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
            client_ca: None,
            client_auth: ClientAuth::Optional,
        };
        let e = TlsAcceptor::new(&settings).unwrap_err();
        assert!(matches!(e, TlsError::Read { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");

        let dir = std::env::temp_dir().join(format!("caduceus-tls-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("empty.pem"), "").unwrap();
        let e = client_verifier(&dir.join("empty.pem"), ClientAuth::Required, provider())
            .err()
            .unwrap();
        assert!(e.to_string().contains("holds no certificate"), "{e}");
        std::fs::write(dir.join("ca.pem"), ca().pem).unwrap();
        assert!(client_verifier(&dir.join("ca.pem"), ClientAuth::Optional, provider()).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn client_certificates_are_read() {
        let ca = ca();
        let mut params = CertificateParams::new(vec!["client.example.org".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "practitioner-app");
        params.subject_alt_names.push(SanType::URI(
            "spiffe://example.org/ns/fhir/sa/app".try_into().unwrap(),
        ));
        let (_, _, der) = leaf(&ca, 7, params);
        let c = ClientCertificate::from_der(&der).unwrap();
        assert_eq!(c.subject_cn.as_deref(), Some("practitioner-app"));
        assert_eq!(c.dns_names, ["client.example.org"]);
        assert_eq!(c.uris, ["spiffe://example.org/ns/fhir/sa/app"]);
        assert_eq!(c.sha256_fingerprint.len(), 64);
        assert!(
            c.sha256_fingerprint
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        // No CN, no SAN.
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let (_, _, der) = leaf(&ca, 8, params);
        let c = ClientCertificate::from_der(&der).unwrap();
        assert_eq!(c.subject_cn, None);
        assert!(c.dns_names.is_empty() && c.uris.is_empty());
        assert!(ClientCertificate::from_der(b"not a certificate").is_err());
    }
}
