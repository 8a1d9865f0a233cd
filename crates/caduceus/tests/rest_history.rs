//! History at instance, type and system level (FHIR R4 http.html#history): newest first,
//! `request.method`/`url` per version, `_since`, `_at`, and `_count` paging that neither
//! repeats nor loses entries while other clients keep writing.

mod common;

use std::collections::BTreeSet;

use common::Server;
use serde_json::{Value, json};

fn patient(n: usize) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "http://example.org/test", "value": format!("p{n}")}],
        "gender": "female"
    })
}

fn observation(n: usize) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": format!("o{n}")}
    })
}

/// `Type/id/version` of a history entry, from its response.etag and fullUrl.
#[track_caller]
fn key(entry: &Value) -> String {
    let full_url = entry["fullUrl"].as_str().expect("fullUrl");
    let mut parts = full_url.rsplit('/');
    let id = parts.next().expect("id");
    let rt = parts.next().expect("type");
    let etag = entry["response"]["etag"].as_str().expect("response.etag");
    let version = etag.trim_start_matches("W/").trim_matches('"').to_owned();
    if let Some(resource) = entry.get("resource") {
        assert_eq!(
            resource["meta"]["lastUpdated"], entry["response"]["lastModified"],
            "response.lastModified is the version's lastUpdated: {entry}"
        );
        assert_eq!(resource["id"], id, "resource id matches fullUrl: {entry}");
        assert_eq!(
            resource["meta"]["versionId"], version,
            "resource version matches etag: {entry}"
        );
    }
    format!("{rt}/{id}/{version}")
}

