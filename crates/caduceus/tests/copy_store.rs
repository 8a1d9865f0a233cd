//! `caduceus copy`: a whole store, every version in write order, into an empty one; then
//! the copy is reindexed and verified (version and live counts).
//!
//! - SQLite → SQLite: history (system and instance), reads and searches are the same on
//!   both sides, and a second copy into the now non-empty target is refused.
//! - SQLite → PostgreSQL → SQLite (needs `CADUCEUS_TEST_DATABASE_URL`, else skipped): the
//!   round trip gives back the same history, bodies and search results, and PostgreSQL
//!   serves the same reads and history in between.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::Server;
use serde_json::{Value, json};

fn caduceus(args: &[&str]) -> Output {
    Command::new(common::binary())
        .args(["--log-level", "warn"])
        .args(args)
        .env_remove("CADUCEUS_LOG")
        .env_remove("CADUCEUS_DATABASE_URL")
        .output()
        .expect("run caduceus")
}

#[track_caller]
fn copy_ok(from: &str, to: &str) -> String {
    let out = caduceus(&[
        "copy",
        "--from",
        from,
        "--to",
        to,
        "--quiet",
        "--batch-size",
        "4",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "copy failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("the copy matches its source"), "{stdout}");
    stdout
}

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family}], "active": true})
}

fn observation(subject: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": value, "unit": "/min"}
    })
}

fn with_id(mut body: Value, id: &str) -> Value {
    body["id"] = json!(id);
    body
}

/// PUT with the id of the path in the body.
#[track_caller]
fn put(server: &Server, path: &str, body: Value, status: u16) {
    let id = path.rsplit('/').next().unwrap_or_default();
    server.put(path, &with_id(body, id)).expect(status);
}

/// Versions of every kind: updates, deletes, a resource deleted and created again,
/// several types, a transaction.
fn fill(server: &Server) {
    put(server, "Patient/p1", patient("Alpha"), 201);
    put(server, "Patient/p1", patient("Alpha-2"), 200);
    put(server, "Patient/p1", patient("Alpha-3"), 200);
    put(server, "Patient/p2", patient("Beta"), 201);
    server.delete("Patient/p2").expect(200);
    put(server, "Patient/p3", patient("Gamma"), 201);
    server.delete("Patient/p3").expect(200);
    put(server, "Patient/p3", patient("Gamma-again"), 201);
    for (n, value) in [70.0, 80.0, 90.0].iter().enumerate() {
        let path = format!("Observation/o{n}");
        put(server, &path, observation("Patient/p1", *value), 201);
    }
    put(
        server,
        "Observation/o9",
        observation("Patient/p3", 60.0),
        201,
    );
    server.delete("Observation/o1").expect(200);
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient("Delta"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": with_id(observation("Patient/p3", 65.0), "o9"),
             "request": {"method": "PUT", "url": "Observation/o9"}}
        ]
    });
    server.post("", &bundle).expect(200);
}

/// The whole system history with the server's base taken out (each server has its own).
fn history(server: &Server) -> Vec<Value> {
    let (entries, _) = server.history_all("_history?_count=5");
    entries
        .into_iter()
        .map(|mut e| {
            if let Some(obj) = e.as_object_mut() {
                obj.remove("fullUrl");
            }
            e
        })
        .collect()
}

fn read(server: &Server, path: &str) -> (u16, Option<Value>) {
    let reply = server.get(path);
    let body = (reply.status == 200).then(|| reply.json());
    (reply.status, body)
}

const READS: &[&str] = &[
    "Patient/p1",
    "Patient/p1/_history/1",
    "Patient/p2",
    "Patient/p2/_history/1",
    "Patient/p3",
    "Patient/p3/_history/2",
    "Observation/o1",
    "Observation/o9",
    "Observation/o9/_history/1",
];

