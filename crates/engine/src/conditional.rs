//! Conditional interactions: create with `If-None-Exist`, update and delete by search
//! (`PUT /Patient?identifier=...`), and the search that resolves conditional references
//! (`Patient?identifier=...`) inside transactions. Each runs the search through the store
//! and then acts on what it found, following the rules of http.html#cond-update.
//!
//! Between the search and the write, another client can change the data. Updates are
//! guarded by the matched version (`If-Match`), so a concurrent change makes the update
//! fail with 412 instead of overwriting it. A conditional create that races with another
//! can still create twice; the store-level guard that closes this comes with the
//! PostgreSQL store (issue 4), where several replicas make it matter most.

use caduceus_model::{Issue, IssueCode, OperationOutcome};
use caduceus_store::StoredVersion;
use serde_json::Value;

use crate::interactions::{DeleteResult, WriteResult, check_type};
use crate::search::SearchRequest;
use crate::{Engine, FhirError};

/// What a conditional search found.
pub(crate) enum Matches {
    /// Nothing.
    None,
    /// Exactly one resource.
    One(StoredVersion),
    /// More than one (only the first `limit` are listed).
    Many(Vec<StoredVersion>),
}

/// What a conditional create did.
#[derive(Debug)]
pub enum ConditionalCreate {
    /// Nothing matched: the resource was created.
    Created(WriteResult),
    /// One resource matched: nothing was created; this is the match.
    Existing(StoredVersion),
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn precondition_failed(what: &str) -> FhirError {
    FhirError {
        status: 412,
        outcome: OperationOutcome::single(Issue::error(
            IssueCode::Duplicate,
            format!("the conditional {what} matched more than one resource"),
        )),
    }
}

impl Engine {
    /// Runs the search of a conditional interaction on `resource_type`, strictly (an unknown
    /// parameter must not silently widen the match), looking at up to `limit` matches.
    pub(crate) async fn conditional_matches(
        &self,
        resource_type: &str,
        query: &str,
        base: &str,
        limit: u32,
    ) -> Result<Matches, FhirError> {
        check_type(resource_type)?;
        let params = parse_query(query);
        if params.is_empty() {
            return Err(FhirError::bad_request(
                "a conditional interaction needs search parameters",
            ));
        }
        let request = SearchRequest {
            types: vec![resource_type.to_owned()],
            compartment: None,
            params,
            strict: true,
        };
        let mut search = self.parse_search(&request, base)?;
        // Contained resources (or their containers, of other types) are not what a
        // conditional interaction may create over, update or delete.
        if matches!(
            search.contained,
            Some(caduceus_search::Contained::True | caduceus_search::Contained::Both)
        ) {
            return Err(FhirError::bad_request(
                "a conditional interaction matches top-level resources only: _contained must be false",
            )
            .within("_contained"));
        }
        search.count = limit.max(2);
        let search = self.resolve_terminology(search, base).await?;
        let page = self.store.search(&search, None).await?;
        let mut matches = page.matches;
        Ok(match matches.len() {
            0 => Matches::None,
            1 => Matches::One(matches.remove(0)),
            _ => Matches::Many(matches),
        })
    }

    /// create with `If-None-Exist`: creates only when the search finds nothing; returns the
    /// match when it finds one; 412 when it finds several.
    pub async fn create_conditional(
        &self,
        resource_type: &str,
        resource: Value,
        if_none_exist: &str,
        base: &str,
    ) -> Result<ConditionalCreate, FhirError> {
        match self
            .conditional_matches(resource_type, if_none_exist, base, 2)
            .await?
        {
            Matches::None => Ok(ConditionalCreate::Created(
                self.create(resource_type, resource).await?,
            )),
            Matches::One(existing) => Ok(ConditionalCreate::Existing(existing)),
            Matches::Many(_) => Err(precondition_failed("create")),
        }
    }

    /// update by search (`PUT [type]?[search]`): no match creates (at the body's id, or a
    /// new one), one match updates it (the body's id, if any, must be the match's), several
    /// are 412.
    pub async fn update_conditional(
        &self,
        resource_type: &str,
        query: &str,
        mut resource: Value,
        base: &str,
    ) -> Result<WriteResult, FhirError> {
        let body_id = resource
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match self
            .conditional_matches(resource_type, query, base, 2)
            .await?
        {
            Matches::None => match body_id {
                Some(id) => self.update(resource_type, &id, resource, None).await,
                None => self.create(resource_type, resource).await,
            },
            Matches::One(found) => {
                if body_id.as_deref().is_some_and(|id| id != found.id) {
                    return Err(FhirError::bad_request(
                        "the id in the body is not the id of the resource the search found",
                    )
                    .within("id"));
                }
                if let Some(obj) = resource.as_object_mut() {
                    obj.insert("id".into(), Value::String(found.id.clone()));
                }
                self.update(resource_type, &found.id, resource, Some(found.version))
                    .await
            }
            Matches::Many(_) => Err(precondition_failed("update")),
        }
    }

    /// delete by search (`DELETE [type]?[search]`): deletes every match (up to
    /// `max_matches`, in one transaction), or 412 when there are more.
    pub async fn delete_conditional(
        &self,
        resource_type: &str,
        query: &str,
        base: &str,
        max_matches: u32,
    ) -> Result<Vec<DeleteResult>, FhirError> {
        let found = match self
            .conditional_matches(resource_type, query, base, max_matches + 1)
            .await?
        {
            Matches::None => return Ok(Vec::new()),
            Matches::One(v) => vec![v],
            Matches::Many(vs) if vs.len() as u32 <= max_matches => vs,
            Matches::Many(_) => return Err(precondition_failed("delete")),
        };
        let ops = found
            .iter()
            .map(|v| self.prepare_delete(resource_type, &v.id, Some(v.version)))
            .collect::<Result<Vec<_>, _>>()?;
        let outcomes = self.store.write(ops).await?;
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                caduceus_store::WriteOutcome::Deleted { version } => DeleteResult::Deleted(version),
                _ => DeleteResult::NothingToDelete,
            })
            .collect())
    }

    /// Resolves a conditional reference (`Patient?identifier=x|1`) to `Type/id`: exactly
    /// one match, else 412 (none or several).
    pub(crate) async fn resolve_conditional_reference(
        &self,
        reference: &str,
        base: &str,
    ) -> Result<String, FhirError> {
        let (resource_type, query) = reference.split_once('?').unwrap_or((reference, ""));
        match self
            .conditional_matches(resource_type, query, base, 2)
            .await?
        {
            Matches::One(v) => Ok(format!("{}/{}", v.resource_type, v.id)),
            Matches::None => Err(FhirError::new(
                412,
                IssueCode::NotFound,
                "a conditional reference matched no resource",
            )),
            Matches::Many(_) => Err(precondition_failed("reference")),
        }
    }
}
