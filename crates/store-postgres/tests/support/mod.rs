//! What the store's integration tests share: opening a store on a test database, a direct
//! connection for checks the trait does not offer, and small write operations.
#![allow(dead_code)] // each test file uses a different part

use caduceus_store::{HistoryQuery, HistoryScope, Method, WriteOp, WriteOutcome};
use caduceus_store_postgres::testing::TestDb;
use caduceus_store_postgres::{PgOptions, PostgresStore};
use serde_json::{Value, json};

pub async fn open(db: &TestDb) -> PostgresStore {
    PostgresStore::open(db.url(), &PgOptions::default())
        .await
        .expect("open")
}

/// A direct connection to the test database, for checks the trait does not offer.
pub async fn sql(db: &TestDb) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

pub fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family}], "active": true})
}

pub fn create(id: &str) -> WriteOp {
    WriteOp::Create {
        resource_type: "Patient".into(),
        id: id.into(),
        resource: patient(id),
        index: vec![],
        contained: vec![],
    }
}

pub fn update(id: &str, family: &str, if_match: Option<u64>) -> WriteOp {
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

pub fn delete(id: &str, if_match: Option<u64>) -> WriteOp {
    WriteOp::Delete {
        resource_type: "Patient".into(),
        id: id.into(),
        if_match,
    }
}

pub fn written(outcome: &WriteOutcome) -> (u64, bool, i64, i64) {
    match outcome {
        WriteOutcome::Written { version, created } => {
            (version.version, *created, version.seq, version.last_updated)
        }
        other => panic!("expected a written version, got {other:?}"),
    }
}

pub fn body_json(body: &Option<bytes::Bytes>) -> Value {
    serde_json::from_slice(body.as_deref().expect("a body")).expect("json")
}

pub fn history(scope: HistoryScope) -> HistoryQuery {
    HistoryQuery {
        scope,
        since: None,
        at: None,
        before_seq: None,
        limit: 100,
    }
}
