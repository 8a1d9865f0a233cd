//! Import throughput of the PostgreSQL store alone (no validation, no extraction): batches
//! of creates with a realistic number of index rows, from a few concurrent writers, as
//! `caduceus import` sends them. Ignored by default (it measures, it does not check much):
//! `cargo test -p caduceus-store-postgres --release --test throughput -- --ignored --nocapture`.
//! With `AUTO_EXPLAIN=1`, statements slower than 20 ms log their plans in the server's log
//! (how the stale-statistics plans of `stats.rs` were found).
//!
//! Measured on the 2-core development machine, server and PostgreSQL 15 on it: about 4,800
//! creates/s and 3,900 updates/s (14 index rows each, batches of 100, 4 writers). End to end,
//! `caduceus import` (release build) of the 62 Synthea bundles of `../shared/fhir/synthea`
//! (20,512 resources, validated and indexed) into an empty database: 4,459 resources/s.

use std::time::Instant;

use caduceus_store::index::{IndexRow, IndexValue};
use caduceus_store::{Store, WriteOp};
use caduceus_store_postgres::testing::fresh_database;
use caduceus_store_postgres::{PgOptions, PostgresStore};
use serde_json::json;

/// About what an Observation of Synthea's gets: tokens, references, dates, a quantity and
/// the composites over its code and value.
fn rows(n: usize) -> Vec<IndexRow> {
    let token = |param, code: String| IndexRow {
        param,
        value: IndexValue::Token {
            system: Some("http://loinc.org".into()),
            code: Some(code),
            text: Some("body weight".into()),
        },
    };
    let reference = |param, id: String| IndexRow {
        param,
        value: IndexValue::Reference {
            target_type: Some("Patient".into()),
            target_id: Some(id),
            version: None,
            url: None,
        },
    };
    let date = |param| IndexRow {
        param,
        value: IndexValue::Date {
            start: 1_600_000_000_000_000 + i64::try_from(n).unwrap_or(0),
            end: 1_600_000_000_000_001 + i64::try_from(n).unwrap_or(0),
        },
    };
    let quantity = IndexValue::Quantity {
        value: 70.5,
        low: 70.45,
        high: 70.55,
        system: Some("http://unitsofmeasure.org".into()),
        code: Some("kg".into()),
        canonical_value: Some(70_500.0),
        canonical_code: Some("g".into()),
    };
    let code = format!("{}-{}", 1000 + n % 50, n % 10);
    vec![
        token("code", code.clone()),
        token("combo-code", code.clone()),
        token("category", "vital-signs".into()),
        token("status", "final".into()),
        token("_id", format!("obs-{n}")),
        reference("subject", format!("p{}", n % 100)),
        reference("patient", format!("p{}", n % 100)),
        reference("encounter", format!("e{}", n % 300)),
        date("date"),
        date("_lastUpdated"),
        IndexRow {
            param: "value-quantity",
            value: quantity.clone(),
        },
        IndexRow {
            param: "combo-value-quantity",
            value: quantity.clone(),
        },
        IndexRow {
            param: "code-value-quantity",
            value: IndexValue::Composite(vec![
                IndexValue::Token {
                    system: Some("http://loinc.org".into()),
                    code: Some(code.clone()),
                    text: None,
                },
                quantity.clone(),
            ]),
        },
        IndexRow {
            param: "combo-code-value-quantity",
            value: IndexValue::Composite(vec![
                IndexValue::Token {
                    system: Some("http://loinc.org".into()),
                    code: Some(code),
                    text: None,
                },
                quantity,
            ]),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn import_throughput() {
    let Some(db) = fresh_database() else { return };
    if std::env::var("AUTO_EXPLAIN").is_ok() {
        let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "ALTER DATABASE {0} SET session_preload_libraries = 'auto_explain'; \
                 ALTER DATABASE {0} SET auto_explain.log_min_duration = 20",
                db.name()
            ))
            .await
            .expect("auto_explain");
    }
    let store = PostgresStore::open(db.url(), &PgOptions::default())
        .await
        .expect("open");
    const WRITERS: usize = 4;
    const BATCHES: usize = 25;
    const BATCH: usize = 100;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..BATCHES {
                let ops = (0..BATCH)
                    .map(|k| {
                        let n = (w * BATCHES + b) * BATCH + k;
                        WriteOp::Create {
                            resource_type: "Observation".into(),
                            id: format!("obs-{n}"),
                            resource: json!({
                                "resourceType": "Observation",
                                "status": "final",
                                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                                "subject": {"reference": format!("Patient/p{}", n % 100)},
                                "effectiveDateTime": "2020-09-13T12:26:40Z",
                                "valueQuantity": {"value": 70.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
                            }),
                            index: rows(n),
                            contained: vec![],
                        }
                    })
                    .collect();
                store.write(ops).await.expect("write");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let total = WRITERS * BATCHES * BATCH;
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = total as f64 / secs;
    println!("import_throughput: {total} resources in {secs:.2}s = {rate:.0} resources/s");
    assert_eq!(
        store.count_live(Some("Observation")).await.expect("count"),
        u64::try_from(total).unwrap_or(0)
    );

    // Updates replace index rows: the one-statement DELETE must seek each resource's rows,
    // not scan the tables (which would make this rate fall with the store's size).
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..5 {
                let ops = (0..BATCH)
                    .map(|k| {
                        let n = (w * BATCHES + b) * BATCH + k;
                        WriteOp::Update {
                            resource_type: "Observation".into(),
                            id: format!("obs-{n}"),
                            resource: json!({"resourceType": "Observation", "status": "amended"}),
                            index: rows(n + 1),
                            contained: vec![],
                            if_match: Some(1),
                            method: caduceus_store::Method::Update,
                        }
                    })
                    .collect();
                store.write(ops).await.expect("update");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let updated = WRITERS * 5 * BATCH;
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = updated as f64 / secs;
    println!("import_throughput: {updated} updates in {secs:.2}s = {rate:.0} updates/s");
}
