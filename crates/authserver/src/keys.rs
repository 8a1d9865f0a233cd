//! The server's signing keys: ECDSA P-256 (ES256), generated with ring on first start and
//! kept in the store (`auth.signing-keys`), so every replica signs with the same key and
//! publishes the same JWKS. Rotation makes a new current key and keeps the previous
//! public keys in the JWKS, so tokens signed before the rotation stay verifiable until
//! they expire. A key given as a PEM file (`--auth-signing-key-file`) replaces the stored
//! current key for signing; the stored ones are still published.
//!
//! The private key is stored as plain PKCS#8 in `store_meta`: whoever can read the
//! database can sign tokens. Encryption of data at rest is the next step.

use std::collections::HashMap;

use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::AuthServerError;
use crate::util::{b64url, now, sha256};

/// Meta key of the stored keys.
pub(crate) const META_KEY: &str = "auth.signing-keys";

/// How many earlier public keys the JWKS keeps after rotations.
const KEEP_PREVIOUS: usize = 2;

/// The stored form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredKeys {
    pub current: StoredKey,
    #[serde(default)]
    pub previous: Vec<PublicKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    pub kid: String,
    /// PKCS#8 DER, base64url.
    pub pkcs8: String,
    pub created: i64,
}

/// A public P-256 key: its JWK coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PublicKey {
    pub kid: String,
    pub x: String,
    pub y: String,
}

impl PublicKey {
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
            "kid": self.kid, "x": self.x, "y": self.y,
        })
    }
}

/// What a replica signs and verifies with.
pub(crate) struct KeySet {
    pub kid: String,
    pub encoding: EncodingKey,
    /// Every published key (the signer first).
    pub public: Vec<PublicKey>,
    pub decoding: HashMap<String, DecodingKey>,
}

impl KeySet {
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.public.iter().map(PublicKey::jwk).collect::<Vec<_>>() })
    }

    pub fn build(
        signer_pkcs8: &[u8],
        stored: Option<&StoredKeys>,
    ) -> Result<KeySet, AuthServerError> {
        let signer = public_of(signer_pkcs8)?;
        let mut public = vec![signer.clone()];
        if let Some(stored) = stored {
            let current = public_of(&decode_pkcs8(&stored.current.pkcs8)?)?;
            for k in std::iter::once(current).chain(stored.previous.iter().cloned()) {
                if !public.iter().any(|p| p.kid == k.kid) {
                    public.push(k);
                }
            }
        }
        let mut decoding = HashMap::new();
        for k in &public {
            let key = DecodingKey::from_ec_components(&k.x, &k.y)
                .map_err(|e| AuthServerError::Key(format!("public key {}: {e}", k.kid)))?;
            decoding.insert(k.kid.clone(), key);
        }
        Ok(KeySet {
            kid: signer.kid,
            encoding: EncodingKey::from_ec_der(signer_pkcs8),
            public,
            decoding,
        })
    }
}

/// A new P-256 key, PKCS#8 DER.
pub(crate) fn generate() -> Result<Vec<u8>, AuthServerError> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| AuthServerError::Key("cannot generate a P-256 key".into()))
}

/// The stored form of a new current key, the old current and previous ones kept public.
pub(crate) fn rotated(old: Option<&StoredKeys>) -> Result<StoredKeys, AuthServerError> {
    let pkcs8 = generate()?;
    let public = public_of(&pkcs8)?;
    let mut previous = Vec::new();
    if let Some(old) = old {
        previous.push(public_of(&decode_pkcs8(&old.current.pkcs8)?)?);
        previous.extend(old.previous.iter().cloned());
        previous.truncate(KEEP_PREVIOUS);
    }
    Ok(StoredKeys {
        current: StoredKey {
            kid: public.kid,
            pkcs8: b64url(&pkcs8),
            created: now(),
        },
        previous,
    })
}

pub(crate) fn decode_pkcs8(text: &str) -> Result<Vec<u8>, AuthServerError> {
    crate::util::b64url_decode(text)
        .ok_or_else(|| AuthServerError::Key("the stored key is not base64url".into()))
}

/// The public half of a PKCS#8 P-256 key, with its RFC 7638 thumbprint as `kid`.
pub(crate) fn public_of(pkcs8: &[u8]) -> Result<PublicKey, AuthServerError> {
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|e| AuthServerError::Key(format!("not a PKCS#8 P-256 private key ({e})")))?;
    let point = pair.public_key().as_ref();
    if point.len() != 65 || point[0] != 4 {
        return Err(AuthServerError::Key(
            "unexpected public key encoding".into(),
        ));
    }
    let (x, y) = (b64url(&point[1..33]), b64url(&point[33..65]));
    // RFC 7638: the required members in lexicographic order, no spaces.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    Ok(PublicKey {
        kid: b64url(&sha256(canonical.as_bytes())),
        x,
        y,
    })
}

/// The DER inside a PEM `PRIVATE KEY` block (PKCS#8).
pub(crate) fn pkcs8_from_pem(pem: &str) -> Result<Vec<u8>, AuthServerError> {
    let begin = "-----BEGIN PRIVATE KEY-----";
    let end = "-----END PRIVATE KEY-----";
    let start = pem.find(begin).ok_or_else(|| {
        AuthServerError::Key(
            "the key file has no PKCS#8 `BEGIN PRIVATE KEY` block (convert an EC key with \
             `openssl pkcs8 -topk8 -nocrypt`)"
                .into(),
        )
    })? + begin.len();
    let stop = pem[start..]
        .find(end)
        .ok_or_else(|| AuthServerError::Key("the key file's PEM block is not closed".into()))?
        + start;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| AuthServerError::Key("the key file's PEM block is not base64".into()))?;
    public_of(&der)?;
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_previous_public_keys() {
        let first = rotated(None).unwrap();
        let second = rotated(Some(&first)).unwrap();
        let third = rotated(Some(&second)).unwrap();
        let fourth = rotated(Some(&third)).unwrap();
        assert_eq!(second.previous[0].kid, first.current.kid);
        assert_eq!(fourth.previous.len(), KEEP_PREVIOUS);
        let set =
            KeySet::build(&decode_pkcs8(&fourth.current.pkcs8).unwrap(), Some(&fourth)).unwrap();
        assert_eq!(set.public.len(), 1 + KEEP_PREVIOUS);
        assert_eq!(set.kid, fourth.current.kid);
    }
}
