//! Search on PostgreSQL: the shared search SQL (`caduceus_store_sql`), rendered in
//! PostgreSQL's dialect (`caduceus_store_sql::postgres::render`) and run on a pooled
//! connection. This module is PostgreSQL's `SearchDb`: it binds the shared SQL's values to
//! whatever types PostgreSQL inferred for their placeholders (`bind`), decodes rows, and
//! leaves planning to PostgreSQL's own cost-based planner (its statistics come from
//! autovacuum's ANALYZE), so the WHERE clause is the unplanned `build_filter`.
//!
//! A page runs in one `REPEATABLE READ READ ONLY` transaction, so its total, matches and
//! includes come from one snapshot, as on SQLite. Search statements vary with every query
//! shape, so they are not kept prepared per connection: each is prepared unnamed and run.

mod bind;

use caduceus_search::SearchQuery;
use caduceus_store::search::SearchPage;
use caduceus_store::{StoreError, StoredVersion};
use caduceus_store_sql::{Dialect, Frag, Row, SearchDb, SqlValue};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{IsolationLevel, Transaction};

use crate::PostgresStore;
use crate::error::{map_pg, map_pool};
use crate::rows::{decode, version_columns};
use bind::Bind;

/// One page of a search (see `caduceus_store::Store::search`).
pub(crate) async fn run(
    store: &PostgresStore,
    query: &SearchQuery,
    cursor: Option<&str>,
) -> Result<SearchPage, StoreError> {
    let mut client = store.pool().get().await.map_err(|e| map_pool(&e))?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| map_pg(&e))?;
    let now = caduceus_model::ids::now_micros();
    let db = Db {
        tx: &tx,
        tenant: store.tenant(),
    };
    let page = caduceus_store_sql::execute(&db, store.tenant(), query, cursor, now).await?;
    // Read only: ending it either way releases the snapshot; commit is the cheap path.
    tx.commit().await.map_err(|e| map_pg(&e))?;
    Ok(page)
}

/// A read-only transaction as the shared search's database.
struct Db<'t> {
    tx: &'t Transaction<'t>,
    tenant: i64,
}

impl Db<'_> {
    async fn query(&self, f: Frag) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let sql = caduceus_store_sql::postgres::render(&f.sql);
        let binds: Vec<Bind<'_>> = f.args.iter().map(Bind).collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        self.tx
            .query(sql.as_str(), &params)
            .await
            .map_err(|e| map_pg(&e))
    }
}

impl SearchDb for Db<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn rows(&self, f: Frag, extra: usize) -> Result<Vec<Row>, StoreError> {
        let rows = self.query(f).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let v = decode(row)?;
            let keys = if extra == 0 {
                vec![
                    SqlValue::Text(v.resource_type.clone()),
                    SqlValue::Text(v.id.clone()),
                ]
            } else {
                (0..extra)
                    .map(|k| column_value(row, 8 + k))
                    .collect::<Result<Vec<_>, _>>()?
            };
            out.push((v, keys));
        }
        Ok(out)
    }

    async fn count(&self, f: Frag) -> Result<u64, StoreError> {
        let rows = self.query(f).await?;
        crate::rows::first_count(&rows)
    }

    async fn keys(&self, f: Frag) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self.query(f).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(|e| map_pg(&e))?,
                    r.try_get(1).map_err(|e| map_pg(&e))?,
                ))
            })
            .collect()
    }

    async fn read_current(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let rows = self
            .tx
            .query(
                concat!(
                    "SELECT ",
                    version_columns!(),
                    " FROM resources r JOIN versions v ON v.tenant = r.tenant AND v.seq = r.seq \
                     WHERE r.tenant = $1 AND r.type = $2 AND r.id = $3"
                ),
                &[&self.tenant, &resource_type, &id],
            )
            .await
            .map_err(|e| map_pg(&e))?;
        rows.first().map(decode).transpose()
    }
}

/// A keyset column of a page row, whatever its SQL type.
fn column_value(row: &tokio_postgres::Row, i: usize) -> Result<SqlValue, StoreError> {
    let err = |e: tokio_postgres::Error| map_pg(&e);
    let ty = row
        .columns()
        .get(i)
        .map(|c| c.type_().clone())
        .ok_or_else(|| StoreError::Internal("search keyset width".into()))?;
    Ok(match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(err)?.into(),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(err)?
            .map(i64::from)
            .into(),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(err)?
            .map(i64::from)
            .into(),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map_err(err)?.into(),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map_err(err)?
            .map(f64::from)
            .into(),
        _ => row.try_get::<_, Option<String>>(i).map_err(err)?.into(),
    })
}
