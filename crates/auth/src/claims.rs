//! From verified claims to a [`Principal`]: the registered claims (`exp`, `nbf`, `aud`)
//! checked, then the configured [`ClaimMapping`] applied.

use caduceus_access::{Clearance, Principal, PrincipalKind, Scope, ScopeContext};
use serde_json::{Map, Value};

use crate::AuthError;
use crate::config::ClaimMapping;

/// A claim path as configured: tried as one top-level name first, then as a
/// dot-separated path.
struct ClaimPath {
    name: String,
    segments: Vec<String>,
}

impl ClaimPath {
    fn new(path: &str) -> Option<ClaimPath> {
        if path.split('.').any(str::is_empty) {
            return None;
        }
        Some(ClaimPath {
            name: path.to_owned(),
            segments: path.split('.').map(str::to_owned).collect(),
        })
    }

    fn get<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        if let Some(v) = claims.get(&self.name) {
            return Some(v);
        }
        if self.segments.len() < 2 {
            return None;
        }
        let (first, rest) = self.segments.split_first()?;
        let mut value = claims.get(first)?;
        for segment in rest {
            value = value.as_object()?.get(segment)?;
        }
        Some(value)
    }
}

/// A [`ClaimMapping`] with its paths parsed.
pub(crate) struct Mapping {
    scopes: Vec<ClaimPath>,
    roles: Vec<ClaimPath>,
    client_id: Vec<ClaimPath>,
    subject: ClaimPath,
    patient: ClaimPath,
    fhir_user: ClaimPath,
    departments: Vec<ClaimPath>,
    clearance: ClaimPath,
}

impl Mapping {
    /// `None` if a path is empty.
    pub(crate) fn new(m: &ClaimMapping) -> Option<Mapping> {
        let list = |paths: &[String]| -> Option<Vec<ClaimPath>> {
            paths.iter().map(|p| ClaimPath::new(p)).collect()
        };
        Some(Mapping {
            scopes: list(&m.scopes)?,
            roles: list(&m.roles)?,
            client_id: list(&m.client_id)?,
            subject: ClaimPath::new(&m.subject)?,
            patient: ClaimPath::new(&m.patient)?,
            fhir_user: ClaimPath::new(&m.fhir_user)?,
            departments: list(&m.departments)?,
            clearance: ClaimPath::new(&m.clearance)?,
        })
    }

    /// The principal the claims describe. Malformed resource scopes, claims of the wrong
    /// JSON type and unknown clearances make the token invalid.
    pub(crate) fn principal(
        &self,
        issuer: &str,
        claims: &Map<String, Value>,
    ) -> Result<Principal, AuthError> {
        let scopes = match self.scopes.iter().find_map(|p| p.get(claims)) {
            None => Vec::new(),
            Some(value) => scopes(value)?,
        };
        let kind = if scopes
            .iter()
            .any(|s| matches!(s.context, ScopeContext::Patient | ScopeContext::User))
        {
            PrincipalKind::User
        } else {
            PrincipalKind::Client
        };
        let client_id = match self.client_id.iter().find_map(|p| p.get(claims)) {
            None => None,
            Some(v) => Some(string(v, "client id")?),
        };
        let subject = match optional_string(&self.subject, claims, "sub")? {
            Some(sub) => sub,
            None => client_id
                .clone()
                .ok_or(AuthError::InvalidClaims("no subject and no client id"))?,
        };
        let clearance = match optional_string(&self.clearance, claims, "clearance")? {
            None => Clearance::Normal,
            Some(code) => {
                Clearance::from_code(&code).ok_or(AuthError::InvalidClaims("clearance"))?
            }
        };
        let token_id = match claims.get("jti") {
            None => None,
            Some(v) => Some(string(v, "jti")?),
        };
        Ok(Principal {
            kind,
            subject,
            client_id,
            issuer: issuer.to_owned(),
            scopes,
            roles: names(&self.roles, claims, "roles")?,
            patient: optional_string(&self.patient, claims, "patient")?,
            fhir_user: optional_string(&self.fhir_user, claims, "fhirUser")?,
            departments: names(&self.departments, claims, "departments")?,
            clearance,
            token_id,
        })
    }
}

