//! The invariants of the definitions (`constraint.expression`, severity `error`), evaluated
//! with `caduceus-fhirpath` on each element instance the walk visits.
//!
//! The generated tables carry, per node (type or backbone element) and per element, the
//! indexes of its invariants ([`defs::constraints`]); the ones checked natively by the walk
//! (dom-2..dom-5, txt-1, txt-2, ele-1, ext-1, ref-1) are not carried (the generator lists them with
//! its reasons). Every expression is parsed once per process, on first use, into a table
//! indexed like the definitions'.
//!
//! An invariant fails when its expression evaluates to `false`; an empty result passes (as
//! it does in the specification's own tooling for comparisons of different precisions). An
//! expression that cannot be evaluated on an instance (e.g. a collection where one item was
//! expected) is reported as a warning, never as a failure.

use std::sync::OnceLock;

use caduceus_fhirpath::{Context, Expression, Item, Node};
use caduceus_model::defs::{self, ConstraintId};
use serde_json::Value;

/// Every carried invariant's parsed expression, indexed by [`ConstraintId`] (`None` when an
/// expression does not parse; a test keeps that set empty).
fn parsed() -> &'static [Option<Expression>] {
    static PARSED: OnceLock<Vec<Option<Expression>>> = OnceLock::new();
    PARSED.get_or_init(|| {
        defs::constraints()
            .iter()
            .map(|c| Expression::parse(c.expression).ok())
            .collect()
    })
}

/// The parsed expression of an invariant.
pub(crate) fn expression(id: ConstraintId) -> Option<&'static Expression> {
    parsed().get(usize::from(id)).and_then(Option::as_ref)
}

/// What evaluating one invariant on one instance gave.
pub(crate) enum Outcome {
    /// True or empty.
    Holds,
    /// False.
    Fails,
    /// The expression could not be evaluated on this instance.
    Error,
}

/// Evaluates invariant `id` with `focus` as `$this`/`%context`, `resource` as `%resource` and
/// `root` (the container of a contained resource) as `%rootResource`.
pub(crate) fn check<'a>(
    id: ConstraintId,
    focus: Node<'a>,
    resource: &'a Value,
    root: Option<&'a Value>,
) -> Outcome {
    let Some(expr) = expression(id) else {
        return Outcome::Holds;
    };
    let ctx = match root {
        Some(root) => Context::new().with_var("rootResource", vec![Item::Node(Node::root(root))]),
        None => Context::new(),
    };
    match expr.evaluate_on(&[Item::Node(focus)], resource, &ctx) {
        Ok(out) => match out.as_slice() {
            [one] if one.as_bool() == Some(false) => Outcome::Fails,
            _ => Outcome::Holds,
        },
        Err(_) => Outcome::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_carried_invariant_parses() {
        let failures: Vec<&str> = defs::constraints()
            .iter()
            .zip(parsed())
            .filter(|(_, p)| p.is_none())
            .map(|(c, _)| c.key)
            .collect();
        assert!(failures.is_empty(), "{failures:?}");
        assert!(defs::constraints().len() > 150);
        for skipped in [
            "dom-2", "dom-3", "dom-4", "dom-5", "txt-1", "txt-2", "ele-1", "ext-1", "ref-1",
        ] {
            assert!(
                defs::constraints().iter().all(|c| c.key != skipped),
                "{skipped} is checked natively"
            );
        }
    }
}
