//! The canonical stored form of a resource.

use serde_json::{Map, Value};

use crate::ids::format_instant;

/// Builds the canonical stored JSON of a resource: compact, `resourceType`, `id` and `meta`
/// first, then every other element in the order the client sent it. The server owns
/// `meta.versionId` and `meta.lastUpdated`; whatever the client put there is replaced, the
/// rest of `meta` (profile, security, tag, source) is kept.
///
/// The input must be a JSON object (validation guarantees it before a write).
pub fn canonical_bytes(
    resource: &Value,
    id: &str,
    version: u64,
    last_updated_micros: i64,
) -> Vec<u8> {
    let empty = Map::new();
    let source = resource.as_object().unwrap_or(&empty);
    let mut out = Map::with_capacity(source.len() + 2);
    if let Some(rt) = source.get("resourceType") {
        out.insert("resourceType".into(), rt.clone());
    }
    out.insert("id".into(), Value::String(id.to_owned()));
    let mut meta = match source.get("meta") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    meta.remove("versionId");
    meta.remove("lastUpdated");
    let mut ordered_meta = Map::with_capacity(meta.len() + 2);
    ordered_meta.insert("versionId".into(), Value::String(version.to_string()));
    ordered_meta.insert(
        "lastUpdated".into(),
        Value::String(format_instant(last_updated_micros)),
    );
    ordered_meta.extend(meta);
    out.insert("meta".into(), Value::Object(ordered_meta));
    for (k, v) in source {
        if k != "resourceType" && k != "id" && k != "meta" {
            out.insert(k.clone(), v.clone());
        }
    }
    // Serialising a Value of strings, numbers (kept as text) and maps cannot fail.
    serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_is_the_servers_and_decimals_survive() {
        let input: Value = serde_json::from_str(
            r#"{"valueQuantity":{"value":200.00},"meta":{"versionId":"9","tag":[{"code":"x"}]},"resourceType":"Observation"}"#,
        )
        .unwrap();
        let out = String::from_utf8(canonical_bytes(&input, "a1", 3, 0)).unwrap();
        assert_eq!(
            out,
            r#"{"resourceType":"Observation","id":"a1","meta":{"versionId":"3","lastUpdated":"1970-01-01T00:00:00.000000Z","tag":[{"code":"x"}]},"valueQuantity":{"value":200.00}}"#
        );
    }
}
