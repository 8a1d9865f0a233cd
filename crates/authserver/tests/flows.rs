//! The authorization server end to end over HTTP on loopback, on a real store: SQLite
//! always, PostgreSQL too when `CADUCEUS_TEST_DATABASE_URL` is set (each scenario runs on
//! both). The tests act as the clients and the browser.

mod support;

use base64::Engine;
use caduceus_access::Clearance;
use caduceus_authserver::{NewClient, NewClientKind, NewUser};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use support::*;

macro_rules! on_both_stores {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn sqlite() {
                let h = super::Harness::start(super::Backend::Sqlite).expect("sqlite");
                super::$scenario(&h);
            }
            #[test]
            fn postgres() {
                let Some(h) = super::Harness::start(super::Backend::Postgres) else {
                    return;
                };
                super::$scenario(&h);
            }
        }
    };
}

on_both_stores!(backend_services);
on_both_stores!(client_secrets);
on_both_stores!(authorization_code_with_pkce);
on_both_stores!(key_rotation_and_metadata);

fn add_jwt_client(h: &Harness, id: &str, jwks: &str, scopes: &[&str]) {
    h.rt.block_on(h.accounts.add_client(NewClient {
        client_id: id.into(),
        kind: NewClientKind::Jwt(serde_json::from_str(jwks).expect("jwks")),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        redirect_uris: vec![],
        roles: vec!["admin".into()],
        departments: vec!["lab".into()],
        clearance: Clearance::Restricted,
    }))
    .expect("add client");
}

fn add_secret_client(h: &Harness, id: &str, scopes: &[&str]) -> String {
    h.rt.block_on(h.accounts.add_client(NewClient {
        client_id: id.into(),
        kind: NewClientKind::Secret,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        redirect_uris: vec![],
        roles: vec![],
        departments: vec![],
        clearance: Clearance::Normal,
    }))
    .expect("add client")
    .expect("a generated secret")
}

fn assertion(
    alg: Algorithm,
    pem: &str,
    kid: Option<&str>,
    iss: &str,
    aud: &str,
    exp: i64,
    jti: &str,
) -> String {
    let key = match alg {
        Algorithm::RS384 | Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        _ => EncodingKey::from_ec_pem(pem.as_bytes()),
    }
    .expect("test key");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        &json!({"iss": iss, "sub": iss, "aud": aud, "exp": exp, "jti": jti}),
        &key,
    )
    .expect("sign")
}

fn backend_token(h: &Harness, assertion: &str, scope: &str) -> Reply {
    h.post(
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
        None,
    )
}

