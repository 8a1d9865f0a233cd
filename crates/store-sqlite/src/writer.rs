//! The writer: one connection on one dedicated thread, fed through a bounded channel, with
//! group commit.
//!
//! SQLite admits one writer at a time anyway; owning the write connection on one thread
//! makes that explicit, keeps blocking fsyncs off the async runtime, and lets concurrent
//! small writes share a commit: the thread takes every request already queued (up to
//! [`MAX_GROUP_OPS`] operations), runs them in one `BEGIN IMMEDIATE` transaction, each
//! inside its own `SAVEPOINT`, and commits once. A request that fails (conflict, already
//! exists) rolls back to its savepoint and fails alone; the others still commit. Callers get
//! their answer only after `COMMIT` returned, i.e. after the WAL was synced
//! (`synchronous=FULL`), so `Ok` means durable.
//!
//! `last_updated`: each request gets one instant, `max(now, previous + 1µs)` where
//! `previous` is read from the newest version inside the write transaction, so time order
//! agrees with seq order even across restarts and clock steps backwards. All versions of one
//! write share its instant.
//!
//! Copies (`Store::copy_in`, for `caduceus copy`) go through the same thread and channel,
//! but each runs as a transaction of its own, never grouped: it is large, and its versions
//! keep their source's `lastUpdated` instead of taking the group's instant.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::thread::JoinHandle;

use bytes::Bytes;
use caduceus_model::ids::now_micros;
use caduceus_model::json::canonical_bytes;
use caduceus_store::index::{ContainedIndex, IndexRow};
use caduceus_store::{Method, StoreError, StoredVersion, WriteOp, WriteOutcome};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::error::map_sqlite;
use crate::rows::{CODEC_PLAIN, newest_last_updated};

/// A group stops taking queued requests once it holds this many operations.
pub(crate) const MAX_GROUP_OPS: usize = 4096;

/// Requests that may wait for the writer; beyond this, `write()` callers wait to enqueue
/// (backpressure instead of an unbounded queue).
pub(crate) const QUEUE_DEPTH: usize = 1024;

type Reply = Result<Vec<WriteOutcome>, StoreError>;

struct Request {
    ops: Vec<WriteOp>,
    reply: oneshot::Sender<Reply>,
}

