//! What can be wrong with a search parameter, and how it becomes an [`Issue`].
//!
//! Every error names the parameter (as given, shortened and stripped of control characters)
//! and the rule it breaks, never the value: values can be patient data.

use caduceus_model::{Issue, IssueCode};

/// A problem with one search parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Search parameter '{param}': {kind}")]
pub struct ParamError {
    /// The parameter name as given (sanitised).
    pub param: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with a parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// Not a search parameter of the type(s) searched.
    #[error("not a known search parameter of {0}")]
    Unknown(String),
    /// The value names a search parameter or element the type does not have (`_sort`,
    /// `_include`, `_elements`).
    #[error("refers to an unknown search parameter or element ({0})")]
    UnknownTarget(String),
    /// Known, but this server or this kind of search does not support it.
    #[error("not supported{0}")]
    Unsupported(&'static str),
    /// The value is empty.
    #[error("the value is empty")]
    Empty,
    /// The modifier is not one the specification defines.
    #[error("unknown modifier")]
    UnknownModifier,
    /// The modifier does not apply to the parameter's type.
    #[error("the modifier ':{modifier}' does not apply to a {kind} parameter")]
    ModifierNotAllowed {
        /// The modifier.
        modifier: String,
        /// The parameter's kind.
        kind: &'static str,
    },
    /// A value does not have the form the parameter's type requires.
    #[error("invalid value: {0}")]
    InvalidValue(&'static str),
    /// A chain or `_has` is malformed or does not resolve.
    #[error("{0}")]
    Chain(String),
    /// Chains and `_has` nest deeper than the server allows.
    #[error("chains and _has nest deeper than {0} steps")]
    TooDeep(usize),
    /// A parameter the search allows once was given again.
    #[error("given more than once")]
    Repeated,
    /// The parameter exists, but with different types on the resource types searched.
    #[error("has different types on the resource types searched")]
    KindsDiffer,
}

impl ParamError {
    pub(crate) fn new(param: &str, kind: ErrorKind) -> Self {
        ParamError {
            param: sanitise(param),
            kind,
        }
    }

    /// True when lenient handling ignores the parameter instead of failing: the server does
    /// not know or support it (as opposed to a malformed request).
    pub fn is_ignorable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Unknown(_)
                | ErrorKind::UnknownTarget(_)
                | ErrorKind::Unsupported(_)
                | ErrorKind::Empty
        )
    }

    /// The OperationOutcome issue code.
    pub fn issue_code(&self) -> IssueCode {
        match self.kind {
            ErrorKind::Unknown(_)
            | ErrorKind::UnknownTarget(_)
            | ErrorKind::Unsupported(_)
            | ErrorKind::TooDeep(_)
            | ErrorKind::KindsDiffer => IssueCode::NotSupported,
            ErrorKind::InvalidValue(_) | ErrorKind::Empty => IssueCode::Value,
            ErrorKind::UnknownModifier
            | ErrorKind::ModifierNotAllowed { .. }
            | ErrorKind::Chain(_)
            | ErrorKind::Repeated => IssueCode::Invalid,
        }
    }

    /// An error issue, `expression` the parameter name.
    pub fn to_error(&self) -> Issue {
        self.located(Issue::error(self.issue_code(), self.to_string()))
    }

    /// A warning issue saying the parameter was ignored.
    pub fn to_warning(&self) -> Issue {
        self.located(Issue::warning(
            self.issue_code(),
            format!("{self}; ignored"),
        ))
    }

    fn located(&self, issue: Issue) -> Issue {
        if self.param.is_empty() {
            issue
        } else {
            issue.at(self.param.clone())
        }
    }
}

/// Longest parameter name echoed in diagnostics.
const MAX_NAME: usize = 100;

/// The name, without control characters and quotes, cut to [`MAX_NAME`] characters.
fn sanitise(name: &str) -> String {
    let mut out: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '\'' && *c != '"')
        .take(MAX_NAME)
        .collect();
    if name.chars().count() > MAX_NAME {
        out.push('…');
    }
    out
}
