//! Instance-level interactions: read, vread, update, patch, delete, instance history,
//! instance `$validate`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use caduceus_engine::DeleteResult;
use caduceus_model::{Issue, OperationOutcome};
use caduceus_store::HistoryScope;

use crate::auth::Caller;
use crate::negotiate::{Fhir, PatchBody, ResourceBody};
use crate::response::{
    json_response, outcome_response, resource_response, version_headers, write_response,
};
use crate::routes::if_match;
use crate::routes::type_level::{history_params, validate_response};
use crate::{ApiError, AppState};

/// GET `/[type]/[id]`: the hot path. The stored bytes go out as they are (unless `_summary`
/// or `_elements` ask for a subset); `If-None-Match` with the current version answers 304.
pub(crate) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let version = caller.engine(&state).read(&resource_type, &id).await?;
    if let Some(tag) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        && caduceus_engine::parse_version_tag(tag) == Some(version.version)
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        version_headers(response.headers_mut(), &version, None);
        return Ok(response);
    }
    // `_summary` and `_elements` subset the resource, as in search results.
    if let Some(body) = caller.engine(&state).subset(&version, &fhir.params)? {
        let subset = caduceus_store::StoredVersion {
            body: Some(body.into()),
            ..version
        };
        return Ok(resource_response(&subset, fhir.output));
    }
    Ok(resource_response(&version, fhir.output))
}

/// GET `/[type]/[id]/_history/[vid]`.
pub(crate) async fn vread(
    State(state): State<AppState>,
    caller: Caller,
    Path((resource_type, id, vid)): Path<(String, String, String)>,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let version = caller
        .engine(&state)
        .vread(&resource_type, &id, &vid)
        .await?;
    Ok(resource_response(&version, fhir.output))
}

/// PUT `/[type]/[id]`: update, or create at this id.
pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    fhir: Fhir,
    ResourceBody(resource): ResourceBody,
) -> Result<Response, ApiError> {
    let written = caller
        .engine(&state)
        .update(&resource_type, &id, resource, if_match(&headers)?)
        .await?;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(write_response(
        status,
        &written.version,
        &fhir.base,
        fhir.preference,
        fhir.output,
    ))
}

/// PATCH `/[type]/[id]` with a JSON Patch.
pub(crate) async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    fhir: Fhir,
    PatchBody(patch): PatchBody,
) -> Result<Response, ApiError> {
    let written = caller
        .engine(&state)
        .patch(&resource_type, &id, &patch, if_match(&headers)?)
        .await?;
    Ok(write_response(
        StatusCode::OK,
        &written.version,
        &fhir.base,
        fhir.preference,
        fhir.output,
    ))
}

/// DELETE `/[type]/[id]`: 200 with an OperationOutcome (204 with `Prefer: return=minimal`).
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let result = caller
        .engine(&state)
        .delete(&resource_type, &id, if_match(&headers)?)
        .await?;
    let message = match &result {
        DeleteResult::Deleted(_) => "deleted",
        DeleteResult::NothingToDelete => {
            "nothing to delete: the resource does not exist or was already deleted"
        }
    };
    let mut response = if fhir.preference == caduceus_engine::ReturnPreference::Minimal {
        StatusCode::NO_CONTENT.into_response()
    } else {
        outcome_response(
            StatusCode::OK,
            &OperationOutcome::single(Issue::information(message)),
            fhir.output,
        )
    };
    if let DeleteResult::Deleted(v) = &result
        && let Ok(etag) = format!("W/\"{}\"", v.version).parse()
    {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// GET `/[type]/[id]/_history`.
pub(crate) async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path((resource_type, id)): Path<(String, String)>,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let body = caller
        .engine(&state)
        .history(
            HistoryScope::Instance(resource_type, id),
            &history_params(&fhir),
            &fhir.base,
        )
        .await?;
    Ok(json_response(
        StatusCode::OK,
        fhir.output.render(Bytes::from(body)),
    ))
}

/// POST `/[type]/[id]/$validate`.
pub(crate) async fn validate(
    State(state): State<AppState>,
    Path((resource_type, id)): Path<(String, String)>,
    fhir: Fhir,
    ResourceBody(body): ResourceBody,
) -> Result<Response, ApiError> {
    caduceus_engine::check_type(&resource_type)?;
    caduceus_engine::check_id(&id)?;
    Ok(validate_response(
        &state,
        &resource_type,
        Some(&id),
        body,
        fhir.output,
    ))
}

/// GET `/Patient/[id]/$everything`.
pub(crate) async fn everything(
    State(state): State<AppState>,
    caller: Caller,
    Path((resource_type, id)): Path<(String, String)>,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    if resource_type != "Patient" {
        return Err(ApiError(caduceus_engine::FhirError::not_found(
            "$everything is defined on Patient only",
        )));
    }
    let body = caller
        .engine(&state)
        .everything(&id, &fhir.params, &fhir.base)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        fhir.output.render(Bytes::from(body)),
    ))
}
