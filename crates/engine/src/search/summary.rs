//! `_summary=true`: the summary view of a resource, driven by the definitions' `isSummary`
//! flags (search.html#summary).
//!
//! Kept: `resourceType`, `id` and `meta` of every resource, and every element that is
//! marked `isSummary` or mandatory (`min` ≥ 1); complex and backbone elements are reduced
//! the same way, recursively (so a `HumanName` keeps its summary elements, which in R4 are
//! most of them, and a nested resource such as `Bundle.entry.resource` its own summary).
//! A primitive's `_name` sibling (its id and extensions) goes with its value. Objects and
//! arrays left empty are dropped, so the result is still valid FHIR JSON.

use caduceus_model::defs::{self, NONE, NodeDef, TypeKind};
use serde_json::{Map, Value};

/// Reduces a resource (a JSON object with `resourceType`) to its summary elements, in place.
/// A resource of an unknown type is left as it is (stored resources always have a known
/// type).
pub(crate) fn summarize_resource(resource: &mut Map<String, Value>) {
    let Some(type_id) = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .and_then(defs::type_by_name)
    else {
        return;
    };
    let def = defs::type_def(type_id);
    if def.kind != TypeKind::Resource {
        return;
    }
    reduce(resource, defs::node(def.node), true);
}

/// Keeps the summary and mandatory elements of `map`, an instance of `node`.
fn reduce(map: &mut Map<String, Value>, node: &NodeDef, is_resource: bool) {
    map.retain(|key, value| {
        if is_resource && matches!(key.as_str(), "resourceType" | "id" | "meta") {
            return true;
        }
        let base = key.strip_prefix('_').unwrap_or(key);
        let Some(k) = node.key(base) else {
            return false;
        };
        let Some(element) = node.elements.get(usize::from(k.element)) else {
            return false;
        };
        if !element.is_summary() && element.min == 0 {
            return false;
        }
        if key.starts_with('_') {
            return true;
        }
        let def = defs::type_def(k.ty);
        match def.kind {
            TypeKind::Primitive => true,
            TypeKind::Resource => each_object(value, summarize_resource),
            TypeKind::Complex => {
                let child = if element.node != NONE {
                    element.node
                } else {
                    def.node
                };
                let child = defs::node(child);
                each_object(value, |m| reduce(m, child, false))
            }
        }
    });
}

/// Applies `f` to the object (or each object of the array) `value`, drops the objects left
/// empty, and says whether anything is left.
fn each_object(value: &mut Value, mut f: impl FnMut(&mut Map<String, Value>)) -> bool {
    match value {
        Value::Object(map) => {
            f(map);
            !map.is_empty()
        }
        Value::Array(items) => {
            items.retain_mut(|item| match item {
                Value::Object(map) => {
                    f(map);
                    !map.is_empty()
                }
                _ => true,
            });
            !items.is_empty()
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summarize(v: Value) -> Value {
        let Value::Object(mut map) = v else {
            panic!("not an object")
        };
        summarize_resource(&mut map);
        Value::Object(map)
    }

    #[test]
    fn patient_keeps_summary_elements_only() {
        let out = summarize(json!({
            "resourceType": "Patient", "id": "p1",
            "meta": {"versionId": "1", "tag": [{"code": "t"}]},
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
            "identifier": [{"system": "urn:s", "value": "1", "period": {"start": "2020"}}],
            "name": [{"family": "Doe", "given": ["Ann"], "_given": [{"id": "g"}]}],
            "gender": "female", "birthDate": "2000-01-01",
            "maritalStatus": {"text": "married"},
            "photo": [{"contentType": "image/png", "data": "AAAA"}],
            "contact": [{"name": {"family": "Roe"}}],
            "communication": [{"language": {"text": "en"}, "preferred": true}],
            "link": [{"other": {"reference": "Patient/2"}, "type": "seealso"}],
            "extension": [{"url": "http://x", "valueString": "y"}]
        }));
        let keys: Vec<&str> = out
            .as_object()
            .map_or(vec![], |m| m.keys().map(String::as_str).collect());
        for k in [
            "resourceType",
            "id",
            "meta",
            "identifier",
            "name",
            "gender",
            "birthDate",
            "link",
        ] {
            assert!(keys.contains(&k), "{k} kept: {out}");
        }
        for k in [
            "text",
            "maritalStatus",
            "photo",
            "contact",
            "communication",
            "extension",
        ] {
            assert!(!keys.contains(&k), "{k} dropped: {out}");
        }
        // Datatypes: their summary elements (most in R4) recursively, `_given` with `given`.
        assert_eq!(out["identifier"][0]["period"]["start"], "2020");
        assert_eq!(out["name"][0]["_given"][0]["id"], "g");
        // Mandatory elements of kept backbone elements stay even when not summary.
        assert_eq!(out["link"][0]["type"], "seealso");
        assert_eq!(out["meta"]["tag"][0]["code"], "t");
    }

    #[test]
    fn observation_drops_reference_range_and_keeps_mandatory() {
        let out = summarize(json!({
            "resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"},
            "valueQuantity": {"value": 60, "unit": "/min"},
            "interpretation": [{"text": "normal"}],
            "note": [{"text": "a note"}],
            "referenceRange": [{"low": {"value": 50}}],
            "component": [{"code": {"text": "c"}, "valueString": "v", "interpretation": [{"text": "n"}]}]
        }));
        assert!(out.get("referenceRange").is_none(), "{out}");
        assert!(out.get("note").is_none(), "{out}");
        assert!(out.get("interpretation").is_none(), "{out}");
        assert_eq!(out["status"], "final");
        assert_eq!(out["valueQuantity"]["value"], 60);
        assert_eq!(out["component"][0]["valueString"], "v");
        assert!(out["component"][0].get("interpretation").is_none(), "{out}");
    }

    #[test]
    fn nested_resources_are_summarised_too() {
        let out = summarize(json!({
            "resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": "urn:x", "resource": {"resourceType": "Patient", "id": "a", "photo": [{"data": "AAAA"}], "gender": "male"}}]
        }));
        assert_eq!(out["entry"][0]["resource"]["gender"], "male");
        assert!(out["entry"][0]["resource"].get("photo").is_none(), "{out}");
    }
}
