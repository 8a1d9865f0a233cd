//! Errors of parsing and evaluation.

use thiserror::Error;

/// An expression that is not valid FHIRPath (lexical, syntax or a statically known
/// semantic error such as an unknown function).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("FHIRPath parse error at offset {offset}: {message}")]
pub struct ParseError {
    /// Byte offset in the expression text where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        ParseError {
            offset,
            message: message.into(),
        }
    }
}

/// An error raised while evaluating a parsed expression against some input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvalError {
    /// A function or operator expected at most one item and got more.
    #[error("{0}: expected a single item, got a collection of {1}")]
    NotSingleton(&'static str, usize),
    /// An operand or argument has a type the operation does not accept.
    #[error("{0}")]
    Type(String),
    /// A function was called with the wrong number of arguments.
    #[error("{0}: wrong number of arguments")]
    Arity(String),
    /// A semantic error found at run time (strict mode): unknown element, wrong context type.
    #[error("{0}")]
    Semantic(String),
    /// An environment variable that is not defined.
    #[error("undefined environment variable %{0}")]
    UndefinedVariable(String),
    /// An invalid regular expression passed to `matches`/`replaceMatches`.
    #[error("invalid regular expression: {0}")]
    Regex(String),
    /// Arithmetic overflow or another numeric failure.
    #[error("arithmetic error: {0}")]
    Arithmetic(String),
    /// The evaluation nested deeper than the engine allows.
    #[error("expression too deeply nested")]
    TooDeep,
}
