//! `Store::write`: a list of operations applied in one PostgreSQL transaction, with the
//! outcomes and errors of the SQLite store, correct when several replicas write at once.
//!
//! One attempt ([`attempt`]) is a READ COMMITTED transaction of a fixed handful of
//! statements, whatever the number of operations:
//! 1. **Lock.** `SELECT … FROM resources … FOR UPDATE`, for every (type, id) the write
//!    names at once, in (type, id) order (so two multi-resource writes lock in the same
//!    order instead of deadlocking). A concurrent writer of the same resource waits here
//!    until the other commits, then sees its result (READ COMMITTED re-reads a locked row
//!    that changed): this is what makes `If-Match` hold across processes: of N updates
//!    expecting version 3, one writes 4 and the others find 4 and fail with
//!    `VersionConflict`.
//! 2. **Decide** in Rust, per op and in order, exactly as the SQLite writer does: new
//!    version number, `created`, refusals (`VersionConflict`, `AlreadyExists`), and the
//!    canonical bytes (`caduceus_model::json::canonical_bytes`, with `meta.versionId` and
//!    `meta.lastUpdated` set).
//! 3. **Write versions** in one statement: `seq` drawn from the sequence in operation
//!    order; existing resources move to their new version; resources absent in step 1 are
//!    *claimed* with `INSERT … ON CONFLICT DO NOTHING`, and a version is written only for
//!    a claim that succeeded. A claim fails when another transaction created the same id
//!    between steps 1 and 3 (two replicas creating `Patient/x`): the attempt is rolled back
//!    and retried, and the retry's step 1 sees the other's resource, so one create gets
//!    `AlreadyExists` and an update-as-create becomes version 2: never a duplicate
//!    version, never a gap.
//! 4. **Index**: the replaced index rows are removed by one statement and the new ones
//!    inserted by another (`index_rows`).
//! 5. **Commit**: `Ok` only after it, so `Ok` means durable (`synchronous_commit` on).
//!
//! Serialization failures and deadlocks (possible in principle even under READ COMMITTED,
//! e.g. with the unique-index waits of step 3) and lost claims retry the whole attempt in a
//! new transaction, at most [`MAX_ATTEMPTS`] times, with a jittered exponential backoff;
//! then the write fails as `Unavailable`.
//!
//! `last_updated`: one instant per write, `max(now, newest previous last_updated of the
//! resources it touches + 1µs)`: monotonic per resource across replicas whose clocks
//! differ. (Across resources it is only as monotonic as the replicas' clocks: seq, not
//! time, is the order of history.)

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use caduceus_model::ids::now_micros;
use caduceus_model::json::canonical_bytes;
use caduceus_store::{Method, StoreError, StoredVersion, WriteOp, WriteOutcome};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use crate::PostgresStore;
use crate::error::{is_retryable, map_pg, map_pool};
use crate::index_rows::{self, IndexBatch};

/// Attempts of one write before it fails as `Unavailable`.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// Step 1's statement: locks and reads the current rows of `$2` types / `$3` ids (tenant
/// `$1`), in key order. The subquery reads the current version's time; in the rare case
/// that the row changed while this statement waited for its lock, the new version is not in
/// the statement's snapshot and the subquery is NULL: [`lock_current`] reads it again.
pub(crate) const LOCK: &str = "SELECT r.type, r.id, r.version, r.deleted, r.seq, \
                (SELECT v.last_updated FROM versions v \
                  WHERE v.tenant = r.tenant AND v.seq = r.seq) \
         FROM resources r \
         WHERE r.tenant = $1 \
           AND (r.type, r.id) IN (SELECT * FROM unnest($2::text[], $3::text[])) \
         ORDER BY r.type, r.id \
         FOR UPDATE OF r";

