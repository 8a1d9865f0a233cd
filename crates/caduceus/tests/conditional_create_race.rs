//! Conditional creates racing inside one server: the store lock taken around the search and
//! the create (crates/engine/src/conditional.rs) makes exactly one resource, whatever the
//! interleaving; every other request answers 200 with that resource. Transactions holding
//! several such locks, named in opposite orders, finish (no deadlock) with one resource per
//! condition. (Two server processes on one PostgreSQL database: postgres_replicas.rs.)

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::Server;
use serde_json::{Value, json};

const CLIENTS: usize = 20;

fn patient(identifier: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{ "system": "http://example.org/mrn", "value": identifier }],
        "active": true
    })
}

/// The ids of every Patient with this identifier.
fn ids_with(server: &Server, identifier: &str) -> Vec<String> {
    let reply = server.get(&format!(
        "Patient?identifier=http://example.org/mrn|{identifier}&_count=100"
    ));
    reply.expect(200);
    reply.json()["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn twenty_concurrent_conditional_creates_make_one_resource() {
    let server = Arc::new(Server::start());
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (server, barrier) = (server.clone(), barrier.clone());
            thread::spawn(move || {
                // Two spellings of one search share a lock: the key is the canonical query.
                let condition = if n % 2 == 0 {
                    "identifier=http://example.org/mrn|race-1"
                } else {
                    "identifier=http%3A%2F%2Fexample.org%2Fmrn%7Crace-1&_count=7"
                };
                barrier.wait();
                let reply = server.send_json_with(
                    "POST",
                    "Patient",
                    &[("if-none-exist", condition)],
                    &patient("race-1"),
                );
                let id = reply.json()["id"].as_str().map(str::to_owned);
                (reply.status, id)
            })
        })
        .collect();
    let results: Vec<(u16, Option<String>)> = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "exactly one create: {results:?}");
    assert!(
        results.iter().all(|(s, _)| *s == 200 || *s == 201),
        "the others find the resource: {results:?}"
    );
    let ids = ids_with(&server, "race-1");
    assert_eq!(ids.len(), 1, "one stored resource: {ids:?}");
    assert!(
        results
            .iter()
            .all(|(_, id)| id.as_deref() == Some(ids[0].as_str())),
        "every answer is that resource: {results:?}"
    );
}

fn conditional_entry(identifier: &str) -> Value {
    json!({
        "fullUrl": format!("urn:uuid:{}", uuid_for(identifier)),
        "resource": patient(identifier),
        "request": {
            "method": "POST",
            "url": "Patient",
            "ifNoneExist": format!("identifier=http://example.org/mrn|{identifier}")
        }
    })
}

/// A fixed urn:uuid per identifier, unique within a bundle.
fn uuid_for(identifier: &str) -> String {
    let n: u64 = identifier.bytes().fold(0, |h, b| h * 31 + u64::from(b)) % 1_000_000_000_000;
    format!("00000000-0000-4000-8000-{n:012}")
}

#[test]
fn transactions_racing_on_several_conditions_make_one_resource_each() {
    let server = Arc::new(Server::start());
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (server, barrier) = (server.clone(), barrier.clone());
            thread::spawn(move || {
                // Half name the conditions in one order, half in the other: locks are
                // taken in sorted key order, so none waits for another in a cycle.
                let mut entries = vec![
                    conditional_entry("tx-a"),
                    conditional_entry("tx-b"),
                    conditional_entry("tx-c"),
                ];
                if n % 2 == 1 {
                    entries.reverse();
                }
                let kind = if n % 4 == 3 { "batch" } else { "transaction" };
                let bundle = json!({ "resourceType": "Bundle", "type": kind, "entry": entries });
                barrier.wait();
                let reply = server.post("", &bundle);
                let statuses: Vec<String> = reply.json()["entry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["response"]["status"].as_str().map(str::to_owned))
                    .collect();
                (reply.status, statuses)
            })
        })
        .collect();
    let results: Vec<(u16, Vec<String>)> = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    assert!(
        results
            .iter()
            .all(|(s, entries)| *s == 200 && entries.len() == 3),
        "every bundle succeeds: {results:?}"
    );
    let created = results
        .iter()
        .flat_map(|(_, e)| e)
        .filter(|s| s.starts_with("201"))
        .count();
    assert_eq!(created, 3, "one create per condition: {results:?}");
    for identifier in ["tx-a", "tx-b", "tx-c"] {
        assert_eq!(ids_with(&server, identifier).len(), 1, "{identifier}");
    }
}

/// On PostgreSQL a transaction with more distinct conditional creates than the pool has
/// connections completes: the store holds every named lock on one lock session of its own,
/// never on pooled connections (which the bundle's searches and write need).
#[test]
fn a_bundle_with_more_conditional_creates_than_pool_connections_completes() {
    let Some(admin) = common::pg::admin_url_or_skip(
        "conditional_create_race::a_bundle_with_more_conditional_creates_than_pool_connections",
    ) else {
        return;
    };
    let db = common::pg::TestDatabase::create(&admin);
    let server = Server::start_with_database(&db.url, &["--db-pool-size", "4"]);
    let entries: Vec<Value> = (0..8)
        .map(|n| conditional_entry(&format!("pool-{n}")))
        .collect();
    let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries });
    server.post("", &bundle).expect(200);
}

/// A conditional update that finds nothing creates, so it takes the same lock: 20 racing
/// `PUT Patient?identifier=...` make one resource (one 201), and the others update it one
/// after another (19 × 200), so its history is versions 1 to 20 without a gap.
#[test]
fn twenty_concurrent_conditional_updates_make_one_resource() {
    let server = Arc::new(Server::start());
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (server, barrier) = (server.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                server
                    .put(
                        "Patient?identifier=http://example.org/mrn|race-put",
                        &patient("race-put"),
                    )
                    .status
            })
        })
        .collect();
    let mut statuses: Vec<u16> = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    statuses.sort_unstable();
    let created = statuses.iter().filter(|s| **s == 201).count();
    let updated = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        (created, updated),
        (1, CLIENTS - 1),
        "statuses: {statuses:?}"
    );
    let ids = ids_with(&server, "race-put");
    assert_eq!(ids.len(), 1, "one stored resource: {ids:?}");
    let history = server.get(&format!("Patient/{}/_history?_count=100", ids[0]));
    history.expect(200);
    let mut versions: Vec<u64> = history.json()["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["meta"]["versionId"].as_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let expected: Vec<u64> = (1..=CLIENTS as u64).collect();
    assert_eq!(versions, expected, "gap-free history");
}