/// A verbatim copy of versions (`Store::copy_in`).
struct Copy {
    versions: Vec<StoredVersion>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// What the writer thread is asked to do.
enum Job {
    Write(Request),
    Copy(Copy),
}

/// Handle to the writer thread. Dropping it lets the thread finish the queued requests and
/// joins it.
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread, which owns `conn` (configured and migrated).
    pub(crate) fn start(conn: Connection, tenant: i64) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("caduceus-sqlite-writer".into())
            .spawn(move || run(conn, tenant, rx))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// True while the writer thread runs (false after a panic in it).
    pub(crate) fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Queues a write and waits for its commit.
    pub(crate) async fn write(&self, ops: Vec<WriteOp>) -> Reply {
        let stopped = || StoreError::Unavailable("the writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(Job::Write(Request { ops, reply }))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Queues a verbatim copy and waits for its commit.
    pub(crate) async fn copy_in(&self, versions: Vec<StoredVersion>) -> Result<(), StoreError> {
        let stopped = || StoreError::Unavailable("the writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(Job::Copy(Copy { versions, reply }))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: Connection, tenant: i64, mut rx: mpsc::Receiver<Job>) {
    // A plain thread, outside any runtime: blocking_recv is allowed here.
    let mut ops_since_stats = 0usize;
    // A copy met while gathering a group waits here until that group has committed, so
    // jobs still run in the order they were queued.
    let mut held: Option<Job> = None;
    loop {
        let job = match held.take() {
            Some(job) => job,
            None => match rx.blocking_recv() {
                Some(job) => job,
                None => break,
            },
        };
        let first = match job {
            Job::Write(request) => request,
            Job::Copy(copy) => {
                ops_since_stats += copy.versions.len();
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    copy_transaction(&conn, tenant, &copy.versions)
                }))
                .unwrap_or_else(|_| {
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    tracing::error!(versions = copy.versions.len(), "copy panicked; rolled back");
                    Err(StoreError::Internal("the copy failed unexpectedly".into()))
                });
                let _ = copy.reply.send(result);
                continue;
            }
        };
        let mut n_ops = first.ops.len();
        let mut group = vec![first];
        while n_ops < MAX_GROUP_OPS {
            match rx.try_recv() {
                Ok(Job::Write(next)) => {
                    n_ops += next.ops.len();
                    group.push(next);
                }
                Ok(copy @ Job::Copy(_)) => {
                    held = Some(copy);
                    break;
                }
                Err(_) => break,
            }
        }
        let (ops, replies): (Vec<_>, Vec<_>) = group.into_iter().map(|r| (r.ops, r.reply)).unzip();
        // A panic while applying a group must not kill the only writer: roll back, fail the
        // group, keep serving.
        let results =
            std::panic::catch_unwind(AssertUnwindSafe(|| commit_group(&conn, tenant, &ops)))
                .unwrap_or_else(|_| {
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    tracing::error!(requests = ops.len(), "write group panicked; rolled back");
                    ops.iter()
                        .map(|_| Err(StoreError::Internal("the write failed unexpectedly".into())))
                        .collect()
                });
        for (reply, result) in replies.into_iter().zip(results) {
            // The caller may have gone away (cancelled); the write stands regardless.
            let _ = reply.send(result);
        }
        ops_since_stats += ops.iter().map(Vec::len).sum::<usize>();
        // Statistics only when nobody waits for the writer: a refresh never delays a write
        // that is already queued.
        if ops_since_stats >= crate::stats::REFRESH_EVERY_OPS && held.is_none() && rx.is_empty() {
            crate::stats::refresh(&conn);
            ops_since_stats = 0;
        }
    }
}

/// One `copy_in`: every version inserted in the given order (so `seq` follows it), each
/// resource's row pointed at its highest version, all in one transaction.
fn copy_transaction(
    conn: &Connection,
    tenant: i64,
    versions: &[StoredVersion],
) -> Result<(), StoreError> {
    if versions.is_empty() {
        return Ok(());
    }
    let result = conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(map_sqlite)
        .and_then(|()| copy_versions(conn, tenant, versions))
        .and_then(|()| conn.execute_batch("COMMIT").map_err(map_sqlite));
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

fn copy_versions(
    conn: &Connection,
    tenant: i64,
    versions: &[StoredVersion],
) -> Result<(), StoreError> {
    let mut insert_version = conn
        .prepare_cached(
            "INSERT INTO versions (tenant, type, id, version, last_updated, method, body, body_codec, key_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL) \
             ON CONFLICT (tenant, type, id, version) DO NOTHING",
        )
        .map_err(map_sqlite)?;
    for (index, v) in versions.iter().enumerate() {
        let version = i64::try_from(v.version).map_err(|_| {
            StoreError::Internal(format!("copied version {index}: version out of range"))
        })?;
        let inserted = insert_version
            .execute(params![
                tenant,
                v.resource_type,
                v.id,
                version,
                v.last_updated,
                v.method.to_db(),
                v.body.as_deref(),
                CODEC_PLAIN
            ])
            .map_err(map_sqlite)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists { index });
        }
        let seq = conn.last_insert_rowid();
        let cur = current(conn, tenant, &v.resource_type, &v.id).map_err(map_sqlite)?;
        match cur {
            // The store already holds a newer version: it stays current.
            Some((current, _)) if current > v.version => {}
            _ => {
                // Rows indexed from a previous current version would no longer belong to
                // it; the copy is reindexed afterwards.
                if cur.is_some() {
                    unindex_resource(conn, tenant, &v.resource_type, &v.id).map_err(map_sqlite)?;
                }
                conn.prepare_cached(
                    "INSERT INTO resources (tenant, type, id, version, seq, deleted) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (tenant, type, id) DO UPDATE SET \
                       version = excluded.version, seq = excluded.seq, deleted = excluded.deleted",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        tenant,
                        v.resource_type,
                        v.id,
                        version,
                        seq,
                        v.body.is_none()
                    ])
                })
                .map_err(map_sqlite)?;
            }
        }
    }
    Ok(())
}

