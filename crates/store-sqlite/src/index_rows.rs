//! Writing a resource's search index rows (migration 2's `idx_*` tables and migration 3's
//! `idx_composite`), inside the writer's transaction: the rows of a resource's current
//! version replace the previous ones, and a delete removes them, so searches only ever see
//! current versions.
//!
//! A composite tuple is one `idx_composite` row: component `k` (1 to 3) in the columns of
//! position `k` ([`POSITIONS`]) that its kind uses, the others NULL:
//! - token: `system_k`, `code_k`;
//! - string: `code_k` normalised, `text_k` as written; uri: `code_k`;
//! - reference: `system_k` target type, `code_k` target id, `version_k`, `text_k` URL;
//! - number: `value_k`, `low_k`, `high_k`;
//! - quantity: `value_k`, `low_k`, `high_k`, `system_k`, `code_k` and the canonical
//!   `canon_value_k`, `canon_code_k`;
//! - date: `low_k` start and `high_k` end, in µs (integers: those columns have no type
//!   affinity, so neither µs nor decimals are converted).
//!
//! Contained resources (migration 5): each gets the rows of its own type under the key
//! [`contained_key`] (`ContainerType/containerId#localId`), listed in `contained` with its
//! container so that the container's next write or delete removes them. Local references
//! (`#localId`, `#`) are stored resolved: `target_id` becomes the contained resource's key
//! (the container's id for `#`), so a chain reaches the contained resource through
//! `idx_reference` like any other target.

use std::borrow::Cow;
use std::sync::LazyLock;

use caduceus_store::index::{ContainedIndex, IndexRow, IndexValue};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

/// The columns of one component position of `idx_composite`.
pub(crate) struct Position {
    pub system: &'static str,
    pub code: &'static str,
    pub text: &'static str,
    pub version: &'static str,
    pub value: &'static str,
    pub low: &'static str,
    pub high: &'static str,
    pub canon_value: &'static str,
    pub canon_code: &'static str,
}

macro_rules! position {
    ($k:literal) => {
        Position {
            system: concat!("system_", $k),
            code: concat!("code_", $k),
            text: concat!("text_", $k),
            version: concat!("version_", $k),
            value: concat!("value_", $k),
            low: concat!("low_", $k),
            high: concat!("high_", $k),
            canon_value: concat!("canon_value_", $k),
            canon_code: concat!("canon_code_", $k),
        }
    };
}

/// The component positions of `idx_composite`: R4's composites have 2 or 3 components.
pub(crate) const POSITIONS: [Position; 3] = [position!("1"), position!("2"), position!("3")];

/// The `INSERT` of one composite tuple: tenant, type, id, param, then 9 columns per
/// position.
static INSERT_COMPOSITE: LazyLock<String> = LazyLock::new(|| {
    let mut cols = vec!["tenant", "type", "id", "param"];
    for p in &POSITIONS {
        cols.extend([
            p.system,
            p.code,
            p.text,
            p.version,
            p.value,
            p.low,
            p.high,
            p.canon_value,
            p.canon_code,
        ]);
    }
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO idx_composite ({}) VALUES ({})",
        cols.join(", "),
        marks.join(", ")
    )
});

/// The key of a contained resource's index rows: its address relative to the server base.
pub(crate) fn contained_key(container_type: &str, container_id: &str, local_id: &str) -> String {
    format!("{container_type}/{container_id}#{local_id}")
}

/// A reference target id as stored: a local `#localId` becomes the contained resource's
/// key, a bare `#` the container's id (`container` is (type, id) of the container, which for
/// a top-level resource is itself).
fn stored_target<'a>(
    target_id: &'a Option<String>,
    container: (&str, &str),
) -> Option<Cow<'a, str>> {
    match target_id.as_deref() {
        Some("#") => Some(Cow::Owned(container.1.to_owned())),
        Some(t) => match t.strip_prefix('#') {
            Some(local) => Some(Cow::Owned(contained_key(container.0, container.1, local))),
            None => Some(Cow::Borrowed(t)),
        },
        None => None,
    }
}

