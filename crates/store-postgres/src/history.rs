//! History queries: instance, type and system scopes, newest first by `seq`, with `_since`,
//! `_at` and a `seq` cursor, like the SQLite store's.
//!
//! Unlike SQLite's single writer, several PostgreSQL transactions draw `seq` values at once
//! and may commit out of order, and replicas' clocks differ: `last_updated` is monotonic per
//! resource (the writer makes it so) but only nearly monotonic across resources. So time
//! bounds are not turned into `seq` bounds here; they are plain `last_updated` filters,
//! which the BRIN index on `last_updated` serves when they are selective and the `seq`
//! indexes (newest first, stopping at the page size) when they are not. A consequence of
//! the same concurrency: a version that commits after a client read a history page may
//! have a `seq` below that page's cursor; it shows in the next history read, not in the
//! ongoing paging.

use caduceus_store::{HistoryQuery, HistoryScope, StoreError, StoredVersion};
use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::rows::{decode_all, query, version_columns};

/// Runs a history query.
pub(crate) async fn history(
    client: &Client,
    tenant: i64,
    q: &HistoryQuery,
) -> Result<Vec<StoredVersion>, StoreError> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let mut sql = String::from(concat!(
        "SELECT ",
        version_columns!(),
        " FROM versions v WHERE v.tenant = $1"
    ));
    let mut args: Vec<&(dyn ToSql + Sync)> = vec![&tenant];
    match &q.scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            args.push(t);
            sql.push_str(&format!(" AND v.type = ${}", args.len()));
        }
        HistoryScope::Instance(t, id) => {
            args.push(t);
            sql.push_str(&format!(" AND v.type = ${}", args.len()));
            args.push(id);
            sql.push_str(&format!(" AND v.id = ${}", args.len()));
        }
    }
    if let Some(before) = &q.before_seq {
        args.push(before);
        sql.push_str(&format!(" AND v.seq < ${}", args.len()));
    }
    if let Some(since) = &q.since {
        args.push(since);
        sql.push_str(&format!(" AND v.last_updated >= ${}", args.len()));
    }
    if let Some((start, end)) = &q.at {
        // Current at some point in [start, end): written before `end`, and not replaced
        // (the next version, gap-free so `version + 1`) at or before `start`.
        args.push(end);
        let end_n = args.len();
        args.push(start);
        let start_n = args.len();
        sql.push_str(&format!(
            " AND v.last_updated < ${end_n} AND NOT EXISTS (\
               SELECT 1 FROM versions n WHERE n.tenant = v.tenant AND n.type = v.type \
               AND n.id = v.id AND n.version = v.version + 1 AND n.last_updated <= ${start_n})"
        ));
    }
    args.push(&limit);
    // Within one resource, version order is seq order (a version is written only after the
    // previous one committed); ordering an instance by version walks its unique index.
    let order = match q.scope {
        HistoryScope::Instance(..) => "v.version",
        _ => "v.seq",
    };
    sql.push_str(&format!(" ORDER BY {order} DESC LIMIT ${}", args.len()));
    let rows = query(client, &sql, &args).await?;
    decode_all(&rows)
}
