//! The embedded store: FHIR resources in SQLite, implementing [`caduceus_store::Store`].
//!
//! One data folder holds one database file ([`DB_FILE`]) in WAL mode. [`SqliteStore::open`]
//! creates it if absent and applies the schema migrations compiled into the binary
//! (`schema` module); a database with a newer schema than this binary knows is refused.
//!
//! Key design decisions, and why:
//! - **Read path.** A point read (`read`, `vread`) is two B-tree lookups on a cached
//!   prepared statement: microseconds. It runs inline on the calling thread, on one of a
//!   small pool of read-only connections, each behind its own mutex, picked with `try_lock`
//!   from a per-thread home slot (`pool` module). No `spawn_blocking` hop, no single lock.
//!   The body comes back as the stored canonical bytes (`Bytes`), never parsed. History and
//!   counts, which can scan, run on the blocking thread pool with a separate, smaller pool of
//!   connections, so a burst of long queries never makes a point read wait.
//! - **Writer.** One write connection owned by a dedicated thread, fed by a bounded channel
//!   (`writer` module; overload backs up into the callers). Each `write()` is one
//!   `BEGIN IMMEDIATE` transaction, all or nothing; concurrent writes queued together share
//!   one commit (group commit), each in its own savepoint so a refused write fails alone.
//! - **seq.** `versions.seq` is `INTEGER PRIMARY KEY AUTOINCREMENT`: assigned by SQLite under
//!   the write lock, strictly increasing, never reused even if the newest rows are purged.
//!   It is the global history order and the paging cursor. `last_updated` is made monotonic
//!   in seq (`max(now, previous + 1µs)` per write), so time filters agree with seq order.
//! - **Durability.** `synchronous=FULL`: the WAL is fsynced at every commit, and `write()`
//!   answers only after `COMMIT`, so an `Ok` survives `kill -9` and power loss.
//! - **Ready for later.** Every row has a `tenant` (the store uses [`DEFAULT_TENANT`] until
//!   the trait passes one), a `body_codec` (0 = plain canonical JSON) and a `key_id` (NULL
//!   until encryption at rest), and the current-state table `resources` is what search
//!   indexes will join against.
//!
//! Invariants (kept by the single writer, checked by the tests):
//! - versions of one resource are 1, 2, 3... without gaps, in increasing `seq`;
//! - `resources` points at the newest version of each resource (`deleted` iff it is a
//!   tombstone);
//! - `last_updated` never decreases with `seq` (history's time bounds rely on it);
//! - every connection runs with the query planner stability guarantee (QPSG), and
//!   `plan_tests` pins the hot queries to index seeks.
//!
//! Module map: `schema` (migrations, pragmas), `pool` (read connections), `rows` (point
//! queries, row decoding), `history`, `writer` (writer thread, group commit), `stats`
//! (query planner statistics), `maintenance` (store walk for reindex, `store_meta`), `error`.
#![deny(missing_docs)]

mod error;
mod history;
mod index_rows;
mod locks;
mod maintenance;
mod pool;
mod rows;
mod schema;
mod search;
mod stats;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use caduceus_store::{
    HistoryQuery, Store, StoreError, StoreLock, StoredVersion, WriteOp, WriteOutcome,
};
use rusqlite::{Connection, OpenFlags};

pub use error::SqliteStoreError;

use crate::error::map_sqlite;
use crate::pool::ReadPool;
use crate::writer::Writer;

/// The database file's name inside the data folder.
pub const DB_FILE: &str = "caduceus.db";

/// The tenant (partition) every row belongs to until tenants reach the storage interface.
pub const DEFAULT_TENANT: i64 = 0;

/// The SQLite store. Cheap to clone: clones share the connections and the writer.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    db_path: PathBuf,
    tenant: i64,
    schema_version: i64,
    /// Point reads, inline on the caller's thread.
    readers: ReadPool,
    /// History, counts and checks, on the blocking thread pool.
    scanners: ReadPool,
    writer: Writer,
    /// [`Store::lock`]'s named locks.
    locks: locks::KeyLocks,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("db_path", &self.inner.db_path)
            .field("schema_version", &self.inner.schema_version)
            .field("readers", &self.inner.readers.size())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if absent) the store in `data_dir`, migrating its schema.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, SqliteStoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| SqliteStoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let db_path = data_dir.join(DB_FILE);
        let open_err = |source| SqliteStoreError::Open {
            path: db_path.clone(),
            source,
        };
        let mut conn = Connection::open_with_flags(
            &db_path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(open_err)?;
        schema::configure_writer(&conn).map_err(open_err)?;
        let schema_version = schema::migrate(&mut conn)?;
        stats::refresh(&conn);
        let readers = ReadPool::open(&db_path, reader_count()).map_err(open_err)?;
        let scanners = ReadPool::open(&db_path, SCAN_CONNECTIONS).map_err(open_err)?;
        let writer = Writer::start(conn, DEFAULT_TENANT).map_err(SqliteStoreError::Writer)?;
        tracing::info!(path = %db_path.display(), schema_version, readers = readers.size(), "opened SQLite store");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_owned(),
                db_path,
                tenant: DEFAULT_TENANT,
                schema_version,
                readers,
                scanners,
                writer,
                locks: locks::KeyLocks::new(),
            }),
        })
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> i64 {
        self.inner.schema_version
    }

    /// The newest schema version this binary knows (and migrates to).
    pub fn supported_schema_version() -> i64 {
        schema::latest_version()
    }

    /// Runs `PRAGMA integrity_check`: `["ok"]` for a sound database, else SQLite's findings.
    /// Reads the whole file: for operators and tests, not for request paths.
    pub fn integrity_check(&self) -> Result<Vec<String>, SqliteStoreError> {
        let conn = self.inner.scanners.get();
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| SqliteStoreError::Store(map_sqlite(e)))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| SqliteStoreError::Store(map_sqlite(e)))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| SqliteStoreError::Store(map_sqlite(e)))
    }

    /// Runs `f` with a pooled read connection on the blocking thread pool.
    async fn blocking_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, i64) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = inner.scanners.get();
            f(&conn, inner.tenant)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

