//! History queries: instance, type and system scopes, newest first by `seq`, with `_since`,
//! `_at` and a `seq` cursor.
//!
//! `last_updated` is monotonic in `seq` (the writer guarantees it), so a time bound is also a
//! `seq` bound: [`first_seq_at_or_after`] finds it with a binary search over the rowid (about
//! log2(rows) point lookups) and the query gets a `seq` range its index can seek to, instead
//! of filtering every older row. The exact `last_updated` filter stays in the query too, so
//! results do not depend on the optimisation.

use caduceus_store::{HistoryQuery, HistoryScope, StoreError, StoredVersion};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use crate::error::map_sqlite;
use crate::rows::{decode, version_columns};

/// The smallest `x` such that every version with `seq >= x` has `last_updated >= micros`
/// and every version with `seq < x` has `last_updated < micros` (given monotonicity).
/// Returns `max(seq) + 1` when no version is that recent, and 0 for an empty database.
pub(crate) fn first_seq_at_or_after(conn: &Connection, micros: i64) -> rusqlite::Result<i64> {
    // Two queries: SQLite's min/max optimisation (one rowid seek) applies only to a lone
    // min() or max(); `SELECT min(seq), max(seq)` would scan the table.
    let min: Option<i64> = conn
        .prepare_cached("SELECT min(seq) FROM versions")?
        .query_row([], |r| r.get(0))?;
    let max: Option<i64> = conn
        .prepare_cached("SELECT max(seq) FROM versions")?
        .query_row([], |r| r.get(0))?;
    let (Some(mut lo), Some(max)) = (min, max) else {
        return Ok(0);
    };
    let mut stmt = conn
        .prepare_cached("SELECT last_updated FROM versions WHERE seq >= ?1 ORDER BY seq LIMIT 1")?;
    // f(x) = last_updated of the first row at or after x: non-decreasing in x.
    let mut f =
        |x: i64| -> rusqlite::Result<Option<i64>> { stmt.query_row([x], |r| r.get(0)).optional() };
    match f(max)? {
        Some(lu) if lu >= micros => {}
        _ => return Ok(max + 1),
    }
    let mut hi = max;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match f(mid)? {
            Some(lu) if lu >= micros => hi = mid,
            _ => lo = mid + 1,
        }
    }
    Ok(hi)
}

/// Runs a history query on a read connection.
pub(crate) fn history(
    conn: &Connection,
    tenant: i64,
    q: &HistoryQuery,
) -> Result<Vec<StoredVersion>, StoreError> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let since_from = match q.since {
        Some(since) => Some(first_seq_at_or_after(conn, since).map_err(map_sqlite)?),
        None => None,
    };
    let at_until = match q.at {
        Some((_, end)) => Some(first_seq_at_or_after(conn, end).map_err(map_sqlite)?),
        None => None,
    };
    let (sql, args) = build(tenant, q, since_from, at_until);
    let mut stmt = conn.prepare_cached(&sql).map_err(map_sqlite)?;
    let mut rows = stmt.query(params_from_iter(args)).map_err(map_sqlite)?;
    let mut out = Vec::with_capacity(q.limit.min(1024));
    while let Some(row) = rows.next().map_err(map_sqlite)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// The SQL and its arguments. `since_from` and `at_until` are the seq bounds of `q.since`
/// and `q.at`'s end (see [`first_seq_at_or_after`]). The text depends only on which
/// filters are present, so the prepared-statement cache holds a handful of variants.
pub(crate) fn build(
    tenant: i64,
    q: &HistoryQuery,
    since_from: Option<i64>,
    at_until: Option<i64>,
) -> (String, Vec<Value>) {
    let mut sql = String::from(concat!(
        "SELECT ",
        version_columns!(),
        " FROM versions v WHERE v.tenant = ?"
    ));
    let mut args: Vec<Value> = vec![Value::Integer(tenant)];
    // For one instance, `+v.seq` keeps the seq bounds from steering the planner onto the
    // type index (a range over every version of the type); the unique index on
    // (tenant, type, id, version) finds the instance's few rows directly.
    let seq = match q.scope {
        HistoryScope::Instance(..) => "+v.seq",
        _ => "v.seq",
    };
    match &q.scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            sql.push_str(" AND v.type = ?");
            args.push(Value::Text(t.clone()));
        }
        HistoryScope::Instance(t, id) => {
            sql.push_str(" AND v.type = ? AND v.id = ?");
            args.push(Value::Text(t.clone()));
            args.push(Value::Text(id.clone()));
        }
    }
    if let Some(before) = q.before_seq {
        sql.push_str(&format!(" AND {seq} < ?"));
        args.push(Value::Integer(before));
    }
    if let Some(since) = q.since {
        sql.push_str(&format!(" AND {seq} >= ? AND v.last_updated >= ?"));
        args.push(Value::Integer(since_from.unwrap_or(0)));
        args.push(Value::Integer(since));
    }
    if let Some((start, end)) = q.at {
        // Current at some point in [start, end): written before `end`, and not replaced
        // (the next version, gap-free so `version + 1`) at or before `start`.
        sql.push_str(&format!(
            " AND {seq} < ? AND v.last_updated < ? AND NOT EXISTS (\
               SELECT 1 FROM versions n WHERE n.tenant = v.tenant AND n.type = v.type \
               AND n.id = v.id AND n.version = v.version + 1 AND n.last_updated <= ?)"
        ));
        args.push(Value::Integer(at_until.unwrap_or(i64::MAX)));
        args.push(Value::Integer(end));
        args.push(Value::Integer(start));
    }
    // Within one resource, version order is seq order; ordering an instance by version
    // walks its unique index instead of sorting.
    match q.scope {
        HistoryScope::Instance(..) => sql.push_str(" ORDER BY v.version DESC LIMIT ?"),
        _ => sql.push_str(" ORDER BY v.seq DESC LIMIT ?"),
    }
    args.push(Value::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    (sql, args)
}
