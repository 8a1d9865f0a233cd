//! The FHIR type system over the model's tables: the type of a JSON node, navigation to
//! children (choice elements, `_name` primitive siblings), and `is`/`as` tests.
//!
//! This is the adapter between FHIRPath and `caduceus-model`: where the tables know the
//! node (the usual case), the declared type of each child comes from its element definition;
//! where they do not (unknown extensions of the model, bare JSON), the JSON shape decides.

use crate::ast::TypeSpec;
use crate::error::EvalError;
use crate::value::{Item, Node};
use caduceus_model::defs::{self, NONE, NodeDef, TypeId, TypeKind, type_ids};
use serde_json::Value;

/// The resource type of a JSON object with a known `resourceType`.
pub fn resource_type_of(v: &Value) -> Option<TypeId> {
    let name = v.as_object()?.get("resourceType")?.as_str()?;
    defs::type_by_name(name)
}

/// The name of a type id, if it is one.
pub fn type_name(ty: TypeId) -> Option<&'static str> {
    (ty != NONE).then(|| defs::type_def(ty).name)
}

/// True when `ty` is `ancestor` or derives from it.
pub fn derives_from(mut ty: TypeId, ancestor: TypeId) -> bool {
    let mut guard = 0;
    while ty != NONE && guard < 16 {
        if ty == ancestor {
            return true;
        }
        ty = defs::type_def(ty).base;
        guard += 1;
    }
    false
}

/// True for Quantity and its profiles (Age, Count, Distance, Duration, ...).
pub fn is_quantity_type(ty: TypeId) -> bool {
    ty != NONE && derives_from(ty, type_ids::Quantity)
}

/// The FHIR type name of a node, from the model or inferred from the JSON shape.
pub fn node_type_name(n: &Node<'_>) -> &'static str {
    if let Some(name) = type_name(n.ty) {
        return name;
    }
    match n.value {
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(x)) if x.as_str().contains(['.', 'e', 'E']) => "decimal",
        Some(Value::Number(_)) => "integer",
        Some(Value::String(_)) => "string",
        _ => "Element",
    }
}

fn node_def(n: &Node<'_>) -> Option<&'static NodeDef> {
    if n.node != NONE {
        return Some(defs::node(n.node));
    }
    if n.ty == NONE {
        return None;
    }
    let t = defs::type_def(n.ty);
    (t.node != NONE).then(|| defs::node(t.node))
}

/// The `_name` sibling of property `name`, looked up without allocating.
fn underscore<'v>(obj: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    let mut buf = [0u8; 96];
    let n = name.len();
    if n >= buf.len() {
        return obj.get(&format!("_{name}"));
    }
    buf[0] = b'_';
    buf[1..=n].copy_from_slice(name.as_bytes());
    obj.get(std::str::from_utf8(&buf[..=n]).ok()?)
}

/// Pushes the child nodes of `value`/`ext` (each possibly an array) with the given type.
fn push_children<'a>(
    value: Option<&'a Value>,
    ext: Option<&'a Value>,
    ty: TypeId,
    node: u16,
    out: &mut Vec<Item<'a>>,
) {
    let fix = |v: Option<&'a Value>| -> TypeId {
        let abstract_resource = ty == NONE
            || (defs::type_def(ty).kind == TypeKind::Resource && defs::type_def(ty).is_abstract);
        if abstract_resource {
            v.and_then(resource_type_of).unwrap_or(ty)
        } else {
            ty
        }
    };
    match (value, ext) {
        (Some(Value::Array(vs)), e) => {
            let es = e.and_then(Value::as_array);
            for (i, v) in vs.iter().enumerate() {
                let e = es.and_then(|es| es.get(i)).filter(|e| !e.is_null());
                if v.is_null() && e.is_none() {
                    continue;
                }
                let v = (!v.is_null()).then_some(v);
                out.push(Item::Node(Node {
                    value: v,
                    ext: e,
                    ty: fix(v),
                    node,
                }));
            }
        }
        (None, Some(Value::Array(es))) => {
            for e in es.iter().filter(|e| !e.is_null()) {
                out.push(Item::Node(Node {
                    value: None,
                    ext: Some(e),
                    ty,
                    node,
                }));
            }
        }
        (Some(Value::Null), None) | (None, None) => {}
        (v, e) => {
            let v = v.filter(|v| !v.is_null());
            out.push(Item::Node(Node {
                value: v,
                ext: e,
                ty: fix(v),
                node,
            }))
        }
    }
}

