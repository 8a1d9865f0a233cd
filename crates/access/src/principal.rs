//! The authenticated caller.

use serde::{Deserialize, Serialize};

use crate::scope::Scope;

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    /// A person (a clinician, a patient) through an app: `user/` and `patient/` scopes.
    User,
    /// A client acting for itself (SMART Backend Services, a client certificate):
    /// `system/` scopes.
    Client,
}

/// The confidentiality a caller is cleared for, from the HL7 v3 Confidentiality codes that
/// label resources in `meta.security` (N normal, R restricted, V very restricted). A
/// resource labelled R or V is visible only to callers cleared at least that high; U, L,
/// M and N labels need no clearance beyond normal.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub enum Clearance {
    /// N: normal (the default).
    #[default]
    #[serde(rename = "N")]
    Normal,
    /// R: restricted.
    #[serde(rename = "R")]
    Restricted,
    /// V: very restricted.
    #[serde(rename = "V")]
    VeryRestricted,
}

impl Clearance {
    /// The code system of confidentiality labels.
    pub const SYSTEM: &'static str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

    /// The clearance a confidentiality code asks for (`None` for codes that are not
    /// confidentiality levels).
    pub fn from_code(code: &str) -> Option<Clearance> {
        match code {
            "U" | "L" | "M" | "N" => Some(Clearance::Normal),
            "R" => Some(Clearance::Restricted),
            "V" => Some(Clearance::VeryRestricted),
            _ => None,
        }
    }

    /// The code (`N`, `R`, `V`).
    pub fn code(self) -> &'static str {
        match self {
            Clearance::Normal => "N",
            Clearance::Restricted => "R",
            Clearance::VeryRestricted => "V",
        }
    }
}

/// An authenticated caller, whatever the means (a token of an external OpenID Connect
/// provider, one of the built-in authorization server, a client certificate). Carries no
/// patient data: `subject` is an account id, `patient` a resource id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    /// A person or a client.
    pub kind: PrincipalKind,
    /// The account: the token's `sub` (a user id, or the client id for backend services).
    pub subject: String,
    /// The OAuth2 client the request comes through, when known (`client_id`/`azp`).
    pub client_id: Option<String>,
    /// Who vouched for the caller (the token's `iss`, or `mtls` for a certificate).
    pub issuer: String,
    /// The granted SMART scopes that concern FHIR resources (others, such as `openid`,
    /// are dropped when the token is read).
    pub scopes: Vec<Scope>,
    /// Role names (`clinician`, `nurse`, `scheduler`, `billing`, `auditor`, `admin`,
    /// `patient`, or any the policy file defines).
    pub roles: Vec<String>,
    /// The patient in context (SMART launch context `patient`): `patient/` scopes reach
    /// only this patient's compartment. A resource id, not an identifier.
    pub patient: Option<String>,
    /// The FHIR resource that represents the user (`fhirUser`), e.g. `Practitioner/12`.
    pub fhir_user: Option<String>,
    /// Department codes the caller works in, matched against department labels.
    pub departments: Vec<String>,
    /// The confidentiality the caller is cleared for.
    pub clearance: Clearance,
    /// The token's id (`jti`), for revocation and audit.
    pub token_id: Option<String>,
}
