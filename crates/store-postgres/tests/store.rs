//! The PostgreSQL store against a real server: each test gets its own database
//! (`testing::fresh_database`) and is skipped, saying so, when `CADUCEUS_TEST_DATABASE_URL`
//! is unset (a failure instead with `CADUCEUS_TEST_REQUIRE_POSTGRES=1`).

use std::sync::Arc;
use std::time::Duration;

use caduceus_store::index::{ContainedIndex, IndexRow, IndexValue};
use caduceus_store::{
    HistoryQuery, HistoryScope, Method, Store, StoreError, WriteOp, WriteOutcome,
};
use caduceus_store_postgres::testing::{TestDb, fresh_database};
use caduceus_store_postgres::{PgOptions, PgStoreError, PostgresStore, migrate};
use serde_json::{Value, json};

async fn open(db: &TestDb) -> PostgresStore {
    PostgresStore::open(db.url(), &PgOptions::default())
        .await
        .expect("open")
}

/// A direct connection to the test database, for checks the trait does not offer.
async fn sql(db: &TestDb) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family}], "active": true})
}

fn create(id: &str) -> WriteOp {
    WriteOp::Create {
        resource_type: "Patient".into(),
        id: id.into(),
        resource: patient(id),
        index: vec![],
        contained: vec![],
    }
}

fn update(id: &str, family: &str, if_match: Option<u64>) -> WriteOp {
    WriteOp::Update {
        resource_type: "Patient".into(),
        id: id.into(),
        resource: patient(family),
        index: vec![],
        contained: vec![],
        if_match,
        method: Method::Update,
    }
}

fn delete(id: &str, if_match: Option<u64>) -> WriteOp {
    WriteOp::Delete {
        resource_type: "Patient".into(),
        id: id.into(),
        if_match,
    }
}

fn written(outcome: &WriteOutcome) -> (u64, bool, i64, i64) {
    match outcome {
        WriteOutcome::Written { version, created } => {
            (version.version, *created, version.seq, version.last_updated)
        }
        other => panic!("expected a written version, got {other:?}"),
    }
}

fn body_json(body: &Option<bytes::Bytes>) -> Value {
    serde_json::from_slice(body.as_deref().expect("a body")).expect("json")
}

