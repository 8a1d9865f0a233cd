//! The shared store: FHIR resources in PostgreSQL, implementing [`caduceus_store::Store`]
//! for several stateless replicas that share one database.
//!
//! A first-class peer of the embedded SQLite store (`caduceus-store-sqlite`): the same
//! tables and columns (`schema`), the same outcomes and errors, so the engine cannot tell
//! them apart and one search SQL builder serves both.
//!
//! Key design decisions, and why:
//! - **Stateless replicas.** Nothing that decides an outcome lives in a process: version
//!   numbers, `If-Match`, "already exists" and named locks are decided by the database (row
//!   locks, `ON CONFLICT`, advisory locks), so any number of replicas can serve the same
//!   data. See `writer` for how a write stays correct against concurrent ones.
//! - **Connections.** Each replica has its pool, plus one connection of its own holding
//!   all its named locks (`locks`), so that locks never take connections from the pool.
//! - **seq.** `versions.seq` comes from a sequence: unique, never reused, increasing in the
//!   order it is drawn. Concurrent transactions can commit out of that order, so `seq` is
//!   the order of history and of cursors but, unlike SQLite's, not strictly the order of
//!   commits (see `history`). `versions` is keyed by `(tenant, seq)`, and every join to it
//!   (the search SQL shared with SQLite included) names both.
//! - **Pool.** One `deadpool-postgres` pool per replica ([`PgOptions::pool_size`]); point
//!   queries use `prepare_cached` (parsed and planned once per connection). A pool with no
//!   free connection within [`POOL_WAIT`], a lost connection or a server shutting down is
//!   [`StoreError::Unavailable`] (503): see [`map_pg`].
//! - **Schema** is migrated by the binary (`schema`): numbered, append-only migrations of
//!   kind expand or contract, serialised across replicas by an advisory lock. A replica
//!   refuses a database only when it lacks migrations (and may not apply them) or a newer
//!   binary *contracted* the schema.
//! - **Planner statistics** are refreshed by each replica as its writes grow the store
//!   (`stats`), so that plans cached while the tables were empty do not outlive them.
//! - **Durable** when `write()` returns `Ok`: it answers after `COMMIT`
//!   (`synchronous_commit` as the server has it, `on` by default).
//! - **TLS** (`tls`): rustls, one connector for the pool, the lock session and
//!   [`migrate`]; the URL's `sslmode` decides, and whenever TLS is used the server's
//!   certificate is verified (chain and, except for `verify-ca`, host name) against the
//!   system's trust store plus [`PgOptions::ca_file`] and `sslrootcert=`.
//! - **Ready for later.** Every row has a `tenant` ([`DEFAULT_TENANT`] until the trait
//!   passes one; it leads every key, for Citus), a `body_codec` and a `key_id`.
//!
//! Search lives in `search/`, over the SQL shared with SQLite (`caduceus-store-sql`).
//!
//! Module map: `schema` (migrations), `rows` (point queries, row decoding), `history`,
//! `writer` (transactions, retries), `index_rows` (bulk index rows), `maintenance` (walks,
//! copy-in, `store_meta`), `locks` (advisory locks), `tls` (sslmode, certificates),
//! `stats` (planner statistics while the store grows), `error`, `search`, `testing`
//! (feature `testing`: a database per test).
#![deny(missing_docs)]

mod error;
mod history;
mod index_rows;
mod locks;
mod maintenance;
mod rows;
mod schema;
mod search;
mod stats;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use caduceus_store::{
    HistoryQuery, Store, StoreError, StoreLock, StoredVersion, WriteOp, WriteOutcome,
};

