//! Point queries on a read connection, and decoding a `versions` row into a
//! [`StoredVersion`].

use bytes::Bytes;
use caduceus_store::{Method, StoreError, StoredVersion};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::map_sqlite;

/// The columns [`decode`] expects, in order, for a `versions` row aliased `v` (a macro so
/// that the point queries are `&'static str` built with `concat!`).
macro_rules! version_columns {
    () => {
        "v.seq, v.version, v.last_updated, v.method, v.body, v.body_codec, v.type, v.id"
    };
}
pub(crate) use version_columns;

/// `body_codec` of plain canonical JSON.
pub(crate) const CODEC_PLAIN: i64 = 0;

/// Decodes a row selected with [`version_columns!`]. The body is copied once, into `Bytes`.
pub(crate) fn decode(row: &Row<'_>) -> Result<StoredVersion, StoreError> {
    let seq: i64 = row.get(0).map_err(map_sqlite)?;
    let version: i64 = row.get(1).map_err(map_sqlite)?;
    let last_updated: i64 = row.get(2).map_err(map_sqlite)?;
    let method_n: i64 = row.get(3).map_err(map_sqlite)?;
    let codec: i64 = row.get(5).map_err(map_sqlite)?;
    if codec != CODEC_PLAIN {
        return Err(StoreError::Internal(format!(
            "version seq {seq}: unsupported body codec {codec}"
        )));
    }
    let body = row
        .get_ref(4)
        .map_err(map_sqlite)?
        .as_blob_or_null()
        .map_err(|_| StoreError::Internal(format!("version seq {seq}: body is not a blob")))?
        .map(Bytes::copy_from_slice);
    let method = Method::from_db(method_n).ok_or_else(|| {
        StoreError::Internal(format!("version seq {seq}: unknown method {method_n}"))
    })?;
    let version = u64::try_from(version)
        .map_err(|_| StoreError::Internal(format!("version seq {seq}: negative version")))?;
    Ok(StoredVersion {
        resource_type: row.get(6).map_err(map_sqlite)?,
        id: row.get(7).map_err(map_sqlite)?,
        version,
        seq,
        last_updated,
        method,
        body,
    })
}

/// The current version (possibly a tombstone) of one resource.
pub(crate) fn read_current(
    conn: &Connection,
    tenant: i64,
    resource_type: &str,
    id: &str,
) -> Result<Option<StoredVersion>, StoreError> {
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            version_columns!(),
            " FROM resources r JOIN versions v ON v.seq = r.seq \
             WHERE r.tenant = ?1 AND r.type = ?2 AND r.id = ?3"
        ))
        .map_err(map_sqlite)?;
    let mut rows = stmt
        .query(params![tenant, resource_type, id])
        .map_err(map_sqlite)?;
    match rows.next().map_err(map_sqlite)? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// One version of one resource.
pub(crate) fn read_version(
    conn: &Connection,
    tenant: i64,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<StoredVersion>, StoreError> {
    let Ok(version) = i64::try_from(version) else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions v \
             WHERE v.tenant = ?1 AND v.type = ?2 AND v.id = ?3 AND v.version = ?4"
        ))
        .map_err(map_sqlite)?;
    let mut rows = stmt
        .query(params![tenant, resource_type, id, version])
        .map_err(map_sqlite)?;
    match rows.next().map_err(map_sqlite)? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// Number of live resources of one type, or of all types.
pub(crate) fn count_live(
    conn: &Connection,
    tenant: i64,
    resource_type: Option<&str>,
) -> Result<u64, StoreError> {
    let n: i64 = match resource_type {
        Some(t) => conn
            .prepare_cached(
                "SELECT count(*) FROM resources WHERE tenant = ?1 AND type = ?2 AND deleted = 0",
            )
            .and_then(|mut s| s.query_row(params![tenant, t], |r| r.get(0))),
        None => conn
            .prepare_cached("SELECT count(*) FROM resources WHERE tenant = ?1 AND deleted = 0")
            .and_then(|mut s| s.query_row(params![tenant], |r| r.get(0))),
    }
    .map_err(map_sqlite)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The newest `last_updated` in the database (that of the highest seq: `last_updated` is
/// monotonic in seq), or `None` when empty.
pub(crate) fn newest_last_updated(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT last_updated FROM versions ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()
}
