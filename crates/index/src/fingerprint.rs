//! The fingerprint of what the indexer extracts: every search parameter it evaluates (type,
//! code, kind, expression, components, as compiled into the model's tables) plus
//! [`EXTRACTION_VERSION`] for changes in how values are converted. A store remembers the
//! fingerprint its index rows were built with (`caduceus_store::META_INDEX_FINGERPRINT`);
//! when the binary's differs, the index is stale and `caduceus reindex` rebuilds it.

use caduceus_model::defs;

/// Bump whenever a change to the conversion code (not to the definitions, which the
/// fingerprint covers by itself) changes which rows a resource gets.
/// 1: the first indexer; 2: composites, identifier types (`:of-type`) and
/// `Reference.identifier` (`:identifier`); 3: contained resources, and local (`#id`)
/// references.
pub const EXTRACTION_VERSION: u32 = 3;

/// A short, stable hex string: the same for the same parameters and conversion code, on any
/// machine and across builds (FNV-1a 64 over a canonical listing; it detects change, it is
/// not a security measure).
pub fn fingerprint() -> String {
    let mut h = Fnv1a::new();
    h.write(format!("extraction {EXTRACTION_VERSION}\n").as_bytes());
    for ty in defs::resource_types() {
        let mut params = defs::search_params(ty);
        params.sort_by_key(|p| p.code);
        for p in params {
            h.write(ty.as_bytes());
            for part in [p.code, p.kind, p.expression] {
                h.write(b"\x1f");
                h.write(part.as_bytes());
            }
            for (url, expression) in p.components {
                h.write(b"\x1e");
                h.write(url.as_bytes());
                h.write(b"\x1f");
                h.write(expression.as_bytes());
            }
            h.write(b"\n");
        }
    }
    format!("v{EXTRACTION_VERSION}-{:016x}", h.0)
}

struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_versioned() {
        let a = fingerprint();
        assert_eq!(a, fingerprint());
        assert!(a.starts_with(&format!("v{EXTRACTION_VERSION}-")), "{a}");
        assert_eq!(a.len(), 2 + EXTRACTION_VERSION.to_string().len() + 16);
    }

    #[test]
    fn fnv_matches_the_reference_vectors() {
        // From the FNV reference: FNV-1a 64 of "" and of "a".
        let mut h = Fnv1a::new();
        assert_eq!(h.0, 0xcbf2_9ce4_8422_2325);
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }
}
