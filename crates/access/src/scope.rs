//! SMART on FHIR scopes (App Launch 2.0 `patient/Observation.rs?category=laboratory`, and
//! the v1 forms `user/*.read`, `.write`, `.*`).

use serde::{Deserialize, Serialize};

/// Whose data a scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeContext {
    /// `patient/`: only the compartment of the patient in context.
    Patient,
    /// `user/`: whatever the user may see.
    User,
    /// `system/`: whatever the client may see.
    System,
}

/// One interaction of a scope's `cruds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interaction {
    /// `c`: create.
    Create,
    /// `r`: read and vread (and history of one resource).
    Read,
    /// `u`: update and patch.
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: search (and type/system history).
    Search,
}

impl Interaction {
    fn bit(self) -> u8 {
        match self {
            Interaction::Create => 1,
            Interaction::Read => 2,
            Interaction::Update => 4,
            Interaction::Delete => 8,
            Interaction::Search => 16,
        }
    }

    /// The letter in a v2 scope.
    pub fn letter(self) -> char {
        match self {
            Interaction::Create => 'c',
            Interaction::Read => 'r',
            Interaction::Update => 'u',
            Interaction::Delete => 'd',
            Interaction::Search => 's',
        }
    }
}

/// A set of interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Interactions(u8);

impl Interactions {
    /// None.
    pub const NONE: Interactions = Interactions(0);
    /// `cruds`.
    pub const ALL: Interactions = Interactions(31);

    /// Whether `i` is in the set.
    pub fn contains(self, i: Interaction) -> bool {
        self.0 & i.bit() != 0
    }

    /// The set with `i` added.
    pub fn with(self, i: Interaction) -> Interactions {
        Interactions(self.0 | i.bit())
    }

    /// Both sets.
    pub fn union(self, other: Interactions) -> Interactions {
        Interactions(self.0 | other.0)
    }

    /// What both sets hold.
    pub fn intersect(self, other: Interactions) -> Interactions {
        Interactions(self.0 & other.0)
    }

    /// This set without the members of `other`.
    pub fn minus(self, other: Interactions) -> Interactions {
        Interactions(self.0 & !other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses v2 letters in their fixed order (`rs`, `cud`, `cruds`); `None` for anything
    /// else (out of order, repeated, unknown letters, empty).
    pub fn parse_v2(letters: &str) -> Option<Interactions> {
        let order = [
            Interaction::Create,
            Interaction::Read,
            Interaction::Update,
            Interaction::Delete,
            Interaction::Search,
        ];
        let mut set = Interactions::NONE;
        let mut next = 0;
        for c in letters.chars() {
            let pos = order[next..].iter().position(|i| i.letter() == c)? + next;
            set = set.with(order[pos]);
            next = pos + 1;
        }
        (!set.is_empty()).then_some(set)
    }

    /// The v2 letters (`cruds` order).
    pub fn letters(self) -> String {
        [
            Interaction::Create,
            Interaction::Read,
            Interaction::Update,
            Interaction::Delete,
            Interaction::Search,
        ]
        .into_iter()
        .filter(|i| self.contains(*i))
        .map(Interaction::letter)
        .collect()
    }
}

/// A SMART scope on FHIR resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// `patient/`, `user/` or `system/`.
    pub context: ScopeContext,
    /// The resource type, or `None` for `*`.
    pub resource_type: Option<String>,
    /// The interactions granted.
    pub interactions: Interactions,
    /// Search-parameter restrictions (`?category=laboratory`): the scope reaches only
    /// resources that such a search would match. Decoded, in order.
    pub restrictions: Vec<(String, String)>,
}

/// Why a scope string is not a resource scope we understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Not of the form `context/Type.permissions`.
    #[error("not a SMART resource scope (expected patient|user|system/Type.permissions)")]
    Malformed,
    /// Permissions that are neither v2 letters nor v1 `read`/`write`/`*`.
    #[error("unknown permissions in a SMART scope")]
    Permissions,
    /// The resource type is not an R4 resource type.
    #[error("unknown resource type in a SMART scope")]
    ResourceType,
}

