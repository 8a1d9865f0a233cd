//! Search execution: a parsed `caduceus_search::SearchQuery` translated to SQL over the
//! `idx_*` tables (migration 2) and run on the scan pool (`spawn_blocking`), like history.
//!
//! The query is parsed, typed and resolved before it gets here, so this module only
//! translates: every value is a bound parameter (`frag`), never SQL text. One `SELECT` over
//! `resources r` (current, not deleted) finds a page of matches:
//! - `filter`: the WHERE clause: per criterion an `r.id IN (set)` whose set comes from the
//!   index tables through their lookup indexes (chains and `_has` nest sets), plus the
//!   compartment;
//! - `values`: each parameter type's comparison of a searched value with an indexed one
//!   (prefixes on ranges, string normalisation, token and reference forms, units);
//! - `sort`: `_sort` values and the keyset condition; `cursor`: the opaque cursor;
//! - `include`: `_include`/`_revinclude` (`:iterate`) for the page's matches;
//! - `composite`: composite parameters and token `:of-type`, over `idx_composite`;
//! - `contained`: `_contained=true|both` and `_containedType`, over the contained resources'
//!   own index rows (migration 5), keyset-paged like the rest.
//!
//! Paging is keyset: without `_sort` the order is (type, id), the primary key of
//! `resources`, so a page is an index range; with `_sort` the matches with their sort values
//! are materialised and ordered. Each page fetches `count + 1` rows to know whether another
//! page follows. `_total=accurate|estimate` and `_summary=count` add a `count(*)` of the same
//! filter.
//!
//! Each page runs in one read transaction, so its total, matches and includes come from the
//! same snapshot.
//!
//! Not supported (`StoreError::Unsupported`, naming the feature, never a value): `near`,
//! `_text`, `_content`, `_filter` (special parameters), and `_list` unless the engine
//! resolved it to an `_id` criterion (`caduceus_engine`'s `list` module); token `:in`, `:not-in`,
//! `:above`, `:below` whose value the engine has not resolved to a `TokenSet` of codes (see
//! `caduceus_engine::terminology`); reference `:above`/`:below`; `_sort` together with
//! `_contained=true|both`; more than 400 OR values in one criterion (SQLite's
//! compound-select limit; a `TokenSet` is one value however many codes it holds).

mod composite;
mod contained;
#[cfg(test)]
mod contained_plan_tests;
mod cursor;
mod filter;
mod frag;
mod include;
#[cfg(test)]
mod plan_tests;
mod sort;
#[cfg(test)]
mod token_set_plan_tests;
mod values;

use caduceus_search::{Contained, ContainedType, SearchQuery, Summary, Total};
use caduceus_store::StoreError;
use caduceus_store::StoredVersion;
use caduceus_store::search::SearchPage;
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::SqliteStore;
use crate::error::map_sqlite;
use crate::rows::{decode, version_columns};
use filter::Scope;
use frag::Frag;
use sort::Col;

/// Runs one page of a search.
pub(crate) async fn run(
    store: &SqliteStore,
    query: &SearchQuery,
    cursor: Option<&str>,
) -> Result<SearchPage, StoreError> {
    let query = query.clone();
    let cursor = cursor.map(str::to_owned);
    store
        .blocking_read(move |conn, tenant| {
            let now = caduceus_model::ids::now_micros();
            // One read transaction: the total, the page and its includes all see the same
            // snapshot, whatever commits meanwhile. It only reads, so it is dropped (rolled
            // back) rather than committed.
            let snapshot = conn.unchecked_transaction().map_err(map_sqlite)?;
            execute(&snapshot, tenant, &query, cursor.as_deref(), now)
        })
        .await
}

