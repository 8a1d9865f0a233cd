//! A write's search index rows, in bulk: every `idx_*` row (and `contained` entry) of all
//! the operations of one write is gathered into column arrays ([`IndexBatch`]) and inserted
//! by one statement ([`INSERT`]: one `INSERT … SELECT … FROM unnest(…)` per table, as
//! data-modifying CTEs of a single statement); the rows they replace are removed by one
//! other ([`DELETE`]). A write costs two round trips for its index, whatever its size:
//! per-row statements made imports round-trip bound.
//!
//! Which table and columns a value goes to is not decided here: `caduceus-store-sql`'s
//! `columns` module is the one mapping both stores write through (and the search SQL
//! reads), incl. composite positions, contained keys (`ContainerType/containerId#localId`)
//! and local references stored resolved. This module only adds PostgreSQL's column types
//! ([`pg_type`]: µs instants are `bigint`, numbers `double precision`, the rest `text`) and
//! the batching. A contained resource's local id given twice keeps its first rows, as in
//! SQLite (`INSERT OR IGNORE`).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use caduceus_store::StoreError;
use caduceus_store::index::{ContainedIndex, IndexRow};
use caduceus_store_sql::SqlValue;
use caduceus_store_sql::columns::{self, TABLES, Table, contained_key};
use tokio_postgres::types::ToSql;

/// PostgreSQL's type of a value column of an index table (schema migration 1).
pub(crate) fn pg_type(table: &str, column: &str) -> &'static str {
    let float = |c: &str| {
        ["value", "low", "high", "canonical_value", "canon_value"]
            .iter()
            .any(|p| c == *p || c.strip_prefix(p).is_some_and(|k| k.starts_with('_')))
    };
    match (table, column) {
        ("idx_date", _) => "int8",
        ("idx_number" | "idx_quantity" | "idx_composite", c) if float(c) => "float8",
        _ => "text",
    }
}

/// One column of values, typed as its table column is.
enum Column {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
}

impl Column {
    fn of_type(pg_type: &str) -> Column {
        match pg_type {
            "int8" => Column::Int(Vec::new()),
            "float8" => Column::Float(Vec::new()),
            _ => Column::Text(Vec::new()),
        }
    }

    /// Appends a value; `Err` when the shared mapping gave a value this column cannot hold.
    #[allow(clippy::cast_precision_loss)]
    fn push(&mut self, v: SqlValue) -> Result<(), ()> {
        match (self, v) {
            (Column::Text(c), SqlValue::Text(t)) => c.push(Some(t)),
            (Column::Text(c), SqlValue::Null) => c.push(None),
            (Column::Int(c), SqlValue::Int(n)) => c.push(Some(n)),
            (Column::Int(c), SqlValue::Null) => c.push(None),
            (Column::Float(c), SqlValue::Real(x)) => c.push(Some(x)),
            // A composite's date component: µs in a double, exact up to 2^53 µs (the
            // year 287,396); the open ends (the i64 extremes) stay beyond every instant.
            (Column::Float(c), SqlValue::Int(n)) => c.push(Some(n as f64)),
            (Column::Float(c), SqlValue::Null) => c.push(None),
            _ => return Err(()),
        }
        Ok(())
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Text(c) => c,
            Column::Int(c) => c,
            Column::Float(c) => c,
        }
    }
}

/// The rows of one index table.
struct TableRows<'a> {
    table: &'static Table,
    types: Vec<Cow<'a, str>>,
    ids: Vec<Cow<'a, str>>,
    params: Vec<&'static str>,
    columns: Vec<Column>,
}

impl TableRows<'_> {
    fn new(table: &'static Table) -> Self {
        TableRows {
            table,
            types: Vec::new(),
            ids: Vec::new(),
            params: Vec::new(),
            columns: table
                .columns
                .iter()
                .map(|c| Column::of_type(pg_type(table.name, c)))
                .collect(),
        }
    }
}

/// The index rows of one write, as column arrays per table, plus the `contained` entries.
pub(crate) struct IndexBatch<'a> {
    tables: Vec<TableRows<'a>>,
    /// `contained`: type, id (the key), container type, container id.
    contained: [Vec<Cow<'a, str>>; 4],
    rows: usize,
}

