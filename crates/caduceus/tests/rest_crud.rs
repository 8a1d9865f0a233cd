//! The instance and type level interactions of FHIR R4 REST (http.html) through the real
//! binary: create, read, vread, update (and update-as-create), delete, conditional
//! `If-Match` / `If-None-Match`, JSON Patch, `Prefer: return=` and `$validate`.
//!
//! Everything goes through HTTP, so this suite holds for any store behind the server.

mod common;

use common::{Reply, Server};
use serde_json::{Value, json};

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "active": true,
        "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
        "gender": "male",
        "birthDate": "1974-12-25"
    })
}

#[track_caller]
fn version_of(reply: &Reply) -> String {
    reply.json()["meta"]["versionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no meta.versionId in {}", reply.text()))
        .to_owned()
}

/// `Mon, 23 Nov 2026 11:16:09 GMT` → `2026-11-23T11:16:09`.
#[track_caller]
fn http_date_to_instant(date: &str) -> String {
    let parts: Vec<&str> = date.split(' ').collect();
    assert_eq!(parts.len(), 6, "HTTP date: {date}");
    assert_eq!(parts[5], "GMT", "HTTP date: {date}");
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months
        .iter()
        .position(|m| *m == parts[2])
        .unwrap_or_else(|| panic!("month in {date}"))
        + 1;
    format!("{}-{month:02}-{:0>2}T{}", parts[3], parts[1], parts[4])
}

#[track_caller]
fn assert_no_errors(reply: &Reply) {
    let v = reply.json();
    assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
    assert!(
        v["issue"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|i| i["severity"] != "error" && i["severity"] != "fatal"),
        "a valid resource has no error issue: {v}"
    );
}

/// Instance history entries of one resource (newest first).
fn instance_history(server: &Server, path: &str) -> Vec<Value> {
    server.history_all(&format!("{path}/_history")).0
}

#[test]
fn create_assigns_id_version_and_headers_ignoring_client_values() {
    let server = Server::start();
    let mut body = patient();
    body["id"] = json!("client-chosen-id");
    body["meta"] = json!({
        "versionId": "7",
        "lastUpdated": "2001-02-03T04:05:06Z",
        "tag": [{"system": "http://example.org/tags", "code": "kept"}]
    });
    let reply = server.post("Patient", &body);
    reply.expect(201);
    let v = reply.json();
    let id = v["id"].as_str().expect("server id").to_owned();
    assert_ne!(
        id, "client-chosen-id",
        "a create must ignore the id in the body"
    );
    assert!(
        !id.is_empty() && id.len() <= 64,
        "server id must be a FHIR id: {id}"
    );
    assert_eq!(v["meta"]["versionId"], "1", "versionId of a create");
    let last_updated = v["meta"]["lastUpdated"].as_str().expect("lastUpdated");
    assert_ne!(
        last_updated, "2001-02-03T04:05:06Z",
        "the server owns meta.lastUpdated"
    );
    assert!(
        last_updated.len() >= 20 && last_updated.contains('T'),
        "lastUpdated must be an instant: {last_updated}"
    );
    assert_eq!(
        v["meta"]["tag"][0]["code"], "kept",
        "other meta elements are kept"
    );
    assert_eq!(
        reply.header("location"),
        Some(format!("{}/Patient/{id}/_history/1", server.base).as_str()),
        "Location of a create"
    );
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    let last_modified = reply.header("last-modified").expect("Last-Modified");
    assert!(
        last_modified.ends_with(" GMT") && last_modified.contains(','),
        "Last-Modified must be an HTTP date: {last_modified}"
    );
    assert!(
        last_updated.starts_with(&http_date_to_instant(last_modified)),
        "Last-Modified {last_modified} must be meta.lastUpdated {last_updated} to the second"
    );
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/fhir+json")),
        "content type {:?}",
        reply.header("content-type")
    );
    // Nothing exists at the id the client proposed.
    server.get("Patient/client-chosen-id").expect_error(404);
    // The read gives the same version.
    let read = server.get(&format!("Patient/{id}"));
    read.expect(200);
    assert_eq!(
        read.body, reply.body,
        "read must return what create returned"
    );
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    assert_eq!(read.header("last-modified"), Some(last_modified));
}

