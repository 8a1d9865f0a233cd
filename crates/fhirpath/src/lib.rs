//! FHIRPath 2.0, as FHIR R4 (4.0.1) uses it, evaluated over FHIR JSON.
//!
//! What it provides: a lexer and parser for the normative grammar ([`Expression::parse`]),
//! an evaluator over `serde_json::Value` resources ([`Expression::evaluate`]) with the
//! function library of the specification, FHIR's type system from `caduceus-model`'s tables
//! (`is`/`as`/`ofType`, choice elements, primitive extensions in `_name` siblings), and the
//! FHIR-specific functions (`extension`, `resolve`, `hasValue`, ...). A small [`Cache`] of
//! parsed expressions serves the search indexer, which evaluates the same few hundred
//! expressions on every write.
//!
//! Key design decision: *borrowed evaluation*. The result of an evaluation is a
//! `Vec<`[`Item`]`<'a>>` whose nodes borrow from the input resource (`&'a Value` plus the
//! FHIR type its element definition gives it); only values the expression computes
//! (`1 + 1`, `name.given.first().upper()`) are owned. Navigating `Patient.name.given`
//! therefore copies no JSON: the indexer runs on every write, and cloning a resource's
//! subtrees per search parameter would cost more than the extraction itself. Strings read
//! from the resource stay `Cow::Borrowed` through string functions that do not change them.
//!
//! Decimals are exact (`rust_decimal`, parsed from the number's text as written, which the
//! workspace's `arbitrary_precision` serde_json keeps); dates and times keep their precision
//! and compare per the specification (different precisions → empty).
//!
//! Semantics worth knowing (see also the module docs):
//!
//! - *Lenient by default.* Navigating to an element the type does not define gives empty, as
//!   search expressions such as `Account.subject | Patient.link.other` need.
//!   [`Context::strict`] turns that, and a path starting with another resource type, into
//!   errors (the official suite's `semantic` expectations assume strict mode).
//! - *Choice elements* are navigated by their FHIRPath name (`Observation.value` finds
//!   `valueQuantity` and types it `Quantity`); primitives carry their `_name` sibling, so
//!   `Patient.birthDate.extension(url)` works.
//! - `is` follows the type hierarchy (`code is string`); `as`/`ofType` on a primitive need
//!   the exact type (`gender.as(string)` is empty), as the official R4 suite requires.
//! - `resolve()` finds `#id` in `contained` and entries of a Bundle being evaluated; any
//!   other reference resolves to a type-only stub, so `resolve() is Patient` works from
//!   `Patient/123`. `memberOf`, `conformsTo` (non-core profiles) and `elementDefinition`
//!   give empty; `htmlChecks` is true; `slice`/`checkModifiers` return their input; `trace`
//!   logs nothing (its input may hold patient data).
//! - Functions of later FHIRPath versions that the R4 test suite uses are there too: `sort`,
//!   `type`, `lowBoundary`/`highBoundary`, `precision`, `comparable`, `encode`/`decode`,
//!   `escape`/`unescape`, `matchesFull`, `trim`, `split`, `join`.
//! - No input makes it panic: the syntax tree depth is bounded at parse time, evaluation
//!   depth and `repeat`/`descendants` sizes at run time, and arithmetic is checked.
//!
//! ```
//! use caduceus_fhirpath::{Context, Expression};
//! let patient = serde_json::json!({"resourceType": "Patient", "name": [{"given": ["Ann"]}]});
//! let expr = Expression::parse("Patient.name.given.first()").unwrap();
//! let out = expr.evaluate(&patient, &Context::new()).unwrap();
//! assert_eq!(out[0].to_text().as_deref(), Some("Ann"));
//! ```

#![deny(missing_docs)]

mod ast;
mod cache;
pub mod datetime;
mod error;
mod eval;
mod functions;
mod lexer;
mod ops;
mod parser;
pub mod quantity;
mod types;
mod value;

pub use ast::{BinOp, Expr, Literal, TypeFn, TypeSpec};
pub use cache::Cache;
pub use error::{EvalError, ParseError};
pub use eval::Context;
pub use functions::Func;
pub use value::{Item, Node};

use serde_json::Value;

/// A parsed FHIRPath expression: parse once, evaluate many times (it is `Send + Sync`).
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    text: String,
    root: Expr,
}

impl Expression {
    /// Parses an expression. Unknown functions and wrong argument counts are parse errors.
    pub fn parse(text: &str) -> Result<Expression, ParseError> {
        Ok(Expression {
            text: text.to_string(),
            root: parser::parse(text)?,
        })
    }

    /// The text it was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The syntax tree.
    pub fn ast(&self) -> &Expr {
        &self.root
    }

    /// Evaluates against `resource` (also `%resource` and `%context`; `Value::Null` for
    /// none). Nodes of the result borrow from `resource`.
    pub fn evaluate<'a>(
        &self,
        resource: &'a Value,
        ctx: &Context<'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let mut ev = eval::Evaluator::new(resource, ctx);
        let this: Vec<Item<'a>> = ev.resource.clone().into_iter().collect();
        let scope = eval::Scope {
            this: &this,
            index: None,
            total: None,
        };
        ev.eval(&self.root, &scope)
    }

    /// Evaluates with `$this` (and `%context`) set to `focus` instead of the resource, for
    /// invariants of an element: take the element's typed nodes from another evaluation
    /// (`Patient.contact`), then evaluate the constraint on each. `%resource` stays
    /// `resource`.
    pub fn evaluate_on<'a>(
        &self,
        focus: &[Item<'a>],
        resource: &'a Value,
        ctx: &Context<'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let mut ev = eval::Evaluator::new(resource, ctx);
        ev.context = Some(focus.to_vec());
        let scope = eval::Scope {
            this: focus,
            index: None,
            total: None,
        };
        ev.eval(&self.root, &scope)
    }

    /// Evaluates and reduces the result to a boolean the way invariants are read:
    /// empty → `None`, a single boolean → it, a single other item → `true`; more than one
    /// item is an error.
    pub fn evaluate_bool(
        &self,
        resource: &Value,
        ctx: &Context<'_>,
    ) -> Result<Option<bool>, EvalError> {
        let out = self.evaluate(resource, ctx)?;
        match out.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.as_bool().unwrap_or(true))),
            many => Err(EvalError::NotSingleton("result", many.len())),
        }
    }
}

/// The `toString()` forms of the primitive items of a result (complex nodes are skipped).
pub fn to_strings(items: &[Item<'_>]) -> Vec<String> {
    items.iter().filter_map(Item::to_text).collect()
}

#[cfg(test)]
mod tests;
