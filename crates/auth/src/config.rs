//! What to trust: issuers, where their keys come from, how their claims map to a
//! [`Principal`](caduceus_access::Principal). [`IssuerConfig`] is the programmatic form;
//! [`AuthFile`] the serde form of a TOML file, with the same defaults.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};

/// The algorithms an issuer may sign with unless configured otherwise: every asymmetric
/// algorithm the verifier supports. HMAC (`HS*`) and `none` are never allowed.
pub const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The default clock leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// One trusted token issuer.
#[derive(Clone)]
pub struct IssuerConfig {
    /// The issuer identifier, compared exactly with the token's `iss` (and with the
    /// discovery document's `issuer`).
    pub issuer: String,
    /// The token's `aud` must contain one of these (typically the FHIR base URL).
    pub audiences: Vec<String>,
    /// Where the verification keys come from.
    pub keys: KeySource,
    /// How claims map to the principal.
    pub claims: ClaimMapping,
    /// The signing algorithms accepted (default [`DEFAULT_ALGORITHMS`]).
    pub algorithms: Vec<Algorithm>,
    /// Clock leeway for `exp` and `nbf` (default 60 s).
    pub leeway: Duration,
    /// A revocation check by `jti` (the built-in authorization server provides one).
    /// When set, tokens without `jti` are refused.
    pub revocation: Option<Arc<dyn RevocationCheck>>,
    /// Extra CA certificates (PEM) trusted, besides the system's, for this issuer's
    /// discovery and JWKS URLs (a provider with a private CA).
    pub ca_file: Option<PathBuf>,
    /// Caching and refresh of the key set.
    pub cache: CacheSettings,
}

impl IssuerConfig {
    /// An issuer whose keys are found by OpenID Connect discovery, with one audience and
    /// all defaults (Caduceus' claim names, the default algorithms, 60 s leeway).
    pub fn discover(issuer: impl Into<String>, audience: impl Into<String>) -> IssuerConfig {
        IssuerConfig {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            keys: KeySource::Discover,
            claims: ClaimMapping::default(),
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            leeway: DEFAULT_LEEWAY,
            revocation: None,
            ca_file: None,
            cache: CacheSettings::default(),
        }
    }

    /// An issuer whose keys are read in process (the built-in authorization server).
    pub fn local(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: Arc<dyn LocalKeys>,
    ) -> IssuerConfig {
        IssuerConfig {
            keys: KeySource::Local(keys),
            ..IssuerConfig::discover(issuer, audience)
        }
    }
}

impl fmt::Debug for IssuerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerConfig")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("keys", &self.keys)
            .field("claims", &self.claims)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("revocation", &self.revocation.is_some())
            .field("ca_file", &self.ca_file)
            .field("cache", &self.cache)
            .finish()
    }
}

/// Where an issuer's verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// OpenID Connect discovery: `{issuer}/.well-known/openid-configuration`, whose
    /// `issuer` must equal the configured one, names the `jwks_uri`.
    Discover,
    /// A JWKS URL given directly (https, or http on the loopback interface).
    JwksUri(String),
    /// Keys held in this process (the built-in authorization server): no HTTP.
    Local(Arc<dyn LocalKeys>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Discover => f.write_str("Discover"),
            KeySource::JwksUri(url) => f.debug_tuple("JwksUri").field(url).finish(),
            KeySource::Local(_) => f.write_str("Local"),
        }
    }
}

/// An in-process source of public keys. It is asked again whenever the cache refreshes
/// and whenever a token names a key the cache does not know (without rate limit: it is
/// a function call), so a rotation is seen at once.
pub trait LocalKeys: Send + Sync {
    /// The current public keys.
    fn jwks(&self) -> JwkSet;
}

impl<F> LocalKeys for F
where
    F: Fn() -> JwkSet + Send + Sync,
{
    fn jwks(&self) -> JwkSet {
        self()
    }
}

