//! Building FHIR responses: resource bodies with their headers, and OperationOutcomes.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use caduceus_engine::{FhirError, ReturnPreference};
use caduceus_model::OperationOutcome;
use caduceus_model::ids::format_http_date;
use caduceus_store::StoredVersion;

use crate::negotiate::Output;

/// `application/fhir+json; charset=utf-8`.
pub(crate) const FHIR_JSON_UTF8: HeaderValue =
    HeaderValue::from_static("application/fhir+json; charset=utf-8");

/// Any engine error, as an HTTP response with an OperationOutcome body.
#[derive(Debug)]
pub struct ApiError(pub FhirError);

impl From<FhirError> for ApiError {
    fn from(e: FhirError) -> Self {
        ApiError(e)
    }
}

/// Seconds a client is told to wait before retrying a 503: long enough for a database
/// failover or restart to make progress, short enough not to stall a retrying client.
pub(crate) const RETRY_AFTER_SECONDS: HeaderValue = HeaderValue::from_static("5");

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = outcome_response(status, &self.0.outcome, Output::default());
        // 503 is what the engine answers when the store is unavailable (the database is
        // down or unreachable): the request may succeed later, so say when to retry.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, RETRY_AFTER_SECONDS);
        }
        response
    }
}

/// An OperationOutcome with `status`.
pub(crate) fn outcome_response(
    status: StatusCode,
    outcome: &OperationOutcome,
    output: Output,
) -> Response {
    let body = serde_json::to_vec(&outcome.to_json()).unwrap_or_default();
    json_response(status, output.render(Bytes::from(body)))
}

/// A JSON body with the FHIR content type.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, FHIR_JSON_UTF8);
    response
}

/// `ETag`, `Last-Modified` (and on writes `Location`) of a version.
pub(crate) fn version_headers(
    headers: &mut HeaderMap,
    v: &StoredVersion,
    location_base: Option<&str>,
) {
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", v.version)) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(date) = HeaderValue::from_str(&format_http_date(v.last_updated)) {
        headers.insert(header::LAST_MODIFIED, date);
    }
    if let Some(base) = location_base {
        let location = format!("{base}/{}/{}/_history/{}", v.resource_type, v.id, v.version);
        if let Ok(value) = HeaderValue::from_str(&location) {
            headers.insert(header::LOCATION, value.clone());
            headers.insert(header::CONTENT_LOCATION, value);
        }
    }
}

/// The response to a read or vread: the stored bytes as they are (unless `_pretty`).
pub(crate) fn resource_response(v: &StoredVersion, output: Output) -> Response {
    let body = v.body.clone().unwrap_or_default();
    let mut response = json_response(StatusCode::OK, output.render(body));
    version_headers(response.headers_mut(), v, None);
    response
}

/// The response to a create, update or patch, honouring `Prefer: return=`.
pub(crate) fn write_response(
    status: StatusCode,
    v: &StoredVersion,
    base: &str,
    preference: ReturnPreference,
    output: Output,
) -> Response {
    let mut response = match preference {
        ReturnPreference::Representation => {
            json_response(status, output.render(v.body.clone().unwrap_or_default()))
        }
        ReturnPreference::OperationOutcome => {
            outcome_response(status, &OperationOutcome::default(), output)
        }
        ReturnPreference::Minimal => status.into_response(),
    };
    version_headers(response.headers_mut(), v, Some(base));
    response
}