/// The 9 column values of one component, in [`Position`] order; `None` for a value that
/// cannot be a component (a nested composite).
fn component_columns(v: &IndexValue, container: (&str, &str)) -> Option<[Value; 9]> {
    const SYSTEM: usize = 0;
    const CODE: usize = 1;
    const TEXT: usize = 2;
    const VERSION: usize = 3;
    const VALUE: usize = 4;
    const LOW: usize = 5;
    const HIGH: usize = 6;
    const CANON_VALUE: usize = 7;
    const CANON_CODE: usize = 8;
    let opt = |s: &Option<String>| s.clone().map_or(Value::Null, Value::Text);
    let mut c: [Value; 9] = std::array::from_fn(|_| Value::Null);
    match v {
        IndexValue::Token { system, code, .. } => {
            c[SYSTEM] = opt(system);
            c[CODE] = opt(code);
        }
        IndexValue::String { normalized, exact } => {
            c[CODE] = Value::Text(normalized.clone());
            c[TEXT] = Value::Text(exact.clone());
        }
        IndexValue::Uri(u) => c[CODE] = Value::Text(u.clone()),
        IndexValue::Reference {
            target_type,
            target_id,
            version,
            url,
        } => {
            c[SYSTEM] = opt(target_type);
            c[CODE] = stored_target(target_id, container)
                .map_or(Value::Null, |t| Value::Text(t.into_owned()));
            c[TEXT] = opt(url);
            c[VERSION] = opt(version);
        }
        IndexValue::Number { value, low, high } => {
            c[VALUE] = Value::Real(*value);
            c[LOW] = Value::Real(*low);
            c[HIGH] = Value::Real(*high);
        }
        IndexValue::Quantity {
            value,
            low,
            high,
            system,
            code,
            canonical_value,
            canonical_code,
        } => {
            c[SYSTEM] = opt(system);
            c[CODE] = opt(code);
            c[VALUE] = Value::Real(*value);
            c[LOW] = Value::Real(*low);
            c[HIGH] = Value::Real(*high);
            c[CANON_VALUE] = canonical_value.map_or(Value::Null, Value::Real);
            c[CANON_CODE] = opt(canonical_code);
        }
        IndexValue::Date { start, end } => {
            c[LOW] = Value::Integer(*start);
            c[HIGH] = Value::Integer(*end);
        }
        IndexValue::Composite(_) => return None,
    }
    Some(c)
}

/// Inserts one composite tuple; a tuple of more components than [`POSITIONS`] (none in
/// R4) or with a nested composite is skipped.
fn insert_composite(
    conn: &Connection,
    key: (i64, &str, &str, &str),
    parts: &[IndexValue],
    container: (&str, &str),
) -> rusqlite::Result<usize> {
    if parts.is_empty() || parts.len() > POSITIONS.len() {
        return Ok(0);
    }
    let (tenant, resource_type, id, param) = key;
    let mut args: Vec<Value> = vec![
        Value::Integer(tenant),
        Value::Text(resource_type.to_owned()),
        Value::Text(id.to_owned()),
        Value::Text(param.to_owned()),
    ];
    for k in 0..POSITIONS.len() {
        match parts.get(k) {
            Some(v) => match component_columns(v, container) {
                Some(cols) => args.extend(cols),
                None => return Ok(0),
            },
            None => args.extend(std::iter::repeat_n(Value::Null, 9)),
        }
    }
    conn.prepare_cached(&INSERT_COMPOSITE)?
        .execute(rusqlite::params_from_iter(args))
}

/// The index tables, for removing a resource's rows.
const TABLES: &[&str] = &[
    "idx_string",
    "idx_token",
    "idx_reference",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_uri",
    "idx_composite",
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
                .execute(params![tenant, resource_type, id, p, target_type, stored_target(target_id, container), version, url])?,
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
            IndexValue::Composite(parts) => {
                insert_composite(conn, (tenant, resource_type, id, p), parts, container)?
            }
        };
    }
    Ok(())
}
