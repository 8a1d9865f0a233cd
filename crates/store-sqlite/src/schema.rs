//! The database schema, as a versioned list of migrations compiled into the binary, and the
//! connection settings every connection gets.
//!
//! Migrations are append-only: a released migration is never edited, a change is a new
//! entry. Each is applied in its own `BEGIN IMMEDIATE` transaction together with its row in
//! `schema_migrations`, so a crash leaves the database at a whole version. A database whose
//! newest applied migration is beyond [`MIGRATIONS`] is refused
//! ([`SqliteStoreError::SchemaTooNew`]): an old binary must not write a schema it does not
//! understand.

use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::SqliteStoreError;

/// One schema step.
pub(crate) struct Migration {
    /// 1, 2, 3...: gap-free, applied in order.
    pub version: i64,
    /// A short name, recorded in `schema_migrations`.
    pub name: &'static str,
    /// The DDL.
    pub sql: &'static str,
}

/// Every schema step this binary knows, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "versions and current state",
        sql: r#"
-- Every version of every resource. `seq` is the global write order: AUTOINCREMENT makes
-- SQLite assign max(seq ever used)+1, so a seq is never reused even if the newest rows
-- are later purged; history, `_since` and paging cursors are all defined over it.
CREATE TABLE versions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       INTEGER NOT NULL,            -- partition; 0 = the default tenant
    type         TEXT    NOT NULL,            -- resource type
    id           TEXT    NOT NULL,            -- logical id
    version      INTEGER NOT NULL,            -- meta.versionId: 1, 2, 3... gap-free
    last_updated INTEGER NOT NULL,            -- meta.lastUpdated, µs since the epoch
    method       INTEGER NOT NULL,            -- caduceus_store::Method::to_db
    body         BLOB,                        -- canonical JSON; NULL for a delete
    body_codec   INTEGER NOT NULL DEFAULT 0,  -- 0 = plain canonical JSON
    key_id       INTEGER,                     -- data key encrypting the body; NULL = none
    UNIQUE (tenant, type, id, version)        -- vread, instance history
);
-- Type history, newest first.
CREATE INDEX versions_type_seq ON versions (tenant, type, seq);
-- System history of one tenant, newest first.
CREATE INDEX versions_tenant_seq ON versions (tenant, seq);

