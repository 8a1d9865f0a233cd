//! The decision for one caller: may they do this interaction on this type, and under which
//! conditions is a resource of it visible to them.

use std::sync::Arc;

use serde_json::Value;

use crate::policy::Policy;
use crate::principal::{Clearance, Principal};
use crate::scope::{Interaction, ScopeContext};

/// What one caller may do. `Access::unrestricted()` is the server acting for itself (the
/// CLI, imports, `--insecure-dev-mode`).
#[derive(Debug, Clone)]
pub struct Access {
    caller: Option<Caller>,
}

#[derive(Debug, Clone)]
struct Caller {
    principal: Principal,
    policy: Arc<Policy>,
}

/// The answer for one (type, interaction).
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Not allowed at all: 403.
    Deny(Denial),
    /// Allowed on the resources that meet the conditions; others are invisible (404 on a
    /// read, absent from a search).
    Allow(Conditions),
}

/// Why an interaction is refused (said to the client; names no resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// No granted scope covers it.
    Scope,
    /// None of the caller's roles allows it.
    Role,
    /// A `patient/` scope or a patient role, but no patient in context.
    NoPatientContext,
}

impl Denial {
    /// A sentence for the OperationOutcome.
    pub fn message(self) -> &'static str {
        match self {
            Denial::Scope => "the access token's scopes do not allow this interaction",
            Denial::Role => "the caller's roles do not allow this interaction",
            Denial::NoPatientContext => {
                "patient-level access needs a patient in context, and the token has none"
            }
        }
    }
}

/// The conditions under which a resource is visible.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions {
    /// The resource must be in this patient's compartment (for `Patient`: be this patient).
    pub patient: Option<String>,
    /// The resource must match at least one of these searches (a scope's restrictions,
    /// `?category=laboratory`); empty: no such condition.
    pub restrictions: Vec<Vec<(String, String)>>,
    /// Labels (system, code) that hide a resource carrying any of them: searches exclude
    /// them with `_security:not`.
    pub hidden_labels: Vec<(String, String)>,
    /// Whether labels must also be checked on each resource (departments the policy does
    /// not list, which no search can name).
    pub check_labels: bool,
}

impl Conditions {
    /// Whether every resource is visible.
    pub fn is_empty(&self) -> bool {
        self.patient.is_none()
            && self.restrictions.is_empty()
            && self.hidden_labels.is_empty()
            && !self.check_labels
    }
}

impl Access {
    /// The server acting for itself: everything is allowed.
    pub fn unrestricted() -> Access {
        Access { caller: None }
    }

    /// A caller under a policy.
    pub fn new(principal: Principal, policy: Arc<Policy>) -> Access {
        Access {
            caller: Some(Caller { principal, policy }),
        }
    }

    /// Whether this is the unrestricted access.
    pub fn is_unrestricted(&self) -> bool {
        self.caller.is_none()
    }

    /// The caller, unless unrestricted.
    pub fn principal(&self) -> Option<&Principal> {
        self.caller.as_ref().map(|c| &c.principal)
    }

    /// The rule for `interaction` on `resource_type`.
    pub fn rule(&self, resource_type: &str, interaction: Interaction) -> Rule {
        let Some(caller) = &self.caller else {
            return Rule::Allow(Conditions::default());
        };
        let p = &caller.principal;
        let granting_roles: Vec<_> = p
            .roles
            .iter()
            .filter_map(|r| caller.policy.role(r))
            .filter(|g| g.on(resource_type).contains(interaction))
            .collect();
        if granting_roles.is_empty() {
            return Rule::Deny(Denial::Role);
        }
        let granting_scopes: Vec<_> = p
            .scopes
            .iter()
            .filter(|s| s.covers(resource_type) && s.interactions.contains(interaction))
            .collect();
        if granting_scopes.is_empty() {
            return Rule::Deny(Denial::Scope);
        }
        let mut conditions = Conditions::default();

        // Patient compartment: when only patient/ scopes grant it, or only roles limited to
        // their own compartment do.
        let by_scope = granting_scopes
            .iter()
            .all(|s| s.context == ScopeContext::Patient);
        let by_role = granting_roles.iter().all(|g| g.own_compartment);
        if by_scope || by_role {
            let own = p.patient.clone().or_else(|| {
                p.fhir_user
                    .as_deref()
                    .and_then(|u| u.strip_prefix("Patient/"))
                    .map(str::to_owned)
            });
            let Some(patient) = own else {
                return Rule::Deny(Denial::NoPatientContext);
            };
            // Types outside the Patient compartment (Practitioner, Medication, ...) hold no
            // patient's data: the scope reaches them without a compartment condition.
            if in_patient_compartment(resource_type) {
                conditions.patient = Some(patient);
            }
        }

        // Scope restrictions: only when every granting scope carries some.
        if granting_scopes.iter().all(|s| !s.restrictions.is_empty()) {
            let mut sets: Vec<Vec<(String, String)>> = Vec::new();
            for s in &granting_scopes {
                if !sets.contains(&s.restrictions) {
                    sets.push(s.restrictions.clone());
                }
            }
            conditions.restrictions = sets;
        }

        // Labels.
        for (code, needs) in [
            ("R", Clearance::Restricted),
            ("V", Clearance::VeryRestricted),
        ] {
            if p.clearance < needs {
                conditions
                    .hidden_labels
                    .push((Clearance::SYSTEM.to_owned(), code.to_owned()));
            }
        }
        if !all_departments(p) {
            let policy = &caller.policy;
            for d in &policy.departments {
                if !p.departments.contains(d) {
                    conditions
                        .hidden_labels
                        .push((policy.department_system.clone(), d.clone()));
                }
            }
            conditions.check_labels = true;
        }
        Rule::Allow(conditions)
    }