/// The type a choice key's suffix names (`Quantity` in `valueQuantity`, `string` in
/// `valueString`), for JSON the model does not describe.
fn type_of_suffix(suffix: &str) -> TypeId {
    if let Some(t) = defs::type_by_name(suffix) {
        return t;
    }
    let mut lower = String::with_capacity(suffix.len());
    let mut chars = suffix.chars();
    if let Some(c) = chars.next() {
        lower.push(c.to_ascii_lowercase());
    }
    lower.extend(chars);
    defs::type_by_name(&lower).unwrap_or(NONE)
}

/// What the model says about a name navigated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defined {
    /// The node's type defines the element.
    Yes,
    /// The node's type is known and does not define it.
    No,
    /// The model does not describe the node (or it is a primitive).
    Unknown,
}

/// Navigates from `n` to its children called `name`, appending them to `out`, and says
/// whether the node's type defines such an element. A JSON property name of a choice
/// (`valueQuantity`) is an error in `strict` mode: FHIRPath names the element `value`.
pub fn children<'a>(
    n: &Node<'a>,
    name: &str,
    strict: bool,
    out: &mut Vec<Item<'a>>,
) -> Result<Defined, EvalError> {
    let obj = match n.value {
        Some(Value::Object(o)) => o,
        _ => {
            // a primitive: only `id` and `extension`, which live in the `_name` sibling
            if let Some(Value::Object(e)) = n.ext {
                let ty = match name {
                    "id" => type_ids::string,
                    "extension" => type_ids::Extension,
                    _ => NONE,
                };
                if ty != NONE {
                    push_children(e.get(name), None, ty, NONE, out);
                }
            }
            return Ok(Defined::Unknown);
        }
    };
    if let Some(def) = node_def(n) {
        if let Some(k) = def.key(name) {
            let el = &def.elements[usize::from(k.element)];
            if el.is_choice() && strict {
                return Err(EvalError::Semantic(format!(
                    "'{name}' is a JSON property name; in FHIRPath the element is '{}'",
                    el.name.trim_end_matches("[x]")
                )));
            }
            push_children(obj.get(name), underscore(obj, name), k.ty, el.node, out);
            return Ok(Defined::Yes);
        }
        let choice = def.elements.iter().position(|e| {
            e.is_choice() && e.name.len() == name.len() + 3 && e.name.starts_with(name)
        });
        if let Some(idx) = choice {
            let el = &def.elements[idx];
            for (key, v) in obj {
                if key.len() > name.len()
                    && key.starts_with(name)
                    && let Some(k) = def.key(key)
                    && usize::from(k.element) == idx
                {
                    push_children(Some(v), underscore(obj, key), k.ty, el.node, out);
                }
            }
            // a primitive choice with only its `_valueX` sibling
            for (key, e) in obj {
                if let Some(base) = key.strip_prefix('_')
                    && base.len() > name.len()
                    && base.starts_with(name)
                    && !obj.contains_key(base)
                    && let Some(k) = def.key(base)
                    && usize::from(k.element) == idx
                {
                    push_children(None, Some(e), k.ty, el.node, out);
                }
            }
            return Ok(Defined::Yes);
        }
        if def.element(name).is_some() {
            return Ok(Defined::Yes);
        }
        if name != "resourceType" {
            return Ok(Defined::No);
        }
    }
    // No model information: follow the JSON.
    if obj.contains_key(name) || underscore(obj, name).is_some() {
        push_children(obj.get(name), underscore(obj, name), NONE, NONE, out);
        return Ok(Defined::Unknown);
    }
    for (key, v) in obj {
        if let Some(suffix) = key.strip_prefix(name)
            && suffix.starts_with(|c: char| c.is_ascii_uppercase())
        {
            push_children(
                Some(v),
                underscore(obj, key),
                type_of_suffix(suffix),
                NONE,
                out,
            );
        }
    }
    Ok(Defined::Unknown)
}

