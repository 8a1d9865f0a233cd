//! Maintenance: the keyset walk over current resources (`caduceus reindex`), the walk over
//! every version in write order and the verbatim copy-in (`caduceus copy`), and the
//! `store_meta` key-value table.
//!
//! `scan_versions` pages by `seq`. With concurrent writers a lower `seq` can commit after a
//! higher one, so a walk taken while the source is being written may miss a version that
//! commits behind its cursor: copy from a store nobody writes (as `caduceus copy` requires).
//!
//! `copy_in` inserts the given versions in one statement (their `seq` drawn in the given
//! order), then points `resources` at each touched resource's highest version, in the same
//! transaction. `ON CONFLICT DO NOTHING` plus a count finds a version already present and
//! names its position (`AlreadyExists { index }`) instead of a bare unique violation.

use caduceus_store::{StoreError, StoredVersion};
use deadpool_postgres::Client;

use crate::error::map_pg;
use crate::rows::{decode_all, first_count, query, version_columns};

/// Live resources in (type, id) order after `after`, at most `limit`, with their bodies.
pub(crate) async fn scan_current(
    client: &Client,
    tenant: i64,
    after: Option<(&str, &str)>,
    limit: usize,
) -> Result<Vec<StoredVersion>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // (type, id) > (?, ?) as a range on the primary key of `resources`.
    let (after_type, after_id) = after.unwrap_or(("", ""));
    let rows = query(
        client,
        concat!(
            "SELECT ",
            version_columns!(),
            " FROM resources r JOIN versions v ON v.tenant = r.tenant AND v.seq = r.seq \
             WHERE r.tenant = $1 AND r.deleted = 0 AND (r.type, r.id) > ($2, $3) \
             ORDER BY r.type, r.id LIMIT $4"
        ),
        &[&tenant, &after_type, &after_id, &limit],
    )
    .await?;
    decode_all(&rows)
}

/// Every version (deletions included) in `seq` order after `after_seq`, at most `limit`.
pub(crate) async fn scan_versions(
    client: &Client,
    tenant: i64,
    after_seq: Option<i64>,
    limit: usize,
) -> Result<Vec<StoredVersion>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = query(
        client,
        concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions v WHERE v.tenant = $1 AND v.seq > $2 ORDER BY v.seq LIMIT $3"
        ),
        &[&tenant, &after_seq.unwrap_or(i64::MIN), &limit],
    )
    .await?;
    decode_all(&rows)
}

/// Number of versions, deletions included.
pub(crate) async fn count_versions(client: &Client, tenant: i64) -> Result<u64, StoreError> {
    let rows = query(
        client,
        "SELECT count(*) FROM versions WHERE tenant = $1",
        &[&tenant],
    )
    .await?;
    first_count(&rows)
}

/// A `store_meta` value.
pub(crate) async fn meta(client: &Client, key: &str) -> Result<Option<String>, StoreError> {
    let rows = query(
        client,
        "SELECT value FROM store_meta WHERE key = $1",
        &[&key],
    )
    .await?;
    rows.first()
        .map(|r| r.try_get(0).map_err(|e| map_pg(&e)))
        .transpose()
}

