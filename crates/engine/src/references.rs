//! Rewriting links inside a transaction: the fullUrls of its entries (`urn:uuid:`,
//! `urn:oid:`, or absolute URLs) become the `Type/id` the server assigned, wherever the
//! specification says (http.html#trules): `Reference.reference`, elements of type `uri`,
//! `url`, `oid` and `uuid`, and `href`/`src` attributes in the narrative — in contained
//! resources and extensions too. Elements of type `canonical` are not replaced: they name
//! definitions by their canonical URL, not bundle entries.
//!
//! The walk follows the model's element tables, so it knows each element's type. Where the
//! JSON has a property the tables do not know (the validator refuses those anyway), it falls
//! back to rewriting only `reference` properties.

use std::collections::HashMap;

use caduceus_model::defs::{self, NONE, NodeDef, TypeKind};
use serde_json::Value;

/// True for the placeholder fullUrls a transaction must resolve.
pub(crate) fn is_placeholder(url: &str) -> bool {
    url.starts_with("urn:uuid:") || url.starts_with("urn:oid:")
}

/// Primitive types whose values are links the specification asks to rewrite.
const LINK_TYPES: &[&str] = &["oid", "uri", "url", "uuid"];

struct Rewriter<'m> {
    map: &'m HashMap<String, String>,
    /// The first `Reference.reference` naming a placeholder no entry defines.
    dangling: Option<String>,
}

/// Rewrites the links of one resource. Returns the JSON path of the first placeholder
/// reference that no entry of the bundle defines, if any. `path` is where the resource sits
/// (e.g. `Bundle.entry[3].resource`).
pub(crate) fn rewrite(
    value: &mut Value,
    map: &HashMap<String, String>,
    path: &mut String,
) -> Option<String> {
    let mut rewriter = Rewriter {
        map,
        dangling: None,
    };
    rewriter.resource(value, path);
    rewriter.dangling
}

