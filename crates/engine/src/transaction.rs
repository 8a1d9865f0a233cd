//! Batch and transaction bundles.
//!
//! A transaction is processed as the specification orders it: every entry is parsed and
//! validated first, ids are assigned to POST entries, `urn:uuid:`/`urn:oid:` references are
//! rewritten, then all DELETEs, POSTs and PUT/PATCHes go to the store as *one* atomic write,
//! and GETs are answered after it commits. Any failing entry fails the whole transaction
//! before anything is written. A batch runs each entry on its own and reports each outcome.
//!
//! Conditional creates (`ifNoneExist`) hold their store locks (see the `conditional`
//! module) from before their search until the write has committed: a transaction takes the
//! locks of all of its conditional creates at once, in sorted key order, so two bundles
//! needing the same keys cannot deadlock; a batch entry takes its own.

use std::collections::HashMap;

use base64::Engine as _;
use caduceus_model::{IssueCode, OperationOutcome};
use caduceus_store::{StoreError, StoredVersion, WriteOp, WriteOutcome};
use serde_json::Value;

use crate::bundle_writer::{BundleWriter, Entry};
use crate::conditional::{HeldLock, Matches, create_lock_key};
use crate::error::status_line;
use crate::interactions::{check_type, new_id};
use crate::references::{is_placeholder, rewrite};
use crate::search::SearchRequest;
use crate::{Engine, FhirError};

/// What a client asked to get back (`Prefer: return=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnPreference {
    /// Headers only.
    Minimal,
    /// The resource as stored.
    #[default]
    Representation,
    /// An OperationOutcome about the interaction.
    OperationOutcome,
}

/// The result of one bundle entry.
#[derive(Debug, Clone)]
pub struct EntryResponse {
    /// HTTP status.
    pub status: u16,
    /// The version written or read, if any.
    pub version: Option<StoredVersion>,
    /// An outcome for errors.
    pub outcome: Option<OperationOutcome>,
    /// The searchset Bundle of a search entry.
    pub bundle: Option<Vec<u8>>,
}

/// Which kind of bundle was processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    /// All or nothing.
    Transaction,
    /// Entry by entry.
    Batch,
}

impl BundleKind {
    /// `transaction` or `batch`.
    pub fn as_str(self) -> &'static str {
        match self {
            BundleKind::Transaction => "transaction",
            BundleKind::Batch => "batch",
        }
    }
}

/// A processed bundle: its response, as JSON bytes.
#[derive(Debug, Clone)]
pub struct BundleResponse {
    /// The `batch-response` or `transaction-response` Bundle.
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    /// Transaction processing order of the specification: DELETE, POST, PUT/PATCH, GET.
    fn rank(self) -> u8 {
        match self {
            Verb::Delete => 0,
            Verb::Post => 1,
            Verb::Put | Verb::Patch => 2,
            Verb::Get => 3,
        }
    }
}

/// One request entry, parsed.
struct Request {
    verb: Verb,
    resource_type: String,
    id: Option<String>,
    version: Option<String>,
    full_url: Option<String>,
    resource: Option<Value>,
    if_match: Option<u64>,
    /// A conditional entry's search: `ifNoneExist` of a POST, or the query of a
    /// `PUT/PATCH/DELETE [type]?[search]` (and of a GET search entry).
    condition: Option<String>,
    /// For a conditional create whose search found a resource: that resource (nothing is
    /// created).
    existing: Option<StoredVersion>,
}

impl Engine {
    /// Processes a `batch` or `transaction` Bundle. `base` is the server's base URL (for
    /// `fullUrl`s and for recognising absolute request URLs).
    pub async fn process_bundle(
        &self,
        bundle: Value,
        base: &str,
        preference: ReturnPreference,
    ) -> Result<BundleResponse, FhirError> {
        let (kind, responses) = self.process_bundle_entries(bundle, base).await?;
        Ok(BundleResponse {
            body: write_response_bundle(
                &format!("{}-response", kind.as_str()),
                &responses,
                base,
                preference,
            ),
        })
    }