/// Why applying one request stopped.
enum ApplyError {
    /// The request is refused (conflict, exists, duplicate): roll back its savepoint only.
    Refused(StoreError),
    /// The database failed: abandon the whole group.
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for ApplyError {
    fn from(e: rusqlite::Error) -> Self {
        ApplyError::Db(e)
    }
}

/// Runs a group of requests in one transaction; one result per request, in order.
fn commit_group(conn: &Connection, tenant: i64, requests: &[Vec<WriteOp>]) -> Vec<Reply> {
    // Checked before touching the database.
    let mut results: Vec<Option<Reply>> = requests
        .iter()
        .map(|ops| duplicate_in(ops).map(|index| Err(StoreError::DuplicateInWrite { index })))
        .collect();
    if results.iter().all(Option::is_some) {
        return results.into_iter().flatten().collect();
    }
    match run_transaction(conn, tenant, requests, &mut results) {
        Ok(()) => results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Internal("write not applied".into()))))
            .collect(),
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            let err = map_sqlite(e);
            tracing::warn!(error = %err, "write transaction failed");
            results
                .into_iter()
                .map(|r| match r {
                    // A refusal stands; anything that looked applied was rolled back.
                    Some(Err(refused)) => Err(refused),
                    _ => Err(same_error(&err)),
                })
                .collect()
        }
    }
}

/// `StoreError` is not `Clone`; the group's failure is reported to each of its requests.
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(t) => StoreError::Unavailable(t.clone()),
        StoreError::Internal(t) => StoreError::Internal(t.clone()),
        other => StoreError::Internal(other.to_string()),
    }
}

/// The transaction proper; `Err` means the whole group is abandoned.
fn run_transaction(
    conn: &Connection,
    tenant: i64,
    requests: &[Vec<WriteOp>],
    results: &mut [Option<Reply>],
) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut last = newest_last_updated(conn)?.unwrap_or(i64::MIN + 1);
    for (ops, result) in requests.iter().zip(results.iter_mut()) {
        if result.is_some() {
            continue;
        }
        let instant = now_micros().max(last.saturating_add(1));
        last = instant;
        conn.execute_batch("SAVEPOINT request")?;
        match apply(conn, tenant, ops, instant) {
            Ok(outcomes) => {
                conn.execute_batch("RELEASE request")?;
                *result = Some(Ok(outcomes));
            }
            Err(ApplyError::Refused(e)) => {
                conn.execute_batch("ROLLBACK TO request; RELEASE request")?;
                *result = Some(Err(e));
            }
            Err(ApplyError::Db(e)) => return Err(e),
        }
    }
    conn.execute_batch("COMMIT")
}

/// The index of the first op naming a (type, id) an earlier op of the same write named.
fn duplicate_in(ops: &[WriteOp]) -> Option<usize> {
    let mut seen = HashSet::with_capacity(ops.len());
    ops.iter()
        .position(|op| !seen.insert((op.resource_type(), op.id())))
}

/// The current state of a resource: (version, deleted).
fn current(
    conn: &Connection,
    tenant: i64,
    resource_type: &str,
    id: &str,
) -> rusqlite::Result<Option<(u64, bool)>> {
    conn.prepare_cached(
        "SELECT version, deleted FROM resources WHERE tenant = ?1 AND type = ?2 AND id = ?3",
    )?
    .query_row(params![tenant, resource_type, id], |r| {
        let v: i64 = r.get(0)?;
        let deleted: bool = r.get(1)?;
        Ok((u64::try_from(v).unwrap_or(0), deleted))
    })
    .optional()
}

/// `If-Match` (`caduceus_store::check_if_match`) on the current (version, deleted).
fn check_if_match(
    index: usize,
    if_match: Option<u64>,
    current: Option<(u64, bool)>,
) -> Result<(), ApplyError> {
    caduceus_store::check_if_match(index, if_match, current.map(|(v, _)| v))
        .map_err(ApplyError::Refused)
}