#[test]
fn instance_history_lists_every_version_newest_first_with_methods() {
    let server = Server::start();
    let id = server.create_id(&patient(1));
    let path = format!("Patient/{id}");
    let mut body = patient(1);
    body["id"] = json!(id);
    body["gender"] = json!("male");
    server.put(&path, &body).expect(200);
    server
        .patch(
            &path,
            &json!([{"op": "replace", "path": "/gender", "value": "other"}]),
            &[],
        )
        .expect(200);
    server.delete(&path).expect(200);

    let reply = server.get(&format!("{path}/_history"));
    reply.expect(200);
    let bundle = reply.json();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "history");
    assert!(
        bundle["link"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["relation"] == "self")),
        "a history Bundle has a self link: {bundle}"
    );
    let entries = bundle["entry"].as_array().expect("entries");
    let methods: Vec<&str> = entries
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(methods, ["DELETE", "PATCH", "PUT", "POST"], "newest first");
    let urls: Vec<&str> = entries
        .iter()
        .map(|e| e["request"]["url"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(urls, [path.as_str(), &path, &path, "Patient"]);
    let keys: Vec<String> = entries.iter().map(key).collect();
    assert_eq!(
        keys,
        [4, 3, 2, 1].map(|v| format!("Patient/{id}/{v}")),
        "versions newest first"
    );
    assert!(
        entries[0].get("resource").is_none(),
        "a deletion has no resource: {}",
        entries[0]
    );
    assert_eq!(entries[1]["resource"]["gender"], "other");
    assert_eq!(entries[2]["resource"]["gender"], "male");
    assert_eq!(entries[3]["resource"]["gender"], "female");
    for e in entries {
        assert_eq!(
            e["fullUrl"],
            format!("{}/Patient/{id}", server.base),
            "fullUrl of {e}"
        );
        assert!(
            e["response"]["status"]
                .as_str()
                .is_some_and(|s| s.starts_with('2')),
            "response.status of {e}"
        );
    }
    // lastUpdated never goes backwards from oldest to newest.
    let stamps: Vec<&str> = entries[1..]
        .iter()
        .map(|e| e["resource"]["meta"]["lastUpdated"].as_str().unwrap_or(""))
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(stamps, sorted, "newest first by lastUpdated");
}

#[test]
fn type_and_system_history_hold_exactly_their_scope_newest_first() {
    let server = Server::start();
    let mut written = Vec::new(); // Type/id/version in write order
    for n in 0..4 {
        let p = server.create_id(&patient(n));
        written.push(format!("Patient/{p}/1"));
        let o = server.create_id(&observation(n));
        written.push(format!("Observation/{o}/1"));
    }
    let first_patient = written[0].split('/').nth(1).expect("id").to_owned();
    let mut body = patient(0);
    body["id"] = json!(first_patient);
    server
        .put(&format!("Patient/{first_patient}"), &body)
        .expect(200);
    written.push(format!("Patient/{first_patient}/2"));

    let newest_first: Vec<String> = written.iter().rev().cloned().collect();
    let (system, _) = server.history_all("_history");
    let system_keys: Vec<String> = system.iter().map(key).collect();
    assert_eq!(system_keys, newest_first, "system history");

    let (patients, _) = server.history_all("Patient/_history");
    let patient_keys: Vec<String> = patients.iter().map(key).collect();
    let expected: Vec<String> = newest_first
        .iter()
        .filter(|k| k.starts_with("Patient/"))
        .cloned()
        .collect();
    assert_eq!(patient_keys, expected, "type history");
    assert_eq!(patients[0]["request"]["method"], "PUT");
    assert_eq!(patients[1]["request"]["method"], "POST");
    assert_eq!(patients[1]["request"]["url"], "Patient");

    let (encounters, _) = server.history_all("Encounter/_history");
    assert!(encounters.is_empty(), "no Encounter was written");
    server.get("Nonsense/_history").expect_error(404);
}

#[test]
fn since_keeps_exactly_the_versions_at_or_after_the_instant() {
    let server = Server::start();
    for n in 0..3 {
        server.create_id(&patient(n));
    }
    let middle = server.create_id(&patient(3));
    let since = server.get(&format!("Patient/{middle}")).json()["meta"]["lastUpdated"]
        .as_str()
        .expect("lastUpdated")
        .to_owned();
    for n in 4..6 {
        server.create_id(&patient(n));
    }
    let (all, _) = server.history_all("_history");
    let expected: Vec<String> = all
        .iter()
        .filter(|e| e["resource"]["meta"]["lastUpdated"].as_str().unwrap_or("") >= since.as_str())
        .map(key)
        .collect();
    assert!(
        expected.len() >= 3 && expected.len() < all.len(),
        "the instant splits the history: {expected:?}"
    );
    for scope in ["_history", "Patient/_history"] {
        let (entries, _) = server.history_all(&format!("{scope}?_since={since}"));
        let keys: Vec<String> = entries.iter().map(key).collect();
        assert_eq!(keys, expected, "{scope}?_since={since}");
    }
    let (instance, _) = server.history_all(&format!("Patient/{middle}/_history?_since={since}"));
    assert_eq!(
        instance.len(),
        1,
        "the version written at _since is included"
    );

    // A far-future instant gives nothing; a far-past one everything.
    let (none, _) = server.history_all("_history?_since=2999-01-01T00:00:00Z");
    assert!(none.is_empty(), "{none:?}");
    let (every, _) = server.history_all("_history?_since=1900-01-01T00:00:00Z");
    assert_eq!(every.len(), all.len());
}

#[test]
fn at_gives_the_versions_current_at_that_time() {
    let server = Server::start();
    let id = server.create_id(&patient(1));
    let path = format!("Patient/{id}");
    let mut stamps = vec![
        server.get(&path).json()["meta"]["lastUpdated"]
            .as_str()
            .expect("lastUpdated")
            .to_owned(),
    ];
    for gender in ["male", "other"] {
        let mut body = patient(1);
        body["id"] = json!(id);
        body["gender"] = json!(gender);
        let reply = server.put(&path, &body);
        reply.expect(200);
        stamps.push(
            reply.json()["meta"]["lastUpdated"]
                .as_str()
                .expect("lastUpdated")
                .to_owned(),
        );
    }
    assert!(
        stamps[0] < stamps[1] && stamps[1] < stamps[2],
        "versions have increasing lastUpdated: {stamps:?}"
    );
    // At the instant version 2 was written, version 2 was current (and only it).
    let (entries, _) = server.history_all(&format!("{path}/_history?_at={}", stamps[1]));
    let keys: Vec<String> = entries.iter().map(key).collect();
    assert_eq!(keys, [format!("Patient/{id}/2")], "_at={}", stamps[1]);
    let (entries, _) = server.history_all(&format!("_history?_at={}", stamps[0]));
    let keys: Vec<String> = entries.iter().map(key).collect();
    assert_eq!(keys, [format!("Patient/{id}/1")], "_at={}", stamps[0]);
    // Before the resource existed, nothing was current.
    let (entries, _) = server.history_all(&format!("{path}/_history?_at=1990-01-01"));
    assert!(entries.is_empty(), "{entries:?}");
}

#[test]
fn count_pages_follow_next_links_without_duplicates_or_gaps() {
    let server = Server::start();
    let mut expected = BTreeSet::new();
    for n in 0..23 {
        let id = server.create_id(&patient(n));
        expected.insert(format!("Patient/{id}/1"));
    }
    let (entries, pages) = server.history_all("Patient/_history?_count=5");
    assert_eq!(pages, 5, "23 entries in pages of 5");
    let keys: Vec<String> = entries.iter().map(key).collect();
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        keys.len(),
        "duplicates across pages: {keys:?}"
    );
    assert_eq!(unique, expected, "pages give exactly the written versions");
    // Each page holds at most _count entries.
    let first = server.get("Patient/_history?_count=5").json();
    assert_eq!(first["entry"].as_array().map(Vec::len), Some(5));
}

