//! A secure server and a token issuer for access-control tests: the issuer is the test
//! issuer of caduceus-auth's tests (a loopback discovery document and JWKS, keys the test
//! holds); the server trusts it and runs with authentication on.

#![allow(dead_code)]

#[path = "../../../auth/tests/support/issuer.rs"]
pub mod issuer;

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::common::{SECURE, Server};
use issuer::{JwksServer, TestKey, now};

pub const AUDIENCE: &str = "https://caduceus.test/fhir";

/// The issuer, its runtime kept alive for the whole test binary.
pub struct Issuer {
    pub server: JwksServer,
    pub key: TestKey,
    _runtime: tokio::runtime::Runtime,
}

pub fn issuer() -> &'static Issuer {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let key = TestKey::rsa("k1", issuer::RSA_A);
        let server = runtime.block_on(JwksServer::start(vec![key.jwk.clone()]));
        Issuer {
            server,
            key,
            _runtime: runtime,
        }
    })
}

/// A server with authentication on, trusting the test issuer.
pub fn secure_server() -> Server {
    secure_server_with(&[])
}

/// [`secure_server`] with more flags.
pub fn secure_server_with(extra: &[&str]) -> Server {
    let iss = issuer().server.issuer();
    let mut flags = vec![
        SECURE,
        "--plain-http",
        "--oidc-issuer",
        &iss,
        "--oidc-audience",
        AUDIENCE,
    ];
    flags.extend_from_slice(extra);
    Server::start_with(&flags)
}

/// Claims of a valid token: the given scopes and roles, valid for ten minutes.
pub fn claims(scope: &str, roles: &[&str]) -> Value {
    json!({
        "iss": issuer().server.issuer(),
        "aud": AUDIENCE,
        "sub": format!("user-{}", roles.join("-")),
        "client_id": "test-app",
        "scope": scope,
        "roles": roles,
        "iat": now(),
        "exp": now() + 600,
        "jti": format!("t{}", now()),
    })
}

/// A signed token for these claims.
pub fn token(claims: &Value) -> String {
    issuer().key.sign(claims)
}

/// A bearer header value.
pub fn bearer(claims: &Value) -> String {
    format!("Bearer {}", token(claims))
}
