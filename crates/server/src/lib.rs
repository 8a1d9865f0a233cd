//! The FHIR REST API over HTTP: routes, content negotiation, headers, and the tower layers
//! around them (request ids, tracing, body limits, security headers, CORS, timeouts, rate
//! limits), and serving them over plain HTTP or TLS with graceful shutdown ([`serve()`]).
//!
//! Handlers are thin: they turn HTTP into calls on [`caduceus_engine::Engine`] and the
//! engine's results into HTTP responses. Every error leaves as an OperationOutcome through
//! one `IntoResponse` implementation ([`response::ApiError`]).
//!
//! Invariant: this is the only crate that speaks HTTP; it knows nothing of which store is
//! behind the engine, and nothing of configuration files or command-line flags.
#![deny(missing_docs)]

mod auth;
mod break_glass;
mod hardening;
mod layers;
mod negotiate;
mod response;
mod routes;
pub mod serve;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use caduceus_engine::Engine;

pub use auth::{AuthFailure, AuthMode, Authenticate, Credentials};
pub use hardening::{RateLimit, RateLimitKey};
pub use response::ApiError;
pub use serve::serve;
pub use tls::ClientCertificate;

/// Settings of the HTTP front end.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The public base URL of the FHIR API (e.g. `https://fhir.example.org/fhir`). When
    /// `None`, it is derived from each request's `Host` header as `http://HOST/fhir` (or
    /// `https://` for a request that came over TLS).
    pub public_base_url: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Software version shown in the CapabilityStatement.
    pub software_version: String,
    /// Send `Strict-Transport-Security` on every response: when serving TLS, or behind a
    /// gateway that terminates it.
    pub hsts: bool,
    /// Origins allowed by CORS (`https://app.example.org`); none: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Longest a request may take before it is answered 503 (`timeout`).
    pub request_timeout: Duration,
    /// Requests per client (authenticated client, else peer address); `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// The SMART configuration document served (without authentication) at
    /// `[base]/.well-known/smart-configuration`, when the server knows one (the built-in
    /// authorization server's).
    pub smart_configuration: Option<serde_json::Value>,
    /// How long a break-glass declaration lasts.
    pub break_glass: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            public_base_url: None,
            max_body_bytes: 64 * 1024 * 1024,
            software_version: env!("CARGO_PKG_VERSION").to_owned(),
            hsts: false,
            cors_origins: Vec::new(),
            request_timeout: Duration::from_secs(60),
            rate_limit: Some(RateLimit {
                per_second: 200,
                burst: 400,
            }),
            smart_configuration: None,
            break_glass: Duration::from_secs(3600),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    config: ServerConfig,
    auth: AuthMode,
    grants: break_glass::Grants,
}

impl AppState {
    /// State over an engine; every request must authenticate as `auth` says.
    pub fn new(engine: Engine, config: ServerConfig, auth: AuthMode) -> Self {
        AppState {
            inner: Arc::new(Inner {
                engine,
                config,
                auth,
                grants: break_glass::Grants::default(),
            }),
        }
    }

    fn grants(&self) -> &break_glass::Grants {
        &self.inner.grants
    }

    pub(crate) fn auth(&self) -> &AuthMode {
        &self.inner.auth
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn config(&self) -> &ServerConfig {
        &self.inner.config
    }
}

/// The complete application: FHIR API under `/fhir`, health probes under `/health`.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The application with more routes beside the FHIR API (the built-in authorization
/// server's `/auth/...`): they get every layer (request ids, limits, security headers,
/// rate limits) but not FHIR authentication, which they do themselves.
pub fn app_with(state: AppState, extra: Router) -> Router {
    let config = state.config().clone();
    layers::wrap(
        routes::router(state.clone()).merge(extra),
        &config,
        Some(state),
    )
}
