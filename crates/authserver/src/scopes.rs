//! Which scopes a request gets: the requested ones narrowed by what the client may have.
//!
//! A resource scope is granted as the intersection with each registered scope of the same
//! context that overlaps it: a registered `user/*.cruds` grants a requested
//! `user/Observation.rs` as is; a requested `system/*.rs` against a registered
//! `system/Patient.cruds` becomes `system/Patient.rs`. Search-parameter restrictions of
//! both are kept (their conjunction is the narrower scope). Other scopes (`launch/patient`,
//! `offline_access`, `openid`, ...) are granted only when registered verbatim.

use caduceus_access::{Scope, ScopeContext};

/// Scopes that decide refresh tokens.
pub(crate) const OFFLINE: &str = "offline_access";
pub(crate) const ONLINE: &str = "online_access";
pub(crate) const LAUNCH_PATIENT: &str = "launch/patient";

/// The granted scopes, in request order, without repeats. A malformed requested scope is
/// an error (`invalid_scope`); scopes that grant nothing are dropped.
pub(crate) fn grant(
    requested: &str,
    allowed: &[String],
    contexts: &[ScopeContext],
) -> Result<Vec<String>, String> {
    let registered: Vec<Scope> = allowed
        .iter()
        .filter_map(|s| Scope::parse(s).ok().flatten())
        .collect();
    let mut out: Vec<String> = Vec::new();
    let push = |s: String, out: &mut Vec<String>| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for text in requested.split_ascii_whitespace() {
        match Scope::parse(text) {
            Err(e) => return Err(format!("scope {text:?} is not valid: {e}")),
            Ok(None) => {
                if allowed.iter().any(|a| a == text) {
                    push(text.to_owned(), &mut out);
                }
            }
            Ok(Some(scope)) => {
                if !contexts.contains(&scope.context) {
                    continue;
                }
                for r in &registered {
                    if let Some(g) = intersect(&scope, r) {
                        push(g.to_v2_string(), &mut out);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// What both scopes allow, if anything.
pub(crate) fn intersect(requested: &Scope, registered: &Scope) -> Option<Scope> {
    if requested.context != registered.context {
        return None;
    }
    let resource_type = match (&requested.resource_type, &registered.resource_type) {
        (None, None) => None,
        (Some(t), None) | (None, Some(t)) => Some(t.clone()),
        (Some(a), Some(b)) if a == b => Some(a.clone()),
        _ => return None,
    };
    let interactions = requested.interactions.intersect(registered.interactions);
    if interactions.is_empty() {
        return None;
    }
    let mut restrictions = registered.restrictions.clone();
    for r in &requested.restrictions {
        if !restrictions.contains(r) {
            restrictions.push(r.clone());
        }
    }
    Some(Scope {
        context: requested.context,
        resource_type,
        interactions,
        restrictions,
    })
}

/// Whether `granted` grants at least one FHIR resource scope.
pub(crate) fn has_resource_scope(granted: &[String]) -> bool {
    granted
        .iter()
        .any(|s| matches!(Scope::parse(s), Ok(Some(_))))
}

/// Whether every scope of `narrower` is within `wider` (a refresh asking for less).
pub(crate) fn within(narrower: &str, wider: &[String]) -> Result<Vec<String>, String> {
    grant(
        narrower,
        wider,
        &[
            ScopeContext::Patient,
            ScopeContext::User,
            ScopeContext::System,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn wildcards_cover_specific_types_and_narrow_interactions() {
        let a = allowed(&["user/*.cruds", "launch/patient"]);
        let g = grant(
            "user/Observation.rs launch/patient openid",
            &a,
            &[ScopeContext::User],
        )
        .unwrap();
        assert_eq!(g, ["user/Observation.rs", "launch/patient"]);
        let a = allowed(&["system/Patient.rs", "system/Observation.cruds"]);
        let g = grant("system/*.read", &a, &[ScopeContext::System]).unwrap();
        assert_eq!(g, ["system/Patient.rs", "system/Observation.rs"]);
        let g = grant("system/Patient.cud", &a, &[ScopeContext::System]).unwrap();
        assert!(g.is_empty());
    }

    #[test]
    fn restrictions_are_carried_and_combined() {
        let a = allowed(&["patient/Observation.rs?category=laboratory"]);
        let g = grant("patient/Observation.r", &a, &[ScopeContext::Patient]).unwrap();
        assert_eq!(g, ["patient/Observation.r?category=laboratory"]);
        let a = allowed(&["patient/*.rs"]);
        let g = grant(
            "patient/Observation.rs?code=1",
            &a,
            &[ScopeContext::Patient],
        )
        .unwrap();
        assert_eq!(g, ["patient/Observation.rs?code=1"]);
    }

    #[test]
    fn contexts_and_malformed_scopes() {
        let a = allowed(&["user/*.rs", "system/*.rs"]);
        assert!(
            grant("system/*.rs", &a, &[ScopeContext::User])
                .unwrap()
                .is_empty()
        );
        assert!(grant("user/Nope.rs", &a, &[ScopeContext::User]).is_err());
    }
}
