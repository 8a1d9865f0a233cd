//! TLS between a replica and PostgreSQL: the URL's `sslmode` and `sslrootcert`, the
//! certificate verifier, and a rustls `MakeTlsConnect` shared by the pool, the lock session
//! and `migrate()`.
//!
//! Why it looks like this:
//! - **rustls, not OpenSSL**: one TLS stack written in Rust, no system library to match at
//!   build or run time. The `ring` provider is named explicitly (not rustls' process-wide
//!   default), so no other crate's choice of provider can change ours or make it ambiguous.
//! - **Secure whenever TLS is used.** Every mode that encrypts verifies the server's
//!   certificate chain, and all but `verify-ca` its host name too. libpq's `require` checks
//!   nothing; ours checks everything, because an unverified TLS session stops an eavesdropper
//!   but not the interceptor a hospital network has to assume. There is no mode that accepts
//!   any certificate.
//! - **Trust** is the system's store (`rustls-native-certs`) plus the CA files given
//!   (`sslrootcert=` in the URL, `--database-ca-file`). The system store, not the
//!   compiled-in Mozilla list of `webpki-roots`, because that is where operators put their
//!   organisation's CA (and how distributions ship CA updates without a rebuild of ours);
//!   managed services whose CA is not public (RDS, Cloud SQL) take a CA file either way.
//! - **`prefer`** (tokio-postgres' default, so a URL without `sslmode`) uses TLS when the
//!   server offers it *and* its certificate verifies. When the TLS attempt fails (a
//!   self-signed "snakeoil" certificate, say), `prefer` connects again without TLS, as
//!   libpq's `prefer` does, and says so once at start-up (the store settles this at open,
//!   for all its connections). Falling back never *accepts* the certificate; and `prefer`
//!   promises nothing against an active attacker, who can answer "no TLS" anyway. Before
//!   TLS existed here such URLs connected in plain text, and still do. Only `require`,
//!   `verify-ca` and `verify-full` *refuse* a server they cannot verify: use one of them
//!   for a database across any network you do not control.
//! - **tokio-postgres' URL parser** knows `disable`, `prefer` and `require` and refuses
//!   unknown keys, so `sslmode=verify-ca|verify-full` and `sslrootcert=` are taken out of the
//!   URL first ([`split_url`]) and remembered; the rest goes to tokio-postgres unchanged.
//! - **Channel binding** (SCRAM's `tls-server-end-point`) is not offered: it would need an
//!   X.509 parser to find the certificate's hash, and the full certificate check already
//!   rules out the interceptor that channel binding detects.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::error::PgStoreError;

/// What the URL's `sslmode` asked for (libpq's spellings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS with a verified certificate when the server offers it, else plain.
    Prefer,
    /// TLS, certificate chain and host name verified.
    Require,
    /// TLS, certificate chain verified, host name not.
    VerifyCa,
    /// TLS, certificate chain and host name verified (as `require` here).
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The parts of a URL tokio-postgres does not parse, taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlTls {
    /// The URL for tokio-postgres: `verify-ca`/`verify-full` written as `require`,
    /// `sslrootcert` removed.
    pub url: String,
    /// `sslmode=verify-ca` or `verify-full`, when the URL said so.
    pub verify: Option<SslMode>,
    /// `sslrootcert=` (`system` is left out: the system store is always trusted).
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode=verify-ca|verify-full` and `sslrootcert=` out of a URL
/// (`postgres://…?k=v&…`) or key-value string (`host=… sslmode=…`). Anything it does not
/// recognise is left to tokio-postgres's parser, which reports it (without the URL).
pub(crate) fn split_url(url: &str) -> Result<UrlTls, PgStoreError> {
    let mut out = UrlTls {
        url: url.to_owned(),
        verify: None,
        root_cert: None,
    };
    let mut take = |key: &str, value: &str| -> Result<Option<&'static str>, PgStoreError> {
        match key {
            "sslmode" if value == "verify-ca" || value == "verify-full" => {
                out.verify = Some(if value == "verify-ca" {
                    SslMode::VerifyCa
                } else {
                    SslMode::VerifyFull
                });
                // TLS is mandatory; which checks apply is remembered above.
                Ok(Some("sslmode=require"))
            }
            "sslrootcert" => {
                if value.is_empty() {
                    return Err(PgStoreError::InvalidUrl("sslrootcert is empty".into()));
                }
                if value != "system" {
                    out.root_cert = Some(PathBuf::from(value));
                }
                Ok(Some(""))
            }
            _ => Ok(None),
        }
    };
    let rewritten = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        rewrite_url_query(url, &mut take)?
    } else {
        rewrite_key_values(url, &mut take)?
    };
    if let Some(r) = rewritten {
        out.url = r;
    }
    Ok(out)
}

/// A replacement for one parameter: `None` keeps it, `Some("")` drops it, `Some(text)`
/// writes `text` instead.
type Take<'a> = dyn FnMut(&str, &str) -> Result<Option<&'static str>, PgStoreError> + 'a;

