//! Terminology for search, without a terminology service: token `:in`, `:not-in`, `:above`
//! and `:below` resolved against the ValueSets and CodeSystems stored on this server.
//!
//! Before the engine hands a `SearchQuery` to `Store::search`, [`Engine::resolve_terminology`]
//! replaces each value of such a criterion (at any depth of chains and `_has`, since the
//! criterion's value sits at the end of its path) with a `SearchValue::TokenSet`: the
//! `(system, code)` pairs it stands for, keeping the modifier. A store then only matches
//! codes (`:not-in` is "no coding in the set", like `:not`), so every store gets the
//! feature from this one module.
//!
//! - `:in` / `:not-in` take a canonical URL (`url` or `url|version`) or a literal reference
//!   `ValueSet/[id]`. A ValueSet's codes are its `expansion.contains` (nested) when it has
//!   one (a partial, paged expansion is refused), else its `compose`: each `include` is
//!   its `concept` list, or every code of the CodeSystem (`system` alone), or the codes
//!   that pass all of its `filter`s, intersected with the ValueSets it imports
//!   (`valueSet`, recursively, cycles refused, at most [`MAX_IMPORT_DEPTH`] deep);
//!   `exclude`s are computed the same way and subtracted.
//! - Filters are evaluated over a stored CodeSystem whose `content` is `complete`:
//!   `concept` `is-a`, `descendent-of`, `is-not-a`, `generalizes`, `=`, `in`, `not-in`;
//!   `parent =` / `child =`; `=` and `exists` on any other concept property.
//! - Several values OR: `code:in=a,b` is "a coding in a or in b", `code:not-in=a,b` "no
//!   coding in a nor in b" (as `:not` does with several codes).
//! - `:below` on `system|code` (or `code` when exactly one stored CodeSystem defines it) is
//!   the code and its descendants, `:above` the code and its ancestors.
//! - A CodeSystem's hierarchy is its nested `concept`s plus the `parent` / `subsumedBy`
//!   and `child` properties of its concepts (whatever its `hierarchyMeaning`).
//!
//! Anything else — a ValueSet or CodeSystem that is not stored, a CodeSystem whose content
//! is not complete, a filter this module does not evaluate — is a 400 OperationOutcome that
//! names the ValueSet or CodeSystem URL (never a searched code) and says that this server
//! has no terminology service. More than [`MAX_CODES`] codes is `too-costly`.
//!
//! Resources are read per request and kept for that request only (the data may change
//! between requests). The expansion itself ([`Terminology`]) is synchronous: when it needs a
//! resource it has not read yet it stops with [`Stop::Need`], the caller reads it from the
//! store and runs it again; finished expansions and hierarchies are memoised, so each run
//! picks up where the last one stopped.

use caduceus_model::IssueCode;
use caduceus_search::values::escape;
use caduceus_search::{Handling, ParseOptions, SearchQuery, TokenSet, TokenValue};
use serde_json::Value;

use crate::{Engine, FhirError};

mod expand;
mod hierarchy;

pub use expand::Terminology;
use expand::terminology_modifier;
pub use hierarchy::Hierarchy;

/// The most codes one terminology value may stand for.
pub const MAX_CODES: usize = 10_000;
/// How deep ValueSets may import ValueSets.
pub const MAX_IMPORT_DEPTH: usize = 8;
/// The most ValueSets and CodeSystems one search may read.
pub const MAX_READS: usize = 64;
/// The most CodeSystems searched for the system of a code given without one.
const MAX_SYSTEMS_SCANNED: u32 = 200;

/// A `(system, code)` pair.
pub type Code = (String, String);

/// A canonical reference: `url` or `url|version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Canonical {
    /// The URL.
    pub url: String,
    /// The version after `|`.
    pub version: Option<String>,
}

impl Canonical {
    /// Splits `url|version`.
    pub fn parse(text: &str) -> Canonical {
        match text.rsplit_once('|') {
            Some((url, version)) if !version.is_empty() => Canonical {
                url: url.to_owned(),
                version: Some(version.to_owned()),
            },
            Some((url, _)) => Canonical {
                url: url.to_owned(),
                version: None,
            },
            None => Canonical {
                url: text.to_owned(),
                version: None,
            },
        }
    }

    fn display(&self) -> String {
        match &self.version {
            Some(v) => format!("{}|{v}", self.url),
            None => self.url.clone(),
        }
    }
}

/// A resource (or resources) the expansion needs from the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// The ValueSet with this canonical URL (the newest, when several match).
    ValueSet(Canonical),
    /// `ValueSet/[id]`.
    ValueSetId(String),
    /// The CodeSystem with this canonical URL.
    CodeSystem(Canonical),
    /// Every stored CodeSystem whose content is complete (to find the system of a code
    /// given without one).
    CompleteCodeSystems,
}