fn backend_services(h: &Harness) {
    let rs_a = fixture("rs384-a.pem");
    let rs_b = fixture("rs384-b.pem");
    add_jwt_client(
        h,
        "backend",
        &fixture("rs384-a.jwks.json"),
        &["system/Patient.rs", "system/Observation.cruds"],
    );
    add_jwt_client(
        h,
        "backend-ec",
        &fixture("es384.jwks.json"),
        &["system/*.rs"],
    );
    let aud = h.token_endpoint();
    let exp = now() + 240;
    let sign = |kid: Option<&str>, pem: &str, iss: &str, aud: &str, exp: i64, jti: &str| {
        assertion(Algorithm::RS384, pem, kid, iss, aud, exp, jti)
    };

    // The grant, narrowed to what the client may have.
    let a = sign(Some("rs384-a"), &rs_a, "backend", &aud, exp, "one");
    let r = backend_token(h, &a, "system/*.rs system/Encounter.rs");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.cache_control.as_deref(), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "system/Patient.rs system/Observation.rs");
    let expires_in = body["expires_in"].as_i64().expect("expires_in");
    assert!((290..=300).contains(&expires_in), "{expires_in}");
    let token = body["access_token"].as_str().expect("token").to_owned();
    let claims = verify_access_token(h, &token);
    assert_eq!(claims["sub"], "backend");
    assert_eq!(claims["client_id"], "backend");
    assert_eq!(claims["scope"], "system/Patient.rs system/Observation.rs");
    assert_eq!(claims["roles"], json!(["admin"]));
    assert_eq!(claims["departments"], json!(["lab"]));
    assert_eq!(claims["clearance"], "R");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(claims.get("patient").is_none());

    // Replay of the same assertion.
    let r = backend_token(h, &a, "system/Patient.rs");
    assert_eq!(
        (r.status, r.error().as_str()),
        (401, "invalid_client"),
        "{}",
        r.body
    );
    assert!(r.www_authenticate.is_some());

    // Refused: wrong aud, expired, too far ahead, unknown client, wrong key (with and
    // without a kid), no jti.
    for (why, a) in [
        (
            "aud",
            sign(
                Some("rs384-a"),
                &rs_a,
                "backend",
                &format!("{}/fhir", h.base),
                exp,
                "2",
            ),
        ),
        (
            "expired",
            sign(Some("rs384-a"), &rs_a, "backend", &aud, now() - 120, "3"),
        ),
        (
            "too far",
            sign(Some("rs384-a"), &rs_a, "backend", &aud, now() + 900, "4"),
        ),
        (
            "unknown",
            sign(Some("rs384-a"), &rs_a, "nobody", &aud, exp, "5"),
        ),
        (
            "wrong key",
            sign(Some("rs384-a"), &rs_b, "backend", &aud, exp, "6"),
        ),
        (
            "wrong key, no kid",
            sign(None, &rs_b, "backend", &aud, exp, "7"),
        ),
        (
            "wrong key, its kid",
            sign(Some("rs384-b"), &rs_b, "backend", &aud, exp, "8"),
        ),
    ] {
        let r = backend_token(h, &a, "system/Patient.rs");
        assert_eq!(
            (r.status, r.error().as_str()),
            (401, "invalid_client"),
            "{why}: {}",
            r.body
        );
    }
    let no_jti = {
        let key = EncodingKey::from_rsa_pem(rs_a.as_bytes()).expect("key");
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS384),
            &json!({"iss": "backend", "sub": "backend", "aud": aud, "exp": exp}),
            &key,
        )
        .expect("sign")
    };
    assert_eq!(backend_token(h, &no_jti, "system/Patient.rs").status, 401);

    // Without a kid the right key is found; scopes outside the registration are refused.
    let r = backend_token(
        h,
        &sign(None, &rs_a, "backend", &aud, exp, "9"),
        "system/Encounter.rs",
    );
    assert_eq!(
        (r.status, r.error().as_str()),
        (400, "invalid_scope"),
        "{}",
        r.body
    );
    let r = backend_token(
        h,
        &sign(None, &rs_a, "backend", &aud, exp, "10"),
        "user/*.rs",
    );
    assert_eq!(r.error(), "invalid_scope");

    // ES384 works the same.
    let es = assertion(
        Algorithm::ES384,
        &fixture("es384.pem"),
        Some("es384"),
        "backend-ec",
        &aud,
        exp,
        "e1",
    );
    let r = backend_token(h, &es, "system/Observation.rs?category=laboratory");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["scope"],
        "system/Observation.rs?category=laboratory"
    );

    // Introspection by another client: active, then inactive after revocation.
    let secret = add_secret_client(h, "resource-server", &["system/*.rs"]);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("resource-server:{secret}"))
    );
    let r = h.post("/auth/introspect", &[("token", &token)], Some(&basic));
    assert_eq!(r.status, 200, "{}", r.body);
    let i = r.json();
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], "backend");
    assert_eq!(i["sub"], "backend");
    assert_eq!(i["scope"], "system/Patient.rs system/Observation.rs");
    let jti = claims["jti"].as_str().expect("jti").to_owned();
    assert!(
        !h.rt
            .block_on(h.server.is_revoked(&jti))
            .expect("is_revoked")
    );
    // Only the token's own client may revoke it: another's attempt changes nothing.
    let r = h.post("/auth/revoke", &[("token", &token)], Some(&basic));
    assert_eq!(r.status, 200);
    assert_eq!(
        h.post("/auth/introspect", &[("token", &token)], Some(&basic))
            .json()["active"],
        true
    );
    let r = h.post(
        "/auth/revoke",
        &[
            ("token", &token),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            (
                "client_assertion",
                &sign(Some("rs384-a"), &rs_a, "backend", &aud, exp, "11"),
            ),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h.post("/auth/introspect", &[("token", &token)], Some(&basic));
    assert_eq!(r.json(), json!({"active": false}));
    assert!(
        h.rt.block_on(h.server.is_revoked(&jti))
            .expect("is_revoked")
    );
    // Garbage is inactive; an unauthenticated caller is refused.
    assert_eq!(
        h.post("/auth/introspect", &[("token", "x.y.z")], Some(&basic))
            .json()["active"],
        false
    );
    assert_eq!(
        h.post("/auth/introspect", &[("token", &token)], None)
            .status,
        401
    );

    // Expired one-time values are swept (nothing has expired yet but the used jtis of the
    // refused expired assertion).
    h.rt.block_on(h.server.sweep()).expect("sweep");
}

fn client_secrets(h: &Harness) {
    let secret = add_secret_client(h, "svc", &["system/Patient.rs"]);
    let basic = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("svc:{s}"))
        )
    };
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/Patient.rs"),
    ];
    let r = h.post("/auth/token", &form, Some(&basic(&secret)));
    assert_eq!(r.status, 200, "{}", r.body);
    let claims = verify_access_token(h, r.json()["access_token"].as_str().expect("token"));
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["clearance"], "N");
    let r = h.post("/auth/token", &form, Some(&basic("wrong")));
    assert_eq!((r.status, r.error().as_str()), (401, "invalid_client"));
    assert!(r.www_authenticate.is_some_and(|w| w.starts_with("Basic")));
    // client_secret_post.
    let post = |s: &str| {
        h.post(
            "/auth/token",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "system/Patient.rs"),
                ("client_id", "svc"),
                ("client_secret", s),
            ],
            None,
        )
    };
    assert_eq!(post(&secret).status, 200);
    assert_eq!(post("wrong").status, 401);
    // Two methods at once, an unknown grant type, no authentication at all.
    let r = h.post(
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
            ("client_secret", &secret),
            ("client_id", "svc"),
        ],
        Some(&basic(&secret)),
    );
    assert_eq!(r.error(), "invalid_request");
    let r = h.post(
        "/auth/token",
        &[("grant_type", "password")],
        Some(&basic(&secret)),
    );
    assert_eq!(r.error(), "unsupported_grant_type");
    let r = h.post("/auth/token", &form, None);
    assert_eq!(r.status, 401);
    // A secret client cannot pass as public by leaving the secret out.
    let r = h.post(
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
            ("client_id", "svc"),
        ],
        None,
    );
    assert_eq!(r.status, 401);
}

