//! The routes, and what every handler shares: form bodies, `no-store`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{get, post};

use crate::error::OAuthError;
use crate::{Inner, endpoints, grants, signin};

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route(
            "/auth/authorize",
            get(signin::authorize_get).post(signin::authorize_post),
        )
        .route("/auth/token", post(grants::token))
        .route("/auth/introspect", post(endpoints::introspect))
        .route("/auth/revoke", post(endpoints::revoke))
        .route("/auth/jwks", get(endpoints::jwks))
        .route(
            "/auth/.well-known/openid-configuration",
            get(endpoints::metadata),
        )
        .route(
            "/auth/.well-known/oauth-authorization-server",
            get(endpoints::metadata),
        )
        .with_state(inner)
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 5.1).
pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Decoded `application/x-www-form-urlencoded` parameters; each at most once (RFC 6749
/// 3.1: "request and response parameters MUST NOT be included more than once").
#[derive(Debug, Default)]
pub(crate) struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Result<Form, String> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(bytes) {
            if map.insert(k.clone().into_owned(), v.into_owned()).is_some() {
                return Err(format!("parameter {k} is given more than once"));
            }
        }
        Ok(Form(map))
    }

    /// A request body, which must be a form.
    pub fn body(headers: &HeaderMap, bytes: &[u8]) -> Result<Form, OAuthError> {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Form::parse(bytes).map_err(OAuthError::invalid_request)
    }

    /// A parameter; an empty value counts as absent (RFC 6749 3.1).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, key: &str) -> Result<&str, OAuthError> {
        self.get(key)
            .ok_or_else(|| OAuthError::invalid_request(format!("{key} is required")))
    }
}