/// One page of a search on a read connection. `now` (µs) anchors date `ap`.
pub(crate) fn execute(
    conn: &Connection,
    tenant: i64,
    q: &SearchQuery,
    cursor: Option<&str>,
    now: i64,
) -> Result<SearchPage, StoreError> {
    if matches!(q.contained, Some(Contained::True | Contained::Both)) {
        return execute_contained(conn, tenant, q, cursor, now);
    }
    let filter = filter::build_planned(tenant, q, now, &|set, cap| estimate(conn, set, cap))?;
    let count_only = q.summary == Some(Summary::Count);
    let total = if count_only || matches!(q.total, Some(Total::Accurate | Total::Estimate)) {
        Some(count(conn, &filter)?)
    } else {
        None
    };
    if count_only || q.count == 0 {
        return Ok(SearchPage {
            total,
            ..SearchPage::default()
        });
    }
    let hash = cursor::query_hash(&cursor_scope(q));
    let limit = usize::try_from(q.count).unwrap_or(usize::MAX);
    let (mut rows, ncols) = if q.sort.is_empty() {
        let after = cursor.map(|c| cursor::decode(c, hash, 2)).transpose()?;
        (page_by_id(conn, filter, after.as_deref(), limit)?, 2)
    } else {
        let ncols = q.sort.len() * 2 + 2;
        let after = cursor.map(|c| cursor::decode(c, hash, ncols)).transpose()?;
        (
            page_sorted(conn, q, filter, after.as_deref(), limit)?,
            ncols,
        )
    };
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        match rows.last() {
            Some((_, keys)) if keys.len() == ncols => Some(cursor::encode(hash, keys)),
            Some(_) => return Err(StoreError::Internal("search keyset width".into())),
            None => None,
        }
    } else {
        None
    };
    let matches: Vec<StoredVersion> = rows.into_iter().map(|(v, _)| v).collect();
    let (included, included_truncated) = include::included(conn, tenant, q, &matches)?;
    Ok(SearchPage {
        matches,
        included,
        included_truncated,
        next_cursor,
        total,
    })
}

/// One page of a `_contained=true|both` search (see `contained`), in (type, id) order.
fn execute_contained(
    conn: &Connection,
    tenant: i64,
    q: &SearchQuery,
    cursor: Option<&str>,
    now: i64,
) -> Result<SearchPage, StoreError> {
    if !q.sort.is_empty() {
        return Err(StoreError::Unsupported("_sort with _contained".into()));
    }
    let both = q.contained == Some(Contained::Both);
    let as_contained = q.contained_type == Some(ContainedType::Contained);
    let top = if both {
        Some(filter::build(tenant, q, now)?)
    } else {
        None
    };
    let inner = filter::build_scoped(tenant, q, now, Scope::Contained)?;
    let count_only = q.summary == Some(Summary::Count);
    let total = if count_only || matches!(q.total, Some(Total::Accurate | Total::Estimate)) {
        Some(if as_contained {
            // Contained keys are never top-level ids: the two sets are disjoint.
            let top_n = match &top {
                Some(f) => count(conn, f)?,
                None => 0,
            };
            top_n + contained::count_contained(conn, inner.clone())?
        } else {
            contained::count_containers(conn, inner.clone(), top.clone())?
        })
    } else {
        None
    };
    if count_only || q.count == 0 {
        return Ok(SearchPage {
            total,
            ..SearchPage::default()
        });
    }
    let hash = cursor::query_hash(&cursor_scope(q));
    let limit = usize::try_from(q.count).unwrap_or(usize::MAX);
    let after = cursor.map(|c| cursor::decode(c, hash, 2)).transpose()?;
    let after = after.as_deref();
    let mut rows = if as_contained {
        contained::page_contained(conn, inner, after, limit)?
    } else {
        contained::page_containers(conn, tenant, inner, after, limit)?
    };
    if let Some(top) = top {
        rows = contained::merge(page_by_id(conn, top, after, limit)?, rows, limit);
    }
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(_, keys)| cursor::encode(hash, keys))
    } else {
        None
    };
    let matches: Vec<StoredVersion> = rows.into_iter().map(|(v, _)| v).collect();
    let (included, included_truncated) = include::included(conn, tenant, q, &matches)?;
    Ok(SearchPage {
        matches,
        included,
        included_truncated,
        next_cursor,
        total,
    })
}

/// A match and its keyset values.
type Row = (StoredVersion, Vec<Value>);

/// Number of matches.
fn count(conn: &Connection, filter: &Frag) -> Result<u64, StoreError> {
    let sql = format!("SELECT count(*) FROM resources r WHERE {}", filter.sql);
    let n: i64 = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row(rusqlite::params_from_iter(filter.args.iter()), |r| r.get(0)))
        .map_err(map_sqlite)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A page in (type, id) order: a range of the `resources` primary key.
