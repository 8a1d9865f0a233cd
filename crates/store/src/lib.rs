//! The storage interface: what any Caduceus store (embedded SQLite, PostgreSQL) must provide.
//!
//! A store keeps every version of every resource, in an order the *database* assigns
//! (`seq`), never one taken from a replica's clock: history, `_since` and paging cursors
//! are all defined over `seq`, so they stay correct with several writers.
//!
//! Design decisions:
//! - A write is a list of [`WriteOp`]s applied atomically ([`Store::write`]); a single
//!   create is a list of one. Transaction bundles, imports and plain interactions share the
//!   one code path, so "all or nothing" has exactly one implementation per store.
//! - The store assigns `meta.versionId` and `meta.lastUpdated` and writes the canonical bytes
//!   (see `caduceus_model::json`), and reads hand those bytes back untouched: the read path
//!   never parses JSON.
//! - Each stored row has a tenant/partition, a body codec and a key id, so that
//!   multi-tenancy and encryption at rest extend the record rather than rewrite it.
//!
//! Invariant: a store knows nothing of HTTP, bundles or authorization.
#![deny(missing_docs)]

pub mod index;
pub mod search;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;

/// How a version came to be: the interaction that wrote it (history's `request.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// POST: created with a server-assigned id.
    Create,
    /// PUT: updated, or created at a client-chosen id.
    Update,
    /// PATCH.
    Patch,
    /// DELETE: a tombstone version with no body.
    Delete,
}

impl Method {
    /// The HTTP verb, as history bundles show it.
    pub fn http_verb(self) -> &'static str {
        match self {
            Method::Create => "POST",
            Method::Update => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// The number stored in the database.
    pub fn to_db(self) -> i64 {
        match self {
            Method::Create => 0,
            Method::Update => 1,
            Method::Patch => 2,
            Method::Delete => 3,
        }
    }

    /// What history records for a [`WriteOp::Update`] that asked for `self`: PATCH stays
    /// PATCH, anything else is a PUT.
    pub fn of_update(self) -> Method {
        match self {
            Method::Patch => Method::Patch,
            _ => Method::Update,
        }
    }

    /// The inverse of [`Method::to_db`].
    pub fn from_db(n: i64) -> Option<Method> {
        Some(match n {
            0 => Method::Create,
            1 => Method::Update,
            2 => Method::Patch,
            3 => Method::Delete,
            _ => return None,
        })
    }
}

/// One stored version of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// Resource type, e.g. `Patient`.
    pub resource_type: String,
    /// Logical id.
    pub id: String,
    /// `meta.versionId`: 1, 2, 3... per resource, gap-free.
    pub version: u64,
    /// Database-assigned global order of writes; strictly increasing.
    pub seq: i64,
    /// `meta.lastUpdated`, microseconds since the Unix epoch.
    pub last_updated: i64,
    /// The interaction that wrote this version.
    pub method: Method,
    /// The canonical JSON bytes; `None` for a delete.
    pub body: Option<Bytes>,
}

impl StoredVersion {
    /// True when this version is a deletion.
    pub fn is_deleted(&self) -> bool {
        self.body.is_none()
    }
}

/// One change in an atomic write.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Create at an id the caller chose (server-assigned ids are chosen by the engine).
    /// Fails with [`StoreError::AlreadyExists`] if the id has any version, deleted or not.
    Create {
        /// Resource type.
        resource_type: String,
        /// New id.
        id: String,
        /// The validated resource; the store sets `id` and `meta`.
        resource: Value,
        /// Its search index rows (replacing none: the resource is new).
        index: Vec<index::IndexRow>,
        /// The index rows of its contained resources.
        contained: Vec<index::ContainedIndex>,
    },
    /// Update, or create at this id if it has no live version (update-as-create).
    Update {
        /// Resource type.
        resource_type: String,
        /// Id.
        id: String,
        /// The validated resource; the store sets `id` and `meta`.
        resource: Value,
        /// Its search index rows, replacing those of the previous version.
        index: Vec<index::IndexRow>,
        /// The index rows of its contained resources, replacing the previous version's.
        contained: Vec<index::ContainedIndex>,
        /// If set, the current version must be exactly this one (`If-Match`).
        if_match: Option<u64>,
        /// [`Method::Update`] or [`Method::Patch`], recorded in history.
        method: Method,
    },
    /// Delete (write a tombstone, and drop the resource's index rows, its contained
    /// resources' included). Deleting an absent or
    /// already deleted resource succeeds and writes nothing.
    Delete {
        /// Resource type.
        resource_type: String,
        /// Id.
        id: String,
        /// If set, the current version must be exactly this one.
        if_match: Option<u64>,
    },
    /// Replace the search index rows of a resource's current version without writing a
    /// version: maintenance after the search parameters changed (`caduceus reindex`). Does
    /// nothing when the current version is no longer `version` (a newer write indexed it
    /// already) or is a deletion.
    Reindex {
        /// Resource type.
        resource_type: String,
        /// Id.
        id: String,
        /// The version the rows were extracted from.
        version: u64,
        /// Its search index rows.
        index: Vec<index::IndexRow>,
        /// The index rows of its contained resources.
        contained: Vec<index::ContainedIndex>,
    },
}

