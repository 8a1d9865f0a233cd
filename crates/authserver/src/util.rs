//! Small shared pieces: randomness, hashing, time, base64url.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

use crate::AuthServerError;

/// `n` random bytes from the operating system.
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>, AuthServerError> {
    let mut buf = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| AuthServerError::Internal("the system random source failed".into()))?;
    Ok(buf)
}

/// A random opaque value (codes, refresh tokens, secrets, token ids): `n` bytes, base64url.
pub(crate) fn random_token(n: usize) -> Result<String, AuthServerError> {
    Ok(b64url(&random_bytes(n)?))
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// Lower-case hex of SHA-256: how one-time values are keyed in the store, so the store
/// never holds a usable code or token.
pub(crate) fn sha256_hex(text: &str) -> String {
    sha256(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Account and client names: 1 to 64 of letters, digits and `._@-`.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

/// The expiry of a stored one-time value: a plain number of seconds, or a JSON object's
/// `exp`.
pub(crate) fn expiry_of(value: &str) -> Option<i64> {
    value.trim().parse::<i64>().ok().or_else(|| {
        serde_json::from_str::<serde_json::Value>(value)
            .ok()?
            .get("exp")?
            .as_i64()
    })
}