/// The error a [`RevocationCheck`] may return.
pub type RevocationError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a token was revoked, by its `jti`. An error makes the request fail with
/// [`AuthError::RevocationUnavailable`](crate::AuthError::RevocationUnavailable) (503):
/// a check that cannot answer does not let tokens through.
#[async_trait]
pub trait RevocationCheck: Send + Sync {
    /// True if the token with this `jti` was revoked.
    async fn is_revoked(&self, jti: &str) -> Result<bool, RevocationError>;
}

/// Which claims hold what. A claim *path* is a top-level claim name (which may itself
/// contain dots, as Entra ID's URL-like claim names do) or, when no such claim exists, a
/// dot-separated path into nested objects (`realm_access.roles`). The defaults match
/// Caduceus' own authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimMapping {
    /// Claims holding the granted scopes, tried in order; the first present is used. A
    /// space-separated string (`scope`) or an array of strings (`scp`).
    pub scopes: Vec<String>,
    /// Claim paths holding role names (arrays of strings, or one string); all are merged.
    pub roles: Vec<String>,
    /// Claims holding the OAuth2 client id, tried in order.
    pub client_id: Vec<String>,
    /// The claim holding the subject (default `sub`; the client id when it is absent).
    pub subject: String,
    /// The claim holding the patient in context (a Patient resource id).
    pub patient: String,
    /// The claim holding the user's FHIR resource (`Practitioner/12`).
    pub fhir_user: String,
    /// Claim paths holding department codes; all are merged.
    pub departments: Vec<String>,
    /// The claim holding the confidentiality clearance (`N`, `R`, `V`; default N).
    pub clearance: String,
}

impl Default for ClaimMapping {
    fn default() -> ClaimMapping {
        ClaimMapping {
            scopes: vec!["scope".into(), "scp".into()],
            roles: vec!["roles".into()],
            client_id: vec!["client_id".into(), "azp".into()],
            subject: "sub".into(),
            patient: "patient".into(),
            fhir_user: "fhirUser".into(),
            departments: vec!["departments".into()],
            clearance: "clearance".into(),
        }
    }
}

impl ClaimMapping {
    /// Keycloak: realm roles under `realm_access.roles` (add
    /// `resource_access.<client>.roles` for client roles), the client in `azp`.
    pub fn keycloak() -> ClaimMapping {
        ClaimMapping {
            roles: vec!["realm_access.roles".into()],
            client_id: vec!["azp".into(), "client_id".into()],
            ..ClaimMapping::default()
        }
    }

    /// Microsoft Entra ID: delegated scopes in `scp` (a string), app roles in `roles`,
    /// the client in `azp` (v2 tokens) or `appid` (v1).
    pub fn entra_id() -> ClaimMapping {
        ClaimMapping {
            scopes: vec!["scp".into(), "scope".into()],
            client_id: vec!["azp".into(), "appid".into()],
            ..ClaimMapping::default()
        }
    }

    /// Okta: scopes in `scp` (an array), the client in `cid`, roles from a custom
    /// `groups` claim.
    pub fn okta() -> ClaimMapping {
        ClaimMapping {
            scopes: vec!["scp".into(), "scope".into()],
            roles: vec!["groups".into()],
            client_id: vec!["cid".into(), "client_id".into()],
            ..ClaimMapping::default()
        }
    }
}

/// How an issuer's key set is cached and refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// How long a fetched key set is used before it is fetched again, when the response
    /// has no `Cache-Control: max-age` (default 10 min).
    pub default_ttl: Duration,
    /// The shortest `max-age` honoured (default 1 min).
    pub min_ttl: Duration,
    /// The longest `max-age` honoured (default 1 day).
    pub max_ttl: Duration,
    /// At most one fetch per this interval when tokens name unknown keys (default 30 s),
    /// so tokens with made-up `kid`s cannot make us hammer the provider.
    pub unknown_kid_interval: Duration,
    /// After a failed fetch, no new attempt before this interval (default 5 s).
    pub retry_interval: Duration,
    /// Timeout of one HTTP fetch (default 5 s).
    pub fetch_timeout: Duration,
}

