//! Users and clients, kept in the store's metadata (`auth.user.<name>`,
//! `auth.client.<id>`, JSON), and the management API the `caduceus users` / `clients` /
//! `auth` commands use.

use std::sync::Arc;

use caduceus_access::{Clearance, Scope};
use caduceus_store::Store;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use serde::{Deserialize, Serialize};

use crate::error::corrupt;
use crate::util::{now, random_bytes, random_token, sha256_hex, valid_name};
use crate::{AuthServerError, keys, password, totp};

pub(crate) const USER_PREFIX: &str = "auth.user.";
pub(crate) const CLIENT_PREFIX: &str = "auth.client.";

/// A stored user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    /// Argon2id PHC string.
    pub password: String,
    /// TOTP secret, base32.
    pub totp: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub departments: Vec<String>,
    #[serde(default)]
    pub clearance: Clearance,
    #[serde(default)]
    pub fhir_user: Option<String>,
    pub created: i64,
}

/// How a stored client authenticates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum ClientAuth {
    /// `client_secret_basic` / `client_secret_post`: SHA-256 of the random secret (the
    /// secret has 256 bits of entropy, so a slow hash adds nothing).
    Secret { secret_sha256: String },
    /// `private_key_jwt` against this JWKS.
    Jwt { jwks: JwkSet },
    /// No authentication (a browser or mobile app): authorization code with PKCE only.
    Public,
}

/// A stored client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClientRecord {
    pub auth: ClientAuth,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub departments: Vec<String>,
    #[serde(default)]
    pub clearance: Clearance,
    pub created: i64,
}

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// 1 to 64 of letters, digits and `._@-`.
    pub username: String,
    /// Role names (`clinician`, `nurse`, `scheduler`, `billing`, `auditor`, `admin`,
    /// `patient`, or any the policy defines).
    pub roles: Vec<String>,
    /// Department codes.
    pub departments: Vec<String>,
    /// Confidentiality clearance.
    pub clearance: Clearance,
    /// The FHIR resource of the user (`Practitioner/12`, `Patient/7`).
    pub fhir_user: Option<String>,
}

/// A user as listed (no hash, no secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserSummary {
    /// The account name.
    pub username: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Department codes.
    pub departments: Vec<String>,
    /// Clearance.
    pub clearance: Clearance,
    /// The FHIR resource of the user.
    pub fhir_user: Option<String>,
}

/// A new TOTP secret, to show the user once.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    /// `otpauth://totp/Caduceus:<user>?secret=BASE32&issuer=Caduceus...`: the secret is in
    /// it, so show it once and never log it.
    pub uri: String,
}

/// How a new client authenticates.
#[derive(Debug, Clone)]
pub enum NewClientKind {
    /// A generated secret (`client_secret_basic` / `client_secret_post`).
    Secret,
    /// `private_key_jwt` (SMART Backend Services) with this JWKS of public keys.
    Jwt(serde_json::Value),
    /// A public app (authorization code with PKCE, no secret).
    Public,
}

/// A client to register.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// 1 to 64 of letters, digits and `._@-`.
    pub client_id: String,
    /// How it authenticates.
    pub kind: NewClientKind,
    /// The scopes it may be granted (SMART scopes, `launch/patient`, `offline_access`, ...).
    pub scopes: Vec<String>,
    /// Exact redirect URIs (for the authorization code grant).
    pub redirect_uris: Vec<String>,
    /// Roles of a backend client's tokens.
    pub roles: Vec<String>,
    /// Departments of a backend client's tokens.
    pub departments: Vec<String>,
    /// Clearance of a backend client's tokens.
    pub clearance: Clearance,
}

/// A client as listed (no secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientSummary {
    /// The client id.
    pub client_id: String,
    /// `secret`, `jwt` or `public`.
    pub kind: &'static str,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Departments.
    pub departments: Vec<String>,
    /// Clearance.
    pub clearance: Clearance,
}

/// Account management over a store: users, clients, the signing key.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
}

impl Accounts {
    /// Management over `store` (the one the server uses).
    pub fn new(store: Arc<dyn Store>) -> Accounts {
        Accounts { store }
    }

