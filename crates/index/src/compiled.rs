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
    /// For a composite: its components in order, each evaluated on every item `expression`
    /// selects. Empty for the other kinds.
    pub components: Vec<CompiledComponent>,
}

/// One component of a composite parameter.
#[derive(Debug)]
pub struct CompiledComponent {
    /// The search type of the component (its own SearchParameter's), never `composite`.
    pub kind: &'static str,
    /// The expression, relative to an item of the composite's expression.
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
    "composite",
];

/// The component kinds a composite may have (R4's composites use token, reference,
/// quantity, date, string and number components).
const COMPONENT_KINDS: &[&str] = &[
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
                    let expression = Expression::parse(def.expression).ok()?;
                    let components = if def.kind == "composite" {
                        components(&def).ok()?
                    } else {
                        Vec::new()
                    };
                    Some(CompiledParam {
                        def,
                        expression,
                        components,
                    })
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
                && (Expression::parse(def.expression).is_err()
                    || (def.kind == "composite" && components(&def).is_err()))
            {
                errors.push((rt, def.code));
            }
        }
    }
    errors
}

/// The compiled components of a composite; an error when a component's definition is
/// unknown, of a kind a component cannot have, or its expression does not parse (the
/// composite is then not extracted at all: a tuple without one of its parts would match
/// searches it should not).
fn components(def: &SearchParamDef) -> Result<Vec<CompiledComponent>, ()> {
    if def.components.is_empty() {
        return Err(());
    }
    def.components
        .iter()
        .map(|&(url, relative)| {
            let component = defs::search_param_by_url(url).ok_or(())?;
            if !COMPONENT_KINDS.contains(&component.kind) {
                return Err(());
            }
            let text = relative_expression(def.expression, component.expression, relative);
            // R4 writes `value.as(DateTime)` in code-value-date: the System type, which a
            // FHIR `dateTime` element is not (`as` needs the exact type); the component's
            // own parameter says `as dateTime`.
            let text = text.replace("as(DateTime)", "as(dateTime)");
            let expression = Expression::parse(&text).map_err(|_| ())?;
            Ok(CompiledComponent {
                kind: component.kind,
                expression,
            })
        })
        .collect()
}

/// The expression a component is evaluated with. Normally the published relative one; but
/// when the composite selects a plain path `P` and the component's own parameter is exactly
/// `P.name`, that `name` wins. This corrects the one R4 composite whose relative expressions
/// are swapped against its component definitions (DocumentReference `relationship`: the
/// `relatesto` reference component is published with `code`, the `relation` token
/// component with `target`), and agrees with the published expression everywhere else.
fn relative_expression<'a>(composite: &str, component: &'a str, published: &'a str) -> &'a str {
    let path = composite.trim();
    let simple = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    };
    if !simple(path) {
        return published;
    }
    match component
        .trim()
        .strip_prefix(path)
        .and_then(|rest| rest.strip_prefix('.'))
    {
        Some(name) if simple(name) && !name.contains('.') => name,
        _ => published,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_expressions_follow_the_component_definition_when_it_is_a_child() {
        assert_eq!(
            relative_expression(
                "DocumentReference.relatesTo",
                "DocumentReference.relatesTo.target",
                "code"
            ),
            "target"
        );
        assert_eq!(
            relative_expression("Observation", "Observation.code", "code"),
            "code"
        );
        assert_eq!(
            relative_expression(
                "Observation",
                "(Observation.value as Quantity) | (Observation.value as SampledData)",
                "value.as(Quantity)"
            ),
            "value.as(Quantity)"
        );
        assert_eq!(
            relative_expression(
                "MolecularSequence.variant",
                "MolecularSequence.referenceSeq.chromosome",
                "%resource.referenceSeq.chromosome"
            ),
            "%resource.referenceSeq.chromosome"
        );
    }

    #[test]
    fn every_composite_compiles_with_its_components() {
        for &rt in defs::resource_types() {
            for def in defs::search_params(rt) {
                if def.kind == "composite" {
                    let compiled = params_for(rt);
                    let found = compiled.iter().find(|p| p.def.code == def.code);
                    let Some(p) = found else {
                        panic!("{rt}.{} not compiled", def.code)
                    };
                    assert_eq!(p.components.len(), def.components.len());
                    assert!((2..=3).contains(&p.components.len()), "{rt}.{}", def.code);
                }
            }
        }
    }
}
