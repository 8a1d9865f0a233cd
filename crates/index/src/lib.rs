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
//! - Composite parameters (`composite`) give one [`caduceus_store::index::IndexValue::Composite`]
//!   tuple per combination of component values *of the same element*: the composite's
//!   expression selects elements (an Observation, each `Observation.component`), and every
//!   component expression is evaluated on one element at a time, so an Observation with two
//!   components never pairs the code of one with the value of the other. R4's one composite
//!   whose published component expressions are swapped (DocumentReference `relationship`)
//!   is corrected in `compiled`.
//! - Token parameters on Identifiers also give `(type coding, value)` composites for
//!   `:of-type`, and reference parameters give `Reference.identifier` as a token for
//!   `:identifier`.
//! - `special` parameters are not extracted here (`near` needs geometry).
//!
//! Invariant: knows nothing of storage engines or HTTP; depends on the model, the FHIRPath
//! engine and the index row types of `caduceus-store`.
#![deny(missing_docs)]

mod compiled;
mod composite;
mod convert;
mod fingerprint;

use caduceus_store::index::IndexRow;
use serde_json::Value;

pub use caduceus_store::index::normalize::normalize_string;
pub use compiled::{CompiledComponent, CompiledParam, compile_errors, params_for};
pub use fingerprint::{EXTRACTION_VERSION, fingerprint};

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
            Ok(items) if !param.components.is_empty() => {
                let mut rows = Vec::new();
                match composite::extract(param, &items, resource, &ctx, &mut rows) {
                    Ok(()) => out.rows.extend(rows),
                    Err(_) => out.failed_params.push(param.def.code),
                }
            }
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
