//! Query planner statistics, kept fresh while a store grows fast (an import).
//!
//! PostgreSQL plans from statistics that autovacuum's ANALYZE refreshes, at most once a
//! minute per database and only after 10% of a table changed; and a connection keeps the
//! generic plan of a prepared statement until an ANALYZE of its tables invalidates it. So
//! during the first minutes of an import into an empty database, the statements prepared
//! while the tables were nearly empty keep plans made for nearly empty tables: measured at
//! 10,000 resources, replacing index rows hashed whole tables (400 updates/s instead of
//! 4,500/s after an ANALYZE).
//!
//! So each replica counts the operations it writes and, at 1,000, 2,000, 4,000... and then
//! every [`MAX_INTERVAL`] operations, runs `ANALYZE (SKIP_LOCKED)` over the store's tables in
//! a background task: a few tens of milliseconds (ANALYZE samples a bounded number of rows
//! whatever the table size), never on a caller's path, skipped for a table another session
//! is analysing, and never two at once from one replica. Failure costs only plan quality,
//! so it is logged, never returned.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Operations written before the first refresh.
const FIRST: u64 = 1_000;

/// The longest interval between two refreshes, in operations written by this replica.
pub(crate) const MAX_INTERVAL: u64 = 100_000;

/// The statement: every table the store's queries plan over.
const ANALYZE: &str = "ANALYZE (SKIP_LOCKED) versions, resources, idx_string, idx_token, \
     idx_reference, idx_date, idx_number, idx_quantity, idx_uri, idx_composite, contained";

/// One replica's count of written operations and its next refresh point.
#[derive(Debug)]
pub(crate) struct Stats {
    written: AtomicU64,
    next: AtomicU64,
    running: Arc<AtomicBool>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            written: AtomicU64::new(0),
            next: AtomicU64::new(FIRST),
            running: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Stats {
    /// Counts `ops` written operations; starts a refresh when a threshold is passed.
    pub(crate) fn note(&self, pool: &deadpool_postgres::Pool, ops: usize) {
        let ops = u64::try_from(ops).unwrap_or(u64::MAX);
        let total = self
            .written
            .fetch_add(ops, Ordering::Relaxed)
            .saturating_add(ops);
        let next = self.next.load(Ordering::Relaxed);
        if total < next {
            return;
        }
        let following = total.saturating_add(total.clamp(FIRST, MAX_INTERVAL));
        if self
            .next
            .compare_exchange(next, following, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // another writer took this threshold
        }
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, running) = (pool.clone(), Arc::clone(&self.running));
        tokio::spawn(async move {
            refresh(&pool).await;
            running.store(false, Ordering::Release);
        });
    }
}

/// Runs the ANALYZE on a pooled connection.
pub(crate) async fn refresh(pool: &deadpool_postgres::Pool) {
    let started = std::time::Instant::now();
    let result = match pool.get().await {
        Ok(conn) => conn
            .batch_execute(ANALYZE)
            .await
            .map_err(|e| crate::map_pg(&e)),
        Err(e) => Err(crate::error::map_pool(&e)),
    };
    match result {
        Ok(()) => tracing::debug!(
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "refreshed query planner statistics"
        ),
        Err(e) => tracing::warn!(error = %e, "could not refresh query planner statistics"),
    }
}
