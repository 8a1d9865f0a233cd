//! OperationOutcome: how every error, warning and validation finding is reported.

use serde_json::{Map, Value, json};

/// `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The issue is informational only.
    Information,
    /// Worth knowing; the action went ahead.
    Warning,
    /// The action failed because of this issue.
    Error,
    /// The action failed and nothing else could be checked.
    Fatal,
}

impl Severity {
    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            Severity::Information => "information",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        }
    }
}

/// `OperationOutcome.issue.code` (the IssueType value set), the subset Caduceus reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is the FHIR code of the same name
pub enum IssueCode {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    Security,
    Login,
    Forbidden,
    Processing,
    NotSupported,
    Duplicate,
    NotFound,
    Deleted,
    TooLong,
    CodeInvalid,
    Extension,
    TooCostly,
    BusinessRule,
    Conflict,
    Transient,
    Exception,
    Timeout,
    Throttled,
    Informational,
}

impl IssueCode {
    /// The FHIR code.
    pub fn code(self) -> &'static str {
        use IssueCode::*;
        match self {
            Invalid => "invalid",
            Structure => "structure",
            Required => "required",
            Value => "value",
            Invariant => "invariant",
            Security => "security",
            Login => "login",
            Forbidden => "forbidden",
            Processing => "processing",
            NotSupported => "not-supported",
            Duplicate => "duplicate",
            NotFound => "not-found",
            Deleted => "deleted",
            TooLong => "too-long",
            CodeInvalid => "code-invalid",
            Extension => "extension",
            TooCostly => "too-costly",
            BusinessRule => "business-rule",
            Conflict => "conflict",
            Transient => "transient",
            Exception => "exception",
            Timeout => "timeout",
            Throttled => "throttled",
            Informational => "informational",
        }
    }
}

/// One `OperationOutcome.issue`.
///
/// `diagnostics` must never carry patient data (names, identifiers, dates, free text): it
/// names the rule that failed and where, not the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// How bad it is.
    pub severity: Severity,
    /// What kind of problem.
    pub code: IssueCode,
    /// Human-readable explanation, free of patient data.
    pub diagnostics: String,
    /// FHIRPath-style locations of the problem, e.g. `Patient.name[0].given[1]`.
    pub expression: Vec<String>,
}

impl Issue {
    /// An error issue.
    pub fn error(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: Vec::new(),
        }
    }

    /// A warning issue.
    pub fn warning(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Warning,
            ..Issue::error(code, diagnostics)
        }
    }

    /// An information issue.
    pub fn information(diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Information,
            ..Issue::error(IssueCode::Informational, diagnostics)
        }
    }

    /// Adds the location of the problem.
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression.push(expression.into());
        self
    }

    /// True for error and fatal issues.
    pub fn is_error(&self) -> bool {
        self.severity >= Severity::Error
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("severity".into(), self.severity.code().into());
        m.insert("code".into(), self.code.code().into());
        if !self.diagnostics.is_empty() {
            m.insert("diagnostics".into(), self.diagnostics.clone().into());
        }
        if !self.expression.is_empty() {
            m.insert("expression".into(), json!(self.expression));
        }
        Value::Object(m)
    }
}

/// An OperationOutcome resource: a list of issues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationOutcome {
    /// The issues, in the order found.
    pub issues: Vec<Issue>,
}

impl OperationOutcome {
    /// An outcome with one issue.
    pub fn single(issue: Issue) -> Self {
        OperationOutcome {
            issues: vec![issue],
        }
    }

    /// True when any issue is an error.
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(Issue::is_error)
    }

    /// The resource as JSON. An empty outcome says "All OK", as the specification asks.
    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = if self.issues.is_empty() {
            vec![Issue::information("All OK").to_json()]
        } else {
            self.issues.iter().map(Issue::to_json).collect()
        };
        json!({ "resourceType": "OperationOutcome", "issue": issues })
    }
}

impl From<Vec<Issue>> for OperationOutcome {
    fn from(issues: Vec<Issue>) -> Self {
        OperationOutcome { issues }
    }
}
