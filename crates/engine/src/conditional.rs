//! Conditional interactions: create with `If-None-Exist`, update and delete by search
//! (`PUT /Patient?identifier=...`), and the search that resolves conditional references
//! (`Patient?identifier=...`) inside transactions. Each runs the search through the store
//! and then acts on what it found, following the rules of http.html#cond-update.
//!
//! Between the search and the write, another client can change the data. Updates are
//! guarded by the matched version (`If-Match`), so a concurrent change makes the update
//! fail with 412 instead of overwriting it. A conditional create has no version to guard
//! with, so it runs its search and its create under the store's named lock
//! ([`Store::lock`](caduceus_store::Store::lock)) for its key, [`create_lock_key`]: the
//! type and the *canonical* query string of the parsed search, so that two spellings of
//! one search share a lock. The store's lock holds across every process sharing its
//! database, so racing conditional creates (20 clients, two replicas) make one resource;
//! the others find it once the first has committed and answer 200 with it. Transaction
//! bundles take the locks of all their conditional creates, in sorted key order (so two
//! bundles cannot wait for each other), before resolving them, and release them after
//! their write. A conditional update creates when its search finds nothing, so it takes the
//! same lock (the same key for the same search: a conditional create and a conditional
//! update of one identifier serialise too). Conditional deletes and conditional references
//! create nothing and take no lock.
//!
//! Within one process, callers of one key first queue on an in-process lock
//! ([`LocalLocks`]) and only then ask the store: the PostgreSQL store holds a pooled
//! connection for each lock it grants *or waits for*, so 20 clients racing on one key would
//! otherwise park 20 connections on one advisory lock while its holder waits for a free
//! connection to run its search.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use caduceus_model::{Issue, IssueCode, OperationOutcome};
use caduceus_search::SearchQuery;
use caduceus_store::{StoreLock, StoredVersion};
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

/// In-process locks by key, taken before the store's lock of the same key (see the module
/// documentation). One lock per distinct key, forgotten once nobody holds or awaits it.
#[derive(Default)]
pub(crate) struct LocalLocks {
    table: std::sync::Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// Dead entries are swept when the table grows past this.
const SWEEP_AT: usize = 1024;

impl LocalLocks {
    async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            // Touched briefly, never across an await; a poisoned table is still valid.
            let mut table = self
                .table
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if table.len() >= SWEEP_AT {
                table.retain(|_, w| w.strong_count() > 0);
            }
            match table.get(key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    table.insert(key.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

/// A key's in-process lock and its store lock, held together; dropped together.
pub(crate) struct HeldLock {
    // Field order is drop order: the store lock goes first, then the local queue moves on.
    _store: StoreLock,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

/// The name of the store lock a conditional create of `resource_type` takes around its
/// search and its write. The query is the canonical one, so `identifier=a|1&_count=5` and
/// `_count=7&identifier=a%7C1` are the same key. Keys hold searched values: they go to the
/// store, which hashes them, and never to a log.
pub(crate) fn create_lock_key(resource_type: &str, search: &SearchQuery) -> String {
    format!(
        "conditional-create|{resource_type}|{}",
        search.to_query_string()
    )
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
        let search = self.conditional_search(resource_type, query, base, limit)?;
        self.run_conditional_search(search, base).await
    }

    /// Takes the lock of `key`: this process's queue for it, then the store's.
    pub(crate) async fn lock_key(&self, key: &str) -> Result<HeldLock, FhirError> {
        let local = self.local_locks.lock(key).await;
        let store = self.store.lock(key).await?;
        Ok(HeldLock {
            _store: store,
            _local: local,
        })
    }

    /// Takes the locks named by `keys`, in sorted order and each once: every caller that
    /// holds several takes them in this one order, so none waits for another in a cycle.
    /// Dropping the returned guards releases them.
    pub(crate) async fn lock_all(&self, mut keys: Vec<String>) -> Result<Vec<HeldLock>, FhirError> {
        keys.sort();
        keys.dedup();
        let mut held = Vec::with_capacity(keys.len());
        for key in &keys {
            held.push(self.lock_key(key).await?);
        }
        Ok(held)
    }

    /// The parsed and checked search of a conditional interaction (see
    /// [`Engine::conditional_matches`]), not yet run.
    pub(crate) fn conditional_search(
        &self,
        resource_type: &str,
        query: &str,
        base: &str,
        limit: u32,
    ) -> Result<SearchQuery, FhirError> {
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
        Ok(search)
    }

    /// Runs a search from [`Engine::conditional_search`].
    pub(crate) async fn run_conditional_search(
        &self,
        search: SearchQuery,
        base: &str,
    ) -> Result<Matches, FhirError> {
        let search = if self.access.is_unrestricted() {
            search
        } else {
            // Only what the caller may see can match: a hidden resource neither blocks a
            // conditional create nor is changed by a conditional update or delete.
            let request = SearchRequest {
                types: search.types.iter().map(|t| (*t).to_owned()).collect(),
                compartment: None,
                params: search.to_params(),
                strict: true,
            };
            match self.restrict_search(&request, base).await? {
                Some(r) => {
                    let mut q = self.parse_search(&r.request, base)?;
                    q.count = search.count;
                    q
                }
                None => return Ok(Matches::None),
            }
        };
        let search = self.resolve_terminology(search, base).await?;
        let page = self.store.search(&search, None).await?;
        let mut matches = self.keep_visible(page.matches).await?;
        Ok(match matches.len() {
            0 => Matches::None,
            1 => Matches::One(matches.remove(0)),
            _ => Matches::Many(matches),
        })
    }

    /// create with `If-None-Exist`: creates only when the search finds nothing; returns the
    /// match when it finds one; 412 when it finds several. The search and the create run
    /// under the store lock of [`create_lock_key`], held until the create has committed.
    pub async fn create_conditional(
        &self,
        resource_type: &str,
        resource: Value,
        if_none_exist: &str,
        base: &str,
    ) -> Result<ConditionalCreate, FhirError> {
        let search = self.conditional_search(resource_type, if_none_exist, base, 2)?;
        let _lock = self
            .lock_key(&create_lock_key(resource_type, &search))
            .await?;
        match self.run_conditional_search(search, base).await? {
            Matches::None => Ok(ConditionalCreate::Created(
                self.create(resource_type, resource).await?,
            )),
            Matches::One(existing) => Ok(ConditionalCreate::Existing(existing)),
            Matches::Many(_) => Err(precondition_failed("create")),
        }
    }

    /// update by search (`PUT [type]?[search]`): no match creates (at the body's id, or a
    /// new one), one match updates it (the body's id, if any, must be the match's), several
    /// are 412. Runs under the lock of [`create_lock_key`], like a conditional create, so
    /// that racing conditional updates that find nothing create one resource.
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
        let search = self.conditional_search(resource_type, query, base, 2)?;
        let _lock = self
            .lock_key(&create_lock_key(resource_type, &search))
            .await?;
        match self.run_conditional_search(search, base).await? {
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
        let outcomes = self.guarded_write(ops).await?;
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
