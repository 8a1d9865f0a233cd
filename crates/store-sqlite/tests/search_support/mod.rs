//! Helpers for the search tests: a store whose resources carry the index rows
//! `caduceus-index` extracts, and searches parsed by `caduceus-search`, paged to the end.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use caduceus_search::{ParseOptions, SearchQuery};
use caduceus_store::search::SearchPage;
use caduceus_store::{Method, Store, StoreError, WriteOp};
use caduceus_store_sqlite::SqliteStore;
use serde_json::Value;

/// A store in a fresh temporary folder (removed on drop).
pub struct TestStore {
    pub store: SqliteStore,
    dir: PathBuf,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestStore {
    pub fn new(label: &str) -> TestStore {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "caduceus-search-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir).expect("open store");
        TestStore { store, dir }
    }

    /// The store's data folder.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Creates `resource` (which has `resourceType` and `id`) with its index rows.
    pub async fn create(&self, resource: Value) {
        self.store
            .write(vec![op(resource, false)])
            .await
            .expect("create");
    }

    /// Creates many resources in one write.
    pub async fn create_all(&self, resources: Vec<Value>) {
        let ops = resources.into_iter().map(|r| op(r, false)).collect();
        self.store.write(ops).await.expect("create all");
    }

    /// Updates `resource` with its new index rows.
    pub async fn update(&self, resource: Value) {
        self.store
            .write(vec![op(resource, true)])
            .await
            .expect("update");
    }

    pub async fn delete(&self, resource_type: &str, id: &str) {
        self.store
            .write(vec![WriteOp::Delete {
                resource_type: resource_type.into(),
                id: id.into(),
                if_match: None,
            }])
            .await
            .expect("delete");
    }

    /// One page.
    pub async fn page(
        &self,
        q: &SearchQuery,
        cursor: Option<&str>,
    ) -> Result<SearchPage, StoreError> {
        self.store.search(q, cursor).await
    }

    /// Every match of a search over `types`, as `Type/id`, in result order, all pages.
    pub async fn all(&self, types: &[&str], params: &[(&str, &str)]) -> Vec<String> {
        self.try_all(types, params).await.expect("search")
    }

    pub async fn try_all(
        &self,
        types: &[&str],
        params: &[(&str, &str)],
    ) -> Result<Vec<String>, StoreError> {
        let q = query(types, params);
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let page = self.store.search(&q, cursor.as_deref()).await?;
            out.extend(
                page.matches
                    .iter()
                    .map(|m| format!("{}/{}", m.resource_type, m.id)),
            );
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
        panic!("paging does not end");
    }

    /// Matches as sorted ids (for set comparisons), one type.
    pub async fn ids(&self, types: &[&str], params: &[(&str, &str)]) -> Vec<String> {
        let mut v: Vec<String> = self
            .all(types, params)
            .await
            .into_iter()
            .map(|k| k.split_once('/').map_or(k.clone(), |(_, id)| id.to_owned()))
            .collect();
        v.sort();
        v
    }
}

/// Parses a search (panics on a parse error: the tests only send valid searches).
pub fn query(types: &[&str], params: &[(&str, &str)]) -> SearchQuery {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let q = caduceus_search::parse(types, &params, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("parse {params:?}: {e:?}"));
    assert!(
        q.ignored.is_empty(),
        "ignored parameters in {params:?}: {:?}",
        q.ignored
    );
    q
}

/// A create or update with the index rows of the resource.
pub fn op(resource: Value, update: bool) -> WriteOp {
    let resource_type = resource["resourceType"].as_str().expect("type").to_owned();
    let id = resource["id"].as_str().expect("id").to_owned();
    let extraction = caduceus_index::extract(&resource);
    let (index, contained) = (extraction.rows, extraction.contained);
    if update {
        WriteOp::Update {
            resource_type,
            id,
            resource,
            index,
            contained,
            if_match: None,
            method: Method::Update,
        }
    } else {
        WriteOp::Create {
            resource_type,
            id,
            resource,
            index,
            contained,
        }
    }
}
