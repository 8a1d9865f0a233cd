//! Authentication of OAuth2 bearer access tokens (JWT) issued by OpenID Connect providers
//! (Keycloak, Entra ID, Okta, Caduceus' own authorization server): an `Authorization:
//! Bearer ...` header becomes a [`caduceus_access::Principal`] or a typed [`AuthError`].
//!
//! The design decisions, and why:
//! - **Keys only from the issuer's configured source.** The token's `iss` picks one of the
//!   configured issuers (exact match), whose keys come from its discovery document, a
//!   JWKS URL, or in process ([`KeySource`]). Header parameters that point elsewhere
//!   (`jku`, `jwk`, `x5u`, `x5c`) are ignored; `crit` is refused.
//! - **Asymmetric algorithms only.** `none` and HMAC are refused before any key is looked
//!   at (an HS256 token "signed" with a public key's bytes never reaches a verifier), and
//!   the algorithm must fit the selected key's type and its `alg`, if the JWK names one.
//! - **Keys parsed once, refreshed in the background.** Each issuer's JWKS is parsed into
//!   `DecodingKey`s and shared behind an `Arc`: the hot path decodes the token, clones an
//!   `Arc` and verifies. Old sets are refreshed without making requests wait; a token
//!   naming an unknown `kid` triggers a refresh at most once per interval (30 s), so key
//!   rotation works without restart and made-up `kid`s cannot hammer the provider; a
//!   failed refresh keeps the last good keys. No keys at all is
//!   [`AuthError::KeysUnavailable`] (503, not 401).
//! - **Messages are safe to log.** No error carries the token or a claim's value.
//!
//! This crate knows nothing of the HTTP server: it takes a header value and gives a
//! principal; mapping errors to responses ([`AuthError::www_authenticate`],
//! [`AuthError::status`]) is the caller's.
#![deny(missing_docs)]

mod authenticator;
mod claims;
mod config;
mod error;
mod http;
mod jwks;
mod token;

pub use authenticator::Authenticator;
pub use config::{
    AuthFile, CacheFile, CacheSettings, ClaimMapping, DEFAULT_ALGORITHMS, DEFAULT_LEEWAY,
    IssuerConfig, IssuerFile, KeySource, LocalKeys, RevocationCheck, RevocationError,
};
pub use error::{AuthError, ConfigError, KeyFetchError};
/// The signing algorithms, as `jsonwebtoken` names them.
pub use jsonwebtoken::Algorithm;
/// A JWKS document, as [`LocalKeys`] returns it.
pub use jsonwebtoken::jwk::JwkSet;