impl Default for IndexBatch<'_> {
    fn default() -> Self {
        IndexBatch {
            tables: TABLES.iter().map(|t| TableRows::new(t)).collect(),
            contained: Default::default(),
            rows: 0,
        }
    }
}

impl<'a> IndexBatch<'a> {
    /// True when there is nothing to insert.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds the rows of a top-level resource and of its contained resources.
    pub(crate) fn add_resource(
        &mut self,
        resource_type: &'a str,
        id: &'a str,
        rows: &'a [IndexRow],
        contained: &'a [ContainedIndex],
    ) -> Result<(), StoreError> {
        let container = (resource_type, id);
        self.add_rows(
            Cow::Borrowed(resource_type),
            Cow::Borrowed(id),
            rows,
            container,
        )?;
        let mut seen = HashSet::with_capacity(contained.len());
        for c in contained {
            // A local id given twice keeps its first rows (SQLite's INSERT OR IGNORE).
            if !seen.insert(c.id.as_str()) {
                continue;
            }
            let key = contained_key(resource_type, id, &c.id);
            let [types, ids, container_types, container_ids] = &mut self.contained;
            types.push(Cow::Borrowed(&c.resource_type));
            ids.push(Cow::Owned(key.clone()));
            container_types.push(Cow::Borrowed(resource_type));
            container_ids.push(Cow::Borrowed(id));
            self.rows += 1;
            self.add_rows(
                Cow::Borrowed(&c.resource_type),
                Cow::Owned(key),
                &c.rows,
                container,
            )?;
        }
        Ok(())
    }

    /// Adds rows keyed (`t`, `i`) whose local references resolve within `container`.
    fn add_rows(
        &mut self,
        t: Cow<'a, str>,
        i: Cow<'a, str>,
        rows: &'a [IndexRow],
        container: (&str, &str),
    ) -> Result<(), StoreError> {
        for row in rows {
            // A row no table holds (a nested composite) is skipped, as in SQLite.
            let Some((table, values)) = columns::row_values(row, container) else {
                continue;
            };
            let Some(target) = self.tables.iter_mut().find(|r| r.table.name == table.name) else {
                continue;
            };
            if values.len() != target.columns.len() {
                return Err(mismatch(table.name));
            }
            for (column, value) in target.columns.iter_mut().zip(values) {
                column.push(value).map_err(|()| mismatch(table.name))?;
            }
            target.types.push(t.clone());
            target.ids.push(i.clone());
            target.params.push(row.param);
            self.rows += 1;
        }
        Ok(())
    }

    /// The parameters of [`INSERT`], `tenant` first.
    pub(crate) fn params<'s>(&'s self, tenant: &'s i64) -> Vec<&'s (dyn ToSql + Sync)> {
        let mut p: Vec<&(dyn ToSql + Sync)> = vec![tenant];
        for t in &self.tables {
            p.extend([&t.types as &(dyn ToSql + Sync), &t.ids, &t.params]);
            p.extend(t.columns.iter().map(Column::as_sql));
        }
        p.extend(self.contained.iter().map(|c| c as &(dyn ToSql + Sync)));
        p
    }
}

fn mismatch(table: &str) -> StoreError {
    StoreError::Internal(format!("index rows of {table} do not fit its columns"))
}

/// Inserts an [`IndexBatch`] (parameters from [`IndexBatch::params`]): one statement, one
/// data-modifying CTE per table, rows as the arrays hold them.
pub(crate) static INSERT: LazyLock<String> = LazyLock::new(|| {
    let mut n = 1; // $1 is the tenant
    let mut arg = |ty: &str| {
        n += 1;
        format!("${n}::{ty}[]")
    };
    let mut ctes = Vec::new();
    for (k, t) in TABLES.iter().enumerate() {
        let mut cols = vec!["type", "id", "param"];
        cols.extend(t.columns.iter().copied());
        let args: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(c, name)| arg(if c < 3 { "text" } else { pg_type(t.name, name) }))
            .collect();
        ctes.push(format!(
            "i{k} AS (INSERT INTO {} (tenant, {}) SELECT $1, * FROM unnest({}))",
            t.name,
            cols.join(", "),
            args.join(", ")
        ));
    }
    let args: Vec<String> = (0..4).map(|_| arg("text")).collect();
    ctes.push(format!(
        "k AS (INSERT INTO contained (tenant, type, id, container_type, container_id) \
         SELECT $1, * FROM unnest({}))",
        args.join(", ")
    ));
    format!("WITH {} SELECT 1", ctes.join(",\n"))
});

