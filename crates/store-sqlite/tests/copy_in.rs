//! `Store::copy_in` on the embedded store: versions copied verbatim, in order, with the
//! current state pointing at each resource's highest version.

mod common;

use caduceus_store::{HistoryQuery, HistoryScope, Store, StoreError};
use caduceus_store_sqlite::SqliteStore;
use common::{TempDir, create, delete, update};

async fn all_versions(store: &SqliteStore) -> Vec<caduceus_store::StoredVersion> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan_versions(after, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        out.extend(page);
    }
    out
}

#[tokio::test]
async fn copies_every_version_in_order_and_refuses_duplicates() {
    let src_dir = TempDir::new("copy-src");
    let dst_dir = TempDir::new("copy-dst");
    let src = SqliteStore::open(src_dir.path()).unwrap();
    src.write(vec![create("a", "One"), create("b", "Two")])
        .await
        .unwrap();
    src.write(vec![update("a", "Uno", Some(1))]).await.unwrap();
    src.write(vec![delete("b", Some(1))]).await.unwrap();
    src.write(vec![update("a", "Eins", Some(2))]).await.unwrap();
    src.write(vec![update("b", "Zwei", None)]).await.unwrap();
    let versions = all_versions(&src).await;
    assert_eq!(versions.len(), 6);

    let dst = SqliteStore::open(dst_dir.path()).unwrap();
    // Batches that split a resource's versions, as `caduceus copy` sends them.
    for chunk in versions.chunks(4) {
        dst.copy_in(chunk.to_vec()).await.unwrap();
    }
    assert_eq!(dst.count_versions().await.unwrap(), 6);
    assert_eq!(dst.count_live(None).await.unwrap(), 2);
    let copied = all_versions(&dst).await;
    for (s, d) in versions.iter().zip(&copied) {
        assert_eq!(
            (
                &s.resource_type,
                &s.id,
                s.version,
                s.last_updated,
                s.method,
                &s.body
            ),
            (
                &d.resource_type,
                &d.id,
                d.version,
                d.last_updated,
                d.method,
                &d.body
            ),
            "copied verbatim, in write order"
        );
    }
    assert!(copied.windows(2).all(|w| w[0].seq < w[1].seq));

    let a = dst.read("Patient", "a").await.unwrap().unwrap();
    assert_eq!(a.version, 3);
    let b = dst.read("Patient", "b").await.unwrap().unwrap();
    assert_eq!((b.version, b.is_deleted()), (3, false));
    let history = dst
        .history(&HistoryQuery {
            scope: HistoryScope::Instance("Patient".into(), "b".into()),
            since: None,
            at: None,
            before_seq: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(history.len(), 3);
    assert!(history[1].is_deleted());

    // Copying a version that is already there fails, and the batch is not applied.
    let again = vec![versions[5].clone(), versions[0].clone()];
    let err = dst.copy_in(again).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { index: 0 }),
        "{err:?}"
    );
    assert_eq!(dst.count_versions().await.unwrap(), 6);

    // The writer keeps serving ordinary writes after a copy, with later instants.
    let out = dst.write(vec![update("a", "Ein", Some(3))]).await.unwrap();
    let caduceus_store::WriteOutcome::Written { version, .. } = &out[0] else {
        panic!("not written: {out:?}");
    };
    assert_eq!(version.version, 4);
    assert!(version.last_updated > versions[5].last_updated);
}
