//! Index rows in the PostgreSQL store, against a real server: written, replaced and removed
//! with their resource, contained resources included, in the shared column layout.

use caduceus_store::index::{ContainedIndex, IndexRow, IndexValue};
use caduceus_store::{Method, Store, WriteOp, WriteOutcome};
use caduceus_store_postgres::testing::fresh_database;
use serde_json::json;

mod support;
use support::*;

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