/// Step 3's statement (see the module doc): `$1` tenant, `$2`.. `$8` the versions' order,
/// type, id, version, method, body and whether the resource is new, `$9` the instant.
/// Returns each version's order and seq, and the counts of moved and written rows.
pub(crate) const WRITE: &str = "WITH o AS MATERIALIZED ( \
             SELECT u.*, nextval('versions_seq') AS seq \
             FROM unnest($2::int4[], $3::text[], $4::text[], $5::int8[], $6::int2[], \
                         $7::bytea[], $8::bool[]) \
                  AS u(ord, type, id, version, method, body, is_new) \
             ORDER BY u.ord), \
         claimed AS ( \
             INSERT INTO resources (tenant, type, id, version, seq, deleted) \
             SELECT $1, o.type, o.id, o.version, o.seq, \
                    CASE WHEN o.body IS NULL THEN 1 ELSE 0 END \
             FROM o WHERE o.is_new \
             ON CONFLICT DO NOTHING \
             RETURNING type, id), \
         moved AS ( \
             UPDATE resources r SET version = o.version, seq = o.seq, \
                    deleted = CASE WHEN o.body IS NULL THEN 1 ELSE 0 END \
             FROM o WHERE NOT o.is_new AND r.tenant = $1 \
               AND r.type = o.type AND r.id = o.id \
             RETURNING r.type), \
         written AS ( \
             INSERT INTO versions (seq, tenant, type, id, version, last_updated, method, \
                                   body, body_codec) \
             SELECT o.seq, $1, o.type, o.id, o.version, $9, o.method, o.body, 0 \
             FROM o WHERE NOT o.is_new \
                OR EXISTS (SELECT 1 FROM claimed c WHERE c.type = o.type AND c.id = o.id) \
             RETURNING seq) \
         SELECT o.ord, o.seq, (SELECT count(*) FROM moved), (SELECT count(*) FROM written) \
         FROM o ORDER BY o.ord";

/// Why an attempt did not commit.
enum Abort {
    /// Refused for a reason that retrying cannot change (conflict, exists, bad data).
    Fail(StoreError),
    /// A race with another transaction: retry in a new one.
    Retry(&'static str),
}

impl From<tokio_postgres::Error> for Abort {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_retryable(&e) {
            Abort::Retry("serialization failure or deadlock")
        } else {
            Abort::Fail(map_pg(&e))
        }
    }
}

/// Applies `ops` atomically (see the module doc).
pub(crate) async fn write(
    store: &PostgresStore,
    ops: &[WriteOp],
) -> Result<Vec<WriteOutcome>, StoreError> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(index) = duplicate_in(ops) {
        return Err(StoreError::DuplicateInWrite { index });
    }
    let mut tries = 0;
    loop {
        tries += 1;
        let mut client = store.pool().get().await.map_err(|e| map_pool(&e))?;
        let result = async {
            let tx = client.transaction().await?;
            let outcomes = attempt(&tx, store.tenant(), ops).await?;
            tx.commit().await?;
            Ok::<_, Abort>(outcomes)
        }
        .await;
        match result {
            Ok(outcomes) => return Ok(outcomes),
            Err(Abort::Fail(e)) => return Err(e),
            Err(Abort::Retry(why)) if tries < MAX_ATTEMPTS => {
                tracing::debug!(attempt = tries, why, "write retried");
                drop(client);
                tokio::time::sleep(backoff(tries)).await;
            }
            Err(Abort::Retry(why)) => {
                tracing::warn!(attempts = tries, why, "write gave up");
                return Err(StoreError::Unavailable(format!(
                    "write abandoned after {tries} attempts: {why}"
                )));
            }
        }
    }
}

/// The pause before attempt `tries + 1`: 2^tries ms, capped at 256 ms, times a random
/// factor in [0.5, 1.5) so that writers that collided do not collide again in step.
fn backoff(tries: u32) -> Duration {
    let base = 1u64 << tries.min(8);
    // Jitter from the clock's low bits and the task's stack address: no RNG needed.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let local = 0u8;
    let seed = nanos ^ (std::ptr::addr_of!(local) as u64).rotate_left(17);
    let factor = 500 + seed % 1000; // per mille
    Duration::from_micros(base * factor)
}

/// The index of the first op naming a (type, id) an earlier op of the same write named.
fn duplicate_in(ops: &[WriteOp]) -> Option<usize> {
    let mut seen = HashSet::with_capacity(ops.len());
    ops.iter()
        .position(|op| !seen.insert((op.resource_type(), op.id())))
}

