//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523, as SMART
//! Backend Services profiles it) and `none` (public clients).

use axum::http::{HeaderMap, header};
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::Inner;
use crate::accounts::{ClientAuth, ClientRecord};
use crate::error::OAuthError;
use crate::http::Form;
use crate::util::{b64url_decode, now, sha256_hex};

/// Meta keys of used assertion ids: `auth.jti.<client>.<sha256 of jti>` → expiry.
pub(crate) const JTI_PREFIX: &str = "auth.jti.";
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Assertion signature algorithms accepted.
pub(crate) const ASSERTION_ALGS: [&str; 4] = ["RS384", "ES384", "RS256", "ES256"];
/// How far ahead an assertion's `exp` may be (SMART: no more than five minutes).
const MAX_ASSERTION_LIFETIME: i64 = 300;
/// Clock skew tolerated on assertions.
const LEEWAY: u64 = 30;

/// An authenticated (or, for public clients, identified) client.
pub(crate) struct Caller {
    pub id: String,
    pub record: ClientRecord,
    /// It proved who it is (secret or key); public clients did not.
    pub confidential: bool,
}

impl Inner {
    /// Authenticates the caller of a token-endpoint-like request.
    pub(crate) async fn authenticate_client(
        &self,
        headers: &HeaderMap,
        form: &Form,
    ) -> Result<Caller, OAuthError> {
        let basic = basic_credentials(headers)?;
        let assertion = form.get("client_assertion");
        let post_secret = form.get("client_secret");
        let methods = usize::from(basic.is_some())
            + usize::from(assertion.is_some())
            + usize::from(post_secret.is_some());
        if methods > 1 {
            return Err(OAuthError::invalid_request(
                "use exactly one client authentication method",
            ));
        }
        if let Some((id, secret)) = basic {
            return self.by_secret(&id, &secret, form).await;
        }
        if let Some(secret) = post_secret {
            let id = form.required("client_id")?.to_owned();
            return self.by_secret(&id, secret, form).await;
        }
        if let Some(assertion) = assertion {
            if form.get("client_assertion_type") != Some(ASSERTION_TYPE) {
                return Err(OAuthError::invalid_request(format!(
                    "client_assertion_type must be {ASSERTION_TYPE}"
                )));
            }
            return self.by_assertion(assertion, form).await;
        }
        let Some(id) = form.get("client_id") else {
            return Err(OAuthError::invalid_client(
                "client authentication is required",
            ));
        };
        match self.accounts.client(id).await? {
            Some(record) if matches!(record.auth, ClientAuth::Public) => Ok(Caller {
                id: id.to_owned(),
                record,
                confidential: false,
            }),
            _ => Err(OAuthError::invalid_client("client authentication failed")),
        }
    }

    async fn by_secret(&self, id: &str, secret: &str, form: &Form) -> Result<Caller, OAuthError> {
        if form.get("client_id").is_some_and(|f| f != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the credentials",
            ));
        }
        let record = self.accounts.client(id).await?;
        let given = sha256_hex(secret);
        let ok = match &record {
            Some(ClientRecord {
                auth: ClientAuth::Secret { secret_sha256 },
                ..
            }) => bool::from(given.as_bytes().ct_eq(secret_sha256.as_bytes())),
            _ => false,
        };
        match record {
            Some(record) if ok => Ok(Caller {
                id: id.to_owned(),
                record,
                confidential: true,
            }),
            _ => Err(OAuthError::invalid_client("client authentication failed")),
        }
    }

    async fn by_assertion(&self, assertion: &str, form: &Form) -> Result<Caller, OAuthError> {
        let fail =
            |why: &str| OAuthError::invalid_client(format!("client assertion refused: {why}"));
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| fail("not a JWT"))?;
        let alg = format!("{:?}", header.alg);
        if !ASSERTION_ALGS.contains(&alg.as_str()) {
            return Err(fail("unsupported signature algorithm"));
        }
        let unverified = unverified_claims(assertion).ok_or_else(|| fail("not a JWT"))?;
        let id = unverified.iss.ok_or_else(|| fail("no iss"))?;
        if form.get("client_id").is_some_and(|f| f != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the assertion",
            ));
        }
        let record = match self.accounts.client(&id).await? {
            Some(r) => r,
            None => return Err(fail("unknown client or wrong key")),
        };
        let ClientAuth::Jwt { jwks } = &record.auth else {
            return Err(fail("unknown client or wrong key"));
        };
        let token_endpoint = format!("{}/token", self.config.issuer);
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&id]);
        v.sub = Some(id.clone());
        v.set_audience(&[&token_endpoint]);
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        v.leeway = LEEWAY;
        let mut verified = None;
        for jwk in jwks
            .keys
            .iter()
            .filter(|k| header.kid.is_none() || k.common.key_id.as_deref() == header.kid.as_deref())
        {
            if !fits(jwk, header.alg) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            match jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &v) {
                Ok(data) => {
                    verified = Some(data.claims);
                    break;
                }
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind;
                    match e.kind() {
                        ErrorKind::InvalidSignature => continue,
                        ErrorKind::ExpiredSignature => return Err(fail("expired")),
                        ErrorKind::InvalidAudience => {
                            return Err(fail("aud must be the token endpoint URL"));
                        }
                        ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
                            return Err(fail("iss and sub must both be the client id"));
                        }
                        ErrorKind::MissingRequiredClaim(_) => {
                            return Err(fail("exp, iss, sub and aud are required"));
                        }
                        _ => continue,
                    }
                }
            }
        }
        let claims = verified.ok_or_else(|| fail("unknown client or wrong key"))?;
        let Some(exp) = claims.exp else {
            return Err(fail("exp is required"));
        };
        if exp > now() + MAX_ASSERTION_LIFETIME + i64::try_from(LEEWAY).unwrap_or(0) {
            return Err(fail("exp is more than five minutes ahead"));
        }
        let jti = claims.jti.filter(|j| !j.is_empty() && j.len() <= 256);
        let Some(jti) = jti else {
            return Err(fail("a jti of at most 256 characters is required"));
        };
        let key = format!("{JTI_PREFIX}{id}.{}", sha256_hex(&jti));
        // Kept until the assertion could no longer be accepted anyway.
        let keep_until = exp + i64::try_from(LEEWAY).unwrap_or(0);
        if !self
            .store
            .insert_meta(&key, &keep_until.to_string())
            .await?
        {
            return Err(fail("jti already used"));
        }
        Ok(Caller {
            id,
            record,
            confidential: true,
        })
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    exp: Option<i64>,
    jti: Option<String>,
}

#[derive(Deserialize)]
struct Unverified {
    iss: Option<String>,
}

/// The payload of a JWT before its signature is checked: only to find whose keys check it.
fn unverified_claims(jwt: &str) -> Option<Unverified> {
    let payload = jwt.split('.').nth(1)?;
    serde_json::from_slice(&b64url_decode(payload)?).ok()
}

/// Whether a registered key can check a signature of `alg`.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if let Some(key_alg) = jwk.common.key_algorithm
        && format!("{key_alg:?}") != format!("{alg:?}")
    {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::RS384) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        _ => false,
    }
}

/// `Authorization: Basic` credentials, form-urlencoded inside (RFC 6749 2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client("malformed Basic credentials");
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}
