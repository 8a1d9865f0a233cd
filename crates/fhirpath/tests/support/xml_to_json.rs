//! A minimal FHIR XML → FHIR JSON converter for the suite's XML-only inputs, driven by the
//! model's element tables (which elements repeat, which JSON type a primitive has).
//! Enough for the test inputs: no comments, no CDATA, narrative `div` copied as written.

use caduceus_model::defs::{self, JsonKind, NONE, NodeDef, TypeKind};
use serde_json::{Map, Value};

const FHIR_NS: &str = "http://hl7.org/fhir";

/// Converts a FHIR XML resource document into its JSON form.
pub fn convert(xml: &str) -> Option<Value> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    resource(doc.root_element(), xml)
}

fn resource(el: roxmltree::Node<'_, '_>, src: &str) -> Option<Value> {
    let name = el.tag_name().name();
    let ty = defs::type_by_name(name)?;
    let mut obj = Map::new();
    obj.insert("resourceType".into(), Value::String(name.into()));
    fill(&mut obj, el, defs::node(defs::type_def(ty).node), src);
    Some(Value::Object(obj))
}

fn primitive(text: &str, kind: JsonKind) -> Value {
    match kind {
        JsonKind::Boolean => Value::Bool(text == "true"),
        JsonKind::Number => serde_json::from_str(text).unwrap_or(Value::String(text.into())),
        _ => Value::String(text.into()),
    }
}

fn fill(
    obj: &mut Map<String, Value>,
    el: roxmltree::Node<'_, '_>,
    def: &'static NodeDef,
    src: &str,
) {
    for attr in el.attributes() {
        if matches!(attr.name(), "id" | "url") && def.key(attr.name()).is_some() {
            obj.insert(attr.name().into(), Value::String(attr.value().into()));
        }
    }
    for child in el.children().filter(|c| c.is_element()) {
        let key = child.tag_name().name();
        let Some(k) = def.key(key) else { continue };
        let element = &def.elements[usize::from(k.element)];
        let td = defs::type_def(k.ty);
        let (value, ext) = if td.name == "xhtml" {
            (Some(Value::String(src[child.range()].to_string())), None)
        } else if td.kind == TypeKind::Resource {
            let inner = child.children().find(|c| c.is_element());
            (inner.and_then(|i| resource(i, src)), None)
        } else if td.kind == TypeKind::Primitive {
            let v = child.attribute("value").map(|t| primitive(t, td.json));
            let mut e = Map::new();
            fill(&mut e, child, defs::node(td.node), src);
            (v, (!e.is_empty()).then_some(Value::Object(e)))
        } else {
            let node = if element.node != NONE {
                element.node
            } else {
                td.node
            };
            let mut o = Map::new();
            if node != NONE {
                fill(&mut o, child, defs::node(node), src);
            }
            (Some(Value::Object(o)), None)
        };
        if element.is_array() {
            let len = obj.get(key).and_then(Value::as_array).map_or(0, Vec::len);
            let ext_len = obj
                .get(&format!("_{key}"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let n = len.max(ext_len);
            if value.is_some() || len > 0 {
                let arr = obj
                    .entry(key)
                    .or_insert_with(|| Value::Array(vec![Value::Null; n]));
                if let Value::Array(a) = arr {
                    a.resize(n, Value::Null);
                    a.push(value.unwrap_or(Value::Null));
                }
            }
            if ext.is_some() || ext_len > 0 {
                let arr = obj
                    .entry(format!("_{key}"))
                    .or_insert_with(|| Value::Array(vec![Value::Null; n]));
                if let Value::Array(a) = arr {
                    a.resize(n, Value::Null);
                    a.push(ext.unwrap_or(Value::Null));
                }
            }
        } else {
            if let Some(v) = value {
                obj.insert(key.into(), v);
            }
            if let Some(e) = ext {
                obj.insert(format!("_{key}"), e);
            }
        }
    }
    let _ = FHIR_NS;
}