pub use error::{PgStoreError, map_pg};
pub use tls::SslMode;

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
    /// A PEM file of CA certificates to trust for the server's certificate, besides the
    /// system's trust store (and the URL's `sslrootcert=`, when it has one).
    pub ca_file: Option<PathBuf>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            migrate: true,
            ca_file: None,
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
    /// [`Store::lock`]'s named locks, on this replica's lock session.
    locks: Arc<locks::LockSession>,
    /// Written operations, for refreshing planner statistics (`stats`).
    stats: stats::Stats,
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
        let mut settings = Settings::new(url, options)?;
        if settings.mode == SslMode::Prefer {
            // Settles `prefer` (TLS or not) once, for every connection of this store.
            let (client, task) = settings.connect().await?;
            drop(client);
            let _ = task.await;
        }
        let Settings {
            config,
            tls,
            mode,
            target,
        } = settings;
        let locks = locks::LockSession::new(config.clone(), tls.clone(), DEFAULT_TENANT);
        let manager = deadpool_postgres::Manager::from_config(
            config,
            tls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| PgStoreError::Pool(e.to_string()))?;
        let mut conn = pool.get().await.map_err(|e| PgStoreError::Connect {
            target: target.clone(),
            source: error::map_pool(&e),
        })?;
        let status = if options.migrate {
            schema::migrate_with(&mut conn, schema::MIGRATIONS).await?.1
        } else {
            let status = schema::status(&**conn).await?;
            schema::check(&status)?;
            if status.current < schema::latest_version() {
                return Err(PgStoreError::MigrationsMissing {
                    found: status.current,
                    supported: schema::latest_version(),
                });
            }
            status
        };
        drop(conn);
        tracing::info!(
            target = %target,
            schema_version = status.current,
            pool_size = options.pool_size,
            tls = mode.as_str(),
            "opened PostgreSQL store"
        );
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                tenant: DEFAULT_TENANT,
                locks,
                stats: stats::Stats::default(),
            }),
        })
    }

    /// The connection pool (for the search module).
    pub fn pool(&self) -> &deadpool_postgres::Pool {
        &self.inner.pool
    }

    /// The tenant this store reads and writes.
    pub fn tenant(&self) -> i64 {
        self.inner.tenant
    }

    /// The newest schema version this binary knows (and migrates to).
    pub fn supported_schema_version() -> i64 {
        schema::latest_version()
    }

    /// A pooled connection, or `Unavailable`.
    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.inner.pool.get().await.map_err(|e| error::map_pool(&e))
    }
}

/// How long a caller waits for a free pooled connection before the store answers
/// `Unavailable`.
pub const POOL_WAIT: Duration = Duration::from_secs(10);

