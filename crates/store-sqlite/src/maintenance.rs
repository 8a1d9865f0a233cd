//! Maintenance reads and the store's own bookkeeping: a keyset walk over the current
//! resources (for `caduceus reindex`, and later `caduceus copy`), and the `store_meta`
//! key-value table (migration 4).
//!
//! `store_meta` holds facts about the store and the built-in authorization server's
//! accounts and one-time values, never resource data. It is written rarely (at open, after
//! a reindex, per sign-in or token request at most), so a write there uses its own
//! short-lived connection rather than the writer thread: SQLite serialises it with the writer through the database lock
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

/// A short-lived read-write connection for a `store_meta` write, durable on commit.
fn meta_writer(db_path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(map_sqlite)?;
    conn.busy_timeout(schema::BUSY_TIMEOUT)
        .map_err(map_sqlite)?;
    conn.execute_batch("PRAGMA synchronous = FULL")
        .map_err(map_sqlite)?;
    Ok(conn)
}

/// Sets a `store_meta` value on a connection of its own, durably.
pub(crate) fn set_meta(db_path: &Path, key: &str, value: &str) -> Result<(), StoreError> {
    meta_writer(db_path)?
        .execute(
            "INSERT INTO store_meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map_err(map_sqlite)?;
    Ok(())
}

/// Sets a `store_meta` value unless the key has one; `true` if it was set. One statement,
/// so SQLite's write lock makes it atomic.
pub(crate) fn insert_meta(db_path: &Path, key: &str, value: &str) -> Result<bool, StoreError> {
    let n = meta_writer(db_path)?
        .execute(
            "INSERT INTO store_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            params![key, value],
        )
        .map_err(map_sqlite)?;
    Ok(n == 1)
}

/// Removes a `store_meta` value; `true` if there was one.
pub(crate) fn delete_meta(db_path: &Path, key: &str) -> Result<bool, StoreError> {
    let n = meta_writer(db_path)?
        .execute("DELETE FROM store_meta WHERE key = ?1", params![key])
        .map_err(map_sqlite)?;
    Ok(n > 0)
}

/// Removes a `store_meta` value and returns it, in one statement (atomic).
pub(crate) fn take_meta(db_path: &Path, key: &str) -> Result<Option<String>, StoreError> {
    meta_writer(db_path)?
        .query_row(
            "DELETE FROM store_meta WHERE key = ?1 RETURNING value",
            params![key],
            |r| r.get(0),
        )
        .optional()
        .map_err(map_sqlite)
}

/// The `store_meta` entries whose key starts with `prefix`, in key order (a key range, so
/// the primary key serves it).
pub(crate) fn meta_list(
    conn: &Connection,
    prefix: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let upper = caduceus_store::prefix_upper_bound(prefix);
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, value FROM store_meta \
             WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) ORDER BY key",
        )
        .map_err(map_sqlite)?;
    let rows = stmt
        .query_map(params![prefix, upper], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(map_sqlite)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map_sqlite)
}