/// A resource's state at the start of the write.
#[derive(Debug, Clone, Copy)]
struct Current {
    version: u64,
    deleted: bool,
    last_updated: i64,
}

/// Step 1: locks the rows of the resources `ops` name and reads their state.
async fn lock_current(tx: &Transaction<'_>, tenant: i64, ops: &[WriteOp]) -> Result<States, Abort> {
    let types: Vec<&str> = ops.iter().map(WriteOp::resource_type).collect();
    let ids: Vec<&str> = ops.iter().map(WriteOp::id).collect();
    let stmt = tx.prepare_cached(LOCK).await?;
    let rows = tx.query(&stmt, &[&tenant, &types, &ids]).await?;
    let mut out = States::default();
    let mut missing_time: Vec<i64> = Vec::new();
    let mut by_seq: HashMap<i64, (String, String)> = HashMap::new();
    for row in &rows {
        let t: String = row.try_get(0)?;
        let i: String = row.try_get(1)?;
        let version: i64 = row.try_get(2)?;
        let deleted: i32 = row.try_get(3)?;
        let seq: i64 = row.try_get(4)?;
        let last_updated: Option<i64> = row.try_get(5)?;
        if last_updated.is_none() {
            missing_time.push(seq);
            by_seq.insert(seq, (t.clone(), i.clone()));
        }
        out.0.entry(t).or_default().insert(
            i,
            Current {
                version: u64::try_from(version).unwrap_or(0),
                deleted: deleted != 0,
                last_updated: last_updated.unwrap_or(i64::MIN),
            },
        );
    }
    if !missing_time.is_empty() {
        let stmt = tx
            .prepare_cached(
                "SELECT seq, last_updated FROM versions WHERE tenant = $1 AND seq = ANY($2)",
            )
            .await?;
        for row in tx.query(&stmt, &[&tenant, &missing_time]).await? {
            let seq: i64 = row.try_get(0)?;
            let lu: i64 = row.try_get(1)?;
            if let Some(cur) = by_seq
                .get(&seq)
                .and_then(|(t, i)| out.0.get_mut(t)?.get_mut(i))
            {
                cur.last_updated = lu;
            }
        }
    }
    Ok(out)
}

/// The current state of the resources a write names, by type then id.
#[derive(Default)]
struct States(HashMap<String, HashMap<String, Current>>);

impl States {
    fn get(&self, resource_type: &str, id: &str) -> Option<Current> {
        self.0.get(resource_type)?.get(id).copied()
    }

    fn all(&self) -> impl Iterator<Item = &Current> {
        self.0.values().flat_map(HashMap::values)
    }
}

/// `If-Match` (`caduceus_store::check_if_match`) on a locked row.
fn check_if_match(index: usize, if_match: Option<u64>, cur: Option<Current>) -> Result<(), Abort> {
    caduceus_store::check_if_match(index, if_match, cur.map(|c| c.version)).map_err(Abort::Fail)
}

/// One version to write (step 3).
struct NewVersion<'a> {
    op: usize,
    resource_type: &'a str,
    id: &'a str,
    version: u64,
    method: Method,
    body: Option<Bytes>,
    /// The resource had no row in step 1: claim it.
    is_new: bool,
    /// Outcome: first live version.
    created: bool,
}

/// What an op comes to, before its seq is known.
enum Planned {
    Written(usize),
    Deleted(usize),
    Done(WriteOutcome),
}

