//! The tower layers around every route: request ids, a tracing span per request that puts
//! the request id on every log line, security headers and CORS, panics turned into
//! OperationOutcomes, a request timeout, rate limits, and body limits (the hardening layers
//! live in `hardening`).
//!
//! Log lines name the route template (`/fhir/{type}/{id}`) and the resource type, never
//! the concrete URL: ids and query strings can carry patient data.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use caduceus_model::{Issue, IssueCode, OperationOutcome};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::hardening;
use crate::negotiate::Output;
use crate::response::outcome_response;
use crate::{AppState, ServerConfig};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps the routes in the layers. Each `.layer` goes *around* what is above it, so a
/// request passes them from the bottom of this function to the top:
///
/// 1. `trace_request`: request id and span, so every later log line carries the id;
/// 2. security headers, on every response including those made by the layers below;
/// 3. CORS, which answers preflights itself (a browser sends no credentials on them, so
///    they must not reach authentication);
/// 4. panics become 500 OperationOutcomes;
/// 5. the request timeout (it covers reading the body);
/// 6. authentication (`auth::authenticate`; public paths pass), between the timeout and
///    the rate limit;
/// 7. the rate limit, innermost of the policy layers: it runs after authentication so it
///    can key on the `RateLimitKey` authentication inserts, and before the body is read,
///    so a throttled client's upload is not read;
/// 8. the whole body is read (up to the limit) before any handler runs.
///
/// `auth` is the state the authentication layer reads (`None` only in tests of the other
/// layers).
pub(crate) fn wrap(router: Router, config: &ServerConfig, auth: Option<AppState>) -> Router {
    let max_body_bytes = config.max_body_bytes;
    let mut router =
        router
            .layer(DefaultBodyLimit::max(max_body_bytes))
            .layer(middleware::from_fn(move |request, next| {
                read_whole_body(request, next, max_body_bytes)
            }));
    if let Some(limit) = config.rate_limit {
        router = router.layer(hardening::rate_limit_layer(limit));
    }
    if let Some(state) = auth {
        router = router.layer(middleware::from_fn_with_state(
            state,
            crate::auth::authenticate,
        ));
    }
    let timeout = config.request_timeout;
    router = router
        .layer(middleware::from_fn(move |request, next| {
            hardening::request_timeout(request, next, timeout)
        }))
        .layer(CatchPanicLayer::custom(panic_response));
    if let Some(cors) = hardening::cors_layer(&config.cors_origins) {
        router = router.layer(cors);
    }
    let hsts = config.hsts;
    router
        .layer(middleware::from_fn(move |request, next| {
            hardening::security_headers(request, next, hsts)
        }))
        .layer(middleware::from_fn(trace_request))
}

/// Reads a request's whole body (up to the limit) before any handler runs. A handler that
/// refuses a request early (415 for a content type, 406 for an `Accept`) would otherwise
/// answer while the client is still sending; closing a socket with unread data resets the
/// connection, and the client saw "peer disconnected" instead of the OperationOutcome
/// (measured: 1 run in 6 of a test suite under load). Every body is read in full anyway
/// (a resource is parsed from one buffer), so this costs no extra copy of note.
async fn read_whole_body(request: Request, next: Next, max_body_bytes: usize) -> Response {
    if request.method() == axum::http::Method::GET || request.method() == axum::http::Method::HEAD {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, max_body_bytes).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(_) => {
            let outcome = OperationOutcome::single(Issue::error(
                IssueCode::TooLong,
                "the request body could not be read (too large or interrupted)",
            ));
            outcome_response(StatusCode::PAYLOAD_TOO_LARGE, &outcome, Output::default())
        }
    }
}

/// Takes the client's `X-Request-Id` (if sane) or makes one, runs the request inside a span
/// carrying it, echoes it on the response, and logs one line per request.
async fn trace_request(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().clone();
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, route = %route);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        let micros = started.elapsed().as_micros() as u64;
        if status >= 500 {
            tracing::warn!(status, micros, "request failed");
        } else {
            tracing::debug!(status, micros, "request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// A request id unique across replicas and restarts: a random per-process prefix and a
/// counter. Cheaper than a random UUID per request (no entropy syscall on the hot path).
fn new_request_id() -> String {
    static PREFIX: LazyLock<String> =
        LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}{:012x}",
        *PREFIX,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    let outcome = OperationOutcome::single(Issue::error(IssueCode::Exception, "internal error"));
    let mut response = outcome_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &outcome,
        Output::default(),
    );
    response.headers_mut().remove("content-length");
    response.into_response()
}
