//! Break-glass: in an emergency a caller whose role allows it declares, with a reason,
//! that they need to see what security labels hide (`POST [base]/$break-glass`). For a
//! limited time (`ServerConfig::break_glass`) their clearance is raised to V and their
//! departments to all; roles, scopes and the patient compartment still hold. Every grant is
//! recorded as an AuditEvent (a security alert, purpose "break the glass", the reason as
//! its text, R5's severity `alert` as an extension) and a warning in the log that names the
//! account, never the reason (it may name a patient).
//!
//! Grants live in the store's metadata, so every replica honours them; each replica reuses
//! an answer for a few seconds, so a grant made elsewhere is seen within that time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use caduceus_access::{Clearance, Principal};
use caduceus_engine::FhirError;
use caduceus_model::IssueCode;
use caduceus_model::ids::{format_instant, now_micros};
use caduceus_store::Store;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::negotiate::{Fhir, ResourceBody};
use crate::response::json_response;
use crate::{ApiError, AppState, AuthMode};

/// How long a replica reuses what the store said of a caller's grant.
const CACHE: Duration = Duration::from_secs(5);
/// The longest reason kept.
const MAX_REASON: usize = 1000;
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// The grants of this replica's callers, as last read from the store.
#[derive(Default)]
pub(crate) struct Grants {
    cache: Mutex<HashMap<String, (Instant, Option<i64>)>>,
}

fn key(principal: &Principal) -> String {
    format!(
        "access.break-glass.{}|{}",
        principal.issuer, principal.subject
    )
}

impl Grants {
    /// Raises `principal`'s clearance if it holds a grant that has not expired.
    pub(crate) async fn apply(&self, store: &dyn Store, principal: &mut Principal) {
        let key = key(principal);
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied())
            .filter(|(at, _)| at.elapsed() < CACHE);
        let until = match cached {
            Some((_, until)) => until,
            None => {
                // A store that cannot answer grants nothing.
                let until = store
                    .meta(&key)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|v| v.parse::<i64>().ok());
                self.remember(key, until);
                until
            }
        };
        if until.is_some_and(|u| u > now_micros()) {
            principal.clearance = Clearance::VeryRestricted;
            principal.departments = vec!["*".to_owned()];
        }
    }

    fn remember(&self, key: String, until: Option<i64>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), until));
        }
    }
}

/// `POST [base]/$break-glass` with `Parameters { reason: string }`.
pub(crate) async fn declare(
    State(state): State<AppState>,
    caller: Caller,
    fhir: Fhir,
    ResourceBody(body): ResourceBody,
) -> Result<Response, ApiError> {
    let AuthMode::Required { policy, .. } = state.auth() else {
        return Err(ApiError(FhirError::bad_request(
            "break-glass has no meaning without authentication (--insecure-dev-mode)",
        )));
    };
    let Some(principal) = caller.principal() else {
        return Err(ApiError(FhirError::bad_request(
            "break-glass needs an authenticated caller",
        )));
    };
    if !policy.may_break_glass(&principal.roles) {
        return Err(ApiError(FhirError::new(
            403,
            IssueCode::Forbidden,
            "none of the caller's roles may break the glass",
        )));
    }
    let reason = reason(&body)?;
    let now = now_micros();
    let until = now + state.config().break_glass.as_micros() as i64;
    let store = state.engine().store().clone();
    store
        .set_meta(&key(principal), &until.to_string())
        .await
        .map_err(|e| ApiError(e.into()))?;
    state.grants().remember(key(principal), Some(until));
    state
        .engine()
        .create("AuditEvent", audit_event(principal, &reason, now, until))
        .await?;
    tracing::warn!(
        subject = %principal.subject,
        issuer = %principal.issuer,
        until = %format_instant(until),
        "break-glass access granted"
    );
    let answer = json!({"resourceType": "Parameters", "parameter": [
        {"name": "expires", "valueInstant": format_instant(until)}
    ]});
    Ok(json_response(
        StatusCode::OK,
        fhir.output
            .render(Bytes::from(serde_json::to_vec(&answer).unwrap_or_default())),
    ))
}

/// The `reason` parameter: required, not blank, at most 1,000 characters.
fn reason(body: &Value) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError(FhirError::bad_request(why.to_owned()).within("Parameters"));
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(bad("the body must be a Parameters resource with a reason"));
    }
    let reason = body
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("name").and_then(Value::as_str) == Some("reason"))
        .and_then(|p| p.get("valueString"))
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    if reason.is_empty() {
        return Err(bad(
            "break-glass needs a reason (parameter reason, valueString)",
        ));
    }
    Ok(reason.chars().take(MAX_REASON).collect())
}

fn audit_event(principal: &Principal, reason: &str, now: i64, until: i64) -> Value {
    let btg = json!({"system": ACT_REASON, "code": "BTG", "display": "break the glass"});
    let mut who = json!({"identifier": {"value": principal.subject}});
    if principal.issuer.contains("://") {
        who["identifier"]["system"] = json!(principal.issuer);
    }
    json!({
        "resourceType": "AuditEvent",
        "extension": [{
            "url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-AuditEvent.severity",
            "valueCode": "alert"
        }],
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110113",
                 "display": "Security Alert"},
        "subtype": [btg],
        "action": "E",
        "period": {"start": format_instant(now), "end": format_instant(until)},
        "recorded": format_instant(now),
        "outcome": "0",
        "purposeOfEvent": [{"coding": [btg], "text": reason}],
        "agent": [{"who": who, "requestor": true, "purposeOfUse": [{"coding": [btg]}]}],
        "source": {"observer": {"display": "caduceus"}}
    })
}