-- The current state of each resource: what reads and (later) search indexes join against.
-- `seq` is the rowid of the current row in `versions` (kept in step by the single writer).
CREATE TABLE resources (
    tenant  INTEGER NOT NULL,
    type    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    version INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    deleted INTEGER NOT NULL,                 -- 1 when the current version is a tombstone
    PRIMARY KEY (tenant, type, id)
) WITHOUT ROWID;
-- count_live: a covering range scan of (tenant, type, deleted = 0).
CREATE INDEX resources_live ON resources (tenant, type, deleted);
"#,
    },
    Migration {
        version: 2,
        name: "search index tables",
        sql: r#"
-- Search index rows of each resource's *current* version, one table per search parameter
-- type (caduceus_store::index::IndexValue). Rows are replaced with every write of the
-- resource and removed when it is deleted, in the same transaction. `(tenant, type, id)`
-- joins to `resources`; each table has a lookup index led by (tenant, type, param, value)
-- and a per-resource index for replacing a resource's rows.
CREATE TABLE idx_string (
    tenant INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    normalized TEXT NOT NULL,               -- lower case, no accents: plain and :contains
    exact      TEXT NOT NULL                -- as written: :exact
);
CREATE INDEX idx_string_lookup ON idx_string (tenant, type, param, normalized);
CREATE INDEX idx_string_resource ON idx_string (tenant, type, id);

CREATE TABLE idx_token (
    tenant INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    system TEXT, code TEXT,
    text   TEXT                             -- normalised display/text: :text
);
CREATE INDEX idx_token_lookup ON idx_token (tenant, type, param, code, system);
CREATE INDEX idx_token_resource ON idx_token (tenant, type, id);

CREATE TABLE idx_reference (
    tenant INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    target_type TEXT, target_id TEXT, target_version TEXT,
    url TEXT                                -- absolute or canonical target
);
CREATE INDEX idx_reference_lookup ON idx_reference (tenant, type, param, target_id, target_type);
-- Reverse direction: _revinclude and _has start from the target.
CREATE INDEX idx_reference_target ON idx_reference (tenant, target_type, target_id, param);
CREATE INDEX idx_reference_url ON idx_reference (tenant, type, param, url);
CREATE INDEX idx_reference_resource ON idx_reference (tenant, type, id);

CREATE TABLE idx_date (
    tenant INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    start_us INTEGER NOT NULL,              -- inclusive, µs since the epoch
    end_us   INTEGER NOT NULL               -- exclusive
);
CREATE INDEX idx_date_lookup ON idx_date (tenant, type, param, start_us, end_us);
CREATE INDEX idx_date_resource ON idx_date (tenant, type, id);

CREATE TABLE idx_number (
    tenant INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    value REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL
);
CREATE INDEX idx_number_lookup ON idx_number (tenant, type, param, value);
CREATE INDEX idx_number_resource ON idx_number (tenant, type, id);

CREATE TABLE idx_quantity (
    tenant INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    value REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
    system TEXT, code TEXT,
    canonical_value REAL, canonical_code TEXT
);
CREATE INDEX idx_quantity_lookup ON idx_quantity (tenant, type, param, value);
CREATE INDEX idx_quantity_canonical ON idx_quantity (tenant, type, param, canonical_code, canonical_value);
CREATE INDEX idx_quantity_resource ON idx_quantity (tenant, type, id);

CREATE TABLE idx_uri (
    tenant INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX idx_uri_lookup ON idx_uri (tenant, type, param, value);
CREATE INDEX idx_uri_resource ON idx_uri (tenant, type, id);
"#,
    },
    Migration {
        version: 3,
        name: "composite index",
        sql: r#"
-- Composite search parameters (code-value-quantity, component-code-value-quantity,
-- context-type-value, ...) and `:of-type` on identifiers: one row per tuple of component
-- values taken from the same element. Component k (1..3; NULL past the last) uses the
-- columns of its kind (caduceus-store-sqlite index_rows.rs): token system/code; string
-- code = normalised, text = as written; uri code; reference system = target type,
-- code = target id, version, text = url; number value/low/high; quantity value/low/high,
-- system/code and canon_value/canon_code; date low/high = start/end µs. low_k and high_k
-- have no type affinity so µs integers stay integers. The lookup index makes the first
-- component (a token, or the reference of DocumentReference `relationship`) a seek.
CREATE TABLE idx_composite (
    tenant INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    system_1 TEXT, code_1 TEXT, text_1 TEXT, version_1 TEXT,
    value_1 REAL, low_1, high_1, canon_value_1 REAL, canon_code_1 TEXT,
    system_2 TEXT, code_2 TEXT, text_2 TEXT, version_2 TEXT,
    value_2 REAL, low_2, high_2, canon_value_2 REAL, canon_code_2 TEXT,
    system_3 TEXT, code_3 TEXT, text_3 TEXT, version_3 TEXT,
    value_3 REAL, low_3, high_3, canon_value_3 REAL, canon_code_3 TEXT
);
CREATE INDEX idx_composite_lookup ON idx_composite (tenant, type, param, code_1, system_1, code_2);
CREATE INDEX idx_composite_resource ON idx_composite (tenant, type, id);
"#,
    },
    Migration {
        version: 4,
        name: "store meta",
        sql: r#"
-- What the server keeps about the store itself, never resource data: for example the
-- fingerprint of the search parameters the index was built with (index.fingerprint).
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"#,
    },
    Migration {
        version: 5,
        name: "contained resources",
        sql: r#"
-- The contained resources of each resource's current version (`_contained` searches, and
-- chains through local `#id` references). A contained resource's idx_* rows are kept under
-- its own type with the key `id` = 'ContainerType/containerId#localId', which no real id
-- can be (ids hold neither '/' nor '#'), so searches over `resources` never see them. Rows
-- here and there are replaced with every write of the container and removed when it is
-- deleted, in the same transaction.
CREATE TABLE contained (
    tenant         INTEGER NOT NULL,
    type           TEXT    NOT NULL,      -- the contained resource's type
    id             TEXT    NOT NULL,      -- ContainerType/containerId#localId
    container_type TEXT    NOT NULL,
    container_id   TEXT    NOT NULL,
    PRIMARY KEY (tenant, type, id)
) WITHOUT ROWID;
-- Replacing a container's contained resources, and their containers in a search.
CREATE INDEX contained_container ON contained (tenant, container_type, container_id);
"#,
    },
    Migration {
        version: 6,
        name: "covering lookup indexes",
        sql: r#"
-- The lookup indexes end with the columns their searches select, so a criterion's set is
-- read from the index alone, without a table row per match: at 100,000 resources,
-- `Observation?code=<a code on 2,835 of them>` went from 6.2 ms to 0.4 ms to materialise.
-- Same names, so the plan tests and INDEXED BY clauses keep holding.
DROP INDEX idx_string_lookup;
CREATE INDEX idx_string_lookup ON idx_string (tenant, type, param, normalized, id);
DROP INDEX idx_token_lookup;
CREATE INDEX idx_token_lookup ON idx_token (tenant, type, param, code, system, id);
DROP INDEX idx_reference_lookup;
CREATE INDEX idx_reference_lookup ON idx_reference (tenant, type, param, target_id, target_type, id);
-- _revinclude and _has from the target side select the source's type and id.
DROP INDEX idx_reference_target;
CREATE INDEX idx_reference_target ON idx_reference (tenant, target_type, target_id, param, type, id);
-- _include and _has from the source side select the parameter and the target.
DROP INDEX idx_reference_resource;
CREATE INDEX idx_reference_resource ON idx_reference (tenant, type, id, param, target_type, target_id);
DROP INDEX idx_date_lookup;
CREATE INDEX idx_date_lookup ON idx_date (tenant, type, param, start_us, end_us, id);
-- _sort on a date reads each match's own range.
DROP INDEX idx_date_resource;
CREATE INDEX idx_date_resource ON idx_date (tenant, type, id, param, start_us, end_us);
DROP INDEX idx_uri_lookup;
CREATE INDEX idx_uri_lookup ON idx_uri (tenant, type, param, value, id);
"#,
    },
];

