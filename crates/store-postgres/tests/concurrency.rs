//! The PostgreSQL store under concurrency, against a real server (each test its own
//! database; skipped, saying so, without `CADUCEUS_TEST_DATABASE_URL`): `If-Match` races,
//! racing creates, named locks across stores, writes locking in opposite orders.
use std::sync::Arc;
use std::time::Duration;

use caduceus_store::{HistoryScope, Store, StoreError};
use caduceus_store_postgres::testing::fresh_database;
use caduceus_store_postgres::{PgOptions, PostgresStore};

mod support;
use support::*;

#[tokio::test]
async fn concurrent_if_match_updates_let_exactly_one_win_per_version() {
    let Some(db) = fresh_database() else { return };
    let options = PgOptions {
        pool_size: 8,
        ..PgOptions::default()
    };
    // Two replicas, four writers each.
    let a = PostgresStore::open(db.url(), &options).await.expect("open");
    let b = PostgresStore::open(db.url(), &options).await.expect("open");
    a.write(vec![create("race")]).await.expect("create");
    for round in 1..=5u64 {
        let mut tasks = Vec::new();
        for n in 0..8 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                store
                    .write(vec![update("race", &format!("w{n}"), Some(round))])
                    .await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(out) => {
                    assert_eq!(written(&out[0]).0, round + 1);
                    wins += 1;
                }
                Err(StoreError::VersionConflict {
                    expected, current, ..
                }) => {
                    assert_eq!(expected, round);
                    assert_eq!(current, Some(round + 1));
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
    let h = a
        .history(&history(HistoryScope::Instance(
            "Patient".into(),
            "race".into(),
        )))
        .await
        .expect("history");
    assert_eq!(
        h.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![6, 5, 4, 3, 2, 1]
    );
    assert!(h.windows(2).all(|w| w[0].last_updated > w[1].last_updated));
}

#[tokio::test]
async fn concurrent_creates_of_one_id_make_one_resource() {
    let Some(db) = fresh_database() else { return };
    let a = Arc::new(open(&db).await);
    let b = Arc::new(open(&db).await);
    for round in 0..5 {
        let id = format!("same-{round}");
        // Creates: one wins, the others find it.
        let mut tasks = Vec::new();
        for n in 0..6 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let op = create(&id);
            tasks.push(tokio::spawn(async move { store.write(vec![op]).await }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(_) => wins += 1,
                Err(StoreError::AlreadyExists { index: 0 }) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(wins, 1);
        // Updates-as-create of a new id: each one a version, one of them the creation.
        let id = format!("upsert-{round}");
        let mut tasks = Vec::new();
        for n in 0..6 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let op = update(&id, &format!("w{n}"), None);
            tasks.push(tokio::spawn(async move { store.write(vec![op]).await }));
        }
        let mut versions = Vec::new();
        let mut created = 0;
        for t in tasks {
            let out = t.await.expect("task").expect("update");
            let (v, c, _, _) = written(&out[0]);
            versions.push(v);
            created += usize::from(c);
        }
        versions.sort_unstable();
        assert_eq!(versions, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(created, 1);
    }
    assert_eq!(a.count_versions().await.expect("count"), 5 + 30);
}

#[tokio::test]
async fn named_locks_exclude_across_replicas() {
    let Some(db) = fresh_database() else { return };
    let a = open(&db).await;
    let b = open(&db).await;
    let held = a.lock("Patient?identifier=x").await.expect("lock");
    // Another replica waits for it...
    let waiting =
        tokio::time::timeout(Duration::from_millis(300), b.lock("Patient?identifier=x")).await;
    assert!(waiting.is_err(), "the lock is held by the other replica");
    // ...but not for another key.
    let other = tokio::time::timeout(Duration::from_secs(5), b.lock("Patient?identifier=y"))
        .await
        .expect("another key is free")
        .expect("lock");
    drop(other);
    // Released on drop: the other replica gets it.
    drop(held);
    let got = tokio::time::timeout(Duration::from_secs(5), b.lock("Patient?identifier=x"))
        .await
        .expect("released")
        .expect("lock");
    // And the first replica waits now.
    let waiting =
        tokio::time::timeout(Duration::from_millis(300), a.lock("Patient?identifier=x")).await;
    assert!(waiting.is_err());
    drop(got);
    // The cancelled waits above left no lock behind.
    let again = tokio::time::timeout(Duration::from_secs(5), a.lock("Patient?identifier=x"))
        .await
        .expect("free again")
        .expect("lock");
    drop(again);
    // Within one replica, too: a second task waits for the first.
    let first = a.lock("k").await.expect("lock");
    let waiting = tokio::time::timeout(Duration::from_millis(200), a.lock("k")).await;
    assert!(waiting.is_err(), "the same replica's second task waits");
    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(5), a.lock("k"))
        .await
        .expect("released")
        .expect("lock");
    drop(second);
    let client = sql(&db).await;
    // Releases run in the background; give them a moment.
    let mut left = 1;
    for _ in 0..50 {
        left = client
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
                &[],
            )
            .await
            .expect("locks")
            .get::<_, i64>(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0, "no advisory lock is left held");
}

#[tokio::test]
async fn many_held_locks_take_no_pooled_connections() {
    let Some(db) = fresh_database() else { return };
    let options = PgOptions {
        pool_size: 2,
        ..PgOptions::default()
    };
    let store = PostgresStore::open(db.url(), &options).await.expect("open");
    // A transaction bundle with more conditional creates than the pool has connections.
    let mut held = Vec::new();
    for n in 0..10 {
        held.push(
            store
                .lock(&format!("Patient?identifier={n}"))
                .await
                .expect("lock"),
        );
    }
    let ops = (0..10).map(|n| create(&format!("p{n}"))).collect();
    tokio::time::timeout(Duration::from_secs(5), store.write(ops))
        .await
        .expect("the write gets a connection")
        .expect("write");
    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(5), store.lock("Patient?identifier=3"))
        .await
        .expect("released")
        .expect("lock");
    drop(again);
}

#[tokio::test]
async fn writes_naming_new_resources_in_opposite_orders_both_succeed() {
    let Some(db) = fresh_database() else { return };
    let a = open(&db).await;
    let b = open(&db).await;
    for round in 0..10 {
        let (x, y) = (format!("x{round}"), format!("y{round}"));
        // Both create-or-update the same two new ids, in opposite orders: their claims can
        // wait on each other (a deadlock, or a lost claim), and the retries sort it out.
        let first = {
            let ops = vec![update(&x, "a", None), update(&y, "a", None)];
            let a = a.clone();
            tokio::spawn(async move { a.write(ops).await })
        };
        let second = {
            let ops = vec![update(&y, "b", None), update(&x, "b", None)];
            let b = b.clone();
            tokio::spawn(async move { b.write(ops).await })
        };
        first.await.expect("task").expect("first");
        second.await.expect("task").expect("second");
        for id in [&x, &y] {
            let current = a.read("Patient", id).await.expect("read").expect("exists");
            assert_eq!(current.version, 2, "{id}");
        }
    }
}
