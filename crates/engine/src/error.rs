//! The one error type of the engine: a FHIR status code with an OperationOutcome.

use caduceus_model::{Issue, IssueCode, OperationOutcome};
use caduceus_store::StoreError;

/// A failed interaction: the status the REST API answers with and the OperationOutcome that
/// says what is wrong and where. Diagnostics never carry patient data.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {}", first_diagnostic(.outcome))]
pub struct FhirError {
    /// HTTP status code as the FHIR specification assigns it.
    pub status: u16,
    /// What went wrong.
    pub outcome: OperationOutcome,
}

fn first_diagnostic(outcome: &OperationOutcome) -> &str {
    outcome
        .issues
        .first()
        .map(|i| i.diagnostics.as_str())
        .unwrap_or("")
}

impl FhirError {
    /// An error with one issue.
    pub fn new(status: u16, code: IssueCode, diagnostics: impl Into<String>) -> Self {
        FhirError {
            status,
            outcome: OperationOutcome::single(Issue::error(code, diagnostics)),
        }
    }

    /// 400: the request could not be understood.
    pub fn bad_request(diagnostics: impl Into<String>) -> Self {
        Self::new(400, IssueCode::Invalid, diagnostics)
    }

    /// 404: the resource or resource type is not known.
    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        Self::new(404, IssueCode::NotFound, diagnostics)
    }

    /// 410: the resource was deleted.
    pub fn gone(diagnostics: impl Into<String>) -> Self {
        Self::new(410, IssueCode::Deleted, diagnostics)
    }

    /// 409: conflicts with the current state.
    pub fn conflict(diagnostics: impl Into<String>) -> Self {
        Self::new(409, IssueCode::Conflict, diagnostics)
    }

    /// 412: a precondition (`If-Match`) failed.
    pub fn precondition_failed(diagnostics: impl Into<String>) -> Self {
        Self::new(412, IssueCode::Conflict, diagnostics)
    }

    /// 501: a part of FHIR that this server does not implement.
    pub fn not_implemented(diagnostics: impl Into<String>) -> Self {
        Self::new(501, IssueCode::NotSupported, diagnostics)
    }

    /// 422 (invalid content) or 400 (unparseable structure) from validation issues.
    pub fn from_validation(issues: Vec<Issue>) -> Self {
        FhirError {
            status: 422,
            outcome: OperationOutcome::from(issues),
        }
    }

    /// Prefixes every issue's expression (used to place an entry's issues in its bundle).
    pub fn within(mut self, prefix: &str) -> Self {
        for issue in &mut self.outcome.issues {
            if issue.expression.is_empty() {
                issue.expression.push(prefix.to_owned());
            } else {
                for e in &mut issue.expression {
                    *e = format!("{prefix}.{e}");
                }
            }
        }
        self
    }

    /// The status line text, e.g. `404 Not Found`, as bundle responses show it.
    pub fn status_line(&self) -> String {
        status_line(self.status)
    }
}

/// `201 Created` and friends, for bundle `response.status`.
pub fn status_line(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    };
    format!("{status} {reason}").trim_end().to_owned()
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::VersionConflict {
                expected, current, ..
            } => FhirError::precondition_failed(match current {
                Some(c) => format!(
                    "version conflict: If-Match names version {expected}, the current version is {c}"
                ),
                None => format!(
                    "version conflict: If-Match names version {expected}, the resource does not exist"
                ),
            }),
            StoreError::AlreadyExists { .. } => {
                FhirError::conflict("a resource with this id already exists")
            }
            StoreError::DuplicateInWrite { .. } => FhirError::bad_request(
                "the same resource is changed by more than one entry of the transaction",
            ),
            StoreError::InvalidCursor => FhirError::bad_request(
                "the paging cursor is not valid for this search; start again from the first page",
            )
            .within("_cursor"),
            StoreError::Unsupported(what) => {
                FhirError::not_implemented(format!("not supported: {what}"))
            }
            StoreError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "store unavailable");
                FhirError::new(
                    503,
                    IssueCode::Transient,
                    "the store is unavailable; retry later",
                )
            }
            StoreError::Internal(msg) => {
                tracing::error!(error = %msg, "store error");
                FhirError::new(500, IssueCode::Exception, "internal store error")
            }
        }
    }
}