    /// Creates a user with a password and a new TOTP secret (returned, to show once).
    pub async fn add_user(
        &self,
        user: NewUser,
        password: &str,
    ) -> Result<TotpEnrollment, AuthServerError> {
        if !valid_name(&user.username) {
            return Err(AuthServerError::Invalid(
                "a username has 1 to 64 letters, digits and ._@-".into(),
            ));
        }
        check_labels(&user.roles, "role")?;
        check_labels(&user.departments, "department")?;
        if let Some(f) = &user.fhir_user {
            check_fhir_user(f)?;
        }
        password::check_policy(password)?;
        let secret = random_bytes(20)?;
        let record = UserRecord {
            password: password::hash(password.to_owned()).await?,
            totp: totp::encode_secret(&secret),
            roles: user.roles,
            departments: user.departments,
            clearance: user.clearance,
            fhir_user: user.fhir_user,
            created: now(),
        };
        let key = format!("{USER_PREFIX}{}", user.username);
        if !self.store.insert_meta(&key, &to_json(&record)?).await? {
            return Err(AuthServerError::AlreadyExists(format!(
                "user {}",
                user.username
            )));
        }
        Ok(TotpEnrollment {
            uri: totp::uri(&user.username, &secret),
        })
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserSummary>, AuthServerError> {
        let mut out = Vec::new();
        for (key, value) in self.store.meta_list(USER_PREFIX).await? {
            let username = key[USER_PREFIX.len()..].to_owned();
            let r: UserRecord = from_json(&value, &key)?;
            out.push(UserSummary {
                username,
                roles: r.roles,
                departments: r.departments,
                clearance: r.clearance,
                fhir_user: r.fhir_user,
            });
        }
        Ok(out)
    }

    /// Removes a user; `false` if there was none. Tokens already issued stay valid until
    /// they expire (revoke them by `jti`); refresh tokens stop working at once.
    pub async fn remove_user(&self, username: &str) -> Result<bool, AuthServerError> {
        let removed = self
            .store
            .delete_meta(&format!("{USER_PREFIX}{username}"))
            .await?;
        self.store
            .delete_meta(&format!("{}{username}", crate::signin::FAIL_PREFIX))
            .await?;
        Ok(removed)
    }

    /// Gives a user a new TOTP secret (the old one stops working).
    pub async fn reset_totp(&self, username: &str) -> Result<TotpEnrollment, AuthServerError> {
        let secret = random_bytes(20)?;
        self.update_user(username, |r| r.totp = totp::encode_secret(&secret))
            .await?;
        Ok(TotpEnrollment {
            uri: totp::uri(username, &secret),
        })
    }

    /// Sets a user's password (and clears the failed sign-in count).
    pub async fn set_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), AuthServerError> {
        password::check_policy(password)?;
        let hash = password::hash(password.to_owned()).await?;
        self.update_user(username, |r| r.password = hash).await?;
        self.store
            .delete_meta(&format!("{}{username}", crate::signin::FAIL_PREFIX))
            .await?;
        Ok(())
    }

    async fn update_user(
        &self,
        username: &str,
        change: impl FnOnce(&mut UserRecord),
    ) -> Result<(), AuthServerError> {
        let key = format!("{USER_PREFIX}{username}");
        let Some(value) = self.store.meta(&key).await? else {
            return Err(AuthServerError::NotFound(format!("user {username}")));
        };
        let mut record: UserRecord = from_json(&value, &key)?;
        change(&mut record);
        self.store.set_meta(&key, &to_json(&record)?).await?;
        Ok(())
    }