struct App<'a> {
    h: &'a Harness,
    client_id: &'static str,
    redirect_uri: &'static str,
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-with-more-entropy";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

impl App<'_> {
    fn request(&self, scope: &str, state: &str, method: &str) -> Vec<(String, String)> {
        vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), self.client_id.into()),
            ("redirect_uri".into(), self.redirect_uri.into()),
            ("scope".into(), scope.into()),
            ("state".into(), state.into()),
            ("code_challenge".into(), challenge(VERIFIER)),
            ("code_challenge_method".into(), method.into()),
            ("aud".into(), self.h.fhir.clone()),
        ]
    }

    fn authorize_url(&self, params: &[(String, String)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            q.append_pair(k, v);
        }
        format!("/auth/authorize?{}", q.finish())
    }

    /// Signs in through the form; the reply (a redirect with a code, or the form again).
    fn sign_in(&self, scope: &str, user: &str, password: &str, code: &str) -> Reply {
        let params = self.request(scope, "xyz", "S256");
        let page = self.h.get(&self.authorize_url(&params));
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains(r#"<form method="post""#));
        let mut form: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        form.extend([("username", user), ("password", password), ("totp", code)]);
        self.h.post("/auth/authorize", &form, None)
    }

    fn code_of(reply: &Reply) -> String {
        assert_eq!(reply.status, 303, "{}", reply.body);
        let location = reply.location.as_deref().expect("location");
        assert_eq!(query_param(location, "state").as_deref(), Some("xyz"));
        query_param(location, "code").expect("code")
    }

    fn exchange(&self, code: &str, verifier: &str) -> Reply {
        self.h.post(
            "/auth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.redirect_uri),
                ("code_verifier", verifier),
                ("client_id", self.client_id),
            ],
            None,
        )
    }
}