    /// Processes a `batch` or `transaction` Bundle and returns each entry's result in entry
    /// order (for callers that want the results rather than a response Bundle, like import).
    pub async fn process_bundle_entries(
        &self,
        bundle: Value,
        base: &str,
    ) -> Result<(BundleKind, Vec<EntryResponse>), FhirError> {
        let Value::Object(mut obj) = bundle else {
            return Err(FhirError::new(
                400,
                IssueCode::Structure,
                "the body must be a Bundle",
            ));
        };
        if obj.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(
                FhirError::bad_request("only a Bundle can be posted to the base URL")
                    .within("Bundle.resourceType"),
            );
        }
        let kind = match obj.get("type").and_then(Value::as_str) {
            Some("transaction") => BundleKind::Transaction,
            Some("batch") => BundleKind::Batch,
            _ => {
                return Err(
                    FhirError::bad_request("Bundle.type must be batch or transaction")
                        .within("Bundle.type"),
                );
            }
        };
        let entries = match obj.remove("entry") {
            None => Vec::new(),
            Some(Value::Array(entries)) => entries,
            Some(_) => {
                return Err(FhirError::new(
                    400,
                    IssueCode::Structure,
                    "Bundle.entry must be an array",
                )
                .within("Bundle.entry"));
            }
        };
        let responses = match kind {
            BundleKind::Transaction => self.transaction(entries, base).await?,
            BundleKind::Batch => self.batch(entries, base).await,
        };
        Ok((kind, responses))
    }

    async fn transaction(
        &self,
        entries: Vec<Value>,
        base: &str,
    ) -> Result<Vec<EntryResponse>, FhirError> {
        let mut requests = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            requests.push(
                parse_entry(entry, base).map_err(|e| e.within(&format!("Bundle.entry[{i}]")))?,
            );
        }
        // Held until the write has committed: another bundle or request running the same
        // conditional create waits, then finds what this one created.
        let locks = self.lock_conditional_creates(&requests, 0, base).await?;
        self.resolve_conditions(&mut requests, base).await?;
        // Assign ids and build the fullUrl map before any resource is prepared.
        let mut map = self.resolve_conditional_references(&requests, base).await?;
        let mut seen_full_urls = HashMap::new();
        for (i, r) in requests.iter_mut().enumerate() {
            if r.verb == Verb::Post {
                r.id = Some(r.existing.as_ref().map_or_else(new_id, |v| v.id.clone()));
            }
            if let (Some(full_url), Some(id)) = (&r.full_url, &r.id)
                && matches!(r.verb, Verb::Post | Verb::Put)
            {
                if seen_full_urls.insert(full_url.clone(), i).is_some() {
                    return Err(FhirError::bad_request("two entries have the same fullUrl")
                        .within(&format!("Bundle.entry[{i}].fullUrl")));
                }
                map.insert(full_url.clone(), format!("{}/{id}", r.resource_type));
            }
        }
        for (i, r) in requests.iter_mut().enumerate() {
            if let Some(resource) = r
                .resource
                .as_mut()
                .filter(|_| matches!(r.verb, Verb::Post | Verb::Put))
            {
                let mut path = format!("Bundle.entry[{i}].resource");
                if let Some(dangling) = rewrite(resource, &map, &mut path) {
                    return Err(FhirError::bad_request(
                        "a urn:uuid or urn:oid reference names no entry of this transaction",
                    )
                    .within(&dangling));
                }
            }
        }

        let mut order: Vec<usize> = (0..requests.len()).collect();
        order.sort_by_key(|&i| requests[i].verb.rank());
        let mut ops = Vec::new();
        let mut op_entry = Vec::new(); // op index -> entry index
        for &i in &order {
            let r = &mut requests[i];
            let op = match self.prepare(r).await {
                Ok(Some(op)) => op,
                Ok(None) => continue,
                Err(e) => return Err(within_entry_resource(e, i, &r.resource_type)),
            };
            ops.push(op);
            op_entry.push(i);
        }
        let mut admitted = Vec::with_capacity(ops.len());
        for (k, op) in ops.into_iter().enumerate() {
            match self.admit(op).await {
                Ok(op) => admitted.push(op),
                Err(e) => {
                    return Err(match op_entry.get(k) {
                        Some(i) => e.within(&format!("Bundle.entry[{i}]")),
                        None => e,
                    });
                }
            }
        }
        let outcomes = self.store.write(admitted).await.map_err(|e| {
            let at = store_error_index(&e).and_then(|k| op_entry.get(k).copied());
            let error = FhirError::from(e);
            match at {
                Some(i) => error.within(&format!("Bundle.entry[{i}]")),
                None => error,
            }
        })?;
        drop(locks);

        let mut responses: Vec<Option<EntryResponse>> = vec![None; requests.len()];
        for (outcome, &i) in outcomes.into_iter().zip(&op_entry) {
            responses[i] = Some(outcome_response(outcome));
        }
        for &i in &order {
            if requests[i].verb == Verb::Get {
                responses[i] = Some(self.get_entry(&requests[i], base).await);
            } else if let Some(existing) = requests[i].existing.take() {
                responses[i] = Some(EntryResponse {
                    status: 200,
                    version: Some(existing),
                    outcome: None,
                    bundle: None,
                });
            }
        }
        Ok(responses
            .into_iter()
            .map(|r| {
                r.unwrap_or(EntryResponse {
                    status: 200,
                    version: None,
                    outcome: None,
                    bundle: None,
                })
            })
            .collect())
    }

    async fn batch(&self, entries: Vec<Value>, base: &str) -> Vec<EntryResponse> {
        let mut responses = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let response = match parse_entry(entry, base) {
                Err(e) => error_response(e.within(&format!("Bundle.entry[{i}]"))),
                Ok(r) if r.verb == Verb::Get => self.get_entry(&r, base).await,
                Ok(r) => self.batch_write(r, i, base).await,
            };
            responses.push(response);
        }
        responses
    }

    /// One write entry of a batch, on its own.
    async fn batch_write(&self, r: Request, i: usize, base: &str) -> EntryResponse {
        let mut one = [r];
        // Held until this entry's write has committed (dropped on return).
        let _lock = match self.lock_conditional_creates(&one, i, base).await {
            Ok(locks) => locks,
            Err(e) => return error_response(e),
        };
        if let Err(e) = self.resolve_conditions(&mut one, base).await {
            return error_response(e.within(&format!("Bundle.entry[{i}]")));
        }
        let [mut r] = one;
        if let Some(existing) = r.existing.take() {
            return EntryResponse {
                status: 200,
                version: Some(existing),
                outcome: None,
                bundle: None,
            };
        }
        if r.verb == Verb::Post {
            r.id = Some(new_id());
        }
        let op = match self.prepare(&mut r).await {
            Err(e) => return error_response(within_entry_resource(e, i, &r.resource_type)),
            Ok(None) => {
                return EntryResponse {
                    status: 204,
                    version: None,
                    outcome: None,
                    bundle: None,
                };
            }
            Ok(Some(op)) => op,
        };
        match self.guarded_write(vec![op]).await {
            Ok(mut outcomes) => match outcomes.pop() {
                Some(outcome) => outcome_response(outcome),
                None => error_response(FhirError::new(500, IssueCode::Exception, "no outcome")),
            },
            Err(e) => error_response(e.within(&format!("Bundle.entry[{i}]"))),
        }
    }

    /// Takes the store locks of the conditional creates and conditional updates (which
    /// create when nothing matches) among `requests` (the first of which is entry
    /// `first_entry` of its bundle), all at once, in sorted key order.
    async fn lock_conditional_creates(
        &self,
        requests: &[Request],
        first_entry: usize,
        base: &str,
    ) -> Result<Vec<HeldLock>, FhirError> {
        let mut keys = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let creates = matches!(r.verb, Verb::Post | Verb::Put);
            let Some(query) = r.condition.as_deref().filter(|_| creates) else {
                continue;
            };
            // The limit is the one `resolve_conditions` searches with: it is part of the
            // canonical query, so REST and bundle creates share their keys.
            let search = self
                .conditional_search(&r.resource_type, query, base, 2)
                .map_err(|e| e.within(&format!("Bundle.entry[{}].request", first_entry + i)))?;
            keys.push(create_lock_key(&r.resource_type, &search));
        }
        self.lock_all(keys).await
    }

    /// Resolves conditional entries by searching: a conditional create that finds one
    /// resource becomes a no-op answering with it; a conditional update, patch or delete
    /// gets the id (and, as a guard, the version) of the one resource found.
    async fn resolve_conditions(
        &self,
        requests: &mut [Request],
        base: &str,
    ) -> Result<(), FhirError> {
        for (i, r) in requests.iter_mut().enumerate() {
            let Some(query) = r.condition.clone() else {
                continue;
            };
            if r.verb == Verb::Get {
                continue;
            }
            let at = |e: FhirError| e.within(&format!("Bundle.entry[{i}].request"));
            let found = self
                .conditional_matches(&r.resource_type, &query, base, 2)
                .await
                .map_err(at)?;
            match (r.verb, found) {
                (_, Matches::Many(_)) => {
                    return Err(at(FhirError::new(
                        412,
                        IssueCode::Duplicate,
                        "the conditional entry matched more than one resource",
                    )));
                }
                (Verb::Post, Matches::One(v)) => r.existing = Some(v),
                (Verb::Post, Matches::None) => {}
                (Verb::Put, Matches::None) => {
                    let body_id = r
                        .resource
                        .as_ref()
                        .and_then(|b| b.get("id"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    let id = body_id.unwrap_or_else(new_id);
                    if let Some(Value::Object(obj)) = r.resource.as_mut() {
                        obj.insert("id".into(), Value::String(id.clone()));
                    }
                    r.id = Some(id);
                }
                (Verb::Get, _) => {}
                (Verb::Put | Verb::Patch | Verb::Delete, Matches::One(v)) => {
                    if let Some(Value::Object(obj)) =
                        r.resource.as_mut().filter(|_| r.verb == Verb::Put)
                    {
                        if obj
                            .get("id")
                            .and_then(Value::as_str)
                            .is_some_and(|id| id != v.id)
                        {
                            return Err(at(FhirError::bad_request(
                                "the id in the body is not the id of the resource the search found",
                            )));
                        }
                        obj.insert("id".into(), Value::String(v.id.clone()));
                    }
                    r.if_match = r.if_match.or(Some(v.version));
                    r.id = Some(v.id);
                }
                (Verb::Patch, Matches::None) => {
                    return Err(at(FhirError::not_found(
                        "the conditional patch matched no resource",
                    )));
                }
                // A conditional delete that matches nothing deletes nothing.
                (_, Matches::None) => {}
            }
        }
        Ok(())
    }

    /// Conditional references (`Patient?identifier=x`) in the resources of POST and PUT
    /// entries, each resolved by a search to the one resource it matches.
    async fn resolve_conditional_references(
        &self,
        requests: &[Request],
        base: &str,
    ) -> Result<HashMap<String, String>, FhirError> {
        let mut found = Vec::new();
        for r in requests
            .iter()
            .filter(|r| matches!(r.verb, Verb::Post | Verb::Put))
        {
            if let Some(resource) = &r.resource {
                collect_conditional_references(resource, &mut found);
            }
        }
        let mut map = HashMap::new();
        found.sort();
        found.dedup();
        for reference in found {
            let target = self.resolve_conditional_reference(&reference, base).await?;
            map.insert(reference, target);
        }
        Ok(map)
    }

    /// Turns a write entry into a store operation (None for GET, and for a conditional
    /// create whose search found its resource: nothing is written for it).
    async fn prepare(&self, r: &mut Request) -> Result<Option<WriteOp>, FhirError> {
        let id = r.id.clone().unwrap_or_default();
        Ok(Some(match r.verb {
            Verb::Get => return Ok(None),
            Verb::Post if r.existing.is_some() => return Ok(None),
            Verb::Delete => self.prepare_delete(&r.resource_type, &id, r.if_match)?,
            Verb::Post => {
                let resource = r.resource.take().ok_or_else(missing_resource)?;
                self.prepare_create_with_id(&r.resource_type, id, resource)?
            }
            Verb::Put => {
                let resource = r.resource.take().ok_or_else(missing_resource)?;
                self.prepare_update(&r.resource_type, &id, resource, r.if_match)?
            }
            Verb::Patch => {
                let resource = r.resource.take().ok_or_else(missing_resource)?;
                let patch = json_patch_from_binary(&resource)?;
                self.prepare_patch(&r.resource_type, &id, &patch, r.if_match)
                    .await?
            }
        }))
    }

    async fn get_entry(&self, r: &Request, base: &str) -> EntryResponse {
        if r.id.is_none() {
            let request = SearchRequest {
                types: vec![r.resource_type.clone()],
                compartment: None,
                params: form_urlencoded::parse(r.condition.as_deref().unwrap_or("").as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
                strict: false,
            };
            return match self.search(&request, base).await {
                Ok(bundle) => EntryResponse {
                    status: 200,
                    version: None,
                    outcome: None,
                    bundle: Some(bundle),
                },
                Err(e) => error_response(e),
            };
        }
        let result = match (&r.id, &r.version) {
            (Some(id), Some(v)) => self.vread(&r.resource_type, id, v).await,
            (Some(id), None) => self.read(&r.resource_type, id).await,
            _ => Err(FhirError::bad_request(
                "a GET entry names a resource, a version or a search",
            )),
        };
        match result {
            Ok(version) => EntryResponse {
                status: 200,
                version: Some(version),
                outcome: None,
                bundle: None,
            },
            Err(e) => error_response(e),
        }
    }
}

/// Places an entry resource's issues in the bundle: `Patient.gender` of entry 2 becomes
/// `Bundle.entry[2].resource.gender` (the type name starts a FHIRPath only at its root, so
/// `...resource.Patient.gender` would name an element that does not exist).
fn within_entry_resource(mut e: FhirError, i: usize, resource_type: &str) -> FhirError {
    for issue in &mut e.outcome.issues {
        issue.expression = std::mem::take(&mut issue.expression)
            .into_iter()
            .filter_map(|x| match x.strip_prefix(resource_type) {
                Some("") => None,
                Some(rest) if rest.starts_with('.') => Some(rest[1..].to_owned()),
                _ => Some(x),
            })
            .collect();
    }
    e.within(&format!("Bundle.entry[{i}].resource"))
}

/// Every `reference` of the form `Type?query` in a resource.
fn collect_conditional_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj {
                match v {
                    Value::String(s) if k == "reference" => {
                        if let Some((t, q)) = s.split_once('?')
                            && !q.is_empty()
                            && caduceus_model::defs::is_resource_type(t)
                        {
                            out.push(s.clone());
                        }
                    }
                    other => collect_conditional_references(other, out),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_conditional_references(v, out)),
        _ => {}
    }
}

fn missing_resource() -> FhirError {
    FhirError::new(400, IssueCode::Required, "this entry needs a resource")
}

fn error_response(e: FhirError) -> EntryResponse {
    EntryResponse {
        status: e.status,
        version: None,
        outcome: Some(e.outcome),
        bundle: None,
    }
}

fn outcome_response(outcome: WriteOutcome) -> EntryResponse {
    match outcome {
        WriteOutcome::Written { version, created } => EntryResponse {
            status: if created { 201 } else { 200 },
            version: Some(version),
            outcome: None,
            bundle: None,
        },
        WriteOutcome::Deleted { version } => EntryResponse {
            status: 204,
            version: Some(version),
            outcome: None,
            bundle: None,
        },
        // Bundles never carry index maintenance; answer as a no-op should one appear.
        WriteOutcome::NothingToDelete | WriteOutcome::Reindexed { .. } => EntryResponse {
            status: 204,
            version: None,
            outcome: None,
            bundle: None,
        },
    }
}

fn store_error_index(e: &StoreError) -> Option<usize> {
    match e {
        StoreError::VersionConflict { index, .. }
        | StoreError::AlreadyExists { index }
        | StoreError::DuplicateInWrite { index } => Some(*index),
        _ => None,
    }
}

/// Parses `If-Match`-style version tags: `W/"3"`, `"3"` or `3`.
pub fn parse_version_tag(tag: &str) -> Option<u64> {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.trim_matches('"').parse().ok()
}

fn parse_entry(entry: Value, base: &str) -> Result<Request, FhirError> {
    let Value::Object(mut entry) = entry else {
        return Err(FhirError::new(
            400,
            IssueCode::Structure,
            "an entry must be an object",
        ));
    };
    let request = entry
        .get("request")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            FhirError::new(400, IssueCode::Required, "the entry has no request").within("request")
        })?;
    let verb = match request.get("method").and_then(Value::as_str) {
        Some("GET") | Some("HEAD") => Verb::Get,
        Some("POST") => Verb::Post,
        Some("PUT") => Verb::Put,
        Some("PATCH") => Verb::Patch,
        Some("DELETE") => Verb::Delete,
        _ => {
            return Err(FhirError::bad_request(
                "request.method must be GET, HEAD, POST, PUT, PATCH or DELETE",
            )
            .within("request.method"));
        }
    };
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let if_match = match request.get("ifMatch").and_then(Value::as_str) {
        None => None,
        Some(tag) => Some(parse_version_tag(tag).ok_or_else(|| {
            FhirError::bad_request("request.ifMatch is not a version tag such as W/\"3\"")
                .within("request.ifMatch")
        })?),
    };
    if request.contains_key("ifNoneMatch") || request.contains_key("ifModifiedSince") {
        return Err(FhirError::not_implemented(
            "ifNoneMatch and ifModifiedSince in bundles are not supported yet",
        )
        .within("request"));
    }
    let if_none_exist = request
        .get("ifNoneExist")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let path = url
        .strip_prefix(base)
        .map(|p| p.trim_start_matches('/'))
        .unwrap_or(url);
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (path, None),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (resource_type, id, version) = match (verb, segments.as_slice()) {
        (Verb::Post, [t]) if query.is_none() => (*t, None, None),
        // A conditional update, patch or delete, or a search.
        (Verb::Put | Verb::Patch | Verb::Delete | Verb::Get, [t])
            if query.is_some() || verb == Verb::Get =>
        {
            (*t, None, None)
        }
        (Verb::Get, [t, id, "_history", v]) => (*t, Some(*id), Some(*v)),
        (Verb::Put | Verb::Patch | Verb::Delete | Verb::Get, [t, id]) => (*t, Some(*id), None),
        _ => {
            return Err(FhirError::bad_request("request.url does not fit request.method (expected [type] for POST, [type]/[id] otherwise)").within("request.url"));
        }
    };
    check_type(resource_type).map_err(|e| e.within("request.url"))?;
    let full_url = entry
        .get("fullUrl")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(u) = &full_url
        && u.starts_with("urn:")
        && !is_placeholder(u)
    {
        return Err(FhirError::bad_request(
            "fullUrl must be an absolute URL, urn:uuid: or urn:oid:",
        )
        .within("fullUrl"));
    }
    let condition = match verb {
        Verb::Post => if_none_exist,
        _ => query,
    };
    Ok(Request {
        verb,
        resource_type: resource_type.to_owned(),
        id: id.map(str::to_owned),
        version: version.map(str::to_owned),
        full_url,
        resource: entry.remove("resource"),
        if_match,
        condition,
        existing: None,
    })
}

