//! Modifiers: which exist, which apply to which parameter kind, and what value type each
//! implies.

use caduceus_model::defs;

use crate::ast::{Modifier, ParamKind, ParamRef};
use crate::error::ErrorKind;
use crate::values::static_type;

/// The modifier written after `:` (a resource type name is the `:[type]` modifier).
pub fn parse(text: &str) -> Result<Modifier, ErrorKind> {
    Ok(match text {
        "missing" => Modifier::Missing,
        "exact" => Modifier::Exact,
        "contains" => Modifier::Contains,
        "text" => Modifier::Text,
        "not" => Modifier::Not,
        "above" => Modifier::Above,
        "below" => Modifier::Below,
        "in" => Modifier::In,
        "not-in" => Modifier::NotIn,
        "identifier" => Modifier::Identifier,
        "of-type" => Modifier::OfType,
        other => Modifier::Type(static_type(other).ok_or(ErrorKind::UnknownModifier)?),
    })
}

/// Checks that `modifier` applies to a parameter of `kind` whose targets are `targets`
/// (R4, 3.1.1.5): `:missing` on every kind; string `:exact` `:contains`; token `:text`
/// `:not` `:above` `:below` `:in` `:not-in` `:of-type`; uri `:above` `:below`; reference
/// `:[type]` `:identifier` `:above` `:below`. `:of-type` needs a token on an Identifier.
pub fn check(modifier: Modifier, param: &ParamRef) -> Result<(), ErrorKind> {
    use Modifier as M;
    use ParamKind as K;
    let kind = param.kind;
    let targets = param.targets();
    if modifier == M::OfType && kind == K::Token && !on_identifier(param) {
        return Err(ErrorKind::ModifierNotAllowed {
            modifier: modifier.code().to_owned(),
            kind: "token (not Identifier)",
        });
    }
    let ok = match (kind, modifier) {
        (_, M::Missing) => true,
        (K::String, M::Exact | M::Contains) => true,
        (K::Token, M::Text | M::Not | M::Above | M::Below | M::In | M::NotIn | M::OfType) => true,
        (K::Uri, M::Above | M::Below) => true,
        (K::Reference, M::Identifier | M::Above | M::Below) => true,
        (K::Reference, M::Type(t)) => {
            if !targets.is_empty() && !targets.contains(&t) {
                return Err(ErrorKind::Chain(format!(
                    "the type modifier ':{t}' is not a target type of the parameter"
                )));
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ErrorKind::ModifierNotAllowed {
            modifier: modifier.code().to_owned(),
            kind: kind.code(),
        })
    }
}

/// True when the parameter's expression selects an `Identifier` element on one of its types
/// (each `|`-separated path of the expression that is a plain element path is looked up).
fn on_identifier(param: &ParamRef) -> bool {
    param.defs.iter().any(|(ty, def)| {
        def.expression.split('|').map(str::trim).any(|path| {
            path.strip_prefix(ty)
                .is_some_and(|rest| rest.starts_with('.'))
                && defs::element_def(path).is_some_and(|e| {
                    e.types
                        .iter()
                        .any(|&t| defs::type_def(t).name == "Identifier")
                })
        })
    })
}
