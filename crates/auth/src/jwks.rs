//! One issuer's verification keys: parsed once from its JWKS into `DecodingKey`s, held
//! behind an `Arc` that the hot path clones, and refreshed when they grow old, when a
//! token names an unknown `kid` (rate-limited), or on demand. A failed refresh keeps the
//! last good keys.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Uri;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::config::{CacheSettings, LocalKeys};
use crate::error::KeyFetchError;
use crate::http::{HttpClient, check_url};

/// The type of a key, which decides the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::P256 => alg == ES256,
            KeyKind::P384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }
}

/// One usable verification key.
pub(crate) struct Key {
    kid: Option<String>,
    kind: KeyKind,
    /// The JWK's `alg`, when it names one: the only algorithm the key may verify.
    alg: Option<Algorithm>,
    pub(crate) decoding: DecodingKey,
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

/// The result of looking a token's key up.
pub(crate) enum Selected<'a> {
    Key(&'a Key),
    /// No key with that `kid` (or no `kid` and not exactly one key).
    Unknown,
    /// The key exists but may not verify this algorithm.
    AlgorithmMismatch,
}

/// A parsed key set, as the hot path sees it.
#[derive(Clone)]
pub(crate) struct KeySet {
    keys: Arc<[Key]>,
    /// When the set should be fetched again.
    refresh_at: Instant,
    /// Whether any fetch has succeeded yet.
    loaded: bool,
    /// Counts successful loads, so a waiter can tell that another task refreshed.
    generation: u64,
}

impl KeySet {
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Selected<'_> {
        let mut found = false;
        match kid {
            Some(kid) => {
                for key in self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)) {
                    if key.fits(alg) {
                        return Selected::Key(key);
                    }
                    found = true;
                }
            }
            None => {
                if let [key] = &*self.keys {
                    if key.fits(alg) {
                        return Selected::Key(key);
                    }
                    found = true;
                }
            }
        }
        if found {
            Selected::AlgorithmMismatch
        } else {
            Selected::Unknown
        }
    }
}

/// Parses a JWKS document, keeping the keys this crate can verify with: `use` absent or
/// `sig`, `key_ops` absent or with `verify`, RSA, EC P-256/P-384 or OKP Ed25519, an `alg`
/// (if any) that is an allowed asymmetric algorithm fitting the key. Returns the keys and
/// how many were skipped.
fn parse_jwks(doc: &Value) -> Result<(Vec<Key>, usize), String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    let mut out = Vec::with_capacity(keys.len());
    let mut skipped = 0;
    for jwk in keys {
        match parse_jwk(jwk) {
            Some(key) => out.push(key),
            None => skipped += 1,
        }
    }
    Ok((out, skipped))
}

fn parse_jwk(jwk: &Value) -> Option<Key> {
    // A member that is null counts as absent.
    let field = |name: &str| jwk.get(name).filter(|v| !v.is_null());
    let s = |name: &str| field(name).and_then(Value::as_str);
    if field("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return None;
    }
    if let Some(ops) = field("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return None;
        }
    }
    let (kind, decoding) = match s("kty")? {
        "RSA" => {
            let (n, e) = (s("n")?, s("e")?);
            let n_len = URL_SAFE_NO_PAD.decode(n).ok()?.len();
            // ring refuses RSA keys under 2048 bits when verifying; say so at load.
            if n_len < 256 {
                return None;
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_components(n, e).ok()?)
        }
        "EC" => {
            let (kind, len) = match s("crv")? {
                "P-256" => (KeyKind::P256, 32),
                "P-384" => (KeyKind::P384, 48),
                _ => return None,
            };
            let (x, y) = (s("x")?, s("y")?);
            let x_len = URL_SAFE_NO_PAD.decode(x).ok()?.len();
            let y_len = URL_SAFE_NO_PAD.decode(y).ok()?.len();
            if x_len != len || y_len != len {
                return None;
            }
            (kind, DecodingKey::from_ec_components(x, y).ok()?)
        }
        "OKP" => {
            if s("crv")? != "Ed25519" {
                return None;
            }
            let x = s("x")?;
            if URL_SAFE_NO_PAD.decode(x).ok()?.len() != 32 {
                return None;
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_components(x).ok()?)
        }
        _ => return None,
    };
    let alg = match field("alg") {
        None => None,
        Some(a) => {
            let alg = crate::token::asymmetric_algorithm(a.as_str()?)?;
            if !kind.fits(alg) {
                return None;
            }
            Some(alg)
        }
    };
    let kid = match field("kid") {
        None => None,
        Some(k) => Some(k.as_str()?.to_owned()),
    };
    Some(Key {
        kid,
        kind,
        alg,
        decoding,
    })
}

