//! Whole-system interactions: capabilities, batch/transaction, system history.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use caduceus_store::HistoryScope;

use crate::negotiate::{Fhir, ResourceBody};
use crate::response::json_response;
use crate::routes::type_level::history_params;
use crate::{ApiError, AppState};

/// GET `/metadata`.
pub(crate) async fn capabilities(State(state): State<AppState>, fhir: Fhir) -> Response {
    let statement = state
        .engine()
        .capability_statement(&fhir.base, &state.config().software_version);
    let body = serde_json::to_vec(&statement).unwrap_or_default();
    json_response(StatusCode::OK, fhir.output.render(Bytes::from(body)))
}

/// POST `/` with a batch or transaction Bundle.
pub(crate) async fn bundle(
    State(state): State<AppState>,
    fhir: Fhir,
    ResourceBody(bundle): ResourceBody,
) -> Result<Response, ApiError> {
    let response = state
        .engine()
        .process_bundle(bundle, &fhir.base, fhir.preference)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        fhir.output.render(Bytes::from(response.body)),
    ))
}

/// GET `/_history`.
pub(crate) async fn history(
    State(state): State<AppState>,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let body = state
        .engine()
        .history(HistoryScope::System, &history_params(&fhir), &fhir.base)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        fhir.output.render(Bytes::from(body)),
    ))
}