fn page_by_id(
    conn: &Connection,
    filter: Frag,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    let mut f = Frag::new();
    f.push(concat!(
        "SELECT ",
        version_columns!(),
        " FROM resources r JOIN versions v ON v.seq = r.seq WHERE "
    ))
    .append(filter);
    if let Some(after) = after {
        let (Some(t), Some(i)) = (after.first(), after.get(1)) else {
            return Err(StoreError::InvalidCursor);
        };
        f.push(" AND (r.type, r.id) > (")
            .bind(t.clone())
            .push(", ")
            .bind(i.clone())
            .push(")");
    }
    f.push(" ORDER BY r.type, r.id LIMIT ")
        .bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX));
    query_rows(conn, f, 0)
}

/// A page in `_sort` order: the matches with their sort values, materialised, then the
/// keyset condition, order and limit.
fn page_sorted(
    conn: &Connection,
    q: &SearchQuery,
    filter: Frag,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    let mut f = Frag::new();
    f.push("WITH m AS MATERIALIZED (SELECT r.seq AS s, r.type AS t, r.id AS i");
    let mut cols: Vec<Col> = Vec::new();
    let mut flags = String::new();
    for (n, key) in q.sort.iter().enumerate() {
        f.push(", ")
            .append(sort::value_expr(key)?)
            .push(&format!(" AS k{n}"));
        flags.push_str(&format!(
            ", (k{n} IS NULL) AS f{n}, coalesce(k{n}, 0) AS v{n}"
        ));
        cols.push(Col {
            name: format!("k.f{n}"),
            descending: false,
        });
        cols.push(Col {
            name: format!("k.v{n}"),
            descending: key.descending,
        });
    }
    cols.push(Col {
        name: "k.t".into(),
        descending: false,
    });
    cols.push(Col {
        name: "k.i".into(),
        descending: false,
    });
    f.push(" FROM resources r WHERE ")
        .append(filter)
        .push("), ");
    f.push("k AS (SELECT s, t, i")
        .push(&flags)
        .push(" FROM m) SELECT ");
    f.push(version_columns!());
    for c in &cols {
        f.push(", ").push(&c.name);
    }
    f.push(" FROM k JOIN versions v ON v.seq = k.s");
    if let Some(after) = after {
        f.push(" WHERE ").append(sort::after(&cols, after));
    }
    f.push(" ORDER BY ")
        .push(&sort::order_by(&cols))
        .push(" LIMIT ")
        .bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX));
    query_rows(conn, f, cols.len())
}

/// Runs a page query: version columns, then `extra` keyset columns (none: the keyset is
/// the row's type and id).
fn query_rows(conn: &Connection, f: Frag, extra: usize) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn.prepare_cached(&f.sql).map_err(map_sqlite)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(f.args))
        .map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_sqlite)? {
        let v = decode(row)?;
        let keys = if extra == 0 {
            vec![
                Value::Text(v.resource_type.clone()),
                Value::Text(v.id.clone()),
            ]
        } else {
            (0..extra)
                .map(|k| row.get::<_, Value>(8 + k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_sqlite)?
        };
        out.push((v, keys));
    }
    Ok(out)
}

/// What a cursor is bound to: the canonical query string, plus what it leaves out (the
/// searched types and the compartment, which come from the URL path). Without them a cursor
/// of `Patient?_count=2` would be accepted by `Observation?_count=2` and silently skip every
/// Observation before the Patient it points after.
fn cursor_scope(q: &SearchQuery) -> String {
    let compartment = q
        .compartment
        .as_ref()
        .map(|c| format!("{}/{}", c.compartment_type, c.id))
        .unwrap_or_default();
    format!(
        "{}|{}|{}",
        q.types.join(","),
        compartment,
        q.to_query_string()
    )
}

/// How many members `set` has, counting at most `cap` (see `filter::build_planned`).
fn estimate(conn: &Connection, set: &Frag, cap: u64) -> Result<u64, StoreError> {
    let mut f = Frag::new();
    f.push("SELECT count(*) FROM (")
        .append(set.clone())
        .push(" LIMIT ")
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .push(")");
    let mut stmt = conn.prepare_cached(&f.sql).map_err(map_sqlite)?;
    let n: i64 = stmt
        .query_row(rusqlite::params_from_iter(f.args), |r| r.get(0))
        .map_err(map_sqlite)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The WHERE clause of a query, for plan checks elsewhere in the crate (`stats`).
#[cfg(test)]
pub(crate) fn filter_for_tests(tenant: i64, q: &SearchQuery) -> Frag {
    filter::build(tenant, q, 0).expect("a supported search")
}