/// Where the keys come from.
enum Source {
    Discover {
        client: HttpClient,
        issuer: String,
        discovery: Uri,
    },
    Jwks {
        client: HttpClient,
        uri: Uri,
    },
    Local(Arc<dyn LocalKeys>),
}

/// State of the refresher, under the refresh lock.
#[derive(Default)]
struct RefreshState {
    /// The last fetch attempt, successful or not.
    last_attempt: Option<Instant>,
    /// Whether the last attempt failed.
    last_failed: bool,
    /// The `jwks_uri` discovery gave, until a fetch with it fails.
    discovered: Option<Uri>,
}

/// One issuer's key cache.
pub(crate) struct KeyCache {
    issuer: String,
    source: Source,
    settings: CacheSettings,
    current: RwLock<KeySet>,
    refresh: tokio::sync::Mutex<RefreshState>,
    /// A background refresh is under way (so stale requests do not each spawn one).
    background: AtomicBool,
}

/// Why a key was not found.
pub(crate) enum Lookup {
    /// No keys were ever loaded, and loading failed now or recently.
    Unavailable,
    Unknown,
    AlgorithmMismatch,
}

impl KeyCache {
    pub(crate) fn discover(
        issuer: &str,
        client: HttpClient,
        settings: CacheSettings,
    ) -> Result<KeyCache, &'static str> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery = check_url(&url)?;
        let source = Source::Discover {
            client,
            issuer: issuer.to_owned(),
            discovery,
        };
        Ok(KeyCache::new(issuer, source, settings))
    }

    pub(crate) fn jwks_uri(
        issuer: &str,
        url: &str,
        client: HttpClient,
        settings: CacheSettings,
    ) -> Result<KeyCache, &'static str> {
        let uri = check_url(url)?;
        Ok(KeyCache::new(
            issuer,
            Source::Jwks { client, uri },
            settings,
        ))
    }

    pub(crate) fn local(
        issuer: &str,
        keys: Arc<dyn LocalKeys>,
        settings: CacheSettings,
    ) -> KeyCache {
        KeyCache::new(issuer, Source::Local(keys), settings)
    }

    fn new(issuer: &str, source: Source, settings: CacheSettings) -> KeyCache {
        KeyCache {
            issuer: issuer.to_owned(),
            source,
            settings,
            current: RwLock::new(KeySet {
                keys: Arc::from(Vec::new()),
                refresh_at: Instant::now(),
                loaded: false,
                generation: 0,
            }),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            background: AtomicBool::new(false),
        }
    }

    fn snapshot(&self) -> KeySet {
        // A poisoned lock only means a writer panicked between two plain stores; the
        // value is still a whole KeySet.
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn store(&self, set: KeySet) {
        match self.current.write() {
            Ok(mut g) => *g = set,
            Err(p) => *p.into_inner() = set,
        }
    }

    /// The key set to verify a token with `kid` and `alg`: the cached one, refreshed
    /// first if none was loaded yet, or if it lacks the `kid` and an unknown-kid refresh
    /// is allowed now. An old set is refreshed in the background.
    pub(crate) async fn key_set(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<KeySet, Lookup> {
        let mut set = self.snapshot();
        if !set.loaded {
            set = self.refresh_if(|_, _| true).await;
            if !set.loaded {
                return Err(Lookup::Unavailable);
            }
        } else if Instant::now() >= set.refresh_at {
            self.refresh_in_background();
        }
        match set.select(kid, alg) {
            Selected::Key(_) => return Ok(set),
            Selected::AlgorithmMismatch => return Err(Lookup::AlgorithmMismatch),
            Selected::Unknown => {}
        }
        // An unknown key: refresh, unless another task just did, or the last fetch was
        // too recent (local keys are always asked again: no provider to spare).
        let seen = set.generation;
        let local = matches!(self.source, Source::Local(_));
        let interval = self.settings.unknown_kid_interval;
        set = self
            .refresh_if(|current, state| {
                current.generation == seen
                    && (local || state.last_attempt.is_none_or(|t| t.elapsed() >= interval))
            })
            .await;
        match set.select(kid, alg) {
            Selected::Key(_) => Ok(set),
            Selected::AlgorithmMismatch => Err(Lookup::AlgorithmMismatch),
            Selected::Unknown => Err(Lookup::Unknown),
        }
    }

    /// Takes the refresh lock and fetches if `wanted` (given the current set and the
    /// refresher's state) and the retry interval after a failure has passed; returns the
    /// set current afterwards.
    async fn refresh_if(&self, wanted: impl FnOnce(&KeySet, &RefreshState) -> bool) -> KeySet {
        let mut state = self.refresh.lock().await;
        let current = self.snapshot();
        if !wanted(&current, &state) || self.backing_off(&state) {
            return current;
        }
        let _ = self.fetch_and_store(&mut state).await;
        self.snapshot()
    }

    fn backing_off(&self, state: &RefreshState) -> bool {
        state.last_failed
            && state
                .last_attempt
                .is_some_and(|t| t.elapsed() < self.settings.retry_interval)
    }

    /// Refreshes an old set without making the request wait; if a refresh is under way,
    /// does nothing.
    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = Arc::clone(self);
        handle.spawn(async move {
            if let Ok(mut state) = cache.refresh.try_lock()
                && Instant::now() >= cache.snapshot().refresh_at
                && !cache.backing_off(&state)
            {
                let _ = cache.fetch_and_store(&mut state).await;
            }
            cache.background.store(false, Ordering::Release);
        });
    }

    /// Fetches now, whatever the intervals (start-up warm-up, an operator's request).
    /// Returns the number of usable keys.
    pub(crate) async fn refresh_now(&self) -> Result<usize, KeyFetchError> {
        let mut state = self.refresh.lock().await;
        self.fetch_and_store(&mut state).await
    }

    async fn fetch_and_store(&self, state: &mut RefreshState) -> Result<usize, KeyFetchError> {
        state.last_attempt = Some(Instant::now());
        let result = self.fetch(state).await;
        let now = Instant::now();
        let mut set = self.snapshot();
        match result {
            Ok((keys, skipped, max_age)) => {
                state.last_failed = false;
                let ttl = match max_age {
                    Some(age) => age.clamp(self.settings.min_ttl, self.settings.max_ttl),
                    None => self.settings.default_ttl,
                };
                let count = keys.len();
                tracing::debug!(
                    issuer = %self.issuer,
                    keys = count,
                    skipped,
                    ttl_seconds = ttl.as_secs(),
                    "issuer signing keys loaded"
                );
                self.store(KeySet {
                    keys: Arc::from(keys),
                    refresh_at: now + ttl,
                    loaded: true,
                    generation: set.generation + 1,
                });
                Ok(count)
            }
            Err(e) => {
                state.last_failed = true;
                tracing::warn!(
                    issuer = %self.issuer,
                    error = %e,
                    cached_keys = set.keys.len(),
                    "fetching the issuer's signing keys failed; keeping the last good keys"
                );
                set.refresh_at = now + self.settings.retry_interval;
                self.store(set);
                Err(e)
            }
        }
    }

    /// One fetch from the source: keys, skipped count, `max-age`.
    async fn fetch(
        &self,
        state: &mut RefreshState,
    ) -> Result<(Vec<Key>, usize, Option<Duration>), KeyFetchError> {
        let (doc, url, max_age) = match &self.source {
            Source::Local(keys) => {
                let doc =
                    serde_json::to_value(keys.jwks()).map_err(|e| KeyFetchError::Document {
                        url: "local".into(),
                        reason: e.to_string(),
                    })?;
                (doc, "local".to_owned(), None)
            }
            Source::Jwks { client, uri } => {
                let fetched = client.get(uri).await?;
                (json(&fetched.body, uri)?, uri.to_string(), fetched.max_age)
            }
            Source::Discover {
                client,
                issuer,
                discovery,
            } => {
                let uri = match &state.discovered {
                    Some(uri) => uri.clone(),
                    None => {
                        let uri = discover(client, issuer, discovery).await?;
                        state.discovered = Some(uri.clone());
                        uri
                    }
                };
                match client.get(&uri).await {
                    Ok(fetched) => (json(&fetched.body, &uri)?, uri.to_string(), fetched.max_age),
                    Err(e) => {
                        // The provider may have moved its keys: discover again next time.
                        state.discovered = None;
                        return Err(e);
                    }
                }
            }
        };
        let (keys, skipped) =
            parse_jwks(&doc).map_err(|reason| KeyFetchError::Document { url, reason })?;
        if keys.is_empty() {
            return Err(KeyFetchError::NoUsableKeys { skipped });
        }
        Ok((keys, skipped, max_age))
    }
}

