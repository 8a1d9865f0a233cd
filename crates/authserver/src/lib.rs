//! The built-in OAuth2 / SMART on FHIR authorization server, for deployments without an
//! identity provider of their own (Keycloak, Entra ID, Okta). It signs in users (password
//! and TOTP), authenticates clients, and issues short-lived JWT access tokens that the FHIR
//! API validates like any OpenID Connect provider's: through the published JWKS.
//!
//! Design: *the database is the only shared state*. Accounts, clients, the signing key and
//! every one-time value (authorization codes, client-assertion `jti`s, used TOTP steps,
//! refresh tokens, revocations) live in the store's key-value metadata, so any number of
//! replicas behind a load balancer agree: single use rests on the store's atomic
//! [`take_meta`](caduceus_store::Store::take_meta) and
//! [`insert_meta`](caduceus_store::Store::insert_meta), never on process memory. Codes and
//! tokens are stored only as SHA-256 hashes, passwords as Argon2id, client secrets as
//! SHA-256 of 256 random bits; the signing key is stored in plain PKCS#8 (encryption at
//! rest comes next), or given as a PEM file.
//!
//! Use:
//! ```no_run
//! # async fn f(store: std::sync::Arc<dyn caduceus_store::Store>) -> Result<(), caduceus_authserver::AuthServerError> {
//! use caduceus_authserver::{AuthServer, AuthServerConfig};
//! let config = AuthServerConfig::new("https://fhir.example/auth", "https://fhir.example/fhir");
//! let auth = AuthServer::open(store, config).await?;
//! let app: axum::Router = auth.router(); // serves /auth/...; merge it into the server's
//! # Ok(()) }
//! ```
//!
//! Endpoints (under the issuer, whose path must be `/auth`):
//! - `GET/POST /auth/authorize`: the sign-in form (username, password, TOTP) of the
//!   authorization code grant; PKCE `S256` is mandatory.
//! - `POST /auth/token`: `client_credentials` (SMART Backend Services `private_key_jwt`
//!   with RS384/ES384/RS256/ES256, or a client secret, basic or post), `authorization_code`
//!   and `refresh_token` (for grants with `offline_access`/`online_access`; rotated on use).
//! - `POST /auth/introspect` (RFC 7662) and `POST /auth/revoke` (RFC 7009), for
//!   authenticated clients.
//! - `GET /auth/jwks`, `GET /auth/.well-known/openid-configuration` (also served as
//!   `oauth-authorization-server`).
//!
//! Access tokens are ES256 JWTs with `kid`; claims `iss`, `sub` (username, or client id for
//! backend clients), `aud` (the FHIR base URL), `exp`, `nbf`, `iat`, `jti`, `client_id`,
//! `scope`, and when known `patient`, `fhirUser`, `roles`, `departments`, `clearance`.
//!
//! Invariant: never logs or returns a password, secret, code, token or TOTP code; errors
//! that reach a caller do not say whether a user exists.
#![deny(missing_docs)]

mod accounts;
mod client_auth;
mod endpoints;
mod error;
mod grants;
mod http;
mod keys;
mod password;
mod scopes;
mod signin;
mod tokens;
mod totp;
mod util;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use caduceus_store::Store;

pub use accounts::{
    Accounts, ClientSummary, NewClient, NewClientKind, NewUser, TotpEnrollment, UserSummary,
};
pub use caduceus_access::Clearance;
pub use error::AuthServerError;
pub use password::MIN_PASSWORD_CHARS;

use crate::accounts::from_json;
use crate::keys::KeySet;

