//! `GET/POST /auth/authorize`: the authorization code grant's sign-in (RFC 6749 4.1 with
//! PKCE, RFC 7636, S256 only).
//!
//! The request is checked in two stages, as RFC 6749 4.1.2.1 asks: an unknown `client_id`
//! or a `redirect_uri` not registered for it gets an HTML error page here (never a
//! redirect to an unchecked address); every other problem is redirected back to the
//! client as `error=...&state=...`. A wrong username, password or TOTP code shows the form
//! again with one message that never says which was wrong nor whether the user exists;
//! repeated failures lock the account for growing periods (five free, then 30 s doubling
//! up to 15 minutes), counted in the store so every replica sees them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use caduceus_access::{Scope, ScopeContext};
use serde::{Deserialize, Serialize};

use crate::accounts::{UserRecord, from_json, to_json};
use crate::grants::{CODE_PREFIX, CODE_TTL, CodeRecord};
use crate::http::{Form, no_store};
use crate::util::{now, random_token, sha256_hex};
use crate::{AuthServerError, Inner, password, scopes, totp};

/// Meta keys of failed sign-ins: `auth.fail.<username>` → [`Failures`].
pub(crate) const FAIL_PREFIX: &str = "auth.fail.";
/// Meta keys of used TOTP steps: `auth.totp-used.<username>.<step>` → expiry.
pub(crate) const TOTP_USED_PREFIX: &str = "auth.totp-used.";
const FREE_FAILURES: u32 = 5;
const MAX_LOCK_SECS: i64 = 900;

const SIGN_IN_FAILED: &str = "The username, password or code is not correct, or there were \
     too many attempts: wait a moment and try again.";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Failures {
    count: u32,
    until: i64,
}

/// The checked authorization request.
struct Request {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    scope: String,
    /// The granted scopes before the user's patient context is known.
    granted: Vec<String>,
    aud: Option<String>,
}

/// A problem after `client_id` and `redirect_uri` were checked: redirected back.
struct Redirected {
    redirect_uri: String,
    state: Option<String>,
    error: &'static str,
    description: String,
}

enum Refusal {
    Page(String),
    Redirect(Redirected),
}

impl From<AuthServerError> for Refusal {
    fn from(e: AuthServerError) -> Self {
        tracing::error!(error = %e, "authorization request failed");
        Refusal::Page("The server cannot answer now; try again later.".into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(why) => page(
                StatusCode::BAD_REQUEST,
                &format!("<h1>Sign-in request refused</h1><p>{}</p>", escape(&why)),
            ),
            Refusal::Redirect(r) => {
                let mut params = vec![("error", r.error), ("error_description", &r.description)];
                if let Some(s) = &r.state {
                    params.push(("state", s));
                }
                redirect(StatusCode::FOUND, &r.redirect_uri, &params)
            }
        }
    }
}

pub(crate) async fn authorize_get(
    State(inner): State<Arc<Inner>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match Form::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(why) => return Refusal::Page(why).into_response(),
    };
    match check(&inner, &params).await {
        Ok(req) => sign_in_form(&req, None),
        Err(r) => r.into_response(),
    }
}

