//! What a store returns for a search. The query itself is `caduceus_search::SearchQuery`:
//! parsed, typed and resolved against the definitions before it reaches a store, so a store
//! only translates it (to SQL, say) and never re-parses values or consults search rules.
//!
//! Paging is by keyset cursor: a page ends at its last row's sort key (the `_sort` values,
//! then resource type and id), and the next page starts strictly after it. Ids never change,
//! so while other clients write, a resource that existed when paging began is neither
//! repeated nor skipped unless a write changed one of its `_sort` values.

use crate::StoredVersion;

/// One page of search results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPage {
    /// The matches of this page, in result order (current versions, never deletions). A
    /// contained resource returned as itself (`_containedType=contained`) has its own type,
    /// the id `ContainerType/containerId#localId` (its address relative to the server base,
    /// which no real id can be: ids hold neither `/` nor `#`), the `contained` entry as its
    /// body, and its container's version, seq and lastUpdated.
    pub matches: Vec<StoredVersion>,
    /// Resources `_include`d or `_revinclude`d by this page's matches (each once, none of
    /// them also in `matches`).
    pub included: Vec<StoredVersion>,
    /// True when the store's bound on included resources per page (or on `:iterate`
    /// rounds) left some out: the Bundle says so rather than look complete.
    pub included_truncated: bool,
    /// Opaque cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// The number of matches in all pages, when the query asked for it (`_total=accurate`,
    /// or `_summary=count`).
    pub total: Option<u64>,
}