/// The body a read returns is the stored form: `resourceType`, `id`, `meta` first, then every
/// other element in the client's order, with numbers exactly as written.
#[test]
fn read_returns_the_stored_bytes_with_order_and_decimals_kept() {
    let server = Server::start();
    // Element order deliberately not the order of the specification; decimals with
    // trailing zeros that a float round trip would lose.
    let rest = r#""valueQuantity":{"value":200.00,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"},"status":"final","code":{"text":"dose"},"referenceRange":[{"low":{"value":0.10},"high":{"value":1000.000}}],"subject":{"reference":"Patient/x"}"#;
    let sent = format!(r#"{{"resourceType":"Observation",{rest}}}"#);
    let reply = server.send_raw(
        "POST",
        "Observation",
        "application/fhir+json",
        sent.as_bytes(),
    );
    reply.expect(201);
    let created = reply.json();
    let id = created["id"].as_str().expect("id");
    let last_updated = created["meta"]["lastUpdated"]
        .as_str()
        .expect("lastUpdated");
    let expected = format!(
        r#"{{"resourceType":"Observation","id":"{id}","meta":{{"versionId":"1","lastUpdated":"{last_updated}"}},{rest}}}"#
    );
    assert_eq!(reply.text(), expected, "create response body");
    let read = server.get(&format!("Observation/{id}"));
    read.expect(200);
    assert_eq!(read.text(), expected, "read must return the stored bytes");
    let vread = server.get(&format!("Observation/{id}/_history/1"));
    vread.expect(200);
    assert_eq!(vread.text(), expected, "vread must return the stored bytes");
    // A history bundle splices the same bytes in.
    let history = server.get(&format!("Observation/{id}/_history"));
    history.expect(200);
    assert!(
        history.text().contains(&expected),
        "history must carry the stored bytes: {}",
        history.text()
    );
}

/// FHIR decimals may use an exponent (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
/// Value and precision are kept; the test below checks the exact spelling too.
#[test]
fn exponent_decimals_keep_value_and_precision() {
    let server = Server::start();
    let sent = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50e3}}"#;
    let reply = server.send_raw(
        "POST",
        "Observation",
        "application/fhir+json",
        sent.as_bytes(),
    );
    reply.expect(201);
    let id = reply.json()["id"].as_str().expect("id").to_owned();
    let text = server.get(&format!("Observation/{id}")).text();
    let number = text
        .split(r#""value":"#)
        .nth(1)
        .and_then(|s| s.split('}').next())
        .expect("value in stored body");
    assert!(
        number.starts_with("1.50e") || number.starts_with("1.50E"),
        "the mantissa and its precision must be kept: {number}"
    );
    let value: f64 = number.parse().expect("a number");
    assert_eq!(value, 1500.0, "value of {number}");
}

#[test]
fn exponent_decimals_are_kept_byte_for_byte() {
    let server = Server::start();
    let sent = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50e3}}"#;
    let reply = server.send_raw(
        "POST",
        "Observation",
        "application/fhir+json",
        sent.as_bytes(),
    );
    reply.expect(201);
    assert!(
        reply.text().contains(r#""value":1.50e3"#),
        "1.50e3 must be stored as sent: {}",
        reply.text()
    );
}

