//! FHIR R4 search requests, parsed and checked into a typed, store-agnostic query.
//!
//! [`parse`] takes the searched resource type(s) and the decoded query parameters, in order,
//! and returns a [`SearchQuery`]: the AND list of [`Criterion`]s (each a parameter resolved
//! against the official SearchParameters, with its chain or `_has` path, modifier and OR list
//! of typed values), the result parameters (`_include`, `_revinclude`, `_sort`, `_count`,
//! `_summary`, `_elements`, `_total`, `_contained`, `_containedType`), and the parameters that
//! were ignored. [`parse_in_compartment`] does the same for `GET /Patient/123/Observation`.
//! [`SearchQuery::to_query_string`] renders the canonical form (for `self` links and cache
//! keys), which parses back to the same query.
//!
//! Design decision: *everything that can be decided without data is decided here*. A store
//! receives parameters already resolved to their definitions (per resource type, since a code
//! such as `name` is a different SearchParameter on Patient and on Practitioner), values
//! already typed (dates as microsecond ranges, numbers as exact decimals with the range
//! their precision implies, tokens split into system and code, escapes resolved) and chains
//! already narrowed to the target types that have the next parameter. So SQLite and
//! PostgreSQL executors only translate; they never re-parse a string or consult the search
//! rules, and they cannot disagree on what a request means.
//!
//! Errors and warnings are [`Issue`]s whose `diagnostics` name the parameter and the rule it
//! breaks and whose `expression` is the parameter name; they never contain a value, since
//! values can be patient data. What the server does not know or support (an unknown
//! parameter, `_filter`, an unknown `_sort` key, an empty value) is ignored with a warning
//! under `Prefer: handling=lenient` (the default) and is an error under `handling=strict`;
//! what is malformed (a bad date, a modifier that does not apply, a broken chain) is always an
//! error.
//!
//! Left to the executor (store side), by design: matching semantics that need data or
//! indexes — string matching (case- and accent-insensitive prefix by default), the range
//! comparisons of each prefix against indexed ranges (and the tolerance of `ap`), unit
//! conversion of quantities, `:above`/`:below`/`:in`/`:not-in` (terminology or hierarchy),
//! compartment membership (`CompartmentFilter`: any listed parameter references the
//! compartment), `_list`, `near`, `_text`/`_content`, and applying `_summary`/`_elements`.
//!
//! ```
//! use caduceus_search::{ParseOptions, Prefix, SearchValue, parse};
//!
//! let params = vec![
//!     ("birthdate".to_owned(), "ge2000".to_owned()),
//!     ("general-practitioner:Practitioner.name".to_owned(), "smith".to_owned()),
//!     ("_count".to_owned(), "10".to_owned()),
//! ];
//! let query = parse(&["Patient"], &params, &ParseOptions::default()).expect("valid search");
//! assert_eq!(query.count, 10);
//! let SearchValue::Date(date) = &query.criteria[0].values[0] else { panic!() };
//! assert_eq!((date.prefix, date.end - date.start), (Prefix::Ge, 366 * 86_400_000_000));
//! assert_eq!(query.criteria[1].path.len(), 1); // one chain step, to Practitioner
//! assert_eq!(
//!     query.to_query_string(),
//!     "birthdate=ge2000&general-practitioner:Practitioner.name=smith&_count=10"
//! );
//! ```
//!
//! Modules: [`ast`] (the query), `parse` (the request as a whole), `chain` (parameter names,
//! chains and `_has`), `modifiers`, [`values`] (escaping, prefixes, typed values), `results`
//! (result parameters), `query_string` (the canonical form), [`error`].

#![deny(missing_docs)]

pub mod ast;
mod chain;
pub mod error;
mod modifiers;
mod parse;
mod query_string;
mod results;
pub mod values;

pub use ast::*;
pub use chain::MAX_DEPTH;
pub use error::{ErrorKind, ParamError};
pub use values::Decimal;

use caduceus_model::Issue;

/// `Prefer: handling=`: what to do with parameters the server does not know or support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handling {
    /// Ignore them, with a warning in [`SearchQuery::ignored`] (the default).
    #[default]
    Lenient,
    /// Fail the search.
    Strict,
}

/// How to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// Lenient or strict.
    pub handling: Handling,
    /// Page size when `_count` is absent.
    pub default_count: u32,
    /// Largest page size; a larger `_count` is capped with a warning.
    pub max_count: u32,
    /// The server's base URL (`https://example.org/fhir`): absolute references under it are
    /// local references.
    pub base_url: Option<String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            handling: Handling::Lenient,
            default_count: 20,
            max_count: 1000,
            base_url: None,
        }
    }
}

/// Parses a search over `types`: one type for `GET /Patient?...`, several or none for a
/// system-level search (none: `_type` decides, or every type). `params` are the decoded
/// query parameters in order. Returns every error found, not just the first.
pub fn parse(
    types: &[&str],
    params: &[(String, String)],
    options: &ParseOptions,
) -> Result<SearchQuery, Vec<Issue>> {
    parse::parse_search(types, None, params, options)
}

/// Parses a compartment search: `GET /Patient/123/Observation?...` is
/// `parse_in_compartment("Patient", "123", &["Observation"], ...)`, and `GET /Patient/123/*`
/// passes no types (every type in the compartment).
pub fn parse_in_compartment(
    compartment_type: &str,
    id: &str,
    types: &[&str],
    params: &[(String, String)],
    options: &ParseOptions,
) -> Result<SearchQuery, Vec<Issue>> {
    let scope = parse::CompartmentScope {
        compartment_type,
        id,
    };
    parse::parse_search(types, Some(scope), params, options)
}