impl Key {
    fn display(&self) -> String {
        match self {
            Key::ValueSet(c) | Key::CodeSystem(c) => c.display(),
            Key::ValueSetId(id) => format!("ValueSet/{id}"),
            Key::CompleteCodeSystems => "the stored code systems".to_owned(),
        }
    }
}

/// Why an expansion stopped.
#[derive(Debug)]
pub enum Stop {
    /// It needs this resource: read it and run again.
    Need(Key),
    /// It cannot be done.
    Fail(FhirError),
}

impl From<FhirError> for Stop {
    fn from(e: FhirError) -> Self {
        Stop::Fail(e)
    }
}

fn fail<T>(code: IssueCode, diagnostics: String) -> Result<T, Stop> {
    Err(Stop::Fail(FhirError::new(400, code, diagnostics)))
}

/// "cannot be expanded on this server" for the ValueSet `url`.
fn cannot_expand<T>(url: &str, why: &str) -> Result<T, Stop> {
    fail(
        IssueCode::NotSupported,
        format!(
            "the value set {url} cannot be expanded on this server (there is no terminology service): {why}"
        ),
    )
}

fn too_costly<T>(what: &str) -> Result<T, Stop> {
    fail(
        IssueCode::TooCostly,
        format!("{what} stands for more than {MAX_CODES} codes, more than this server expands"),
    )
}

impl Engine {
    /// Replaces the value of every token `:in`, `:not-in`, `:above` and `:below` criterion
    /// of `query` (chains and `_has` included) with the codes it stands for, read from the
    /// ValueSets and CodeSystems stored on this server. Queries without such criteria are
    /// returned as they are.
    pub(crate) async fn resolve_terminology(
        &self,
        mut query: SearchQuery,
        base: &str,
    ) -> Result<SearchQuery, FhirError> {
        if !query
            .criteria
            .iter()
            .any(|c| terminology_modifier(c).is_some())
        {
            return Ok(query);
        }
        let mut t = Terminology::default();
        let mut reads = 0;
        loop {
            match t.resolve(&mut query, Some(base)) {
                Ok(()) => return Ok(query),
                Err(Stop::Fail(e)) => return Err(e),
                Err(Stop::Need(key)) => {
                    reads += 1;
                    if reads > MAX_READS {
                        return Err(FhirError::new(
                            400,
                            IssueCode::TooCostly,
                            format!(
                                "the search needs more than {MAX_READS} value sets and code systems"
                            ),
                        ));
                    }
                    let found = self.read_terminology(&key).await?;
                    t.provide(key, found);
                }
            }
        }
    }

    /// Reads what `key` names from the store, newest first.
    async fn read_terminology(&self, key: &Key) -> Result<Vec<Value>, FhirError> {
        let (resource_type, params) = match key {
            Key::ValueSetId(id) => {
                let found = self.store.read("ValueSet", id).await?;
                return Ok(found
                    .and_then(|v| v.body)
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .into_iter()
                    .collect());
            }
            Key::ValueSet(c) | Key::CodeSystem(c) => {
                let mut params = vec![("url".to_owned(), escape(&c.url))];
                if let Some(v) = &c.version {
                    params.push(("version".to_owned(), escape(v)));
                }
                let t = if matches!(key, Key::ValueSet(_)) {
                    "ValueSet"
                } else {
                    "CodeSystem"
                };
                (t, params)
            }
            Key::CompleteCodeSystems => (
                "CodeSystem",
                vec![("content-mode".to_owned(), "complete".to_owned())],
            ),
        };
        let options = ParseOptions {
            handling: Handling::Strict,
            default_count: MAX_SYSTEMS_SCANNED,
            max_count: MAX_SYSTEMS_SCANNED,
            base_url: None,
        };
        let query = caduceus_search::parse(&[resource_type], &params, &options).map_err(|_| {
            FhirError::bad_request(format!("{} is not a usable canonical URL", key.display()))
        })?;
        let page = self.store.search(&query, None).await?;
        if key == &Key::CompleteCodeSystems && page.next_cursor.is_some() {
            return Err(FhirError::new(
                400,
                IssueCode::TooCostly,
                format!(
                    "more than {MAX_SYSTEMS_SCANNED} code systems are stored; search with system|code"
                ),
            ));
        }
        let mut versions = page.matches;
        versions.sort_by_key(|v| std::cmp::Reverse((v.last_updated, v.seq)));
        Ok(versions
            .into_iter()
            .filter_map(|v| v.body)
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests;