fn add_user(h: &Harness, name: &str, roles: &[&str], fhir_user: &str) -> String {
    let enrolment =
        h.rt.block_on(h.accounts.add_user(
            NewUser {
                username: name.into(),
                roles: roles.iter().map(|s| (*s).to_owned()).collect(),
                departments: vec!["cardiology".into()],
                clearance: Clearance::Normal,
                fhir_user: Some(fhir_user.into()),
            },
            "correct horse battery staple",
        ))
        .expect("add user");
    secret_of(&enrolment.uri)
}

fn authorization_code_with_pkce(h: &Harness) {
    let alice = add_user(h, "alice", &["clinician"], "Practitioner/12");
    let pat = add_user(h, "pat", &["patient"], "Patient/7");
    let bob = add_user(h, "bob", &["nurse"], "Practitioner/13");
    h.rt.block_on(
        h.accounts.add_client(NewClient {
            client_id: "app".into(),
            kind: NewClientKind::Public,
            scopes: [
                "user/*.rs",
                "patient/*.rs",
                "launch/patient",
                "offline_access",
            ]
            .map(String::from)
            .to_vec(),
            redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
            roles: vec![],
            departments: vec![],
            clearance: Clearance::Normal,
        }),
    )
    .expect("add app");
    let app = App {
        h,
        client_id: "app",
        redirect_uri: "http://127.0.0.1:9/cb",
    };
    let pw = "correct horse battery staple";
    let t = now();

    // Wrong password, wrong code, unknown user: the form again, one message, no redirect.
    for (user, password, code) in [
        ("alice", "wrong password!", totp(&alice, t)),
        ("alice", pw, "000000".to_owned()),
        ("nobody", pw, totp(&alice, t)),
    ] {
        let r = app.sign_in("user/*.rs", user, password, &code);
        assert_eq!(r.status, 200);
        assert!(r.location.is_none());
        assert!(r.body.contains("not correct"), "{}", r.body);
    }

    // Signed in: a code; a wrong verifier burns it; the right one then fails too.
    let r = app.sign_in(
        "user/Observation.rs offline_access",
        "alice",
        pw,
        &totp(&alice, t),
    );
    let code = App::code_of(&r);
    let wrong = app.exchange(&code, &format!("{VERIFIER}x"));
    assert_eq!(
        (wrong.status, wrong.error().as_str()),
        (400, "invalid_grant")
    );
    assert_eq!(app.exchange(&code, VERIFIER).error(), "invalid_grant");

    // The same TOTP code is not accepted twice.
    let r = app.sign_in("user/Observation.rs", "alice", pw, &totp(&alice, t));
    assert!(r.location.is_none() && r.body.contains("not correct"));

    // Next step's code: a token, and the code is single-use.
    let r = app.sign_in(
        "user/Observation.rs offline_access",
        "alice",
        pw,
        &totp(&alice, t + 30),
    );
    let code = App::code_of(&r);
    let r = app.exchange(&code, VERIFIER);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.cache_control.as_deref(), Some("no-store"));
    let body = r.json();
    assert_eq!(body["scope"], "user/Observation.rs offline_access");
    let claims = verify_access_token(h, body["access_token"].as_str().expect("token"));
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "app");
    assert_eq!(claims["fhirUser"], "Practitioner/12");
    assert_eq!(claims["roles"], json!(["clinician"]));
    assert_eq!(claims["departments"], json!(["cardiology"]));
    assert!(claims.get("patient").is_none());
    assert_eq!(app.exchange(&code, VERIFIER).error(), "invalid_grant");

    // The refresh token rotates.
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let form = |rt: &str| {
        h.post(
            "/auth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", "app"),
            ],
            None,
        )
    };
    let r = form(&refresh);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()["refresh_token"]
            .as_str()
            .is_some_and(|n| n != refresh)
    );
    assert_eq!(form(&refresh).error(), "invalid_grant");

    // A patient gets their own patient context.
    let r = app.sign_in("patient/*.rs launch/patient", "pat", pw, &totp(&pat, t));
    let r = app.exchange(&App::code_of(&r), VERIFIER);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["patient"], "7");
    let claims = verify_access_token(h, r.json()["access_token"].as_str().expect("token"));
    assert_eq!(claims["patient"], "7");
    assert_eq!(claims["scope"], "patient/*.rs launch/patient");

    // Request errors: redirected when client and redirect URI are good, else a page.
    let mut params = app.request("user/*.rs", "s1", "plain");
    let r = h.get(&app.authorize_url(&params));
    assert_eq!(r.status, 302);
    let location = r.location.expect("location");
    assert!(location.starts_with("http://127.0.0.1:9/cb?"));
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("s1"));
    params[6].1 = "S256".into();
    params[3].1 = "system/*.rs".into();
    let r = h.get(&app.authorize_url(&params));
    assert_eq!(
        query_param(&r.location.expect("location"), "error").as_deref(),
        Some("invalid_scope")
    );
    params[3].1 = "user/*.rs".into();
    params[2].1 = "http://127.0.0.1:9/elsewhere".into();
    let r = h.get(&app.authorize_url(&params));
    assert_eq!(r.status, 400);
    assert!(r.location.is_none());
    params[2].1 = "http://127.0.0.1:9/cb".into();
    params[1].1 = "unknown-app".into();
    let r = h.get(&app.authorize_url(&params));
    assert_eq!((r.status, r.location.is_none()), (400, true));

    // Repeated failures lock the account: then even the right credentials are refused.
    for _ in 0..5 {
        let r = app.sign_in("user/*.rs", "bob", "not the password", &totp(&bob, t));
        assert!(r.location.is_none());
    }
    let r = app.sign_in("user/*.rs", "bob", pw, &totp(&bob, t));
    assert!(r.location.is_none() && r.body.contains("not correct"));
}

