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
//! - Contained resources (`contained`) get the rows of their own type, returned apart
//!   ([`Extraction::contained`]) for the store to keep out of ordinary searches. Local
//!   references (`#med1`, and `#` from a contained resource to its container) are indexed
//!   with the type of the resource they name and a `#` target id the store resolves (R4
//!   evaluates chains inside contained resources); one naming no contained resource is
//!   dropped. A contained entry without an id, of an unknown type, or repeating an earlier
//!   entry's id is not indexed (it could not be told apart or addressed).
//!
//! Invariant: knows nothing of storage engines or HTTP; depends on the model, the FHIRPath
//! engine and the index row types of `caduceus-store`.
#![deny(missing_docs)]

mod compiled;
mod composite;
mod convert;
mod fingerprint;

use caduceus_store::index::{ContainedIndex, IndexRow, IndexValue};
use serde_json::Value;

pub use caduceus_store::index::normalize::normalize_string;
pub use compiled::{CompiledComponent, CompiledParam, compile_errors, params_for};
pub use fingerprint::{EXTRACTION_VERSION, fingerprint};

/// The index rows of one resource, and how many parameters could not be evaluated on it.
#[derive(Debug, Default)]
pub struct Extraction {
    /// The rows, in parameter order.
    pub rows: Vec<IndexRow>,
    /// The rows of each indexed contained resource, in `contained` order.
    pub contained: Vec<ContainedIndex>,
    /// Parameters whose expression failed to evaluate on this resource (or on one of its
    /// contained resources).
    pub failed_params: Vec<&'static str>,
}

/// Extracts the search index rows of a resource and of its contained resources (the
/// `resourceType` of each decides which parameters apply). A resource of an unknown type
/// gives no rows.
pub fn extract(resource: &Value) -> Extraction {
    let mut out = Extraction::default();
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return out;
    };
    // The contained resources that can be indexed: (local id, type, resource), first of an id.
    let mut locals: Vec<(&str, &str, &Value)> = Vec::new();
    for entry in resource
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = entry.get("id").and_then(Value::as_str);
        let ty = entry.get("resourceType").and_then(Value::as_str);
        if let (Some(id), Some(ty)) = (id, ty)
            && !id.is_empty()
            && caduceus_model::defs::is_resource_type(ty)
            && !locals.iter().any(|(seen, _, _)| *seen == id)
        {
            locals.push((id, ty, entry));
        }
    }
    let type_of = |local: &str| {
        locals
            .iter()
            .find(|(id, _, _)| *id == local)
            .map(|(_, ty, _)| *ty)
    };
    out.rows = resource_rows(resource, resource_type, &mut out.failed_params);
    resolve_local(&mut out.rows, &type_of, None);
    for (id, ty, entry) in &locals {
        let mut rows = resource_rows(entry, ty, &mut out.failed_params);
        resolve_local(&mut rows, &type_of, Some(resource_type));
        out.contained.push(ContainedIndex {
            resource_type: (*ty).to_owned(),
            id: (*id).to_owned(),
            rows,
        });
    }
    out
}

/// The rows of one resource of type `resource_type` (top-level or contained).
fn resource_rows(
    resource: &Value,
    resource_type: &str,
    failed: &mut Vec<&'static str>,
) -> Vec<IndexRow> {
    let mut out = Vec::new();
    let ctx = caduceus_fhirpath::Context::new();
    for param in params_for(resource_type).iter() {
        match param.expression.evaluate(resource, &ctx) {
            Ok(items) if !param.components.is_empty() => {
                let mut rows = Vec::new();
                match composite::extract(param, &items, resource, &ctx, &mut rows) {
                    Ok(()) => out.extend(rows),
                    Err(_) => failed.push(param.def.code),
                }
            }
            Ok(items) => {
                for item in &items {
                    convert::convert(param.def.code, param.def.kind, item, &mut out);
                }
            }
            Err(_) => failed.push(param.def.code),
        }
    }
    out
}

/// Gives local references (`#id`, `#`) the type of what they name, and drops those that name
/// nothing: `#id` names a contained resource of the container (`type_of`), `#` the container
/// itself (of type `container`, for rows of a contained resource).
fn resolve_local<'a>(
    rows: &mut Vec<IndexRow>,
    type_of: &impl Fn(&str) -> Option<&'a str>,
    container: Option<&str>,
) {
    rows.retain_mut(|row| match &mut row.value {
        IndexValue::Composite(parts) => parts
            .iter_mut()
            .all(|part| resolve_value(part, type_of, container)),
        value => resolve_value(value, type_of, container),
    });
}

/// [`resolve_local`] on one value; false when it is a local reference naming nothing.
fn resolve_value<'a>(
    value: &mut IndexValue,
    type_of: &impl Fn(&str) -> Option<&'a str>,
    container: Option<&str>,
) -> bool {
    let IndexValue::Reference {
        target_type,
        target_id: Some(target),
        ..
    } = value
    else {
        return true;
    };
    let Some(local) = target.strip_prefix('#') else {
        return true;
    };
    let resolved = if local.is_empty() {
        container
    } else {
        type_of(local)
    };
    match resolved {
        Some(t) => {
            *target_type = Some(t.to_owned());
            true
        }
        None => false,
    }
}
