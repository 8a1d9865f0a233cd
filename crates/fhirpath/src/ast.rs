//! The syntax tree of a parsed expression.

use crate::datetime::{Date, DateTime, Time};
use crate::functions::Func;
use crate::quantity::Quantity;
use rust_decimal::Decimal;

/// A literal value written in the expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `{}`
    Empty,
    /// `true` / `false`
    Boolean(bool),
    /// `'text'`
    String(String),
    /// `12`
    Integer(i64),
    /// `1.5`
    Decimal(Decimal),
    /// `@2019-01-01`
    Date(Date),
    /// `@2019-01-01T12:00`
    DateTime(DateTime),
    /// `@T12:00`
    Time(Time),
    /// `5 'mg'`, `4 days`
    Quantity(Quantity),
}

/// A (possibly qualified) type name: `Patient`, `FHIR.string`, `System.Integer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSpec {
    /// `FHIR`, `System`, or `None` when unqualified.
    pub namespace: Option<String>,
    /// The type name.
    pub name: String,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `div`
    IntDiv,
    /// `mod`
    Mod,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `&`
    Concat,
    /// `|`
    Union,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
    /// `=`
    Eq,
    /// `~`
    Equiv,
    /// `!=`
    Ne,
    /// `!~`
    NotEquiv,
    /// `in`
    In,
    /// `contains`
    Contains,
    /// `and`
    And,
    /// `or`
    Or,
    /// `xor`
    Xor,
    /// `implies`
    Implies,
}

/// A node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Literal),
    /// An identifier at the start of a path: an element of `$this`, or the type name of
    /// the context resource (`Patient` in `Patient.name`).
    Ident(String),
    /// `target.name`
    Member(Box<Expr>, String),
    /// `target[index]`
    Index(Box<Expr>, Box<Expr>),
    /// `target.func(args)`, or `func(args)` on `$this` when the target is `None`.
    Call(Option<Box<Expr>>, Func, Vec<Expr>),
    /// `$this`
    This,
    /// `$index`
    IndexVar,
    /// `$total`
    Total,
    /// `%name`
    Env(String),
    /// Unary minus (unary plus is dropped at parse time).
    Neg(Box<Expr>),
    /// A binary operator.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `expr is Type`
    Is(Box<Expr>, TypeSpec),
    /// `expr as Type`
    As(Box<Expr>, TypeSpec),
    /// `target.ofType(Type)` (also `is(Type)`/`as(Type)` in function form, by the flag).
    OfType(Option<Box<Expr>>, TypeSpec, TypeFn),
}

/// Which function form of a type test (`ofType`, `is()`, `as()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeFn {
    /// `ofType(T)`: filter.
    OfType,
    /// `is(T)`: boolean test of a single item.
    Is,
    /// `as(T)`: cast of a single item (a filter in practice).
    As,
}