impl WriteOp {
    /// The resource type this operation touches.
    pub fn resource_type(&self) -> &str {
        match self {
            WriteOp::Create { resource_type, .. }
            | WriteOp::Update { resource_type, .. }
            | WriteOp::Delete { resource_type, .. }
            | WriteOp::Reindex { resource_type, .. } => resource_type,
        }
    }

    /// The id this operation touches.
    pub fn id(&self) -> &str {
        match self {
            WriteOp::Create { id, .. }
            | WriteOp::Update { id, .. }
            | WriteOp::Delete { id, .. }
            | WriteOp::Reindex { id, .. } => id,
        }
    }
}

/// What one [`WriteOp`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A new version was written. `created` is true when it is the first live version
    /// (a create, or an update-as-create, or an update of a deleted resource).
    Written {
        /// The version as stored (body included).
        version: StoredVersion,
        /// True for 201 Created, false for 200 OK.
        created: bool,
    },
    /// A tombstone was written.
    Deleted {
        /// The tombstone.
        version: StoredVersion,
    },
    /// Nothing to delete: the resource was absent or already deleted.
    NothingToDelete,
    /// A [`WriteOp::Reindex`]: `replaced` is false when the version had been superseded.
    Reindexed {
        /// Whether the rows were replaced.
        replaced: bool,
    },
}

/// `If-Match` as every store applies it: with `if_match` set, the resource's current
/// version (`None` when it has none) must be exactly that one, else the op at `index`
/// fails with [`StoreError::VersionConflict`].
pub fn check_if_match(
    index: usize,
    if_match: Option<u64>,
    current: Option<u64>,
) -> Result<(), StoreError> {
    match if_match {
        Some(expected) if current != Some(expected) => Err(StoreError::VersionConflict {
            index,
            expected,
            current,
        }),
        _ => Ok(()),
    }
}

/// Which history to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    /// Every resource.
    System,
    /// Every resource of one type.
    Type(String),
    /// One resource: (type, id).
    Instance(String, String),
}

/// A page of history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Whose history.
    pub scope: HistoryScope,
    /// `_since`: only versions with `last_updated >= since` (microseconds).
    pub since: Option<i64>,
    /// `_at`: only versions that were current at some point within `[start, end)`.
    pub at: Option<(i64, i64)>,
    /// Paging cursor: only versions with `seq < before_seq`.
    pub before_seq: Option<i64>,
    /// Page size.
    pub limit: usize,
}

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `If-Match` named a version that is not the current one. `index` is the op's position.
    #[error("operation {index}: version conflict (expected {expected}, current {current:?})")]
    VersionConflict {
        /// Position of the failing op in the write.
        index: usize,
        /// The version the caller expected.
        expected: u64,
        /// The current version, if the resource exists.
        current: Option<u64>,
    },
    /// A create named an id that already has versions.
    #[error("operation {index}: resource already exists")]
    AlreadyExists {
        /// Position of the failing op in the write.
        index: usize,
    },
    /// The same resource appears twice in one atomic write.
    #[error("operation {index}: the same resource is changed twice in one transaction")]
    DuplicateInWrite {
        /// Position of the second op on the same resource.
        index: usize,
    },
    /// A paging cursor the store did not issue, or issued for another query.
    #[error("invalid paging cursor")]
    InvalidCursor,
    /// A search feature this store does not implement (the text names the feature, never a
    /// searched value).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The database cannot be reached or refused the work for a reason that may pass.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else the database reported. The text is for operators and never holds
    /// resource content.
    #[error("store error: {0}")]
    Internal(String),
}