/// Settings of the authorization server.
#[derive(Debug, Clone)]
pub struct AuthServerConfig {
    /// The issuer URL, as clients reach it, ending in `/auth` (`https://host/auth`); the
    /// endpoints are below it (`/auth/token`, ...) and the token endpoint's URL is what
    /// client assertions must name as `aud`.
    pub issuer: String,
    /// The FHIR base URL: the `aud` of every access token, and what an authorization
    /// request's `aud` must name.
    pub fhir_audience: String,
    /// Lifetime of access tokens of backend clients (`client_credentials`). Default 300 s.
    pub backend_token_ttl: Duration,
    /// Lifetime of access tokens of apps (authorization code, refresh). Default 3600 s.
    pub app_token_ttl: Duration,
    /// Lifetime of refresh tokens (each use issues a new one). Default 30 days.
    pub refresh_token_ttl: Duration,
    /// A PKCS#8 PEM P-256 private key to sign with (`--auth-signing-key-file`), instead of
    /// the key generated and kept in the store. Only this key is then published.
    pub signing_key_pem: Option<String>,
}

impl AuthServerConfig {
    /// The defaults for an issuer and a FHIR base URL.
    pub fn new(issuer: impl Into<String>, fhir_audience: impl Into<String>) -> AuthServerConfig {
        AuthServerConfig {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            fhir_audience: fhir_audience.into().trim_end_matches('/').to_owned(),
            backend_token_ttl: Duration::from_secs(300),
            app_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            signing_key_pem: None,
        }
    }
}

/// How long a replica signs with keys read from the store before reading them again (so
/// a `caduceus auth rotate-key` reaches every replica within this).
const KEY_RELOAD: Duration = Duration::from_secs(30);
/// How long a "not revoked" answer is cached.
const REVOKED_CACHE: Duration = Duration::from_secs(5);
/// How often a replica sweeps expired one-time values.
const SWEEP_EVERY_SECS: i64 = 600;

/// The authorization server: build once per process with [`AuthServer::open`], mount
/// [`AuthServer::router`]. Cheap to clone.
#[derive(Clone)]
pub struct AuthServer {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub accounts: Accounts,
    pub config: AuthServerConfig,
    file_key: Option<Vec<u8>>,
    keys: RwLock<(Arc<KeySet>, Instant)>,
    revoked: Mutex<HashMap<String, (Instant, bool)>>,
    last_sweep: AtomicI64,
}

impl AuthServer {
    /// Opens the server over `store`: reads the signing key, or creates and stores one on
    /// first start (one replica wins; the others read its key).
    pub async fn open(
        store: Arc<dyn Store>,
        config: AuthServerConfig,
    ) -> Result<AuthServer, AuthServerError> {
        let mut config = config;
        config.issuer = config.issuer.trim_end_matches('/').to_owned();
        config.fhir_audience = config.fhir_audience.trim_end_matches('/').to_owned();
        if !config.issuer.ends_with("/auth") {
            return Err(AuthServerError::Invalid(
                "the issuer URL must end in /auth, where the router serves".into(),
            ));
        }
        let file_key = match &config.signing_key_pem {
            Some(pem) => Some(keys::pkcs8_from_pem(pem)?),
            None => None,
        };
        let keyset = load_keys(store.as_ref(), file_key.as_deref()).await?;
        tracing::info!(kid = %keyset.kid, issuer = %config.issuer, "authorization server ready");
        Ok(AuthServer {
            inner: Arc::new(Inner {
                accounts: Accounts::new(Arc::clone(&store)),
                store,
                config,
                file_key,
                keys: RwLock::new((Arc::new(keyset), Instant::now())),
                revoked: Mutex::new(HashMap::new()),
                last_sweep: AtomicI64::new(util::now()),
            }),
        })
    }

    /// The routes, all under `/auth/`.
    pub fn router(&self) -> axum::Router {
        http::router(Arc::clone(&self.inner))
    }

    /// The issuer URL (the tokens' `iss`).
    pub fn issuer(&self) -> &str {
        &self.inner.config.issuer
    }

    /// The JWKS: the signing key's public half and the previous ones still verifying.
    pub fn jwks(&self) -> serde_json::Value {
        self.inner.keyset_now().jwks()
    }

    /// Whether the access token with this `jti` was revoked (answers "no" for at most a
    /// few seconds after a revocation made on another replica).
    pub async fn is_revoked(&self, jti: &str) -> Result<bool, AuthServerError> {
        self.inner.is_revoked(jti).await
    }