/// Sets a `store_meta` value (committed when this returns).
pub(crate) async fn set_meta(client: &Client, key: &str, value: &str) -> Result<(), StoreError> {
    query(
        client,
        "INSERT INTO store_meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )
    .await?;
    Ok(())
}

/// Sets a `store_meta` value unless the key has one; `true` if this call set it. The
/// primary key decides between concurrent callers on any replica.
pub(crate) async fn insert_meta(
    client: &Client,
    key: &str,
    value: &str,
) -> Result<bool, StoreError> {
    let rows = query(
        client,
        "INSERT INTO store_meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO NOTHING RETURNING 1",
        &[&key, &value],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// The `store_meta` entries whose key starts with `prefix`, in key order (bytewise: the
/// column is `COLLATE "C"`), as a key range the primary key serves.
pub(crate) async fn meta_list(
    client: &Client,
    prefix: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = match caduceus_store::prefix_upper_bound(prefix) {
        Some(upper) => {
            query(
                client,
                "SELECT key, value FROM store_meta WHERE key >= $1 AND key < $2 ORDER BY key",
                &[&prefix, &upper],
            )
            .await?
        }
        None => {
            query(
                client,
                "SELECT key, value FROM store_meta WHERE key >= $1 ORDER BY key",
                &[&prefix],
            )
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(|e| map_pg(&e))?,
                r.try_get(1).map_err(|e| map_pg(&e))?,
            ))
        })
        .collect()
}

/// Removes a `store_meta` value; `true` if there was one.
pub(crate) async fn delete_meta(client: &Client, key: &str) -> Result<bool, StoreError> {
    let rows = query(
        client,
        "DELETE FROM store_meta WHERE key = $1 RETURNING 1",
        &[&key],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// Removes a `store_meta` value and returns it. Concurrent takers of one key serialise on
/// its row lock; the losers find it deleted and get `None`.
pub(crate) async fn take_meta(client: &Client, key: &str) -> Result<Option<String>, StoreError> {
    let rows = query(
        client,
        "DELETE FROM store_meta WHERE key = $1 RETURNING value",
        &[&key],
    )
    .await?;
    rows.first()
        .map(|r| r.try_get(0).map_err(|e| map_pg(&e)))
        .transpose()
}

/// Writes `versions` verbatim (see the module doc), atomically.
pub(crate) async fn copy_in(
    client: &mut Client,
    tenant: i64,
    versions: &[StoredVersion],
) -> Result<(), StoreError> {
    if versions.is_empty() {
        return Ok(());
    }
    let pg = |e: tokio_postgres::Error| map_pg(&e);
    let ords: Vec<i32> = (0..versions.len())
        .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
        .collect();
    let types: Vec<&str> = versions.iter().map(|v| v.resource_type.as_str()).collect();
    let ids: Vec<&str> = versions.iter().map(|v| v.id.as_str()).collect();
    let numbers = versions
        .iter()
        .map(|v| {
            i64::try_from(v.version)
                .map_err(|_| StoreError::Internal("a copied version number is too large".into()))
        })
        .collect::<Result<Vec<i64>, _>>()?;
    let times: Vec<i64> = versions.iter().map(|v| v.last_updated).collect();
    let methods: Vec<i16> = versions
        .iter()
        .map(|v| i16::try_from(v.method.to_db()).unwrap_or(i16::MAX))
        .collect();
    let bodies: Vec<Option<&[u8]>> = versions.iter().map(|v| v.body.as_deref()).collect();

    let tx = client.transaction().await.map_err(pg)?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO versions (tenant, type, id, version, last_updated, method, body, body_codec) \
             SELECT $1, u.type, u.id, u.version, u.last_updated, u.method, u.body, 0 \
             FROM unnest($2::int4[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int2[], \
                         $8::bytea[]) AS u(ord, type, id, version, last_updated, method, body) \
             ORDER BY u.ord \
             ON CONFLICT (tenant, type, id, version) DO NOTHING \
             RETURNING type, id, version",
        )
        .await
        .map_err(pg)?;
    let rows = tx
        .query(
            &stmt,
            &[
                &tenant, &ords, &types, &ids, &numbers, &times, &methods, &bodies,
            ],
        )
        .await
        .map_err(pg)?;
    if rows.len() != versions.len() {
        let mut inserted = std::collections::HashSet::with_capacity(rows.len());
        for row in &rows {
            let t: String = row.try_get(0).map_err(pg)?;
            let i: String = row.try_get(1).map_err(pg)?;
            let v: i64 = row.try_get(2).map_err(pg)?;
            inserted.insert((t, i, v));
        }
        // The first version not inserted: present before, or twice in the input.
        let mut seen = std::collections::HashSet::with_capacity(versions.len());
        let index = (0..versions.len())
            .find(|&k| {
                let key = (types[k].to_owned(), ids[k].to_owned(), numbers[k]);
                !seen.insert(key.clone()) || !inserted.contains(&key)
            })
            .unwrap_or(0);
        return Err(StoreError::AlreadyExists { index });
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO resources (tenant, type, id, version, seq, deleted) \
             SELECT DISTINCT ON (v.type, v.id) v.tenant, v.type, v.id, v.version, v.seq, \
                    CASE WHEN v.body IS NULL THEN 1 ELSE 0 END \
             FROM versions v \
             JOIN (SELECT DISTINCT type, id FROM unnest($2::text[], $3::text[]) AS k(type, id)) k \
               ON v.tenant = $1 AND v.type = k.type AND v.id = k.id \
             ORDER BY v.type, v.id, v.version DESC \
             ON CONFLICT (tenant, type, id) DO UPDATE SET \
               version = excluded.version, seq = excluded.seq, deleted = excluded.deleted",
        )
        .await
        .map_err(pg)?;
    tx.execute(&stmt, &[&tenant, &types, &ids])
        .await
        .map_err(pg)?;
    tx.commit().await.map_err(pg)
}