#[test]
fn vread_returns_each_version() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let mut v2 = patient();
    v2["id"] = json!(id);
    v2["gender"] = json!("other");
    server.put(&format!("Patient/{id}"), &v2).expect(200);

    let r1 = server.get(&format!("Patient/{id}/_history/1"));
    r1.expect(200);
    assert_eq!(r1.json()["gender"], "male");
    assert_eq!(r1.json()["meta"]["versionId"], "1");
    assert_eq!(r1.header("etag"), Some("W/\"1\""));
    let r2 = server.get(&format!("Patient/{id}/_history/2"));
    r2.expect(200);
    assert_eq!(r2.json()["gender"], "other");
    assert_eq!(r2.header("etag"), Some("W/\"2\""));
    server
        .get(&format!("Patient/{id}/_history/3"))
        .expect_error(404);
    server
        .get(&format!("Patient/{id}/_history/abc"))
        .expect_error(404);
    server.get("Patient/never-was/_history/1").expect_error(404);
}

#[test]
fn update_changes_the_version_and_update_as_create_answers_201() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let mut body = patient();
    body["id"] = json!(id);
    body["gender"] = json!("female");
    body["meta"] = json!({"versionId": "99", "lastUpdated": "1999-01-01T00:00:00Z"});
    let reply = server.put(&format!("Patient/{id}"), &body);
    reply.expect(200);
    assert_eq!(version_of(&reply), "2", "the server owns meta.versionId");
    assert_ne!(reply.json()["meta"]["lastUpdated"], "1999-01-01T00:00:00Z");
    assert_eq!(reply.json()["gender"], "female");
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
    assert_eq!(
        reply.header("location"),
        Some(format!("{}/Patient/{id}/_history/2", server.base).as_str())
    );
    assert!(reply.header("last-modified").is_some());
    assert_eq!(
        server.get(&format!("Patient/{id}")).json()["gender"],
        "female"
    );

    // Update as create: the client chooses the id.
    let mut fresh = patient();
    fresh["id"] = json!("client-id-1");
    let created = server.put("Patient/client-id-1", &fresh);
    created.expect(201);
    assert_eq!(created.json()["id"], "client-id-1");
    assert_eq!(version_of(&created), "1");
    assert_eq!(
        created.header("location"),
        Some(format!("{}/Patient/client-id-1/_history/1", server.base).as_str())
    );
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    server.get("Patient/client-id-1").expect(200);
}

#[test]
fn delete_then_gone_then_recreate() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let path = format!("Patient/{id}");

    let deleted = server.delete(&path);
    deleted.expect(200);
    let outcome = deleted.json();
    assert_eq!(
        outcome["resourceType"], "OperationOutcome",
        "a 200 delete carries an OperationOutcome: {outcome}"
    );
    assert!(
        outcome["issue"]
            .as_array()
            .is_some_and(|i| i.iter().all(|i| i["severity"] != "error")),
        "a successful delete has no error issue: {outcome}"
    );
    assert_eq!(deleted.header("etag"), Some("W/\"2\""));

    server.get(&path).expect_error(410);
    // Old versions can still be read.
    let old = server.get(&format!("{path}/_history/1"));
    old.expect(200);
    assert_eq!(old.json()["birthDate"], "1974-12-25");
    // The deletion itself is version 2 and has no content.
    server.get(&format!("{path}/_history/2")).expect_error(410);

    // Deleting again writes nothing.
    let again = server.delete(&path);
    assert!(
        again.status == 200 || again.status == 204,
        "delete of a deleted resource: {} {}",
        again.status,
        again.text()
    );
    let history = instance_history(&server, &path);
    assert_eq!(history.len(), 2, "create + delete only: {history:?}");
    assert_eq!(history[0]["request"]["method"], "DELETE");

    // Re-create at the same id: 201 and the next version number.
    let mut body = patient();
    body["id"] = json!(id);
    let recreated = server.put(&path, &body);
    recreated.expect(201);
    assert_eq!(version_of(&recreated), "3");
    assert_eq!(recreated.header("etag"), Some("W/\"3\""));
    server.get(&path).expect(200);
}