fn key_rotation_and_metadata(h: &Harness) {
    let m = h.get("/auth/.well-known/openid-configuration").json();
    assert_eq!(m["issuer"], h.issuer.as_str());
    assert_eq!(m["jwks_uri"], format!("{}/jwks", h.issuer));
    assert_eq!(m["token_endpoint"], h.token_endpoint());
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    let smart = h.server.smart_configuration(&h.fhir);
    assert!(
        smart["capabilities"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("client-confidential-asymmetric")))
    );

    let secret = add_secret_client(h, "svc", &["system/*.rs"]);
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/*.rs"),
        ("client_id", "svc"),
        ("client_secret", secret.as_str()),
    ];
    let before = h.post("/auth/token", &form, None).json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let old_kid = h.server.jwks()["keys"][0]["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let new_kid =
        h.rt.block_on(h.accounts.rotate_signing_key())
            .expect("rotate");
    assert_ne!(old_kid, new_kid);
    // A replica started now signs with the new key and still publishes the old one.
    let other =
        h.rt.block_on(caduceus_authserver::AuthServer::open(
            std::sync::Arc::clone(&h.store),
            caduceus_authserver::AuthServerConfig::new(&h.issuer, &h.fhir),
        ))
        .expect("open");
    let kids: Vec<String> = other.jwks()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(kids, [new_kid, old_kid]);
    // A token signed before the rotation still verifies against the new JWKS.
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(other.jwks()).expect("jwks");
    let kid = jsonwebtoken::decode_header(&before)
        .expect("header")
        .kid
        .expect("kid");
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).expect("old key kept")).expect("key");
    let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
    v.set_audience(&[&h.fhir]);
    jsonwebtoken::decode::<serde_json::Value>(&before, &key, &v).expect("still valid");

    // A signing key from a PEM file replaces the stored one.
    let mut config = caduceus_authserver::AuthServerConfig::new(&h.issuer, &h.fhir);
    config.signing_key_pem = Some(fixture("signing-p256.pem"));
    let filed =
        h.rt.block_on(caduceus_authserver::AuthServer::open(
            std::sync::Arc::clone(&h.store),
            config,
        ))
        .expect("open with key file");
    assert_eq!(filed.jwks()["keys"].as_array().map(Vec::len), Some(1));
}
