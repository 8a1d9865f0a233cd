//! The instance and type level interactions: create, read, vread, update, patch, delete,
//! `$validate`. Each write is *prepared* (checked, validated, turned into a `WriteOp`) and
//! then applied; transactions reuse the same `prepare_*` functions.

use caduceus_index::Extraction;
use caduceus_model::{Issue, IssueCode, OperationOutcome, defs, ids::is_valid_id};
use caduceus_store::{Method, StoredVersion, WriteOp, WriteOutcome};
use serde_json::Value;

use crate::{Engine, FhirError};

/// A version that a create, update or patch wrote.
#[derive(Debug, Clone)]
pub struct WriteResult {
    /// The stored version, body included.
    pub version: StoredVersion,
    /// True for 201 Created, false for 200 OK.
    pub created: bool,
}

/// What a delete did.
#[derive(Debug, Clone)]
pub enum DeleteResult {
    /// A tombstone version was written.
    Deleted(StoredVersion),
    /// The resource was absent or already deleted; nothing changed.
    NothingToDelete,
}

/// A live version returned by read or vread.
pub type ReadResult = StoredVersion;

/// How many times a PATCH without `If-Match` is retried when another writer got in between
/// its read and its write. Every round of a race has a winner, so N concurrent patches of
/// one resource need at most N attempts each; this bounds the work under extreme contention.
const PATCH_RETRIES: usize = 64;

/// Fails with 404 unless `resource_type` is a concrete FHIR R4 resource type.
pub fn check_type(resource_type: &str) -> Result<(), FhirError> {
    if defs::is_resource_type(resource_type) {
        Ok(())
    } else {
        Err(FhirError::new(
            404,
            IssueCode::NotSupported,
            "unknown resource type in the URL",
        ))
    }
}

/// Fails with 400 unless `id` is a valid FHIR id.
pub fn check_id(id: &str) -> Result<(), FhirError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(FhirError::bad_request(
            "the id in the URL is not a valid FHIR id ([A-Za-z0-9-.]{1,64})",
        ))
    }
}

/// Parses a request body as JSON; 400 with the position of the first syntax error.
pub fn parse_json(body: &[u8]) -> Result<Value, FhirError> {
    use crate::exact_json::ParseError;
    /// The deepest nesting of arrays and objects accepted. Resources nest a few dozen levels
    /// at most (a Bundle entry's resource with contained resources included); deeper input
    /// is refused before parsing, with the limit named, because serde_json's own guard (128)
    /// reads as a mere syntax error and every recursive walk after parsing needs stack.
    const MAX_JSON_DEPTH: usize = 100;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b'[' | b'{' if !in_string => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(FhirError::new(
                        400,
                        IssueCode::TooLong,
                        format!(
                            "the body nests arrays and objects more than {MAX_JSON_DEPTH} \
                             levels deep, the server's limit"
                        ),
                    ));
                }
            }
            b']' | b'}' if !in_string => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    crate::exact_json::parse(body).map_err(|e| {
        let diagnostics = match e {
            ParseError::Syntax(e) => format!(
                "the body is not valid JSON: {} at line {} column {}",
                describe_json_error(&e),
                e.line(),
                e.column()
            ),
            ParseError::DuplicateKey => {
                "the body repeats a property name within one object, which FHIR JSON forbids"
                    .to_owned()
            }
        };
        FhirError::new(400, IssueCode::Structure, diagnostics)
    })
}

/// The kind of a JSON error without serde_json's echo of the input (which could be patient data).
fn describe_json_error(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected data",
        Category::Eof => "unexpected end of input",
    }
}

/// Validates a resource whose type is already known to match (422 on any error), drops the
/// `meta` elements the store will set, and extracts its search index rows.
fn validated(mut resource: Value) -> Result<(Value, Extraction), FhirError> {
    let issues = caduceus_validate::validate_resource(&resource);
    if issues.iter().any(Issue::is_error) {
        return Err(FhirError::from_validation(issues));
    }
    // versionId and lastUpdated are the store's; a client's values must not be indexed
    // (`_lastUpdated` is searched on the stored version's own column).
    if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
    }
    let index = caduceus_index::extract(&resource);
    Ok((resource, index))
}

/// The body must be a JSON object of the type the URL names.
fn check_body_type(resource_type: &str, resource: &Value) -> Result<(), FhirError> {
    let Some(obj) = resource.as_object() else {
        return Err(FhirError::new(
            400,
            IssueCode::Structure,
            "the body must be a JSON object (a FHIR resource)",
        ));
    };
    match obj.get("resourceType").and_then(Value::as_str) {
        Some(rt) if rt == resource_type => Ok(()),
        Some(_) => Err(FhirError::bad_request(
            "the resourceType of the body does not match the resource type in the URL",
        )
        .within("resourceType")),
        None => Err(FhirError::new(
            400,
            IssueCode::Required,
            "the body has no resourceType",
        )),
    }
}

