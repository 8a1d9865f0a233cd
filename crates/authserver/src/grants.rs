//! `POST /auth/token`: the grants.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use caduceus_access::ScopeContext;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::accounts::{from_json, to_json};
use crate::client_auth::Caller;
use crate::error::OAuthError;
use crate::http::{Form, no_store};
use crate::tokens::Subject;
use crate::util::{b64url, now, random_token, sha256, sha256_hex};
use crate::{Inner, scopes};

/// Meta keys of authorization codes: `auth.code.<sha256 of code>` → [`CodeRecord`].
pub(crate) const CODE_PREFIX: &str = "auth.code.";
/// Meta keys of refresh tokens: `auth.refresh.<sha256 of token>` → [`RefreshRecord`].
pub(crate) const REFRESH_PREFIX: &str = "auth.refresh.";
/// How long an authorization code is valid.
pub(crate) const CODE_TTL: i64 = 60;

/// What an authorization code stands for, until it is exchanged.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub username: String,
    pub scopes: Vec<String>,
    pub patient: Option<String>,
    pub exp: i64,
}

/// What a refresh token stands for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RefreshRecord {
    pub client_id: String,
    pub username: String,
    pub scopes: Vec<String>,
    pub patient: Option<String>,
    pub exp: i64,
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    patient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

pub(crate) async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    inner.maybe_sweep();
    let form = Form::body(&headers, &body)?;
    let grant_type = form.required("grant_type")?;
    // Validate the grant type before authenticating, so an unknown one costs nothing.
    if !matches!(
        grant_type,
        "client_credentials" | "authorization_code" | "refresh_token"
    ) {
        return Err(OAuthError::unsupported_grant_type(
            "grant_type must be client_credentials, authorization_code or refresh_token",
        ));
    }
    let caller = inner.authenticate_client(&headers, &form).await?;
    let response = match grant_type {
        "client_credentials" => client_credentials(&inner, &caller, &form).await?,
        "authorization_code" => authorization_code(&inner, &caller, &form).await?,
        _ => refresh(&inner, &caller, &form).await?,
    };
    let mut response = axum::Json(response).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

async fn client_credentials(
    inner: &Inner,
    caller: &Caller,
    form: &Form,
) -> Result<TokenResponse, OAuthError> {
    if !caller.confidential {
        return Err(OAuthError::unauthorized_client(
            "client_credentials is for confidential clients",
        ));
    }
    let requested = form.required("scope")?;
    let granted = scopes::grant(requested, &caller.record.scopes, &[ScopeContext::System])
        .map_err(OAuthError::invalid_scope)?;
    if !scopes::has_resource_scope(&granted) {
        return Err(OAuthError::invalid_scope(
            "none of the requested system/ scopes is allowed for this client",
        ));
    }
    let who = Subject {
        sub: caller.id.clone(),
        client_id: caller.id.clone(),
        scopes: granted,
        patient: None,
        fhir_user: None,
        roles: caller.record.roles.clone(),
        departments: caller.record.departments.clone(),
        clearance: caller.record.clearance,
    };
    let (access_token, exp) = inner.issue(&who, inner.config.backend_token_ttl).await?;
    tracing::info!(client_id = %caller.id, grant = "client_credentials", "access token issued");
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: exp - now(),
        scope: who.scopes.join(" "),
        patient: None,
        refresh_token: None,
    })
}