#[test]
fn paging_is_stable_while_other_clients_write() {
    let server = Server::start();
    let mut expected_system = BTreeSet::new();
    for n in 0..17 {
        let id = server.create_id(&patient(n));
        expected_system.insert(format!("Patient/{id}/1"));
        if n % 3 == 0 {
            let o = server.create_id(&observation(n));
            expected_system.insert(format!("Observation/{o}/1"));
        }
    }
    // An update of an early resource between pages must not move it into a later page
    // as a duplicate, nor remove its old version from the set.
    let early = expected_system
        .iter()
        .find(|k| k.starts_with("Patient/"))
        .and_then(|k| k.split('/').nth(1))
        .expect("an id")
        .to_owned();
    for (scope, known) in [
        ("_history?_count=4", Some(&expected_system)),
        ("Patient/_history?_count=3", None),
        // A `+` in an offset must survive into the next links (percent-encoded).
        ("_history?_since=1900-01-01T01:00:00%2B01:00&_count=5", None),
    ] {
        // The set present when paging starts (earlier rounds wrote more).
        let (present, _) = server.history_all(scope.split('?').next().unwrap_or(scope));
        let expected: BTreeSet<String> = present.iter().map(key).collect();
        if let Some(known) = known {
            assert_eq!(
                &expected, known,
                "{scope}: the history holds what was written"
            );
        }
        let mut extra = 0;
        let (entries, pages) = server.history_pages(scope, |page| {
            // Between pages: new resources, and an update of an existing one.
            extra += 1;
            server.create_id(&patient(1000 + extra));
            server.create_id(&observation(1000 + extra));
            if page == 2 {
                let mut body = patient(0);
                body["id"] = json!(early);
                let reply = server.put(&format!("Patient/{early}"), &body);
                assert_eq!(reply.status, 200, "{}", reply.text());
            }
        });
        assert!(pages > 3, "{scope}: several pages expected, got {pages}");
        let keys: Vec<String> = entries.iter().map(key).collect();
        let unique: BTreeSet<String> = keys.iter().cloned().collect();
        assert_eq!(unique.len(), keys.len(), "{scope}: duplicates: {keys:?}");
        assert_eq!(
            unique, expected,
            "{scope}: exactly the versions present at the start"
        );
    }
}

#[test]
fn bad_history_parameters_are_400() {
    let server = Server::start();
    server.create_id(&patient(1));
    for query in [
        "_history?_since=yesterday",
        "_history?_since=2024-13-45T00:00:00Z",
        "Patient/_history?_since=not-a-date",
        "_history?_at=soon",
        "_history?_count=many",
        "_history?_count=-1",
    ] {
        let reply = server.get(query);
        reply.expect_error(400);
    }
    let reply = server.get("_history?_since=yesterday");
    reply.expect_expression("_since");
}