/// A new server-assigned id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Engine {
    /// Validates a resource without storing it (`$validate`): the outcome lists every issue.
    /// `resource_type` is the type the URL names, if any; `id` the instance the URL names
    /// (instance-level `$validate`), whose id the body must carry if it has one.
    pub fn validate(
        &self,
        resource_type: Option<&str>,
        id: Option<&str>,
        resource: &Value,
    ) -> OperationOutcome {
        if let Some(rt) = resource_type
            && let Err(e) = check_body_type(rt, resource)
        {
            return e.outcome;
        }
        let mut issues = caduceus_validate::validate_resource(resource);
        if let (Some(url_id), Some(body_id)) = (id, resource.get("id").and_then(Value::as_str))
            && url_id != body_id
        {
            issues.push(
                Issue::error(
                    IssueCode::Invalid,
                    "the id in the body does not match the id in the URL",
                )
                .at("id"),
            );
        }
        OperationOutcome::from(issues)
    }

    /// Prepares a create: a fresh id (any id in the body is ignored, as the specification says).
    pub(crate) fn prepare_create(
        &self,
        resource_type: &str,
        resource: Value,
    ) -> Result<WriteOp, FhirError> {
        self.prepare_create_with_id(resource_type, new_id(), resource)
    }

    pub(crate) fn prepare_create_with_id(
        &self,
        resource_type: &str,
        id: String,
        mut resource: Value,
    ) -> Result<WriteOp, FhirError> {
        check_type(resource_type)?;
        check_body_type(resource_type, &resource)?;
        if let Some(obj) = resource.as_object_mut() {
            obj.insert("id".into(), Value::String(id.clone()));
        }
        let (resource, index) = validated(resource)?;
        Ok(WriteOp::Create {
            resource_type: resource_type.to_owned(),
            id,
            resource,
            index: index.rows,
            contained: index.contained,
        })
    }

    /// Prepares an update: the body's id must equal the URL's.
    pub(crate) fn prepare_update(
        &self,
        resource_type: &str,
        id: &str,
        resource: Value,
        if_match: Option<u64>,
    ) -> Result<WriteOp, FhirError> {
        check_type(resource_type)?;
        check_id(id)?;
        check_body_type(resource_type, &resource)?;
        match resource.get("id") {
            Some(Value::String(body_id)) if body_id == id => {}
            Some(_) => {
                return Err(FhirError::bad_request(
                    "the id in the body does not match the id in the URL",
                )
                .within("id"));
            }
            None => {
                return Err(FhirError::new(
                    400,
                    IssueCode::Required,
                    "an update must carry the resource id in the body",
                ));
            }
        }
        let (resource, index) = validated(resource)?;
        Ok(WriteOp::Update {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            resource,
            index: index.rows,
            contained: index.contained,
            if_match,
            method: Method::Update,
        })
    }

    /// Prepares a JSON Patch (RFC 6902) against the current version.
    pub(crate) async fn prepare_patch(
        &self,
        resource_type: &str,
        id: &str,
        patch: &Value,
        if_match: Option<u64>,
    ) -> Result<WriteOp, FhirError> {
        let current = self.read(resource_type, id).await?;
        if let Some(expected) = if_match
            && expected != current.version
        {
            return Err(FhirError::precondition_failed(format!(
                "version conflict: If-Match names version {expected}, the current version is {}",
                current.version
            )));
        }
        let operations: json_patch::Patch =
            serde_json::from_value(patch.clone()).map_err(|_| {
                FhirError::new(
                    400,
                    IssueCode::Structure,
                    "the body is not a JSON Patch document (an array of operations)",
                )
            })?;
        let body = current.body.as_deref().unwrap_or_default();
        let mut document = parse_json(body)?;
        json_patch::patch(&mut document, &operations).map_err(|e| {
            FhirError::new(
                422,
                IssueCode::Processing,
                format!(
                    "the patch cannot be applied: operation {} at {} failed: {}",
                    e.operation, e.path, e.kind
                ),
            )
        })?;
        check_body_type(resource_type, &document).map_err(|_| {
            FhirError::new(
                422,
                IssueCode::Processing,
                "a patch must not change the resourceType",
            )
        })?;
        if document.get("id").and_then(Value::as_str) != Some(id) {
            return Err(FhirError::new(
                422,
                IssueCode::Processing,
                "a patch must not change the id",
            ));
        }
        let (resource, index) = validated(document)?;
        Ok(WriteOp::Update {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            resource,
            index: index.rows,
            contained: index.contained,
            if_match: Some(current.version),
            method: Method::Patch,
        })
    }

    /// Prepares a delete.
    pub(crate) fn prepare_delete(
        &self,
        resource_type: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<WriteOp, FhirError> {
        check_type(resource_type)?;
        check_id(id)?;
        Ok(WriteOp::Delete {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            if_match,
        })
    }

    async fn write_one(&self, op: WriteOp) -> Result<WriteOutcome, FhirError> {
        let mut outcomes = self.guarded_write(vec![op]).await?;
        outcomes.pop().ok_or_else(|| {
            FhirError::new(500, IssueCode::Exception, "the store returned no outcome")
        })
    }

    /// create (POST `[type]`).
    pub async fn create(
        &self,
        resource_type: &str,
        resource: Value,
    ) -> Result<WriteResult, FhirError> {
        let op = self.prepare_create(resource_type, resource)?;
        written(self.write_one(op).await?)
    }

    /// update (PUT `[type]/[id]`), creating the resource if it does not exist.
    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        resource: Value,
        if_match: Option<u64>,
    ) -> Result<WriteResult, FhirError> {
        let op = self.prepare_update(resource_type, id, resource, if_match)?;
        written(self.write_one(op).await?)
    }

    /// patch (PATCH `[type]/[id]`) with a JSON Patch document. Without `If-Match`, a race
    /// with another writer is retried against the newer version.
    pub async fn patch(
        &self,
        resource_type: &str,
        id: &str,
        patch: &Value,
        if_match: Option<u64>,
    ) -> Result<WriteResult, FhirError> {
        let mut attempt = 0;
        loop {
            let op = self
                .prepare_patch(resource_type, id, patch, if_match)
                .await?;
            let op = self.admit(op).await?;
            match self.store.write(vec![op]).await {
                Ok(mut outcomes) => {
                    let outcome = outcomes.pop().ok_or_else(|| {
                        FhirError::new(500, IssueCode::Exception, "the store returned no outcome")
                    })?;
                    return written(outcome);
                }
                Err(caduceus_store::StoreError::VersionConflict { .. }) if if_match.is_none() => {
                    attempt += 1;
                    if attempt >= PATCH_RETRIES {
                        // The client sent no precondition, so 412 would be wrong.
                        return Err(FhirError::conflict(
                            "the resource kept changing while the patch was applied; retry",
                        ));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// delete (DELETE `[type]/[id]`).
    pub async fn delete(
        &self,
        resource_type: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<DeleteResult, FhirError> {
        let op = self.prepare_delete(resource_type, id, if_match)?;
        match self.write_one(op).await? {
            WriteOutcome::Deleted { version } => Ok(DeleteResult::Deleted(version)),
            WriteOutcome::NothingToDelete => Ok(DeleteResult::NothingToDelete),
            WriteOutcome::Written { .. } | WriteOutcome::Reindexed { .. } => Err(FhirError::new(
                500,
                IssueCode::Exception,
                "unexpected store outcome",
            )),
        }
    }

    /// read (GET `[type]/[id]`): the current version; 404 if it never existed, 410 if deleted.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<ReadResult, FhirError> {
        check_type(resource_type)?;
        check_id(id)?;
        self.allow(resource_type, caduceus_access::Interaction::Read)?;
        let restricted = !self.access.is_unrestricted();
        match self.store.read(resource_type, id).await? {
            None => Err(FhirError::not_found(format!(
                "{resource_type}/{id} is not known"
            ))),
            // A restricted caller cannot tell a deleted resource from one never seen.
            Some(v) if v.is_deleted() && restricted => Err(FhirError::not_found(format!(
                "{resource_type}/{id} is not known"
            ))),
            Some(v) if v.is_deleted() => Err(FhirError::gone(format!(
                "{resource_type}/{id} has been deleted"
            ))),
            Some(v) if !self.may_read(&v).await? => Err(FhirError::not_found(format!(
                "{resource_type}/{id} is not known"
            ))),
            Some(v) => Ok(v),
        }
    }

    /// vread (GET `[type]/[id]/_history/[vid]`).
    pub async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> Result<ReadResult, FhirError> {
        check_type(resource_type)?;
        check_id(id)?;
        let Ok(number) = version.parse::<u64>() else {
            return Err(FhirError::not_found(
                "no such version: version ids are positive integers",
            ));
        };
        self.allow(resource_type, caduceus_access::Interaction::Read)?;
        if !self.access.is_unrestricted() {
            // A version is visible when the resource is now and this version's own labels
            // allow it.
            self.read(resource_type, id).await?;
        }
        match self.store.vread(resource_type, id, number).await? {
            None => Err(FhirError::not_found(format!(
                "{resource_type}/{id} has no version {number}"
            ))),
            Some(v) if !v.is_deleted() && !self.may_read(&v).await? => Err(FhirError::not_found(
                format!("{resource_type}/{id} has no version {number}"),
            )),
            Some(v) if v.is_deleted() => Err(FhirError::gone(format!(
                "version {number} of {resource_type}/{id} is a deletion"
            ))),
            Some(v) => Ok(v),
        }
    }
}

fn written(outcome: WriteOutcome) -> Result<WriteResult, FhirError> {
    match outcome {
        WriteOutcome::Written { version, created } => Ok(WriteResult { version, created }),
        _ => Err(FhirError::new(
            500,
            IssueCode::Exception,
            "unexpected store outcome",
        )),
    }
}
