//! The store's semantics against a real SQLite database in a temporary folder.

mod common;

use std::sync::Arc;

use caduceus_store::{
    HistoryQuery, HistoryScope, Method, Store, StoreError, StoredVersion, WriteOp, WriteOutcome,
};
use caduceus_store_sqlite::{SqliteStore, SqliteStoreError};
use common::{TempDir, create, delete, observation, update};

fn written(outcome: &WriteOutcome) -> (&StoredVersion, bool) {
    match outcome {
        WriteOutcome::Written { version, created } => (version, *created),
        other => panic!("expected Written, got {other:?}"),
    }
}

async fn write_one(store: &SqliteStore, op: WriteOp) -> Result<WriteOutcome, StoreError> {
    let mut out = store.write(vec![op]).await?;
    assert_eq!(out.len(), 1);
    Ok(out.remove(0))
}

fn body_json(v: &StoredVersion) -> serde_json::Value {
    serde_json::from_slice(v.body.as_ref().expect("a body")).expect("JSON body")
}

fn query(scope: HistoryScope) -> HistoryQuery {
    HistoryQuery {
        scope,
        since: None,
        at: None,
        before_seq: None,
        limit: 100,
    }
}

#[tokio::test]
async fn create_read_vread_update_delete() {
    let dir = TempDir::new("crud");
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.read("Patient", "p1").await.unwrap(), None);

    let out = write_one(&store, create("p1", "Smith")).await.unwrap();
    let (v1, created) = written(&out);
    assert!(created);
    assert_eq!((v1.version, v1.method), (1, Method::Create));
    let json = body_json(v1);
    assert_eq!(json["id"], "p1");
    assert_eq!(json["meta"]["versionId"], "1");
    assert_eq!(json["name"][0]["family"], "Smith");

    let read = store.read("Patient", "p1").await.unwrap().unwrap();
    assert_eq!(&read, v1, "a read returns exactly what the write returned");

    let out = write_one(&store, update("p1", "Jones", Some(1)))
        .await
        .unwrap();
    let (v2, created) = written(&out);
    assert!(!created);
    assert_eq!((v2.version, v2.method), (2, Method::Update));
    assert!(v2.seq > v1.seq);
    assert_eq!(body_json(v2)["meta"]["versionId"], "2");
    assert_eq!(store.read("Patient", "p1").await.unwrap().unwrap(), *v2);
    assert_eq!(store.vread("Patient", "p1", 1).await.unwrap().unwrap(), *v1);
    assert_eq!(store.vread("Patient", "p1", 2).await.unwrap().unwrap(), *v2);
    assert_eq!(store.vread("Patient", "p1", 3).await.unwrap(), None);
    assert_eq!(store.vread("Patient", "nope", 1).await.unwrap(), None);
    assert_eq!(store.vread("Observation", "p1", 1).await.unwrap(), None);

    let out = write_one(&store, delete("p1", None)).await.unwrap();
    let WriteOutcome::Deleted { version: v3 } = out else {
        panic!("expected Deleted, got {out:?}")
    };
    assert_eq!(
        (v3.version, v3.method, v3.body.is_none()),
        (3, Method::Delete, true)
    );
    let read = store.read("Patient", "p1").await.unwrap().unwrap();
    assert!(read.is_deleted());
    assert_eq!(read.version, 3);
    assert_eq!(store.count_live(Some("Patient")).await.unwrap(), 0);

    // Deleting again, or deleting what never existed, writes nothing.
    assert_eq!(
        write_one(&store, delete("p1", None)).await.unwrap(),
        WriteOutcome::NothingToDelete
    );
    assert_eq!(
        write_one(&store, delete("never", None)).await.unwrap(),
        WriteOutcome::NothingToDelete
    );
    assert_eq!(store.read("Patient", "never").await.unwrap(), None);

    // Create on a deleted id: it has versions, so it already exists.
    let err = write_one(&store, create("p1", "X")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { index: 0 }),
        "{err:?}"
    );

    // Updating a deleted resource revives it as version 4, "created".
    let out = write_one(&store, update("p1", "Back", None)).await.unwrap();
    let (v4, created) = written(&out);
    assert!(created);
    assert_eq!(v4.version, 4);
    assert_eq!(store.count_live(None).await.unwrap(), 1);
    store.ping().await.unwrap();
}