fn json(body: &[u8], uri: &Uri) -> Result<Value, KeyFetchError> {
    serde_json::from_slice(body).map_err(|e| KeyFetchError::Document {
        url: uri.to_string(),
        reason: e.to_string(),
    })
}

/// Reads the discovery document: its `issuer` must equal ours exactly; returns its
/// checked `jwks_uri`.
async fn discover(
    client: &HttpClient,
    issuer: &str,
    discovery: &Uri,
) -> Result<Uri, KeyFetchError> {
    let fetched = client.get(discovery).await?;
    let doc = json(&fetched.body, discovery)?;
    let document_error = |reason: &str| KeyFetchError::Document {
        url: discovery.to_string(),
        reason: reason.to_owned(),
    };
    let found = doc
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or_else(|| document_error("no \"issuer\""))?;
    if found != issuer {
        return Err(KeyFetchError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: found.to_owned(),
        });
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| document_error("no \"jwks_uri\""))?;
    check_url(jwks_uri).map_err(|reason| KeyFetchError::JwksUri {
        url: jwks_uri.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(len: usize) -> String {
        URL_SAFE_NO_PAD.encode(vec![7u8; len])
    }

    #[test]
    fn keys_kept_and_skipped() {
        let doc = json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": b64(256), "e": "AQAB", "use": "sig", "alg": "RS256"},
            {"kty": "RSA", "kid": "enc", "n": b64(256), "e": "AQAB", "use": "enc"},
            {"kty": "RSA", "kid": "small", "n": b64(128), "e": "AQAB"},
            {"kty": "RSA", "kid": "hs", "n": b64(256), "e": "AQAB", "alg": "HS256"},
            {"kty": "RSA", "kid": "es", "n": b64(256), "e": "AQAB", "alg": "ES256"},
            {"kty": "EC", "kid": "p256", "crv": "P-256", "x": b64(32), "y": b64(32)},
            {"kty": "EC", "kid": "p521", "crv": "P-521", "x": b64(66), "y": b64(66)},
            {"kty": "EC", "kid": "short", "crv": "P-384", "x": b64(32), "y": b64(32)},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(32)},
            {"kty": "oct", "kid": "secret", "k": b64(32)},
            {"kty": "RSA", "kid": "ops", "n": b64(256), "e": "AQAB", "key_ops": ["encrypt"]}
        ]});
        let (keys, skipped) = parse_jwks(&doc).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["r", "p256", "ed"]);
        assert_eq!(skipped, 8);
        let set = KeySet {
            keys: Arc::from(keys),
            refresh_at: Instant::now(),
            loaded: true,
            generation: 1,
        };
        assert!(matches!(
            set.select(Some("r"), Algorithm::RS256),
            Selected::Key(_)
        ));
        // The JWK names RS256: PS256 with the same key is refused.
        assert!(matches!(
            set.select(Some("r"), Algorithm::PS256),
            Selected::AlgorithmMismatch
        ));
        assert!(matches!(
            set.select(Some("p256"), Algorithm::ES384),
            Selected::AlgorithmMismatch
        ));
        assert!(matches!(
            set.select(Some("nope"), Algorithm::RS256),
            Selected::Unknown
        ));
        // Several keys: a token must name one.
        assert!(matches!(
            set.select(None, Algorithm::RS256),
            Selected::Unknown
        ));
    }

    #[test]
    fn not_a_jwks() {
        assert!(parse_jwks(&json!({"keys": {}})).is_err());
        assert!(parse_jwks(&json!([])).is_err());
    }
}
