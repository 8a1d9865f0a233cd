//! Search on SQLite: the shared search SQL (`caduceus_store_sql`) run on a scan connection
//! (`spawn_blocking`), like history. This module is SQLite's [`SearchDb`]: it runs each
//! statement, decodes rows, and plans the WHERE clause with capped estimates
//! (`build_planned_filter`), which SQLite's planner needs and PostgreSQL's does not.
//!
//! Each page runs in one read transaction, so its total, matches and includes come from the
//! same snapshot.

#[cfg(test)]
mod contained_plan_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod token_set_plan_tests;

use caduceus_search::SearchQuery;
use caduceus_store::StoreError;
use caduceus_store::StoredVersion;
use caduceus_store::search::SearchPage;
use caduceus_store_sql::{Dialect, Frag, Row, SearchDb, SqlValue};
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::SqliteStore;
use crate::error::map_sqlite;
use crate::rows::{decode, read_current};

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
            let db = Db {
                conn: &snapshot,
                tenant,
            };
            caduceus_store_sql::run_ready(caduceus_store_sql::execute(
                &db,
                tenant,
                &query,
                cursor.as_deref(),
                now,
            ))
        })
        .await
}

/// A read connection as the shared search's database.
struct Db<'c> {
    conn: &'c Connection,
    tenant: i64,
}

/// The value bound for a shared-SQL value.
pub(crate) fn to_sqlite(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Int(i) => Value::Integer(i),
        SqlValue::Real(r) => Value::Real(r),
        SqlValue::Text(t) => Value::Text(t),
    }
}

fn from_sqlite(v: Value) -> SqlValue {
    match v {
        Value::Null | Value::Blob(_) => SqlValue::Null,
        Value::Integer(i) => SqlValue::Int(i),
        Value::Real(r) => SqlValue::Real(r),
        Value::Text(t) => SqlValue::Text(t),
    }
}

fn params(f: Frag) -> impl rusqlite::Params {
    rusqlite::params_from_iter(f.args.into_iter().map(to_sqlite))
}

impl SearchDb for Db<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn rows(&self, f: Frag, extra: usize) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&f.sql).map_err(map_sqlite)?;
        let mut rows = stmt.query(params(f)).map_err(map_sqlite)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(map_sqlite)? {
            let v = decode(row)?;
            let keys = if extra == 0 {
                vec![
                    SqlValue::Text(v.resource_type.clone()),
                    SqlValue::Text(v.id.clone()),
                ]
            } else {
                (0..extra)
                    .map(|k| row.get::<_, Value>(8 + k).map(from_sqlite))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(map_sqlite)?
            };
            out.push((v, keys));
        }
        Ok(out)
    }

    async fn count(&self, f: Frag) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached(&f.sql)
            .and_then(|mut s| s.query_row(params(f), |r| r.get(0)))
            .map_err(map_sqlite)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn keys(&self, f: Frag) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&f.sql).map_err(map_sqlite)?;
        let rows = stmt
            .query_map(params(f), |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(map_sqlite)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(map_sqlite)
    }

    async fn read_live(&self, keys: &[(String, String)]) -> Result<Vec<StoredVersion>, StoreError> {
        // In-process point reads on one cached statement: a batch statement would gain
        // nothing here.
        let mut out = Vec::with_capacity(keys.len());
        for (t, id) in keys {
            if let Some(v) = read_current(self.conn, self.tenant, t, id)?
                && !v.is_deleted()
            {
                out.push(v);
            }
        }
        Ok(out)
    }

    async fn filter(&self, tenant: i64, q: &SearchQuery, now: i64) -> Result<Frag, StoreError> {
        caduceus_store_sql::build_planned_filter(tenant, q, now, &|set, cap| {
            self.count_now(caduceus_store_sql::estimate_sql(set, cap))
        })
    }
}

impl Db<'_> {
    /// [`SearchDb::count`], synchronously (the planner's estimates are a plain callback).
    fn count_now(&self, f: Frag) -> Result<u64, StoreError> {
        caduceus_store_sql::run_ready(self.count(f))
    }
}

/// The WHERE clause of a query, for plan checks elsewhere in the crate (`stats`).
#[cfg(test)]
pub(crate) fn filter_for_tests(tenant: i64, q: &SearchQuery) -> Frag {
    caduceus_store_sql::build_filter(tenant, q, 0).expect("a supported search")
}
