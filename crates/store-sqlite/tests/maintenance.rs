//! Maintenance paths: `Reindex` replaces only the current version's index rows and writes
//! no version; `scan_current` walks every live resource once in key order; `store_meta`
//! keeps its values across reopening.

mod common;

use caduceus_store::index::{IndexRow, IndexValue};
use caduceus_store::{Store, WriteOp, WriteOutcome};
use caduceus_store_sqlite::{DB_FILE, SqliteStore};
use common::{TempDir, create, delete, update};

fn family_row(name: &str) -> Vec<IndexRow> {
    vec![IndexRow {
        param: "family",
        value: IndexValue::String {
            normalized: name.to_lowercase(),
            exact: name.into(),
        },
    }]
}

fn reindex(id: &str, version: u64, family: &str) -> WriteOp {
    WriteOp::Reindex {
        resource_type: "Patient".into(),
        id: id.into(),
        version,
        index: family_row(family),
        contained: Vec::new(),
    }
}

fn families(dir: &TempDir, id: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("open");
    let mut stmt = conn
        .prepare("SELECT exact FROM idx_string WHERE type = 'Patient' AND id = ?1 ORDER BY 1")
        .expect("prepare");
    stmt.query_map([id], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

#[tokio::test]
async fn reindex_replaces_rows_of_the_current_version_only() {
    let dir = TempDir::new("reindex");
    let store = SqliteStore::open(dir.path()).expect("open");
    // Written without rows, as if indexed with an older parameter set.
    store.write(vec![create("a", "Old")]).await.expect("create");
    store.write(vec![create("b", "Old")]).await.expect("create");
    store
        .write(vec![update("b", "Newer", None)])
        .await
        .expect("update");
    store
        .write(vec![create("c", "Gone")])
        .await
        .expect("create");
    store.write(vec![delete("c", None)]).await.expect("delete");
    assert!(families(&dir, "a").is_empty());

    let out = store
        .write(vec![
            reindex("a", 1, "Fresh"),
            // b is at version 2: rows extracted from version 1 must not land.
            reindex("b", 1, "Stale"),
            // c is deleted: nothing to index.
            reindex("c", 1, "Gone"),
            // never existed
            reindex("zz", 1, "Nobody"),
        ])
        .await
        .expect("reindex");
    let replaced: Vec<bool> = out
        .iter()
        .map(|o| match o {
            WriteOutcome::Reindexed { replaced } => *replaced,
            other => panic!("unexpected outcome {other:?}"),
        })
        .collect();
    assert_eq!(replaced, vec![true, false, false, false]);
    assert_eq!(families(&dir, "a"), vec!["Fresh"]);
    assert!(families(&dir, "b").is_empty());
    assert!(families(&dir, "c").is_empty());

    // No version was written: a is still at version 1, with its body untouched.
    let a = store.read("Patient", "a").await.expect("read").expect("a");
    assert_eq!(a.version, 1);
    let history = store
        .history(&caduceus_store::HistoryQuery {
            scope: caduceus_store::HistoryScope::System,
            since: None,
            at: None,
            before_seq: None,
            limit: 100,
        })
        .await
        .expect("history");
    assert_eq!(history.len(), 5, "reindex wrote versions: {history:?}");

    // A second reindex of the same version replaces, not duplicates.
    store
        .write(vec![reindex("a", 1, "Again")])
        .await
        .expect("reindex again");
    assert_eq!(families(&dir, "a"), vec!["Again"]);
}

#[tokio::test]
async fn scan_current_walks_live_resources_in_key_order() {
    let dir = TempDir::new("scan");
    let store = SqliteStore::open(dir.path()).expect("open");
    for id in ["d", "a", "c", "b", "e"] {
        store.write(vec![create(id, "X")]).await.expect("create");
    }
    store.write(vec![delete("c", None)]).await.expect("delete");
    store
        .write(vec![update("b", "Y", None)])
        .await
        .expect("update");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan_current(after.clone(), 2).await.expect("scan");
        if page.is_empty() {
            break;
        }
        for v in &page {
            seen.push((v.id.clone(), v.version, v.body.is_some()));
        }
        let last = page.last().expect("non-empty");
        after = Some((last.resource_type.clone(), last.id.clone()));
    }
    assert_eq!(
        seen,
        vec![
            ("a".into(), 1, true),
            ("b".into(), 2, true),
            ("d".into(), 1, true),
            ("e".into(), 1, true)
        ]
    );
}

#[tokio::test]
async fn meta_values_persist() {
    let dir = TempDir::new("meta");
    {
        let store = SqliteStore::open(dir.path()).expect("open");
        assert_eq!(store.meta("index.fingerprint").await.expect("meta"), None);
        store
            .set_meta("index.fingerprint", "one")
            .await
            .expect("set");
        store
            .set_meta("index.fingerprint", "two")
            .await
            .expect("overwrite");
        assert_eq!(
            store
                .meta("index.fingerprint")
                .await
                .expect("meta")
                .as_deref(),
            Some("two")
        );
    }
    let store = SqliteStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store
            .meta("index.fingerprint")
            .await
            .expect("meta")
            .as_deref(),
        Some("two")
    );
}

#[tokio::test]
async fn meta_insert_list_delete_and_take() {
    let dir = TempDir::new("meta-ops");
    let store = std::sync::Arc::new(SqliteStore::open(dir.path()).expect("open"));
    assert!(store.insert_meta("auth.user.b", "1").await.expect("insert"));
    assert!(!store.insert_meta("auth.user.b", "2").await.expect("again"));
    assert_eq!(
        store.meta("auth.user.b").await.expect("meta").as_deref(),
        Some("1")
    );
    store.set_meta("auth.user.a", "0").await.expect("set");
    store.set_meta("auth.userz", "x").await.expect("set");
    store.set_meta("auth.client.c", "y").await.expect("set");
    assert_eq!(
        store.meta_list("auth.user.").await.expect("list"),
        vec![
            ("auth.user.a".to_owned(), "0".to_owned()),
            ("auth.user.b".to_owned(), "1".to_owned())
        ]
    );
    assert_eq!(store.meta_list("").await.expect("all").len(), 4);
    assert!(store.delete_meta("auth.user.a").await.expect("delete"));
    assert!(!store.delete_meta("auth.user.a").await.expect("gone"));
    // Of many concurrent takers, exactly one gets the value.
    store.set_meta("auth.code.1", "once").await.expect("set");
    let takers: Vec<_> = (0..8)
        .map(|_| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move { store.take_meta("auth.code.1").await.expect("take") })
        })
        .collect();
    let mut got = Vec::new();
    for t in takers {
        got.extend(t.await.expect("join"));
    }
    assert_eq!(got, vec!["once".to_owned()]);
    assert_eq!(store.meta("auth.code.1").await.expect("meta"), None);
}