/// How long connecting (or checking a pooled connection) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Parses a connection URL (or key-value string), adding Caduceus's defaults: the
/// application name `caduceus` (visible in `pg_stat_activity`) and a connect timeout.
fn parse_url(url: &str) -> Result<tokio_postgres::Config, PgStoreError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| PgStoreError::InvalidUrl(e.to_string()))?;
    if config.get_application_name().is_none() {
        config.application_name("caduceus");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// Where and how every connection of a store connects: the parsed URL, the TLS hook and
/// the `sslmode` asked for.
struct Settings {
    config: tokio_postgres::Config,
    tls: tls::MakeRustls,
    mode: SslMode,
    /// `user@host:port/dbname`, for messages.
    target: String,
}

impl Settings {
    /// Parses `url` (taking out what tokio-postgres does not know, see `tls`) and builds the
    /// TLS set-up, reading the CA files.
    fn new(url: &str, options: &PgOptions) -> Result<Settings, PgStoreError> {
        let split = tls::split_url(url)?;
        let mut config = parse_url(&split.url)?;
        let mut mode = split.verify.unwrap_or(match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => SslMode::Disable,
            tokio_postgres::config::SslMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        let ca_files: Vec<&std::path::Path> = split
            .root_cert
            .iter()
            .chain(options.ca_file.iter())
            .map(PathBuf::as_path)
            .collect();
        let client_config = tls::client_config(mode, &ca_files)?;
        if client_config.is_none() {
            // `disable`, or `prefer` with nothing to verify a certificate with: plain.
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            mode = SslMode::Disable;
        }
        let tls = tls::MakeRustls::new(client_config);
        Ok(Settings {
            target: error::describe_target(&config),
            config,
            tls,
            mode,
        })
    }

    /// One connection, its connection task spawned. Under `prefer`, a server whose
    /// certificate cannot be verified is connected to again without TLS, and these
    /// settings become `disable` (see `tls` for why `prefer` may, and the other modes
    /// never do).
    async fn connect(
        &mut self,
    ) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), PgStoreError> {
        let refused = |target: &str, e: &tokio_postgres::Error| PgStoreError::Connect {
            target: target.to_owned(),
            source: map_pg(e),
        };
        let (client, connection) = match self.config.connect(self.tls.clone()).await {
            Ok(pair) => pair,
            Err(e) if self.mode == SslMode::Prefer => {
                let Some(why) = tls::describe_failure(&e) else {
                    return Err(refused(&self.target, &e));
                };
                tracing::warn!(
                    target = %self.target,
                    reason = %why,
                    "PostgreSQL offers TLS but the TLS connection failed; sslmode=prefer \
                     continues without TLS (give the server's CA with --database-ca-file, \
                     and sslmode=verify-full to refuse a server that cannot be verified)"
                );
                self.config
                    .ssl_mode(tokio_postgres::config::SslMode::Disable);
                self.mode = SslMode::Disable;
                self.tls = tls::MakeRustls::new(None);
                self.config
                    .connect(self.tls.clone())
                    .await
                    .map_err(|e| refused(&self.target, &e))?
            }
            Err(e) => return Err(refused(&self.target, &e)),
        };
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok((client, task))
    }
}

/// Applies the schema migrations this binary knows to the database at `url` (each in its
/// own transaction, serialised across processes), and reports what it did. Refuses a
/// database a newer binary contracted ([`PgStoreError::SchemaTooNew`]).
pub async fn migrate(url: &str) -> Result<MigrationReport, PgStoreError> {
    migrate_with_options(url, &PgOptions::default()).await
}

/// [`migrate`], connecting as `options` say (their CA file; pool size and `migrate` do
/// not apply).
pub async fn migrate_with_options(
    url: &str,
    options: &PgOptions,
) -> Result<MigrationReport, PgStoreError> {
    let (mut client, task) = Settings::new(url, options)?.connect().await?;
    let result = schema::migrate_with(&mut client, schema::MIGRATIONS).await;
    drop(client);
    let _ = task.await;
    let (applied, status) = result?;
    Ok(MigrationReport {
        applied,
        current: status.current,
    })
}

#[async_trait]
impl Store for PostgresStore {
    async fn read(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let client = self.client().await?;
        rows::read_current(&client, self.tenant(), resource_type, id).await
    }

    async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let client = self.client().await?;
        rows::read_version(&client, self.tenant(), resource_type, id, version).await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        let outcomes = writer::write(self, &ops).await?;
        self.inner.stats.note(&self.inner.pool, ops.len());
        Ok(outcomes)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<StoredVersion>, StoreError> {
        let client = self.client().await?;
        history::history(&client, self.tenant(), query).await
    }

    async fn search(
        &self,
        query: &caduceus_search::SearchQuery,
        cursor: Option<&str>,
    ) -> Result<caduceus_store::search::SearchPage, StoreError> {
        crate::search::run(self, query, cursor).await
    }

    async fn count_live(&self, resource_type: Option<&str>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        rows::count_live(&client, self.tenant(), resource_type).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        rows::query(&client, "SELECT 1", &[]).await?;
        Ok(())
    }

    async fn scan_current(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        let client = self.client().await?;
        let after = after.as_ref().map(|(t, i)| (t.as_str(), i.as_str()));
        maintenance::scan_current(&client, self.tenant(), after, limit).await
    }

    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        maintenance::meta(&client, key).await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        maintenance::set_meta(&client, key, value).await
    }

    async fn insert_meta(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        maintenance::insert_meta(&client, key, value).await
    }

    async fn meta_list(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let client = self.client().await?;
        maintenance::meta_list(&client, prefix).await
    }

    async fn delete_meta(&self, key: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        maintenance::delete_meta(&client, key).await
    }

    async fn take_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        maintenance::take_meta(&client, key).await
    }

    async fn lock(&self, key: &str) -> Result<StoreLock, StoreError> {
        let guard = locks::lock(&self.inner.locks, key).await?;
        Ok(StoreLock::new(guard))
    }

    async fn scan_versions(
        &self,
        after_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        let client = self.client().await?;
        maintenance::scan_versions(&client, self.tenant(), after_seq, limit).await
    }

    async fn copy_in(&self, versions: Vec<StoredVersion>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        maintenance::copy_in(&mut client, self.tenant(), &versions).await?;
        drop(client);
        self.inner.stats.note(&self.inner.pool, versions.len());
        Ok(())
    }

    async fn count_versions(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        maintenance::count_versions(&client, self.tenant()).await
    }
}
