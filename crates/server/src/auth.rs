//! Authentication at the edge of the FHIR API: every request under `/fhir` (but the
//! CapabilityStatement and the SMART configuration, which clients need before they have a
//! token) is authenticated by an [`Authenticate`] implementation, and the resulting
//! [`Access`] travels in the request's extensions to the handlers, which act through
//! [`Caller::engine`]: an engine restricted to that caller. Enforcement itself is the
//! engine's (searches, includes, history and bundles included).
//!
//! Failures answer 401 with an RFC 6750 `WWW-Authenticate` header and an OperationOutcome
//! that names no token content; an identity provider that cannot be reached is 503.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use caduceus_access::{Access, Policy, Principal};
use caduceus_engine::{Engine, FhirError};
use caduceus_model::{Issue, IssueCode, OperationOutcome};

use crate::negotiate::Output;
use crate::response::outcome_response;
use crate::{ApiError, AppState};

/// What an authenticator sees of a request.
pub struct Credentials<'a> {
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The request's extensions (a verified TLS client certificate is there).
    pub extensions: &'a Extensions,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone)]
pub struct AuthFailure {
    /// 401, or 503 when the identity provider's keys cannot be had.
    pub status: u16,
    /// The `WWW-Authenticate` value (RFC 6750).
    pub www_authenticate: String,
    /// A sentence for the client and the log; never token content.
    pub message: String,
}

/// Turns credentials into a principal (bearer tokens, client certificates).
#[async_trait]
pub trait Authenticate: Send + Sync {
    /// Authenticates one request.
    async fn authenticate(&self, credentials: Credentials<'_>) -> Result<Principal, AuthFailure>;
}

/// How the API decides who is calling.
#[derive(Clone)]
pub enum AuthMode {
    /// `--insecure-dev-mode`: nobody is asked; every request is unrestricted.
    Insecure,
    /// Every request must authenticate; roles are read against the policy.
    Required {
        /// Who checks credentials.
        authenticator: Arc<dyn Authenticate>,
        /// The role policy.
        policy: Arc<Policy>,
    },
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthMode::Insecure => write!(f, "Insecure"),
            AuthMode::Required { .. } => write!(f, "Required"),
        }
    }
}

/// The caller of a request, as the auth layer decided.
#[derive(Clone)]
pub(crate) struct Caller(Arc<Access>);

impl Caller {
    /// The engine acting for this caller.
    pub(crate) fn engine(&self, state: &AppState) -> Engine {
        state.engine().with_access(self.0.clone())
    }

    /// The authenticated caller (`None` in `--insecure-dev-mode`).
    pub(crate) fn principal(&self) -> Option<&Principal> {
        self.0.principal()
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        // Fail closed: a route the auth layer did not wrap has no caller.
        parts
            .extensions
            .get::<Arc<Access>>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| {
                ApiError(FhirError::new(
                    500,
                    IssueCode::Exception,
                    "no access decision for this request",
                ))
            })
    }
}

/// Paths anyone may reach: what a client reads before it has a token (the
/// CapabilityStatement, the SMART configuration), health probes, and the built-in
/// authorization server, which authenticates its clients itself. Everything else, known
/// route or not, needs a caller.
pub(crate) fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/metadata"
            | "/fhir/metadata"
            | "/.well-known/smart-configuration"
            | "/fhir/.well-known/smart-configuration"
    ) || path.starts_with("/health/")
        || path.starts_with("/auth/")
}

/// The layer: authenticates and attaches the caller's access (public paths pass as they
/// are).
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let access = match state.auth() {
        AuthMode::Insecure => Access::unrestricted(),
        AuthMode::Required {
            authenticator,
            policy,
        } => {
            let authorization = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let credentials = Credentials {
                authorization,
                extensions: request.extensions(),
            };
            match authenticator.authenticate(credentials).await {
                Ok(mut principal) => {
                    state
                        .grants()
                        .apply(state.engine().store().as_ref(), &mut principal)
                        .await;
                    // Rate limits count per client (per user for apps), not per address.
                    let client = principal.client_id.as_deref().unwrap_or(&principal.subject);
                    let key = format!("{}|{client}", principal.issuer);
                    request.extensions_mut().insert(crate::RateLimitKey(key));
                    Access::new(principal, policy.clone())
                }
                Err(failure) => return refused(&failure),
            }
        }
    };
    request.extensions_mut().insert(Arc::new(access));
    next.run(request).await
}

fn refused(failure: &AuthFailure) -> Response {
    tracing::info!(status = failure.status, reason = %failure.message, "request not authenticated");
    let code = if failure.status == 503 {
        IssueCode::Transient
    } else {
        IssueCode::Login
    };
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::UNAUTHORIZED);
    let outcome = OperationOutcome::single(Issue::error(code, failure.message.clone()));
    let mut response = outcome_response(status, &outcome, Output::default());
    if let Ok(v) = HeaderValue::from_str(&failure.www_authenticate) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}
