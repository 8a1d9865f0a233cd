//! Two server processes on one PostgreSQL database (replicas behind a load balancer): the
//! guarantees of one process must hold across processes.
//!
//! - `If-Match` updates racing on both servers: exactly one wins per version, the others get
//!   409/412, and the history is gap-free with every acknowledged update in it.
//! - Conditional creates racing on both servers: exactly one resource is created, the others
//!   answer 200 with that resource.
//! - Two servers starting together on an empty database both come up (the migrations run
//!   once, under the advisory lock).
//!
//! Needs `CADUCEUS_TEST_DATABASE_URL`; skipped without it (failed under
//! `CADUCEUS_TEST_REQUIRE_POSTGRES=1`).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::thread;

use common::{Server, pg};
use serde_json::{Value, json};

/// A fresh database and two servers on it; None (after saying so) when PostgreSQL is absent.
/// The database is declared first so that it is dropped after both servers.
fn two_servers(test: &str) -> Option<(pg::TestDatabase, Arc<Server>, Arc<Server>)> {
    let admin = pg::admin_url_or_skip(test)?;
    let db = pg::TestDatabase::create(&admin);
    let a = Server::start_with_database(&db.url, &[]);
    let b = Server::start_with_database(&db.url, &[]);
    Some((db, Arc::new(a), Arc::new(b)))
}

#[track_caller]
fn version_of(v: &Value) -> u64 {
    v["meta"]["versionId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no numeric meta.versionId in {v}"))
}

#[track_caller]
fn assert_outcome(reply: &common::Reply) {
    let v = reply.json();
    assert_eq!(
        v["resourceType"], "OperationOutcome",
        "a {} must carry an OperationOutcome: {v}",
        reply.status
    );
}

#[test]
fn if_match_updates_racing_on_two_servers_never_lose_an_update() {
    let Some((_db, a, b)) =
        two_servers("postgres_replicas::if_match_updates_racing_on_two_servers")
    else {
        return;
    };
    const CLIENTS: usize = 50;
    const ROUNDS: usize = 4;
    let created = a.post(
        "Patient",
        &json!({"resourceType": "Patient", "name": [{"family": "Race"}]}),
    );
    created.expect(201);
    let id = created.json()["id"].as_str().expect("id").to_owned();

    // The marker each acknowledged version must carry: version → (round, client).
    let mut winners: BTreeMap<u64, String> = BTreeMap::new();
    let mut current = 1u64;
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let server = if client % 2 == 0 {
                    a.clone()
                } else {
                    b.clone()
                };
                let barrier = barrier.clone();
                let id = id.clone();
                thread::spawn(move || {
                    let marker = format!("round-{round}-client-{client}");
                    let body = json!({
                        "resourceType": "Patient",
                        "id": id,
                        "name": [{"family": "Race", "given": [marker]}],
                    });
                    let etag = format!("W/\"{current}\"");
                    barrier.wait();
                    let reply = server.send_json_with(
                        "PUT",
                        &format!("Patient/{id}"),
                        &[("if-match", &etag)],
                        &body,
                    );
                    (marker, reply)
                })
            })
            .collect();
        let mut successes = Vec::new();
        for handle in handles {
            let (marker, reply) = handle.join().expect("client thread");
            match reply.status {
                200 => successes.push((marker, version_of(&reply.json()))),
                409 | 412 => assert_outcome(&reply),
                other => panic!(
                    "round {round}: PUT with If-Match answered {other}: {}",
                    reply.text()
                ),
            }
        }
        assert_eq!(
            successes.len(),
            1,
            "round {round}: exactly one update of version {current} may win; winners: {successes:?}"
        );
        let (marker, version) = successes.pop().expect("one winner");
        assert_eq!(
            version,
            current + 1,
            "round {round}: the winner's version follows the one it matched"
        );
        winners.insert(version, marker);
        current = version;
    }

    // Both servers see the last version.
    for server in [&a, &b] {
        let read = server.get(&format!("Patient/{id}"));
        read.expect(200);
        assert_eq!(version_of(&read.json()), current);
    }

    // The history: versions 1..=n, no gap, no duplicate, each holding its winner's body.
    let (entries, _) = a.history_all(&format!("Patient/{id}/_history?_count=7"));
    let mut versions: Vec<u64> = entries.iter().map(|e| version_of(&e["resource"])).collect();
    versions.sort_unstable();
    let expected: Vec<u64> = (1..=current).collect();
    assert_eq!(versions, expected, "history versions");
    assert_eq!(current, ROUNDS as u64 + 1);
    for entry in &entries {
        let v = &entry["resource"];
        let version = version_of(v);
        if let Some(marker) = winners.get(&version) {
            assert_eq!(
                v["name"][0]["given"][0], *marker,
                "version {version} holds the update that was acknowledged for it"
            );
        }
    }
}

