//! Type-level interactions: create, search, `$validate`, type history.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use caduceus_engine::{ConditionalCreate, FhirError, HistoryParams, SearchRequest, check_type};
use caduceus_model::{Issue, OperationOutcome};
use caduceus_store::HistoryScope;

use crate::auth::Caller;
use crate::negotiate::{Fhir, FormParams, Output, ResourceBody};
use crate::response::{json_response, outcome_response, write_response};
use crate::{ApiError, AppState};

/// POST `/[type]`.
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(resource_type): Path<String>,
    headers: axum::http::HeaderMap,
    fhir: Fhir,
    ResourceBody(resource): ResourceBody,
) -> Result<Response, ApiError> {
    check_type(&resource_type)?;
    if let Some(condition) = headers.get("if-none-exist") {
        let condition = condition
            .to_str()
            .map_err(|_| ApiError(FhirError::bad_request("If-None-Exist is not a search")))?;
        let result = caller
            .engine(&state)
            .create_conditional(&resource_type, resource, condition, &fhir.base)
            .await?;
        return Ok(match result {
            ConditionalCreate::Created(written) => write_response(
                StatusCode::CREATED,
                &written.version,
                &fhir.base,
                fhir.preference,
                fhir.output,
            ),
            // Nothing was created: 200 with the resource that matched.
            ConditionalCreate::Existing(existing) => write_response(
                StatusCode::OK,
                &existing,
                &fhir.base,
                fhir.preference,
                fhir.output,
            ),
        });
    }
    let written = caller
        .engine(&state)
        .create(&resource_type, resource)
        .await?;
    Ok(write_response(
        StatusCode::CREATED,
        &written.version,
        &fhir.base,
        fhir.preference,
        fhir.output,
    ))
}

/// PUT `/[type]?[search]`: conditional update.
pub(crate) async fn update_conditional(
    State(state): State<AppState>,
    caller: Caller,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    fhir: Fhir,
    ResourceBody(resource): ResourceBody,
) -> Result<Response, ApiError> {
    let query = without_format(&query.unwrap_or_default());
    if query.is_empty() {
        return Ok(needs_search("PUT"));
    }
    let written = caller
        .engine(&state)
        .update_conditional(&resource_type, &query, resource, &fhir.base)
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

/// DELETE `/[type]?[search]`: conditional delete of every match (up to a limit).
pub(crate) async fn delete_conditional(
    State(state): State<AppState>,
    caller: Caller,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let query = without_format(&query.unwrap_or_default());
    if query.is_empty() {
        return Ok(needs_search("DELETE"));
    }
    let deleted = caller
        .engine(&state)
        .delete_conditional(&resource_type, &query, &fhir.base, MAX_CONDITIONAL_DELETES)
        .await?;
    let message = format!("deleted {} resource(s)", deleted.len());
    Ok(
        if fhir.preference == caduceus_engine::ReturnPreference::Minimal {
            StatusCode::NO_CONTENT.into_response()
        } else {
            outcome_response(
                StatusCode::OK,
                &OperationOutcome::single(Issue::information(message)),
                fhir.output,
            )
        },
    )
}

/// 405 for PUT or DELETE on a type without a search: only the conditional forms exist.
fn needs_search(method: &str) -> Response {
    let e = FhirError::new(
        405,
        caduceus_model::IssueCode::NotSupported,
        format!(
            "{method} on a resource type needs search parameters (conditional {method}); use [type]/[id] otherwise"
        ),
    );
    let mut response = outcome_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &e.outcome,
        crate::negotiate::Output::default(),
    );
    response.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static("GET, HEAD, POST"),
    );
    response
}

/// A conditional delete matching more resources than this is refused (412).
const MAX_CONDITIONAL_DELETES: u32 = 100;

/// The query without the parameters that shape the response, not the match.
fn without_format(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "_format" && k != "_pretty")
        .fold(
            form_urlencoded::Serializer::new(String::new()),
            |mut s, (k, v)| {
                s.append_pair(&k, &v);
                s
            },
        )
        .finish()
}

/// GET `/[type]?...`: type-level search.
pub(crate) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Path(resource_type): Path<String>,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let request = SearchRequest {
        types: vec![resource_type],
        compartment: None,
        params: fhir.params.clone(),
        strict: fhir.strict,
    };
    search_response(&caller.engine(&state), &request, &fhir).await
}

/// POST `/[type]/_search`: the same search with parameters in a form body (and the URL).
pub(crate) async fn search_post(
    State(state): State<AppState>,
    caller: Caller,
    Path(resource_type): Path<String>,
    fhir: Fhir,
    FormParams(form): FormParams,
) -> Result<Response, ApiError> {
    let mut params = fhir.params.clone();
    params.extend(form);
    let request = SearchRequest {
        types: vec![resource_type],
        compartment: None,
        params,
        strict: fhir.strict,
    };
    search_response(&caller.engine(&state), &request, &fhir).await
}

/// Runs a search and writes the searchset Bundle.
pub(crate) async fn search_response(
    engine: &caduceus_engine::Engine,
    request: &SearchRequest,
    fhir: &Fhir,
) -> Result<Response, ApiError> {
    let body = engine.search(request, &fhir.base).await?;
    Ok(json_response(
        StatusCode::OK,
        fhir.output.render(Bytes::from(body)),
    ))
}

/// POST `/[type]/$validate`: the body is the resource (or a Parameters with a `resource`).
pub(crate) async fn validate(
    State(state): State<AppState>,
    Path(resource_type): Path<String>,
    fhir: Fhir,
    ResourceBody(body): ResourceBody,
) -> Result<Response, ApiError> {
    check_type(&resource_type)?;
    Ok(validate_response(
        &state,
        &resource_type,
        None,
        body,
        fhir.output,
    ))
}

/// Runs `$validate`: the operation itself succeeded, so the answer is 200 with the outcome
/// listing every issue, whether or not the resource is valid; nothing is stored.
pub(crate) fn validate_response(
    state: &AppState,
    resource_type: &str,
    id: Option<&str>,
    body: serde_json::Value,
    output: Output,
) -> Response {
    let resource = unwrap_parameters(body);
    // Validation reads no stored data: the caller's access does not enter into it.
    let outcome = state.engine().validate(Some(resource_type), id, &resource);
    outcome_response(StatusCode::OK, &outcome, output)
}

/// `$validate` may be called with `Parameters { parameter: [{ name: "resource", resource }] }`.
fn unwrap_parameters(body: serde_json::Value) -> serde_json::Value {
    if body.get("resourceType").and_then(|v| v.as_str()) != Some("Parameters") {
        return body;
    }
    body.get("parameter")
        .and_then(|p| p.as_array())
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("name").and_then(|n| n.as_str()) == Some("resource"))
        })
        .and_then(|p| p.get("resource"))
        .cloned()
        .unwrap_or(body)
}

/// GET `/[type]/_history`.
pub(crate) async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(resource_type): Path<String>,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let body = caller
        .engine(&state)
        .history(
            HistoryScope::Type(resource_type),
            &history_params(&fhir),
            &fhir.base,
        )
        .await?;
    Ok(json_response(
        StatusCode::OK,
        fhir.output.render(Bytes::from(body)),
    ))
}

/// The history parameters of a request.
pub(crate) fn history_params(fhir: &Fhir) -> HistoryParams {
    HistoryParams {
        since: fhir.param("_since").map(str::to_owned),
        at: fhir.param("_at").map(str::to_owned),
        count: fhir.param("_count").map(str::to_owned),
        cursor: fhir.param("_cursor").map(str::to_owned),
    }
}
