//! Named locks within this process ([`caduceus_store::Store::lock`]): the embedded store is
//! opened by one process, so a process-wide lock is a store-wide one. Keys hash onto a
//! fixed set of async mutexes; two keys on one mutex only wait for each other.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

const STRIPES: usize = 256;

/// A fixed set of mutexes that keys hash onto.
pub(crate) struct KeyLocks {
    stripes: Vec<Arc<Mutex<()>>>,
}

impl KeyLocks {
    pub(crate) fn new() -> KeyLocks {
        KeyLocks {
            stripes: (0..STRIPES).map(|_| Arc::new(Mutex::new(()))).collect(),
        }
    }

    /// Waits for, and holds, the lock of `key`.
    pub(crate) async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let stripe = usize::try_from(h.finish() % STRIPES as u64).unwrap_or(0);
        Arc::clone(&self.stripes[stripe]).lock_owned().await
    }
}