#[test]
fn if_match_read_modify_write_loops_on_two_servers_lose_nothing() {
    let Some((_db, a, b)) = two_servers("postgres_replicas::if_match_read_modify_write_loops")
    else {
        return;
    };
    // Every client reads the current version and updates with If-Match until it wins once.
    // 50 acknowledged updates must give exactly versions 1..=51.
    const CLIENTS: usize = 50;
    let id = a.create_id(&json!({"resourceType": "Patient", "active": true}));
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let server = if client % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            let barrier = barrier.clone();
            let id = id.clone();
            thread::spawn(move || {
                barrier.wait();
                for attempt in 0..500 {
                    let read = server.get(&format!("Patient/{id}"));
                    read.expect(200);
                    let current = version_of(&read.json());
                    let body = json!({
                        "resourceType": "Patient",
                        "id": id,
                        "name": [{"family": format!("client-{client}")}],
                    });
                    let reply = server.send_json_with(
                        "PUT",
                        &format!("Patient/{id}"),
                        &[("if-match", &format!("W/\"{current}\""))],
                        &body,
                    );
                    match reply.status {
                        200 => return (client, version_of(&reply.json()), attempt),
                        409 | 412 => assert_outcome(&reply),
                        other => panic!("PUT with If-Match answered {other}: {}", reply.text()),
                    }
                }
                panic!("client {client} never won an update in 500 attempts");
            })
        })
        .collect();
    let mut acknowledged: BTreeMap<u64, usize> = BTreeMap::new();
    for handle in handles {
        let (client, version, _) = handle.join().expect("client thread");
        if let Some(other) = acknowledged.insert(version, client) {
            panic!("version {version} was acknowledged to clients {other} and {client}");
        }
    }
    let expected: Vec<u64> = (2..=CLIENTS as u64 + 1).collect();
    assert_eq!(
        acknowledged.keys().copied().collect::<Vec<_>>(),
        expected,
        "acknowledged versions"
    );
    let (entries, _) = b.history_all(&format!("Patient/{id}/_history?_count=20"));
    let mut by_version: BTreeMap<u64, Value> = BTreeMap::new();
    for entry in entries {
        let v = entry["resource"].clone();
        assert!(
            by_version.insert(version_of(&v), v).is_none(),
            "a version appears twice in the history"
        );
    }
    assert_eq!(
        by_version.keys().copied().collect::<Vec<_>>(),
        (1..=CLIENTS as u64 + 1).collect::<Vec<_>>(),
        "history versions are gap-free"
    );
    for (version, client) in acknowledged {
        assert_eq!(
            by_version[&version]["name"][0]["family"],
            format!("client-{client}"),
            "version {version} holds the update acknowledged for it"
        );
    }
}

#[test]
fn conditional_creates_racing_on_two_servers_create_one_resource() {
    let Some((_db, a, b)) = two_servers("postgres_replicas::conditional_creates_racing") else {
        return;
    };
    const CLIENTS: usize = 20;
    for value in ["42", "43", "44"] {
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let server = if client % 2 == 0 {
                    a.clone()
                } else {
                    b.clone()
                };
                let barrier = barrier.clone();
                thread::spawn(move || {
                    let body = json!({
                        "resourceType": "Patient",
                        "identifier": [{"system": "urn:x", "value": value}],
                        "name": [{"family": format!("client-{client}")}],
                    });
                    let condition = format!("identifier=urn:x|{value}");
                    barrier.wait();
                    server.send_json_with(
                        "POST",
                        "Patient",
                        &[("if-none-exist", &condition)],
                        &body,
                    )
                })
            })
            .collect();
        let mut created = Vec::new();
        let mut existing = Vec::new();
        for handle in handles {
            let reply = handle.join().expect("client thread");
            let id = || reply.json()["id"].as_str().map(str::to_owned);
            match reply.status {
                201 => created.push(id().expect("id of the created Patient")),
                200 => existing.push(id().unwrap_or_else(|| {
                    panic!(
                        "a 200 to a conditional create carries the match: {}",
                        reply.text()
                    )
                })),
                other => panic!(
                    "identifier {value}: conditional create answered {other}: {}",
                    reply.text()
                ),
            }
        }
        assert_eq!(
            created.len(),
            1,
            "identifier {value}: exactly one conditional create may create; created {created:?}"
        );
        assert!(
            existing.iter().all(|id| *id == created[0]),
            "identifier {value}: every 200 names the created Patient {}; got {existing:?}",
            created[0]
        );
        for server in [&a, &b] {
            let count = server.get(&format!(
                "Patient?identifier=urn%3Ax%7C{value}&_summary=count"
            ));
            count.expect(200);
            assert_eq!(
                count.json()["total"],
                1,
                "identifier {value}: Patients with it: {}",
                count.text()
            );
        }
    }
}

#[test]
fn two_servers_starting_together_on_an_empty_database_both_come_up() {
    let Some(admin) = pg::admin_url_or_skip("postgres_replicas::two_servers_starting_together")
    else {
        return;
    };
    for _ in 0..3 {
        let db = pg::TestDatabase::create(&admin);
        let barrier = Arc::new(Barrier::new(2));
        let starts: Vec<_> = (0..2)
            .map(|_| {
                let url = db.url.clone();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    Server::start_with_database(&url, &[])
                })
            })
            .collect();
        let servers: Vec<Server> = starts
            .into_iter()
            .map(|h| h.join().expect("a server did not start"))
            .collect();
        for server in &servers {
            server.get("metadata").expect(200);
            server
                .request("GET", &server.root_url("health/ready"), &[], None)
                .expect(200);
        }
        let id = servers[0].create_id(&json!({"resourceType": "Patient", "active": true}));
        servers[1].get(&format!("Patient/{id}")).expect(200);
        let id = servers[1].create_id(&json!({"resourceType": "Patient", "active": false}));
        servers[0].get(&format!("Patient/{id}")).expect(200);
        drop(servers);
    }
}

#[test]
fn harness_replaces_only_the_database_name_of_a_url() {
    use pg::url_with_database as with;
    assert_eq!(
        with("postgres://u:p@127.0.0.1:5432/postgres", "x"),
        "postgres://u:p@127.0.0.1:5432/x"
    );
    assert_eq!(
        with("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with("postgres://h:5432", "x"), "postgres://h:5432/x");
    assert_eq!(
        with("postgresql://u:p%2F@h/", "x"),
        "postgresql://u:p%2F@h/x"
    );
}