fn history(scope: HistoryScope) -> HistoryQuery {
    HistoryQuery {
        scope,
        since: None,
        at: None,
        before_seq: None,
        limit: 100,
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_safe_to_run_concurrently() {
    let Some(db) = fresh_database() else { return };
    let (a, b) = tokio::join!(migrate(db.url()), migrate(db.url()));
    let (a, b) = (a.expect("first"), b.expect("second"));
    let latest = PostgresStore::supported_schema_version();
    assert_eq!(a.current, latest);
    assert_eq!(b.current, latest);
    // Exactly one of them applied each migration.
    assert_eq!(
        a.applied.len() + b.applied.len(),
        usize::try_from(latest).unwrap()
    );
    let again = migrate(db.url()).await.expect("again");
    assert!(again.applied.is_empty());
    assert_eq!(again.current, latest);
    // Opening without migrating works now.
    let options = PgOptions {
        migrate: false,
        ..PgOptions::default()
    };
    let store = PostgresStore::open(db.url(), &options).await.expect("open");
    store.ping().await.expect("ping");
    // Every text column sorts bytewise.
    let client = sql(&db).await;
    let not_c: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type = 'text' \
               AND table_name <> 'schema_migrations' \
               AND coalesce(collation_name, '') <> 'C' AND column_name <> 'value'",
            &[],
        )
        .await
        .expect("columns")
        .get(0);
    assert_eq!(not_c, 0, "every key text column is COLLATE \"C\"");
}

#[tokio::test]
async fn open_refuses_missing_migrations_and_unknown_contract_migrations() {
    let Some(db) = fresh_database() else { return };
    let no_migrate = PgOptions {
        migrate: false,
        ..PgOptions::default()
    };
    match PostgresStore::open(db.url(), &no_migrate).await {
        Err(PgStoreError::MigrationsMissing { found: 0, .. }) => {}
        other => panic!("expected MigrationsMissing, got {other:?}"),
    }
    migrate(db.url()).await.expect("migrate");
    let client = sql(&db).await;
    // A newer binary's additive migration: this one keeps working.
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, kind) VALUES (1000, 'future', 'expand')",
            &[],
        )
        .await
        .expect("insert");
    PostgresStore::open(db.url(), &no_migrate)
        .await
        .expect("open past an expand migration");
    let report = migrate(db.url()).await.expect("migrate past an expand");
    assert_eq!(report.current, 1000);
    // A contract migration it does not know: refused, whether migrating or not.
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, kind) VALUES (1001, 'drop', 'contract')",
            &[],
        )
        .await
        .expect("insert");
    for options in [PgOptions::default(), no_migrate.clone()] {
        match PostgresStore::open(db.url(), &options).await {
            Err(PgStoreError::SchemaTooNew {
                found: 1001,
                contract: 1001,
                ..
            }) => {}
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
    assert!(matches!(
        migrate(db.url()).await,
        Err(PgStoreError::SchemaTooNew { .. })
    ));
}

#[tokio::test]
async fn unreachable_server_is_unavailable_and_errors_hide_the_password() {
    // No server is needed: port 1 on loopback refuses connections.
    let url = "postgres://caduceus:hunter2-secret@127.0.0.1:1/fhir";
    let err = PostgresStore::open(url, &PgOptions::default())
        .await
        .expect_err("nothing listens on port 1");
    match &err {
        PgStoreError::Connect { target, source } => {
            assert_eq!(target, "caduceus@127.0.0.1:1/fhir");
            assert!(matches!(source, StoreError::Unavailable(_)), "{source:?}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2"), "{text}");
    let err = migrate(url).await.expect_err("refused");
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    // Malformed URLs: the error names the problem, never the URL's password.
    for bad in [
        "postgres://u:hunter2@127.0.0.1:notaport/db",
        "postgres://u:hunter2%zz@127.0.0.1/db",
        "postgres://u:hunter2@127.0.0.1/db?sslmode=hunter2",
        "postgres://u:hunter2@127.0.0.1/db?hunter2=1",
        "host=127.0.0.1 password=hunter2 port=x",
    ] {
        let Err(err) = PostgresStore::open(bad, &PgOptions::default()).await else {
            panic!("{bad} was accepted");
        };
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[tokio::test]
async fn create_read_update_delete_and_history() {
    let Some(db) = fresh_database() else { return };
    let store = open(&db).await;
    assert_eq!(store.read("Patient", "a").await.expect("read"), None);

    let out = store.write(vec![create("a")]).await.expect("create");
    let (v, created, seq1, t1) = written(&out[0]);
    assert_eq!((v, created), (1, true));
    let read = store
        .read("Patient", "a")
        .await
        .expect("read")
        .expect("found");
    assert_eq!((read.version, read.seq, read.last_updated), (1, seq1, t1));
    assert_eq!(read.method, Method::Create);
    let body = body_json(&read.body);
    assert_eq!(body["id"], "a");
    assert_eq!(body["meta"]["versionId"], "1");
    assert_eq!(
        body["meta"]["lastUpdated"],
        caduceus_model::ids::format_instant(t1)
    );

    // Refusals, each naming the op.
    let err = store
        .write(vec![create("b"), create("a")])
        .await
        .expect_err("exists");
    assert!(
        matches!(err, StoreError::AlreadyExists { index: 1 }),
        "{err:?}"
    );
    assert_eq!(
        store.read("Patient", "b").await.expect("read"),
        None,
        "all or nothing"
    );
    let err = store
        .write(vec![create("c"), update("c", "x", None)])
        .await
        .expect_err("dup");
    assert!(matches!(err, StoreError::DuplicateInWrite { index: 1 }));
    let err = store
        .write(vec![update("a", "x", Some(7))])
        .await
        .expect_err("conflict");
    assert!(matches!(
        err,
        StoreError::VersionConflict {
            index: 0,
            expected: 7,
            current: Some(1)
        }
    ));
    let err = store
        .write(vec![update("nobody", "x", Some(1))])
        .await
        .expect_err("conflict");
    assert!(matches!(
        err,
        StoreError::VersionConflict { current: None, .. }
    ));

    let out = store
        .write(vec![update("a", "second", Some(1))])
        .await
        .expect("update");
    let (v, created, seq2, t2) = written(&out[0]);
    assert_eq!((v, created), (2, false));
    assert!(seq2 > seq1 && t2 > t1);
    let patch = WriteOp::Update {
        resource_type: "Patient".into(),
        id: "a".into(),
        resource: patient("third"),
        index: vec![],
        contained: vec![],
        if_match: None,
        method: Method::Patch,
    };
    store.write(vec![patch]).await.expect("patch");
    let v1 = store
        .vread("Patient", "a", 1)
        .await
        .expect("vread")
        .expect("v1");
    assert_eq!(body_json(&v1.body)["name"][0]["family"], "a");
    let v3 = store
        .vread("Patient", "a", 3)
        .await
        .expect("vread")
        .expect("v3");
    assert_eq!(v3.method, Method::Patch);
    assert_eq!(store.vread("Patient", "a", 4).await.expect("vread"), None);

    let out = store.write(vec![delete("a", None)]).await.expect("delete");
    let WriteOutcome::Deleted { version } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((version.version, version.body.clone()), (4, None));
    let current = store
        .read("Patient", "a")
        .await
        .expect("read")
        .expect("tombstone");
    assert!(current.is_deleted());
    assert_eq!(
        store
            .write(vec![delete("a", None), delete("zz", None)])
            .await
            .expect("again"),
        vec![WriteOutcome::NothingToDelete, WriteOutcome::NothingToDelete]
    );
    let err = store
        .write(vec![create("a")])
        .await
        .expect_err("a deleted id still exists");
    assert!(matches!(err, StoreError::AlreadyExists { index: 0 }));
    // Update after delete: a new live version, reported as created.
    let out = store
        .write(vec![update("a", "back", None)])
        .await
        .expect("revive");
    assert_eq!((written(&out[0]).0, written(&out[0]).1), (5, true));
    // Update-as-create.
    let out = store
        .write(vec![update("new", "n", None)])
        .await
        .expect("upsert");
    assert_eq!((written(&out[0]).0, written(&out[0]).1), (1, true));

    assert_eq!(store.count_live(Some("Patient")).await.expect("count"), 2);
    assert_eq!(store.count_live(None).await.expect("count"), 2);
    assert_eq!(
        store.count_live(Some("Observation")).await.expect("count"),
        0
    );
    assert_eq!(store.count_versions().await.expect("count"), 6);

    // Instance history: newest first, gap-free, last_updated increasing.
    let h = store
        .history(&history(HistoryScope::Instance(
            "Patient".into(),
            "a".into(),
        )))
        .await
        .expect("history");
    assert_eq!(
        h.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![5, 4, 3, 2, 1]
    );
    assert!(h.windows(2).all(|w| w[0].last_updated > w[1].last_updated));
    assert!(h.windows(2).all(|w| w[0].seq > w[1].seq));
    // Paging by seq.
    let mut q = history(HistoryScope::Type("Patient".into()));
    q.limit = 4;
    let page1 = store.history(&q).await.expect("page 1");
    assert_eq!(page1.len(), 4);
    q.before_seq = page1.last().map(|v| v.seq);
    let page2 = store.history(&q).await.expect("page 2");
    assert_eq!(page2.len(), 2);
    assert!(page2[0].seq < page1[3].seq);
    let system = store
        .history(&history(HistoryScope::System))
        .await
        .expect("system");
    assert_eq!(system.len(), 6);
    assert!(system.windows(2).all(|w| w[0].seq > w[1].seq));
    assert!(
        store
            .history(&history(HistoryScope::Type("Observation".into())))
            .await
            .expect("empty")
            .is_empty()
    );
    // _since: the versions at or after version 3's instant.
    let mut q = history(HistoryScope::Instance("Patient".into(), "a".into()));
    q.since = Some(v3.last_updated);
    let since = store.history(&q).await.expect("since");
    assert_eq!(
        since.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![5, 4, 3]
    );
    // _at: the version current at version 2's instant (and just after it).
    let mut q = history(HistoryScope::Instance("Patient".into(), "a".into()));
    q.at = Some((t2, t2 + 1));
    let at = store.history(&q).await.expect("at");
    assert_eq!(at.iter().map(|v| v.version).collect::<Vec<_>>(), vec![2]);
    q.limit = 0;
    assert!(store.history(&q).await.expect("limit 0").is_empty());
}

#[tokio::test]
async fn scan_current_walks_live_resources_in_key_order() {
    let Some(db) = fresh_database() else { return };
    let store = open(&db).await;
    // Byte order: upper case before lower case, '-' before digits.
    let ids = ["b", "B", "a-1", "a1", "c"];
    store
        .write(ids.iter().map(|i| create(i)).collect())
        .await
        .expect("create");
    store.write(vec![delete("c", None)]).await.expect("delete");
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = store.scan_current(after.clone(), 2).await.expect("scan");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|v| (v.resource_type.clone(), v.id.clone()));
        seen.extend(page.into_iter().map(|v| v.id));
    }
    assert_eq!(seen, vec!["B", "a-1", "a1", "b"]);
}

#[tokio::test]
async fn meta_values_round_trip() {
    let Some(db) = fresh_database() else { return };
    let store = open(&db).await;
    assert_eq!(store.meta("index.fingerprint").await.expect("meta"), None);
    store
        .set_meta("index.fingerprint", "abc")
        .await
        .expect("set");
    store
        .set_meta("index.fingerprint", "def")
        .await
        .expect("set");
    assert_eq!(
        store
            .meta("index.fingerprint")
            .await
            .expect("meta")
            .as_deref(),
        Some("def")
    );
    // Another replica sees it.
    let other = open(&db).await;
    assert_eq!(
        other
            .meta("index.fingerprint")
            .await
            .expect("meta")
            .as_deref(),
        Some("def")
    );
}

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
async fn copy_in_and_scan_versions_round_trip() {
    let Some(source_db) = fresh_database() else {
        return;
    };
    let Some(target_db) = fresh_database() else {
        return;
    };
    let source = open(&source_db).await;
    source
        .write(vec![create("x"), create("y")])
        .await
        .expect("create");
    source
        .write(vec![update("x", "x2", None)])
        .await
        .expect("update");
    source.write(vec![delete("y", None)]).await.expect("delete");
    source.set_meta("k", "v").await.expect("meta");
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = source.scan_versions(after, 3).await.expect("scan");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|v| v.seq);
        all.extend(page);
    }
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));

    let target = open(&target_db).await;
    target.copy_in(all.clone()).await.expect("copy");
    let copied = target.scan_versions(None, 100).await.expect("scan");
    let strip = |v: &caduceus_store::StoredVersion| {
        (
            v.resource_type.clone(),
            v.id.clone(),
            v.version,
            v.last_updated,
            v.method,
            v.body.clone(),
        )
    };
    assert_eq!(
        copied.iter().map(strip).collect::<Vec<_>>(),
        all.iter().map(strip).collect::<Vec<_>>()
    );
    assert_eq!(target.count_versions().await.expect("count"), 4);
    let x = target.read("Patient", "x").await.expect("read").expect("x");
    assert_eq!(x.version, 2);
    assert!(
        target
            .read("Patient", "y")
            .await
            .expect("read")
            .expect("y")
            .is_deleted()
    );
    assert_eq!(target.count_live(None).await.expect("count"), 1);
    // Writes continue after the copied versions.
    let out = target
        .write(vec![update("x", "x3", None)])
        .await
        .expect("update");
    let (v, _, seq, _) = written(&out[0]);
    assert_eq!(v, 3);
    assert!(seq > copied.last().map_or(0, |c| c.seq));
    // A version already present: refused, naming it, and nothing written.
    let err = target
        .copy_in(vec![all[0].clone()])
        .await
        .expect_err("present");
    assert!(
        matches!(err, StoreError::AlreadyExists { index: 0 }),
        "{err:?}"
    );
    let mut twice = all[1].clone();
    twice.id = "fresh".into();
    let err = target
        .copy_in(vec![twice.clone(), twice])
        .await
        .expect_err("twice");
    assert!(
        matches!(err, StoreError::AlreadyExists { index: 1 }),
        "{err:?}"
    );
    assert_eq!(target.read("Patient", "fresh").await.expect("read"), None);
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

