//! Content negotiation and the request-wide FHIR parameters: `Accept` and `_format`
//! (JSON only), `_pretty`, `Prefer: return=`, the base URL, and request bodies by
//! `Content-Type`.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header, request::Parts};
use bytes::Bytes;
use caduceus_engine::{FhirError, ReturnPreference, parse_json};
use caduceus_model::IssueCode;
use serde_json::Value;

use crate::{ApiError, AppState};

/// How to write a response body.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Output {
    /// `_pretty=true`: indent the JSON.
    pub pretty: bool,
}

impl Output {
    /// The body to send. Only `_pretty` re-serialises; otherwise the bytes pass as they are.
    pub fn render(self, body: Bytes) -> Bytes {
        if !self.pretty || body.is_empty() {
            return body;
        }
        match serde_json::from_slice::<Value>(&body).and_then(|v| serde_json::to_vec_pretty(&v)) {
            Ok(pretty) => Bytes::from(pretty),
            Err(_) => body,
        }
    }
}

/// The FHIR request context every handler takes.
pub(crate) struct Fhir {
    pub output: Output,
    pub preference: ReturnPreference,
    /// Query parameters in order, decoded, without `_format` and `_pretty`.
    pub params: Vec<(String, String)>,
    /// The FHIR base URL, without a trailing slash.
    pub base: String,
    /// `Prefer: handling=strict`.
    pub strict: bool,
}

impl Fhir {
    /// The last value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl FromRequestParts<AppState> for Fhir {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut output = Output::default();
        let mut params = Vec::new();
        let mut format = None;
        if let Some(query) = parts.uri.query() {
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                match k.as_ref() {
                    "_pretty" => output.pretty = v == "true",
                    "_format" => format = Some(v.into_owned()),
                    _ => params.push((k.into_owned(), v.into_owned())),
                }
            }
        }
        match format {
            Some(f) => {
                if !is_json_format(&f) {
                    return Err(not_acceptable());
                }
            }
            None => check_accept(&parts.headers)?,
        }
        let base = match &state.config().public_base_url {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None => {
                // HTTP/2 requests carry the host in the URI (`:authority`), not `Host`.
                let host = parts
                    .headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .or_else(|| parts.uri.authority().map(|a| a.as_str()))
                    .unwrap_or("localhost");
                let scheme = if parts.extensions.get::<crate::tls::OverTls>().is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{host}/fhir")
            }
        };
        Ok(Fhir {
            output,
            preference: return_preference(&parts.headers),
            params,
            base,
            strict: prefer_values(&parts.headers).any(|p| p == "handling=strict"),
        })
    }
}

fn is_json_format(f: &str) -> bool {
    matches!(
        f,
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
    ) || f.starts_with("application/fhir+json;")
        || f.starts_with("application/json;")
}

fn not_acceptable() -> ApiError {
    ApiError(FhirError::new(
        406,
        IssueCode::NotSupported,
        "this server produces JSON only (application/fhir+json)",
    ))
}

/// An `Accept` header is fine when any of its media ranges admits JSON.
fn check_accept(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()) else {
        return Ok(());
    };
    let acceptable = accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or("").trim();
        media.is_empty()
            || matches!(
                media,
                "*/*"
                    | "application/*"
                    | "application/json"
                    | "application/fhir+json"
                    | "application/json+fhir"
            )
    });
    if acceptable {
        Ok(())
    } else {
        Err(not_acceptable())
    }
}

/// Every `Prefer` token (`return=minimal`, `handling=strict`, ...), trimmed.
fn prefer_values(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .map(str::trim)
}

fn return_preference(headers: &HeaderMap) -> ReturnPreference {
    let prefer = prefer_values(headers)
        .filter_map(|p| p.strip_prefix("return="))
        .last();
    match prefer.map(|p| p.trim_matches('"')) {
        Some("minimal") => ReturnPreference::Minimal,
        Some("OperationOutcome") => ReturnPreference::OperationOutcome,
        _ => ReturnPreference::Representation,
    }
}

/// A request body that must be a FHIR resource in JSON.
pub(crate) struct ResourceBody(pub Value);

impl FromRequest<AppState> for ResourceBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = content_type(req.headers());
        if let Some(ct) = &content_type
            && !matches!(
                ct.as_str(),
                "application/fhir+json" | "application/json" | "application/json+fhir"
            )
        {
            return Err(unsupported_media_type(
                "a resource must be sent as application/fhir+json",
            ));
        }
        let bytes = read_body(req, state).await?;
        Ok(ResourceBody(parse_json(&bytes)?))
    }
}

/// A request body that must be a JSON Patch document.
pub(crate) struct PatchBody(pub Value);

impl FromRequest<AppState> for PatchBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match content_type(req.headers()).as_deref() {
            Some("application/json-patch+json") => {}
            Some("application/fhir+json")
            | Some("application/fhir+xml")
            | Some("application/xml") => {
                return Err(ApiError(FhirError::not_implemented(
                    "FHIRPath Patch and XML Patch are not supported yet; send application/json-patch+json",
                )));
            }
            _ => {
                return Err(unsupported_media_type(
                    "PATCH takes application/json-patch+json",
                ));
            }
        }
        let bytes = read_body(req, state).await?;
        Ok(PatchBody(parse_json(&bytes)?))
    }
}

/// A `POST [type]/_search` body: `application/x-www-form-urlencoded` parameters.
pub(crate) struct FormParams(pub Vec<(String, String)>);

impl FromRequest<AppState> for FormParams {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match content_type(req.headers()).as_deref() {
            Some("application/x-www-form-urlencoded") | None => {}
            _ => {
                return Err(unsupported_media_type(
                    "_search takes application/x-www-form-urlencoded",
                ));
            }
        }
        let bytes = read_body(req, state).await?;
        Ok(FormParams(
            form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

fn unsupported_media_type(message: &str) -> ApiError {
    ApiError(FhirError::new(415, IssueCode::NotSupported, message))
}

async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        let status = rejection.status().as_u16();
        let code = if status == 413 {
            IssueCode::TooLong
        } else {
            IssueCode::Structure
        };
        ApiError(FhirError::new(
            status,
            code,
            "the request body could not be read (too large or interrupted)",
        ))
    })
}
