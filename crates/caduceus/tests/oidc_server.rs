//! The server against a real OpenID Connect provider (tests/oidc: panva's oidc-provider on
//! Node): it finds the provider's keys by discovery, accepts its client_credentials access
//! tokens within their scopes and roles, and follows a key rotation without a restart.
//! Skips when Node or the npm packages are missing, unless CADUCEUS_TEST_REQUIRE_OIDC=1.

mod common;
#[path = "../../auth/tests/support/oidc.rs"]
mod oidc;

use std::time::{Duration, Instant};

use common::{SECURE, Server};
use oidc::OidcProvider;
use serde_json::json;

const AUDIENCE: &str = "https://caduceus.test/fhir";

#[test]
fn provider_tokens_reach_the_api_and_rotation_needs_no_restart() {
    let Some(mut provider) = OidcProvider::start("oidc_server", AUDIENCE) else {
        return;
    };
    let server = Server::start_with(&[
        SECURE,
        "--plain-http",
        "--oidc-issuer",
        &provider.issuer,
        "--oidc-audience",
        AUDIENCE,
    ]);
    let token = provider.token("system/Patient.rs system/Observation.rs");
    let auth = format!("Bearer {token}");
    let search = server.request("GET", "Patient", &[("authorization", &auth)], None);
    assert_eq!(search.status, 200, "{}", search.text());
    // The token's scopes allow no create; its role (clinician) would.
    let body = serde_json::to_vec(&json!({"resourceType": "Patient"})).expect("json");
    let create = server.request(
        "POST",
        "Patient",
        &[
            ("authorization", &auth),
            ("content-type", "application/fhir+json"),
        ],
        Some(&body),
    );
    assert_eq!(create.status, 403, "{}", create.text());
    assert_eq!(
        server
            .request("GET", "Encounter", &[("authorization", &auth)], None)
            .status,
        403
    );

    // A new signing key: its tokens are accepted without a restart. The unknown kid makes
    // the server fetch the key set again, at most once per 30 s per issuer (so a flood of
    // made-up kids cannot hammer the provider): within that interval after the first
    // fetch, the new token waits for the next allowed one.
    provider.rotate();
    let rotated = format!("Bearer {}", provider.token("system/Patient.rs"));
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let reply = server.request("GET", "Patient", &[("authorization", &rotated)], None);
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 401, "{}", reply.text());
        assert!(
            Instant::now() < deadline,
            "the rotated key was never fetched: {}",
            reply.text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        server
            .request("GET", "Patient", &[("authorization", &auth)], None)
            .status,
        200
    );
}
