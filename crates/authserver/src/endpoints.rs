//! Introspection (RFC 7662), revocation (RFC 7009), the JWKS and the metadata documents.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Inner;
use crate::accounts::from_json;
use crate::client_auth::ASSERTION_ALGS;
use crate::error::OAuthError;
use crate::grants::{REFRESH_PREFIX, RefreshRecord};
use crate::http::{Form, no_store};
use crate::tokens::REVOKED_PREFIX;
use crate::util::{now, sha256_hex};

/// `POST /auth/introspect`: any registered confidential client may ask (resource servers
/// introspect tokens issued to others).
pub(crate) async fn introspect(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form = Form::body(&headers, &body)?;
    let caller = inner.authenticate_client(&headers, &form).await?;
    if !caller.confidential {
        return Err(OAuthError::invalid_client(
            "introspection needs client authentication",
        ));
    }
    let token = form.required("token")?;
    let hint = form.get("token_type_hint");
    let mut answer = json!({ "active": false });
    if hint != Some("refresh_token")
        && let Some(c) = inner.read_token(token, true).await
        && !inner.is_revoked(&c.jti).await?
    {
        answer = json!({
            "active": true,
            "scope": c.scope,
            "client_id": c.client_id,
            "sub": c.sub,
            "exp": c.exp,
            "iat": c.iat,
            "nbf": c.nbf,
            "iss": c.iss,
            "aud": c.aud,
            "jti": c.jti,
            "token_type": "Bearer",
        });
        let obj = answer.as_object_mut();
        if let Some(obj) = obj {
            if let Some(p) = c.patient {
                obj.insert("patient".into(), Value::String(p));
            }
            if let Some(f) = c.fhir_user {
                obj.insert("fhirUser".into(), Value::String(f));
            }
            if !c.roles.is_empty() {
                obj.insert("roles".into(), json!(c.roles));
            }
            if !c.departments.is_empty() {
                obj.insert("departments".into(), json!(c.departments));
            }
            obj.insert("clearance".into(), json!(c.clearance));
        }
    } else if !token.contains('.') {
        let key = format!("{REFRESH_PREFIX}{}", sha256_hex(token));
        if let Some(v) = inner.store.meta(&key).await? {
            let r: RefreshRecord = from_json(&v, "refresh token")?;
            if r.exp >= now() {
                answer = json!({
                    "active": true,
                    "scope": r.scopes.join(" "),
                    "client_id": r.client_id,
                    "sub": r.username,
                    "exp": r.exp,
                    "token_type": "refresh_token",
                });
                if let (Some(p), Some(obj)) = (r.patient, answer.as_object_mut()) {
                    obj.insert("patient".into(), Value::String(p));
                }
            }
        }
    }
    let mut response = Json(answer).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// `POST /auth/revoke`: a client revokes its own tokens. Answers 200 whether or not the
/// token was valid (RFC 7009 2.2).
pub(crate) async fn revoke(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form = Form::body(&headers, &body)?;
    let caller = inner.authenticate_client(&headers, &form).await?;
    let token = form.required("token")?;
    match form.get("token_type_hint") {
        None | Some("access_token" | "refresh_token") => {}
        Some(_) => {
            return Err(OAuthError::unsupported_token_type(
                "token_type_hint must be access_token or refresh_token",
            ));
        }
    }
    if let Some(c) = inner.read_token(token, false).await {
        if c.client_id == caller.id && c.exp > now() {
            inner
                .store
                .set_meta(
                    &format!("{REVOKED_PREFIX}{}", sha256_hex(&c.jti)),
                    &c.exp.to_string(),
                )
                .await?;
            inner.remember_revoked(&c.jti, true);
            tracing::info!(client_id = %caller.id, "access token revoked");
        }
    } else {
        let key = format!("{REFRESH_PREFIX}{}", sha256_hex(token));
        if let Some(v) = inner.store.meta(&key).await? {
            let r: RefreshRecord = from_json(&v, "refresh token")?;
            if r.client_id == caller.id {
                inner.store.delete_meta(&key).await?;
                tracing::info!(client_id = %caller.id, "refresh token revoked");
            }
        }
    }
    let mut response = Json(json!({})).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

pub(crate) async fn jwks(State(inner): State<Arc<Inner>>) -> Json<Value> {
    Json(inner.keyset().await.jwks())
}

pub(crate) async fn metadata(State(inner): State<Arc<Inner>>) -> Json<Value> {
    let issuer = &inner.config.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": auth_methods(),
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": auth_methods(),
        "revocation_endpoint_auth_methods_supported": auth_methods(),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes_supported(),
    }))
}

fn auth_methods() -> Value {
    json!([
        "private_key_jwt",
        "client_secret_basic",
        "client_secret_post",
        "none"
    ])
}

fn scopes_supported() -> Value {
    json!([
        "launch/patient",
        "offline_access",
        "online_access",
        "patient/*.rs",
        "user/*.rs",
        "system/*.rs",
        "patient/*.cruds",
        "user/*.cruds",
        "system/*.cruds",
    ])
}

/// The SMART App Launch 2.0 configuration of the FHIR server at `fhir_base`.
pub(crate) fn smart_configuration(inner: &Inner, _fhir_base: &str) -> Value {
    let issuer = &inner.config.issuer;
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": auth_methods(),
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "scopes_supported": scopes_supported(),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "context-standalone-patient",
            "permission-offline",
            "permission-online",
            "permission-patient",
            "permission-user",
            "permission-v1",
            "permission-v2",
        ],
    })
}