/// The query of a `postgres://` URL, rewritten; `None` when nothing changed. The query
/// starts at the first `?` after the credentials' `@`, as in tokio-postgres' parser.
fn rewrite_url_query(url: &str, take: &mut Take<'_>) -> Result<Option<String>, PgStoreError> {
    let after_creds = url.find('@').map_or(0, |at| at + 1);
    let Some(q) = url[after_creds..].find('?').map(|q| after_creds + q) else {
        return Ok(None);
    };
    let (head, query) = (&url[..q], &url[q + 1..]);
    let mut changed = false;
    let mut kept: Vec<String> = Vec::new();
    for pair in query.split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            kept.push(pair.to_owned());
            continue;
        };
        let key = percent_decode(key)?;
        let value = percent_decode(value)?;
        match take(&key, &value)? {
            None => kept.push(pair.to_owned()),
            Some(replacement) => {
                changed = true;
                if !replacement.is_empty() {
                    kept.push(replacement.to_owned());
                }
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    Ok(Some(if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    }))
}

/// Percent-decodes a URL component (as tokio-postgres does).
fn percent_decode(s: &str) -> Result<String, PgStoreError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits make one byte.
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| PgStoreError::InvalidUrl("a parameter is not valid UTF-8".into()))
}

/// A key-value connection string, rewritten; `None` when nothing changed or its syntax is
/// not what tokio-postgres accepts (which then says what is wrong).
fn rewrite_key_values(s: &str, take: &mut Take<'_>) -> Result<Option<String>, PgStoreError> {
    let mut parts: Vec<String> = Vec::new();
    let mut changed = false;
    let mut it = s.char_indices().peekable();
    loop {
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = it.peek() else { break };
        let mut key_end = start;
        while let Some((i, c)) = it.next_if(|(_, c)| !c.is_whitespace() && *c != '=') {
            key_end = i + c.len_utf8();
        }
        let key = &s[start..key_end];
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if key.is_empty() || it.next_if(|(_, c)| *c == '=').is_none() {
            return Ok(None);
        }
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let mut end = s.len();
        let quoted = it.next_if(|(_, c)| *c == '\'').is_some();
        let mut closed = !quoted;
        while let Some(&(i, c)) = it.peek() {
            if (quoted && c == '\'') || (!quoted && c.is_whitespace()) {
                if quoted {
                    it.next();
                    closed = true;
                    end = i + 1;
                } else {
                    end = i;
                }
                break;
            }
            it.next();
            if c == '\\' {
                if let Some((_, escaped)) = it.next() {
                    value.push(escaped);
                }
            } else {
                value.push(c);
            }
        }
        if !closed || (!quoted && value.is_empty()) {
            return Ok(None);
        }
        match take(key, &value)? {
            None => parts.push(s[start..end].to_owned()),
            Some(replacement) => {
                changed = true;
                if !replacement.is_empty() {
                    parts.push(replacement.to_owned());
                }
            }
        }
    }
    Ok(changed.then(|| parts.join(" ")))
}

