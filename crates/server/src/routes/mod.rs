//! The route table: which URL and method reach which handler.

mod health;
mod instance;
mod system;
mod type_level;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use caduceus_engine::FhirError;
use caduceus_model::{Issue, IssueCode, OperationOutcome};

use crate::AppState;
use crate::negotiate::Output;
use crate::response::outcome_response;

pub(crate) fn router(state: AppState) -> Router {
    let fhir = Router::new()
        .route("/", get(system::search).post(system::bundle))
        .route("/_search", axum::routing::post(system::search_post))
        .route("/_history", get(system::history))
        .route(
            "/$break-glass",
            axum::routing::post(crate::break_glass::declare),
        )
        .route(
            "/{type}",
            get(type_level::search)
                .post(type_level::create)
                .put(type_level::update_conditional)
                .delete(type_level::delete_conditional),
        )
        .route("/{type}/_history", get(type_level::history))
        .route(
            "/{type}/_search",
            axum::routing::post(type_level::search_post),
        )
        .route(
            "/{type}/$validate",
            axum::routing::post(type_level::validate),
        )
        .route(
            "/{type}/{id}",
            get(instance::read)
                .put(instance::update)
                .patch(instance::patch)
                .delete(instance::delete),
        )
        .route("/{type}/{id}/_history", get(instance::history))
        .route("/{type}/{id}/$everything", get(instance::everything))
        .route(
            "/{type}/{id}/{compartment_type}",
            get(system::compartment_search),
        )
        .route("/{type}/{id}/_history/{vid}", get(instance::vread))
        .route(
            "/{type}/{id}/$validate",
            axum::routing::post(instance::validate),
        );
    let top = Router::new()
        // Clients that keep the base URL with a trailing slash (fhirclient does) post batch
        // and transaction Bundles to `/fhir/`.
        .route("/fhir/", get(system::search).post(system::bundle));
    // Authentication is a layer of the whole app (`layers::wrap`); these routes are on
    // its public list (`auth::is_public`).
    let fhir = fhir
        .route("/metadata", get(system::capabilities))
        .route(
            "/.well-known/smart-configuration",
            get(system::smart_configuration),
        )
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/fhir", fhir)
        .merge(top)
        .route("/metadata", get(system::capabilities))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    outcome_response(
        StatusCode::NOT_FOUND,
        &OperationOutcome::single(Issue::error(
            IssueCode::NotFound,
            "no such endpoint; the FHIR API is under /fhir",
        )),
        Output::default(),
    )
}

async fn method_not_allowed() -> Response {
    let e = FhirError::new(
        405,
        IssueCode::NotSupported,
        "this interaction is not allowed on this URL",
    );
    outcome_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &e.outcome,
        Output::default(),
    )
}

/// Reads `If-Match` as a version number; 400 when it is not a version tag.
pub(crate) fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<u64>, crate::ApiError> {
    match headers.get(axum::http::header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(caduceus_engine::parse_version_tag)
            .map(Some)
            .ok_or_else(|| {
                crate::ApiError(FhirError::bad_request(
                    "If-Match must be a version tag such as W/\"3\"",
                ))
            }),
    }
}
