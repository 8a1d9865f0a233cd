//! The [`Authenticator`]: a bearer header in, a [`Principal`] or an [`AuthError`] out.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use caduceus_access::Principal;
use jsonwebtoken::Algorithm;

use crate::claims::{Mapping, check_registered};
use crate::config::{AuthFile, IssuerConfig, KeySource, RevocationCheck};
use crate::error::{AuthError, ConfigError, KeyFetchError};
use crate::http::HttpClient;
use crate::jwks::{KeyCache, Lookup};
use crate::token;

/// Authenticates bearer tokens against a fixed set of trusted issuers. Cheap to clone
/// (shared state); one per server.
#[derive(Clone)]
pub struct Authenticator {
    issuers: Arc<[Issuer]>,
}

/// One issuer, ready for the hot path.
struct Issuer {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: i64,
    mapping: Mapping,
    revocation: Option<Arc<dyn RevocationCheck>>,
    keys: Arc<KeyCache>,
}

impl Authenticator {
    /// Checks the configurations (https provider URLs, no HMAC, audiences present, claim
    /// paths) and builds the TLS clients. Fetches nothing: keys are fetched at first use
    /// or by [`refresh_keys`](Self::refresh_keys).
    pub fn new(configs: Vec<IssuerConfig>) -> Result<Authenticator, ConfigError> {
        if configs.is_empty() {
            return Err(ConfigError::NoIssuers);
        }
        let mut seen = HashSet::new();
        let mut issuers = Vec::with_capacity(configs.len());
        for c in configs {
            if !seen.insert(c.issuer.clone()) {
                return Err(ConfigError::DuplicateIssuer(c.issuer));
            }
            issuers.push(Issuer::new(c)?);
        }
        Ok(Authenticator {
            issuers: issuers.into(),
        })
    }

    /// Builds from the file form.
    pub fn from_file(file: &AuthFile) -> Result<Authenticator, ConfigError> {
        Authenticator::new(file.issuer_configs())
    }

    /// The configured issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|i| i.issuer.as_str())
    }

    /// Fetches every issuer's keys now (a warm-up at start, or an operator's request),
    /// whatever the cache intervals. Returns, per issuer, the number of usable keys or
    /// why the fetch failed (the last good keys are kept then).
    pub async fn refresh_keys(&self) -> Vec<(String, Result<usize, KeyFetchError>)> {
        let mut out = Vec::with_capacity(self.issuers.len());
        for i in self.issuers.iter() {
            out.push((i.issuer.clone(), i.keys.refresh_now().await));
        }
        out
    }

    /// Authenticates the value of an `Authorization` header (`None` when the request has
    /// none).
    pub async fn authenticate(
        &self,
        authorization_header: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let token = token::bearer(authorization_header)?;
        self.authenticate_token(token).await
    }

    /// Authenticates a bare token: the JWS is parsed, its issuer found by `iss`, its key
    /// by `kid`, its signature verified, then `exp`, `nbf` and `aud` checked, the claims
    /// mapped, and last the issuer's revocation check asked.
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthError> {
        let jws = token::parse(token)?;
        let iss = jws
            .claims
            .get("iss")
            .and_then(|v| v.as_str())
            .ok_or(AuthError::UnknownIssuer)?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or(AuthError::UnknownIssuer)?;
        if !issuer.algorithms.contains(&jws.alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let keys = issuer
            .keys
            .key_set(jws.kid.as_deref(), jws.alg)
            .await
            .map_err(|e| match e {
                Lookup::Unavailable => AuthError::KeysUnavailable,
                Lookup::Unknown => AuthError::UnknownKey,
                Lookup::AlgorithmMismatch => AuthError::AlgorithmNotAllowed,
            })?;
        let crate::jwks::Selected::Key(key) = keys.select(jws.kid.as_deref(), jws.alg) else {
            return Err(AuthError::UnknownKey);
        };
        let verified = jsonwebtoken::crypto::verify(
            jws.signature,
            jws.signing_input.as_bytes(),
            &key.decoding,
            jws.alg,
        );
        if !matches!(verified, Ok(true)) {
            return Err(AuthError::BadSignature);
        }
        check_registered(&jws.claims, &issuer.audiences, now(), issuer.leeway)?;
        let principal = issuer.mapping.principal(&issuer.issuer, &jws.claims)?;
        if let Some(check) = &issuer.revocation {
            let jti = principal
                .token_id
                .as_deref()
                .ok_or(AuthError::InvalidClaims(
                    "no jti (the issuer checks revocation)",
                ))?;
            match check.is_revoked(jti).await {
                Ok(false) => {}
                Ok(true) => return Err(AuthError::Revoked),
                Err(e) => {
                    tracing::warn!(issuer = %issuer.issuer, error = %e, "token revocation check failed");
                    return Err(AuthError::RevocationUnavailable);
                }
            }
        }
        Ok(principal)
    }
}

impl Issuer {
    fn new(c: IssuerConfig) -> Result<Issuer, ConfigError> {
        if c.audiences.is_empty() || c.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::NoAudience(c.issuer));
        }
        if c.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms(c.issuer));
        }
        if let Some(&algorithm) = c.algorithms.iter().find(|a| token::is_hmac(**a)) {
            return Err(ConfigError::HmacAlgorithm {
                issuer: c.issuer,
                algorithm,
            });
        }
        let mapping =
            Mapping::new(&c.claims).ok_or_else(|| ConfigError::ClaimPath(c.issuer.clone()))?;
        let url_error = |url: String, reason| ConfigError::Url { url, reason };
        let keys = match &c.keys {
            KeySource::Local(keys) => KeyCache::local(&c.issuer, Arc::clone(keys), c.cache.clone()),
            KeySource::Discover => {
                let client = HttpClient::new(c.ca_file.as_deref(), c.cache.fetch_timeout)?;
                KeyCache::discover(&c.issuer, client, c.cache.clone())
                    .map_err(|reason| url_error(c.issuer.clone(), reason))?
            }
            KeySource::JwksUri(url) => {
                let client = HttpClient::new(c.ca_file.as_deref(), c.cache.fetch_timeout)?;
                KeyCache::jwks_uri(&c.issuer, url, client, c.cache.clone())
                    .map_err(|reason| url_error(url.clone(), reason))?
            }
        };
        Ok(Issuer {
            leeway: i64::try_from(c.leeway.as_secs()).unwrap_or(i64::MAX),
            issuer: c.issuer,
            audiences: c.audiences,
            algorithms: c.algorithms,
            mapping,
            revocation: c.revocation,
            keys: Arc::new(keys),
        })
    }
}

/// Seconds since the epoch.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