/// One attempt inside `tx` (see the module doc).
async fn attempt(
    tx: &Transaction<'_>,
    tenant: i64,
    ops: &[WriteOp],
) -> Result<Vec<WriteOutcome>, Abort> {
    let current = lock_current(tx, tenant, ops).await?;
    let instant = current
        .all()
        .map(|c| c.last_updated.saturating_add(1))
        .fold(now_micros(), i64::max);

    let mut writes: Vec<NewVersion<'_>> = Vec::new();
    let mut planned = Vec::with_capacity(ops.len());
    let mut unindex: (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let mut batch = IndexBatch::default();
    for (index, op) in ops.iter().enumerate() {
        let cur = current.get(op.resource_type(), op.id());
        let plan = match op {
            WriteOp::Create {
                resource_type,
                id,
                resource,
                index: rows,
                contained,
            } => {
                if cur.is_some() {
                    return Err(Abort::Fail(StoreError::AlreadyExists { index }));
                }
                writes.push(NewVersion {
                    op: index,
                    resource_type,
                    id,
                    version: 1,
                    method: Method::Create,
                    body: Some(Bytes::from(canonical_bytes(resource, id, 1, instant))),
                    is_new: true,
                    created: true,
                });
                batch
                    .add_resource(resource_type, id, rows, contained)
                    .map_err(Abort::Fail)?;
                Planned::Written(writes.len() - 1)
            }
            WriteOp::Update {
                resource_type,
                id,
                resource,
                index: rows,
                contained,
                if_match,
                method,
            } => {
                check_if_match(index, *if_match, cur)?;
                let next = cur.map_or(1, |c| c.version + 1);
                let method = method.of_update();
                writes.push(NewVersion {
                    op: index,
                    resource_type,
                    id,
                    version: next,
                    method,
                    body: Some(Bytes::from(canonical_bytes(resource, id, next, instant))),
                    is_new: cur.is_none(),
                    created: cur.is_none_or(|c| c.deleted),
                });
                if cur.is_some() {
                    unindex.0.push(resource_type);
                    unindex.1.push(id);
                }
                batch
                    .add_resource(resource_type, id, rows, contained)
                    .map_err(Abort::Fail)?;
                Planned::Written(writes.len() - 1)
            }
            WriteOp::Delete {
                resource_type,
                id,
                if_match,
            } => {
                check_if_match(index, *if_match, cur)?;
                match cur {
                    Some(c) if !c.deleted => {
                        writes.push(NewVersion {
                            op: index,
                            resource_type,
                            id,
                            version: c.version + 1,
                            method: Method::Delete,
                            body: None,
                            is_new: false,
                            created: false,
                        });
                        unindex.0.push(resource_type);
                        unindex.1.push(id);
                        Planned::Deleted(writes.len() - 1)
                    }
                    _ => Planned::Done(WriteOutcome::NothingToDelete),
                }
            }
            WriteOp::Reindex {
                resource_type,
                id,
                version,
                index: rows,
                contained,
            } => match cur {
                Some(c) if !c.deleted && c.version == *version => {
                    unindex.0.push(resource_type);
                    unindex.1.push(id);
                    batch
                        .add_resource(resource_type, id, rows, contained)
                        .map_err(Abort::Fail)?;
                    Planned::Done(WriteOutcome::Reindexed { replaced: true })
                }
                _ => Planned::Done(WriteOutcome::Reindexed { replaced: false }),
            },
        };
        planned.push(plan);
    }

    let seqs = write_versions(tx, tenant, instant, &writes).await?;
    if !unindex.0.is_empty() {
        let stmt = tx.prepare_cached(&index_rows::DELETE).await?;
        tx.execute(&stmt, &[&tenant, &unindex.0, &unindex.1])
            .await?;
    }
    if !batch.is_empty() {
        let stmt = tx.prepare_cached(&index_rows::INSERT).await?;
        tx.execute(&stmt, &batch.params(&tenant)).await?;
    }

    let mut written: Vec<Option<NewVersion<'_>>> = writes.into_iter().map(Some).collect();
    let mut take = |w: usize| -> Result<(StoredVersion, bool), Abort> {
        let nv = written
            .get_mut(w)
            .and_then(Option::take)
            .ok_or_else(|| Abort::Fail(StoreError::Internal("write plan mismatch".into())))?;
        let seq = seqs
            .get(w)
            .copied()
            .ok_or_else(|| Abort::Fail(StoreError::Internal("write plan mismatch".into())))?;
        debug_assert_eq!(ops[nv.op].id(), nv.id);
        Ok((
            StoredVersion {
                resource_type: nv.resource_type.to_owned(),
                id: nv.id.to_owned(),
                version: nv.version,
                seq,
                last_updated: instant,
                method: nv.method,
                body: nv.body,
            },
            nv.created,
        ))
    };
    planned
        .into_iter()
        .map(|p| match p {
            Planned::Written(w) => {
                take(w).map(|(version, created)| WriteOutcome::Written { version, created })
            }
            Planned::Deleted(w) => take(w).map(|(version, _)| WriteOutcome::Deleted { version }),
            Planned::Done(outcome) => Ok(outcome),
        })
        .collect()
}

/// Step 3: writes the versions (in order) and moves `resources` to them, in one statement;
/// returns each one's seq, in order. A lost claim is [`Abort::Retry`].
async fn write_versions(
    tx: &Transaction<'_>,
    tenant: i64,
    instant: i64,
    writes: &[NewVersion<'_>],
) -> Result<Vec<i64>, Abort> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let n = writes.len();
    let ords: Vec<i32> = (0..n)
        .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
        .collect();
    let types: Vec<&str> = writes.iter().map(|w| w.resource_type).collect();
    let ids: Vec<&str> = writes.iter().map(|w| w.id).collect();
    let versions: Vec<i64> = writes
        .iter()
        .map(|w| i64::try_from(w.version).unwrap_or(i64::MAX))
        .collect();
    let methods: Vec<i16> = writes
        .iter()
        .map(|w| i16::try_from(w.method.to_db()).unwrap_or(i16::MAX))
        .collect();
    let bodies: Vec<Option<&[u8]>> = writes.iter().map(|w| w.body.as_deref()).collect();
    let is_new: Vec<bool> = writes.iter().map(|w| w.is_new).collect();
    let stmt = tx.prepare_cached(WRITE).await?;
    let params: [&(dyn ToSql + Sync); 9] = [
        &tenant, &ords, &types, &ids, &versions, &methods, &bodies, &is_new, &instant,
    ];
    let rows = tx.query(&stmt, &params).await?;
    let mut seqs = vec![0i64; n];
    let mut written = 0i64;
    let mut moved = 0i64;
    for row in &rows {
        let ord: i32 = row.try_get(0)?;
        let seq: i64 = row.try_get(1)?;
        moved = row.try_get(2)?;
        written = row.try_get(3)?;
        if let Some(slot) = usize::try_from(ord).ok().and_then(|i| seqs.get_mut(i)) {
            *slot = seq;
        }
    }
    let existing = writes.iter().filter(|w| !w.is_new).count();
    if usize::try_from(moved).ok() != Some(existing) {
        return Err(Abort::Fail(StoreError::Internal(
            "a locked resource row was not updated".into(),
        )));
    }
    if usize::try_from(written).ok() != Some(n) {
        // Another transaction created one of the new resources first.
        return Err(Abort::Retry("a concurrent create of the same id"));
    }
    Ok(seqs)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::index_rows::tests::generic_plan;

    /// The lock and the version write seek `resources` by key whatever its size.
    #[tokio::test]
    async fn writes_seek_resources() {
        let Some(db) = crate::testing::fresh_database() else {
            return;
        };
        crate::migrate(db.url()).await.expect("migrate");
        let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .batch_execute(
                "INSERT INTO versions (seq, tenant, type, id, version, last_updated, method, body) \
                 SELECT n, 0, 'Observation', 'o' || n, 1, n, 0, '{}' FROM generate_series(1, 20000) n; \
                 INSERT INTO resources SELECT 0, 'Observation', 'o' || n, 1, n, 0 \
                 FROM generate_series(1, 20000) n; \
                 SELECT setval('versions_seq', 20000); ANALYZE;",
            )
            .await
            .expect("fill");
        let keys = "ARRAY['Observation', 'Observation'], ARRAY['o1', 'o2']";
        let plan = generic_plan(
            &client,
            LOCK,
            "bigint, text[], text[]",
            &format!("0, {keys}"),
        )
        .await;
        assert!(!plan.contains("Seq Scan"), "{plan}");
        let plan = generic_plan(
            &client,
            WRITE,
            "bigint, int4[], text[], text[], int8[], int2[], bytea[], bool[], bigint",
            &format!(
                "0, ARRAY[0, 1], {keys}, ARRAY[2, 2], ARRAY[1, 1]::int2[], \
                 ARRAY['{{}}', '{{}}']::bytea[], ARRAY[false, false], 5"
            ),
        )
        .await;
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }
}
