//! `_list`: the resources a stored List names (search.html#list). `Patient?_list=42` is
//! the Patients among `List/42`'s `entry.item` references.
//!
//! Like the terminology modifiers, `_list` is resolved in the engine before the store
//! sees the query, so every store gets it: the List is read, its entries' local references
//! to the searched types become one `_id` criterion (OR over the ids; values of `_list`
//! OR their lists). A List that does not exist (or is deleted) names nothing, so the search
//! finds nothing, with a warning in the Bundle's OperationOutcome. Functional lists
//! (`$current-problems`, ...) need clinical logic this server does not have: 400 with an
//! OperationOutcome saying so. `_list` inside a chain (`subject._list`) is refused the
//! same way.

use caduceus_model::outcome::{Issue, IssueCode};
use caduceus_search::{
    Criterion, Handling, ParamKind, ParseOptions, SearchQuery, SearchValue, TokenValue,
};
use serde_json::Value;

use crate::{Engine, FhirError};

/// The most resources one search's `_list` values may name.
const MAX_LISTED: usize = 10_000;

impl Engine {
    /// Replaces each `_list` criterion of `query` by the `_id` criterion of the resources
    /// its Lists name.
    pub(crate) async fn resolve_lists(
        &self,
        mut query: SearchQuery,
        base: &str,
    ) -> Result<SearchQuery, FhirError> {
        if !query.criteria.iter().any(is_list) {
            return Ok(query);
        }
        let types = query.types.clone();
        let mut criteria = Vec::with_capacity(query.criteria.len());
        for c in std::mem::take(&mut query.criteria) {
            if !is_list(&c) {
                criteria.push(c);
                continue;
            }
            if !c.path.is_empty() {
                return Err(unsupported(
                    "_list is supported on the searched resources only, not in a chain",
                ));
            }
            let mut ids: Vec<String> = Vec::new();
            for value in &c.values {
                let SearchValue::Special(list_id) = value else {
                    continue;
                };
                if list_id.starts_with('$') {
                    return Err(unsupported(
                        "functional lists ($current-problems, ...) are not supported by this server",
                    ));
                }
                if !caduceus_model::ids::is_valid_id(list_id) {
                    return Err(FhirError::bad_request(
                        "Search parameter '_list': the value is not a List id",
                    ));
                }
                let mut stored = self.store.read("List", list_id).await?;
                if let Some(v) = &stored
                    && !v.is_deleted()
                    && !self.may_read(v).await.unwrap_or(false)
                {
                    // A List the caller may not read names nothing for them.
                    stored = None;
                }
                match stored.and_then(|v| v.body) {
                    Some(body) => {
                        let list: Value = serde_json::from_slice(&body).map_err(|_| {
                            FhirError::new(500, IssueCode::Exception, "a stored List is unreadable")
                        })?;
                        for id in listed_ids(&list, &types, base) {
                            if !ids.contains(&id) {
                                ids.push(id);
                            }
                        }
                    }
                    None => query.ignored.push(
                        Issue::warning(
                            IssueCode::NotFound,
                            "Search parameter '_list': no such List; it names no resources",
                        )
                        .at("_list"),
                    ),
                }
                if ids.len() > MAX_LISTED {
                    return Err(FhirError::new(
                        400,
                        IssueCode::TooCostly,
                        format!(
                            "Search parameter '_list': the lists name more than {MAX_LISTED} resources"
                        ),
                    ));
                }
            }
            criteria.push(id_criterion(&types, ids)?);
        }
        query.criteria = criteria;
        Ok(query)
    }
}

fn is_list(c: &Criterion) -> bool {
    c.param.code == "_list"
}

fn unsupported(what: &str) -> FhirError {
    FhirError::new(
        400,
        IssueCode::NotSupported,
        format!("Search parameter '_list': {what}"),
    )
}

/// The ids of the List's entries that are local references to one of `types`: `Type/id`,
/// `Type/id/_history/n`, or the same under this server's `base`.
fn listed_ids(list: &Value, types: &[&'static str], base: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in list["entry"].as_array().into_iter().flatten() {
        if entry["deleted"] == Value::Bool(true) {
            continue;
        }
        let Some(reference) = entry["item"]["reference"].as_str() else {
            continue;
        };
        let local = reference
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(reference);
        let mut parts = local.split('/');
        let (Some(ty), Some(id)) = (parts.next(), parts.next()) else {
            continue;
        };
        let rest: Vec<&str> = parts.collect();
        let versioned = matches!(rest.as_slice(), ["_history", _]);
        if (!rest.is_empty() && !versioned)
            || !types.contains(&ty)
            || !caduceus_model::ids::is_valid_id(id)
        {
            continue;
        }
        out.push(id.to_owned());
    }
    out
}

/// `_id` matching any of `ids` (an empty list matches nothing: no resource has an empty id).
fn id_criterion(types: &[&'static str], ids: Vec<String>) -> Result<Criterion, FhirError> {
    let options = ParseOptions {
        handling: Handling::Strict,
        ..ParseOptions::default()
    };
    let internal = || {
        FhirError::new(
            500,
            IssueCode::Exception,
            "cannot build the _list criterion",
        )
    };
    let mut parsed = caduceus_search::parse(types, &[("_id".to_owned(), "x".to_owned())], &options)
        .map_err(|_| internal())?;
    let mut c = parsed.criteria.pop().ok_or_else(internal)?;
    if c.param.kind != ParamKind::Token {
        return Err(internal());
    }
    let ids = if ids.is_empty() {
        vec![String::new()]
    } else {
        ids
    };
    c.values = ids
        .into_iter()
        .map(|id| {
            SearchValue::Token(TokenValue {
                system: None,
                code: Some(id),
            })
        })
        .collect();
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listed_ids_keep_local_references_of_the_searched_types() {
        let list = json!({"resourceType": "List", "entry": [
            {"item": {"reference": "Patient/a"}},
            {"item": {"reference": "Patient/b/_history/2"}},
            {"item": {"reference": "http://example.org/fhir/Patient/c"}},
            {"item": {"reference": "http://elsewhere.org/fhir/Patient/d"}},
            {"item": {"reference": "Observation/e"}},
            {"item": {"reference": "Patient/f"}, "deleted": true},
            {"item": {"display": "no reference"}},
            {"item": {"reference": "Patient/bad id"}},
            {"item": {"reference": "Patient/g/extra"}}
        ]});
        assert_eq!(
            listed_ids(&list, &["Patient"], "http://example.org/fhir"),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            listed_ids(
                &list,
                &["Patient", "Observation"],
                "http://example.org/fhir"
            ),
            vec!["a", "b", "c", "e"]
        );
    }

    #[test]
    fn an_empty_list_is_an_id_criterion_that_matches_nothing() {
        let c = id_criterion(&["Patient"], Vec::new()).expect("criterion");
        assert_eq!(c.param.code, "_id");
        assert_eq!(
            c.values,
            vec![SearchValue::Token(TokenValue {
                system: None,
                code: Some(String::new())
            })]
        );
    }
}