#[test]
fn writes_to_a_deleted_resource() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let path = format!("Patient/{id}");
    server.delete(&path).expect(200);
    // PATCH needs a current version to apply to.
    server
        .patch(
            &path,
            &json!([{"op": "add", "path": "/active", "value": false}]),
            &[],
        )
        .expect_error(410);
    // Deleting a deleted resource again writes nothing.
    let (before, _) = server.history_all(&format!("{path}/_history"));
    let again = server.request("DELETE", &path, &[], None);
    assert!(
        again.status == 200 || again.status == 204,
        "{}",
        again.text()
    );
    let (after, _) = server.history_all(&format!("{path}/_history"));
    assert_eq!(before, after, "deleting a deleted resource writes nothing");
}

#[test]
fn delete_with_prefer_minimal_is_204_without_body() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let reply = server.request(
        "DELETE",
        &format!("Patient/{id}"),
        &[("prefer", "return=minimal")],
        None,
    );
    reply.expect(204);
    assert!(reply.body.is_empty(), "204 has no body: {}", reply.text());
    server.get(&format!("Patient/{id}")).expect_error(410);
}

#[test]
fn delete_of_a_missing_resource_succeeds_and_writes_nothing() {
    let server = Server::start();
    server.create_id(&patient());
    let (before, _) = server.history_all("_history");
    let reply = server.delete("Patient/does-not-exist");
    assert!(
        reply.status == 200 || reply.status == 204,
        "delete of a missing resource: {} {}",
        reply.status,
        reply.text()
    );
    let (after, _) = server.history_all("_history");
    assert_eq!(before, after, "a delete of nothing must write nothing");
    server.get("Patient/does-not-exist").expect_error(404);
    let (history, _) = server.history_all("Patient/does-not-exist/_history");
    assert!(
        history.is_empty(),
        "no history for a resource that never existed: {history:?}"
    );
}

#[test]
fn if_match_guards_update_and_delete() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let path = format!("Patient/{id}");
    let mut body = patient();
    body["id"] = json!(id);

    // Right version: accepted.
    let ok = server.send_json_with("PUT", &path, &[("if-match", "W/\"1\"")], &body);
    ok.expect(200);
    assert_eq!(version_of(&ok), "2");

    // Stale version: 412 with an outcome, nothing written.
    body["gender"] = json!("female");
    server
        .send_json_with("PUT", &path, &[("if-match", "W/\"1\"")], &body)
        .expect_error(412);
    let current = server.get(&path);
    assert_eq!(version_of(&current), "2");
    assert_eq!(current.json()["gender"], "male");

    // Malformed tag: 400.
    server
        .send_json_with("PUT", &path, &[("if-match", "not-a-tag")], &body)
        .expect_error(400);
    assert_eq!(version_of(&server.get(&path)), "2");

    // If-Match on a resource that does not exist cannot match: 412, nothing created.
    let mut fresh = patient();
    fresh["id"] = json!("not-yet");
    server
        .send_json_with("PUT", "Patient/not-yet", &[("if-match", "W/\"1\"")], &fresh)
        .expect_error(412);
    server.get("Patient/not-yet").expect_error(404);

    // Delete with a stale tag: 412, resource still there; with the right one: deleted.
    server
        .request("DELETE", &path, &[("if-match", "W/\"1\"")], None)
        .expect_error(412);
    server.get(&path).expect(200);
    let deleted = server.request("DELETE", &path, &[("if-match", "W/\"2\"")], None);
    assert!(
        deleted.status == 200 || deleted.status == 204,
        "delete with the current version: {}",
        deleted.text()
    );
    server.get(&path).expect_error(410);
}

#[test]
fn if_none_match_on_read_answers_304_for_the_current_version() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let path = format!("Patient/{id}");
    let not_modified = server.request("GET", &path, &[("if-none-match", "W/\"1\"")], None);
    not_modified.expect(304);
    assert!(not_modified.body.is_empty(), "304 has no body");
    assert_eq!(not_modified.header("etag"), Some("W/\"1\""));

    let mut body = patient();
    body["id"] = json!(id);
    server.put(&path, &body).expect(200);
    let changed = server.request("GET", &path, &[("if-none-match", "W/\"1\"")], None);
    changed.expect(200);
    assert_eq!(changed.header("etag"), Some("W/\"2\""));
    assert_eq!(version_of(&changed), "2");
}