pub(crate) async fn authorize_post(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match Form::body(&headers, &body) {
        Ok(f) => f,
        Err(e) => return Refusal::Page(e.description).into_response(),
    };
    let req = match check(&inner, &form).await {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let username = form.get("username").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    let code = form.get("totp").unwrap_or("");
    match sign_in(&inner, username, password, code).await {
        Ok(Some(user)) => match issue_code(&inner, &req, username, &user).await {
            Ok(response) => response,
            Err(r) => r.into_response(),
        },
        Ok(None) => {
            tracing::info!(client_id = %req.client_id, "sign-in refused");
            sign_in_form(&req, Some(SIGN_IN_FAILED))
        }
        Err(e) => Refusal::from(e).into_response(),
    }
}

/// Checks the request parameters (from the query, or the form's hidden fields).
async fn check(inner: &Inner, p: &Form) -> Result<Request, Refusal> {
    let client_id = p
        .get("client_id")
        .ok_or_else(|| Refusal::Page("client_id is missing.".into()))?;
    let client = inner
        .accounts
        .client(client_id)
        .await?
        .ok_or_else(|| Refusal::Page("The application is not registered.".into()))?;
    let redirect_uri = p
        .get("redirect_uri")
        .ok_or_else(|| Refusal::Page("redirect_uri is missing.".into()))?;
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(Refusal::Page(
            "The redirect_uri is not registered for this application.".into(),
        ));
    }
    let state = p.get("state").map(str::to_owned);
    let back = |error: &'static str, description: &str| {
        Refusal::Redirect(Redirected {
            redirect_uri: redirect_uri.to_owned(),
            state: state.clone(),
            error,
            description: description.to_owned(),
        })
    };
    if p.get("response_type") != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    if p.get("code_challenge_method") != Some("S256") {
        return Err(back(
            "invalid_request",
            "PKCE is required: code_challenge_method must be S256",
        ));
    }
    let code_challenge = p.get("code_challenge").unwrap_or("");
    if code_challenge.len() != 43
        || !code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(back(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier",
        ));
    }
    let aud = p.get("aud").map(str::to_owned);
    if let Some(aud) = &aud
        && aud.trim_end_matches('/') != inner.config.fhir_audience
    {
        return Err(back(
            "invalid_request",
            "aud is not this server's FHIR base URL",
        ));
    }
    let scope = p
        .get("scope")
        .ok_or_else(|| back("invalid_scope", "scope is required"))?;
    let granted = scopes::grant(
        scope,
        &client.scopes,
        &[ScopeContext::User, ScopeContext::Patient],
    )
    .map_err(|why| back("invalid_scope", &why))?;
    if !scopes::has_resource_scope(&granted) {
        return Err(back(
            "invalid_scope",
            "none of the requested user/ or patient/ scopes is allowed for this application",
        ));
    }
    Ok(Request {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        state,
        code_challenge: code_challenge.to_owned(),
        scope: scope.to_owned(),
        granted,
        aud,
    })
}

/// Checks the credentials; `Some(user)` when all three are right and the account is not
/// locked. Takes an Argon2 verification's time whatever the outcome.
async fn sign_in(
    inner: &Inner,
    username: &str,
    password: &str,
    code: &str,
) -> Result<Option<UserRecord>, AuthServerError> {
    let user = inner.accounts.user(username).await?;
    let Some(user) = user else {
        password::verify(password.to_owned(), None).await?;
        return Ok(None);
    };
    let fail_key = format!("{FAIL_PREFIX}{username}");
    let failures: Failures = match inner.store.meta(&fail_key).await? {
        Some(v) => from_json(&v, &fail_key).unwrap_or_default(),
        None => Failures::default(),
    };
    let t = now();
    if failures.until > t {
        // Locked: not counted again, so others' attempts cannot extend the lock.
        password::verify(password.to_owned(), None).await?;
        return Ok(None);
    }
    let password_ok = password::verify(password.to_owned(), Some(user.password.clone())).await?;
    let step = totp::decode_secret(&user.totp).and_then(|s| totp::matching_step(&s, code, t));
    let ok = match (password_ok, step) {
        (true, Some(step)) => {
            // A step's code is accepted once per user (RFC 6238 5.2), on every replica.
            let used = format!("{TOTP_USED_PREFIX}{username}.{step}");
            let expires = (step + 2) * totp::STEP;
            inner.store.insert_meta(&used, &expires.to_string()).await?
        }
        _ => false,
    };
    if ok {
        if failures.count > 0 {
            inner.store.delete_meta(&fail_key).await?;
        }
        Ok(Some(user))
    } else {
        record_failure(inner, &fail_key, failures, t).await?;
        Ok(None)
    }
}