    /// The SMART configuration document (`[fhir base]/.well-known/smart-configuration`).
    pub fn smart_configuration(&self, fhir_base: &str) -> serde_json::Value {
        endpoints::smart_configuration(&self.inner, fhir_base)
    }

    /// Account management over the same store.
    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    /// Deletes expired one-time values (codes, assertion `jti`s, used TOTP steps,
    /// revocations, refresh tokens); returns how many. Replicas also run it by themselves
    /// every ten minutes.
    pub async fn sweep(&self) -> Result<usize, AuthServerError> {
        self.inner.sweep().await
    }
}

async fn load_keys(store: &dyn Store, file_key: Option<&[u8]>) -> Result<KeySet, AuthServerError> {
    if let Some(der) = file_key {
        return KeySet::build(der, None);
    }
    let stored = match store.meta(keys::META_KEY).await? {
        Some(v) => from_json::<keys::StoredKeys>(&v, keys::META_KEY)?,
        None => {
            let new = keys::rotated(None)?;
            if store
                .insert_meta(keys::META_KEY, &accounts::to_json(&new)?)
                .await?
            {
                new
            } else {
                let v = store.meta(keys::META_KEY).await?.ok_or_else(|| {
                    AuthServerError::Key("the signing key vanished while being created".into())
                })?;
                from_json(&v, keys::META_KEY)?
            }
        }
    };
    KeySet::build(&keys::decode_pkcs8(&stored.current.pkcs8)?, Some(&stored))
}

impl Inner {
    pub(crate) fn keyset_now(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(g) => Arc::clone(&g.0),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().0),
        }
    }

    /// The keys, read again from the store when older than [`KEY_RELOAD`].
    pub(crate) async fn keyset(&self) -> Arc<KeySet> {
        let stale = match self.keys.read() {
            Ok(g) => g.1.elapsed() > KEY_RELOAD,
            Err(_) => true,
        };
        if stale && self.file_key.is_none() {
            match load_keys(self.store.as_ref(), None).await {
                Ok(k) => {
                    let mut g = self.keys.write().unwrap_or_else(|p| p.into_inner());
                    *g = (Arc::new(k), Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reload the signing keys; keeping the loaded ones")
                }
            }
        }
        self.keyset_now()
    }

    pub(crate) async fn is_revoked(&self, jti: &str) -> Result<bool, AuthServerError> {
        if let Ok(cache) = self.revoked.lock()
            && let Some((at, revoked)) = cache.get(jti)
            && (*revoked || at.elapsed() < REVOKED_CACHE)
        {
            return Ok(*revoked);
        }
        let revoked = self
            .store
            .meta(&format!(
                "{}{}",
                tokens::REVOKED_PREFIX,
                util::sha256_hex(jti)
            ))
            .await?
            .is_some();
        self.remember_revoked(jti, revoked);
        Ok(revoked)
    }

    pub(crate) fn remember_revoked(&self, jti: &str, revoked: bool) {
        if let Ok(mut cache) = self.revoked.lock() {
            if cache.len() > 10_000 {
                cache.retain(|_, (at, r)| *r || at.elapsed() < REVOKED_CACHE);
                if cache.len() > 10_000 {
                    cache.clear();
                }
            }
            cache.insert(jti.to_owned(), (Instant::now(), revoked));
        }
    }

    /// Starts a sweep in the background when this replica has not run one for a while.
    pub(crate) fn maybe_sweep(self: &Arc<Self>) {
        let now = util::now();
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_SECS
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = me.sweep().await {
                tracing::warn!(error = %e, "sweeping expired authorization values failed");
            }
        });
    }

    async fn sweep(&self) -> Result<usize, AuthServerError> {
        let now = util::now();
        let mut removed = 0;
        for prefix in [
            grants::CODE_PREFIX,
            grants::REFRESH_PREFIX,
            client_auth::JTI_PREFIX,
            signin::TOTP_USED_PREFIX,
            tokens::REVOKED_PREFIX,
        ] {
            for (key, value) in self.store.meta_list(prefix).await? {
                if util::expiry_of(&value).is_some_and(|exp| exp < now)
                    && self.store.delete_meta(&key).await?
                {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
