//! Composite parameters: tuples of component values taken from the same element.
//!
//! The composite's own expression selects elements (the Observation itself,
//! `Observation.component`, `useContext`, ...); each component's expression is evaluated on
//! *one* such element at a time, so a tuple never pairs the code of one component with the
//! value of another. An element gives the cartesian product of its components' values (a
//! code with two codings and one value gives two tuples); an element lacking any component
//! gives none.

use caduceus_fhirpath::{Context, EvalError, Item};
use caduceus_store::index::{IndexRow, IndexValue};
use serde_json::Value;

use crate::compiled::CompiledParam;
use crate::convert;

/// The most tuples one element may give; past it the rest are dropped (R4's composites give
/// a handful: codings × values).
const MAX_TUPLES_PER_ELEMENT: usize = 256;

/// Appends the composite rows of `param` for the elements `items` its expression selected.
pub(crate) fn extract<'a>(
    param: &CompiledParam,
    items: &[Item<'a>],
    resource: &'a Value,
    ctx: &Context<'a>,
    rows: &mut Vec<IndexRow>,
) -> Result<(), EvalError> {
    for item in items {
        let focus = std::slice::from_ref(item);
        let mut parts: Vec<Vec<IndexValue>> = Vec::with_capacity(param.components.len());
        for component in &param.components {
            let mut values = Vec::new();
            for found in component.expression.evaluate_on(focus, resource, ctx)? {
                convert::values(component.kind, &found, &mut |v| {
                    if useful(&v) {
                        values.push(v)
                    }
                });
            }
            parts.push(values);
        }
        for tuple in product(&parts) {
            rows.push(IndexRow {
                param: param.def.code,
                value: IndexValue::Composite(tuple),
            });
        }
    }
    Ok(())
}

/// A component value a search can match: a token with a code or system (not a concept's
/// text alone), tokens losing their `:text` (composites take no modifiers).
fn useful(v: &IndexValue) -> bool {
    match v {
        IndexValue::Token { system, code, .. } => system.is_some() || code.is_some(),
        _ => true,
    }
}

/// Every combination of one value per part, in order, at most [`MAX_TUPLES_PER_ELEMENT`].
fn product(parts: &[Vec<IndexValue>]) -> Vec<Vec<IndexValue>> {
    let mut out: Vec<Vec<IndexValue>> = vec![Vec::new()];
    for part in parts {
        let mut next = Vec::new();
        for prefix in &out {
            for v in part {
                if next.len() == MAX_TUPLES_PER_ELEMENT {
                    break;
                }
                let mut t = prefix.clone();
                t.push(strip_text(v.clone()));
                next.push(t);
            }
        }
        out = next;
    }
    out
}

/// Tokens in a tuple keep system and code only.
fn strip_text(v: IndexValue) -> IndexValue {
    match v {
        IndexValue::Token { system, code, .. } => IndexValue::Token {
            system,
            code,
            text: None,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(code: &str) -> IndexValue {
        IndexValue::Token {
            system: None,
            code: Some(code.into()),
            text: Some("shown".into()),
        }
    }

    #[test]
    fn product_pairs_every_value_of_each_part() {
        let parts = vec![vec![tok("a"), tok("b")], vec![tok("1"), tok("2")]];
        let out = product(&parts);
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|t| t.len() == 2));
        assert!(
            out.iter()
                .flatten()
                .all(|v| matches!(v, IndexValue::Token { text: None, .. }))
        );
    }

    #[test]
    fn a_missing_part_gives_no_tuple() {
        assert!(product(&[vec![tok("a")], vec![]]).is_empty());
    }

    #[test]
    fn the_product_is_bounded() {
        let many: Vec<IndexValue> = (0..100).map(|i| tok(&i.to_string())).collect();
        let out = product(&[many.clone(), many.clone(), many]);
        assert_eq!(out.len(), MAX_TUPLES_PER_ELEMENT);
    }
}
