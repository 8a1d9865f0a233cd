//! Typed errors: why a request was not authenticated ([`AuthError`]), why a configuration
//! was refused ([`ConfigError`]), and why an issuer's keys could not be fetched
//! ([`KeyFetchError`]). None of their messages carries a token or a claim's value.

use std::path::PathBuf;

/// Why a request carries no acceptable bearer token. The `Display` text is short and safe
/// to log or to send: it never contains the token or any claim's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header: the client did not try.
    #[error("no bearer token")]
    Missing,
    /// An `Authorization` header with another scheme (`Basic`, `Digest`, ...).
    #[error("the Authorization header does not use the Bearer scheme")]
    UnsupportedScheme,
    /// `Bearer` with no token, or a token that is not a compact JWS (three base64url
    /// parts, a JSON header and payload), or one over the size limit.
    #[error("the bearer token is malformed: {0}")]
    Malformed(&'static str),
    /// `alg` is `none`, an HMAC algorithm, unknown, not among the issuer's allowed
    /// algorithms, or does not fit the key the token names.
    #[error("the token's signing algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// `iss` is not one of the configured issuers (compared exactly).
    #[error("the token's issuer is not trusted")]
    UnknownIssuer,
    /// The issuer's key set has no key with the token's `kid` (after a refresh, when one
    /// was allowed), or the token names no key and the set has several.
    #[error("the token's signing key is not among the issuer's keys")]
    UnknownKey,
    /// The signature does not verify with the selected key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` is past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` is missing or names none of the configured audiences.
    #[error("the token is not meant for this server (audience)")]
    WrongAudience,
    /// A claim is missing or of the wrong form (no `exp`, a malformed SMART scope, an
    /// unknown clearance, ...). The text names the claim, never its value.
    #[error("the token's claims are invalid: {0}")]
    InvalidClaims(&'static str),
    /// The issuer's revocation check says the token (`jti`) was revoked.
    #[error("the token has been revoked")]
    Revoked,
    /// The issuer's keys could not be fetched and none are cached: the provider is down or
    /// misconfigured. Not the client's fault: answer 503, not 401.
    #[error("the issuer's signing keys are unavailable")]
    KeysUnavailable,
    /// The issuer's revocation check failed. Not the client's fault: answer 503.
    #[error("the token revocation check is unavailable")]
    RevocationUnavailable,
}

impl AuthError {
    /// The RFC 6750 error code: `None` when no token was sent (the challenge then carries
    /// no error), else `invalid_token`.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing | AuthError::UnsupportedScheme => None,
            _ => Some("invalid_token"),
        }
    }

    /// True when the failure is on the server's side (keys or revocation unavailable):
    /// the request should get 503 and may be retried, rather than 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            AuthError::KeysUnavailable | AuthError::RevocationUnavailable
        )
    }

    /// The HTTP status to answer with: 503 when [`is_unavailable`](Self::is_unavailable),
    /// else 401.
    pub fn status(&self) -> u16 {
        if self.is_unavailable() { 503 } else { 401 }
    }

    /// The `WWW-Authenticate` header value (RFC 6750 section 3): `Bearer realm="..."`
    /// when no bearer token was sent, else with `error="invalid_token"` and this error's
    /// message as `error_description`.
    pub fn www_authenticate(&self, realm: &str) -> String {
        let mut out = String::with_capacity(96);
        out.push_str("Bearer realm=\"");
        push_quoted(&mut out, realm);
        out.push('"');
        if let Some(code) = self.error_code() {
            out.push_str(", error=\"");
            out.push_str(code);
            out.push_str("\", error_description=\"");
            push_quoted(&mut out, &self.to_string());
            out.push('"');
        }
        out
    }
}

/// Appends `text` as the inside of an RFC 9110 quoted-string: `"` and `\` escaped, control
/// characters (which a header cannot carry) dropped.
fn push_quoted(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// Why an [`Authenticator`](crate::Authenticator) could not be built from a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No issuer is configured.
    #[error("no trusted issuer is configured")]
    NoIssuers,
    /// The same issuer is configured twice.
    #[error("issuer {0} is configured twice")]
    DuplicateIssuer(String),
    /// An issuer without audiences would accept tokens meant for any service.
    #[error("issuer {0} has no audience")]
    NoAudience(String),
    /// An issuer with an empty list of algorithms could accept nothing.
    #[error("issuer {0} allows no signing algorithm")]
    NoAlgorithms(String),
    /// HMAC algorithms need a shared secret; a JWKS of public keys cannot verify them
    /// safely (the public key would become the secret).
    #[error("issuer {issuer}: HMAC algorithm {algorithm:?} is not allowed")]
    HmacAlgorithm {
        /// The issuer.
        issuer: String,
        /// The refused algorithm.
        algorithm: jsonwebtoken::Algorithm,
    },
    /// A provider URL that is not https (nor http on the loopback interface), or that
    /// does not parse.
    #[error("{url}: {reason}")]
    Url {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An empty claim name or path in a claim mapping.
    #[error("issuer {0}: empty claim path in the claim mapping")]
    ClaimPath(String),
    /// The extra CA file cannot be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A configuration file that does not parse.
    #[error("authentication configuration: {0}")]
    File(String),
}

/// Why an issuer's discovery document or JWKS could not be fetched or used. Messages
/// name URLs (which are not secret) and never any key material.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFetchError {
    /// No answer within the fetch timeout.
    #[error("{url}: no answer within {seconds} s")]
    Timeout {
        /// The URL fetched.
        url: String,
        /// The timeout.
        seconds: u64,
    },
    /// A connection, TLS or protocol failure.
    #[error("{url}: {reason}")]
    Http {
        /// The URL fetched.
        url: String,
        /// The failure.
        reason: String,
    },
    /// An answer other than 200.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The URL fetched.
        url: String,
        /// The status.
        status: u16,
    },
    /// A document over the size limit.
    #[error("{url}: document larger than {limit} bytes")]
    TooLarge {
        /// The URL fetched.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// A document that is not the JSON expected.
    #[error("{url}: {reason}")]
    Document {
        /// The URL fetched.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The discovery document's `issuer` differs from the configured issuer (OpenID
    /// Connect Discovery section 4.3: it must be identical).
    #[error("discovery document names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// The discovered `jwks_uri` is not https (nor loopback http).
    #[error("jwks_uri {url}: {reason}")]
    JwksUri {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key set holds no key this crate can verify signatures with.
    #[error("the key set has no usable signing key ({skipped} skipped)")]
    NoUsableKeys {
        /// Keys skipped (encryption keys, unsupported types or curves, malformed).
        skipped: usize,
    },
    /// The last fetch failed recently; no new attempt before the retry interval.
    #[error("not retried yet after a recent failure")]
    Backoff,
}