/// A store of versioned FHIR resources.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current version of a resource (possibly a deletion), or `None` if it never existed.
    async fn read(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredVersion>, StoreError>;

    /// One version of a resource, or `None`.
    async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredVersion>, StoreError>;

    /// Applies every op, in order, in one database transaction: all succeed or none does.
    /// Durable when it returns `Ok`.
    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError>;

    /// A page of history, newest first (descending `seq`).
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<StoredVersion>, StoreError>;

    /// One page of a search: the matches after `cursor` (from a previous page's
    /// `next_cursor`), at most `query.count` of them, with their includes.
    async fn search(
        &self,
        query: &caduceus_search::SearchQuery,
        cursor: Option<&str>,
    ) -> Result<search::SearchPage, StoreError>;

    /// Number of live (not deleted) resources, of one type or all.
    async fn count_live(&self, resource_type: Option<&str>) -> Result<u64, StoreError>;

    /// Checks that the database answers; used by readiness probes.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The current, live resources in (type, id) order, after `after` (exclusive), at most
    /// `limit`: a consistent walk over the whole store for maintenance (reindex, copy).
    async fn scan_current(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError>;

    /// A value the server keeps about the store itself (for example [`META_INDEX_FINGERPRINT`]),
    /// never resource data.
    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Sets such a value, durably.
    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// Sets a value only if `key` has none, atomically across every process sharing the
    /// database: `true` if this call set it, `false` if a value was already there (left
    /// unchanged). What single use rests on (a client assertion's `jti`, a TOTP step).
    async fn insert_meta(&self, key: &str, value: &str) -> Result<bool, StoreError>;

    /// Every key starting with `prefix`, with its value, in key order (bytewise).
    async fn meta_list(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Removes a value; `true` if there was one.
    async fn delete_meta(&self, key: &str) -> Result<bool, StoreError>;

    /// Removes a value and returns it, atomically: of several processes taking the same
    /// key at once, exactly one gets the value (single-use authorization codes).
    async fn take_meta(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Takes an exclusive lock named by `key`, held until the returned guard is dropped,
    /// across every process that shares this store's database. Conditional create takes
    /// one per (type, canonical query) around its search and its write, so that two
    /// replicas racing to create the same identifier make one resource, not two.
    /// Distinct keys are distinct locks; a store may hash keys, to at least 64 bits, so that
    /// a collision (which could make callers holding several locks wait on each other) is
    /// negligible.
    async fn lock(&self, key: &str) -> Result<StoreLock, StoreError>;

    /// Every version of every resource, deletions included, in write order (`seq`), after
    /// `after_seq` (exclusive), at most `limit`: for copying a whole store (`caduceus copy`).
    async fn scan_versions(
        &self,
        after_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError>;

    /// Writes versions copied verbatim from another store (version ids, `lastUpdated`,
    /// method and body kept; `seq` assigned anew in the given order), atomically, and makes
    /// each resource's highest version its current one. Fails with
    /// [`StoreError::AlreadyExists`] if a copied version is already present. Writes no index
    /// rows: the copy is reindexed afterwards (`WriteOp::Reindex`).
    async fn copy_in(&self, versions: Vec<StoredVersion>) -> Result<(), StoreError>;

    /// Number of stored versions of all resources, deletions included (a copy's check).
    async fn count_versions(&self) -> Result<u64, StoreError>;
}

/// An exclusive lock from [`Store::lock`]; dropping it releases the lock.
pub struct StoreLock {
    /// Held only to be dropped: its drop releases the lock.
    _guard: Box<dyn Send + Sync>,
}

impl StoreLock {
    /// Wraps whatever releases the lock when dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> StoreLock {
        StoreLock {
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLock")
    }
}

/// Meta key: the fingerprint of the search parameters the index rows were extracted with
/// (`caduceus_index::fingerprint`). A different value means the index is stale.
pub const META_INDEX_FINGERPRINT: &str = "index.fingerprint";

/// The least string greater than every string that starts with `prefix` (`None` when there
/// is none: an empty prefix, or one of only `char::MAX`): the exclusive upper bound of a
/// key-range scan for [`Store::meta_list`], `key >= prefix AND key < bound`, under bytewise
/// (UTF-8) ordering.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if next == 0xD800 {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_upper_bound;

    #[test]
    fn prefix_bounds_cover_exactly_the_prefixed_keys() {
        assert_eq!(
            prefix_upper_bound("auth.user.").as_deref(),
            Some("auth.user/")
        );
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        let bound = prefix_upper_bound("auth.user.").unwrap_or_default();
        for key in ["auth.user.", "auth.user.zz", "auth.user.\u{10FFFF}"] {
            assert!(key.as_bytes() < bound.as_bytes(), "{key}");
        }
    }
}
