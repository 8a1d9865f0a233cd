//! Search as SQL, shared by the SQLite and PostgreSQL stores: a parsed
//! `caduceus_search::SearchQuery` becomes SQL over the `idx_*` tables, and one page of it
//! is run through a store's [`SearchDb`].
//!
//! The query is parsed, typed and resolved before it gets here, so this crate only
//! translates: every value is a bound parameter ([`Frag`]), never SQL text. One `SELECT`
//! over `resources r` (current, not deleted) finds a page of matches:
//! - `filter`: the WHERE clause: per criterion an `r.id IN (set)` whose set comes from the
//!   index tables through their lookup indexes (chains and `_has` nest sets), plus the
//!   compartment;
//! - `values`: each parameter type's comparison of a searched value with an indexed one
//!   (prefixes on ranges, string normalisation, token and reference forms, units);
//! - `sort`: `_sort` values and the keyset condition; `cursor`: the opaque cursor;
//! - `include`: `_include`/`_revinclude` (`:iterate`) for the page's matches;
//! - `composite`: composite parameters and token `:of-type`, over `idx_composite`;
//! - `contained`: `_contained=true|both` and `_containedType`, over the contained resources'
//!   own index rows, keyset-paged like the rest;
//! - `columns`: how index rows are laid out in the tables (both stores write through it).
//!
//! Paging is keyset: without `_sort` the order is (type, id), the primary key of
//! `resources`, so a page is an index range; with `_sort` the matches with their sort values
//! are materialised and ordered. Each page fetches `count + 1` rows to know whether another
//! page follows. `_total=accurate|estimate` and `_summary=count` add a `count(*)` of the same
//! filter.
//!
//! **One SQL, two databases.** The builders write SQLite's dialect, kept to what PostgreSQL
//! also accepts (`TRUE`/`FALSE`, row values, `AS MATERIALIZED`, named subqueries), and
//! [`postgres::render`] makes the few remaining differences (numbered placeholders, `instr`,
//! SQLite's `+column` index hints, JSON array reading) PostgreSQL's, once per statement.
//! Index hints (`INDEXED BY`) are asked of the [`SearchDb`]'s [`Dialect`]. The orchestration
//! ([`execute`]) is async so PostgreSQL's driver can await; SQLite's [`SearchDb`] answers
//! at once and runs it with [`run_ready`].
//!
//! Not supported (`StoreError::Unsupported`, naming the feature, never a value): `near`,
//! `_text`, `_content`, `_filter` (special parameters), and `_list` unless the engine
//! resolved it to an `_id` criterion; token `:in`, `:not-in`, `:above`, `:below` whose value
//! the engine has not resolved to a `TokenSet` of codes; reference `:above`/`:below`;
//! `_sort` together with `_contained=true|both`; more than 400 OR values in one criterion
//! (SQLite's compound-select limit; a `TokenSet` is one value however many codes it holds).
#![deny(missing_docs)]
// The traits' futures are awaited only where the concrete store is known (its futures'
// auto traits show through there), never boxed or spawned generically.
#![allow(async_fn_in_trait)]

pub mod columns;
mod composite;
mod contained;
mod cursor;
mod filter;
pub mod frag;
mod include;
pub mod postgres;
mod sort;
mod values;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use caduceus_search::{Contained, ContainedType, SearchQuery, Summary, Total};
use caduceus_store::search::SearchPage;
use caduceus_store::{StoreError, StoredVersion};

pub use contained::{contained_entry, page_contained_sql, page_containers_sql};
pub use filter::{
    Estimate, Scope, build as build_filter, build_planned as build_planned_filter,
    build_scoped as build_scoped_filter,
};
pub use frag::{Frag, SqlValue};
pub use include::{MAX_INCLUDED, MAX_ITERATIONS};
use sort::Col;
pub use sort::value_expr as sort_value_expr;

/// The columns a store decodes into a [`StoredVersion`], in order, from `versions v`.
pub const VERSION_COLUMNS: &str =
    "v.seq, v.version, v.last_updated, v.method, v.body, v.body_codec, v.type, v.id";

/// Which database the SQL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: the builders' own dialect, with index hints.
    Sqlite,
    /// PostgreSQL: rendered by [`postgres::render`].
    Postgres,
}

