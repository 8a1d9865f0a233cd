//! Search execution over the PostgreSQL schema. A placeholder until the shared SQL builder
//! lands: every search answers `Unsupported` (501), so the rest of the store can be used
//! and tested meanwhile.

use caduceus_store::StoreError;
use caduceus_store::search::SearchPage;

use crate::PostgresStore;

/// One page of a search (see `caduceus_store::Store::search`).
pub(crate) async fn run(
    store: &PostgresStore,
    query: &caduceus_search::SearchQuery,
    cursor: Option<&str>,
) -> Result<SearchPage, StoreError> {
    let _ = (store, query, cursor);
    Err(StoreError::Unsupported("search".into()))
}