fn token(param: &'static str, system: &str, code: &str) -> IndexRow {
    IndexRow {
        param,
        value: IndexValue::Token {
            system: Some(system.into()),
            code: Some(code.into()),
            text: None,
        },
    }
}

fn reference(param: &'static str, target_type: &str, target_id: &str) -> IndexRow {
    IndexRow {
        param,
        value: IndexValue::Reference {
            target_type: Some(target_type.into()),
            target_id: Some(target_id.into()),
            version: None,
            url: None,
        },
    }
}

#[tokio::test]
async fn index_rows_are_written_replaced_and_removed_with_their_resource() {
    let Some(db) = fresh_database() else { return };
    let store = open(&db).await;
    let rows = vec![
        IndexRow {
            param: "name",
            value: IndexValue::String {
                normalized: "smith".into(),
                exact: "Smith".into(),
            },
        },
        token("code", "http://loinc.org", "1234-5"),
        reference("subject", "Patient", "p1"),
        reference("performer", "Practitioner", "#pr1"),
        reference("focus", "Observation", "#"),
        IndexRow {
            param: "date",
            value: IndexValue::Date { start: 10, end: 20 },
        },
        IndexRow {
            param: "value-quantity",
            value: IndexValue::Quantity {
                value: 5.4,
                low: 5.35,
                high: 5.45,
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("mg".into()),
                canonical_value: Some(0.0054),
                canonical_code: Some("g".into()),
            },
        },
        IndexRow {
            param: "probability",
            value: IndexValue::Number {
                value: 1.5,
                low: 1.45,
                high: 1.55,
            },
        },
        IndexRow {
            param: "url",
            value: IndexValue::Uri("http://example.org/x".into()),
        },
        IndexRow {
            param: "code-value-date",
            value: IndexValue::Composite(vec![
                IndexValue::Token {
                    system: Some("s".into()),
                    code: Some("c".into()),
                    text: None,
                },
                IndexValue::Date {
                    start: 1_700_000_000_000_000,
                    end: 1_700_000_000_000_001,
                },
            ]),
        },
        IndexRow {
            param: "too-deep",
            value: IndexValue::Composite(vec![IndexValue::Composite(vec![])]),
        },
    ];
    let contained = vec![
        ContainedIndex {
            resource_type: "Practitioner".into(),
            id: "pr1".into(),
            rows: vec![
                token("identifier", "urn:sys", "42"),
                reference("organization", "Organization", "#"),
            ],
        },
        ContainedIndex {
            resource_type: "Practitioner".into(),
            id: "pr1".into(),
            rows: vec![token("identifier", "urn:sys", "duplicate")],
        },
    ];
    store
        .write(vec![WriteOp::Create {
            resource_type: "Observation".into(),
            id: "o1".into(),
            resource: json!({"resourceType": "Observation", "status": "final"}),
            index: rows.clone(),
            contained: contained.clone(),
        }])
        .await
        .expect("create");
    let client = sql(&db).await;
    let count = |table: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .expect("count")
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count("idx_string").await, 1);
    assert_eq!(
        count("idx_token").await,
        2,
        "one of o1, one of its contained pr1"
    );
    assert_eq!(count("idx_reference").await, 4);
    assert_eq!(count("idx_date").await, 1);
    assert_eq!(count("idx_quantity").await, 1);
    assert_eq!(count("idx_number").await, 1);
    assert_eq!(count("idx_uri").await, 1);
    assert_eq!(
        count("idx_composite").await,
        1,
        "a nested composite is skipped"
    );
    assert_eq!(
        count("contained").await,
        1,
        "a local id given twice keeps its first rows"
    );

    let refs: Vec<(String, String, String, String)> = client
        .query(
            "SELECT type, id, param, target_id FROM idx_reference ORDER BY type, id, param",
            &[],
        )
        .await
        .expect("refs")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let s = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    assert_eq!(
        refs,
        vec![
            s("Observation", "o1", "focus", "o1"),
            s("Observation", "o1", "performer", "Observation/o1#pr1"),
            s("Observation", "o1", "subject", "p1"),
            s("Practitioner", "Observation/o1#pr1", "organization", "o1"),
        ]
    );
    let c = client
        .query_one(
            "SELECT system_1, code_1, low_2, high_2, system_3, value_2 FROM idx_composite",
            &[],
        )
        .await
        .expect("composite");
    assert_eq!(c.get::<_, Option<String>>(0).as_deref(), Some("s"));
    assert_eq!(c.get::<_, Option<String>>(1).as_deref(), Some("c"));
    assert_eq!(c.get::<_, Option<f64>>(2), Some(1_700_000_000_000_000.0));
    assert_eq!(c.get::<_, Option<f64>>(3), Some(1_700_000_000_000_001.0));
    assert_eq!(c.get::<_, Option<String>>(4), None);
    assert_eq!(c.get::<_, Option<f64>>(5), None);
    let q = client
        .query_one(
            "SELECT value, canonical_value, canonical_code FROM idx_quantity",
            &[],
        )
        .await
        .expect("quantity");
    assert_eq!(q.get::<_, f64>(0), 5.4);
    assert_eq!(q.get::<_, Option<f64>>(1), Some(0.0054));
    assert_eq!(q.get::<_, Option<String>>(2).as_deref(), Some("g"));
    let k = client
        .query_one(
            "SELECT type, id, container_type, container_id FROM contained",
            &[],
        )
        .await
        .expect("contained");
    assert_eq!(
        (
            k.get::<_, String>(0),
            k.get::<_, String>(1),
            k.get::<_, String>(2),
            k.get::<_, String>(3)
        ),
        (
            "Practitioner".into(),
            "Observation/o1#pr1".into(),
            "Observation".into(),
            "o1".into()
        )
    );

    // An update replaces every row, the contained resources' included.
    store
        .write(vec![WriteOp::Update {
            resource_type: "Observation".into(),
            id: "o1".into(),
            resource: json!({"resourceType": "Observation", "status": "amended"}),
            index: vec![token("code", "http://loinc.org", "9999-9")],
            contained: vec![],
            if_match: None,
            method: Method::Update,
        }])
        .await
        .expect("update");
    assert_eq!(count("idx_token").await, 1);
    for table in [
        "idx_string",
        "idx_reference",
        "idx_date",
        "idx_quantity",
        "idx_number",
        "idx_uri",
        "idx_composite",
        "contained",
    ] {
        assert_eq!(count(table).await, 0, "{table}");
    }
    // A reindex of a superseded version changes nothing; of the current one, replaces.
    let out = store
        .write(vec![WriteOp::Reindex {
            resource_type: "Observation".into(),
            id: "o1".into(),
            version: 1,
            index: rows.clone(),
            contained: contained.clone(),
        }])
        .await
        .expect("reindex");
    assert_eq!(out, vec![WriteOutcome::Reindexed { replaced: false }]);
    assert_eq!(count("idx_string").await, 0);
    let out = store
        .write(vec![WriteOp::Reindex {
            resource_type: "Observation".into(),
            id: "o1".into(),
            version: 2,
            index: rows,
            contained,
        }])
        .await
        .expect("reindex");
    assert_eq!(out, vec![WriteOutcome::Reindexed { replaced: true }]);
    assert_eq!(count("idx_token").await, 2);
    assert_eq!(count("contained").await, 1);
    // A delete removes them all.
    store
        .write(vec![WriteOp::Delete {
            resource_type: "Observation".into(),
            id: "o1".into(),
            if_match: Some(2),
        }])
        .await
        .expect("delete");
    for table in [
        "idx_string",
        "idx_token",
        "idx_reference",
        "idx_date",
        "idx_quantity",
        "idx_number",
        "idx_uri",
        "idx_composite",
        "contained",
    ] {
        assert_eq!(count(table).await, 0, "{table}");
    }
    // Reindexing a deleted resource does nothing.
    let out = store
        .write(vec![WriteOp::Reindex {
            resource_type: "Observation".into(),
            id: "o1".into(),
            version: 3,
            index: vec![token("code", "s", "c")],
            contained: vec![],
        }])
        .await
        .expect("reindex");
    assert_eq!(out, vec![WriteOutcome::Reindexed { replaced: false }]);
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