#[test]
fn json_patch_applies_add_replace_remove_and_test() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let path = format!("Patient/{id}");
    let reply = server.patch(
        &path,
        &json!([
            {"op": "test", "path": "/gender", "value": "male"},
            {"op": "replace", "path": "/gender", "value": "female"},
            {"op": "add", "path": "/name/0/given/-", "value": "Jim"},
            {"op": "remove", "path": "/active"}
        ]),
        &[],
    );
    reply.expect(200);
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
    let v = server.get(&path).json();
    assert_eq!(v["meta"]["versionId"], "2");
    assert_eq!(v["gender"], "female");
    assert_eq!(v["name"][0]["given"], json!(["Peter", "James", "Jim"]));
    assert!(v.get("active").is_none(), "active removed: {v}");
    let history = instance_history(&server, &path);
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["request"]["method"], "PATCH");
    assert_eq!(history[0]["request"]["url"], format!("Patient/{id}"));
}

#[test]
fn json_patch_failures_write_nothing() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let path = format!("Patient/{id}");
    let unchanged = |why: &str| {
        let current = server.get(&path);
        assert_eq!(version_of(&current), "1", "{why}: nothing may be written");
        assert_eq!(current.json()["gender"], "male", "{why}");
    };

    // A failed test operation.
    server
        .patch(
            &path,
            &json!([
                {"op": "test", "path": "/gender", "value": "female"},
                {"op": "replace", "path": "/gender", "value": "other"}
            ]),
            &[],
        )
        .expect_error(422);
    unchanged("failed test op");

    // A patch that yields an invalid resource.
    let invalid = server.patch(
        &path,
        &json!([{"op": "replace", "path": "/gender", "value": "robot"}]),
        &[],
    );
    invalid.expect_error(422);
    invalid.expect_expression("Patient.gender");
    unchanged("invalid result");

    // A patch that adds an unknown element.
    server
        .patch(
            &path,
            &json!([{"op": "add", "path": "/foo", "value": 1}]),
            &[],
        )
        .expect_error(422);
    unchanged("unknown element");

    // A patch that changes the id.
    server
        .patch(
            &path,
            &json!([{"op": "replace", "path": "/id", "value": "other-id"}]),
            &[],
        )
        .expect_error(422);
    unchanged("id change");
    server.get("Patient/other-id").expect_error(404);

    // A path that does not exist.
    server
        .patch(
            &path,
            &json!([{"op": "replace", "path": "/telecom/5/value", "value": "x"}]),
            &[],
        )
        .expect_error(422);
    unchanged("missing path");

    // Not a JSON Patch document.
    server
        .patch(&path, &json!({"op": "replace"}), &[])
        .expect_error(400);
    unchanged("not a patch document");

    // Wrong content type.
    server
        .send_raw(
            "PATCH",
            &path,
            "text/plain",
            br#"[{"op":"remove","path":"/active"}]"#,
        )
        .expect_error(415);
    unchanged("wrong content type");

    // Missing resource.
    server
        .patch(
            "Patient/no-such-patient",
            &json!([{"op": "remove", "path": "/active"}]),
            &[],
        )
        .expect_error(404);
}

#[test]
fn json_patch_honours_prefer_return() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let path = format!("Patient/{id}");
    let patch = json!([{"op": "replace", "path": "/gender", "value": "female"}]);
    let minimal = server.patch(&path, &patch, &[("prefer", "return=minimal")]);
    minimal.expect(200);
    assert!(minimal.body.is_empty(), "minimal: {}", minimal.text());
    assert_eq!(minimal.header("etag"), Some("W/\"2\""));
    let full = server.patch(&path, &patch, &[("prefer", "return=representation")]);
    full.expect(200);
    assert_eq!(full.json()["gender"], "female");
    assert_eq!(full.json()["meta"]["versionId"], "3");
    assert_eq!(full.header("etag"), Some("W/\"3\""));
}

