//! Fetching provider documents (discovery, JWKS): GET over HTTPS with rustls on the ring
//! provider, the system's roots plus an optional CA file, a timeout over the whole
//! exchange, a size limit, no redirects. Plain http only to the loopback interface.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::{ConfigError, KeyFetchError};

/// The largest discovery document or JWKS read.
const MAX_DOCUMENT: usize = 1 << 20;

/// Checks a provider URL: https, or http to `127.0.0.1`, `[::1]` or `localhost`.
pub(crate) fn check_url(url: &str) -> Result<Uri, &'static str> {
    let uri: Uri = url.parse().map_err(|_| "not a valid URL")?;
    let host = uri.host().ok_or("the URL has no host")?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // They would end up in logs and error messages.
        return Err("credentials in the URL are not allowed");
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if matches!(host, "127.0.0.1" | "[::1]" | "localhost") => Ok(uri),
        Some("http") => Err("http is allowed only on the loopback interface; use https"),
        _ => Err("the URL must be https"),
    }
}

/// A document fetched, with its `Cache-Control: max-age` if any.
pub(crate) struct Fetched {
    pub body: Bytes,
    pub max_age: Option<Duration>,
}

/// An HTTP(S) client for one issuer's documents.
pub(crate) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    pub(crate) fn new(ca_file: Option<&Path>, timeout: Duration) -> Result<Self, ConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if let Some(path) = ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| ConfigError::CaFile {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(ConfigError::CaFile {
                    path: path.to_owned(),
                    reason: "no certificate in the file".into(),
                });
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ConfigError::CaFile {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
            }
        } else if added == 0 {
            tracing::warn!("no system CA certificates found: https providers will fail");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpClient { client, timeout })
    }

    /// GETs `uri` (already checked with [`check_url`]): 200 and a body of at most 1 MiB,
    /// within the timeout.
    pub(crate) async fn get(&self, uri: &Uri) -> Result<Fetched, KeyFetchError> {
        match tokio::time::timeout(self.timeout, self.get_inner(uri)).await {
            Ok(result) => result,
            Err(_) => Err(KeyFetchError::Timeout {
                url: uri.to_string(),
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    async fn get_inner(&self, uri: &Uri) -> Result<Fetched, KeyFetchError> {
        let http_err = |reason: String| KeyFetchError::Http {
            url: uri.to_string(),
            reason,
        };
        let request = http::Request::get(uri.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "caduceus")
            .body(Empty::new())
            .map_err(|e| http_err(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| http_err(error_chain(&e)))?;
        let status = response.status();
        if status != http::StatusCode::OK {
            return Err(KeyFetchError::Status {
                url: uri.to_string(),
                status: status.as_u16(),
            });
        }
        let max_age = response
            .headers()
            .get_all(http::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(max_age);
        let body = Limited::new(response.into_body(), MAX_DOCUMENT)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    KeyFetchError::TooLarge {
                        url: uri.to_string(),
                        limit: MAX_DOCUMENT,
                    }
                } else {
                    http_err(e.to_string())
                }
            })?
            .to_bytes();
        Ok(Fetched { body, max_age })
    }
}

/// The error and its sources in one line (hyper's own message is only "client error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The freshness a `Cache-Control` value gives: `max-age=N`, or zero for `no-cache` and
/// `no-store` (which the caller's minimum then bounds).
fn max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, arg) = match directive.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            age = arg
                .and_then(|a| a.parse::<u64>().ok())
                .map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_urls() {
        assert!(check_url("https://idp.example.org/realms/x").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://[::1]:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://idp.example.org/jwks").is_err());
        assert!(check_url("http://127.0.0.2/jwks").is_err());
        assert!(check_url("http://localhost.example.org/jwks").is_err());
        assert!(check_url("ftp://idp.example.org/jwks").is_err());
        assert!(check_url("/jwks").is_err());
        assert!(check_url("https://user:secret@idp.example.org/jwks").is_err());
    }

    #[test]
    fn cache_control() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(max_age("Max-Age=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(
            max_age("private, max-age=60, no-cache"),
            Some(Duration::ZERO)
        );
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }
}