impl Scope {
    /// Parses one scope. Non-resource scopes (`openid`, `fhirUser`, `launch/patient`,
    /// `offline_access`) are `Ok(None)`.
    pub fn parse(text: &str) -> Result<Option<Scope>, ScopeError> {
        let Some((context, rest)) = text.split_once('/') else {
            return Ok(None);
        };
        let context = match context {
            "patient" => ScopeContext::Patient,
            "user" => ScopeContext::User,
            "system" => ScopeContext::System,
            // `launch/patient`, `launch/encounter`: launch context requests.
            _ => return Ok(None),
        };
        let (resource, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (resource_type, permissions) = resource.split_once('.').ok_or(ScopeError::Malformed)?;
        let resource_type = match resource_type {
            "*" => None,
            t if caduceus_model::defs::is_resource_type(t) => Some(t.to_owned()),
            _ => return Err(ScopeError::ResourceType),
        };
        let interactions = match permissions {
            "read" => Interactions::NONE
                .with(Interaction::Read)
                .with(Interaction::Search),
            "write" => Interactions::NONE
                .with(Interaction::Create)
                .with(Interaction::Update)
                .with(Interaction::Delete),
            "*" => Interactions::ALL,
            letters => Interactions::parse_v2(letters).ok_or(ScopeError::Permissions)?,
        };
        let restrictions = match query {
            None => Vec::new(),
            Some(q) => form_pairs(q),
        };
        Ok(Some(Scope {
            context,
            resource_type,
            interactions,
            restrictions,
        }))
    }

    /// Parses a space-separated scope list (a token's `scope` claim), keeping the resource
    /// scopes and dropping the others; a malformed resource scope is an error.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>, ScopeError> {
        let mut out = Vec::new();
        for s in text.split_ascii_whitespace() {
            if let Some(scope) = Scope::parse(s)? {
                out.push(scope);
            }
        }
        Ok(out)
    }

    /// Whether this scope names `resource_type` (directly or by `*`).
    pub fn covers(&self, resource_type: &str) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
    }

    /// The scope in v2 form.
    pub fn to_v2_string(&self) -> String {
        let context = match self.context {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        };
        let mut s = format!(
            "{context}/{}.{}",
            self.resource_type.as_deref().unwrap_or("*"),
            self.interactions.letters()
        );
        if !self.restrictions.is_empty() {
            s.push('?');
            let mut first = true;
            for (k, v) in &self.restrictions {
                if !first {
                    s.push('&');
                }
                first = false;
                s.push_str(&percent_encode(k));
                s.push('=');
                s.push_str(&percent_encode(v));
            }
        }
        s
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~|:/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_scope_with_restriction() {
        let s = Scope::parse("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory")
            .unwrap()
            .unwrap();
        assert_eq!(s.context, ScopeContext::Patient);
        assert_eq!(s.resource_type.as_deref(), Some("Observation"));
        assert!(s.interactions.contains(Interaction::Read));
        assert!(s.interactions.contains(Interaction::Search));
        assert!(!s.interactions.contains(Interaction::Create));
        assert_eq!(s.restrictions.len(), 1);
        assert_eq!(s.restrictions[0].0, "category");
        assert!(s.restrictions[0].1.ends_with("|laboratory"));
    }

    #[test]
    fn v1_forms() {
        let read = Scope::parse("user/*.read").unwrap().unwrap();
        assert_eq!(read.resource_type, None);
        assert_eq!(read.interactions.letters(), "rs");
        let write = Scope::parse("system/Patient.write").unwrap().unwrap();
        assert_eq!(write.interactions.letters(), "cud");
        assert_eq!(
            Scope::parse("user/Patient.*")
                .unwrap()
                .unwrap()
                .interactions,
            Interactions::ALL
        );
    }

    #[test]
    fn non_resource_scopes_are_skipped() {
        let list =
            Scope::parse_list("openid fhirUser launch/patient offline_access system/Patient.rs")
                .unwrap();
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn bad_scopes_are_refused() {
        assert_eq!(
            Scope::parse("user/Patient.sr"),
            Err(ScopeError::Permissions)
        );
        assert_eq!(
            Scope::parse("user/Patient.rr"),
            Err(ScopeError::Permissions)
        );
        assert_eq!(Scope::parse("user/Patient.x"), Err(ScopeError::Permissions));
        assert_eq!(Scope::parse("user/Patient"), Err(ScopeError::Malformed));
        assert_eq!(Scope::parse("user/Nope.rs"), Err(ScopeError::ResourceType));
    }

    #[test]
    fn round_trip_v2() {
        let s = Scope::parse("patient/Observation.rs?category=laboratory&code=1%202")
            .unwrap()
            .unwrap();
        assert_eq!(s.restrictions[1].1, "1 2");
        assert_eq!(Scope::parse(&s.to_v2_string()).unwrap().unwrap(), s);
    }
}
