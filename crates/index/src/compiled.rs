//! The parsed expressions of each resource type's search parameters, built once per type.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use caduceus_fhirpath::Expression;
use caduceus_model::defs::{self, SearchParamDef};

/// A search parameter with its parsed expression.
#[derive(Debug)]
pub struct CompiledParam {
    /// The definition.
    pub def: SearchParamDef,
    /// The parsed expression.
    pub expression: Expression,
}

/// The kinds of parameter this crate extracts.
const EXTRACTED_KINDS: &[&str] = &[
    "string",
    "token",
    "reference",
    "date",
    "number",
    "quantity",
    "uri",
];

/// Parameters stores answer from the resource itself rather than from index rows.
pub const NOT_INDEXED: &[&str] = &["_id", "_lastUpdated"];

type Compiled = Arc<[CompiledParam]>;

static BY_TYPE: LazyLock<Mutex<HashMap<&'static str, Compiled>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The extractable parameters of a resource type with their parsed expressions. Parsed on
/// first use per type, then shared.
pub fn params_for(resource_type: &str) -> Compiled {
    let Some(&name) = defs::resource_types().iter().find(|t| **t == resource_type) else {
        return Arc::from(Vec::new());
    };
    let mut cache = BY_TYPE.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(name)
        .or_insert_with(|| {
            defs::search_params(name)
                .into_iter()
                .filter(|d| EXTRACTED_KINDS.contains(&d.kind) && !d.expression.is_empty())
                // Stores search `_id` and `_lastUpdated` on the resource's own columns; rows
                // for them would only cost writes (for `_id`, one per resource).
                .filter(|d| !NOT_INDEXED.contains(&d.code))
                .filter_map(|def| {
                    Expression::parse(def.expression)
                        .ok()
                        .map(|expression| CompiledParam { def, expression })
                })
                .collect::<Vec<_>>()
                .into()
        })
        .clone()
}

/// Every (resource type, parameter code) whose published expression does not parse; the
/// tests keep this empty.
pub fn compile_errors() -> Vec<(&'static str, &'static str)> {
    let mut errors = Vec::new();
    for &rt in defs::resource_types() {
        for def in defs::search_params(rt) {
            if EXTRACTED_KINDS.contains(&def.kind)
                && !def.expression.is_empty()
                && Expression::parse(def.expression).is_err()
            {
                errors.push((rt, def.code));
            }
        }
    }
    errors
}
