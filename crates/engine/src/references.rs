//! Rewriting references inside a transaction: `urn:uuid:` and `urn:oid:` fullUrls become the
//! `Type/id` the server assigned, wherever they occur (contained resources and extensions
//! included, since the walk covers the whole resource).

use std::collections::HashMap;

use serde_json::Value;

/// True for the placeholder fullUrls a transaction must resolve.
pub(crate) fn is_placeholder(url: &str) -> bool {
    url.starts_with("urn:uuid:") || url.starts_with("urn:oid:")
}

/// Replaces every `reference` whose value is a key of `map`. Returns the JSON path of the
/// first placeholder reference that no entry of the bundle defines, if any.
pub(crate) fn rewrite(
    value: &mut Value,
    map: &HashMap<String, String>,
    path: &mut String,
) -> Option<String> {
    match value {
        Value::Object(obj) => {
            let mut unresolved = None;
            for (key, child) in obj.iter_mut() {
                if key == "reference"
                    && let Value::String(reference) = child
                {
                    if let Some(target) = map.get(reference.as_str()) {
                        *reference = target.clone();
                    } else if is_placeholder(reference) && unresolved.is_none() {
                        unresolved = Some(format!("{path}.reference"));
                    }
                    continue;
                }
                let len = path.len();
                path.push('.');
                path.push_str(key);
                let found = rewrite(child, map, path);
                path.truncate(len);
                unresolved = unresolved.or(found);
            }
            unresolved
        }
        Value::Array(items) => {
            let mut unresolved = None;
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = rewrite(item, map, path);
                path.truncate(len);
                unresolved = unresolved.or(found);
            }
            unresolved
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewrites_everywhere_and_reports_dangling_placeholders() {
        let map = HashMap::from([("urn:uuid:1".to_string(), "Patient/p1".to_string())]);
        let mut v = json!({
            "subject": {"reference": "urn:uuid:1"},
            "contained": [{"resourceType": "Provenance", "target": [{"reference": "urn:uuid:1"}]}],
            "extension": [{"url": "x", "valueReference": {"reference": "urn:uuid:1"}}],
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
        assert_eq!(v["performer"][0]["reference"], "Practitioner/abc");
        assert_eq!(
            dangling.as_deref(),
            Some("Observation.performer[1].reference")
        );
    }
}
