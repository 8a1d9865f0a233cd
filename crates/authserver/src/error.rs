//! Errors: [`AuthServerError`] for the library's callers (the binary, the CLI), and
//! [`OAuthError`], the RFC 6749 error answers of the HTTP endpoints.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What went wrong in account management or at start-up. Texts name the account or the
/// setting, never a password, a secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthServerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] caduceus_store::StoreError),
    /// A stored record is not what this version writes (a bug or a hand edit).
    #[error("the stored {what} is not valid: {why}")]
    Corrupt {
        /// Which record.
        what: String,
        /// Why it does not parse.
        why: String,
    },
    /// An account or client already exists under that name.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// No account or client of that name.
    #[error("{0} does not exist")]
    NotFound(String),
    /// An input refused (a malformed name, scope, redirect URI, JWKS, key or password).
    #[error("{0}")]
    Invalid(String),
    /// The signing key could not be made or read.
    #[error("signing key: {0}")]
    Key(String),
    /// A task failed to run (a panic in a blocking hash computation).
    #[error("internal error: {0}")]
    Internal(String),
}

pub(crate) fn corrupt(what: impl Into<String>, why: impl std::fmt::Display) -> AuthServerError {
    AuthServerError::Corrupt {
        what: what.into(),
        why: why.to_string(),
    }
}

/// An RFC 6749 error answer (section 5.2): JSON `{error, error_description}`, never cached.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }

    /// Client authentication failed: 401 with `WWW-Authenticate` (section 5.2).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d)
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }

    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }

    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }

    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }

    pub fn unsupported_token_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_token_type", d)
    }

    /// The store or another dependency failed: 503 `temporarily_unavailable`, logged here
    /// (the error text never holds a secret).
    pub fn unavailable(e: &AuthServerError) -> Self {
        tracing::error!(error = %e, "authorization server cannot answer");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the authorization server cannot answer now; try again",
        )
    }
}

impl From<AuthServerError> for OAuthError {
    fn from(e: AuthServerError) -> Self {
        OAuthError::unavailable(&e)
    }
}

impl From<caduceus_store::StoreError> for OAuthError {
    fn from(e: caduceus_store::StoreError) -> Self {
        OAuthError::unavailable(&AuthServerError::Store(e))
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        crate::http::no_store(headers);
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"caduceus\""),
            );
        }
        response
    }
}
