//! Validation of FHIR R4 JSON resources against the compiled official definitions.
//!
//! [`validate_resource`] walks a resource once, driven entirely by the generated tables in
//! `caduceus_model::defs` (no hand-kept element lists): unknown elements, JSON types, array
//! versus single values, required elements, choice types, primitive formats (the regexes of
//! the primitive StructureDefinitions plus calendar and range checks), contained and nested
//! resources, extensions, and the codes of required bindings the package enumerates.
//!
//! It also checks natively the invariants of the base resources that matter for safety and
//! every write: txt-1/txt-2 on narratives (`narrative`: well-formed XHTML, an allowlist of
//! elements and attributes, no script-capable content, some content) and dom-2..dom-5 on
//! contained resources (no nesting, each one referenced, no version metadata, no security
//! labels), plus ele-1, ext-1 and ref-1. Every other error-severity invariant of the
//! definitions (`constraint.expression`) is evaluated with `caduceus-fhirpath` on each
//! structurally valid element instance it applies to (`invariants`).
//!
//! Every finding is an [`Issue`] with a FHIRPath-style `expression` (`Patient.name[0].given[1]`)
//! and a diagnostic that names the rule and the location but never the offending value, so
//! outcomes can be logged and returned without leaking patient data.
//!
//! Modules: [`path`] keeps the location being visited (rendered only when an issue is
//! reported); `primitives` checks primitive values; `invariants` evaluates the invariants;
//! `narrative` checks `Narrative.div`;
//! `walker` walks objects and elements.

mod invariants;
mod narrative;
pub mod path;
mod primitives;
mod walker;

pub use walker::MAX_ISSUES;

use caduceus_model::Issue;
use serde_json::Value;

/// Validates one resource (with its contained and nested resources) and returns every issue
/// found, errors and warnings; no error issue means valid. At most [`MAX_ISSUES`] are listed
/// (then a `too-costly` warning says how many more there were).
pub fn validate_resource(resource: &Value) -> Vec<Issue> {
    let mut walker = walker::Walker::new();
    walker.root(resource);
    walker.into_issues()
}

/// True when `issues` contains no error (or fatal) issue.
pub fn is_valid(issues: &[Issue]) -> bool {
    !issues.iter().any(Issue::is_error)
}
