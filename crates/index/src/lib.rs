//! Search index extraction: for a resource, the value of every search parameter of the
//! R4 specification that applies to its type, in the form stores index
//! ([`caduceus_store::index::IndexRow`]).
//!
//! Each parameter's published FHIRPath expression is parsed once per process (per resource
//! type, on first use) and evaluated with `caduceus-fhirpath`, whose results borrow from the
//! resource: extraction copies only the values it keeps. The results are then converted by
//! the parameter's type (`convert`): a HumanName gives its name parts to a string
//! parameter, a CodeableConcept its codings to a token parameter, a Period its range to a
//! date parameter, and so on.
//!
//! Design decisions:
//! - Extraction never fails a write. An expression that cannot be evaluated on one
//!   resource contributes no rows for that parameter (and is counted in [`Extraction`]),
//!   because refusing clinical data for an indexing limitation would be worse than a search
//!   that misses it. Tests assert that no official expression fails to parse and that the
//!   official examples and Synthea extract without evaluation errors.
//! - `special` and `composite` parameters are not extracted here (composites need their
//!   component definitions; `near` needs geometry).
//!
//! Invariant: knows nothing of storage engines or HTTP; depends on the model, the FHIRPath
//! engine and the index row types of `caduceus-store`.
#![deny(missing_docs)]

mod compiled;
mod convert;

use caduceus_store::index::IndexRow;
use serde_json::Value;

pub use caduceus_store::index::normalize::normalize_string;
pub use compiled::{compile_errors, params_for};

/// The index rows of one resource, and how many parameters could not be evaluated on it.
#[derive(Debug, Default)]
pub struct Extraction {
    /// The rows, in parameter order.
    pub rows: Vec<IndexRow>,
    /// Parameters whose expression failed to evaluate on this resource.
    pub failed_params: Vec<&'static str>,
}

/// Extracts the search index rows of a resource (its `resourceType` decides which
/// parameters apply). A resource of an unknown type gives no rows.
pub fn extract(resource: &Value) -> Extraction {
    let mut out = Extraction::default();
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return out;
    };
    let ctx = caduceus_fhirpath::Context::new();
    for param in params_for(resource_type).iter() {
        match param.expression.evaluate(resource, &ctx) {
            Ok(items) => {
                for item in &items {
                    convert::convert(param.def.code, param.def.kind, item, &mut out.rows);
                }
            }
            Err(_) => out.failed_params.push(param.def.code),
        }
    }
    out
}
