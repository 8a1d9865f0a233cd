//! Writing a resource's search index rows (migration 2's `idx_*` tables), inside the
//! writer's transaction: the rows of a resource's current version replace the previous
//! ones, and a delete removes them, so searches only ever see current versions.

use caduceus_store::index::{IndexRow, IndexValue};
use rusqlite::{Connection, params};

/// The index tables, for removing a resource's rows.
const TABLES: &[&str] = &[
    "idx_string",
    "idx_token",
    "idx_reference",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_uri",
];

/// Removes every index row of a resource.
pub(crate) fn remove(
    conn: &Connection,
    tenant: i64,
    resource_type: &str,
    id: &str,
) -> rusqlite::Result<()> {
    for table in TABLES {
        conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE tenant = ?1 AND type = ?2 AND id = ?3"
        ))?
        .execute(params![tenant, resource_type, id])?;
    }
    Ok(())
}

/// Inserts the rows of a resource.
pub(crate) fn insert(
    conn: &Connection,
    tenant: i64,
    resource_type: &str,
    id: &str,
    rows: &[IndexRow],
) -> rusqlite::Result<()> {
    for row in rows {
        let p = row.param;
        match &row.value {
            IndexValue::String { normalized, exact } => conn
                .prepare_cached("INSERT INTO idx_string (tenant, type, id, param, normalized, exact) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                .execute(params![tenant, resource_type, id, p, normalized, exact])?,
            IndexValue::Token { system, code, text } => conn
                .prepare_cached("INSERT INTO idx_token (tenant, type, id, param, system, code, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
                .execute(params![tenant, resource_type, id, p, system, code, text])?,
            IndexValue::Reference { target_type, target_id, version, url } => conn
                .prepare_cached(
                    "INSERT INTO idx_reference (tenant, type, id, param, target_type, target_id, target_version, url) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![tenant, resource_type, id, p, target_type, target_id, version, url])?,
            IndexValue::Date { start, end } => conn
                .prepare_cached("INSERT INTO idx_date (tenant, type, id, param, start_us, end_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                .execute(params![tenant, resource_type, id, p, start, end])?,
            IndexValue::Number { value, low, high } => conn
                .prepare_cached("INSERT INTO idx_number (tenant, type, id, param, value, low, high) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
                .execute(params![tenant, resource_type, id, p, value, low, high])?,
            IndexValue::Quantity { value, low, high, system, code, canonical_value, canonical_code } => conn
                .prepare_cached(
                    "INSERT INTO idx_quantity (tenant, type, id, param, value, low, high, system, code, canonical_value, canonical_code) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![tenant, resource_type, id, p, value, low, high, system, code, canonical_value, canonical_code])?,
            IndexValue::Uri(value) => conn
                .prepare_cached("INSERT INTO idx_uri (tenant, type, id, param, value) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![tenant, resource_type, id, p, value])?,
        };
    }
    Ok(())
}
