//! Whole-system interactions: capabilities, batch/transaction, system history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use caduceus_engine::SearchRequest;
use caduceus_store::HistoryScope;

use crate::auth::Caller;
use crate::negotiate::{Fhir, FormParams, ResourceBody};
use crate::response::json_response;
use crate::routes::type_level::{history_params, search_response};
use crate::{ApiError, AppState};

/// GET `/metadata`.
pub(crate) async fn capabilities(State(state): State<AppState>, fhir: Fhir) -> Response {
    let mut statement = state
        .engine()
        .capability_statement(&fhir.base, &state.config().software_version);
    if let Some(rest) = statement
        .get_mut("rest")
        .and_then(|r| r.get_mut(0))
        .and_then(serde_json::Value::as_object_mut)
        && let Some(security) = security_section(&state)
    {
        rest.insert("security".to_owned(), security);
    }
    let body = serde_json::to_vec(&statement).unwrap_or_default();
    json_response(StatusCode::OK, fhir.output.render(Bytes::from(body)))
}

/// `CapabilityStatement.rest.security`: SMART on FHIR, with the authorization server's
/// endpoints when this server has its own (the `oauth-uris` extension of SMART App
/// Launch). None in `--insecure-dev-mode`, where nothing is asked.
fn security_section(state: &AppState) -> Option<serde_json::Value> {
    if matches!(state.auth(), crate::AuthMode::Insecure) {
        return None;
    }
    let mut security = serde_json::json!({
        "cors": !state.config().cors_origins.is_empty(),
        "service": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR"
        }]}],
        "description": "OAuth2 bearer tokens (SMART on FHIR scopes); see /.well-known/smart-configuration"
    });
    if let Some(smart) = &state.config().smart_configuration {
        let mut uris = Vec::new();
        for (name, key) in [
            ("authorize", "authorization_endpoint"),
            ("token", "token_endpoint"),
            ("introspect", "introspection_endpoint"),
            ("revoke", "revocation_endpoint"),
        ] {
            if let Some(url) = smart.get(key).and_then(serde_json::Value::as_str) {
                uris.push(serde_json::json!({"url": name, "valueUri": url}));
            }
        }
        security["extension"] = serde_json::json!([{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": uris
        }]);
    }
    Some(security)
}

/// GET `/.well-known/smart-configuration`: how SMART apps find the authorization server.
/// 404 when this server has none of its own (an external identity provider's clients use
/// its discovery document).
pub(crate) async fn smart_configuration(State(state): State<AppState>) -> Response {
    match &state.config().smart_configuration {
        Some(document) => json_response(
            StatusCode::OK,
            Bytes::from(serde_json::to_vec(document).unwrap_or_default()),
        ),
        None => crate::response::outcome_response(
            StatusCode::NOT_FOUND,
            &caduceus_model::OperationOutcome::single(caduceus_model::Issue::error(
                caduceus_model::IssueCode::NotFound,
                "this server has no authorization server of its own; use the identity \
                 provider's discovery document",
            )),
            crate::negotiate::Output::default(),
        ),
    }
}

/// POST `/` with a batch or transaction Bundle.
pub(crate) async fn bundle(
    State(state): State<AppState>,
    caller: Caller,
    fhir: Fhir,
    ResourceBody(bundle): ResourceBody,
) -> Result<Response, ApiError> {
    let response = caller
        .engine(&state)
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
    caller: Caller,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let body = caller
        .engine(&state)
        .history(HistoryScope::System, &history_params(&fhir), &fhir.base)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        fhir.output.render(Bytes::from(body)),
    ))
}

/// GET `/` (or POST `/_search`): system-level search; `_type` names the types.
pub(crate) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let request = SearchRequest {
        types: Vec::new(),
        compartment: None,
        params: fhir.params.clone(),
        strict: fhir.strict,
    };
    search_response(&caller.engine(&state), &request, &fhir).await
}

/// POST `/_search`.
pub(crate) async fn search_post(
    State(state): State<AppState>,
    caller: Caller,
    fhir: Fhir,
    FormParams(form): FormParams,
) -> Result<Response, ApiError> {
    let mut params = fhir.params.clone();
    params.extend(form);
    let request = SearchRequest {
        types: Vec::new(),
        compartment: None,
        params,
        strict: fhir.strict,
    };
    search_response(&caller.engine(&state), &request, &fhir).await
}

/// GET `/[compartment type]/[id]/[type]` and `/[compartment type]/[id]/*`.
pub(crate) async fn compartment_search(
    State(state): State<AppState>,
    caller: Caller,
    Path((compartment_type, id, resource_type)): Path<(String, String, String)>,
    fhir: Fhir,
) -> Result<Response, ApiError> {
    let types = if resource_type == "*" {
        Vec::new()
    } else {
        vec![resource_type]
    };
    let request = SearchRequest {
        types,
        compartment: Some((compartment_type, id)),
        params: fhir.params.clone(),
        strict: fhir.strict,
    };
    search_response(&caller.engine(&state), &request, &fhir).await
}
