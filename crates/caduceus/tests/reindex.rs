//! `caduceus reindex` and the start-up check of the search index.
//!
//! "The search parameters changed" is simulated on a real store: after data was written,
//! some index rows are removed and the recorded fingerprint is replaced, which is what a
//! store indexed by another parameter set looks like to this binary. Then the server must
//! warn at start, searches miss the unindexed values (proving the index, not a scan,
//! answers them), and after `caduceus reindex` every search finds exactly what was written,
//! with no new versions.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, binary};
use serde_json::json;

const PATIENTS: usize = 30;

fn family(n: usize) -> String {
    format!("Reindexson{}", n % 3)
}

fn stale_warning(logs: &[String]) -> bool {
    logs.iter()
        .any(|l| l.contains("caduceus reindex") && l.contains("\"WARN\""))
}

fn total(server: &Server, query: &str) -> u64 {
    let reply = server.get(&format!("{query}&_total=accurate&_count=0"));
    reply.expect(200);
    reply.json()["total"].as_u64().expect("total")
}

fn run_reindex(data: &Path, extra: &[&str]) -> String {
    let out = Command::new(binary())
        .args(["reindex", "--quiet", "--data-dir"])
        .arg(data)
        .args(extra)
        .output()
        .expect("run caduceus reindex");
    assert!(
        out.status.success(),
        "reindex failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn reindex_rebuilds_a_stale_index_and_the_server_says_when_it_is_needed() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");

    // A fresh store: no warning; data written and searchable.
    let server = Server::start_in(&data, &[]);
    for n in 0..PATIENTS {
        let id = format!("p{n}");
        server
            .put(
                &format!("Patient/{id}"),
                &json!({"resourceType": "Patient", "id": id, "name": [{"family": family(n)}],
                        "gender": if n % 2 == 0 { "female" } else { "male" }}),
            )
            .expect(201);
        server
            .put(
                &format!("Observation/o{n}"),
                &json!({"resourceType": "Observation", "id": format!("o{n}"), "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
                        "subject": {"reference": format!("Patient/{id}")}}),
            )
            .expect(201);
    }
    // One update, so that the current version is not the first.
    server
        .put(
            "Patient/p0",
            &json!({"resourceType": "Patient", "id": "p0", "name": [{"family": "Reindexson1"}],
                    "gender": "female"}),
        )
        .expect(200);
    let expected_family_1 = (0..PATIENTS).filter(|n| n % 3 == 1).count() as u64 + 1;
    assert_eq!(
        total(&server, "Patient?family=Reindexson1"),
        expected_family_1
    );
    let (_, logs) = server.terminate_with_logs();
    assert!(!stale_warning(&logs), "warned on a fresh store: {logs:?}");

    // Another parameter set's index: family and code rows missing, another fingerprint.
    {
        let conn = rusqlite::Connection::open(data.join("caduceus.db")).expect("open db");
        let removed = conn
            .execute(
                "DELETE FROM idx_string WHERE param = 'family' OR param = 'name'",
                [],
            )
            .expect("delete rows");
        assert!(removed > 0);
        conn.execute("DELETE FROM idx_token WHERE param = 'code'", [])
            .expect("delete rows");
        conn.execute(
            "UPDATE store_meta SET value = 'v0-0000000000000000' WHERE key = 'index.fingerprint'",
            [],
        )
        .expect("set fingerprint");
    }
    let server = Server::start_in(&data, &[]);
    assert_eq!(total(&server, "Patient?family=Reindexson1"), 0);
    assert_eq!(
        total(&server, "Patient?gender=female"),
        15,
        "untouched rows still work"
    );
    let versions_before = server.history_all("_history").0.len();
    let (_, logs) = server.terminate_with_logs();
    assert!(stale_warning(&logs), "no stale-index warning: {logs:?}");

    let out = run_reindex(&data, &[]);
    let resources = 2 * PATIENTS;
    assert!(
        out.contains(&format!("reindexed {resources} of {resources} resources")),
        "{out}"
    );

    let server = Server::start_in(&data, &[]);
    assert_eq!(
        total(&server, "Patient?family=Reindexson1"),
        expected_family_1
    );
    assert_eq!(
        total(&server, "Patient?family=Reindexson2"),
        (0..PATIENTS).filter(|n| n % 3 == 2).count() as u64
    );
    assert_eq!(
        total(&server, "Observation?code=http://loinc.org|8302-2"),
        PATIENTS as u64
    );
    assert_eq!(
        total(&server, "Observation?subject:Patient.name=Reindexson0"),
        (1..PATIENTS).filter(|n| n % 3 == 0).count() as u64,
        "chains use the rebuilt rows"
    );
    assert_eq!(total(&server, "Patient?gender=female"), 15);
    assert_eq!(
        server.history_all("_history").0.len(),
        versions_before,
        "a reindex writes no versions"
    );
    let (_, logs) = server.terminate_with_logs();
    assert!(
        !stale_warning(&logs),
        "still warned after reindex: {logs:?}"
    );

    // Current now: nothing to do unless forced.
    assert!(run_reindex(&data, &[]).contains("nothing to do"));
    assert!(run_reindex(&data, &["--force"]).contains(&format!("reindexed {resources} of")));
}

#[test]
fn a_store_written_before_fingerprints_is_reported_stale() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let server = Server::start_in(&data, &[]);
    server
        .put(
            "Patient/a",
            &json!({"resourceType": "Patient", "id": "a", "gender": "other"}),
        )
        .expect(201);
    server.terminate_with_logs();
    let conn = rusqlite::Connection::open(data.join("caduceus.db")).expect("open db");
    conn.execute("DELETE FROM store_meta", []).expect("forget");
    drop(conn);
    let server = Server::start_in(&data, &[]);
    let (_, logs) = server.terminate_with_logs();
    assert!(stale_warning(&logs), "{logs:?}");
}