/// In a bundle, a JSON Patch travels as a Binary resource with
/// `contentType: application/json-patch+json` and the patch base64-encoded in `data`.
fn json_patch_from_binary(resource: &Value) -> Result<Value, FhirError> {
    let is_json_patch = resource.get("resourceType").and_then(Value::as_str) == Some("Binary")
        && resource
            .get("contentType")
            .and_then(Value::as_str)
            .is_some_and(|c| c.starts_with("application/json-patch+json"));
    if !is_json_patch {
        return Err(FhirError::not_implemented(
            "a PATCH entry must carry a Binary with contentType application/json-patch+json (FHIRPath Patch is not supported yet)",
        ));
    }
    let data = resource
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| FhirError::bad_request("Binary.data is not valid base64").within("data"))?;
    crate::interactions::parse_json(&bytes)
}

fn write_response_bundle(
    kind: &str,
    responses: &[EntryResponse],
    base: &str,
    preference: ReturnPreference,
) -> Vec<u8> {
    let mut writer = BundleWriter::new(kind, None, &[]);
    for r in responses {
        let mut response = serde_json::Map::new();
        response.insert("status".into(), status_line(r.status).into());
        let mut full_url = None;
        let mut resource = None;
        if let Some(v) = &r.version {
            full_url = Some(format!("{base}/{}/{}", v.resource_type, v.id));
            response.insert(
                "location".into(),
                format!("{}/{}/_history/{}", v.resource_type, v.id, v.version).into(),
            );
            response.insert("etag".into(), format!("W/\"{}\"", v.version).into());
            response.insert(
                "lastModified".into(),
                caduceus_model::ids::format_instant(v.last_updated).into(),
            );
            match preference {
                ReturnPreference::Representation => resource = v.body.as_deref(),
                ReturnPreference::OperationOutcome => {
                    response.insert("outcome".into(), OperationOutcome::default().to_json());
                }
                ReturnPreference::Minimal => {}
            }
        }
        if let Some(outcome) = &r.outcome {
            response.insert("outcome".into(), outcome.to_json());
        }
        if let Some(bundle) = &r.bundle {
            resource = Some(bundle);
        }
        writer.entry(Entry {
            full_url: full_url.as_deref(),
            resource,
            request: None,
            response: Some(Value::Object(response)),
            ..Entry::default()
        });
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use caduceus_model::{Issue, OperationOutcome};

    #[test]
    fn entry_issues_are_placed_under_the_entry_resource() {
        let mut gender = Issue::error(IssueCode::CodeInvalid, "bad code");
        gender.expression = vec!["Patient.gender".into()];
        let mut root = Issue::error(IssueCode::Invalid, "bad resource");
        root.expression = vec!["Patient".into()];
        let mut other = Issue::error(IssueCode::Invalid, "other");
        other.expression = vec!["resourceType".into(), "PatientX.a".into()];
        let e = FhirError {
            status: 422,
            outcome: OperationOutcome::from(vec![gender, root, other]),
        };
        let placed = within_entry_resource(e, 2, "Patient");
        let expressions: Vec<&[String]> = placed
            .outcome
            .issues
            .iter()
            .map(|i| i.expression.as_slice())
            .collect();
        assert_eq!(expressions[0], ["Bundle.entry[2].resource.gender"]);
        assert_eq!(expressions[1], ["Bundle.entry[2].resource"]);
        assert_eq!(
            expressions[2],
            [
                "Bundle.entry[2].resource.resourceType",
                "Bundle.entry[2].resource.PatientX.a"
            ]
        );
    }
}
