//! Access tokens: what they claim, signing, and reading back our own (introspection,
//! revocation).

use std::time::Duration;

use caduceus_access::Clearance;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::util::{now, random_token};
use crate::{AuthServerError, Inner};

/// Meta keys of revoked access tokens: `auth.revoked.<sha256 of jti>` → expiry.
pub(crate) const REVOKED_PREFIX: &str = "auth.revoked.";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub departments: Vec<String>,
    #[serde(default)]
    pub clearance: Clearance,
}

/// Who a token is for and what it grants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Subject {
    pub sub: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub patient: Option<String>,
    pub fhir_user: Option<String>,
    pub roles: Vec<String>,
    pub departments: Vec<String>,
    pub clearance: Clearance,
}

impl Inner {
    /// A signed access token for `who`, valid for `ttl`; with its expiry.
    pub(crate) async fn issue(
        &self,
        who: &Subject,
        ttl: Duration,
    ) -> Result<(String, i64), AuthServerError> {
        let keys = self.keyset().await;
        let iat = now();
        let exp = iat + i64::try_from(ttl.as_secs()).unwrap_or(3600);
        let claims = AccessClaims {
            iss: self.config.issuer.clone(),
            sub: who.sub.clone(),
            aud: self.config.fhir_audience.clone(),
            exp,
            nbf: iat,
            iat,
            jti: random_token(16)?,
            client_id: who.client_id.clone(),
            scope: who.scopes.join(" "),
            patient: who.patient.clone(),
            fhir_user: who.fhir_user.clone(),
            roles: who.roles.clone(),
            departments: who.departments.clone(),
            clearance: who.clearance,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &keys.encoding)
            .map_err(|e| AuthServerError::Key(format!("signing failed: {e}")))?;
        Ok((token, exp))
    }

    /// The claims of a token this server signed (any published key), checking issuer and
    /// audience, and expiry when `check_exp`; `None` for anything else.
    pub(crate) async fn read_token(&self, token: &str, check_exp: bool) -> Option<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::ES256 {
            return None;
        }
        let keys = self.keyset().await;
        let key = keys.decoding.get(header.kid.as_deref()?)?;
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.fhir_audience]);
        v.leeway = 0;
        v.validate_exp = check_exp;
        v.validate_nbf = check_exp;
        if !check_exp {
            v.required_spec_claims.remove("exp");
        }
        jsonwebtoken::decode::<AccessClaims>(token, key, &v)
            .ok()
            .map(|d| d.claims)
    }
}
