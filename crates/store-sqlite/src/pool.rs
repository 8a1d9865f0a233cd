//! The read pool: a few read-only connections, each behind its own mutex.
//!
//! A point read is a couple of B-tree lookups (microseconds), so it runs inline on the
//! calling (tokio worker) thread: a hop through `spawn_blocking` would cost more than the
//! query. Each thread has a "home" slot (assigned round-robin the first time the thread
//! reads); a reader tries its home slot, then the others with `try_lock`, and only if every
//! connection is busy waits on its home slot. With at least twice as many connections as
//! cores, waiting is rare and short. In WAL mode readers never block the writer nor each
//! other, and each statement outside a transaction reads the latest committed state.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use rusqlite::{Connection, OpenFlags};

use crate::schema;

/// Hands out home slots to threads.
static NEXT_HOME: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's preferred slot (modulo the pool size).
    static HOME: usize = NEXT_HOME.fetch_add(1, Ordering::Relaxed);
}

/// A fixed set of read-only connections.
pub(crate) struct ReadPool {
    conns: Box<[Mutex<Connection>]>,
}

impl ReadPool {
    /// Opens `size` read-only connections to the database at `path` (which must exist and be
    /// migrated).
    pub(crate) fn open(path: &Path, size: usize) -> rusqlite::Result<ReadPool> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut conns = Vec::with_capacity(size.max(1));
        for _ in 0..size.max(1) {
            let conn = Connection::open_with_flags(path, flags)?;
            schema::configure_reader(&conn)?;
            conns.push(Mutex::new(conn));
        }
        Ok(ReadPool {
            conns: conns.into_boxed_slice(),
        })
    }

    /// Number of connections.
    pub(crate) fn size(&self) -> usize {
        self.conns.len()
    }

    /// Borrows a connection: a free one if any, else waits for this thread's home slot.
    pub(crate) fn get(&self) -> MutexGuard<'_, Connection> {
        let n = self.conns.len();
        let home = HOME.with(|h| *h) % n;
        for i in 0..n {
            match self.conns[(home + i) % n].try_lock() {
                Ok(guard) => return guard,
                // A panic while a connection was borrowed leaves it usable: statements are
                // reset when dropped and no transaction is held across calls.
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.conns[home]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
