//! Passwords: Argon2id with the `argon2` crate's default parameters (19 MiB, 2 passes,
//! one lane: OWASP's recommendation), stored as PHC strings. Hashing runs on the blocking
//! pool: it takes tens of milliseconds of CPU on purpose.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::AuthServerError;
use crate::util::random_bytes;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

pub(crate) fn check_policy(password: &str) -> Result<(), AuthServerError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthServerError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(AuthServerError::Invalid(
            "a password may have at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// The PHC string of `password` under a fresh random salt.
pub(crate) async fn hash(password: String) -> Result<String, AuthServerError> {
    let salt = random_bytes(16)?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&salt)
            .map_err(|e| AuthServerError::Internal(format!("salt: {e}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthServerError::Internal(format!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| AuthServerError::Internal(format!("hash task: {e}")))?
}

/// Whether `password` matches `phc`; with `phc` `None` it checks against a dummy hash and
/// answers `false`, taking the same time, so an unknown user cannot be told from a wrong
/// password by timing.
pub(crate) async fn verify(password: String, phc: Option<String>) -> Result<bool, AuthServerError> {
    let known = phc.is_some();
    let phc = match phc {
        Some(p) => p,
        None => dummy_hash().await?,
    };
    let ok = tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(|e| AuthServerError::Internal(format!("verify task: {e}")))?;
    Ok(ok && known)
}

async fn dummy_hash() -> Result<String, AuthServerError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = hash(crate::util::random_token(24)?).await?;
    Ok(DUMMY.get_or_init(|| h).clone())
}