#[test]
fn json_patch_honours_if_match() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let path = format!("Patient/{id}");
    let patch = json!([{"op": "replace", "path": "/gender", "value": "female"}]);
    server
        .patch(&path, &patch, &[("if-match", "W/\"2\"")])
        .expect_error(412);
    assert_eq!(version_of(&server.get(&path)), "1");
    let ok = server.patch(&path, &patch, &[("if-match", "W/\"1\"")]);
    ok.expect(200);
    assert_eq!(version_of(&server.get(&path)), "2");
    server
        .patch(&path, &patch, &[("if-match", "W/\"1\"")])
        .expect_error(412);
}

#[test]
fn prefer_return_controls_the_body_of_create_and_update() {
    let server = Server::start();

    let minimal = server.send_json_with(
        "POST",
        "Patient",
        &[("prefer", "return=minimal")],
        &patient(),
    );
    minimal.expect(201);
    assert!(
        minimal.body.is_empty(),
        "minimal: no body, got {}",
        minimal.text()
    );
    let location = minimal.header("location").expect("Location").to_owned();
    assert_eq!(minimal.header("etag"), Some("W/\"1\""));
    assert!(minimal.header("last-modified").is_some());
    let id = location
        .strip_prefix(&format!("{}/Patient/", server.base))
        .and_then(|rest| rest.strip_suffix("/_history/1"))
        .expect("Location of the form base/Patient/id/_history/1")
        .to_owned();
    server.get(&format!("Patient/{id}")).expect(200);

    let representation = server.send_json_with(
        "POST",
        "Patient",
        &[("prefer", "return=representation")],
        &patient(),
    );
    representation.expect(201);
    assert_eq!(representation.json()["resourceType"], "Patient");
    assert_eq!(representation.json()["meta"]["versionId"], "1");

    let outcome = server.send_json_with(
        "POST",
        "Patient",
        &[("prefer", "return=OperationOutcome")],
        &patient(),
    );
    outcome.expect(201);
    assert_eq!(outcome.json()["resourceType"], "OperationOutcome");
    assert!(outcome.header("location").is_some());

    // The same on update.
    let mut body = patient();
    body["id"] = json!(id);
    let path = format!("Patient/{id}");
    let u1 = server.send_json_with("PUT", &path, &[("prefer", "return=minimal")], &body);
    u1.expect(200);
    assert!(u1.body.is_empty(), "minimal update: {}", u1.text());
    assert_eq!(u1.header("etag"), Some("W/\"2\""));
    let u2 = server.send_json_with(
        "PUT",
        &path,
        &[("prefer", "return=OperationOutcome")],
        &body,
    );
    u2.expect(200);
    assert_eq!(u2.json()["resourceType"], "OperationOutcome");
    let u3 = server.send_json_with("PUT", &path, &[("prefer", "return=representation")], &body);
    u3.expect(200);
    assert_eq!(u3.json()["meta"]["versionId"], "4");
}

#[test]
fn type_level_validate_reports_without_storing() {
    let server = Server::start();
    let valid = server.post("Patient/$validate", &patient());
    valid.expect(200);
    assert_no_errors(&valid);

    let mut bad = patient();
    bad["gender"] = json!("robot");
    bad["birthDate"] = json!("25.12.1974");
    bad["foo"] = json!("bar");
    let invalid = server.post("Patient/$validate", &bad);
    invalid.expect(200);
    let v = invalid.json();
    assert!(
        v["issue"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["severity"] == "error")),
        "an invalid resource has error issues: {v}"
    );
    let expressions = invalid.issue_expressions();
    for wanted in ["Patient.gender", "Patient.birthDate", "Patient.foo"] {
        assert!(
            expressions.iter().any(|e| e == wanted),
            "expected an issue at {wanted}; got {expressions:?}"
        );
    }

    // Parameters wrapper.
    let wrapped = server.post(
        "Patient/$validate",
        &json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": bad}]}),
    );
    wrapped.expect(200);
    assert!(
        wrapped
            .issue_expressions()
            .iter()
            .any(|e| e == "Patient.gender"),
        "Parameters-wrapped resource is validated: {}",
        wrapped.text()
    );

    // Nothing was stored.
    let (history, _) = server.history_all("Patient/_history");
    assert!(history.is_empty(), "$validate must not store: {history:?}");
}