/// The rustls client set-up for `mode` and the CA files, or `None` for no TLS: `disable`,
/// and `prefer` when there is no CA at all to verify a certificate with (a container
/// without a trust store, say), which could only ever fall back. The CA files are read even
/// for `disable`, so that a wrong path is found at start-up, not when someone turns TLS on.
pub(crate) fn client_config(
    mode: SslMode,
    ca_files: &[&Path],
) -> Result<Option<Arc<ClientConfig>>, PgStoreError> {
    let mut given = Vec::new();
    for path in ca_files {
        let read_error = |reason: String| PgStoreError::CaFile {
            path: path.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
        let before = given.len();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| read_error(format!("not PEM certificates: {e}")))?;
            given.push((*path, cert));
        }
        if given.len() == before {
            return Err(read_error("holds no PEM certificate".into()));
        }
    }
    if mode == SslMode::Disable {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if !native.errors.is_empty() || ignored > 0 {
        // A broken file in the system store should not stop us, but an operator wondering
        // why their CA is not trusted wants to know.
        tracing::warn!(
            trusted = added,
            unusable = ignored,
            errors = native.errors.len(),
            "some of the system's CA certificates could not be read"
        );
    }
    for (path, cert) in given {
        roots.add(cert).map_err(|e| PgStoreError::CaFile {
            path: path.to_path_buf(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    if roots.is_empty() {
        if mode == SslMode::Prefer {
            tracing::warn!(
                "no CA certificate to verify PostgreSQL's certificate with (the system's trust \
                 store is empty and no CA file was given); sslmode=prefer connects without TLS"
            );
            return Ok(None);
        }
        return Err(PgStoreError::Tls(format!(
            "sslmode={} needs a CA to verify the server's certificate, but the system's \
             trust store is empty and no CA file was given (--database-ca-file)",
            mode.as_str()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| PgStoreError::Tls(format!("no CA certificate to trust ({e})")))?;
    let builder = ClientConfig::builder_with_provider(provider)
        // rustls speaks nothing older than TLS 1.2; said here so it stays that way.
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| PgStoreError::Tls(e.to_string()))?;
    let config = if mode == SslMode::VerifyCa {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
            .with_no_client_auth()
    } else {
        builder.with_webpki_verifier(verifier).with_no_client_auth()
    };
    Ok(Some(Arc::new(config)))
}

/// `verify-ca`: the chain is checked as for `verify-full`; only a host name mismatch is
/// forgiven. rustls' verifier checks the chain before the name, so a name error means the
/// chain was fine.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// tokio-postgres' TLS hook over rustls. `None` goes with `sslmode=disable`, under which
/// tokio-postgres never asks for TLS (should it, the handshake fails rather than go plain).
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Option<Arc<ClientConfig>>,
}

impl MakeRustls {
    pub(crate) fn new(config: Option<Arc<ClientConfig>>) -> MakeRustls {
        MakeRustls { config }
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnect {
            config: self.config.clone(),
            name,
        })
    }
}

/// One connection's TLS hook: the host name to verify.
pub(crate) struct RustlsConnect {
    config: Option<Arc<ClientConfig>>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let Some(config) = self.config else {
                return Err(io::Error::other("TLS is disabled (sslmode=disable)"));
            };
            tokio_rustls::TlsConnector::from(config)
                .connect(self.name, stream)
                .await
                .map(|s| RustlsStream(Box::new(s)))
        })
    }
}

/// A TLS connection to the server.
pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S> TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

/// Why a TLS handshake was refused, in words an operator can act on; `None` when `e` is
/// not a certificate problem. Names the host, never the URL.
pub(crate) fn describe_failure(e: &tokio_postgres::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        let rustls_error = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls_error) = rustls_error {
            return Some(match rustls_error {
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => "TLS: host name mismatch: the server's certificate does not name the host \
                      connected to (connect by a name the certificate lists, or use \
                      sslmode=verify-ca)"
                    .to_owned(),
                rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature,
                ) => "TLS: the server's certificate was not trusted (its issuer is in neither \
                      the system's trust store nor the CA file; give the CA with \
                      --database-ca-file or sslrootcert=)"
                    .to_owned(),
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => "TLS: the server's certificate has expired".to_owned(),
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
                ) => "TLS: the server's certificate is not valid yet (check the clocks)".to_owned(),
                rustls::Error::InvalidCertificate(other) => {
                    format!("TLS: the server's certificate was refused ({other:?})")
                }
                other => format!("TLS handshake failed: {other}"),
            });
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> UrlTls {
        split_url(url).expect("split")
    }

    #[test]
    fn urls_without_tls_extras_are_unchanged() {
        for url in [
            "postgres://u:p@h:5432/db",
            "postgres://u:p@h/db?sslmode=require&application_name=x",
            "host=h user=u sslmode=disable",
        ] {
            let s = split(url);
            assert_eq!(s.url, url);
            assert_eq!((s.verify, s.root_cert), (None, None));
        }
    }

    #[test]
    fn verify_modes_and_root_cert_leave_the_url() {
        let s = split("postgres://u:p@h/db?sslmode=verify-full&sslrootcert=%2Fca%20x.pem&a=b");
        assert_eq!(s.url, "postgres://u:p@h/db?sslmode=require&a=b");
        assert_eq!(s.verify, Some(SslMode::VerifyFull));
        assert_eq!(s.root_cert, Some(PathBuf::from("/ca x.pem")));

        let s = split("postgresql://h/db?sslrootcert=/ca.pem");
        assert_eq!(s.url, "postgresql://h/db");
        assert_eq!(s.root_cert, Some(PathBuf::from("/ca.pem")));

        // A `?` in the password comes before the `@` and is not the query.
        let s = split("postgres://u:p?x@h/db?sslmode=verify-ca");
        assert_eq!(s.url, "postgres://u:p?x@h/db?sslmode=require");
        assert_eq!(s.verify, Some(SslMode::VerifyCa));

        let s = split("host=h password='a b\\'c' sslmode = verify-ca sslrootcert='/my ca.pem'");
        assert_eq!(s.url, "host=h password='a b\\'c' sslmode=require");
        assert_eq!(s.verify, Some(SslMode::VerifyCa));
        assert_eq!(s.root_cert, Some(PathBuf::from("/my ca.pem")));

        let s = split("postgres://h/db?sslrootcert=system&sslmode=verify-full");
        assert_eq!(s.root_cert, None);
        assert_eq!(s.url, "postgres://h/db?sslmode=require");
    }

    #[test]
    fn the_rewritten_url_parses() {
        for url in [
            "postgres://u:p@h/db?sslmode=verify-full&sslrootcert=/x",
            "host=h sslmode=verify-ca sslrootcert=/x dbname=d",
        ] {
            let s = split(url);
            let config: tokio_postgres::Config = s.url.parse().expect("parses");
            assert_eq!(
                config.get_ssl_mode(),
                tokio_postgres::config::SslMode::Require
            );
        }
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let err = client_config(SslMode::Require, &[Path::new("/nonexistent/ca.pem")])
            .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
    }

    #[test]
    fn disable_builds_no_tls() {
        assert!(client_config(SslMode::Disable, &[]).expect("ok").is_none());
    }
}