/// A match and its keyset values.
pub type Row = (StoredVersion, Vec<SqlValue>);

/// What a store runs the search SQL with: one snapshot of its database.
pub trait SearchDb {
    /// Its dialect.
    fn dialect(&self) -> Dialect;
    /// The rows of `f`, which selects [`VERSION_COLUMNS`] and then `extra` keyset columns;
    /// with `extra == 0` the keyset is the row's type and id.
    async fn rows(&self, f: Frag, extra: usize) -> Result<Vec<Row>, StoreError>;
    /// The single integer `f` selects (a `count(*)`).
    async fn count(&self, f: Frag) -> Result<u64, StoreError>;
    /// The (type, id) pairs `f` selects.
    async fn keys(&self, f: Frag) -> Result<Vec<(String, String)>, StoreError>;
    /// The current versions of those of `keys` ((type, id) pairs) that exist and are not
    /// deleted, in any order.
    async fn read_live(&self, keys: &[(String, String)]) -> Result<Vec<StoredVersion>, StoreError>;
    /// The WHERE clause of a top-level search (`filter::build`); a store whose planner
    /// needs help may plan it (`filter::build_planned`).
    async fn filter(&self, tenant: i64, q: &SearchQuery, now: i64) -> Result<Frag, StoreError> {
        filter::build(tenant, q, now)
    }
}

/// Runs a future that never waits (a synchronous [`SearchDb`]'s) to its end on this thread.
pub fn run_ready<T>(fut: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => Err(StoreError::Internal(
            "a synchronous search was not ready".into(),
        )),
    }
}

/// One page of a search. `now` (µs) anchors date `ap`.
pub async fn execute<D: SearchDb>(
    db: &D,
    tenant: i64,
    q: &SearchQuery,
    cursor: Option<&str>,
    now: i64,
) -> Result<SearchPage, StoreError> {
    if matches!(q.contained, Some(Contained::True | Contained::Both)) {
        return execute_contained(db, tenant, q, cursor, now).await;
    }
    let filter = db.filter(tenant, q, now).await?;
    let total = if wants_total(q) {
        Some(count(db, &filter).await?)
    } else {
        None
    };
    if q.summary == Some(Summary::Count) || q.count == 0 {
        return Ok(SearchPage {
            total,
            ..SearchPage::default()
        });
    }
    let hash = cursor::query_hash(&cursor_scope(q));
    let limit = usize::try_from(q.count).unwrap_or(usize::MAX);
    let (rows, ncols) = if q.sort.is_empty() {
        let after = cursor.map(|c| cursor::decode(c, hash, 2)).transpose()?;
        (
            db.rows(page_by_id(filter, after.as_deref(), limit)?, 0)
                .await?,
            2,
        )
    } else {
        let ncols = q.sort.len() * 2 + 2;
        let after = cursor.map(|c| cursor::decode(c, hash, ncols)).transpose()?;
        let (f, cols) = page_sorted(q, filter, after.as_deref(), limit)?;
        (db.rows(f, cols).await?, ncols)
    };
    finish_page(db, tenant, q, rows, (limit, hash, ncols), total).await
}

/// One page of a `_contained=true|both` search (see `contained`), in (type, id) order.
async fn execute_contained<D: SearchDb>(
    db: &D,
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
    let inner = filter::build_scoped(tenant, q, now, filter::Scope::Contained)?;
    let total = if wants_total(q) {
        Some(if as_contained {
            // Contained keys are never top-level ids: the two sets are disjoint.
            let top_n = match &top {
                Some(f) => count(db, f).await?,
                None => 0,
            };
            top_n + contained::count_contained(db, inner.clone()).await?
        } else {
            contained::count_containers(db, inner.clone(), top.clone()).await?
        })
    } else {
        None
    };
    if q.summary == Some(Summary::Count) || q.count == 0 {
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
        contained::page_contained(db, inner, after, limit).await?
    } else {
        contained::page_containers(db, tenant, inner, after, limit).await?
    };
    if let Some(top) = top {
        let top_rows = db.rows(page_by_id(top, after, limit)?, 0).await?;
        rows = contained::merge(top_rows, rows, limit);
    }
    finish_page(db, tenant, q, rows, (limit, hash, 2), total).await
}

