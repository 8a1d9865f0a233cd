//! Named locks across every replica ([`caduceus_store::Store::lock`]): PostgreSQL
//! session-level advisory locks, all of one replica's held on one connection of its own
//! (the *lock session*), outside the pool.
//!
//! Why one session, not a pooled connection per held lock: a transaction bundle with N
//! conditional creates holds N locks at once while it writes; with a connection per lock,
//! N ≥ the pool's size left the write waiting for a connection it could never get (503).
//! One session holds any number of locks and costs one connection per replica.
//!
//! How, given that one session cannot wait for two locks at once:
//! - **Never block the session.** A lock is taken with `pg_try_advisory_lock`, which
//!   answers at once; while another replica holds it, the caller retries after a short,
//!   growing, jittered pause (2 ms to 100 ms). Releases (`pg_advisory_unlock`) therefore
//!   never queue behind a wait, so two replicas waiting for each other's locks cannot
//!   deadlock through the lock session.
//! - **Exclusion inside the replica first.** Advisory locks are re-entrant within a session,
//!   so two tasks of one replica would both "get" a key on the shared session. Each key
//!   therefore has an in-process async mutex, taken before the advisory lock and released
//!   only after the advisory unlock completed.
//! - **Keys** are hashed by the server (`hashtextextended(key, tenant)`), not by Rust's
//!   hasher, so that replicas built by different compilers (a rolling upgrade) agree.
//! - **Cancellation.** The advisory part runs in a task of its own and hands the guard over
//!   a channel: if the caller is cancelled meanwhile, the task still completes, and the
//!   guard it could not hand over is dropped, which releases the lock.
//! - **Release.** Dropping the guard spawns the unlock on the lock session, then frees the
//!   in-process mutex.
//! - **A lost session** frees every lock it held on the server. The next lock reconnects.
//!   A guard taken on the lost session no longer excludes anyone: its holder is not told
//!   (as with any session-level advisory lock), and its release only logs a warning.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use caduceus_store::StoreError;
use tokio::runtime::Handle;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_postgres::Client;

use crate::error::map_pg;

/// The shortest and longest pause between two attempts at a lock another replica holds.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// One replica's lock session and its in-process key mutexes.
pub(crate) struct LockSession {
    config: tokio_postgres::Config,
    /// The pool's TLS set-up: the lock session connects exactly as the pool does.
    tls: crate::tls::MakeRustls,
    tenant: i64,
    client: Mutex<Option<Arc<Client>>>,
    keys: StdMutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl LockSession {
    /// A lock session for `config`'s database; connects at the first lock.
    pub(crate) fn new(
        config: tokio_postgres::Config,
        tls: crate::tls::MakeRustls,
        tenant: i64,
    ) -> Arc<LockSession> {
        Arc::new(LockSession {
            config,
            tls,
            tenant,
            client: Mutex::new(None),
            keys: StdMutex::new(HashMap::new()),
        })
    }

    /// The session's connection, (re)connecting when it is absent or closed.
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| map_pg(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %map_pg(&e), "the lock session ended");
            }
        });
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// The in-process mutex of `key`.
    fn key_mutex(&self, key: &str) -> Arc<Mutex<()>> {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(keys.entry(key.to_owned()).or_default())
    }

    /// Forgets the mutex of `key` when nobody holds or waits for it.
    fn forget(&self, key: &str) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.get(key).is_some_and(|m| Arc::strong_count(m) == 1) {
            keys.remove(key);
        }
    }
}

/// A held lock; releases it when dropped.
pub(crate) struct AdvisoryLock {
    session: Arc<LockSession>,
    key: String,
    /// Taken (`Some`) until the drop hands it to the release task.
    local: Option<OwnedMutexGuard<()>>,
    /// True once the advisory lock is held (so the drop releases it).
    held: bool,
    runtime: Handle,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let Some(local) = self.local.take() else {
            return;
        };
        let (session, key) = (Arc::clone(&self.session), std::mem::take(&mut self.key));
        if !self.held {
            drop(local);
            session.forget(&key);
            return;
        }
        self.runtime.spawn(async move {
            let released = match session.client().await {
                Ok(client) => client
                    .query_one(
                        "SELECT pg_advisory_unlock(hashtextextended($1, $2))",
                        &[&key, &session.tenant],
                    )
                    .await
                    .ok()
                    .and_then(|row| row.try_get::<_, bool>(0).ok())
                    .unwrap_or(false),
                Err(_) => false,
            };
            if !released {
                // The session that held it is gone, and the lock with it.
                tracing::warn!("a named lock was not held any more at its release");
            }
            // Only now may another task of this replica take the key.
            drop(local);
            session.forget(&key);
        });
    }
}

/// Waits for, and holds, the lock of `key`.
pub(crate) async fn lock(
    session: &Arc<LockSession>,
    key: &str,
) -> Result<AdvisoryLock, StoreError> {
    let local = session.key_mutex(key).lock_owned().await;
    let guard = AdvisoryLock {
        session: Arc::clone(session),
        key: key.to_owned(),
        local: Some(local),
        held: false,
        runtime: Handle::current(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut guard = guard;
        let result = acquire(&guard).await.map(|()| {
            guard.held = true;
            guard
        });
        // A caller that went away drops the guard here, releasing the lock.
        let _ = tx.send(result);
    });
    rx.await
        .map_err(|_| StoreError::Internal("the lock task stopped".into()))?
}

/// Takes the advisory lock of `guard`'s key, retrying while another session holds it.
async fn acquire(guard: &AdvisoryLock) -> Result<(), StoreError> {
    let session = &guard.session;
    let mut pause = FIRST_PAUSE;
    loop {
        let client = session.client().await?;
        let got: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, $2))",
                &[&guard.key, &session.tenant],
            )
            .await
            .map_err(|e| map_pg(&e))?
            .try_get(0)
            .map_err(|e| map_pg(&e))?;
        if got {
            return Ok(());
        }
        tokio::time::sleep(jittered(pause)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// `pause` times a factor in [0.5, 1.5), from the clock's low bits: replicas waiting for
/// the same lock do not poll in step.
fn jittered(pause: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    pause.mul_f64(0.5 + f64::from(nanos % 1000) / 1000.0)
}