#[test]
fn instance_level_validate() {
    let server = Server::start();
    let id = server.create_id(&patient());
    let mut body = patient();
    body["id"] = json!(id);
    let ok = server.post(&format!("Patient/{id}/$validate"), &body);
    ok.expect(200);
    assert_no_errors(&ok);
    body["birthDate"] = json!("not-a-date");
    let bad = server.post(&format!("Patient/{id}/$validate"), &body);
    bad.expect(200);
    assert!(
        bad.issue_expressions()
            .iter()
            .any(|e| e == "Patient.birthDate"),
        "instance $validate: {}",
        bad.text()
    );
    // A body naming another instance is reported at `id`.
    let mut other = patient();
    other["id"] = json!("someone-else");
    let mismatch = server.post(&format!("Patient/{id}/$validate"), &other);
    mismatch.expect(200);
    assert!(
        mismatch.issue_expressions().iter().any(|e| e == "id"),
        "instance $validate with another id: {}",
        mismatch.text()
    );
    // The stored resource is untouched.
    let current = server.get(&format!("Patient/{id}"));
    assert_eq!(version_of(&current), "1");
    assert_eq!(current.json()["birthDate"], "1974-12-25");
}

/// Runs `n` requests at once, each from its own thread; returns the replies in order.
fn concurrently(server: &Server, n: usize, f: impl Fn(usize) -> Reply + Sync) -> Vec<Reply> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (f, barrier) = (&f, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        let _ = server;
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect()
    })
}

#[test]
fn concurrent_patches_without_if_match_all_apply() {
    let server = Server::start();
    let mut body = patient();
    body["identifier"] = json!([{"system": "http://example.org/c", "value": "start"}]);
    let id = server.create_id(&body);
    let path = format!("Patient/{id}");
    const N: usize = 8;
    let replies = concurrently(&server, N, |i| {
        server.patch(
            &path,
            &json!([{"op": "add", "path": "/identifier/-", "value": {"system": "http://example.org/c", "value": format!("t{i}")}}]),
            &[],
        )
    });
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(
            r.status,
            200,
            "patch {i} without If-Match must not fail on a race: {}",
            r.text()
        );
    }
    let v = server.get(&path).json();
    assert_eq!(v["meta"]["versionId"], (N + 1).to_string());
    let values: std::collections::BTreeSet<String> = v["identifier"]
        .as_array()
        .expect("identifiers")
        .iter()
        .filter_map(|i| i["value"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(values.len(), N + 1, "every patch applied once: {values:?}");
}

#[test]
fn concurrent_updates_get_distinct_versions() {
    let server = Server::start();
    const N: usize = 8;
    // Update-as-create racing on one new id: exactly one creates it.
    let replies = concurrently(&server, N, |i| {
        let mut body = patient();
        body["id"] = json!("raced");
        body["name"][0]["family"] = json!(format!("Racer{i}"));
        server.put("Patient/raced", &body)
    });
    let mut created = 0;
    let mut versions = std::collections::BTreeSet::new();
    for r in &replies {
        assert!(
            r.status == 200 || r.status == 201,
            "a PUT without If-Match must not fail on a race: {} {}",
            r.status,
            r.text()
        );
        if r.status == 201 {
            created += 1;
        }
        versions.insert(version_of(r));
    }
    assert_eq!(created, 1, "exactly one PUT creates the resource");
    let expected: std::collections::BTreeSet<String> = (1..=N).map(|v| v.to_string()).collect();
    assert_eq!(versions, expected, "versions 1..{N}, each once");
    let history = instance_history(&server, "Patient/raced");
    assert_eq!(history.len(), N);
}
