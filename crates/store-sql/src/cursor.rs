//! Paging cursors: the sort key of a page's last row, plus a hash of the canonical query
//! (`SearchQuery::to_query_string`), as base64url of a small JSON document. A cursor given
//! with another query (different hash), or one that does not decode to the expected number
//! of typed values, is `StoreError::InvalidCursor`. Cursors are not secret: forging one only
//! lets a client start a page at a position of its choosing, which `_sort` allows anyway.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caduceus_store::StoreError;

use crate::frag::SqlValue as Value;
use serde_json::{Value as Json, json};
/// FNV-1a over the canonical query text: detects a cursor replayed with another query.
pub(crate) fn query_hash(canonical: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canonical.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Encodes the last row's key.
pub(crate) fn encode(hash: u64, keys: &[Value]) -> String {
    let k: Vec<Json> = keys
        .iter()
        .map(|v| match v {
            Value::Null => json!(["n"]),
            Value::Int(i) => json!(["i", i]),
            // Bit pattern: exact, whatever the JSON float parser does.
            Value::Real(r) => json!(["r", r.to_bits()]),
            Value::Text(t) => json!(["t", t]),
        })
        .collect();
    let doc = json!({"h": format!("{hash:016x}"), "k": k});
    URL_SAFE_NO_PAD.encode(doc.to_string())
}

/// Decodes a cursor issued for the query with `hash`, holding `n` key values.
pub(crate) fn decode(cursor: &str, hash: u64, n: usize) -> Result<Vec<Value>, StoreError> {
    let bad = || StoreError::InvalidCursor;
    if cursor.len() > 64 * 1024 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let doc: Json = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if doc.get("h").and_then(Json::as_str) != Some(format!("{hash:016x}").as_str()) {
        return Err(bad());
    }
    let keys = doc.get("k").and_then(Json::as_array).ok_or_else(bad)?;
    if keys.len() != n {
        return Err(bad());
    }
    keys.iter()
        .map(|k| {
            let pair = k.as_array().ok_or_else(bad)?;
            match (pair.first().and_then(Json::as_str), pair.get(1)) {
                (Some("n"), None) => Ok(Value::Null),
                (Some("i"), Some(v)) => v.as_i64().map(Value::Int).ok_or_else(bad),
                (Some("r"), Some(v)) => v
                    .as_u64()
                    .map(|b| Value::Real(f64::from_bits(b)))
                    .ok_or_else(bad),
                (Some("t"), Some(v)) => v
                    .as_str()
                    .map(|s| Value::Text(s.to_owned()))
                    .ok_or_else(bad),
                _ => Err(bad()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let keys = vec![
            Value::Int(0),
            Value::Real(0.1 + 0.2),
            Value::Text("Patient".into()),
            Value::Null,
        ];
        let c = encode(7, &keys);
        assert_eq!(decode(&c, 7, 4).expect("decodes"), keys);
        assert!(matches!(decode(&c, 8, 4), Err(StoreError::InvalidCursor)));
        assert!(matches!(decode(&c, 7, 3), Err(StoreError::InvalidCursor)));
        assert!(matches!(
            decode("%%%", 7, 4),
            Err(StoreError::InvalidCursor)
        ));
        assert!(matches!(decode("", 7, 0), Err(StoreError::InvalidCursor)));
    }
}