    /// Registers a client; for [`NewClientKind::Secret`] returns the generated secret,
    /// which is stored only as a hash: show it once.
    pub async fn add_client(&self, client: NewClient) -> Result<Option<String>, AuthServerError> {
        if !valid_name(&client.client_id) {
            return Err(AuthServerError::Invalid(
                "a client id has 1 to 64 letters, digits and ._@-".into(),
            ));
        }
        if client.scopes.is_empty() {
            return Err(AuthServerError::Invalid(
                "a client needs at least one scope".into(),
            ));
        }
        for s in &client.scopes {
            if s.split_ascii_whitespace().count() != 1 {
                return Err(AuthServerError::Invalid(
                    "give each scope separately (one --scope per scope)".into(),
                ));
            }
            Scope::parse(s).map_err(|e| AuthServerError::Invalid(format!("scope {s:?}: {e}")))?;
        }
        for uri in &client.redirect_uris {
            check_redirect_uri(uri)?;
        }
        check_labels(&client.roles, "role")?;
        check_labels(&client.departments, "department")?;
        let mut secret = None;
        let auth = match client.kind {
            NewClientKind::Secret => {
                let s = random_token(32)?;
                let hash = sha256_hex(&s);
                secret = Some(s);
                ClientAuth::Secret {
                    secret_sha256: hash,
                }
            }
            NewClientKind::Jwt(jwks) => ClientAuth::Jwt {
                jwks: check_jwks(jwks)?,
            },
            NewClientKind::Public => {
                if client.redirect_uris.is_empty() {
                    return Err(AuthServerError::Invalid(
                        "a public client needs at least one redirect URI".into(),
                    ));
                }
                ClientAuth::Public
            }
        };
        let record = ClientRecord {
            auth,
            scopes: client.scopes,
            redirect_uris: client.redirect_uris,
            roles: client.roles,
            departments: client.departments,
            clearance: client.clearance,
            created: now(),
        };
        let key = format!("{CLIENT_PREFIX}{}", client.client_id);
        if !self.store.insert_meta(&key, &to_json(&record)?).await? {
            return Err(AuthServerError::AlreadyExists(format!(
                "client {}",
                client.client_id
            )));
        }
        Ok(secret)
    }

    /// Every client, by id.
    pub async fn list_clients(&self) -> Result<Vec<ClientSummary>, AuthServerError> {
        let mut out = Vec::new();
        for (key, value) in self.store.meta_list(CLIENT_PREFIX).await? {
            let r: ClientRecord = from_json(&value, &key)?;
            out.push(client_summary(&key[CLIENT_PREFIX.len()..], r));
        }
        Ok(out)
    }

    /// One client (`None` if it is not registered): what a client certificate whose
    /// subject names it may do.
    pub async fn get_client(
        &self,
        client_id: &str,
    ) -> Result<Option<ClientSummary>, AuthServerError> {
        let key = format!("{CLIENT_PREFIX}{client_id}");
        match self.store.meta(&key).await? {
            None => Ok(None),
            Some(value) => Ok(Some(client_summary(client_id, from_json(&value, &key)?))),
        }
    }

    /// Removes a client; `false` if there was none. Its refresh tokens stop working; its
    /// access tokens stay valid until they expire.
    pub async fn remove_client(&self, client_id: &str) -> Result<bool, AuthServerError> {
        Ok(self
            .store
            .delete_meta(&format!("{CLIENT_PREFIX}{client_id}"))
            .await?)
    }

    /// Makes a new signing key current, keeping the previous public keys in the JWKS;
    /// returns the new key id. Running servers pick it up within half a minute.
    pub async fn rotate_signing_key(&self) -> Result<String, AuthServerError> {
        let old = match self.store.meta(keys::META_KEY).await? {
            Some(v) => Some(from_json::<keys::StoredKeys>(&v, keys::META_KEY)?),
            None => None,
        };
        let new = keys::rotated(old.as_ref())?;
        self.store.set_meta(keys::META_KEY, &to_json(&new)?).await?;
        Ok(new.current.kid)
    }

    pub(crate) async fn user(&self, username: &str) -> Result<Option<UserRecord>, AuthServerError> {
        if !valid_name(username) {
            return Ok(None);
        }
        let key = format!("{USER_PREFIX}{username}");
        match self.store.meta(&key).await? {
            Some(v) => Ok(Some(from_json(&v, &key)?)),
            None => Ok(None),
        }
    }

