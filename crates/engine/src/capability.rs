//! The CapabilityStatement, derived from what the engine implements and from the compiled
//! definitions: every resource type of R4, with the interactions listed here. The server's
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
];

/// Whole-system interactions implemented.
pub const SYSTEM_INTERACTIONS: &[&str] = &["transaction", "batch", "history-system"];

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
                json!({
                    "type": t,
                    "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                    "interaction": interactions(TYPE_INTERACTIONS),
                    "versioning": "versioned-update",
                    "readHistory": true,
                    "updateCreate": true,
                    "conditionalCreate": false,
                    "conditionalRead": "not-supported",
                    "conditionalUpdate": false,
                    "conditionalDelete": "not-supported",
                    "operation": operations,
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
                "resource": resources,
                "interaction": interactions(SYSTEM_INTERACTIONS),
            }],
        })
    }
}
