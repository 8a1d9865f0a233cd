//! Index maintenance: whether the store's search index was built with this binary's search
//! parameters, and rebuilding it when it was not (`caduceus reindex`).
//!
//! The store remembers the indexer's fingerprint (`caduceus_index::fingerprint`) under
//! `META_INDEX_FINGERPRINT`. An empty store takes the current one at once (every row it
//! will ever hold comes from this indexer). A store with data and another fingerprint (or
//! none: written before fingerprints existed) has a stale index: searches may miss
//! resources until a reindex has run, so the server says so at start-up.
//!
//! A reindex walks the live resources in key order, extracts each one's rows exactly as a
//! write does, and replaces them with `WriteOp::Reindex` in batches, each batch one store
//! transaction. It runs beside normal traffic: a resource written meanwhile was indexed by
//! its own write, and the store skips rows extracted from a superseded version. The
//! fingerprint is recorded only after the whole walk, so an interrupted reindex leaves the
//! index marked stale and is simply run again.

use caduceus_store::{META_INDEX_FINGERPRINT, StoreError, WriteOp, WriteOutcome};
use serde_json::Value;

use crate::Engine;

/// Whether the search index matches this binary's search parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexState {
    /// Built with the current parameters.
    Current,
    /// The store was empty: the current fingerprint was recorded now.
    Initialised,
    /// Built with other parameters (`found`; `None` when the store never recorded one):
    /// run a reindex.
    Stale {
        /// The fingerprint the store holds.
        found: Option<String>,
        /// This binary's.
        expected: String,
    },
}

/// What a reindex did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReindexSummary {
    /// Live resources visited.
    pub resources: u64,
    /// Resources whose rows were replaced.
    pub reindexed: u64,
    /// Resources skipped because a newer version was written during the walk.
    pub superseded: u64,
    /// Resources whose stored body could not be read as JSON (left as they were).
    pub unreadable: u64,
    /// Index rows written.
    pub rows: u64,
}

impl Engine {
    /// Compares the store's index fingerprint with this binary's (recording it on an empty
    /// store).
    pub async fn index_state(&self) -> Result<IndexState, StoreError> {
        let current = caduceus_index::fingerprint();
        let found = self.store.meta(META_INDEX_FINGERPRINT).await?;
        if found.as_deref() == Some(current.as_str()) {
            return Ok(IndexState::Current);
        }
        if self.store.count_live(None).await? == 0 {
            self.store
                .set_meta(META_INDEX_FINGERPRINT, &current)
                .await?;
            return Ok(IndexState::Initialised);
        }
        Ok(IndexState::Stale {
            found,
            expected: current,
        })
    }

    /// Rebuilds the search index of every live resource, `batch` resources per store
    /// transaction, calling `progress` with the number visited so far after each batch;
    /// records the current fingerprint when done.
    pub async fn reindex(
        &self,
        batch: usize,
        mut progress: impl FnMut(u64),
    ) -> Result<ReindexSummary, StoreError> {
        let batch = batch.max(1);
        let mut summary = ReindexSummary::default();
        let mut after: Option<(String, String)> = None;
        loop {
            let page = self.store.scan_current(after.clone(), batch).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.resource_type.clone(), last.id.clone()));
            let mut ops = Vec::with_capacity(page.len());
            for v in &page {
                summary.resources += 1;
                let Some(resource) = v.body.as_deref().and_then(parse_stored) else {
                    summary.unreadable += 1;
                    continue;
                };
                let index = caduceus_index::extract(&resource);
                summary.rows += index.rows.len() as u64;
                summary.rows += index
                    .contained
                    .iter()
                    .map(|c| c.rows.len() as u64)
                    .sum::<u64>();
                ops.push(WriteOp::Reindex {
                    resource_type: v.resource_type.clone(),
                    id: v.id.clone(),
                    version: v.version,
                    index: index.rows,
                    contained: index.contained,
                });
            }
            for outcome in self.store.write(ops).await? {
                match outcome {
                    WriteOutcome::Reindexed { replaced: true } => summary.reindexed += 1,
                    _ => summary.superseded += 1,
                }
            }
            progress(summary.resources);
        }
        self.store
            .set_meta(META_INDEX_FINGERPRINT, &caduceus_index::fingerprint())
            .await?;
        Ok(summary)
    }
}

/// A stored body as the write path indexed it: `meta.versionId` and `meta.lastUpdated` are
/// the store's own and were not part of what was indexed.
fn parse_stored(body: &[u8]) -> Option<Value> {
    let mut resource = crate::exact_json::parse(body).ok()?;
    if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
    }
    Some(resource)
}