/// Applies one request's ops in order, inside the caller's savepoint.
fn apply(
    conn: &Connection,
    tenant: i64,
    ops: &[WriteOp],
    instant: i64,
) -> Result<Vec<WriteOutcome>, ApplyError> {
    let mut outcomes = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let cur = current(conn, tenant, op.resource_type(), op.id())?;
        let outcome = match op {
            WriteOp::Create {
                resource_type,
                id,
                resource,
                index: rows,
                contained,
            } => {
                if cur.is_some() {
                    return Err(ApplyError::Refused(StoreError::AlreadyExists { index }));
                }
                let body = canonical_bytes(resource, id, 1, instant);
                let version = insert(
                    conn,
                    tenant,
                    resource_type,
                    id,
                    1,
                    instant,
                    Method::Create,
                    Some(body),
                )?;
                index_resource(conn, tenant, (resource_type, id), rows, contained)?;
                WriteOutcome::Written {
                    version,
                    created: true,
                }
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
                let next = cur.map_or(1, |(v, _)| v + 1);
                let created = cur.is_none_or(|(_, deleted)| deleted);
                let method = method.of_update();
                let body = canonical_bytes(resource, id, next, instant);
                let version = insert(
                    conn,
                    tenant,
                    resource_type,
                    id,
                    next,
                    instant,
                    method,
                    Some(body),
                )?;
                if cur.is_some() {
                    unindex_resource(conn, tenant, resource_type, id)?;
                }
                index_resource(conn, tenant, (resource_type, id), rows, contained)?;
                WriteOutcome::Written { version, created }
            }
            WriteOp::Delete {
                resource_type,
                id,
                if_match,
            } => {
                check_if_match(index, *if_match, cur)?;
                match cur {
                    None | Some((_, true)) => WriteOutcome::NothingToDelete,
                    Some((v, false)) => {
                        let version = insert(
                            conn,
                            tenant,
                            resource_type,
                            id,
                            v + 1,
                            instant,
                            Method::Delete,
                            None,
                        )?;
                        unindex_resource(conn, tenant, resource_type, id)?;
                        WriteOutcome::Deleted { version }
                    }
                }
            }
            WriteOp::Reindex {
                resource_type,
                id,
                version,
                index: rows,
                contained,
            } => match cur {
                Some((v, false)) if v == *version => {
                    unindex_resource(conn, tenant, resource_type, id)?;
                    index_resource(conn, tenant, (resource_type, id), rows, contained)?;
                    WriteOutcome::Reindexed { replaced: true }
                }
                _ => WriteOutcome::Reindexed { replaced: false },
            },
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Writes the index rows of a resource and of its contained resources.
fn index_resource(
    conn: &Connection,
    tenant: i64,
    key: (&str, &str),
    rows: &[IndexRow],
    contained: &[ContainedIndex],
) -> rusqlite::Result<()> {
    crate::index_rows::insert(conn, tenant, key, rows, key)?;
    crate::index_rows::insert_contained(conn, tenant, key.0, key.1, contained)
}

/// Removes the index rows of a resource and of its contained resources.
fn unindex_resource(
    conn: &Connection,
    tenant: i64,
    resource_type: &str,
    id: &str,
) -> rusqlite::Result<()> {
    crate::index_rows::remove(conn, tenant, resource_type, id)?;
    crate::index_rows::remove_contained(conn, tenant, resource_type, id)
}

/// Appends a version and points the current state at it.
#[allow(clippy::too_many_arguments)]
fn insert(
    conn: &Connection,
    tenant: i64,
    resource_type: &str,
    id: &str,
    version: u64,
    instant: i64,
    method: Method,
    body: Option<Vec<u8>>,
) -> rusqlite::Result<StoredVersion> {
    let version_db = i64::try_from(version)
        .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(3, i64::MAX))?;
    conn.prepare_cached(
        "INSERT INTO versions (tenant, type, id, version, last_updated, method, body, body_codec, key_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)",
    )?
    .execute(params![
        tenant,
        resource_type,
        id,
        version_db,
        instant,
        method.to_db(),
        body.as_deref(),
        CODEC_PLAIN
    ])?;
    let seq = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO resources (tenant, type, id, version, seq, deleted) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (tenant, type, id) DO UPDATE SET \
           version = excluded.version, seq = excluded.seq, deleted = excluded.deleted",
    )?
    .execute(params![
        tenant,
        resource_type,
        id,
        version_db,
        seq,
        body.is_none()
    ])?;
    Ok(StoredVersion {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        version,
        seq,
        last_updated: instant,
        method,
        body: body.map(Bytes::from),
    })
}
