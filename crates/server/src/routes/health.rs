//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// Live: the process answers.
pub(crate) async fn live() -> Json<Value> {
    Json(json!({ "status": "pass" }))
}

/// Ready: the store answers.
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.engine().store().ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "pass", "checks": { "store": "pass" } })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "fail", "checks": { "store": "fail" } })),
            )
        }
    }
}
