//! Contained resources in the store: their index rows (and `contained` entries) are written
//! with their container, replaced by its update and reindex, removed by its delete, never
//! seen by ordinary searches; `_contained` searches find them (both `_containedType`s,
//! `both`, keyset paging, totals) and chains follow local `#id` references into them.

mod search_support;

use caduceus_store::{Store, StoreError, WriteOp};
use caduceus_store_sqlite::DB_FILE;
use search_support::{TestStore, query};
use serde_json::{Value, json};

fn db_path(s: &TestStore) -> std::path::PathBuf {
    s.dir().join(DB_FILE)
}

/// Every `contained` row as `type key <- container`, sorted.
fn contained_rows(s: &TestStore) -> Vec<String> {
    let conn = rusqlite::Connection::open(db_path(s)).expect("open");
    let mut stmt = conn
        .prepare(
            "SELECT type || ' ' || id || ' <- ' || container_type || '/' || container_id \
             FROM contained ORDER BY 1",
        )
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// The codes indexed for `code` under one key (any type), sorted.
fn codes(s: &TestStore, key: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db_path(s)).expect("open");
    let mut stmt = conn
        .prepare("SELECT code FROM idx_token WHERE id = ?1 AND param = 'code' ORDER BY 1")
        .expect("prepare");
    stmt.query_map([key], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// Number of index rows of any table under a key.
fn rows_under(s: &TestStore, key: &str) -> i64 {
    let conn = rusqlite::Connection::open(db_path(s)).expect("open");
    [
        "idx_string",
        "idx_token",
        "idx_reference",
        "idx_date",
        "idx_number",
        "idx_quantity",
        "idx_uri",
        "idx_composite",
    ]
    .iter()
    .map(|t| {
        conn.query_row(
            &format!("SELECT count(*) FROM {t} WHERE id = ?1"),
            [key],
            |r| r.get::<_, i64>(0),
        )
        .expect("count")
    })
    .sum()
}

fn med(id: &str, code: &str) -> Value {
    json!({"resourceType": "Medication", "id": id,
           "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]}})
}

fn request(id: &str, contained: Vec<Value>, medication: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": "active",
           "intent": "order", "contained": contained,
           "medicationReference": {"reference": medication},
           "subject": {"reference": "Patient/p1"}})
}

#[tokio::test]
async fn contained_rows_follow_their_container() {
    let s = TestStore::new("contained-rows");
    s.create(request("mr1", vec![med("m1", "a"), med("m2", "b")], "#m1"))
        .await;
    assert_eq!(
        contained_rows(&s),
        [
            "Medication MedicationRequest/mr1#m1 <- MedicationRequest/mr1",
            "Medication MedicationRequest/mr1#m2 <- MedicationRequest/mr1",
        ]
    );
    assert_eq!(codes(&s, "MedicationRequest/mr1#m1"), ["a"]);
    assert_eq!(codes(&s, "MedicationRequest/mr1#m2"), ["b"]);
    // The local reference is stored pointing at the contained resource's key.
    let conn = rusqlite::Connection::open(db_path(&s)).expect("open");
    let target: (String, String) = conn
        .query_row(
            "SELECT target_type, target_id FROM idx_reference \
             WHERE type = 'MedicationRequest' AND id = 'mr1' AND param = 'medication'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("medication row");
    assert_eq!(
        target,
        ("Medication".into(), "MedicationRequest/mr1#m1".into())
    );

    // An update replaces them: m2 is gone, m1 has its new code.
    s.update(request("mr1", vec![med("m1", "c")], "#m1")).await;
    assert_eq!(
        contained_rows(&s),
        ["Medication MedicationRequest/mr1#m1 <- MedicationRequest/mr1"]
    );
    assert_eq!(codes(&s, "MedicationRequest/mr1#m1"), ["c"]);
    assert_eq!(rows_under(&s, "MedicationRequest/mr1#m2"), 0);

    // A reindex replaces them too.
    let v = s
        .store
        .read("MedicationRequest", "mr1")
        .await
        .expect("read")
        .expect("exists");
    let extraction = caduceus_index::extract(&request("mr1", vec![med("m9", "z")], "#m9"));
    s.store
        .write(vec![WriteOp::Reindex {
            resource_type: "MedicationRequest".into(),
            id: "mr1".into(),
            version: v.version,
            index: extraction.rows,
            contained: extraction.contained,
        }])
        .await
        .expect("reindex");
    assert_eq!(
        contained_rows(&s),
        ["Medication MedicationRequest/mr1#m9 <- MedicationRequest/mr1"]
    );
    assert_eq!(rows_under(&s, "MedicationRequest/mr1#m1"), 0);

    // A delete removes them.
    s.delete("MedicationRequest", "mr1").await;
    assert!(contained_rows(&s).is_empty());
    assert_eq!(rows_under(&s, "MedicationRequest/mr1#m9"), 0);
}

#[tokio::test]
async fn a_refused_write_leaves_the_contained_rows() {
    let s = TestStore::new("contained-refused");
    s.create(request("mr1", vec![med("m1", "a")], "#m1")).await;
    let extraction = caduceus_index::extract(&request("mr1", vec![med("m1", "b")], "#m1"));
    let stale = WriteOp::Update {
        resource_type: "MedicationRequest".into(),
        id: "mr1".into(),
        resource: request("mr1", vec![med("m1", "b")], "#m1"),
        index: extraction.rows,
        contained: extraction.contained,
        if_match: Some(7),
        method: caduceus_store::Method::Update,
    };
    assert!(matches!(
        s.store.write(vec![stale]).await,
        Err(StoreError::VersionConflict { .. })
    ));
    assert_eq!(codes(&s, "MedicationRequest/mr1#m1"), ["a"]);
}

async fn fixture() -> TestStore {
    let s = TestStore::new("contained-search");
    s.create_all(vec![
        med("top1", "a"),
        med("top2", "b"),
        request("mr1", vec![med("m1", "a")], "#m1"),
        request("mr2", vec![med("m1", "a"), med("m2", "a")], "#m1"),
        request("mr3", vec![med("m1", "b")], "#m1"),
        // A container of another type.
        json!({"resourceType": "MedicationDispense", "id": "md1", "status": "completed",
               "contained": [med("x", "a")],
               "medicationReference": {"reference": "#x"}}),
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Real"}]}),
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
               "code": {"text": "t"},
               "contained": [{"resourceType": "Patient", "id": "p1",
                              "name": [{"family": "Taylor"}], "gender": "female"}],
               "subject": {"reference": "#p1"}}),
        json!({"resourceType": "Observation", "id": "o2", "status": "final",
               "code": {"text": "t"}, "subject": {"reference": "Patient/p1"}}),
    ])
    .await;
    s
}

#[tokio::test]
async fn ordinary_searches_never_see_contained_resources() {
    let s = fixture().await;
    assert_eq!(
        s.all(&["Medication"], &[("code", "a")]).await,
        ["Medication/top1"]
    );
    assert_eq!(
        s.all(&["Medication"], &[("_contained", "false")]).await,
        ["Medication/top1", "Medication/top2"]
    );
    assert_eq!(s.all(&["Patient"], &[]).await, ["Patient/p1"]);
    assert_eq!(
        s.all(&[], &[("_type", "Medication,Patient")]).await,
        ["Medication/top1", "Medication/top2", "Patient/p1"]
    );
    // Negative criteria are taken among top-level resources only.
    assert_eq!(
        s.all(&["Medication"], &[("code:not", "a")]).await,
        ["Medication/top2"]
    );
}

#[tokio::test]
async fn contained_searches_return_containers_or_contained_resources() {
    let s = fixture().await;
    let code_a = ("code", "a");
    assert_eq!(
        s.all(&["Medication"], &[code_a, ("_contained", "true")])
            .await,
        [
            "MedicationDispense/md1",
            "MedicationRequest/mr1",
            "MedicationRequest/mr2"
        ],
        "each container once"
    );
    assert_eq!(
        s.all(
            &["Medication"],
            &[
                code_a,
                ("_contained", "true"),
                ("_containedType", "contained")
            ]
        )
        .await,
        [
            "Medication/MedicationDispense/md1#x",
            "Medication/MedicationRequest/mr1#m1",
            "Medication/MedicationRequest/mr2#m1",
            "Medication/MedicationRequest/mr2#m2",
        ]
    );
    assert_eq!(
        s.all(&["Medication"], &[code_a, ("_contained", "both")])
            .await,
        [
            "Medication/top1",
            "MedicationDispense/md1",
            "MedicationRequest/mr1",
            "MedicationRequest/mr2"
        ]
    );
    assert_eq!(
        s.all(
            &["Medication"],
            &[
                code_a,
                ("_contained", "both"),
                ("_containedType", "contained")
            ]
        )
        .await,
        [
            "Medication/MedicationDispense/md1#x",
            "Medication/MedicationRequest/mr1#m1",
            "Medication/MedicationRequest/mr2#m1",
            "Medication/MedicationRequest/mr2#m2",
            "Medication/top1",
        ]
    );
    // Negative criteria among contained resources.
    assert_eq!(
        s.all(
            &["Medication"],
            &[("code:not", "a"), ("_contained", "true")]
        )
        .await,
        ["MedicationRequest/mr3"]
    );
    // `_id` of a contained resource is its local id.
    assert_eq!(
        s.all(
            &["Medication"],
            &[
                ("_id", "m2"),
                ("_contained", "true"),
                ("_containedType", "contained")
            ]
        )
        .await,
        ["Medication/MedicationRequest/mr2#m2"]
    );
}

#[tokio::test]
async fn contained_bodies_paging_and_totals() {
    let s = fixture().await;
    for (contained, containedtype, expected) in [
        ("true", "container", 3u64),
        ("true", "contained", 4),
        ("both", "container", 4),
        ("both", "contained", 5),
    ] {
        let params = [
            ("code", "a"),
            ("_contained", contained),
            ("_containedType", containedtype),
            ("_total", "accurate"),
            ("_count", "1"),
        ];
        let q = query(&["Medication"], &params);
        let mut cursor: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let page = s.store.search(&q, cursor.as_deref()).await.expect("page");
            assert_eq!(page.total, Some(expected), "{params:?}");
            assert!(page.matches.len() <= 1);
            for m in &page.matches {
                let body: Value =
                    serde_json::from_slice(m.body.as_deref().expect("body")).expect("json");
                assert_eq!(body["resourceType"], m.resource_type.as_str());
                if let Some((_, local)) = m.id.split_once('#') {
                    // The contained entry itself, not its container.
                    assert_eq!(body["id"], local);
                    assert_eq!(body["code"]["coding"][0]["code"], "a");
                }
                seen.push(format!("{}/{}", m.resource_type, m.id));
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len() as u64, expected, "{params:?}: {seen:?}");
        let mut unique = seen.clone();
        unique.dedup();
        assert_eq!(unique, seen, "no repeats");
    }
    // `_sort` with `_contained` is refused by name.
    let q = query(
        &["Medication"],
        &[("_contained", "true"), ("_sort", "code")],
    );
    match s.store.search(&q, None).await {
        Err(StoreError::Unsupported(what)) => assert!(what.contains("_contained"), "{what}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[tokio::test]
async fn chains_follow_local_references_into_contained_resources() {
    let s = fixture().await;
    assert_eq!(
        s.all(&["Observation"], &[("subject.name", "Taylor")]).await,
        ["Observation/o1"]
    );
    assert_eq!(
        s.all(&["Observation"], &[("subject.name", "Real")]).await,
        ["Observation/o2"]
    );
    assert_eq!(
        s.all(&["Observation"], &[("subject:Patient.gender:not", "male")])
            .await,
        ["Observation/o1", "Observation/o2"]
    );
    assert_eq!(
        s.all(&["MedicationRequest"], &[("medication.code", "b")])
            .await,
        ["MedicationRequest/mr3"]
    );
    // `_has` reaches a contained Patient from its container.
    assert_eq!(
        s.all(
            &["Patient"],
            &[
                ("_has:Observation:subject:status", "final"),
                ("_contained", "true"),
                ("_containedType", "contained")
            ]
        )
        .await,
        ["Patient/Observation/o1#p1"]
    );
    // Includes of contained matches apply to them: the container's reference to its
    // contained Medication brings the container back.
    let q = query(
        &["Medication"],
        &[
            ("code", "b"),
            ("_contained", "true"),
            ("_containedType", "contained"),
            ("_revinclude", "MedicationRequest:medication"),
        ],
    );
    let page = s.store.search(&q, None).await.expect("search");
    let included: Vec<String> = page
        .included
        .iter()
        .map(|v| format!("{}/{}", v.resource_type, v.id))
        .collect();
    assert_eq!(included, ["MedicationRequest/mr3"]);
}
