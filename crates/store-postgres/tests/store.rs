//! The PostgreSQL store against a real server: each test gets its own database
//! (`testing::fresh_database`) and is skipped, saying so, when `CADUCEUS_TEST_DATABASE_URL`
//! is unset (a failure instead with `CADUCEUS_TEST_REQUIRE_POSTGRES=1`).

use caduceus_store::{HistoryScope, Method, Store, StoreError, WriteOp, WriteOutcome};
use caduceus_store_postgres::testing::fresh_database;
use caduceus_store_postgres::{PgOptions, PgStoreError, PostgresStore, migrate};

mod support;
use support::*;

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
async fn meta_insert_list_delete_and_take_across_replicas() {
    let Some(db) = fresh_database() else { return };
    let a = std::sync::Arc::new(open(&db).await);
    let b = std::sync::Arc::new(open(&db).await);
    assert!(a.insert_meta("auth.user.b", "1").await.expect("insert"));
    assert!(!b.insert_meta("auth.user.b", "2").await.expect("again"));
    assert_eq!(
        b.meta("auth.user.b").await.expect("meta").as_deref(),
        Some("1")
    );
    a.set_meta("auth.user.a", "0").await.expect("set");
    a.set_meta("auth.userz", "x").await.expect("set");
    a.set_meta("auth.user.\u{e9}", "e").await.expect("set");
    assert_eq!(
        b.meta_list("auth.user.").await.expect("list"),
        vec![
            ("auth.user.a".to_owned(), "0".to_owned()),
            ("auth.user.b".to_owned(), "1".to_owned()),
            ("auth.user.\u{e9}".to_owned(), "e".to_owned()),
        ]
    );
    assert!(b.delete_meta("auth.user.a").await.expect("delete"));
    assert!(!a.delete_meta("auth.user.a").await.expect("gone"));
    // Two replicas racing to take one code: exactly one gets it.
    for round in 0..10 {
        let key = format!("auth.code.{round}");
        a.set_meta(&key, "once").await.expect("set");
        let (x, y) = tokio::join!(a.take_meta(&key), b.take_meta(&key));
        let got: Vec<String> = [x.expect("a"), y.expect("b")]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(got, vec!["once".to_owned()]);
    }
    // And racing to claim one jti: exactly one claims it.
    let (x, y) = tokio::join!(
        a.insert_meta("auth.jti.c.1", "9"),
        b.insert_meta("auth.jti.c.1", "9")
    );
    assert!(x.expect("a") ^ y.expect("b"));
}
