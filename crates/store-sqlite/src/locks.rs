//! Named locks within this process ([`caduceus_store::Store::lock`]): the embedded store is
//! opened by one process, so a process-wide lock is a store-wide one.
//!
//! Each key has a lock of its own (looked up by a 64-bit hash of the key, so two keys share
//! one only with negligible probability). A caller may hold several at once, taken in
//! sorted key order (a transaction's conditional creates): that is deadlock-free only if
//! distinct keys are distinct locks, which a small fixed set of hashed stripes would not
//! give (two keys of one bundle on one stripe would wait for each other forever).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Weak};

use tokio::sync::{Mutex, OwnedMutexGuard};

/// Dead entries (no holder, no waiter) are swept when the table grows past this.
const SWEEP_AT: usize = 1024;

/// One lock per key hash, created on first use and forgotten when nobody holds it.
pub(crate) struct KeyLocks {
    table: std::sync::Mutex<HashMap<u64, Weak<Mutex<()>>>>,
}

impl KeyLocks {
    pub(crate) fn new() -> KeyLocks {
        KeyLocks {
            table: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Waits for, and holds, the lock of `key`.
    pub(crate) async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let hash = h.finish();
        let lock = {
            // The table is only touched briefly, never across an await; a poisoned table
            // (a panic while touching it) still holds valid entries.
            let mut table = self
                .table
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if table.len() >= SWEEP_AT {
                table.retain(|_, w| w.strong_count() > 0);
            }
            match table.get(&hash).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(Mutex::new(()));
                    table.insert(hash, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn distinct_keys_never_wait_for_each_other() {
        let locks = KeyLocks::new();
        // Far more keys than any striped table would have: all held at once.
        let mut held = Vec::new();
        for n in 0..5000 {
            held.push(locks.lock(&format!("key {n}")).await);
        }
        drop(held);
        let table_len = locks.table.lock().map(|t| t.len()).unwrap_or(0);
        assert!(table_len <= 5000);
    }

    #[tokio::test]
    async fn one_key_is_exclusive() {
        let locks = Arc::new(KeyLocks::new());
        let first = locks.lock("k").await;
        let other = Arc::clone(&locks);
        let waiter = tokio::spawn(async move { other.lock("k").await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(first);
        let second = waiter.await;
        assert!(second.is_ok());
    }
}