/// Connections for history and counts: queries that may scan wait for one of these, never
/// for a point-read connection.
const SCAN_CONNECTIONS: usize = 3;

/// Point-read connections: twice the cores, between 4 and 16. Point reads run inline on the
/// runtime's worker threads (one per core by default), so this leaves slack for other
/// threads; each connection costs a page cache.
fn reader_count() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 2)
        .clamp(4, 16)
}

#[async_trait]
impl Store for SqliteStore {
    async fn read(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let conn = self.inner.readers.get();
        rows::read_current(&conn, self.inner.tenant, resource_type, id)
    }

    async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let conn = self.inner.readers.get();
        rows::read_version(&conn, self.inner.tenant, resource_type, id, version)
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.inner.writer.write(ops).await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<StoredVersion>, StoreError> {
        let query = query.clone();
        self.blocking_read(move |conn, tenant| history::history(conn, tenant, &query))
            .await
    }

    async fn search(
        &self,
        query: &caduceus_search::SearchQuery,
        cursor: Option<&str>,
    ) -> Result<caduceus_store::search::SearchPage, StoreError> {
        crate::search::run(self, query, cursor).await
    }

    async fn count_live(&self, resource_type: Option<&str>) -> Result<u64, StoreError> {
        let resource_type = resource_type.map(str::to_owned);
        self.blocking_read(move |conn, tenant| {
            rows::count_live(conn, tenant, resource_type.as_deref())
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if !self.inner.writer.is_running() {
            return Err(StoreError::Unavailable("the writer has stopped".into()));
        }
        let conn = self.inner.readers.get();
        conn.prepare_cached("SELECT 1")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map_err(map_sqlite)?;
        Ok(())
    }

    async fn scan_current(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        self.blocking_read(move |conn, tenant| {
            let after = after.as_ref().map(|(t, i)| (t.as_str(), i.as_str()));
            maintenance::scan_current(conn, tenant, after, limit)
        })
        .await
    }

    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.inner.readers.get();
        maintenance::meta(&conn, key)
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (db_path, key, value) = (self.inner.db_path.clone(), key.to_owned(), value.to_owned());
        tokio::task::spawn_blocking(move || maintenance::set_meta(&db_path, &key, &value))
            .await
            .map_err(|e| StoreError::Internal(format!("meta task failed: {e}")))?
    }

    async fn insert_meta(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let (db_path, key, value) = (self.inner.db_path.clone(), key.to_owned(), value.to_owned());
        tokio::task::spawn_blocking(move || maintenance::insert_meta(&db_path, &key, &value))
            .await
            .map_err(|e| StoreError::Internal(format!("meta task failed: {e}")))?
    }

    async fn meta_list(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let prefix = prefix.to_owned();
        self.blocking_read(move |conn, _| maintenance::meta_list(conn, &prefix))
            .await
    }

    async fn delete_meta(&self, key: &str) -> Result<bool, StoreError> {
        let (db_path, key) = (self.inner.db_path.clone(), key.to_owned());
        tokio::task::spawn_blocking(move || maintenance::delete_meta(&db_path, &key))
            .await
            .map_err(|e| StoreError::Internal(format!("meta task failed: {e}")))?
    }

    async fn take_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let (db_path, key) = (self.inner.db_path.clone(), key.to_owned());
        tokio::task::spawn_blocking(move || maintenance::take_meta(&db_path, &key))
            .await
            .map_err(|e| StoreError::Internal(format!("meta task failed: {e}")))?
    }

    async fn lock(&self, key: &str) -> Result<StoreLock, StoreError> {
        // One process owns the database file, so a lock in this process is a lock on the
        // store.
        Ok(StoreLock::new(self.inner.locks.lock(key).await))
    }

    async fn scan_versions(
        &self,
        after_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        self.blocking_read(move |conn, tenant| {
            maintenance::scan_versions(conn, tenant, after_seq, limit)
        })
        .await
    }

    async fn copy_in(&self, versions: Vec<StoredVersion>) -> Result<(), StoreError> {
        if versions.is_empty() {
            return Ok(());
        }
        // Through the writer thread, like every other change, as one transaction of its own.
        self.inner.writer.copy_in(versions).await
    }

    async fn count_versions(&self) -> Result<u64, StoreError> {
        self.blocking_read(maintenance::count_versions).await
    }
}

#[cfg(test)]
mod plan_tests;