    /// Whether `resource`'s security labels let this caller see it: confidentiality within
    /// the caller's clearance, and department labels (if any) naming one of the caller's.
    pub fn labels_allow(&self, resource: &Value) -> bool {
        let Some(caller) = &self.caller else {
            return true;
        };
        let p = &caller.principal;
        let Some(labels) = resource
            .get("meta")
            .and_then(|m| m.get("security"))
            .and_then(Value::as_array)
        else {
            return true;
        };
        let mut departments = labels
            .iter()
            .filter(|c| {
                c.get("system").and_then(Value::as_str) == Some(&caller.policy.department_system)
            })
            .filter_map(|c| c.get("code").and_then(Value::as_str))
            .peekable();
        if departments.peek().is_some()
            && !all_departments(p)
            && !departments.any(|d| p.departments.iter().any(|mine| mine == d))
        {
            return false;
        }
        labels
            .iter()
            .filter(|c| c.get("system").and_then(Value::as_str) == Some(Clearance::SYSTEM))
            .filter_map(|c| c.get("code").and_then(Value::as_str))
            .filter_map(Clearance::from_code)
            .all(|needed| needed <= p.clearance)
    }
}

/// `*` among a caller's departments: every department.
fn all_departments(p: &Principal) -> bool {
    p.departments.iter().any(|d| d == "*")
}

/// Whether resources of this type can belong to a patient's compartment.
pub fn in_patient_compartment(resource_type: &str) -> bool {
    resource_type == "Patient"
        || !caduceus_model::defs::compartment_params("Patient", resource_type).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::PrincipalKind;
    use crate::scope::Scope;

    fn principal(scopes: &str, roles: &[&str]) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            subject: "u1".into(),
            client_id: None,
            issuer: "test".into(),
            scopes: Scope::parse_list(scopes).unwrap(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            patient: None,
            fhir_user: None,
            departments: vec![],
            clearance: Clearance::Normal,
            token_id: None,
        }
    }

    fn access(p: Principal) -> Access {
        Access::new(p, Arc::new(Policy::default_policy()))
    }

    #[test]
    fn scope_and_role_must_both_allow() {
        let a = access(principal("user/Observation.rs", &["clinician"]));
        assert!(matches!(
            a.rule("Observation", Interaction::Read),
            Rule::Allow(_)
        ));
        assert_eq!(
            a.rule("Observation", Interaction::Create),
            Rule::Deny(Denial::Scope)
        );
        let a = access(principal("user/*.cruds", &["scheduler"]));
        assert_eq!(
            a.rule("Observation", Interaction::Read),
            Rule::Deny(Denial::Role)
        );
        let a = access(principal("user/*.cruds", &[]));
        assert_eq!(
            a.rule("Patient", Interaction::Read),
            Rule::Deny(Denial::Role)
        );
    }

    #[test]
    fn patient_scopes_need_and_use_a_patient() {
        let mut p = principal("patient/*.rs", &["patient"]);
        assert_eq!(
            access(p.clone()).rule("Observation", Interaction::Read),
            Rule::Deny(Denial::NoPatientContext)
        );
        p.patient = Some("p1".into());
        let Rule::Allow(c) = access(p.clone()).rule("Observation", Interaction::Search) else {
            panic!()
        };
        assert_eq!(c.patient.as_deref(), Some("p1"));
        let Rule::Allow(c) = access(p).rule("Practitioner", Interaction::Read) else {
            panic!()
        };
        assert_eq!(c.patient, None);
    }

    #[test]
    fn restrictions_only_when_every_granting_scope_has_them() {
        let a = access(principal(
            "user/Observation.rs?category=laboratory user/Observation.rs?category=vital-signs",
            &["clinician"],
        ));
        let Rule::Allow(c) = a.rule("Observation", Interaction::Search) else {
            panic!()
        };
        assert_eq!(c.restrictions.len(), 2);
        let a = access(principal(
            "user/Observation.rs?category=laboratory user/*.rs",
            &["clinician"],
        ));
        let Rule::Allow(c) = a.rule("Observation", Interaction::Search) else {
            panic!()
        };
        assert!(c.restrictions.is_empty());
    }

    #[test]
    fn labels() {
        let mut p = principal("user/*.rs", &["clinician"]);
        p.departments = vec!["cardiology".into()];
        let a = access(p.clone());
        let r = |codes: &[(&str, &str)]| {
            serde_json::json!({"resourceType": "Observation", "meta": {"security":
                codes.iter().map(|(s, c)| serde_json::json!({"system": s, "code": c})).collect::<Vec<_>>()}})
        };
        let dept = "http://caduceus.health/fhir/CodeSystem/department";
        assert!(a.labels_allow(&r(&[])));
        assert!(a.labels_allow(&r(&[(Clearance::SYSTEM, "N")])));
        assert!(!a.labels_allow(&r(&[(Clearance::SYSTEM, "R")])));
        assert!(a.labels_allow(&r(&[(dept, "cardiology")])));
        assert!(!a.labels_allow(&r(&[(dept, "oncology")])));
        assert!(!a.labels_allow(&r(&[(dept, "unlisted")])));
        assert!(a.labels_allow(&r(&[(dept, "oncology"), (dept, "cardiology")])));
        p.clearance = Clearance::VeryRestricted;
        p.departments = vec!["*".into()];
        let a = access(p);
        assert!(a.labels_allow(&r(&[(Clearance::SYSTEM, "V"), (dept, "oncology")])));
        let Rule::Allow(c) = a.rule("Observation", Interaction::Read) else {
            panic!()
        };
        assert!(c.is_empty());
    }
}