/// Ids found by searches that go through the index of the copy.
fn searches(server: &Server) -> Vec<Vec<String>> {
    [
        "Observation?subject=Patient/p1",
        "Observation?subject=Patient/p3&value-quantity=gt62",
        "Patient?name=gamma-again",
        "Patient?name=alpha",
        "Patient?_has:Observation:subject:code=http://loinc.org|8867-4",
    ]
    .iter()
    .map(|q| {
        let reply = server.get(q);
        reply.expect(200);
        let mut ids: Vec<String> = reply.json()["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    })
    .collect()
}

struct Snapshot {
    history: Vec<Value>,
    reads: Vec<(u16, Option<Value>)>,
}

fn snapshot(server: &Server) -> Snapshot {
    Snapshot {
        history: history(server),
        reads: READS.iter().map(|p| read(server, p)).collect(),
    }
}

#[track_caller]
fn assert_same(a: &Snapshot, b: &Snapshot, what: &str) {
    assert_eq!(a.history.len(), b.history.len(), "{what}: history length");
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(x, y, "{what}: history entry");
    }
    for ((path, x), y) in READS.iter().zip(&a.reads).zip(&b.reads) {
        assert_eq!(x, y, "{what}: GET {path}");
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

#[test]
fn copy_between_embedded_stores_keeps_every_version_and_the_searches() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let server = Server::start_in(&a, &[]);
    fill(&server);
    let before = snapshot(&server);
    let found = searches(&server);
    assert_eq!(
        found[0],
        ["o0", "o2"],
        "the fixture searches find something"
    );
    assert!(server.terminate().success());

    let stdout = copy_ok(path_str(&a), path_str(&b));
    assert!(
        stdout
            .contains("versions 15 (source) / 15 (target); live resources 6 (source) / 6 (target)"),
        "{stdout}"
    );

    let copy = Server::start_in(&b, &[]);
    assert_same(&before, &snapshot(&copy), "SQLite copy");
    assert_eq!(searches(&copy), found, "searches on the copy");
    // The copy keeps taking writes after the copied history.
    put(&copy, "Patient/p1", patient("Alpha-4"), 200);
    assert_eq!(
        read(&copy, "Patient/p1").1.unwrap()["meta"]["versionId"],
        "4"
    );
    drop(copy);

    let missing = tmp.path().join("missing");
    let refused = caduceus(&["copy", "--from", path_str(&missing), "--to", path_str(&b)]);
    assert!(
        !refused.status.success(),
        "a source folder without a store is refused"
    );
    assert!(!missing.exists(), "and not created");

    let again = caduceus(&[
        "copy",
        "--from",
        path_str(&a),
        "--to",
        path_str(&b),
        "--quiet",
    ]);
    assert!(!again.status.success(), "a non-empty target is refused");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn round_trip_through_postgres_gives_back_the_same_store() {
    let Some(admin) = common::pg::admin_url_or_skip("copy_store::round_trip_through_postgres")
    else {
        return;
    };
    let db = common::pg::TestDatabase::create(&admin);
    let tmp = tempfile::tempdir().expect("temp dir");
    let (a, c) = (tmp.path().join("a"), tmp.path().join("c"));
    let server = Server::start_in(&a, &[]);
    fill(&server);
    let before = snapshot(&server);
    let found = searches(&server);
    assert!(server.terminate().success());

    // `migrate` on the fresh database applies every migration and says so.
    let migrated = caduceus(&["migrate", "--database", &db.url]);
    let text = String::from_utf8_lossy(&migrated.stdout).into_owned();
    assert!(
        migrated.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(text.contains("applied migration 1"), "{text}");
    let again = caduceus(&["migrate", "--database", &db.url]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to apply"));

    copy_ok(path_str(&a), &db.url);
    {
        let pg = Server::start_with_database(&db.url, &[]);
        assert_same(&before, &snapshot(&pg), "PostgreSQL copy");
    }
    copy_ok(&db.url, path_str(&c));
    let back = Server::start_in(&c, &[]);
    assert_same(
        &before,
        &snapshot(&back),
        "SQLite copy of the PostgreSQL copy",
    );
    assert_eq!(searches(&back), found, "searches after the round trip");
}
