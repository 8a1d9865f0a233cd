//! Search execution: `caduceus_search::SearchQuery` translated to SQL over the `idx_*`
//! tables (migration 2).

use caduceus_search::SearchQuery;
use caduceus_store::StoreError;
use caduceus_store::search::SearchPage;

use crate::SqliteStore;

/// Runs one page of a search.
pub(crate) async fn run(
    _store: &SqliteStore,
    _query: &SearchQuery,
    _cursor: Option<&str>,
) -> Result<SearchPage, StoreError> {
    Err(StoreError::Unsupported(
        "search on the embedded store".into(),
    ))
}
