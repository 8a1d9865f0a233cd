//! The shared store: FHIR resources in PostgreSQL, implementing [`caduceus_store::Store`]
//! for several stateless replicas that share one database.
//!
//! A first-class peer of the embedded SQLite store (`caduceus-store-sqlite`): same tables,
//! same columns, same outcomes and errors, so the engine cannot tell them apart and the
//! search SQL can be shared.
#![deny(missing_docs)]

mod error;
mod search;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use caduceus_store::{
    HistoryQuery, Store, StoreError, StoreLock, StoredVersion, WriteOp, WriteOutcome,
};

pub use error::{PgStoreError, map_pg};

/// The tenant (partition) every row belongs to until tenants reach the storage interface.
pub const DEFAULT_TENANT: i64 = 0;

/// How to open a [`PostgresStore`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections in this replica's pool (default 16).
    pub pool_size: usize,
    /// Apply missing schema migrations at open (otherwise a database that lacks some is
    /// refused, and `caduceus migrate` applies them).
    pub migrate: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            migrate: true,
        }
    }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The migrations this call applied, (version, name), oldest first.
    pub applied: Vec<(i64, &'static str)>,
    /// The newest migration applied in the database afterwards.
    pub current: i64,
}

/// The PostgreSQL store. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: deadpool_postgres::Pool,
    tenant: i64,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("tenant", &self.inner.tenant)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` and checks (or, with `options.migrate`, brings up
    /// to date) its schema. Refuses a database that lacks migrations when `migrate` is off,
    /// and one that a newer Caduceus has contracted beyond what this binary understands.
    pub async fn open(url: &str, options: &PgOptions) -> Result<PostgresStore, PgStoreError> {
        let _ = (url, options);
        Err(PgStoreError::Pool("not implemented yet".into()))
    }

    /// The connection pool (for the search module).
    pub fn pool(&self) -> &deadpool_postgres::Pool {
        &self.inner.pool
    }

    /// The tenant this store reads and writes.
    pub fn tenant(&self) -> i64 {
        self.inner.tenant
    }
}

/// Applies the schema migrations this binary knows to the database at `url` (each in its
/// own transaction, serialised across processes), and reports what it did.
pub async fn migrate(url: &str) -> Result<MigrationReport, PgStoreError> {
    let _ = url;
    Err(PgStoreError::Pool("not implemented yet".into()))
}

fn not_yet() -> StoreError {
    StoreError::Unsupported("not implemented yet".into())
}

#[async_trait]
impl Store for PostgresStore {
    async fn read(
        &self,
        _resource_type: &str,
        _id: &str,
    ) -> Result<Option<StoredVersion>, StoreError> {
        Err(not_yet())
    }

    async fn vread(
        &self,
        _resource_type: &str,
        _id: &str,
        _version: u64,
    ) -> Result<Option<StoredVersion>, StoreError> {
        Err(not_yet())
    }

    async fn write(&self, _ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        Err(not_yet())
    }

    async fn history(&self, _query: &HistoryQuery) -> Result<Vec<StoredVersion>, StoreError> {
        Err(not_yet())
    }

    async fn search(
        &self,
        query: &caduceus_search::SearchQuery,
        cursor: Option<&str>,
    ) -> Result<caduceus_store::search::SearchPage, StoreError> {
        crate::search::run(self, query, cursor).await
    }

    async fn count_live(&self, _resource_type: Option<&str>) -> Result<u64, StoreError> {
        Err(not_yet())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Err(not_yet())
    }

    async fn scan_current(
        &self,
        _after: Option<(String, String)>,
        _limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        Err(not_yet())
    }

    async fn meta(&self, _key: &str) -> Result<Option<String>, StoreError> {
        Err(not_yet())
    }

    async fn set_meta(&self, _key: &str, _value: &str) -> Result<(), StoreError> {
        Err(not_yet())
    }

    async fn lock(&self, _key: &str) -> Result<StoreLock, StoreError> {
        Err(not_yet())
    }

    async fn scan_versions(
        &self,
        _after_seq: Option<i64>,
        _limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        Err(not_yet())
    }

    async fn copy_in(&self, _versions: Vec<StoredVersion>) -> Result<(), StoreError> {
        Err(not_yet())
    }

    async fn count_versions(&self) -> Result<u64, StoreError> {
        Err(not_yet())
    }
}
