//! Access control inside the engine: every read, search, history page and write of an
//! [`Engine`] goes through the caller's [`Access`] (the server makes one engine per request
//! with [`Engine::with_access`]).
//!
//! How a resource stays hidden (the response never tells that it exists):
//! - Searches carry the caller's conditions into the database query (the patient
//!   compartment, a scope's search restrictions, `_security:not` for labels), so pages and
//!   totals count only visible resources. Chained and `_has` criteria are resolved here,
//!   one restricted search per link, into plain id lists: a hidden resource can never make
//!   a visible one match.
//! - Every resource that leaves (matches, `_include`/`_revinclude`d resources, history
//!   entries, reads) is checked again ([`Engine::keep_visible`]): labels on the resource
//!   itself, the compartment and restrictions by one batched `_id` search per type.
//! - A hidden resource reads as 404, exactly as one that never existed; an interaction the
//!   scopes or roles do not allow at all is 403.
//! - Writes ([`Engine::guarded_write`]): the new content must be visible to the writer (a
//!   patient app cannot write into another compartment, nobody writes a label above their
//!   clearance), and what an update or delete replaces must be visible too.
//!
//! AuditEvents are append-only for everyone, whatever the access.

use std::collections::{HashMap, HashSet};

use caduceus_access::{Conditions, Interaction, Rule};
use caduceus_model::outcome::IssueCode;
use caduceus_search::{Criterion, Link, SearchQuery};
use caduceus_store::index::{IndexRow, IndexValue};
use caduceus_store::{StoredVersion, WriteOp, WriteOutcome};
use serde_json::Value;

use crate::search::SearchRequest;
use crate::{Engine, FhirError};

/// Ids per batched visibility search.
const ID_BATCH: usize = 200;
/// The most ids a chained or `_has` criterion may resolve to for a restricted caller.
const MAX_RESOLVED: usize = 1000;

impl Engine {
    /// The rule for an interaction, or 403.
    pub(crate) fn allow(
        &self,
        resource_type: &str,
        interaction: Interaction,
    ) -> Result<Conditions, FhirError> {
        match self.access.rule(resource_type, interaction) {
            Rule::Allow(c) => Ok(c),
            Rule::Deny(d) => Err(FhirError::new(403, IssueCode::Forbidden, d.message())),
        }
    }

    /// The conditions to read resources of a type that arrive by `_include`, `_revinclude`
    /// or history: a read or a search grant is enough. `None` when neither is granted.
    fn read_or_search(&self, resource_type: &str) -> Option<Conditions> {
        [Interaction::Read, Interaction::Search]
            .into_iter()
            .find_map(|i| match self.access.rule(resource_type, i) {
                Rule::Allow(c) => Some(c),
                Rule::Deny(_) => None,
            })
    }

    /// Whether the caller may see this stored version (read or vread).
    pub(crate) async fn may_read(&self, version: &StoredVersion) -> Result<bool, FhirError> {
        if self.access.is_unrestricted() {
            return Ok(true);
        }
        let conditions = self.allow(&version.resource_type, Interaction::Read)?;
        let kept = self
            .filter_with(&version.resource_type, &conditions, vec![version.clone()])
            .await?;
        Ok(!kept.is_empty())
    }

    /// The versions the caller may see, in their order (matches, includes, history).
    /// `interaction` is the grant that brought them (search); included and historical
    /// resources of other types need a read or search grant on their own type.
    pub(crate) async fn keep_visible(
        &self,
        versions: Vec<StoredVersion>,
    ) -> Result<Vec<StoredVersion>, FhirError> {
        if self.access.is_unrestricted() || versions.is_empty() {
            return Ok(versions);
        }
        let mut by_type: HashMap<String, Vec<StoredVersion>> = HashMap::new();
        for v in &versions {
            by_type
                .entry(v.resource_type.clone())
                .or_default()
                .push(v.clone());
        }
        let mut keep: HashSet<(String, String, u64)> = HashSet::new();
        for (t, group) in by_type {
            let Some(conditions) = self.read_or_search(&t) else {
                continue;
            };
            for v in self.filter_with(&t, &conditions, group).await? {
                keep.insert((v.resource_type, v.id, v.version));
            }
        }
        Ok(versions
            .into_iter()
            .filter(|v| keep.contains(&(v.resource_type.clone(), v.id.clone(), v.version)))
            .collect())
    }