/// Whether the type `t` defines an element `name` (as FHIRPath names it: `value` for `value[x]`).
pub fn defines(t: TypeId, name: &str) -> Defined {
    let td = defs::type_def(t);
    if td.node == NONE {
        return Defined::Unknown;
    }
    let def = defs::node(td.node);
    let choice = def
        .elements
        .iter()
        .any(|e| e.is_choice() && e.name.len() == name.len() + 3 && e.name.starts_with(name));
    if def.element(name).is_some() || choice {
        Defined::Yes
    } else {
        Defined::No
    }
}

/// Every child node of `n` (for `children()`/`descendants()`), in JSON order.
pub fn all_children<'a>(n: &Node<'a>, out: &mut Vec<Item<'a>>) {
    let Some(Value::Object(obj)) = n.value else {
        if let Some(Value::Object(e)) = n.ext {
            push_children(e.get("extension"), None, type_ids::Extension, NONE, out);
        }
        return;
    };
    let def = node_def(n);
    for (key, v) in obj {
        if key == "resourceType" {
            continue;
        }
        let (base, ext) = match key.strip_prefix('_') {
            Some(b) if obj.contains_key(b) => continue,
            Some(b) => (b, Some(v)),
            None => (key.as_str(), underscore(obj, key)),
        };
        let value = if ext.is_some() && key.starts_with('_') {
            None
        } else {
            Some(v)
        };
        let (ty, node) = match def.and_then(|d| d.key(base).map(|k| (d, k))) {
            Some((d, k)) => (k.ty, d.elements[usize::from(k.element)].node),
            None => (NONE, NONE),
        };
        push_children(value, ext, ty, node, out);
    }
}

/// How a type specifier resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedType {
    /// A System type (`System.String`, or `String` unqualified).
    System(&'static str),
    /// A FHIR type of the model.
    Fhir(TypeId),
    /// A name that is neither.
    Unknown,
}

const SYSTEM_TYPES: [&str; 9] = [
    "Any", "Boolean", "Integer", "Decimal", "String", "Date", "DateTime", "Time", "Quantity",
];

/// Resolves a type specifier: FHIR names first, then System names.
pub fn resolve_type(spec: &TypeSpec) -> ResolvedType {
    let system = || {
        SYSTEM_TYPES
            .iter()
            .find(|s| **s == spec.name)
            .map_or(ResolvedType::Unknown, |s| ResolvedType::System(s))
    };
    match spec.namespace.as_deref() {
        Some("System") => system(),
        Some("FHIR") => {
            defs::type_by_name(&spec.name).map_or(ResolvedType::Unknown, ResolvedType::Fhir)
        }
        _ => match defs::type_by_name(&spec.name) {
            Some(t) => ResolvedType::Fhir(t),
            None => system(),
        },
    }
}

/// True when `item` is exactly of the type for a FHIR primitive (`code` is not taken `as`
/// `string`), or of the type or a subtype of it otherwise (`as`/`ofType` semantics).
pub fn is_cast_type(item: &Item<'_>, ty: ResolvedType) -> bool {
    match (item, ty) {
        (Item::Node(n), ResolvedType::Fhir(t)) if defs::type_def(t).kind == TypeKind::Primitive => {
            let own = if n.ty == NONE {
                defs::type_by_name(node_type_name(n)).unwrap_or(NONE)
            } else {
                n.ty
            };
            own == t
        }
        _ => is_type(item, ty),
    }
}

/// True when `item` is of the type (or a subtype of it).
pub fn is_type(item: &Item<'_>, ty: ResolvedType) -> bool {
    match (item, ty) {
        (_, ResolvedType::Unknown) => false,
        (Item::Node(n), ResolvedType::Fhir(t)) => {
            let own = if n.ty == NONE {
                defs::type_by_name(node_type_name(n)).unwrap_or(NONE)
            } else {
                n.ty
            };
            derives_from(own, t)
        }
        (Item::Node(_), ResolvedType::System(s)) => s == "Any",
        (other, ResolvedType::System(s)) => s == "Any" || other.type_name().1 == s,
        (_, ResolvedType::Fhir(_)) => false,
    }
}
