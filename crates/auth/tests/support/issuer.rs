//! A test token issuer: keys (two fixed RSA keys, P-256 and Ed25519 keys made per run),
//! tokens signed with them, and a loopback HTTP server publishing the discovery document
//! and the JWKS, counting JWKS fetches, whose keys the test can change.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};
use serde_json::{Value, json};

pub const RSA_A: &str = include_str!("../keys/rsa-a.pem");
pub const RSA_B: &str = include_str!("../keys/rsa-b.pem");

/// A signing key and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key's bytes (for the HMAC confusion attack).
    pub public_bytes: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    /// An RSA key from a PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`).
    pub fn rsa(kid: &str, pem: &str) -> TestKey {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).expect("test PEM");
        let pair = signature::RsaKeyPair::from_der(&der).expect("test RSA key");
        let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
        TestKey {
            kid: kid.to_owned(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(&der),
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                        "n": b64(&public.n), "e": b64(&public.e)}),
            public_bytes: pair.public().as_ref().to_vec(),
        }
    }

    pub fn p256(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("P-256 key");
        let pair = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("P-256");
        let point = pair.public_key().as_ref();
        TestKey {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({"kty": "EC", "kid": kid, "crv": "P-256",
                        "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
            public_bytes: point.to_vec(),
        }
    }

    pub fn ed25519(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519 key");
        let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("Ed25519");
        let x = pair.public_key().as_ref();
        TestKey {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(x)}),
            public_bytes: x.to_vec(),
        }
    }

    /// A token with these claims, naming this key.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// A token with these claims, naming `kid` (which may be another key's).
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing")
    }

    /// A token with these claims and no `kid`.
    pub fn sign_without_kid(&self, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(self.alg), claims, &self.encoding).expect("signing")
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[derive(Default)]
struct Published {
    keys: Mutex<Vec<Value>>,
    fetches: AtomicUsize,
    down: AtomicBool,
    issuer: Mutex<String>,
    jwks_uri: Mutex<String>,
    cache_control: Mutex<Option<String>>,
}

/// The issuer's HTTP side on 127.0.0.1.
pub struct JwksServer {
    pub base: String,
    published: Arc<Published>,
}

impl JwksServer {
    pub async fn start(keys: Vec<Value>) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let published = Arc::new(Published::default());
        *published.keys.lock().unwrap() = keys;
        *published.issuer.lock().unwrap() = base.clone();
        *published.jwks_uri.lock().unwrap() = format!("{base}/jwks");
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(Arc::clone(&published));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        JwksServer { base, published }
    }

    pub fn issuer(&self) -> String {
        self.base.clone()
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.base)
    }

    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.published.keys.lock().unwrap() = keys;
    }

    /// JWKS fetches so far.
    pub fn fetches(&self) -> usize {
        self.published.fetches.load(Ordering::SeqCst)
    }

    /// Makes every request fail with 503 (the provider is down).
    pub fn set_down(&self, down: bool) {
        self.published.down.store(down, Ordering::SeqCst);
    }

    /// The `issuer` the discovery document names.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *self.published.issuer.lock().unwrap() = issuer.to_owned();
    }

    pub fn set_cache_control(&self, value: Option<&str>) {
        *self.published.cache_control.lock().unwrap() = value.map(str::to_owned);
    }
}

async fn discovery(State(p): State<Arc<Published>>) -> Result<Json<Value>, StatusCode> {
    if p.down.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let issuer = p.issuer.lock().unwrap().clone();
    let jwks_uri = p.jwks_uri.lock().unwrap().clone();
    Ok(Json(json!({"issuer": issuer, "jwks_uri": jwks_uri})))
}

async fn jwks(
    State(p): State<Arc<Published>>,
) -> Result<([(axum::http::HeaderName, String); 1], Json<Value>), StatusCode> {
    p.fetches.fetch_add(1, Ordering::SeqCst);
    if p.down.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let keys = p.keys.lock().unwrap().clone();
    let cache_control = p
        .cache_control
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| "no-transform".to_owned());
    Ok((
        [(axum::http::header::CACHE_CONTROL, cache_control)],
        Json(json!({"keys": keys})),
    ))
}