    /// The versions whose own security labels the caller's clearance and departments
    /// allow (search matches, whose other conditions the query itself applied).
    pub(crate) fn keep_labelled(&self, versions: Vec<StoredVersion>) -> Vec<StoredVersion> {
        if self.access.is_unrestricted() {
            return versions;
        }
        versions
            .into_iter()
            .filter(|v| {
                v.body
                    .as_deref()
                    .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                    .is_some_and(|r| self.access.labels_allow(&r))
            })
            .collect()
    }

    /// The versions (all of `resource_type`) that meet `conditions`: labels on each
    /// version's own body; compartment and restrictions on the resource's current state,
    /// by batched searches. Deletions and contained resources are never visible to a
    /// restricted caller.
    async fn filter_with(
        &self,
        resource_type: &str,
        conditions: &Conditions,
        versions: Vec<StoredVersion>,
    ) -> Result<Vec<StoredVersion>, FhirError> {
        if conditions.is_empty() {
            return Ok(versions);
        }
        let labelled: Vec<StoredVersion> = versions
            .into_iter()
            .filter(|v| !v.id.contains('#'))
            .filter(|v| {
                v.body
                    .as_deref()
                    .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                    .is_some_and(|r| self.access.labels_allow(&r))
            })
            .collect();
        if conditions.patient.is_none() && conditions.restrictions.is_empty() {
            return Ok(labelled);
        }
        let mut ids: Vec<String> = labelled.iter().map(|v| v.id.clone()).collect();
        ids.sort();
        ids.dedup();
        let visible = self.visible_ids(resource_type, conditions, &ids).await?;
        Ok(labelled
            .into_iter()
            .filter(|v| visible.contains(&v.id))
            .collect())
    }

    /// Which of `ids` (live resources of one type) are in the caller's compartment and
    /// match one of the restriction sets.
    async fn visible_ids(
        &self,
        resource_type: &str,
        conditions: &Conditions,
        ids: &[String],
    ) -> Result<HashSet<String>, FhirError> {
        let mut out = HashSet::new();
        let sets: Vec<&[(String, String)]> = if conditions.restrictions.is_empty() {
            vec![&[]]
        } else {
            conditions.restrictions.iter().map(Vec::as_slice).collect()
        };
        for chunk in ids.chunks(ID_BATCH) {
            for set in &sets {
                let mut params = vec![("_id".to_owned(), chunk.join(","))];
                params.extend(set.iter().cloned());
                params.push(("_count".to_owned(), ID_BATCH.to_string()));
                let request = restricted_request(resource_type, conditions, params, None);
                let Some(request) = request else { continue };
                for v in self.search_all(&request, ID_BATCH).await? {
                    out.insert(v.id);
                }
            }
        }
        Ok(out)
    }