/// Scopes from a space-separated string or an array of strings.
fn scopes(value: &Value) -> Result<Vec<Scope>, AuthError> {
    const MALFORMED: AuthError = AuthError::InvalidClaims("malformed SMART scope");
    match value {
        Value::String(s) => Scope::parse_list(s).map_err(|_| MALFORMED),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let s = item
                    .as_str()
                    .ok_or(AuthError::InvalidClaims("scope list"))?;
                out.extend(Scope::parse_list(s).map_err(|_| MALFORMED)?);
            }
            Ok(out)
        }
        _ => Err(AuthError::InvalidClaims("scope")),
    }
}

fn string(value: &Value, what: &'static str) -> Result<String, AuthError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or(AuthError::InvalidClaims(what))
}

/// A string claim; absent or empty is `None`.
fn optional_string(
    path: &ClaimPath,
    claims: &Map<String, Value>,
    what: &'static str,
) -> Result<Option<String>, AuthError> {
    match path.get(claims) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Ok(Some(string(v, what)?).filter(|s| !s.is_empty())),
    }
}

/// Names (roles, departments) from every path: arrays of strings or single strings,
/// merged without duplicates in the order found.
fn names(
    paths: &[ClaimPath],
    claims: &Map<String, Value>,
    what: &'static str,
) -> Result<Vec<String>, AuthError> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !name.is_empty() && !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    };
    for path in paths {
        match path.get(claims) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => add(s),
            Some(Value::Array(items)) => {
                for item in items {
                    add(item.as_str().ok_or(AuthError::InvalidClaims(what))?);
                }
            }
            Some(_) => return Err(AuthError::InvalidClaims(what)),
        }
    }
    Ok(out)
}

/// Checks `exp` (required), `nbf` (if present) and `aud` (required, one of `audiences`)
/// at `now` (seconds since the epoch) with `leeway` seconds.
pub(crate) fn check_registered(
    claims: &Map<String, Value>,
    audiences: &[String],
    now: i64,
    leeway: i64,
) -> Result<(), AuthError> {
    let exp = match claims.get("exp") {
        None => return Err(AuthError::InvalidClaims("no exp")),
        Some(v) => numeric_date(v).ok_or(AuthError::InvalidClaims("exp"))?,
    };
    if now >= exp.saturating_add(leeway) {
        return Err(AuthError::Expired);
    }
    if let Some(v) = claims.get("nbf") {
        let nbf = numeric_date(v).ok_or(AuthError::InvalidClaims("nbf"))?;
        if now.saturating_add(leeway) < nbf {
            return Err(AuthError::NotYetValid);
        }
    }
    let wanted = |aud: &Value| {
        aud.as_str()
            .is_some_and(|a| audiences.iter().any(|w| w == a))
    };
    let ok = match claims.get("aud") {
        Some(aud @ Value::String(_)) => wanted(aud),
        Some(Value::Array(items)) => items.iter().any(wanted),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(AuthError::WrongAudience)
    }
}

