//! Bearer tokens against a test issuer whose discovery document and JWKS are served over
//! real HTTP on loopback: what is accepted, what is refused and why, key rotation, and
//! the limits on refetching the keys.

mod support {
    pub mod issuer;
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caduceus_access::{Clearance, PrincipalKind, ScopeContext};
use caduceus_auth::{
    AuthError, AuthFile, Authenticator, CacheSettings, ClaimMapping, ConfigError, IssuerConfig,
    JwkSet, KeyFetchError, KeySource, RevocationCheck, RevocationError,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::issuer::{JwksServer, RSA_A, RSA_B, TestKey, now};

const AUD: &str = "https://fhir.example.org/fhir";
const REALM: &str = "caduceus";

fn claims(iss: &str) -> Value {
    json!({
        "iss": iss,
        "aud": ["https://other.example.org", AUD],
        "sub": "user-17",
        "client_id": "ward-app",
        "exp": now() + 300,
        "iat": now(),
        "jti": "token-1",
        "scope": "openid fhirUser patient/Observation.rs patient/Patient.r",
        "roles": ["patient"],
        "patient": "pat-1",
        "fhirUser": "Patient/pat-1",
        "departments": ["cardio"],
        "clearance": "R",
    })
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn authenticator(server: &JwksServer, cache: CacheSettings) -> Authenticator {
    let mut config = IssuerConfig::discover(server.issuer(), AUD);
    config.cache = cache;
    Authenticator::new(vec![config]).expect("config")
}

/// Asserts the refusal and its challenge.
fn refused(result: Result<caduceus_access::Principal, AuthError>, expected: AuthError) {
    let err = result.expect_err("the token must be refused");
    assert_eq!(err, expected);
    let challenge = err.www_authenticate(REALM);
    assert!(
        challenge.starts_with(
            "Bearer realm=\"caduceus\", error=\"invalid_token\", error_description=\""
        ),
        "{challenge}"
    );
    assert_eq!(err.status(), 401);
}

#[tokio::test]
async fn valid_tokens_map_to_principals() {
    let rsa = TestKey::rsa("rsa-a", RSA_A);
    let ec = TestKey::p256("ec-1");
    let ed = TestKey::ed25519("ed-1");
    let server = JwksServer::start(vec![rsa.jwk.clone(), ec.jwk.clone(), ed.jwk.clone()]).await;
    let auth = authenticator(&server, CacheSettings::default()).await;
    let iss = server.issuer();

    let p = auth
        .authenticate(Some(&bearer(&rsa.sign(&claims(&iss)))))
        .await
        .expect("valid RS256 token");
    assert_eq!(p.kind, PrincipalKind::User);
    assert_eq!(p.subject, "user-17");
    assert_eq!(p.client_id.as_deref(), Some("ward-app"));
    assert_eq!(p.issuer, iss);
    assert_eq!(p.scopes.len(), 2);
    assert!(p.scopes.iter().all(|s| s.context == ScopeContext::Patient));
    assert_eq!(p.roles, ["patient"]);
    assert_eq!(p.patient.as_deref(), Some("pat-1"));
    assert_eq!(p.fhir_user.as_deref(), Some("Patient/pat-1"));
    assert_eq!(p.departments, ["cardio"]);
    assert_eq!(p.clearance, Clearance::Restricted);
    assert_eq!(p.token_id.as_deref(), Some("token-1"));

    let system = with(
        claims(&iss),
        json!({"scope": "system/*.rs", "patient": null, "clearance": null, "aud": AUD}),
    );
    for key in [&ec, &ed] {
        let p = auth
            .authenticate(Some(&bearer(&key.sign(&system))))
            .await
            .unwrap_or_else(|e| panic!("valid {:?} token: {e}", key.alg));
        assert_eq!(p.kind, PrincipalKind::Client);
        assert_eq!(p.clearance, Clearance::Normal);
        assert_eq!(p.patient, None);
    }
    // Three tokens, one fetch.
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn refusals() {
    let rsa = TestKey::rsa("rsa-a", RSA_A);
    let server = JwksServer::start(vec![rsa.jwk.clone()]).await;
    let auth = authenticator(&server, CacheSettings::default()).await;
    let iss = server.issuer();
    let good = rsa.sign(&claims(&iss));
    auth.authenticate(Some(&bearer(&good)))
        .await
        .expect("valid");

    // No token at all: a plain challenge.
    let missing = auth.authenticate(None).await.unwrap_err();
    assert_eq!(missing, AuthError::Missing);
    assert_eq!(missing.www_authenticate(REALM), "Bearer realm=\"caduceus\"");
    let basic = auth
        .authenticate(Some("Basic dXNlcjpwYXNz"))
        .await
        .unwrap_err();
    assert_eq!(basic.www_authenticate(REALM), "Bearer realm=\"caduceus\"");

    let cases: Vec<(&str, String, AuthError)> = vec![
        (
            "expired",
            rsa.sign(&with(claims(&iss), json!({"exp": now() - 120}))),
            AuthError::Expired,
        ),
        (
            "not yet valid",
            rsa.sign(&with(claims(&iss), json!({"nbf": now() + 600}))),
            AuthError::NotYetValid,
        ),
        (
            "wrong issuer",
            rsa.sign(&with(
                claims(&iss),
                json!({"iss": "https://evil.example.org"}),
            )),
            AuthError::UnknownIssuer,
        ),
        (
            "issuer with a trailing slash",
            rsa.sign(&with(claims(&iss), json!({"iss": format!("{iss}/")}))),
            AuthError::UnknownIssuer,
        ),
        (
            "wrong audience",
            rsa.sign(&with(
                claims(&iss),
                json!({"aud": "https://other.example.org"}),
            )),
            AuthError::WrongAudience,
        ),
        (
            "no audience",
            rsa.sign(&with(claims(&iss), json!({"aud": null}))),
            AuthError::WrongAudience,
        ),
        (
            "no exp",
            rsa.sign(&with(claims(&iss), json!({"exp": null}))),
            AuthError::InvalidClaims("no exp"),
        ),
        (
            "unknown kid",
            rsa.sign_as("rsa-zzz", &claims(&iss)),
            AuthError::UnknownKey,
        ),
        (
            "malformed SMART scope",
            rsa.sign(&with(
                claims(&iss),
                json!({"scope": "patient/Observation.burn"}),
            )),
            AuthError::InvalidClaims("malformed SMART scope"),
        ),
        (
            "alg none",
            alg_none(&claims(&iss)),
            AuthError::AlgorithmNotAllowed,
        ),
        (
            "HS256 with the public key (DER) as secret",
            hmac_signed(&rsa.public_bytes, &claims(&iss)),
            AuthError::AlgorithmNotAllowed,
        ),
        (
            "HS256 with the JWK as secret",
            hmac_signed(rsa.jwk.to_string().as_bytes(), &claims(&iss)),
            AuthError::AlgorithmNotAllowed,
        ),
        (
            "tampered payload",
            tampered(&good, &with(claims(&iss), json!({"roles": ["admin"]}))),
            AuthError::BadSignature,
        ),
        (
            "signed by a key the issuer does not publish, under its kid",
            TestKey::rsa("rsa-a", RSA_B).sign(&claims(&iss)),
            AuthError::BadSignature,
        ),
        (
            "PS256 with a key published for RS256",
            {
                let mut header = Header::new(Algorithm::PS256);
                header.kid = Some("rsa-a".into());
                jsonwebtoken::encode(&header, &claims(&iss), &rsa.encoding).unwrap()
            },
            AuthError::AlgorithmNotAllowed,
        ),
        (
            "not a JWT",
            "abc.def".to_owned(),
            AuthError::Malformed("not a JWT"),
        ),
    ];
    for (what, token, expected) in cases {
        let result = auth.authenticate(Some(&bearer(&token))).await;
        let err = result.as_ref().err().cloned();
        assert_eq!(err.as_ref(), Some(&expected), "{what}");
        refused(result, expected);
    }
    // Descriptions never carry the token or claim values.
    let err = auth
        .authenticate(Some(&bearer(&tampered(
            &good,
            &with(claims(&iss), json!({"jti": "x"})),
        ))))
        .await
        .unwrap_err();
    let challenge = err.www_authenticate(REALM);
    assert!(!challenge.contains("user-17") && !challenge.contains(&good[..20]));
}

/// `alg: none` with an empty signature.
fn alg_none(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// The classic confusion attack: HS256 with a public key's bytes as the HMAC secret.
fn hmac_signed(secret: &[u8], claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-a".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// `token`'s header and signature around another payload.
fn tampered(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[tokio::test]
async fn key_rotation() {
    let a = TestKey::rsa("rsa-a", RSA_A);
    let b = TestKey::rsa("rsa-b", RSA_B);
    let server = JwksServer::start(vec![a.jwk.clone()]).await;
    // The provider says max-age=1; a floor of zero honours it.
    server.set_cache_control(Some("public, max-age=1"));
    let cache = CacheSettings {
        min_ttl: Duration::ZERO,
        unknown_kid_interval: Duration::from_millis(300),
        ..CacheSettings::default()
    };
    let auth = authenticator(&server, cache).await;
    let iss = server.issuer();
    let old = a.sign(&claims(&iss));
    auth.authenticate(Some(&bearer(&old))).await.expect("key a");
    assert_eq!(server.fetches(), 1);

    // The provider adds key b and signs with it: the unknown kid makes us refetch.
    server.set_keys(vec![b.jwk.clone(), a.jwk.clone()]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let new = b.sign(&claims(&iss));
    auth.authenticate(Some(&bearer(&new)))
        .await
        .expect("key b after the refresh");
    assert_eq!(server.fetches(), 2);
    auth.authenticate(Some(&bearer(&old)))
        .await
        .expect("key a still published");

    // The provider drops key a: once the set is refreshed (max-age 1 s), a fails.
    server.set_keys(vec![b.jwk.clone()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match auth.authenticate(Some(&bearer(&old))).await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e, AuthError::UnknownKey);
                break;
            }
        }
        assert!(Instant::now() < deadline, "key a still accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    auth.authenticate(Some(&bearer(&new))).await.expect("key b");
}

#[tokio::test]
async fn unknown_kid_refresh_is_rate_limited() {
    let a = TestKey::rsa("rsa-a", RSA_A);
    let server = JwksServer::start(vec![a.jwk.clone()]).await;
    // Long enough that a slow machine still sends each round within one interval.
    let interval = Duration::from_millis(1500);
    let cache = CacheSettings {
        unknown_kid_interval: interval,
        ..CacheSettings::default()
    };
    let auth = authenticator(&server, cache).await;
    let iss = server.issuer();
    // Signed beforehand, so each round is quick.
    let garbage: Vec<String> = (0..20)
        .map(|i| bearer(&a.sign_as(&format!("garbage-{i}"), &claims(&iss))))
        .collect();
    auth.authenticate(Some(&bearer(&a.sign(&claims(&iss)))))
        .await
        .expect("valid");
    assert_eq!(server.fetches(), 1);

    // Made-up kids right after a fetch: refused without fetching.
    for token in &garbage {
        let err = auth.authenticate(Some(token)).await.unwrap_err();
        assert_eq!(err, AuthError::UnknownKey);
    }
    assert_eq!(server.fetches(), 1);

    // After the interval, a burst of them, concurrently: one fetch.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let mut tasks = Vec::new();
    for token in garbage {
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            auth.authenticate(Some(&token)).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err(), AuthError::UnknownKey);
    }
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn provider_down() {
    let a = TestKey::rsa("rsa-a", RSA_A);
    let server = JwksServer::start(vec![a.jwk.clone()]).await;
    server.set_cache_control(Some("max-age=0"));
    let cache = CacheSettings {
        min_ttl: Duration::ZERO,
        retry_interval: Duration::from_secs(1),
        ..CacheSettings::default()
    };
    let iss = server.issuer();
    let token = bearer(&a.sign(&claims(&iss)));

    // Down before any key was fetched: 503, not 401.
    server.set_down(true);
    let auth = authenticator(&server, cache.clone()).await;
    let err = auth.authenticate(Some(&token)).await.unwrap_err();
    assert_eq!(err, AuthError::KeysUnavailable);
    assert!(err.is_unavailable());
    assert_eq!(err.status(), 503);
    // Within the retry interval, no new attempt.
    let fetches = server.fetches();
    auth.authenticate(Some(&token)).await.unwrap_err();
    assert_eq!(server.fetches(), fetches);

    // Up again: keys are fetched once the retry interval has passed.
    server.set_down(false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    auth.authenticate(Some(&token))
        .await
        .expect("provider back");

    // Down after keys were fetched: the last good keys keep working, though stale.
    server.set_down(true);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        auth.authenticate(Some(&token)).await.expect("cached keys");
    }
    let results = auth.refresh_keys().await;
    assert!(matches!(
        results[0].1,
        Err(KeyFetchError::Status { status: 503, .. })
    ));
    auth.authenticate(Some(&token))
        .await
        .expect("still the cached keys");
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let a = TestKey::rsa("rsa-a", RSA_A);
    let server = JwksServer::start(vec![a.jwk.clone()]).await;
    server.set_discovery_issuer("https://impostor.example.org");
    let auth = authenticator(&server, CacheSettings::default()).await;
    let results = auth.refresh_keys().await;
    assert!(
        matches!(&results[0].1, Err(KeyFetchError::IssuerMismatch { found, .. }) if found == "https://impostor.example.org"),
        "{results:?}"
    );
    let token = bearer(&a.sign(&claims(&server.issuer())));
    assert_eq!(
        auth.authenticate(Some(&token)).await.unwrap_err(),
        AuthError::KeysUnavailable
    );
    assert_eq!(server.fetches(), 0);

    // A JWKS URL given directly needs no discovery.
    let mut config = IssuerConfig::discover(server.issuer(), AUD);
    config.keys = KeySource::JwksUri(server.jwks_uri());
    let auth = Authenticator::new(vec![config]).unwrap();
    auth.authenticate(Some(&token)).await.expect("JWKS URL");
}

#[tokio::test]
async fn one_key_without_kid() {
    let ed = TestKey::ed25519("ed-1");
    let mut jwk = ed.jwk.clone();
    jwk.as_object_mut().unwrap().remove("kid");
    let server = JwksServer::start(vec![jwk]).await;
    let auth = authenticator(&server, CacheSettings::default()).await;
    let c = claims(&server.issuer());
    auth.authenticate(Some(&bearer(&ed.sign_without_kid(&c))))
        .await
        .expect("the only key");
    // Two keys: the token must say which.
    let ec = TestKey::p256("ec-1");
    let server = JwksServer::start(vec![ed.jwk.clone(), ec.jwk.clone()]).await;
    let auth = authenticator(&server, CacheSettings::default()).await;
    let c = claims(&server.issuer());
    assert_eq!(
        auth.authenticate(Some(&bearer(&ec.sign_without_kid(&c))))
            .await
            .unwrap_err(),
        AuthError::UnknownKey
    );
}

#[tokio::test]
async fn local_keys_and_revocation() {
    struct Revoked;
    #[async_trait]
    impl RevocationCheck for Revoked {
        async fn is_revoked(&self, jti: &str) -> Result<bool, RevocationError> {
            match jti {
                "revoked" => Ok(true),
                "broken" => Err("revocation store unreachable".into()),
                _ => Ok(false),
            }
        }
    }
    let a = TestKey::p256("local-1");
    let b = TestKey::ed25519("local-2");
    let published = Arc::new(std::sync::Mutex::new(vec![a.jwk.clone()]));
    let source = Arc::clone(&published);
    let keys = move || -> JwkSet {
        serde_json::from_value(json!({"keys": source.lock().unwrap().clone()})).unwrap()
    };
    let iss = "https://caduceus.example.org/auth";
    let mut config = IssuerConfig::local(iss, AUD, Arc::new(keys));
    config.revocation = Some(Arc::new(Revoked));
    let auth = Authenticator::new(vec![config]).unwrap();

    auth.authenticate(Some(&bearer(&a.sign(&claims(iss)))))
        .await
        .expect("local key");
    // A rotation in process is seen at once, with no rate limit.
    published.lock().unwrap().push(b.jwk.clone());
    auth.authenticate(Some(&bearer(&b.sign(&claims(iss)))))
        .await
        .expect("new local key");

    let revoked = b.sign(&with(claims(iss), json!({"jti": "revoked"})));
    refused(
        auth.authenticate(Some(&bearer(&revoked))).await,
        AuthError::Revoked,
    );
    let broken = b.sign(&with(claims(iss), json!({"jti": "broken"})));
    let err = auth.authenticate(Some(&bearer(&broken))).await.unwrap_err();
    assert_eq!(err, AuthError::RevocationUnavailable);
    assert_eq!(err.status(), 503);
    let no_jti = b.sign(&with(claims(iss), json!({"jti": null})));
    assert!(matches!(
        auth.authenticate(Some(&bearer(&no_jti))).await,
        Err(AuthError::InvalidClaims(_))
    ));
}

#[test]
fn configurations_refused() {
    let http = IssuerConfig::discover("http://idp.example.org/realms/x", AUD);
    assert!(matches!(
        Authenticator::new(vec![http]),
        Err(ConfigError::Url { .. })
    ));
    let mut hmac = IssuerConfig::discover("https://idp.example.org", AUD);
    hmac.algorithms.push(Algorithm::HS256);
    assert!(matches!(
        Authenticator::new(vec![hmac]),
        Err(ConfigError::HmacAlgorithm { .. })
    ));
    let mut no_aud = IssuerConfig::discover("https://idp.example.org", AUD);
    no_aud.audiences.clear();
    assert!(matches!(
        Authenticator::new(vec![no_aud]),
        Err(ConfigError::NoAudience(_))
    ));
    let twice = vec![
        IssuerConfig::discover("https://idp.example.org", AUD),
        IssuerConfig::discover("https://idp.example.org", AUD),
    ];
    assert!(matches!(
        Authenticator::new(twice),
        Err(ConfigError::DuplicateIssuer(_))
    ));
    assert!(matches!(
        Authenticator::new(Vec::new()),
        Err(ConfigError::NoIssuers)
    ));
    let mut jwks = IssuerConfig::discover("https://idp.example.org", AUD);
    jwks.keys = KeySource::JwksUri("http://10.0.0.1/jwks".into());
    assert!(matches!(
        Authenticator::new(vec![jwks]),
        Err(ConfigError::Url { .. })
    ));
}

#[test]
fn configuration_file() {
    let file = AuthFile::from_toml(
        r#"
        [[issuer]]
        issuer = "https://keycloak.example.org/realms/hospital"
        audiences = ["https://fhir.example.org/fhir"]
        [issuer.claims]
        roles = ["realm_access.roles", "resource_access.fhir.roles"]
        client_id = ["azp"]

        [[issuer]]
        issuer = "https://login.microsoftonline.com/tenant/v2.0"
        audiences = ["api://caduceus"]
        algorithms = ["RS256"]
        leeway_seconds = 30
        jwks_uri = "https://login.microsoftonline.com/tenant/discovery/v2.0/keys"
        [issuer.cache]
        default_ttl_seconds = 3600
        "#,
    )
    .unwrap();
    let configs = file.issuer_configs();
    assert_eq!(configs.len(), 2);
    assert_eq!(configs[0].claims.roles.len(), 2);
    assert_eq!(configs[0].claims.scopes, ClaimMapping::default().scopes);
    assert_eq!(configs[0].algorithms.len(), 9);
    assert!(matches!(configs[0].keys, KeySource::Discover));
    assert_eq!(configs[1].algorithms, [Algorithm::RS256]);
    assert_eq!(configs[1].leeway, Duration::from_secs(30));
    assert_eq!(configs[1].cache.default_ttl, Duration::from_secs(3600));
    assert_eq!(
        configs[1].cache.unknown_kid_interval,
        Duration::from_secs(30)
    );
    assert!(matches!(configs[1].keys, KeySource::JwksUri(_)));
    Authenticator::from_file(&file).unwrap();

    assert!(AuthFile::from_toml("[[issuer]]\nissuer = \"x\"\n").is_err());
    assert!(
        AuthFile::from_toml(
            "[[issuer]]\nissuer = \"https://x\"\naudiences = [\"a\"]\nalgorithms = [\"none\"]\n"
        )
        .is_err()
    );
    assert!(
        AuthFile::from_toml(
            "[[issuer]]\nissuer = \"https://x\"\naudiences = [\"a\"]\nsecret = \"s\"\n"
        )
        .is_err()
    );
}
