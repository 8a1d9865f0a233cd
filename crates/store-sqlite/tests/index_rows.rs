//! Search index rows follow the current version: written with it, replaced by an update,
//! removed by a delete, and never left behind by a refused write.

mod common;

use caduceus_store::index::{IndexRow, IndexValue};
use caduceus_store::{Method, Store, StoreError, WriteOp};
use caduceus_store_sqlite::{DB_FILE, SqliteStore};
use common::{TempDir, patient};

fn family(name: &str) -> Vec<IndexRow> {
    vec![
        IndexRow {
            param: "family",
            value: IndexValue::String {
                normalized: name.to_lowercase(),
                exact: name.into(),
            },
        },
        IndexRow {
            param: "active",
            value: IndexValue::Token {
                system: None,
                code: Some("true".into()),
                text: None,
            },
        },
    ]
}

fn rows(dir: &TempDir, table: &str, id: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let column = if table == "idx_string" {
        "exact"
    } else {
        "code"
    };
    let mut stmt = conn
        .prepare(&format!("SELECT param || '=' || {column} FROM {table} WHERE type = 'Patient' AND id = ?1 ORDER BY 1"))
        .unwrap();
    stmt.query_map([id], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn rows_follow_the_current_version() {
    let dir = TempDir::new("index-rows");
    let store = SqliteStore::open(dir.path()).unwrap();
    let create = WriteOp::Create {
        resource_type: "Patient".into(),
        id: "p1".into(),
        resource: patient("Alpha"),
        index: family("Alpha"),
        contained: Vec::new(),
    };
    store.write(vec![create]).await.unwrap();
    assert_eq!(rows(&dir, "idx_string", "p1"), ["family=Alpha"]);
    assert_eq!(rows(&dir, "idx_token", "p1"), ["active=true"]);

    let update = WriteOp::Update {
        resource_type: "Patient".into(),
        id: "p1".into(),
        resource: patient("Beta"),
        index: family("Beta")[..1].to_vec(),
        contained: Vec::new(),
        if_match: Some(1),
        method: Method::Update,
    };
    store.write(vec![update]).await.unwrap();
    assert_eq!(
        rows(&dir, "idx_string", "p1"),
        ["family=Beta"],
        "the update replaces the rows"
    );
    assert!(
        rows(&dir, "idx_token", "p1").is_empty(),
        "rows the new version lacks are gone"
    );

    // A refused write (stale If-Match) leaves the rows of the current version.
    let stale = WriteOp::Update {
        resource_type: "Patient".into(),
        id: "p1".into(),
        resource: patient("Gamma"),
        index: family("Gamma"),
        contained: Vec::new(),
        if_match: Some(1),
        method: Method::Update,
    };
    assert!(matches!(
        store.write(vec![stale]).await,
        Err(StoreError::VersionConflict { .. })
    ));
    assert_eq!(rows(&dir, "idx_string", "p1"), ["family=Beta"]);

    store
        .write(vec![WriteOp::Delete {
            resource_type: "Patient".into(),
            id: "p1".into(),
            if_match: None,
        }])
        .await
        .unwrap();
    assert!(
        rows(&dir, "idx_string", "p1").is_empty(),
        "a delete removes the rows"
    );
}