/// A NumericDate (RFC 7519): seconds since the epoch, possibly fractional.
fn numeric_date(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // Saturating: an absurdly large exp is "far future", not an error.
    f.is_finite().then(|| f.floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn default_mapping() {
        let m = Mapping::new(&ClaimMapping::default()).unwrap();
        let claims = map(json!({
            "sub": "u1", "client_id": "app", "scope": "openid patient/Observation.rs fhirUser",
            "roles": ["patient", "patient"], "patient": "123", "fhirUser": "Patient/123",
            "departments": "cardiology", "clearance": "R", "jti": "t1"
        }));
        let p = m.principal("https://iss", &claims).unwrap();
        assert_eq!(p.kind, PrincipalKind::User);
        assert_eq!(p.subject, "u1");
        assert_eq!(p.client_id.as_deref(), Some("app"));
        assert_eq!(p.scopes.len(), 1);
        assert_eq!(p.roles, ["patient"]);
        assert_eq!(p.patient.as_deref(), Some("123"));
        assert_eq!(p.fhir_user.as_deref(), Some("Patient/123"));
        assert_eq!(p.departments, ["cardiology"]);
        assert_eq!(p.clearance, Clearance::Restricted);
        assert_eq!(p.token_id.as_deref(), Some("t1"));
        assert_eq!(p.issuer, "https://iss");
    }

    #[test]
    fn provider_mappings() {
        let keycloak = Mapping::new(&ClaimMapping::keycloak()).unwrap();
        let claims = map(json!({
            "sub": "u", "azp": "app", "scope": "system/*.rs",
            "realm_access": {"roles": ["clinician", "offline_access"]}
        }));
        let p = keycloak.principal("i", &claims).unwrap();
        assert_eq!(p.kind, PrincipalKind::Client);
        assert_eq!(p.roles, ["clinician", "offline_access"]);
        assert_eq!(p.client_id.as_deref(), Some("app"));

        let okta = Mapping::new(&ClaimMapping::okta()).unwrap();
        let claims = map(json!({"cid": "app", "scp": ["user/Patient.r", "openid"]}));
        let p = okta.principal("i", &claims).unwrap();
        assert_eq!(p.kind, PrincipalKind::User);
        assert_eq!(p.subject, "app");

        // A top-level claim whose name contains dots wins over the path.
        let m = Mapping::new(&ClaimMapping {
            roles: vec!["http://schemas.example.org/claims/role".into()],
            ..ClaimMapping::default()
        })
        .unwrap();
        let claims = map(json!({"sub": "u", "http://schemas.example.org/claims/role": "nurse"}));
        assert_eq!(m.principal("i", &claims).unwrap().roles, ["nurse"]);
    }

    #[test]
    fn invalid_claims() {
        let m = Mapping::new(&ClaimMapping::default()).unwrap();
        for claims in [
            json!({"sub": "u", "scope": "patient/Nope.rs"}),
            json!({"sub": "u", "scope": "patient/Observation.xyz"}),
            json!({"sub": "u", "scope": 3}),
            json!({"sub": "u", "roles": [1]}),
            json!({"sub": "u", "clearance": "TOP"}),
            json!({"sub": 5}),
            json!({"scope": "system/*.rs"}),
        ] {
            assert!(
                matches!(
                    m.principal("i", &map(claims.clone())),
                    Err(AuthError::InvalidClaims(_))
                ),
                "{claims}"
            );
        }
        let bad = ClaimMapping {
            roles: vec!["a..b".into()],
            ..ClaimMapping::default()
        };
        assert!(Mapping::new(&bad).is_none());
    }

    #[test]
    fn registered_claims() {
        let aud = ["https://fhir".to_owned()];
        let ok = |v: Value| check_registered(&map(v), &aud, 1000, 60);
        assert_eq!(ok(json!({"exp": 1001, "aud": "https://fhir"})), Ok(()));
        assert_eq!(
            ok(json!({"exp": 999.5, "aud": ["x", "https://fhir"]})),
            Ok(())
        );
        assert_eq!(
            ok(json!({"exp": 940, "aud": "https://fhir"})),
            Err(AuthError::Expired)
        );
        assert_eq!(
            ok(json!({"exp": 2000, "nbf": 1061, "aud": "https://fhir"})),
            Err(AuthError::NotYetValid)
        );
        assert_eq!(
            ok(json!({"exp": 2000, "nbf": 1060, "aud": "https://fhir"})),
            Ok(())
        );
        assert_eq!(
            ok(json!({"exp": 2000, "aud": "https://other"})),
            Err(AuthError::WrongAudience)
        );
        assert_eq!(ok(json!({"exp": 2000})), Err(AuthError::WrongAudience));
        assert!(matches!(
            ok(json!({"aud": "https://fhir"})),
            Err(AuthError::InvalidClaims(_))
        ));
        assert!(matches!(
            ok(json!({"exp": "2000", "aud": "https://fhir"})),
            Err(AuthError::InvalidClaims(_))
        ));
        assert!(matches!(
            ok(json!({"exp": 2000, "nbf": "x", "aud": "https://fhir"})),
            Err(AuthError::InvalidClaims(_))
        ));
    }
}