    /// Every match of a search run without the caller's access (the conditions are already
    /// in it), up to `limit`; 400 when there are more.
    async fn search_all(
        &self,
        request: &SearchRequest,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, FhirError> {
        let query = self.parse_search(request, "")?;
        // No `_list` resolution here: it reads Lists under the caller's access, which
        // would recurse; restrictions and resolved links never carry `_list`.
        let query = self.resolve_terminology(query, "").await?;
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.store.search(&query, cursor.as_deref()).await?;
            out.extend(page.matches);
            if out.len() > limit {
                return Err(too_costly());
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// A search request with the caller's conditions added for each of its types, and its
    /// chained and `_has` criteria resolved under them. `Ok(None)` when it can match
    /// nothing. Also says whether the results still need [`Engine::keep_visible`] beyond
    /// labels (several restriction sets cannot be one query).
    pub(crate) async fn restrict_search(
        &self,
        request: &SearchRequest,
        base: &str,
    ) -> Result<Option<Restricted>, FhirError> {
        if self.access.is_unrestricted() {
            return Ok(Some(Restricted {
                request: request.clone(),
                exact: true,
            }));
        }
        let types = self.search_types(request, base)?;
        let mut conditions: Option<Conditions> = None;
        for t in &types {
            let c = self.allow(t, Interaction::Search)?;
            match &conditions {
                None => conditions = Some(c),
                Some(first) if *first == c => {}
                Some(_) => {
                    return Err(FhirError::new(
                        403,
                        IssueCode::Forbidden,
                        "this caller's access differs between these resource types: search \
                         one type at a time",
                    ));
                }
            }
        }
        let conditions = conditions.unwrap_or_default();
        if request
            .params
            .iter()
            .any(|(k, v)| k == "_contained" && v != "false")
        {
            return Err(FhirError::new(
                403,
                IssueCode::Forbidden,
                "_contained searches are not available to callers with restricted access",
            ));
        }
        let query = self.parse_search(request, base)?;
        let mut params = request.params.clone();
        if query.criteria.iter().any(|c| !c.path.is_empty()) {
            match self.resolve_links(&query, base).await? {
                Some(resolved) => params = resolved,
                None => return Ok(None),
            }
        }
        let exact = conditions.restrictions.len() <= 1;
        let restrictions = if exact {
            conditions.restrictions.first().cloned().unwrap_or_default()
        } else {
            Vec::new()
        };
        params.extend(restrictions);
        let single_type = (types.len() == 1).then(|| types[0]);
        match restricted_request_for(request, single_type, &conditions, params) {
            Some(request) => Ok(Some(Restricted { request, exact })),
            None => Ok(None),
        }
    }

    /// The resource types a search reaches: its URL's type, or `_type`; a restricted caller
    /// must name them.
    fn search_types(
        &self,
        request: &SearchRequest,
        base: &str,
    ) -> Result<Vec<&'static str>, FhirError> {
        if !request.types.is_empty() {
            let query = self.parse_search(request, base)?;
            return Ok(query.types);
        }
        let query = self.parse_search(request, base)?;
        match query.type_filter {
            Some(types) if !types.is_empty() => Ok(types),
            _ => Err(FhirError::new(
                403,
                IssueCode::Forbidden,
                "a search across all resource types needs _type for this caller",
            )),
        }
    }

    /// The request's parameters with every chained and `_has` criterion replaced by the ids
    /// it reaches under the caller's access. `None` when one of them reaches nothing.
    async fn resolve_links(
        &self,
        query: &SearchQuery,
        base: &str,
    ) -> Result<Option<Vec<(String, String)>>, FhirError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for c in &query.criteria {
            if c.path.is_empty() {
                params.push(c.to_param());
                continue;
            }
            match Box::pin(self.resolve_link(c, base)).await? {
                Some(p) => params.push(p),
                None => return Ok(None),
            }
        }
        // Everything but the criteria (result parameters), as the parser canonicalised them.
        let rendered: HashSet<(String, String)> =
            query.criteria.iter().map(Criterion::to_param).collect();
        params.extend(
            query
                .to_params()
                .into_iter()
                .filter(|p| !rendered.contains(p)),
        );
        Ok(Some(params))
    }

    /// One chained or `_has` criterion as a plain one (`subject=Patient/1,Patient/2` or
    /// `_id=...`), resolved by a search of the next link's type under the caller's access.
    async fn resolve_link(
        &self,
        c: &Criterion,
        base: &str,
    ) -> Result<Option<(String, String)>, FhirError> {
        let inner = Criterion {
            path: c.path[1..].to_vec(),
            param: c.param.clone(),
            modifier: c.modifier,
            values: c.values.clone(),
        };
        let inner_param = inner.to_param();
        match &c.path[0] {
            Link::Chain {
                param,
                explicit_type,
                targets,
            } => {
                let targets: Vec<&str> = match explicit_type {
                    Some(t) => vec![*t],
                    None => targets.clone(),
                };
                let mut refs: Vec<String> = Vec::new();
                for t in targets {
                    let request = SearchRequest {
                        types: vec![t.to_owned()],
                        compartment: None,
                        params: vec![
                            inner_param.clone(),
                            ("_count".to_owned(), MAX_RESOLVED.to_string()),
                        ],
                        strict: true,
                    };
                    for v in self.restricted_matches(&request, base).await? {
                        refs.push(format!("{}/{}", v.resource_type, v.id));
                    }
                }
                if refs.is_empty() {
                    return Ok(None);
                }
                Ok(Some((param.code.to_owned(), refs.join(","))))
            }
            Link::Has { source_type, param } => {
                let request = SearchRequest {
                    types: vec![(*source_type).to_owned()],
                    compartment: None,
                    params: vec![inner_param, ("_count".to_owned(), MAX_RESOLVED.to_string())],
                    strict: true,
                };
                let sources = self.restricted_matches(&request, base).await?;
                let mut ids: Vec<String> = Vec::new();
                for v in &sources {
                    ids.extend(referenced_ids(v, param.code));
                }
                ids.sort();
                ids.dedup();
                if ids.is_empty() {
                    return Ok(None);
                }
                if ids.len() > MAX_RESOLVED {
                    return Err(too_costly());
                }
                Ok(Some(("_id".to_owned(), ids.join(","))))
            }
        }
    }

    /// Every match of a search under the caller's access (at most [`MAX_RESOLVED`]).
    async fn restricted_matches(
        &self,
        request: &SearchRequest,
        base: &str,
    ) -> Result<Vec<StoredVersion>, FhirError> {
        let Some(restricted) = self.restrict_search(request, base).await? else {
            return Ok(Vec::new());
        };
        let found = self.search_all(&restricted.request, MAX_RESOLVED).await?;
        self.keep_visible(found).await
    }

    /// Admits each write (the append-only rule, the caller's access), then writes.
    pub(crate) async fn guarded_write(
        &self,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteOutcome>, FhirError> {
        let mut admitted = Vec::with_capacity(ops.len());
        for op in ops {
            admitted.push(self.admit(op).await?);
        }
        Ok(self.store.write(admitted).await?)
    }

    /// One write as it may be made: AuditEvents are append-only for everyone, so a PUT
    /// that would create one (an audit source choosing its ids) becomes a create at that
    /// id, which the store refuses if the id was taken meanwhile, and any other update or
    /// delete of one is 405; then the caller's access ([`Engine::check_write`]).
    pub(crate) async fn admit(&self, op: WriteOp) -> Result<WriteOp, FhirError> {
        let append_only = || {
            FhirError::new(
                405,
                IssueCode::NotSupported,
                "AuditEvents are append-only: they cannot be updated or deleted",
            )
        };
        let op = match op {
            WriteOp::Delete { resource_type, .. } if resource_type == "AuditEvent" => {
                return Err(append_only());
            }
            WriteOp::Update {
                resource_type,
                id,
                resource,
                index,
                contained,
                ..
            } if resource_type == "AuditEvent" => {
                if self.store.read(&resource_type, &id).await?.is_some() {
                    return Err(append_only());
                }
                WriteOp::Create {
                    resource_type,
                    id,
                    resource,
                    index,
                    contained,
                }
            }
            op => op,
        };
        self.check_write(&op).await?;
        Ok(op)
    }

    /// Checks one write against the caller's access.
    async fn check_write(&self, op: &WriteOp) -> Result<(), FhirError> {
        if self.access.is_unrestricted() {
            return Ok(());
        }
        match op {
            WriteOp::Create {
                resource_type,
                id,
                resource,
                index,
                ..
            } => {
                let c = self.allow(resource_type, Interaction::Create)?;
                self.check_new_content(resource_type, id, resource, index, &c)
            }
            WriteOp::Update {
                resource_type,
                id,
                resource,
                index,
                ..
            } => {
                let c = self.allow(resource_type, Interaction::Update)?;
                match self.store.read(resource_type, id).await? {
                    Some(current) if !current.is_deleted() => {
                        if !self.may_read_for(&current, Interaction::Update).await? {
                            return Err(hidden(resource_type, id));
                        }
                    }
                    _ => {
                        self.allow(resource_type, Interaction::Create)?;
                    }
                }
                self.check_new_content(resource_type, id, resource, index, &c)
            }
            WriteOp::Delete {
                resource_type, id, ..
            } => {
                self.allow(resource_type, Interaction::Delete)?;
                if let Some(current) = self.store.read(resource_type, id).await?
                    && !current.is_deleted()
                    && !self.may_read_for(&current, Interaction::Delete).await?
                {
                    return Err(hidden(resource_type, id));
                }
                Ok(())
            }
            WriteOp::Reindex { .. } => Err(FhirError::new(
                403,
                IssueCode::Forbidden,
                "re-indexing is for the server itself",
            )),
        }
    }

    /// Whether `current` meets the conditions of `interaction` on its type.
    async fn may_read_for(
        &self,
        current: &StoredVersion,
        interaction: Interaction,
    ) -> Result<bool, FhirError> {
        let c = self.allow(&current.resource_type, interaction)?;
        let kept = self
            .filter_with(&current.resource_type, &c, vec![current.clone()])
            .await?;
        Ok(!kept.is_empty())
    }

    /// New content must stay within what the writer may see: labels within clearance, in
    /// the writer's patient compartment, matching one of the scope's restrictions.
    fn check_new_content(
        &self,
        resource_type: &str,
        id: &str,
        resource: &Value,
        index: &[IndexRow],
        c: &Conditions,
    ) -> Result<(), FhirError> {
        let refuse = |why: &str| {
            Err(FhirError::new(
                403,
                IssueCode::Forbidden,
                format!("this caller may not write this {resource_type}: {why}"),
            ))
        };
        if !self.access.labels_allow(resource) {
            return refuse("its security labels are beyond the caller's clearance or departments");
        }
        if let Some(patient) = &c.patient {
            let inside = if resource_type == "Patient" {
                id == patient
            } else {
                let params = caduceus_model::defs::compartment_params("Patient", resource_type);
                index.iter().any(|row| {
                    params.contains(&row.param)
                        && matches!(&row.value, IndexValue::Reference { target_type: Some(t), target_id: Some(i), .. }
                            if t == "Patient" && i == patient)
                })
            };
            if !inside {
                return refuse("it is outside the compartment of the patient in context");
            }
        }
        if !c.restrictions.is_empty()
            && !c
                .restrictions
                .iter()
                .any(|set| set.iter().all(|(k, v)| row_matches(index, k, v)))
        {
            return refuse("it does not match the search restrictions of the granting scope");
        }
        Ok(())
    }
}

/// A search with the caller's conditions, restricted or not.
#[derive(Debug, Clone)]
pub(crate) struct Restricted {
    /// The request to run.
    pub request: SearchRequest,
    /// False when results still need a visibility check beyond labels.
    pub exact: bool,
}

/// A search of one type with `params` under `conditions`.
fn restricted_request(
    resource_type: &str,
    conditions: &Conditions,
    params: Vec<(String, String)>,
    compartment: Option<(String, String)>,
) -> Option<SearchRequest> {
    let request = SearchRequest {
        types: vec![resource_type.to_owned()],
        compartment,
        params,
        strict: true,
    };
    restricted_request_for(
        &request,
        Some(resource_type),
        conditions,
        request.params.clone(),
    )
}

/// `request` with `params`, the patient compartment and the label exclusions of
/// `conditions`. `None` when the compartments conflict (nothing can match).
fn restricted_request_for(
    request: &SearchRequest,
    single_type: Option<&str>,
    conditions: &Conditions,
    mut params: Vec<(String, String)>,
) -> Option<SearchRequest> {
    let mut compartment = request.compartment.clone();
    if let Some(patient) = &conditions.patient {
        match (&compartment, single_type) {
            (Some((ct, id)), _) if ct == "Patient" && id == patient => {}
            (Some(_), _) => return None,
            (None, Some("Patient")) => params.push(("_id".to_owned(), patient.clone())),
            (None, _) => compartment = Some(("Patient".to_owned(), patient.clone())),
        }
    }
    for (system, code) in &conditions.hidden_labels {
        params.push(("_security:not".to_owned(), format!("{system}|{code}")));
    }
    Some(SearchRequest {
        types: request.types.clone(),
        compartment,
        params,
        strict: request.strict,
    })
}

/// The ids of the resources a version's reference parameter `param` points to.
fn referenced_ids(v: &StoredVersion, param: &str) -> Vec<String> {
    let Some(body) = v.body.as_deref() else {
        return Vec::new();
    };
    let Ok(resource) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    caduceus_index::extract(&resource)
        .rows
        .into_iter()
        .filter(|r| r.param == param)
        .filter_map(|r| match r.value {
            IndexValue::Reference {
                target_id: Some(id),
                ..
            } if !id.starts_with('#') => Some(id),
            _ => None,
        })
        .collect()
}

/// Whether a new resource's index rows match one scope restriction `param=value`: tokens
/// (`code`, `system|code`, `|code`, `system|`), references (`Type/id`, `id`) and strings
/// (prefix, normalised). Other kinds never match, so a write under a restriction on them is
/// refused rather than guessed.
fn row_matches(index: &[IndexRow], param: &str, value: &str) -> bool {
    value.split(',').any(|alternative| {
        index
            .iter()
            .filter(|r| r.param == param)
            .any(|r| value_matches(&r.value, alternative))
    })
}

fn value_matches(row: &IndexValue, wanted: &str) -> bool {
    match row {
        IndexValue::Token { system, code, .. } => {
            let (want_system, want_code) = match wanted.split_once('|') {
                Some((s, c)) => (Some(s), c),
                None => (None, wanted),
            };
            let system_ok = match want_system {
                None => true,
                Some("") => system.is_none(),
                Some(s) => system.as_deref() == Some(s),
            };
            let code_ok = want_code.is_empty() || code.as_deref() == Some(want_code);
            system_ok && code_ok
        }
        IndexValue::Reference {
            target_type,
            target_id,
            ..
        } => match wanted.split_once('/') {
            Some((t, id)) => target_type.as_deref() == Some(t) && target_id.as_deref() == Some(id),
            None => target_id.as_deref() == Some(wanted),
        },
        IndexValue::String { normalized, .. } => {
            normalized.starts_with(&caduceus_store::index::normalize::normalize_string(wanted))
        }
        _ => false,
    }
}

fn hidden(resource_type: &str, id: &str) -> FhirError {
    FhirError::not_found(format!("{resource_type}/{id} is not known"))
}

fn too_costly() -> FhirError {
    FhirError::new(
        400,
        IssueCode::TooCostly,
        "a chained or _has criterion reaches too many resources for this caller; narrow it",
    )
}
