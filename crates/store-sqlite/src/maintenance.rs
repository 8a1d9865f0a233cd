//! Maintenance reads and the store's own bookkeeping: a keyset walk over the current
//! resources (for `caduceus reindex`, and later `caduceus copy`), and the `store_meta`
//! key-value table (migration 4).
//!
//! `store_meta` holds facts about the store, never resource data, and is written rarely
//! (at open, after a reindex), so a write there uses its own short-lived connection rather
//! than the writer thread: SQLite serialises it with the writer through the database lock
//! (`BUSY_TIMEOUT`), and resource writes keep their single path.

use std::path::Path;

use caduceus_store::{StoreError, StoredVersion};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::map_sqlite;
use crate::rows::{decode, version_columns};
use crate::schema;

/// Live resources in (type, id) order after `after`, at most `limit`, with their bodies.
pub(crate) fn scan_current(
    conn: &Connection,
    tenant: i64,
    after: Option<(&str, &str)>,
    limit: usize,
) -> Result<Vec<StoredVersion>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // (type, id) > (?, ?) as a range on the primary key of `resources`.
    let (after_type, after_id) = after.unwrap_or(("", ""));
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            version_columns!(),
            " FROM resources r JOIN versions v ON v.seq = r.seq \
             WHERE r.tenant = ?1 AND r.deleted = 0 AND (r.type, r.id) > (?2, ?3) \
             ORDER BY r.type, r.id LIMIT ?4"
        ))
        .map_err(map_sqlite)?;
    let mut rows = stmt
        .query(params![tenant, after_type, after_id, limit])
        .map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_sqlite)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Every version (deletions included) in `seq` order after `after_seq`, at most `limit`.
pub(crate) fn scan_versions(
    conn: &Connection,
    tenant: i64,
    after_seq: Option<i64>,
    limit: usize,
) -> Result<Vec<StoredVersion>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions v WHERE v.tenant = ?1 AND v.seq > ?2 ORDER BY v.seq LIMIT ?3"
        ))
        .map_err(map_sqlite)?;
    let mut rows = stmt
        .query(params![tenant, after_seq.unwrap_or(i64::MIN), limit])
        .map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_sqlite)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Number of versions, deletions included.
pub(crate) fn count_versions(conn: &Connection, tenant: i64) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM versions WHERE tenant = ?1")
        .and_then(|mut s| s.query_row(params![tenant], |r| r.get(0)))
        .map_err(map_sqlite)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A `store_meta` value.
pub(crate) fn meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM store_meta WHERE key = ?1")
        .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
        .map_err(map_sqlite)
}

/// Sets a `store_meta` value on a connection of its own, durably.
pub(crate) fn set_meta(db_path: &Path, key: &str, value: &str) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(map_sqlite)?;
    conn.busy_timeout(schema::BUSY_TIMEOUT)
        .map_err(map_sqlite)?;
    conn.execute_batch("PRAGMA synchronous = FULL")
        .map_err(map_sqlite)?;
    conn.execute(
        "INSERT INTO store_meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map_err(map_sqlite)?;
    Ok(())
}
