//! Named locks across every replica ([`caduceus_store::Store::lock`]): PostgreSQL
//! session-level advisory locks, held on a pooled connection set aside for the guard.
//!
//! - The key is hashed by the server (`hashtextextended(key, tenant)`), not by Rust's
//!   hasher, so that replicas built by different compilers (a rolling upgrade) agree on it.
//! - The acquisition runs in a task of its own and hands the guard over a channel: if the
//!   caller is cancelled while `pg_advisory_lock` waits, the task still completes, and the
//!   guard it could not hand over is dropped, which releases the lock. A cancelled query
//!   future cannot leave a lock held by a connection back in the pool.
//! - Dropping the guard spawns the release: `pg_advisory_unlock` runs on the held
//!   connection, and only then does the connection go back to the pool. If the release
//!   fails (or answers that the lock was not held), the connection is detached from the
//!   pool and closed: the session ends, and the server frees every lock it held.

use deadpool_postgres::{Object, Pool};
use tokio::runtime::Handle;

use crate::error::{map_pg, map_pool};
use caduceus_store::StoreError;

/// A held advisory lock; releases it when dropped.
pub(crate) struct AdvisoryLock {
    conn: Option<Object>,
    key: i64,
    runtime: Handle,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let key = self.key;
        self.runtime.spawn(async move {
            let released = match conn
                .query_one("SELECT pg_advisory_unlock($1)", &[&key])
                .await
            {
                Ok(row) => row.try_get::<_, bool>(0).unwrap_or(false),
                Err(_) => false,
            };
            if released {
                drop(conn); // back to the pool
            } else {
                tracing::warn!("advisory lock release failed; closing its connection");
                drop(Object::take(conn)); // closes the session, which frees its locks
            }
        });
    }
}

/// Waits for, and holds, the lock of `key`.
pub(crate) async fn lock(pool: &Pool, tenant: i64, key: &str) -> Result<AdvisoryLock, StoreError> {
    let (pool, key) = (pool.clone(), key.to_owned());
    let runtime = Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let result = acquire(&pool, tenant, &key, runtime).await;
        // A caller that went away drops the guard here, releasing the lock.
        let _ = tx.send(result);
    });
    rx.await
        .map_err(|_| StoreError::Internal("the lock task stopped".into()))?
}

async fn acquire(
    pool: &Pool,
    tenant: i64,
    key: &str,
    runtime: Handle,
) -> Result<AdvisoryLock, StoreError> {
    let conn = pool.get().await.map_err(|e| map_pool(&e))?;
    let hashed: i64 = conn
        .query_one("SELECT hashtextextended($1, $2)", &[&key, &tenant])
        .await
        .map_err(|e| map_pg(&e))?
        .try_get(0)
        .map_err(|e| map_pg(&e))?;
    // From here on the guard owns the connection: any failure below drops it, which
    // releases whatever was taken.
    let guard = AdvisoryLock {
        conn: Some(conn),
        key: hashed,
        runtime,
    };
    let conn = guard
        .conn
        .as_ref()
        .ok_or_else(|| StoreError::Internal("lock connection missing".into()))?;
    conn.execute("SELECT pg_advisory_lock($1)", &[&hashed])
        .await
        .map_err(|e| map_pg(&e))?;
    Ok(guard)
}
