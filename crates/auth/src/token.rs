//! The compact JWS form, read before anything is trusted: three base64url parts, a JSON
//! header with an asymmetric `alg`, a JSON object payload.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::AuthError;

/// The longest token read (Entra ID's large tokens are a few KiB).
const MAX_TOKEN: usize = 16 * 1024;

/// The token from an `Authorization` header value: `Bearer <token68>` (scheme
/// case-insensitive, RFC 9110).
pub(crate) fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::UnsupportedScheme);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(AuthError::Malformed("no token after Bearer"));
    }
    Ok(token)
}

/// A token split into its parts, header and payload decoded.
pub(crate) struct Jws<'a> {
    /// `header.payload`, the signed bytes.
    pub signing_input: &'a str,
    /// The base64url signature.
    pub signature: &'a str,
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// RFC 7515 4.1.11: extensions that must be understood. We understand none.
    #[serde(default)]
    crit: Option<Value>,
}

/// Parses a compact JWS. `none`, HMAC and unknown algorithms are refused here, before
/// any key is looked at; `jku`, `jwk`, `x5u` and `x5c` header parameters are ignored
/// (keys come only from the issuer's configured source).
pub(crate) fn parse(token: &str) -> Result<Jws<'_>, AuthError> {
    if token.len() > MAX_TOKEN {
        return Err(AuthError::Malformed("token too long"));
    }
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or(AuthError::Malformed("not a JWT"))?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(AuthError::Malformed("not a JWT"))?;
    if payload.contains('.') {
        // Five parts: a JWE (encrypted token), which we do not decrypt.
        return Err(AuthError::Malformed("not a signed JWT"));
    }
    let header: Header = serde_json::from_slice(&decode(header)?)
        .map_err(|_| AuthError::Malformed("header is not a JWS header"))?;
    if header.crit.is_some() {
        return Err(AuthError::Malformed(
            "unsupported critical header parameters",
        ));
    }
    let alg = asymmetric_algorithm(&header.alg).ok_or(AuthError::AlgorithmNotAllowed)?;
    if signature.is_empty() {
        return Err(AuthError::BadSignature);
    }
    let claims: Map<String, Value> = serde_json::from_slice(&decode(payload)?)
        .map_err(|_| AuthError::Malformed("payload is not a JSON object"))?;
    Ok(Jws {
        signing_input,
        signature,
        alg,
        kid: header.kid,
        claims,
    })
}

fn decode(part: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed("not base64url"))
}

/// The algorithm named `name` if it is one we verify: asymmetric only. `none`, `HS*`
/// and anything unknown are `None`.
pub(crate) fn asymmetric_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Whether `alg` is HMAC (which no issuer may allow).
pub(crate) fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(None), Err(AuthError::Missing));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::UnsupportedScheme));
        assert_eq!(bearer(Some("Bearerabc")), Err(AuthError::UnsupportedScheme));
        assert!(matches!(
            bearer(Some("Bearer ")),
            Err(AuthError::Malformed(_))
        ));
        assert_eq!(bearer(Some("bearer a.b.c")), Ok("a.b.c"));
        assert_eq!(bearer(Some("Bearer  a.b.c ")), Ok("a.b.c"));
    }

    #[test]
    fn refused_before_any_key() {
        let payload = b64(r#"{"iss":"x"}"#);
        for alg in ["none", "HS256", "HS384", "HS512", "RS1", "ES512", ""] {
            let token = format!("{}.{payload}.sig", b64(&format!(r#"{{"alg":"{alg}"}}"#)));
            assert_eq!(
                parse(&token).err(),
                Some(AuthError::AlgorithmNotAllowed),
                "{alg}"
            );
        }
        let crit = format!("{}.{payload}.sig", b64(r#"{"alg":"RS256","crit":["b64"]}"#));
        assert!(matches!(parse(&crit), Err(AuthError::Malformed(_))));
        let jwe = format!("{}.a.b.c.d", b64(r#"{"alg":"RSA-OAEP"}"#));
        assert!(matches!(parse(&jwe), Err(AuthError::Malformed(_))));
        assert!(matches!(parse("abc"), Err(AuthError::Malformed(_))));
        assert!(matches!(parse("a+b.c.d"), Err(AuthError::Malformed(_))));
        let array = format!("{}.{}.sig", b64(r#"{"alg":"RS256"}"#), b64("[1]"));
        assert!(matches!(parse(&array), Err(AuthError::Malformed(_))));
    }
}