impl Rewriter<'_> {
    fn resource(&mut self, value: &mut Value, path: &mut String) {
        let node = value
            .get("resourceType")
            .and_then(Value::as_str)
            .and_then(defs::type_by_name)
            .map(|t| defs::node(defs::type_def(t).node));
        match node {
            Some(node) => self.object(value, node, path),
            None => self.untyped(value, path),
        }
    }

    fn object(&mut self, value: &mut Value, node: &'static NodeDef, path: &mut String) {
        let Value::Object(obj) = value else { return };
        for (key, child) in obj.iter_mut() {
            let len = path.len();
            path.push('.');
            path.push_str(key);
            match node.key(key) {
                Some(_) if node.path == "Reference" && key == "reference" => {
                    if let Value::String(s) = child {
                        self.reference(s, path);
                    }
                }
                Some(k) => {
                    let element = &node.elements[usize::from(k.element)];
                    let ty = defs::type_def(k.ty);
                    let child_node = if element.node != NONE {
                        defs::node(element.node)
                    } else {
                        defs::node(ty.node)
                    };
                    self.each(child, path, |this, item, path| match ty.kind {
                        TypeKind::Primitive if LINK_TYPES.contains(&ty.name) => this.link(item),
                        TypeKind::Primitive if ty.name == "xhtml" => this.narrative(item),
                        TypeKind::Primitive => {}
                        TypeKind::Resource => this.resource(item, path),
                        TypeKind::Complex => this.object(item, child_node, path),
                    });
                }
                // `_name` siblings of primitives hold id and extensions.
                None if key.starts_with('_') => {
                    let element_node =
                        defs::type_by_name("Element").map(|t| defs::node(defs::type_def(t).node));
                    self.each(child, path, |this, item, path| match element_node {
                        Some(n) => this.object(item, n, path),
                        None => this.untyped(item, path),
                    });
                }
                None => self.untyped(child, path),
            }
            path.truncate(len);
        }
    }

    /// Applies `f` to a value or to each item of an array, with `[i]` in the path.
    fn each(
        &mut self,
        value: &mut Value,
        path: &mut String,
        mut f: impl FnMut(&mut Self, &mut Value, &mut String),
    ) {
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    f(self, item, path);
                    path.truncate(len);
                }
            }
            other => f(self, other, path),
        }
    }

    fn reference(&mut self, reference: &mut String, path: &str) {
        if let Some(target) = self.map.get(reference.as_str()) {
            *reference = target.clone();
        } else if is_placeholder(reference) && self.dangling.is_none() {
            self.dangling = Some(path.to_owned());
        }
    }

    fn link(&mut self, value: &mut Value) {
        if let Value::String(s) = value
            && let Some(target) = self.map.get(s.as_str())
        {
            *s = target.clone();
        }
    }

    /// `href="..."` and `src="..."` attributes naming an entry. Scans the attributes and
    /// looks each value up, so the cost does not grow with the number of entries.
    fn narrative(&mut self, value: &mut Value) {
        let Value::String(div) = value else { return };
        let mut out = String::new();
        let mut copied = 0;
        let mut at = 0;
        while let Some(found) = div[at..].find("=").map(|i| at + i) {
            at = found + 1;
            let is_link = div[..found].ends_with("href") || div[..found].ends_with("src");
            let quote = div[at..].chars().next();
            let (true, Some(q @ ('"' | '\''))) = (is_link, quote) else {
                continue;
            };
            let start = at + 1;
            let Some(len) = div[start..].find(q) else {
                break;
            };
            if let Some(target) = self.map.get(&div[start..start + len]) {
                out.push_str(&div[copied..start]);
                out.push_str(target);
                copied = start + len;
            }
            at = start + len;
        }
        if copied > 0 {
            out.push_str(&div[copied..]);
            *div = out;
        }
    }

    /// A part of the JSON the tables do not describe: only `reference` properties.
    fn untyped(&mut self, value: &mut Value, path: &mut String) {
        match value {
            Value::Object(obj) => {
                for (key, child) in obj.iter_mut() {
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    match child {
                        Value::String(s) if key == "reference" => self.reference(s, path),
                        _ => self.untyped(child, path),
                    }
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.untyped(item, path);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewrites_references_links_and_narrative_and_reports_dangling_placeholders() {
        let map = HashMap::from([("urn:uuid:1".to_string(), "Patient/p1".to_string())]);
        let mut v = json!({
            "resourceType": "Observation",
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"urn:uuid:1\">p</a></div>"},
            "subject": {"reference": "urn:uuid:1"},
            "contained": [{"resourceType": "Provenance", "target": [{"reference": "urn:uuid:1"}]}],
            "extension": [
                {"url": "x", "valueReference": {"reference": "urn:uuid:1"}},
                {"url": "y", "valueUri": "urn:uuid:1"},
                {"url": "z", "valueCanonical": "urn:uuid:1"}
            ],
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:1"}],
            "performer": [{"reference": "Practitioner/abc"}, {"reference": "urn:uuid:2"}]
        });
        let mut path = "Observation".to_string();
        let dangling = rewrite(&mut v, &map, &mut path);
        assert_eq!(v["subject"]["reference"], "Patient/p1");
        assert_eq!(v["contained"][0]["target"][0]["reference"], "Patient/p1");
        assert_eq!(
            v["extension"][0]["valueReference"]["reference"],
            "Patient/p1"
        );
        assert_eq!(v["extension"][1]["valueUri"], "Patient/p1");
        assert_eq!(v["extension"][2]["valueCanonical"], "urn:uuid:1");
        assert!(
            v["text"]["div"]
                .as_str()
                .unwrap()
                .contains("href=\"Patient/p1\"")
        );
        // Identifier.value is a string, not a link: it stays.
        assert_eq!(v["identifier"][0]["value"], "urn:uuid:1");
        assert_eq!(v["performer"][0]["reference"], "Practitioner/abc");
        assert_eq!(
            dangling.as_deref(),
            Some("Observation.performer[1].reference")
        );
    }
}
