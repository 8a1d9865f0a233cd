//! Against a real OpenID Connect provider (tests/oidc, panva's oidc-provider on Node):
//! a client_credentials access token is validated through discovery, and the provider's key
//! rotation is followed without restart. Skips when Node or the npm packages are missing,
//! unless CADUCEUS_TEST_REQUIRE_OIDC=1.

mod support {
    pub mod oidc;
}

use std::time::{Duration, Instant};

use caduceus_access::{PrincipalKind, ScopeContext};
use caduceus_auth::{AuthError, Authenticator, CacheSettings, IssuerConfig};
use support::oidc::{CLIENT_ID, OidcProvider, ROLES};

const AUD: &str = "http://127.0.0.1:8080/fhir";
const SCOPE: &str = "system/Patient.rs system/Observation.rs";

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("JWT header")
        .kid
        .expect("kid")
}

#[test]
fn oidc_provider_tokens_and_key_rotation() {
    let Some(mut provider) = OidcProvider::start("oidc_provider_tokens_and_key_rotation", AUD)
    else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = IssuerConfig::discover(&provider.issuer, AUD);
    // The provider sends no Cache-Control: a 1 s lifetime makes "eventually" short.
    config.cache = CacheSettings {
        default_ttl: Duration::from_secs(1),
        min_ttl: Duration::ZERO,
        unknown_kid_interval: Duration::from_millis(200),
        ..CacheSettings::default()
    };
    let auth = Authenticator::new(vec![config]).expect("config");
    let check = |token: &str| runtime.block_on(auth.authenticate(Some(&format!("Bearer {token}"))));

    let first = provider.token(SCOPE);
    assert_eq!(kid_of(&first), provider.kid);
    let principal = check(&first).expect("the provider's token");
    assert_eq!(principal.kind, PrincipalKind::Client);
    assert_eq!(principal.subject, CLIENT_ID);
    assert_eq!(principal.client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(principal.issuer, provider.issuer);
    assert_eq!(principal.roles, [ROLES]);
    assert_eq!(principal.scopes.len(), 2);
    assert!(
        principal
            .scopes
            .iter()
            .all(|s| s.context == ScopeContext::System)
    );
    assert!(principal.token_id.is_some());

    // A new signing key: its first token names a kid we have not seen.
    let old_kid = provider.kid.clone();
    let new_kid = provider.rotate();
    assert_ne!(new_kid, old_kid);
    std::thread::sleep(Duration::from_millis(250));
    let second = provider.token(SCOPE);
    assert_eq!(kid_of(&second), new_kid);
    check(&second).expect("a token signed with the new key (unknown-kid refresh)");
    check(&first).expect("the old key is still published");

    // The old key is unpublished: after the next refresh, its tokens fail.
    assert_eq!(provider.retire(), [new_kid]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match check(&first) {
            Ok(_) => assert!(Instant::now() < deadline, "the retired key still validates"),
            Err(e) => {
                assert_eq!(e, AuthError::UnknownKey);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check(&second).expect("the current key");
    check(&provider.token(SCOPE)).expect("a fresh token");
}
