//! A real authorization server on a loopback port over a real store (SQLite in a temp dir,
//! or a fresh PostgreSQL database when `CADUCEUS_TEST_DATABASE_URL` is set), and a small
//! HTTP client for the tests.
#![allow(dead_code)] // each test file uses a different part

use std::sync::Arc;

use caduceus_authserver::{Accounts, AuthServer, AuthServerConfig};
use caduceus_store::Store;
use serde_json::Value;

pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub base: String,
    pub issuer: String,
    pub fhir: String,
    pub server: AuthServer,
    pub accounts: Accounts,
    pub store: Arc<dyn Store>,
    pub agent: ureq::Agent,
    _dir: Option<tempfile::TempDir>,
    _db: Option<caduceus_store_postgres::testing::TestDb>,
}

pub enum Backend {
    Sqlite,
    Postgres,
}

impl Harness {
    /// `None` when PostgreSQL is asked for and not configured (the helper says so).
    pub fn start(backend: Backend) -> Option<Harness> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (store, dir, db): (Arc<dyn Store>, _, _) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let store =
                    caduceus_store_sqlite::SqliteStore::open(dir.path()).expect("open sqlite");
                (Arc::new(store), Some(dir), None)
            }
            Backend::Postgres => {
                let db = caduceus_store_postgres::testing::fresh_database()?;
                let store = rt
                    .block_on(caduceus_store_postgres::PostgresStore::open(
                        db.url(),
                        &caduceus_store_postgres::PgOptions::default(),
                    ))
                    .expect("open postgres");
                (Arc::new(store), None, Some(db))
            }
        };
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let issuer = format!("{base}/auth");
        let fhir = format!("{base}/fhir");
        let server = rt
            .block_on(AuthServer::open(
                Arc::clone(&store),
                AuthServerConfig::new(&issuer, &fhir),
            ))
            .expect("open auth server");
        let app = server.router();
        rt.spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .new_agent();
        Some(Harness {
            accounts: server.accounts().clone(),
            rt,
            base,
            issuer,
            fhir,
            server,
            store,
            agent,
            _dir: dir,
            _db: db,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// POSTs a form, with an optional `Authorization` header.
    pub fn post(&self, path: &str, form: &[(&str, &str)], auth: Option<&str>) -> Reply {
        let mut req = self.agent.post(self.url(path));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        Reply::from(req.send_form(form.iter().copied()).expect("request"))
    }

    pub fn get(&self, path_and_query: &str) -> Reply {
        Reply::from(
            self.agent
                .get(self.url(path_and_query))
                .call()
                .expect("request"),
        )
    }
}

pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub www_authenticate: Option<String>,
    pub cache_control: Option<String>,
    pub body: String,
}

impl Reply {
    fn from(mut r: ureq::http::Response<ureq::Body>) -> Reply {
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header("location");
        let www_authenticate = header("www-authenticate");
        let cache_control = header("cache-control");
        let body = r.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status: r.status().as_u16(),
            location,
            www_authenticate,
            cache_control,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_owned()
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The claims of an access token, checked against the server's published JWKS.
pub fn verify_access_token(h: &Harness, token: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&h.get("/auth/jwks").body).expect("jwks");
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[&h.fhir]);
    v.set_issuer(&[&h.issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("valid token")
        .claims
}

/// RFC 6238 code for a base32 secret at `unix` time.
pub fn totp(secret_b32: &str, unix: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .expect("base32");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret);
    let tag = ring::hmac::sign(&key, &(unix / 30).to_be_bytes());
    let h = tag.as_ref();
    let o = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[o]) & 0x7f) << 24
        | u32::from(h[o + 1]) << 16
        | u32::from(h[o + 2]) << 8
        | u32::from(h[o + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// The secret of an `otpauth://` URI.
pub fn secret_of(uri: &str) -> String {
    let query = uri.split_once('?').expect("query").1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "secret")
        .expect("secret")
        .1
        .into_owned()
}

/// The value of a query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
