//! The FHIR-specific functions: `extension`, `hasValue`, `getValue`, `resolve`, and the
//! validation helpers that this engine implements as documented no-ops:
//!
//! - `memberOf(valueset)`: empty (no terminology service here);
//! - `conformsTo(profile)`: empty (no profile validation here);
//! - `htmlChecks()`: true (narrative XHTML is checked by the validator, not here);
//! - `elementDefinition()`: empty; `slice(structure, name)` and `checkModifiers(...)`:
//!   their input, unchanged.

use super::{Func, single};
use crate::ast::Expr;
use crate::error::EvalError;
use crate::eval::{Evaluator, Scope};
use crate::types;
use crate::value::{Item, Node};
use caduceus_model::defs::{self, NONE};
use serde_json::Value;
use std::borrow::Cow;

/// Resolves a reference string against the resource being evaluated (`#id` in `contained`),
/// the Bundle being evaluated (by `fullUrl` or `Type/id`), or else to a type-only stub whose
/// type comes from the reference (`Patient/123` → a Patient with no content).
pub(crate) fn resolve_reference<'a>(root: Option<&'a Value>, reference: &str) -> Option<Item<'a>> {
    if let Some(id) = reference.strip_prefix('#') {
        let root = root?;
        if id.is_empty() {
            return Some(Item::Node(Node::root(root)));
        }
        let found = root
            .get("contained")?
            .as_array()?
            .iter()
            .find(|c| c.get("id").and_then(Value::as_str) == Some(id))?;
        return Some(Item::Node(Node::root(found)));
    }
    let path = reference.split("/_history/").next().unwrap_or(reference);
    if let Some(bundle) =
        root.filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
        && let Some(entries) = bundle.get("entry").and_then(Value::as_array)
    {
        for e in entries {
            let Some(res) = e.get("resource") else {
                continue;
            };
            let full = e.get("fullUrl").and_then(Value::as_str);
            let matches_full = full == Some(reference) || full == Some(path);
            let rt = res.get("resourceType").and_then(Value::as_str);
            let id = res.get("id").and_then(Value::as_str);
            let matches_id = match (rt, id) {
                (Some(rt), Some(id)) => {
                    let tail = format!("{rt}/{id}");
                    path == tail || path.ends_with(&format!("/{tail}"))
                }
                _ => false,
            };
            if matches_full || matches_id {
                return Some(Item::Node(Node::root(res)));
            }
        }
    }
    if reference.starts_with("urn:") {
        return None;
    }
    let mut parts: Vec<&str> = path.trim_end_matches('/').rsplit('/').take(2).collect();
    parts.reverse();
    let [ty, _id] = parts.as_slice() else {
        return None;
    };
    let t = defs::type_by_name(ty).filter(|_| defs::is_resource_type(ty))?;
    Some(Item::Node(Node {
        value: None,
        ext: None,
        ty: t,
        node: NONE,
    }))
}

pub(super) fn call<'a>(
    ev: &mut Evaluator<'a, '_>,
    func: Func,
    input: Vec<Item<'a>>,
    args: &[Expr],
    scope: &Scope<'_, 'a>,
) -> Result<Vec<Item<'a>>, EvalError> {
    Ok(match func {
        Func::Extension => {
            let a = args
                .first()
                .ok_or_else(|| EvalError::Arity("extension".into()))?;
            let url = ev.eval(a, scope)?;
            let Some(url) = single("extension", &url)?.and_then(Item::as_str) else {
                return Ok(Vec::new());
            };
            let mut exts = Vec::new();
            for item in &input {
                if let Item::Node(n) = item {
                    let _ = types::children(n, "extension", false, &mut exts)?;
                }
            }
            exts.into_iter()
                .filter(|e| {
                    e.node()
                        .and_then(|n| n.value)
                        .and_then(|v| v.get("url"))
                        .and_then(Value::as_str)
                        == Some(url.as_ref())
                })
                .collect()
        }
        Func::HasValue => {
            let has = matches!(
                input.as_slice(),
                [Item::Node(Node { value: Some(v), .. })] if !v.is_object() && !v.is_array()
            );
            vec![Item::Boolean(has)]
        }
        Func::GetValue => match input.as_slice() {
            [Item::Node(n)] => n.primitive().into_iter().collect(),
            _ => Vec::new(),
        },
        Func::Resolve => {
            let root = ev
                .resource
                .as_ref()
                .and_then(Item::node)
                .and_then(|n| n.value);
            let mut out = Vec::new();
            for item in &input {
                let reference: Option<Cow<'a, str>> = match item {
                    Item::Node(n) if n.value.is_some_and(Value::is_object) => n
                        .value
                        .and_then(|v| v.get("reference"))
                        .and_then(Value::as_str)
                        .map(Cow::Borrowed),
                    other => other.as_str(),
                };
                if let Some(r) = reference {
                    out.extend(resolve_reference(root, &r));
                }
            }
            out
        }
        Func::ConformsTo => {
            let a = args
                .first()
                .ok_or_else(|| EvalError::Arity("conformsTo".into()))?;
            let url = ev.eval(a, scope)?;
            let Some(url) = single("conformsTo", &url)?.and_then(Item::as_str) else {
                return Ok(Vec::new());
            };
            let Some((_, path)) = url.split_once("://") else {
                return Err(EvalError::Type(format!(
                    "conformsTo: '{url}' is not a canonical URL"
                )));
            };
            if !path.contains('/') {
                return Err(EvalError::Type(format!(
                    "conformsTo: '{url}' is not a canonical URL"
                )));
            }
            // Only the core resource profiles are known here; other profiles give empty.
            match url.strip_prefix("http://hl7.org/fhir/StructureDefinition/") {
                Some(name) => {
                    let ty = defs::type_by_name(name);
                    input
                        .iter()
                        .map(|i| {
                            Item::Boolean(
                                ty.is_some_and(|t| types::is_type(i, types::ResolvedType::Fhir(t))),
                            )
                        })
                        .collect()
                }
                None => Vec::new(),
            }
        }
        Func::MemberOf | Func::ElementDefinition => Vec::new(),
        Func::HtmlChecks => vec![Item::Boolean(true)],
        Func::Slice | Func::CheckModifiers => input,
        _ => Vec::new(),
    })
}