impl Default for CacheSettings {
    fn default() -> CacheSettings {
        CacheSettings {
            default_ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(86_400),
            unknown_kid_interval: Duration::from_secs(30),
            retry_interval: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// The configuration file's form (TOML):
///
/// ```toml
/// [[issuer]]
/// issuer = "https://keycloak.example.org/realms/hospital"
/// audiences = ["https://fhir.example.org/fhir"]
/// [issuer.claims]
/// roles = ["realm_access.roles"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// The trusted issuers (`[[issuer]]` tables).
    #[serde(default, rename = "issuer")]
    pub issuers: Vec<IssuerFile>,
}

impl AuthFile {
    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<AuthFile, crate::ConfigError> {
        toml::from_str(text).map_err(|e| crate::ConfigError::File(e.to_string()))
    }

    /// The issuers as [`IssuerConfig`]s.
    pub fn issuer_configs(&self) -> Vec<IssuerConfig> {
        self.issuers.iter().map(IssuerFile::to_config).collect()
    }
}

/// One `[[issuer]]` table. Everything but `issuer` and `audiences` has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFile {
    /// The issuer identifier (exactly as in the tokens' `iss`).
    pub issuer: String,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// A JWKS URL; without it, OpenID Connect discovery finds it.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Accepted algorithms (`["RS256", "ES256"]`); default all asymmetric ones.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Clock leeway in seconds (default 60).
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    /// Extra CA certificates (PEM) for this provider's URLs.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The claim mapping; unnamed fields keep Caduceus' defaults.
    #[serde(default)]
    pub claims: ClaimMapping,
    /// Key set caching, in seconds.
    #[serde(default)]
    pub cache: CacheFile,
}

fn default_algorithms() -> Vec<Algorithm> {
    DEFAULT_ALGORITHMS.to_vec()
}

fn default_leeway_seconds() -> u64 {
    DEFAULT_LEEWAY.as_secs()
}

impl IssuerFile {
    /// The programmatic form.
    pub fn to_config(&self) -> IssuerConfig {
        IssuerConfig {
            issuer: self.issuer.clone(),
            audiences: self.audiences.clone(),
            keys: match &self.jwks_uri {
                Some(url) => KeySource::JwksUri(url.clone()),
                None => KeySource::Discover,
            },
            claims: self.claims.clone(),
            algorithms: self.algorithms.clone(),
            leeway: Duration::from_secs(self.leeway_seconds),
            revocation: None,
            ca_file: self.ca_file.clone(),
            cache: self.cache.to_settings(),
        }
    }
}

/// [`CacheSettings`] in whole seconds, for the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheFile {
    /// See [`CacheSettings::default_ttl`].
    pub default_ttl_seconds: u64,
    /// See [`CacheSettings::min_ttl`].
    pub min_ttl_seconds: u64,
    /// See [`CacheSettings::max_ttl`].
    pub max_ttl_seconds: u64,
    /// See [`CacheSettings::unknown_kid_interval`].
    pub unknown_kid_interval_seconds: u64,
    /// See [`CacheSettings::retry_interval`].
    pub retry_interval_seconds: u64,
    /// See [`CacheSettings::fetch_timeout`].
    pub fetch_timeout_seconds: u64,
}

impl Default for CacheFile {
    fn default() -> CacheFile {
        let d = CacheSettings::default();
        CacheFile {
            default_ttl_seconds: d.default_ttl.as_secs(),
            min_ttl_seconds: d.min_ttl.as_secs(),
            max_ttl_seconds: d.max_ttl.as_secs(),
            unknown_kid_interval_seconds: d.unknown_kid_interval.as_secs(),
            retry_interval_seconds: d.retry_interval.as_secs(),
            fetch_timeout_seconds: d.fetch_timeout.as_secs(),
        }
    }
}

impl CacheFile {
    fn to_settings(&self) -> CacheSettings {
        CacheSettings {
            default_ttl: Duration::from_secs(self.default_ttl_seconds),
            min_ttl: Duration::from_secs(self.min_ttl_seconds),
            max_ttl: Duration::from_secs(self.max_ttl_seconds),
            unknown_kid_interval: Duration::from_secs(self.unknown_kid_interval_seconds),
            retry_interval: Duration::from_secs(self.retry_interval_seconds),
            fetch_timeout: Duration::from_secs(self.fetch_timeout_seconds),
        }
    }
}