    pub(crate) async fn client(
        &self,
        client_id: &str,
    ) -> Result<Option<ClientRecord>, AuthServerError> {
        if !valid_name(client_id) {
            return Ok(None);
        }
        let key = format!("{CLIENT_PREFIX}{client_id}");
        match self.store.meta(&key).await? {
            Some(v) => Ok(Some(from_json(&v, &key)?)),
            None => Ok(None),
        }
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, AuthServerError> {
    serde_json::to_string(value).map_err(|e| AuthServerError::Internal(format!("json: {e}")))
}

pub(crate) fn from_json<T: for<'de> Deserialize<'de>>(
    text: &str,
    key: &str,
) -> Result<T, AuthServerError> {
    serde_json::from_str(text).map_err(|e| corrupt(key, e))
}

fn check_labels(labels: &[String], what: &str) -> Result<(), AuthServerError> {
    for l in labels {
        // `*`: every department (caduceus-access reads it so).
        if l == "*" && what == "department" {
            continue;
        }
        if l.is_empty()
            || l.len() > 64
            || !l
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        {
            return Err(AuthServerError::Invalid(format!(
                "a {what} has 1 to 64 letters, digits and ._:- (or is * for every department)"
            )));
        }
    }
    Ok(())
}

fn check_fhir_user(reference: &str) -> Result<(), AuthServerError> {
    let ok = reference.split_once('/').is_some_and(|(t, id)| {
        matches!(
            t,
            "Patient" | "Practitioner" | "PractitionerRole" | "RelatedPerson" | "Person"
        ) && (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    });
    if ok {
        Ok(())
    } else {
        Err(AuthServerError::Invalid(
            "fhirUser is a reference like Practitioner/12 or Patient/7".into(),
        ))
    }
}

/// Absolute `https` URIs, or `http` on a loopback host (native apps, RFC 8252); no
/// fragment.
fn check_redirect_uri(uri: &str) -> Result<(), AuthServerError> {
    let bad = || {
        AuthServerError::Invalid(
            "a redirect URI is an absolute https:// URI (http:// only for localhost), \
             without a fragment"
                .into(),
        )
    };
    if uri.contains('#') || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (scheme, rest) = uri.split_once("://").ok_or_else(bad)?;
    let host_port = rest.split(['/', '?']).next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    if host.is_empty() || host_port.contains('@') {
        return Err(bad());
    }
    match scheme {
        "https" => Ok(()),
        "http" if matches!(host, "localhost" | "127.0.0.1" | "::1") => Ok(()),
        _ => Err(bad()),
    }
}

/// A JWKS of public RSA or EC keys.
fn check_jwks(jwks: serde_json::Value) -> Result<JwkSet, AuthServerError> {
    let has_private = jwks
        .get("keys")
        .and_then(|k| k.as_array())
        .is_some_and(|keys| keys.iter().any(|k| k.get("d").is_some()));
    if has_private {
        return Err(AuthServerError::Invalid(
            "the JWKS holds a private key: register only the public keys".into(),
        ));
    }
    let set: JwkSet = serde_json::from_value(jwks)
        .map_err(|e| AuthServerError::Invalid(format!("not a JWKS: {e}")))?;
    if set.keys.is_empty() {
        return Err(AuthServerError::Invalid("the JWKS has no keys".into()));
    }
    for k in &set.keys {
        match &k.algorithm {
            AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_) => {}
            _ => {
                return Err(AuthServerError::Invalid(
                    "only RSA and EC keys are accepted (RS384, ES384, RS256, ES256)".into(),
                ));
            }
        }
    }
    Ok(set)
}

fn client_summary(client_id: &str, r: ClientRecord) -> ClientSummary {
    ClientSummary {
        client_id: client_id.to_owned(),
        kind: match r.auth {
            ClientAuth::Secret { .. } => "secret",
            ClientAuth::Jwt { .. } => "jwt",
            ClientAuth::Public => "public",
        },
        scopes: r.scopes,
        redirect_uris: r.redirect_uris,
        roles: r.roles,
        departments: r.departments,
        clearance: r.clearance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://app.example/cb",
            "http://localhost:8000/cb",
            "http://127.0.0.1/cb?x=1",
            "http://[::1]:9/cb",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#x",
            "javascript:alert(1)",
            "https://user@app.example/",
            "https:///cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
