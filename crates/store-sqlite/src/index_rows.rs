//! Writing a resource's search index rows (the `idx_*` tables) inside the writer's
//! transaction: the rows of a resource's current version replace the previous ones, and a
//! delete removes them, so searches only ever see current versions. Which table and columns
//! a row takes is `caduceus_store_sql::columns`, shared with the PostgreSQL store.
//!
//! Contained resources (migration 5): each gets the rows of its own type under the key
//! `columns::contained_key` (`ContainerType/containerId#localId`), listed in `contained`
//! with its container so that the container's next write or delete removes them.

use std::sync::LazyLock;

use caduceus_store::index::{ContainedIndex, IndexRow};
use caduceus_store_sql::columns::{self, TABLES, contained_key};
use rusqlite::{Connection, params};

use crate::search::to_sqlite;

/// The `INSERT` of each index table, in [`TABLES`] order.
static INSERTS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    TABLES
        .iter()
        .map(|t| (t.name, columns::insert_sql(t)))
        .collect()
});

/// The index tables, for removing a resource's rows.
/// Removes every index row of a resource.
pub(crate) fn remove(
    conn: &Connection,
    tenant: i64,
    resource_type: &str,
    id: &str,
) -> rusqlite::Result<()> {
    for table in TABLES {
        conn.prepare_cached(&format!(
            "DELETE FROM {} WHERE tenant = ?1 AND type = ?2 AND id = ?3",
            table.name
        ))?
        .execute(params![tenant, resource_type, id])?;
    }
    Ok(())
}

/// Removes the contained resources of a container: their index rows and their `contained`
/// entries.
pub(crate) fn remove_contained(
    conn: &Connection,
    tenant: i64,
    container_type: &str,
    container_id: &str,
) -> rusqlite::Result<()> {
    let keys: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT type, id FROM contained \
             WHERE tenant = ?1 AND container_type = ?2 AND container_id = ?3",
        )?
        .query_map(params![tenant, container_type, container_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if keys.is_empty() {
        return Ok(());
    }
    for (t, key) in &keys {
        remove(conn, tenant, t, key)?;
    }
    conn.prepare_cached(
        "DELETE FROM contained WHERE tenant = ?1 AND container_type = ?2 AND container_id = ?3",
    )?
    .execute(params![tenant, container_type, container_id])?;
    Ok(())
}

/// Inserts the contained resources of a container (which has none yet): a `contained`
/// entry and the index rows of each. A local id given twice keeps its first rows.
pub(crate) fn insert_contained(
    conn: &Connection,
    tenant: i64,
    container_type: &str,
    container_id: &str,
    contained: &[ContainedIndex],
) -> rusqlite::Result<()> {
    for c in contained {
        let key = contained_key(container_type, container_id, &c.id);
        let added = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO contained (tenant, type, id, container_type, container_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                tenant,
                c.resource_type,
                key,
                container_type,
                container_id
            ])?;
        if added == 1 {
            insert(
                conn,
                tenant,
                (&c.resource_type, &key),
                &c.rows,
                (container_type, container_id),
            )?;
        }
    }
    Ok(())
}

/// Inserts the rows of a resource, keyed `(type, id)`, whose local references resolve
/// within `container` (type, id): the resource itself when it is top-level.
pub(crate) fn insert(
    conn: &Connection,
    tenant: i64,
    (resource_type, id): (&str, &str),
    rows: &[IndexRow],
    container: (&str, &str),
) -> rusqlite::Result<()> {
    for row in rows {
        let Some((table, values)) = columns::row_values(row, container) else {
            continue;
        };
        let Some((_, sql)) = INSERTS.iter().find(|(name, _)| *name == table.name) else {
            continue;
        };
        let key = [
            rusqlite::types::Value::Integer(tenant),
            rusqlite::types::Value::Text(resource_type.to_owned()),
            rusqlite::types::Value::Text(id.to_owned()),
            rusqlite::types::Value::Text(row.param.to_owned()),
        ];
        conn.prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(
                key.into_iter().chain(values.into_iter().map(to_sqlite)),
            ))?;
    }
    Ok(())
}