/// The newest schema version this binary knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// How long a connection waits for a lock held by another connection before giving up
/// with SQLITE_BUSY (mapped to `StoreError::Unavailable`).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings every connection gets. The query planner stability guarantee (QPSG) matters for
/// speed: without it SQLite (built with STAT4) marks statements whose plan *might* depend on
/// a bound value for re-preparation whenever that value changes, which put the SQL parser on
/// every point read (measured: 2/3 of a read's time).
fn configure_common(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Settings for the one writer connection. `synchronous=FULL` in WAL mode syncs the WAL on
/// every commit: a write is durable when `write()` returns, even across power loss.
pub(crate) fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    configure_common(conn)?;
    // journal_mode answers with the mode it set; WAL is persistent in the file.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -32768;          -- 32 MiB page cache
         PRAGMA mmap_size = 1073741824;       -- read pages through a 1 GiB map
         PRAGMA journal_size_limit = 67108864; -- truncate the WAL back to 64 MiB after checkpoints
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(())
}

/// Settings for a pooled read-only connection.
pub(crate) fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    configure_common(conn)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -8192;           -- 8 MiB page cache per reader
         PRAGMA mmap_size = 1073741824;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(())
}

/// The newest applied migration, 0 for a fresh database.
pub(crate) fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
}

/// Brings the schema up to [`latest_version`], one transaction per migration, and returns
/// the resulting version. Refuses a database newer than this binary.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64, SqliteStoreError> {
    migrate_with(conn, MIGRATIONS)
}

/// [`migrate`] over an explicit list (tests use lists with a failing step).
fn migrate_with(conn: &mut Connection, migrations: &[Migration]) -> Result<i64, SqliteStoreError> {
    let open_err = |source| SqliteStoreError::Migration {
        version: 0,
        name: "schema_migrations",
        source,
    };
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT    NOT NULL,
             applied_at INTEGER NOT NULL      -- µs since the epoch
         );",
    )
    .map_err(open_err)?;
    let supported = migrations.last().map_or(0, |m| m.version);
    let found = current_version(conn).map_err(open_err)?;
    if found > supported {
        return Err(SqliteStoreError::SchemaTooNew { found, supported });
    }
    for m in migrations {
        let fail = |source| SqliteStoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let now = current_version(&tx).map_err(fail)?;
        if now > supported {
            return Err(SqliteStoreError::SchemaTooNew {
                found: now,
                supported,
            });
        }
        if now >= m.version {
            continue;
        }
        tx.execute_batch(m.sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, caduceus_model::ids::now_micros()],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied schema migration"
        );
    }
    current_version(conn).map_err(open_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_exists(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .expect("query")
            == 1
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version_whole() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(migrate(&mut conn).expect("migrate"), latest_version());
        let next = latest_version() + 1;
        let broken = [
            Migration {
                version: 1,
                name: "already applied",
                sql: "SELECT 1",
            },
            Migration {
                version: next,
                name: "broken",
                sql: "CREATE TABLE half_done (x INTEGER); THIS IS NOT SQL;",
            },
        ];
        match migrate_with(&mut conn, &broken) {
            Err(SqliteStoreError::Migration { version, .. }) => assert_eq!(version, next),
            other => panic!("expected a migration error, got {other:?}"),
        }
        assert_eq!(current_version(&conn).expect("version"), latest_version());
        assert!(
            !table_exists(&conn, "half_done"),
            "the failed step was rolled back"
        );
        assert!(table_exists(&conn, "versions"));
        // Migrating again with the real list is a no-op.
        assert_eq!(migrate(&mut conn).expect("migrate"), latest_version());
    }
}