async fn authorization_code(
    inner: &Inner,
    caller: &Caller,
    form: &Form,
) -> Result<TokenResponse, OAuthError> {
    let code = form.required("code")?;
    let redirect_uri = form.required("redirect_uri")?;
    let verifier = form.required("code_verifier")?;
    if !(43..=128).contains(&verifier.len())
        || !verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 unreserved characters",
        ));
    }
    let key = format!("{CODE_PREFIX}{}", sha256_hex(code));
    // Taken whatever follows: a code is tried once.
    let Some(stored) = inner.store.take_meta(&key).await? else {
        return Err(OAuthError::invalid_grant("the code is not valid"));
    };
    let record: CodeRecord = from_json(&stored, "authorization code")?;
    if record.exp < now() {
        return Err(OAuthError::invalid_grant("the code is not valid"));
    }
    if record.client_id != caller.id {
        return Err(OAuthError::invalid_grant("the code is not valid"));
    }
    if record.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    let challenge = b64url(&sha256(verifier.as_bytes()));
    if !bool::from(challenge.as_bytes().ct_eq(record.code_challenge.as_bytes())) {
        return Err(OAuthError::invalid_grant("code_verifier does not match"));
    }
    let user = inner
        .accounts
        .user(&record.username)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the code is not valid"))?;
    respond_for_user(
        inner,
        caller,
        &record.username,
        &user,
        record.scopes,
        record.patient,
    )
    .await
}

async fn refresh(inner: &Inner, caller: &Caller, form: &Form) -> Result<TokenResponse, OAuthError> {
    let token = form.required("refresh_token")?;
    let key = format!("{REFRESH_PREFIX}{}", sha256_hex(token));
    // Rotation: the old token is gone whatever follows.
    let Some(stored) = inner.store.take_meta(&key).await? else {
        return Err(OAuthError::invalid_grant("the refresh token is not valid"));
    };
    let record: RefreshRecord = from_json(&stored, "refresh token")?;
    if record.exp < now() || record.client_id != caller.id {
        return Err(OAuthError::invalid_grant("the refresh token is not valid"));
    }
    let mut granted = record.scopes;
    if let Some(narrower) = form.get("scope") {
        granted = scopes::within(narrower, &granted).map_err(OAuthError::invalid_scope)?;
        if !scopes::has_resource_scope(&granted) {
            return Err(OAuthError::invalid_scope(
                "the requested scopes are not within the original grant",
            ));
        }
    }
    // The client may have lost scopes since.
    let still = scopes::within(&granted.join(" "), &caller.record.scopes)
        .map_err(OAuthError::invalid_scope)?;
    let user = inner
        .accounts
        .user(&record.username)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is not valid"))?;
    respond_for_user(
        inner,
        caller,
        &record.username,
        &user,
        still,
        record.patient,
    )
    .await
}

/// An access token (and a refresh token, when granted) for a signed-in user, with the
/// user's current roles.
async fn respond_for_user(
    inner: &Inner,
    caller: &Caller,
    username: &str,
    user: &crate::accounts::UserRecord,
    scopes: Vec<String>,
    patient: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let wants_refresh = scopes
        .iter()
        .any(|s| s == scopes::OFFLINE || s == scopes::ONLINE);
    let who = Subject {
        sub: username.to_owned(),
        client_id: caller.id.clone(),
        scopes,
        patient: patient.clone(),
        fhir_user: user.fhir_user.clone(),
        roles: user.roles.clone(),
        departments: user.departments.clone(),
        clearance: user.clearance,
    };
    let (access_token, exp) = inner.issue(&who, inner.config.app_token_ttl).await?;
    let refresh_token = if wants_refresh {
        let token = random_token(32)?;
        let record = RefreshRecord {
            client_id: caller.id.clone(),
            username: username.to_owned(),
            scopes: who.scopes.clone(),
            patient: patient.clone(),
            exp: now() + i64::try_from(inner.config.refresh_token_ttl.as_secs()).unwrap_or(0),
        };
        inner
            .store
            .set_meta(
                &format!("{REFRESH_PREFIX}{}", sha256_hex(&token)),
                &to_json(&record)?,
            )
            .await?;
        Some(token)
    } else {
        None
    };
    tracing::info!(client_id = %caller.id, grant = "user", "access token issued");
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: exp - now(),
        scope: who.scopes.join(" "),
        patient,
        refresh_token,
    })
}
