//! SMART Backend Services end to end: a client registered with `caduceus clients add`
//! signs its assertion with a real JWT library (jsonwebtoken, RS384), gets an access token
//! from the built-in authorization server, and uses it on the FHIR API, within its scopes
//! and roles; a revoked token stops working. Also the token refusals of the API itself:
//! expired, not yet valid, wrong issuer, wrong audience, unknown kid, `alg: none`, HS256
//! signed with the public key and a tampered payload are all 401 with `WWW-Authenticate`.

mod access;
mod common;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{SECURE, Server, binary};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const PUBLIC_BASE: &str = "http://caduceus.test/fhir";
const TOKEN_URL: &str = "http://caduceus.test/auth/token";
const KEY: &str = include_str!("../../authserver/tests/fixtures/rs384-a.pem");
const JWKS: &str = "../authserver/tests/fixtures/rs384-a.jwks.json";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn assertion(client_id: &str) -> String {
    let mut header = Header::new(Algorithm::RS384);
    header.kid = Some("rs384-a".to_owned());
    let claims = json!({
        "iss": client_id, "sub": client_id, "aud": TOKEN_URL,
        "exp": now() + 240, "jti": uuid_like(),
    });
    let key = EncodingKey::from_rsa_pem(KEY.as_bytes()).expect("test key");
    jsonwebtoken::encode(&header, &claims, &key).expect("sign")
}

fn uuid_like() -> String {
    format!(
        "{:x}-{:x}",
        now(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

fn form(server: &Server, path: &str, pairs: &[(&str, &str)]) -> common::Reply {
    let body: String = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    server.request(
        "POST",
        &format!("http://{}{path}", server.addr),
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn client_auth(client_id: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
        ),
        ("client_assertion", assertion(client_id)),
    ]
}

#[test]
fn backend_services_flow_end_to_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let jwks = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(JWKS);
    let out = Command::new(binary())
        .args(["clients", "add", "backend-app", "--jwks-file"])
        .arg(&jwks)
        .args([
            "--scope",
            "system/Patient.crs",
            "--scope",
            "system/Observation.rs",
            "--role",
            "clinician",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("caduceus clients add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = Server::start_in(
        &data,
        &[
            SECURE,
            "--plain-http",
            "--auth-server",
            "--base-url",
            PUBLIC_BASE,
        ],
    );
    let config = server.request(
        "GET",
        &format!(
            "http://{}/fhir/.well-known/smart-configuration",
            server.addr
        ),
        &[],
        None,
    );
    assert_eq!(config.status, 200, "{}", config.text());
    assert_eq!(config.json()["token_endpoint"], TOKEN_URL);
    // The CapabilityStatement (public) says SMART, with the same endpoints.
    let metadata = server.get("metadata").json();
    let security = &metadata["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    let uris = security["extension"][0]["extension"].to_string();
    assert!(uris.contains(TOKEN_URL), "{uris}");

    let mut pairs = vec![
        ("grant_type", "client_credentials".to_owned()),
        (
            "scope",
            "system/Patient.crs system/Observation.rs".to_owned(),
        ),
    ];
    pairs.extend(client_auth("backend-app"));
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = form(&server, "/auth/token", &borrowed);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let token: Value = reply.json();
    let access = token["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert_eq!(token["token_type"], "Bearer");
    let auth = format!("Bearer {access}");

    let patient =
        serde_json::to_vec(&json!({"resourceType": "Patient", "active": true})).expect("json");
    let created = server.request(
        "POST",
        "Patient",
        &[
            ("authorization", &auth),
            ("content-type", "application/fhir+json"),
        ],
        Some(&patient),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let read = server.request(
        "GET",
        &format!("Patient/{id}"),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(read.status, 200);
    // Outside the granted scopes: no delete, no Encounter.
    let deleted = server.request(
        "DELETE",
        &format!("Patient/{id}"),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(deleted.status, 403);
    let other = server.request("GET", "Encounter", &[("authorization", &auth)], None);
    assert_eq!(other.status, 403);

    // Revoked: refused (the API's "not revoked" cache lasts a few seconds at most).
    let mut pairs = vec![("token", access.clone())];
    pairs.extend(client_auth("backend-app"));
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let revoked = form(&server, "/auth/revoke", &borrowed);
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = server.request("GET", "Patient", &[("authorization", &auth)], None);
        if r.status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a revoked token still works: {}",
            r.status
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // A client the server does not know gets no token.
    let mut pairs = vec![("grant_type", "client_credentials".to_owned())];
    pairs.extend(client_auth("stranger"));
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(form(&server, "/auth/token", &borrowed).status, 401);
}

#[test]
fn bad_tokens_are_401_with_a_challenge() {
    let server = access::secure_server();
    let issuer = access::issuer();
    let good = access::claims("user/*.rs", &["clinician"]);
    let check = |name: &str, token: String| {
        let reply = server.request(
            "GET",
            "Patient",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        );
        assert_eq!(reply.status, 401, "{name}: {}", reply.text());
        let challenge = reply
            .header("www-authenticate")
            .unwrap_or_default()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
            "{name}: {challenge}"
        );
        assert!(
            !reply.text().contains(&token),
            "{name}: the token is echoed"
        );
    };
    // The good token works, so every refusal below is about the one thing changed.
    let ok = server.request(
        "GET",
        "Patient",
        &[("authorization", &access::bearer(&good))],
        None,
    );
    assert_eq!(ok.status, 200, "{}", ok.text());

    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        issuer.key.sign(&c)
    };
    check("expired", with(&|c| c["exp"] = json!(now() as i64 - 3600)));
    check(
        "not yet valid",
        with(&|c| c["nbf"] = json!(now() as i64 + 3600)),
    );
    check(
        "wrong issuer",
        with(&|c| c["iss"] = json!("https://evil.example")),
    );
    check(
        "wrong audience",
        with(&|c| c["aud"] = json!("https://other.example/fhir")),
    );
    check("unknown kid", issuer.key.sign_as("no-such-key", &good));

    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good)
    );
    check("alg none", none);
    let hs = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(issuer.key.kid.clone());
        jsonwebtoken::encode(
            &header,
            &good,
            &EncodingKey::from_secret(&issuer.key.public_bytes),
        )
        .expect("sign")
    };
    check("HS256 with the public key", hs);
    let valid = issuer.key.sign(&good);
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let mut tampered = good.clone();
    tampered["roles"] = json!(["admin"]);
    parts[1] = b64(&tampered);
    check("tampered payload", parts.join("."));
    check("garbage", "not-a-jwt".to_owned());
}
