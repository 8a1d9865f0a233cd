//! The CapabilityStatement, derived from what the engine implements and from the compiled
//! definitions: every resource type of R4, with the interactions listed here, and for each
//! type the official search parameters of the kinds the search executes. The server's
//! tests exercise every interaction this statement claims, so the two cannot drift apart.

use caduceus_model::{FHIR_VERSION, defs};
use serde_json::{Value, json};

use crate::Engine;

/// Type-level and instance-level interactions implemented for every resource type.
pub const TYPE_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

/// Search parameter types that searches execute (special ones are not indexed, so they are
/// not claimed).
pub const SEARCHED_KINDS: &[&str] = &[
    "number",
    "date",
    "string",
    "token",
    "reference",
    "composite",
    "quantity",
    "uri",
];

/// How token `:in`, `:not-in`, `:above` and `:below` are answered (`rest.documentation`):
/// R4's `searchParam` cannot list modifiers, so the statement says it in prose.
pub const TERMINOLOGY_NOTE: &str = "Token :in, :not-in, :above and :below are answered from the ValueSets \
     and CodeSystems stored on this server (enumerated, hierarchy filters, imports, excludes and \
     stored expansions, up to 10,000 codes); there is no terminology service, so a value set or \
     code system that is not stored, or that needs one, is refused with an OperationOutcome.";

/// Whole-system interactions implemented.
pub const SYSTEM_INTERACTIONS: &[&str] =
    &["transaction", "batch", "history-system", "search-system"];

/// Operations implemented on every resource type: (name, definition).
pub const TYPE_OPERATIONS: &[(&str, &str)] = &[(
    "validate",
    "http://hl7.org/fhir/OperationDefinition/Resource-validate",
)];

impl Engine {
    /// The CapabilityStatement of this server at `base`.
    pub fn capability_statement(&self, base: &str, software_version: &str) -> Value {
        let interactions =
            |codes: &[&str]| -> Vec<Value> { codes.iter().map(|c| json!({ "code": c })).collect() };
        let operations: Vec<Value> = TYPE_OPERATIONS
            .iter()
            .map(|(name, definition)| json!({ "name": name, "definition": definition }))
            .collect();
        let resources: Vec<Value> = defs::resource_types()
            .iter()
            .map(|t| {
                let params: Vec<Value> = defs::search_params(t)
                    .into_iter()
                    .filter(|p| {
                        SEARCHED_KINDS.contains(&p.kind)
                            && (!p.expression.is_empty()
                                || p.code == "_id"
                                || p.code == "_lastUpdated")
                    })
                    .map(|p| json!({ "name": p.code, "definition": p.url, "type": p.kind }))
                    .chain(std::iter::once(json!({
                        "name": "_list",
                        "type": "special",
                        "documentation": "The resources a stored List names (functional lists are not supported)"
                    })))
                    .collect();
                let mut type_operations = operations.clone();
                if *t == "Patient" {
                    type_operations.push(json!({
                        "name": "everything",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"
                    }));
                }
                json!({
                    "type": t,
                    "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                    "interaction": interactions(TYPE_INTERACTIONS),
                    "versioning": "versioned-update",
                    "readHistory": true,
                    "updateCreate": true,
                    "conditionalCreate": true,
                    "conditionalRead": "not-supported",
                    "conditionalUpdate": true,
                    "conditionalDelete": "multiple",
                    "searchInclude": ["*"],
                    "searchRevInclude": ["*"],
                    "searchParam": params,
                    "operation": type_operations,
                })
            })
            .collect();
        json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": self.started_at,
            "publisher": "Caduceus",
            "kind": "instance",
            "software": { "name": "Caduceus", "version": software_version },
            "implementation": { "description": "Caduceus FHIR R4 server", "url": base },
            "fhirVersion": FHIR_VERSION,
            "format": ["json", "application/fhir+json"],
            "patchFormat": ["application/json-patch+json"],
            "rest": [{
                "mode": "server",
                "documentation": TERMINOLOGY_NOTE,
                "resource": resources,
                "interaction": interactions(SYSTEM_INTERACTIONS),
            }],
        })
    }
}