#[tokio::test]
async fn update_as_create_and_patch_method() {
    let dir = TempDir::new("upsert");
    let store = SqliteStore::open(dir.path()).unwrap();
    let out = write_one(&store, update("u1", "A", None)).await.unwrap();
    let (v, created) = written(&out);
    assert!(created);
    assert_eq!((v.version, v.method), (1, Method::Update));

    let patch = WriteOp::Update {
        resource_type: "Patient".into(),
        id: "u1".into(),
        resource: common::patient("B"),
        index: Vec::new(),
        contained: Vec::new(),
        if_match: None,
        method: Method::Patch,
    };
    let out = write_one(&store, patch).await.unwrap();
    let (v, created) = written(&out);
    assert!(!created);
    assert_eq!((v.version, v.method), (2, Method::Patch));
}

#[tokio::test]
async fn client_meta_is_replaced_and_decimals_survive() {
    let dir = TempDir::new("meta");
    let store = SqliteStore::open(dir.path()).unwrap();
    let op = WriteOp::Create {
        resource_type: "Patient".into(),
        id: "m1".into(),
        resource: serde_json::json!({
            "resourceType": "Patient",
            "id": "other",
            "meta": {"versionId": "99", "lastUpdated": "2000-01-01T00:00:00Z", "tag": [{"code": "t"}]}
        }),
        index: Vec::new(),
        contained: Vec::new(),
    };
    let out = write_one(&store, op).await.unwrap();
    let (v, _) = written(&out);
    let json = body_json(v);
    assert_eq!(json["id"], "m1");
    assert_eq!(json["meta"]["versionId"], "1");
    assert_eq!(
        json["meta"]["lastUpdated"],
        caduceus_model::ids::format_instant(v.last_updated)
    );
    assert_eq!(json["meta"]["tag"][0]["code"], "t");

    let out = write_one(&store, observation("o1")).await.unwrap();
    let (v, _) = written(&out);
    let text = std::str::from_utf8(v.body.as_ref().unwrap()).unwrap();
    assert!(text.contains(r#""value":200.00"#), "{text}");
}

#[tokio::test]
async fn if_match_conflicts() {
    let dir = TempDir::new("ifmatch");
    let store = SqliteStore::open(dir.path()).unwrap();
    // If-Match on a missing resource: conflict with no current version.
    let err = write_one(&store, update("a", "A", Some(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::VersionConflict {
                index: 0,
                expected: 1,
                current: None
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.read("Patient", "a").await.unwrap(), None);

    write_one(&store, create("a", "A")).await.unwrap();
    write_one(&store, update("a", "B", Some(1))).await.unwrap();
    let err = write_one(&store, update("a", "C", Some(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::VersionConflict {
                index: 0,
                expected: 1,
                current: Some(2)
            }
        ),
        "{err:?}"
    );
    let err = write_one(&store, delete("a", Some(5))).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::VersionConflict {
                expected: 5,
                current: Some(2),
                ..
            }
        ),
        "{err:?}"
    );
    let err = write_one(&store, delete("missing", Some(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionConflict { current: None, .. }),
        "{err:?}"
    );
    assert!(matches!(
        write_one(&store, delete("a", Some(2))).await.unwrap(),
        WriteOutcome::Deleted { .. }
    ));
    assert_eq!(
        store.read("Patient", "a").await.unwrap().unwrap().version,
        3
    );
    // The error text never holds resource content.
    assert!(!err.to_string().contains("Patient"));
}

#[tokio::test]
async fn a_write_is_all_or_nothing() {
    let dir = TempDir::new("atomic");
    let store = SqliteStore::open(dir.path()).unwrap();
    write_one(&store, create("x", "X")).await.unwrap();
    let before = store.read("Patient", "x").await.unwrap().unwrap();
    let before_history = store.history(&query(HistoryScope::System)).await.unwrap();

    // The third op conflicts: nothing of the first two may remain.
    let err = store
        .write(vec![
            create("new1", "N"),
            update("x", "Y", Some(1)),
            update("x2", "Z", Some(7)),
            create("new2", "N"),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionConflict { index: 2, .. }),
        "{err:?}"
    );
    assert_eq!(store.read("Patient", "new1").await.unwrap(), None);
    assert_eq!(store.read("Patient", "x").await.unwrap().unwrap(), before);
    assert_eq!(store.vread("Patient", "x", 2).await.unwrap(), None);
    assert_eq!(
        store.history(&query(HistoryScope::System)).await.unwrap(),
        before_history
    );
    assert_eq!(store.count_live(None).await.unwrap(), 1);

    // Same with AlreadyExists in the middle.
    let err = store
        .write(vec![create("new1", "N"), create("x", "again")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { index: 1 }),
        "{err:?}"
    );
    assert_eq!(store.read("Patient", "new1").await.unwrap(), None);

    // And a successful multi-op write returns one outcome per op, sharing one instant.
    let out = store
        .write(vec![
            create("new1", "N"),
            update("x", "Y", Some(1)),
            delete("ghost", None),
            observation("o1"),
        ])
        .await
        .unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(out[2], WriteOutcome::NothingToDelete);
    let (a, _) = written(&out[0]);
    let (b, _) = written(&out[1]);
    let (c, _) = written(&out[3]);
    assert!(a.seq < b.seq && b.seq < c.seq);
    assert_eq!(a.last_updated, c.last_updated);
    assert_eq!(store.count_live(None).await.unwrap(), 3);
    assert_eq!(store.count_live(Some("Observation")).await.unwrap(), 1);
    assert_eq!(store.count_live(Some("Nothing")).await.unwrap(), 0);
}

#[tokio::test]
async fn duplicate_in_write_is_refused_before_touching_the_database() {
    let dir = TempDir::new("dup");
    let store = SqliteStore::open(dir.path()).unwrap();
    let err = store
        .write(vec![
            create("d1", "A"),
            observation("d1"),
            update("d2", "B", None),
            delete("d1", None),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateInWrite { index: 3 }),
        "{err:?}"
    );
    assert_eq!(store.count_live(None).await.unwrap(), 0);
    assert!(store.write(vec![]).await.unwrap().is_empty());
}

#[tokio::test]
async fn versions_are_gap_free_and_last_updated_monotonic() {
    let dir = TempDir::new("gapfree");
    let store = SqliteStore::open(dir.path()).unwrap();
    write_one(&store, create("g", "0")).await.unwrap();
    for i in 1..30u64 {
        // Interleave refused writes: they must not consume versions.
        let _ = write_one(&store, update("g", "bad", Some(i + 10)))
            .await
            .unwrap_err();
        let _ = write_one(&store, create("g", "bad")).await.unwrap_err();
        if i % 7 == 0 {
            write_one(&store, delete("g", Some(i))).await.unwrap();
        } else {
            write_one(&store, update("g", &i.to_string(), None))
                .await
                .unwrap();
        }
    }
    let mut h = store
        .history(&query(HistoryScope::Instance("Patient".into(), "g".into())))
        .await
        .unwrap();
    h.reverse();
    let versions: Vec<u64> = h.iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=30).collect::<Vec<_>>());
    for pair in h.windows(2) {
        assert!(pair[0].seq < pair[1].seq);
        assert!(pair[0].last_updated < pair[1].last_updated);
    }
}

#[tokio::test]
async fn history_scopes_filters_and_paging() {
    let dir = TempDir::new("history");
    let store = SqliteStore::open(dir.path()).unwrap();
    // p1 v1, o1 v1, p2 v1, p1 v2, o1 v2(delete), p2 v2
    write_one(&store, create("p1", "a")).await.unwrap();
    write_one(&store, observation("o1")).await.unwrap();
    write_one(&store, create("p2", "b")).await.unwrap();
    write_one(&store, update("p1", "c", Some(1))).await.unwrap();
    write_one(
        &store,
        WriteOp::Delete {
            resource_type: "Observation".into(),
            id: "o1".into(),
            if_match: None,
        },
    )
    .await
    .unwrap();
    write_one(&store, update("p2", "d", None)).await.unwrap();

    let system = store.history(&query(HistoryScope::System)).await.unwrap();
    assert_eq!(system.len(), 6);
    assert!(
        system.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first"
    );
    let names: Vec<(String, u64)> = system.iter().map(|v| (v.id.clone(), v.version)).collect();
    assert_eq!(
        names,
        [
            ("p2", 2),
            ("o1", 2),
            ("p1", 2),
            ("p2", 1),
            ("o1", 1),
            ("p1", 1)
        ]
        .map(|(i, v)| (i.to_string(), v))
    );
    assert!(system[1].is_deleted());

    let patients = store
        .history(&query(HistoryScope::Type("Patient".into())))
        .await
        .unwrap();
    assert_eq!(patients.len(), 4);
    assert!(patients.iter().all(|v| v.resource_type == "Patient"));
    let p1 = store
        .history(&query(HistoryScope::Instance(
            "Patient".into(),
            "p1".into(),
        )))
        .await
        .unwrap();
    assert_eq!(p1.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    assert!(
        store
            .history(&query(HistoryScope::Instance(
                "Patient".into(),
                "zz".into()
            )))
            .await
            .unwrap()
            .is_empty()
    );

    // Paging with the seq cursor walks everything exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .history(&HistoryQuery {
                before_seq: cursor,
                limit: 4,
                ..query(HistoryScope::System)
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        cursor = page.last().map(|v| v.seq);
        seen.extend(page);
    }
    assert_eq!(seen, system);
    let zero = HistoryQuery {
        limit: 0,
        ..query(HistoryScope::System)
    };
    assert!(store.history(&zero).await.unwrap().is_empty());

    // _since: inclusive, by last_updated.
    let since = system[2].last_updated; // p1 v2
    let recent = store
        .history(&HistoryQuery {
            since: Some(since),
            ..query(HistoryScope::System)
        })
        .await
        .unwrap();
    assert_eq!(recent, system[..3].to_vec());
    let recent_patients = store
        .history(&HistoryQuery {
            since: Some(since),
            ..query(HistoryScope::Type("Patient".into()))
        })
        .await
        .unwrap();
    assert_eq!(recent_patients.len(), 2);
    let future = store
        .history(&HistoryQuery {
            since: Some(system[0].last_updated + 1),
            ..query(HistoryScope::System)
        })
        .await
        .unwrap();
    assert!(future.is_empty());
    let all = store
        .history(&HistoryQuery {
            since: Some(0),
            before_seq: Some(system[0].seq),
            ..query(HistoryScope::System)
        })
        .await
        .unwrap();
    assert_eq!(all, system[1..].to_vec());
}

#[tokio::test]
async fn history_at_returns_versions_current_within_the_window() {
    let dir = TempDir::new("at");
    let store = SqliteStore::open(dir.path()).unwrap();
    let t = |o: &WriteOutcome| match o {
        WriteOutcome::Written { version, .. } | WriteOutcome::Deleted { version } => {
            version.last_updated
        }
        WriteOutcome::NothingToDelete | WriteOutcome::Reindexed { .. } => panic!("nothing written"),
    };
    let a1 = t(&write_one(&store, create("a", "1")).await.unwrap());
    let b1 = t(&write_one(&store, create("b", "1")).await.unwrap());
    let a2 = t(&write_one(&store, update("a", "2", None)).await.unwrap());
    let a3 = t(&write_one(&store, update("a", "3", None)).await.unwrap());
    let b2 = t(&write_one(&store, delete("b", None)).await.unwrap());
    assert!(a1 < b1 && b1 < a2 && a2 < a3 && a3 < b2);

    let at = |start: i64, end: i64| {
        let store = store.clone();
        async move {
            store
                .history(&HistoryQuery {
                    at: Some((start, end)),
                    ..query(HistoryScope::System)
                })
                .await
                .unwrap()
                .into_iter()
                .map(|v| (v.id, v.version))
                .collect::<Vec<_>>()
        }
    };
    let ids = |v: &[(&str, u64)]| {
        v.iter()
            .map(|(i, n)| (i.to_string(), *n))
            .collect::<Vec<_>>()
    };
    // Before anything existed.
    assert!(at(0, a1).await.is_empty());
    // An instant just after b1: a v1 and b v1 were current.
    assert_eq!(at(b1, b1 + 1).await, ids(&[("b", 1), ("a", 1)]));
    // Exactly at a2: a v2 (written at a2) and b v1; a v1 was replaced at a2, so not current.
    assert_eq!(at(a2, a2 + 1).await, ids(&[("a", 2), ("b", 1)]));
    // A window spanning a2..a3: a v2 and a v3 (and a v1 up to a2? no: the window starts at a2).
    assert_eq!(at(a2, a3 + 1).await, ids(&[("a", 3), ("a", 2), ("b", 1)]));
    // A window from before a2 includes a v1 too.
    assert_eq!(
        at(a2 - 1, a2 + 1).await,
        ids(&[("a", 2), ("b", 1), ("a", 1)])
    );
    // After everything: the latest of each, the tombstone included.
    assert_eq!(at(b2 + 10, b2 + 20).await, ids(&[("b", 2), ("a", 3)]));
    // Instance scope with _at.
    let inst = store
        .history(&HistoryQuery {
            at: Some((a2, a3)),
            ..query(HistoryScope::Instance("Patient".into(), "a".into()))
        })
        .await
        .unwrap();
    assert_eq!(inst.iter().map(|v| v.version).collect::<Vec<_>>(), [2]);
}

#[tokio::test]
async fn data_persists_across_reopen_and_migrations_are_recorded() {
    let dir = TempDir::new("reopen");
    let seq;
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(
            store.schema_version(),
            SqliteStore::supported_schema_version()
        );
        assert_eq!(store.data_dir(), dir.path());
        assert!(store.db_path().exists());
        let out = write_one(&store, create("keep", "K")).await.unwrap();
        seq = written(&out).0.seq;
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        store.schema_version(),
        SqliteStore::supported_schema_version()
    );
    let read = store.read("Patient", "keep").await.unwrap().unwrap();
    assert_eq!(read.seq, seq);
    // New writes continue the sequence and time.
    let out = write_one(&store, update("keep", "L", Some(1)))
        .await
        .unwrap();
    let (v2, _) = written(&out);
    assert!(v2.seq > seq && v2.last_updated > read.last_updated);
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);

    let conn = rusqlite::Connection::open(store.db_path()).unwrap();
    let applied: i64 = conn
        .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, SqliteStore::supported_schema_version());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = TempDir::new("newer");
    let path = {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.db_path().to_owned()
    };
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    match SqliteStore::open(dir.path()) {
        Err(SqliteStoreError::SchemaTooNew { found, supported }) => {
            assert_eq!(found, 999);
            assert_eq!(supported, SqliteStore::supported_schema_version());
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_with_if_match_retries_are_gap_free() {
    let dir = TempDir::new("concurrent");
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    write_one(&store, create("hot", "0")).await.unwrap();
    const TASKS: usize = 8;
    const UPDATES: usize = 50;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for i in 0..UPDATES {
                loop {
                    let current = store.read("Patient", "hot").await.unwrap().unwrap().version;
                    match store
                        .write(vec![update("hot", &format!("{t}-{i}"), Some(current))])
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::VersionConflict { .. }) => conflicts += 1,
                        Err(e) => panic!("unexpected error {e:?}"),
                    }
                }
            }
            conflicts
        }));
    }
    // Also independent writers creating their own resources at the same time.
    for t in 0..4 {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            for i in 0..50 {
                store
                    .write(vec![create(&format!("own-{t}-{i}"), "x")])
                    .await
                    .unwrap();
            }
            0
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let total = (TASKS * UPDATES + 1) as u64;
    let current = store.read("Patient", "hot").await.unwrap().unwrap();
    assert_eq!(current.version, total);
    let mut h = store
        .history(&HistoryQuery {
            limit: 10_000,
            ..query(HistoryScope::Instance("Patient".into(), "hot".into()))
        })
        .await
        .unwrap();
    h.reverse();
    assert_eq!(
        h.iter().map(|v| v.version).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    assert_eq!(store.count_live(None).await.unwrap(), 201);
    let system = store
        .history(&HistoryQuery {
            limit: 10_000,
            ..query(HistoryScope::System)
        })
        .await
        .unwrap();
    assert!(
        system
            .windows(2)
            .all(|w| w[0].seq > w[1].seq && w[0].last_updated >= w[1].last_updated)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_during_writes_see_whole_versions() {
    let dir = TempDir::new("readwrite");
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    write_one(&store, create("r", "0")).await.unwrap();
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for i in 1..=200u64 {
                // Each write changes two resources together.
                store
                    .write(vec![
                        update("r", &i.to_string(), Some(i)),
                        update("r-shadow", &i.to_string(), None),
                    ])
                    .await
                    .unwrap();
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..4 {
        let store = Arc::clone(&store);
        readers.push(tokio::spawn(async move {
            let mut last = 0;
            let mut n = 0u64;
            while last < 201 {
                let v = store.read("Patient", "r").await.unwrap().unwrap();
                assert!(v.version >= last, "reads never go back in time");
                let body = body_json(&v);
                assert_eq!(body["meta"]["versionId"], v.version.to_string());
                if v.version > 1 {
                    assert_eq!(body["name"][0]["family"], (v.version - 1).to_string());
                }
                last = v.version;
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        }));
    }
    writer.await.unwrap();
    for r in readers {
        assert!(r.await.unwrap() > 0);
    }
}

#[tokio::test]
async fn clones_share_the_store_and_errors_hide_content() {
    let dir = TempDir::new("clone");
    let store = SqliteStore::open(dir.path()).unwrap();
    let other = store.clone();
    write_one(&store, create("secret-id", "Secret"))
        .await
        .unwrap();
    assert!(other.read("Patient", "secret-id").await.unwrap().is_some());
    let err = write_one(&other, create("secret-id", "Secret"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        !text.contains("Secret") && !text.contains("secret-id"),
        "{text}"
    );
    assert!(format!("{other:?}").contains("SqliteStore"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_writes_fail_alone() {
    // Many concurrent writes are committed in shared transactions; a refused one must roll
    // back only its own changes.
    let dir = TempDir::new("group");
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    write_one(&store, create("taken", "T")).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let mut ops = vec![create(&format!("g{i}"), "G")];
            if i % 2 == 1 {
                ops.push(create("taken", "again"));
            }
            (i, store.write(ops).await)
        }));
    }
    for h in handles {
        let (i, result) = h.await.unwrap();
        if i % 2 == 1 {
            assert!(
                matches!(result, Err(StoreError::AlreadyExists { index: 1 })),
                "{result:?}"
            );
        } else {
            result.unwrap();
        }
    }
    for i in 0..200 {
        let found = store.read("Patient", &format!("g{i}")).await.unwrap();
        assert_eq!(found.is_some(), i % 2 == 0, "g{i}");
    }
    assert_eq!(store.count_live(None).await.unwrap(), 101);
    assert_eq!(
        store
            .read("Patient", "taken")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

#[tokio::test]
async fn two_stores_on_one_folder_keep_order() {
    // As if two processes shared the data folder: the write lock serialises them, and each
    // transaction reads the newest instant from the database, so seq and time still agree.
    let dir = TempDir::new("twoprocs");
    let a = SqliteStore::open(dir.path()).unwrap();
    let b = SqliteStore::open(dir.path()).unwrap();
    write_one(&a, create("shared", "0")).await.unwrap();
    for i in 1..=20u64 {
        let store = if i % 2 == 0 { &a } else { &b };
        write_one(store, update("shared", &i.to_string(), Some(i)))
            .await
            .unwrap();
    }
    let mut h = a
        .history(&query(HistoryScope::Instance(
            "Patient".into(),
            "shared".into(),
        )))
        .await
        .unwrap();
    h.reverse();
    assert_eq!(
        h.iter().map(|v| v.version).collect::<Vec<_>>(),
        (1..=21).collect::<Vec<_>>()
    );
    assert!(
        h.windows(2)
            .all(|w| w[0].seq < w[1].seq && w[0].last_updated < w[1].last_updated)
    );
    assert_eq!(
        b.read("Patient", "shared").await.unwrap().unwrap().version,
        21
    );
}