/// Removes the index rows of the resources (`$2` types, `$3` ids; `$1` tenant) and of their
/// contained resources, and their `contained` entries: one statement.
pub(crate) static DELETE: LazyLock<String> = LazyLock::new(|| {
    let mut ctes = vec![
        "keys AS (SELECT * FROM unnest($2::text[], $3::text[]) AS k(type, id))".to_owned(),
        "gone AS (DELETE FROM contained c USING keys k \
         WHERE c.tenant = $1 AND c.container_type = k.type AND c.container_id = k.id \
         RETURNING c.type, c.id)"
            .to_owned(),
        "a AS MATERIALIZED (SELECT type, id FROM keys UNION ALL SELECT type, id FROM gone)"
            .to_owned(),
    ];
    for (k, t) in TABLES.iter().enumerate() {
        ctes.push(format!(
            "d{k} AS (DELETE FROM {} x USING a \
             WHERE x.tenant = $1 AND x.type = a.type AND x.id = a.id)",
            t.name
        ));
    }
    format!("WITH {} SELECT 1", ctes.join(",\n"))
});

#[cfg(all(test, feature = "testing"))]
pub(crate) mod tests {
    use super::*;

    /// [`pg_type`] agrees with the schema for every value column of the shared mapping.
    #[tokio::test]
    async fn column_types_match_the_schema() {
        let Some(db) = crate::testing::fresh_database() else {
            return;
        };
        crate::migrate(db.url()).await.expect("migrate");
        let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        for t in TABLES {
            for c in t.columns {
                let row = client
                    .query_one(
                        "SELECT udt_name::text FROM information_schema.columns \
                         WHERE table_name = $1 AND column_name = $2",
                        &[&t.name, c],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{}.{c}: {e}", t.name));
                let udt: String = row.get(0);
                assert_eq!(udt, pg_type(t.name, c), "{}.{c}", t.name);
            }
        }
    }

    /// The plan of a generic (prepared, parameter-blind) statement over a store with data.
    pub(crate) async fn generic_plan(
        client: &tokio_postgres::Client,
        sql: &str,
        types: &str,
        args: &str,
    ) -> String {
        client
            .batch_execute(&format!(
                "SET plan_cache_mode = force_generic_plan; PREPARE s({types}) AS {sql}"
            ))
            .await
            .expect("prepare");
        let mut plan = String::new();
        for m in client
            .simple_query(&format!("EXPLAIN EXECUTE s({args})"))
            .await
            .expect("explain")
        {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                plan.push_str(r.get(0).unwrap_or(""));
                plan.push('\n');
            }
        }
        client
            .batch_execute("DEALLOCATE s")
            .await
            .expect("deallocate");
        plan
    }

    /// Replacing a resource's rows seeks them through the per-resource indexes, whatever
    /// the size of the tables (a scan made updates 7 times slower than creates at 10,000
    /// resources).
    #[tokio::test]
    async fn replacing_rows_seeks_them() {
        let Some(db) = crate::testing::fresh_database() else {
            return;
        };
        crate::migrate(db.url()).await.expect("migrate");
        let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        let mut fill = String::new();
        for t in TABLES {
            let cols: Vec<String> = t
                .columns
                .iter()
                .map(|c| match pg_type(t.name, c) {
                    "text" => "'x'".to_owned(),
                    _ => "1".to_owned(),
                })
                .collect();
            fill.push_str(&format!(
                "INSERT INTO {} (tenant, type, id, param, {}) \
                 SELECT 0, 'Observation', 'o' || n, 'code', {} FROM generate_series(1, 20000) n;",
                t.name,
                t.columns.join(", "),
                cols.join(", ")
            ));
        }
        fill.push_str(
            "INSERT INTO contained SELECT 0, 'Medication', 'Observation/o' || n || '#m', \
             'Observation', 'o' || n FROM generate_series(1, 20000) n; ANALYZE;",
        );
        client.batch_execute(&fill).await.expect("fill");
        let plan = generic_plan(
            &client,
            &DELETE,
            "bigint, text[], text[]",
            "0, ARRAY['Observation', 'Observation'], ARRAY['o1', 'o2']",
        )
        .await;
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }
}
