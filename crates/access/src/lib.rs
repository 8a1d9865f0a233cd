//! Who is asking and what they may do. Authentication (a bearer token, a client
//! certificate) ends in a [`Principal`]; this crate turns a principal and the role policy
//! into an [`Access`]: which interactions on which resource types are allowed, and which
//! resources are visible (patient compartment, scope restrictions, security labels).
//!
//! It parses SMART on FHIR scopes (v1 and v2, with search-parameter restrictions) and the
//! policy file that maps roles to permissions. It knows nothing of HTTP, tokens or stores:
//! the server authenticates, the engine enforces.
//!
//! Invariant: nothing here allows by default. A principal without a granting scope *and*
//! a granting role may do nothing.
#![deny(missing_docs)]

mod access;
mod policy;
mod principal;
pub mod scope;

pub use access::{Access, Conditions, Denial, Rule, in_patient_compartment};
pub use policy::{DEFAULT_POLICY, Policy, PolicyError, RoleGrants};
pub use principal::{Clearance, Principal, PrincipalKind};
pub use scope::{Interaction, Interactions, Scope, ScopeContext, ScopeError};