/// True when the page carries the number of all matches (`_total`, `_summary=count`).
fn wants_total(q: &SearchQuery) -> bool {
    q.summary == Some(Summary::Count) || matches!(q.total, Some(Total::Accurate | Total::Estimate))
}

/// Ends a page: keeps `limit` of the `limit + 1` rows fetched, makes the cursor of the next
/// page from the last kept row's `ncols` keyset values (bound to the query's `hash`), and
/// adds the includes.
async fn finish_page<D: SearchDb>(
    db: &D,
    tenant: i64,
    q: &SearchQuery,
    mut rows: Vec<Row>,
    (limit, hash, ncols): (usize, u64, usize),
    total: Option<u64>,
) -> Result<SearchPage, StoreError> {
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
    let (included, included_truncated) = include::included(db, tenant, q, &matches).await?;
    Ok(SearchPage {
        matches,
        included,
        included_truncated,
        next_cursor,
        total,
    })
}

/// Number of matches.
async fn count<D: SearchDb>(db: &D, filter: &Frag) -> Result<u64, StoreError> {
    let mut f = Frag::new();
    f.push("SELECT count(*) FROM resources r WHERE ")
        .append(filter.clone());
    db.count(f).await
}

/// A page in (type, id) order: a range of the `resources` primary key. The page's rows
/// are chosen first and only they are joined to their versions: a planner that sorts the
/// matches (PostgreSQL, for a `_has` of 3,000 matches) otherwise fetched every match's
/// version to keep 50 (92 ms instead of 60).
pub fn page_by_id(
    filter: Frag,
    after: Option<&[SqlValue]>,
    limit: usize,
) -> Result<Frag, StoreError> {
    let mut f = Frag::new();
    f.push("SELECT ")
        .push(VERSION_COLUMNS)
        .push(" FROM (SELECT r.tenant, r.seq, r.type, r.id FROM resources r WHERE ")
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
        .bind(limit_arg(limit))
        .push(") p JOIN versions v ON v.tenant = p.tenant AND v.seq = p.seq ORDER BY p.type, p.id");
    Ok(f)
}

/// A page in `_sort` order: the matches with their sort values, materialised, then the
/// keyset condition, order and limit. Returns the query and its number of keyset columns.
fn page_sorted(
    q: &SearchQuery,
    filter: Frag,
    after: Option<&[SqlValue]>,
    limit: usize,
) -> Result<(Frag, usize), StoreError> {
    let mut f = Frag::new();
    f.push("WITH m AS MATERIALIZED (SELECT r.tenant AS n, r.seq AS s, r.type AS t, r.id AS i");
    let mut cols: Vec<Col> = Vec::new();
    let mut flags = String::new();
    for (n, key) in q.sort.iter().enumerate() {
        let (expr, absent) = sort::value_expr(key)?;
        f.push(", ").append(expr).push(&format!(" AS k{n}"));
        // Absent values sort last either way: the flag orders them, and the value column
        // stays non-NULL (a constant of the key's own type) so keyset comparisons are exact.
        flags.push_str(&format!(
            ", CASE WHEN k{n} IS NULL THEN 1 ELSE 0 END AS f{n}, coalesce(k{n}, {absent}) AS v{n}"
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
    f.push("k AS (SELECT n, s, t, i")
        .push(&flags)
        .push(" FROM m) SELECT ");
    f.push(VERSION_COLUMNS);
    for c in &cols {
        f.push(", ").push(&c.name);
    }
    f.push(" FROM k JOIN versions v ON v.tenant = k.n AND v.seq = k.s");
    if let Some(after) = after {
        f.push(" WHERE ").append(sort::after(&cols, after));
    }
    f.push(" ORDER BY ")
        .push(&sort::order_by(&cols))
        .push(" LIMIT ")
        .bind(limit_arg(limit));
    Ok((f, cols.len()))
}

/// `LIMIT` of a page: one row more than it shows, to know whether another follows.
pub(crate) fn limit_arg(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
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

/// `SELECT count(*)` of the members of `set`, counting at most `cap`: how a store estimates
/// a criterion's size for `filter::build_planned`.
pub fn estimate_sql(set: &Frag, cap: u64) -> Frag {
    let mut f = Frag::new();
    f.push("SELECT count(*) FROM (")
        .append(set.clone())
        .push(" LIMIT ")
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .push(") AS e");
    f
}
