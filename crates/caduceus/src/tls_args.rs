//! The flags of `caduceus serve` about transport security and HTTP hardening: TLS (or the
//! explicit choice of plain HTTP), client certificates, HSTS, CORS, timeouts and rate
//! limits. See docs/security.md.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// TLS: served by the server itself (`--tls-cert`, `--tls-key`), or plain HTTP only when
/// asked for (`--plain-http` behind a gateway that terminates TLS, or `--insecure-dev-mode`).
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// PEM file with the server's certificate chain (its own certificate first). Reloaded
    /// without a restart when the file changes, or on SIGHUP.
    #[arg(long, env = "CADUCEUS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CADUCEUS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM file of the CAs that issue client certificates: the server asks clients for a
    /// certificate verified against them (mutual TLS).
    #[arg(long, env = "CADUCEUS_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca: `optional` lets clients without a certificate connect (they
    /// must then authenticate otherwise); `required` refuses their handshake.
    #[arg(
        long,
        env = "CADUCEUS_TLS_CLIENT_AUTH",
        value_enum,
        default_value = "optional",
        requires = "tls_client_ca"
    )]
    pub tls_client_auth: ClientAuthArg,
    /// Seconds between checks of the certificate and key files for changes.
    #[arg(long, env = "CADUCEUS_TLS_RELOAD_INTERVAL_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub tls_reload_interval_seconds: u64,
    /// Serve plain HTTP: only behind a gateway or load balancer that terminates TLS.
    #[arg(
        long,
        env = "CADUCEUS_PLAIN_HTTP",
        conflicts_with_all = ["tls_cert", "tls_key", "tls_client_ca"]
    )]
    pub plain_http: bool,
    /// Send `Strict-Transport-Security` even over plain HTTP: when the gateway in front
    /// terminates TLS (it is always sent when the server serves TLS itself).
    #[arg(long, env = "CADUCEUS_HSTS")]
    pub hsts: bool,
}

/// `--tls-client-auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientAuthArg {
    Optional,
    Required,
}

/// How `serve` is to serve, once the flags are checked.
#[derive(Debug, Clone)]
pub enum Transport {
    Tls(caduceus_server::tls::TlsSettings),
    /// Plain HTTP (--plain-http, or implied by --insecure-dev-mode).
    Plain,
}

impl TlsArgs {
    /// The transport the flags ask for, or the refusal of the secure default: no TLS
    /// unless plain HTTP was chosen explicitly (or implied by --insecure-dev-mode).
    pub fn transport(&self, insecure_dev_mode: bool) -> anyhow::Result<Transport> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Transport::Tls(caduceus_server::tls::TlsSettings {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
                client_auth: match self.tls_client_auth {
                    ClientAuthArg::Optional => caduceus_server::tls::ClientAuth::Optional,
                    ClientAuthArg::Required => caduceus_server::tls::ClientAuth::Required,
                },
            })),
            _ if self.plain_http || insecure_dev_mode => Ok(Transport::Plain),
            _ => anyhow::bail!(
                "refusing to serve without TLS: give --tls-cert and --tls-key (PEM files) to \
                 serve HTTPS, or --plain-http when a gateway in front of the server \
                 terminates TLS (or --insecure-dev-mode for development only)"
            ),
        }
    }

    pub fn reload_interval(&self) -> Duration {
        Duration::from_secs(self.tls_reload_interval_seconds)
    }
}

/// HTTP hardening: CORS, timeouts, rate limits.
#[derive(Debug, Clone, Args)]
pub struct HardeningArgs {
    /// An origin allowed by CORS (`https://app.example.org`); repeat the flag, or separate
    /// origins with commas in the variable. None: no CORS headers at all.
    #[arg(long = "cors-origin", env = "CADUCEUS_CORS_ORIGINS", value_delimiter = ',',
          value_parser = parse_origin)]
    pub cors_origins: Vec<String>,
    /// Seconds a request may take before it is answered 503 (`timeout`).
    #[arg(long, env = "CADUCEUS_REQUEST_TIMEOUT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_seconds: u64,
    /// Seconds a client may take to send a request's headers (and a TLS handshake); also
    /// how long an idle kept-alive connection stays open.
    #[arg(long, env = "CADUCEUS_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_seconds: u64,
    /// Requests a second per client (the authenticated client, else the peer's IP
    /// address), per replica; 0 turns rate limiting off. Default 200, and off under
    /// --insecure-dev-mode (load tests, test suites).
    #[arg(long, env = "CADUCEUS_RATE_LIMIT_PER_SECOND")]
    pub rate_limit_per_second: Option<u32>,
    /// Requests a client may make at once after being idle (the token bucket's size).
    #[arg(long, env = "CADUCEUS_RATE_LIMIT_BURST", default_value_t = 400,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
}

/// Requests a second per client when neither the flag nor dev mode says otherwise.
const DEFAULT_RATE_PER_SECOND: u32 = 200;

impl HardeningArgs {
    /// The rate limit: as set, else the default, else (in dev mode) none.
    pub fn rate_limit(&self, insecure_dev_mode: bool) -> Option<caduceus_server::RateLimit> {
        let per_second = match self.rate_limit_per_second {
            Some(n) => n,
            None if insecure_dev_mode => 0,
            None => DEFAULT_RATE_PER_SECOND,
        };
        (per_second > 0).then_some(caduceus_server::RateLimit {
            per_second,
            burst: self.rate_limit_burst,
        })
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('/');
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("an origin starts with https:// or http://")?;
    if rest.is_empty()
        || rest.contains(['/', '?', '#', '*', '@'])
        || !rest.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err("an origin is scheme://host[:port], without a path or wildcard".into());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            parse_origin("https://app.example.org/").as_deref(),
            Ok("https://app.example.org")
        );
        assert!(parse_origin("http://localhost:3000").is_ok());
        assert!(parse_origin("*").is_err());
        assert!(parse_origin("app.example.org").is_err());
        assert!(parse_origin("https://app.example.org/path").is_err());
        assert!(parse_origin("https://*.example.org").is_err());
    }
}
