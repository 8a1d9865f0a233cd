//! Point queries (`read`, `vread`, counts, `store_meta`) and decoding a `versions` row into a
//! [`StoredVersion`].
//!
//! Point queries run on a pooled connection through `prepare_cached`: each connection
//! parses and plans a statement once, then binds and executes it (one round trip).

use bytes::Bytes;
use caduceus_store::{Method, StoreError, StoredVersion};
use deadpool_postgres::Client;
use tokio_postgres::Row;

use crate::error::map_pg;

/// The columns [`decode`] expects, in order, for a `versions` row aliased `v` (a macro so
/// that the queries are `&'static str` built with `concat!`).
macro_rules! version_columns {
    () => {
        "v.seq, v.version, v.last_updated, v.method, v.body, v.body_codec, v.type, v.id"
    };
}
pub(crate) use version_columns;

/// `body_codec` of plain canonical JSON.
pub(crate) const CODEC_PLAIN: i32 = 0;

/// Decodes a row selected with [`version_columns!`]. The body is copied once, into `Bytes`.
pub(crate) fn decode(row: &Row) -> Result<StoredVersion, StoreError> {
    let seq: i64 = row.try_get(0).map_err(|e| map_pg(&e))?;
    let bad = |what: &str| StoreError::Internal(format!("version seq {seq}: {what}"));
    let version: i64 = row.try_get(1).map_err(|e| map_pg(&e))?;
    let last_updated: i64 = row.try_get(2).map_err(|e| map_pg(&e))?;
    let method_n: i16 = row.try_get(3).map_err(|e| map_pg(&e))?;
    let body: Option<&[u8]> = row.try_get(4).map_err(|e| map_pg(&e))?;
    let codec: i32 = row.try_get(5).map_err(|e| map_pg(&e))?;
    if codec != CODEC_PLAIN {
        return Err(bad(&format!("unsupported body codec {codec}")));
    }
    let method = Method::from_db(i64::from(method_n))
        .ok_or_else(|| bad(&format!("unknown method {method_n}")))?;
    let version = u64::try_from(version).map_err(|_| bad("negative version"))?;
    Ok(StoredVersion {
        resource_type: row.try_get(6).map_err(|e| map_pg(&e))?,
        id: row.try_get(7).map_err(|e| map_pg(&e))?,
        version,
        seq,
        last_updated,
        method,
        body: body.map(Bytes::copy_from_slice),
    })
}

/// Decodes every row.
pub(crate) fn decode_all(rows: &[Row]) -> Result<Vec<StoredVersion>, StoreError> {
    rows.iter().map(decode).collect()
}

/// Runs a cached statement and returns its rows.
pub(crate) async fn query(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let stmt = client.prepare_cached(sql).await.map_err(|e| map_pg(&e))?;
    client.query(&stmt, params).await.map_err(|e| map_pg(&e))
}

/// The current version (possibly a tombstone) of one resource.
pub(crate) async fn read_current(
    client: &Client,
    tenant: i64,
    resource_type: &str,
    id: &str,
) -> Result<Option<StoredVersion>, StoreError> {
    let rows = query(
        client,
        concat!(
            "SELECT ",
            version_columns!(),
            " FROM resources r JOIN versions v ON v.tenant = r.tenant AND v.seq = r.seq \
             WHERE r.tenant = $1 AND r.type = $2 AND r.id = $3"
        ),
        &[&tenant, &resource_type, &id],
    )
    .await?;
    rows.first().map(decode).transpose()
}

/// One version of one resource.
pub(crate) async fn read_version(
    client: &Client,
    tenant: i64,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<StoredVersion>, StoreError> {
    let Ok(version) = i64::try_from(version) else {
        return Ok(None);
    };
    let rows = query(
        client,
        concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions v \
             WHERE v.tenant = $1 AND v.type = $2 AND v.id = $3 AND v.version = $4"
        ),
        &[&tenant, &resource_type, &id, &version],
    )
    .await?;
    rows.first().map(decode).transpose()
}

/// Number of live resources of one type, or of all types.
pub(crate) async fn count_live(
    client: &Client,
    tenant: i64,
    resource_type: Option<&str>,
) -> Result<u64, StoreError> {
    let rows =
        match resource_type {
            Some(t) => query(
                client,
                "SELECT count(*) FROM resources WHERE tenant = $1 AND type = $2 AND deleted = 0",
                &[&tenant, &t],
            )
            .await?,
            None => {
                query(
                    client,
                    "SELECT count(*) FROM resources WHERE tenant = $1 AND deleted = 0",
                    &[&tenant],
                )
                .await?
            }
        };
    first_count(&rows)
}

/// The `count(*)` of a one-row result.
pub(crate) fn first_count(rows: &[Row]) -> Result<u64, StoreError> {
    let n: i64 = match rows.first() {
        Some(row) => row.try_get(0).map_err(|e| map_pg(&e))?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}