async fn record_failure(
    inner: &Inner,
    key: &str,
    mut failures: Failures,
    t: i64,
) -> Result<(), AuthServerError> {
    failures.count = failures.count.saturating_add(1);
    if failures.count >= FREE_FAILURES {
        let doublings = (failures.count - FREE_FAILURES).min(10);
        failures.until = t + (30i64 << doublings).min(MAX_LOCK_SECS);
    }
    inner.store.set_meta(key, &to_json(&failures)?).await?;
    Ok(())
}

/// Stores a code for the signed-in user and redirects back with it.
async fn issue_code(
    inner: &Inner,
    req: &Request,
    username: &str,
    user: &UserRecord,
) -> Result<Response, Refusal> {
    let back = |error: &'static str, description: &str| {
        Refusal::Redirect(Redirected {
            redirect_uri: req.redirect_uri.clone(),
            state: req.state.clone(),
            error,
            description: description.to_owned(),
        })
    };
    // The patient in context: a patient user is their own; there is no patient picker.
    let patient = user
        .fhir_user
        .as_deref()
        .and_then(|f| f.strip_prefix("Patient/"))
        .map(str::to_owned);
    let granted: Vec<String> = req
        .granted
        .iter()
        .filter(|s| {
            patient.is_some()
                || (s.as_str() != scopes::LAUNCH_PATIENT
                    && !matches!(Scope::parse(s), Ok(Some(sc)) if sc.context == ScopeContext::Patient))
        })
        .cloned()
        .collect();
    if !scopes::has_resource_scope(&granted) {
        return Err(back(
            "invalid_scope",
            "patient/ scopes need a patient in context, and this user has none",
        ));
    }
    let patient = patient.filter(|_| {
        granted
            .iter()
            .any(|s| s == scopes::LAUNCH_PATIENT || s.starts_with("patient/"))
    });
    let code = random_token(32)?;
    let record = CodeRecord {
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        username: username.to_owned(),
        scopes: granted,
        patient,
        exp: now() + CODE_TTL,
    };
    inner
        .store
        .set_meta(
            &format!("{CODE_PREFIX}{}", sha256_hex(&code)),
            &to_json(&record)?,
        )
        .await
        .map_err(AuthServerError::from)?;
    tracing::info!(client_id = %req.client_id, "sign-in succeeded; code issued");
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    Ok(redirect(StatusCode::SEE_OTHER, &req.redirect_uri, &params))
}

fn redirect(status: StatusCode, uri: &str, params: &[(&str, &str)]) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{sep}{}", query.finish());
    let mut response = status.into_response();
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            response.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            return Refusal::Page("The redirect address is not valid.".into()).into_response();
        }
    }
    no_store(response.headers_mut());
    response
}

fn sign_in_form(req: &Request, error: Option<&str>) -> Response {
    let mut hidden = String::new();
    let mut field = |name: &str, value: &str| {
        hidden.push_str(&format!(
            r#"<input type="hidden" name="{name}" value="{}">"#,
            escape(value)
        ));
    };
    field("response_type", "code");
    field("client_id", &req.client_id);
    field("redirect_uri", &req.redirect_uri);
    field("scope", &req.scope);
    field("code_challenge", &req.code_challenge);
    field("code_challenge_method", "S256");
    if let Some(s) = &req.state {
        field("state", s);
    }
    if let Some(a) = &req.aud {
        field("aud", a);
    }
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Sign in</h1>
<p><b>{client}</b> asks for access: <code>{scopes}</code></p>
{error}
<form method="post" action="authorize" autocomplete="off">
{hidden}
<label>Username <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<label>Authenticator code <input name="totp" inputmode="numeric" pattern="[0-9]{{6}}" autocomplete="one-time-code" required></label>
<button type="submit">Sign in</button>
</form>"#,
        client = escape(&req.client_id),
        scopes = escape(&req.granted.join(" ")),
    );
    page(StatusCode::OK, &body)
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Caduceus sign-in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0}}input{{display:block;width:100%;padding:.4rem}}
.error{{color:#a00}}code{{word-break:break-all}}</style></head>
<body>{body}</body></html>"#
    );
    let mut response = (status, Html(html)).into_response();
    let h = response.headers_mut();
    no_store(h);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
