//! The FHIR REST API over HTTP: routes, content negotiation, headers, and the tower layers
//! around them (request ids, tracing, body limits, graceful shutdown).
//!
//! Handlers are thin: they turn HTTP into calls on [`caduceus_engine::Engine`] and the
//! engine's results into HTTP responses. Every error leaves as an OperationOutcome through
//! one `IntoResponse` implementation ([`response::ApiError`]).
//!
//! Invariant: this is the only crate that speaks HTTP; it knows nothing of which store is
//! behind the engine, and nothing of configuration files or command-line flags.
#![deny(missing_docs)]

mod layers;
mod negotiate;
mod response;
mod routes;

use std::sync::Arc;

use axum::Router;
use caduceus_engine::Engine;

pub use response::ApiError;

/// Settings of the HTTP front end.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The public base URL of the FHIR API (e.g. `https://fhir.example.org/fhir`). When
    /// `None`, it is derived from each request's `Host` header as `http://HOST/fhir`.
    pub public_base_url: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Software version shown in the CapabilityStatement.
    pub software_version: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            public_base_url: None,
            max_body_bytes: 64 * 1024 * 1024,
            software_version: env!("CARGO_PKG_VERSION").to_owned(),
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
}

impl AppState {
    /// State over an engine.
    pub fn new(engine: Engine, config: ServerConfig) -> Self {
        AppState {
            inner: Arc::new(Inner { engine, config }),
        }
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
    let max_body = state.config().max_body_bytes;
    layers::wrap(routes::router(state), max_body)
}
