//! The role policy: which interactions each role allows on which resource types, and how
//! department labels are read. Loaded from a TOML file (`--policy-file`) or the built-in
//! default (`policy.default.toml`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::scope::Interactions;

/// The built-in policy file.
pub const DEFAULT_POLICY: &str = include_str!("../policy.default.toml");

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML of the expected shape.
    #[error("the policy file is not valid: {0}")]
    Syntax(String),
    /// A grant that is not `Type.letters`.
    #[error("role {role}: {grant:?} is not a grant of the form Type.cruds (or *.rs)")]
    Grant {
        /// The role.
        role: String,
        /// The grant as written.
        grant: String,
    },
}

/// One role's grants.
#[derive(Debug, Clone, Default)]
pub struct RoleGrants {
    /// Interactions on every type.
    all: Interactions,
    /// Interactions on named types (added to `all`).
    by_type: BTreeMap<String, Interactions>,
    /// Taken away on every type.
    deny_all: Interactions,
    /// Taken away on named types.
    deny_by_type: BTreeMap<String, Interactions>,
    /// Limited to the caller's own patient compartment.
    pub own_compartment: bool,
    /// May declare an emergency (`$break-glass`): for a limited time, security labels no
    /// longer hide resources from this caller.
    pub break_glass: bool,
}

impl RoleGrants {
    /// What this role allows on `resource_type`.
    pub fn on(&self, resource_type: &str) -> Interactions {
        let allowed = self
            .by_type
            .get(resource_type)
            .copied()
            .unwrap_or_default()
            .union(self.all);
        let denied = self
            .deny_by_type
            .get(resource_type)
            .copied()
            .unwrap_or_default()
            .union(self.deny_all);
        allowed.minus(denied)
    }
}

/// The whole policy.
#[derive(Debug, Clone)]
pub struct Policy {
    roles: BTreeMap<String, RoleGrants>,
    /// The code system of department labels in `meta.security`.
    pub department_system: String,
    /// The department codes in use.
    pub departments: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct PolicyFile {
    department_system: String,
    #[serde(default)]
    departments: Vec<String>,
    #[serde(default)]
    roles: BTreeMap<String, RoleFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RoleFile {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    own_compartment: bool,
    #[serde(default)]
    break_glass: bool,
}

impl Policy {
    /// The built-in policy.
    pub fn default_policy() -> Policy {
        // The built-in file is tested (`default_policy_parses`); failing here is a build bug.
        Policy::parse(DEFAULT_POLICY).unwrap_or_else(|e| panic!("built-in policy: {e}"))
    }

    /// Parses a policy file.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        let mut roles = BTreeMap::new();
        for (name, role) in file.roles {
            let mut grants = RoleGrants {
                own_compartment: role.own_compartment,
                break_glass: role.break_glass,
                ..RoleGrants::default()
            };
            for (list, deny) in [(&role.allow, false), (&role.deny, true)] {
                for grant in list {
                    let bad = || PolicyError::Grant {
                        role: name.clone(),
                        grant: grant.clone(),
                    };
                    let (t, letters) = grant.split_once('.').ok_or_else(bad)?;
                    let set = Interactions::parse_v2(letters).ok_or_else(bad)?;
                    match (t, deny) {
                        ("*", false) => grants.all = grants.all.union(set),
                        ("*", true) => grants.deny_all = grants.deny_all.union(set),
                        (t, _) if !caduceus_model::defs::is_resource_type(t) => return Err(bad()),
                        (t, false) => {
                            let e = grants.by_type.entry(t.to_owned()).or_default();
                            *e = e.union(set);
                        }
                        (t, true) => {
                            let e = grants.deny_by_type.entry(t.to_owned()).or_default();
                            *e = e.union(set);
                        }
                    }
                }
            }
            roles.insert(name, grants);
        }
        Ok(Policy {
            roles,
            department_system: file.department_system,
            departments: file.departments,
        })
    }

    /// A role's grants (`None` for a role the policy does not define: it grants nothing).
    pub fn role(&self, name: &str) -> Option<&RoleGrants> {
        self.roles.get(name)
    }

    /// Whether one of these roles may break the glass.
    pub fn may_break_glass(&self, roles: &[String]) -> bool {
        roles
            .iter()
            .filter_map(|r| self.role(r))
            .any(|g| g.break_glass)
    }

    /// The names of the defined roles.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Interaction;

    #[test]
    fn default_policy_parses() {
        let p = Policy::default_policy();
        for role in [
            "admin",
            "clinician",
            "nurse",
            "scheduler",
            "billing",
            "auditor",
            "patient",
        ] {
            assert!(p.role(role).is_some(), "{role}");
        }
        let clinician = p.role("clinician").unwrap();
        assert!(clinician.on("Observation").contains(Interaction::Delete));
        assert!(clinician.on("AuditEvent").is_empty());
        let nurse = p.role("nurse").unwrap();
        assert!(!nurse.on("Observation").contains(Interaction::Delete));
        let auditor = p.role("auditor").unwrap();
        assert!(auditor.on("AuditEvent").contains(Interaction::Search));
        assert!(auditor.on("Patient").is_empty());
        assert!(p.role("patient").unwrap().own_compartment);
        assert!(p.may_break_glass(&["clinician".to_owned()]));
        assert!(!p.may_break_glass(&["billing".to_owned(), "auditor".to_owned()]));
    }

    #[test]
    fn bad_grants_are_refused() {
        for bad in ["Nope.rs", "Patient", "Patient.x", "Patient.sr"] {
            let text = format!("department-system = \"x\"\n[roles.r]\nallow = [\"{bad}\"]\n");
            assert!(Policy::parse(&text).is_err(), "{bad}");
        }
        assert!(Policy::parse("department-system = \"x\"\nunknown = 1\n").is_err());
    }
}
