//! Batch and transaction Bundles (FHIR R4 http.html#transaction): `urn:uuid:` resolution
//! everywhere a reference can hide, processing order, all-or-nothing on any failure, entry
//! by entry for batches, PATCH entries, and the errors of a badly formed Bundle.

mod common;

use common::Server;
use serde_json::{Value, json};

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

fn batch(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "batch", "entry": entries})
}

fn post(full_url: Option<&str>, resource: Value) -> Value {
    let rt = resource["resourceType"].as_str().expect("type").to_owned();
    let mut e = json!({"resource": resource, "request": {"method": "POST", "url": rt}});
    if let Some(u) = full_url {
        e["fullUrl"] = json!(u);
    }
    e
}

fn put(resource: Value) -> Value {
    let url = format!(
        "{}/{}",
        resource["resourceType"].as_str().expect("type"),
        resource["id"].as_str().expect("id")
    );
    json!({"resource": resource, "request": {"method": "PUT", "url": url}})
}

/// A JSON number kept exactly as written (`json!(72.50)` would be the float 72.5).
fn decimal(text: &str) -> Value {
    serde_json::from_str(text).expect("a JSON number")
}

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family}], "gender": "female"})
}

/// The state a failed transaction must not change: the whole system history.
fn snapshot(server: &Server) -> Vec<Value> {
    server.history_all("_history").0
}

/// Status code of a response entry (`"201 Created"` → 201).
#[track_caller]
fn status(entry: &Value) -> u16 {
    entry["response"]["status"]
        .as_str()
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no response.status in {entry}"))
}

/// `Type/id` from a response location `Type/id/_history/n` (relative or absolute).
#[track_caller]
fn type_and_id(entry: &Value) -> String {
    let location = entry["response"]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("no response.location in {entry}"));
    let parts: Vec<&str> = location.split('/').collect();
    let n = parts.len();
    assert!(
        n >= 4 && parts[n - 2] == "_history",
        "location must be Type/id/_history/vid: {location}"
    );
    format!("{}/{}", parts[n - 4], parts[n - 3])
}

#[test]
fn transaction_resolves_urn_uuid_references_everywhere() {
    let server = Server::start();
    let p = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a";
    let pr = "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059";
    let enc = "urn:uuid:2b1e8c40-9f6a-4d4e-8c1c-0f7b6f0d2a11";
    let observation = json!({
        "resourceType": "Observation",
        "contained": [{
            "resourceType": "Specimen",
            "id": "spec1",
            "subject": {"reference": p}
        }],
        "extension": [{
            "url": "http://example.org/fhir/StructureDefinition/recorded-by",
            "valueReference": {"reference": pr}
        }],
        "status": "final",
        "code": {"text": "weight"},
        "subject": {"reference": p, "display": "the patient"},
        "encounter": {"reference": enc},
        "performer": [{"reference": pr}, {"reference": "Practitioner/external-1"}],
        "specimen": {"reference": "#spec1"},
        "valueQuantity": {"value": decimal("72.50"), "unit": "kg"}
    });
    let encounter = json!({
        "resourceType": "Encounter",
        "id": "enc-fixed",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": p}
    });
    let mut encounter_entry = put(encounter);
    encounter_entry["fullUrl"] = json!(enc);
    let bundle = transaction(vec![
        post(None, observation),
        post(Some(p), patient("Resolved")),
        encounter_entry,
        post(
            Some(pr),
            json!({"resourceType": "Practitioner", "name": [{"family": "Who"}]}),
        ),
    ]);
    let reply = server.post("", &bundle);
    reply.expect(200);
    let response = reply.json();
    assert_eq!(response["resourceType"], "Bundle");
    assert_eq!(response["type"], "transaction-response");
    let entries = response["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 4, "one response per entry");
    let statuses: Vec<u16> = entries.iter().map(status).collect();
    assert_eq!(statuses, [201, 201, 201, 201], "{response}");
    let observation_ref = type_and_id(&entries[0]);
    let patient_ref = type_and_id(&entries[1]);
    let encounter_ref = type_and_id(&entries[2]);
    let practitioner_ref = type_and_id(&entries[3]);
    assert!(observation_ref.starts_with("Observation/"));
    assert!(patient_ref.starts_with("Patient/"));
    assert_eq!(encounter_ref, "Encounter/enc-fixed");
    assert!(practitioner_ref.starts_with("Practitioner/"));
    for e in entries {
        assert_eq!(e["response"]["etag"], "W/\"1\"", "{e}");
    }

    let stored = server.get(&observation_ref);
    stored.expect(200);
    assert!(
        !stored.text().contains("urn:uuid"),
        "no placeholder may be stored: {}",
        stored.text()
    );
    let o = stored.json();
    assert_eq!(o["subject"]["reference"], patient_ref.as_str());
    assert_eq!(o["subject"]["display"], "the patient");
    assert_eq!(o["encounter"]["reference"], encounter_ref.as_str());
    assert_eq!(o["performer"][0]["reference"], practitioner_ref.as_str());
    assert_eq!(o["performer"][1]["reference"], "Practitioner/external-1");
    assert_eq!(
        o["contained"][0]["subject"]["reference"],
        patient_ref.as_str()
    );
    assert_eq!(
        o["extension"][0]["valueReference"]["reference"],
        practitioner_ref.as_str()
    );
    assert_eq!(o["specimen"]["reference"], "#spec1");
    assert!(
        stored.text().contains(r#""value":72.50"#),
        "decimals kept in transactions: {}",
        stored.text()
    );
    let e = server.get(&encounter_ref).json();
    assert_eq!(e["subject"]["reference"], patient_ref.as_str());
    assert_eq!(
        server.get(&patient_ref).json()["name"][0]["family"],
        "Resolved"
    );
}

#[test]
fn transaction_processes_in_spec_order_and_answers_in_request_order() {
    let server = Server::start();
    let x = server.create_id(&patient("ToDelete"));
    let y = server.create_id(&patient("ToUpdate"));
    let mut y_body = patient("Updated");
    y_body["id"] = json!(y);
    let bundle = transaction(vec![
        // A read listed first is still answered after the writes.
        json!({"request": {"method": "GET", "url": format!("Patient/{y}")}}),
        put(y_body),
        post(None, patient("New")),
        json!({"request": {"method": "DELETE", "url": format!("Patient/{x}")}}),
    ]);
    let reply = server.post("", &bundle);
    reply.expect(200);
    let response = reply.json();
    let entries = response["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 4);
    let statuses: Vec<u16> = entries.iter().map(status).collect();
    assert_eq!(statuses[0], 200, "GET: {response}");
    assert_eq!(statuses[1], 200, "PUT of an existing resource: {response}");
    assert_eq!(statuses[2], 201, "POST: {response}");
    assert!(
        statuses[3] == 200 || statuses[3] == 204,
        "DELETE: {response}"
    );
    assert_eq!(
        entries[0]["resource"]["name"][0]["family"], "Updated",
        "GETs run after the writes: {response}"
    );
    assert_eq!(entries[0]["resource"]["meta"]["versionId"], "2");
    assert_eq!(type_and_id(&entries[1]), format!("Patient/{y}"));
    assert_eq!(entries[1]["response"]["etag"], "W/\"2\"");
    server.get(&format!("Patient/{x}")).expect_error(410);
    let new_id = type_and_id(&entries[2]);
    assert_eq!(server.get(&new_id).json()["name"][0]["family"], "New");

    // All writes of one transaction share one instant? Not required; but all of them are
    // in the history with their methods.
    let (history, _) = server.history_all("_history");
    let methods: Vec<&str> = history
        .iter()
        .take(3)
        .filter_map(|e| e["request"]["method"].as_str())
        .collect();
    let mut sorted = methods.clone();
    sorted.sort();
    assert_eq!(sorted, ["DELETE", "POST", "PUT"], "{history:?}");
}

#[test]
fn a_transaction_with_an_invalid_third_entry_writes_nothing() {
    let server = Server::start();
    let existing = server.create_id(&patient("Before"));
    let before = snapshot(&server);
    let before_read = server.get(&format!("Patient/{existing}")).body;
    let mut update = patient("After");
    update["id"] = json!(existing);
    let mut invalid = patient("Invalid");
    invalid["gender"] = json!("robot");
    let bundle = transaction(vec![
        post(
            Some("urn:uuid:a0000000-0000-4000-8000-000000000001"),
            patient("First"),
        ),
        put(update),
        post(None, invalid),
        post(None, patient("Fourth")),
    ]);
    let reply = server.post("", &bundle);
    assert!(
        reply.status == 400 || reply.status == 422,
        "an invalid entry fails the transaction: {} {}",
        reply.status,
        reply.text()
    );
    reply.expect_error(reply.status);
    let expressions = reply.issue_expressions();
    assert!(
        expressions
            .iter()
            .any(|e| e == "Bundle.entry[2].resource.gender"),
        "the outcome points at Bundle.entry[2].resource.gender: {expressions:?}"
    );
    assert_eq!(snapshot(&server), before, "system history unchanged");
    assert_eq!(
        server.get(&format!("Patient/{existing}")).body,
        before_read,
        "the updated resource is unchanged"
    );
}

#[test]
fn an_if_match_conflict_fails_the_whole_transaction() {
    let server = Server::start();
    let existing = server.create_id(&patient("Current"));
    let before = snapshot(&server);
    let mut update = patient("Stale");
    update["id"] = json!(existing);
    let mut conflicting = put(update);
    conflicting["request"]["ifMatch"] = json!("W/\"5\"");
    let bundle = transaction(vec![post(None, patient("Would be new")), conflicting]);
    let reply = server.post("", &bundle);
    reply.expect_error(412);
    assert!(
        reply
            .issue_expressions()
            .iter()
            .any(|e| e.starts_with("Bundle.entry[1]")),
        "the outcome points at the conflicting entry: {}",
        reply.text()
    );
    assert_eq!(snapshot(&server), before, "nothing written");

    // With the right version the same transaction succeeds.
    let mut update = patient("Fresh");
    update["id"] = json!(existing);
    let mut matching = put(update);
    matching["request"]["ifMatch"] = json!("W/\"1\"");
    server
        .post("", &transaction(vec![post(None, patient("New")), matching]))
        .expect(200);
    assert_eq!(
        server.get(&format!("Patient/{existing}")).json()["name"][0]["family"],
        "Fresh"
    );
}

#[test]
fn a_dangling_urn_uuid_reference_is_400() {
    let server = Server::start();
    let observation = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "urn:uuid:99999999-0000-4000-8000-000000000000"}
    });
    let bundle = transaction(vec![post(None, patient("Alone")), post(None, observation)]);
    let reply = server.post("", &bundle);
    reply.expect_error(400);
    reply.expect_expression("Bundle.entry[1]");
    assert!(snapshot(&server).is_empty(), "nothing written");
}

#[test]
fn duplicate_targets_and_duplicate_full_urls_are_rejected() {
    let server = Server::start();
    let mut a = patient("A");
    a["id"] = json!("same");
    let mut b = patient("B");
    b["id"] = json!("same");
    server
        .post("", &transaction(vec![put(a), put(b)]))
        .expect_error(400);
    let u = "urn:uuid:b0000000-0000-4000-8000-000000000001";
    server
        .post(
            "",
            &transaction(vec![
                post(Some(u), patient("A")),
                post(Some(u), patient("B")),
            ]),
        )
        .expect_error(400);
    assert!(snapshot(&server).is_empty(), "nothing written");
}

#[test]
fn batch_entries_succeed_or_fail_one_by_one() {
    let server = Server::start();
    let mut invalid = patient("Invalid");
    invalid["birthDate"] = json!("yesterday");
    let mut by_put = patient("ByPut");
    by_put["id"] = json!("batch-put");
    let bundle = batch(vec![
        post(None, patient("Valid")),
        post(None, invalid),
        json!({"request": {"method": "GET", "url": "Patient/not-there"}}),
        put(by_put),
        json!({"request": {"method": "GET", "url": "Nonsense/1"}}),
    ]);
    let reply = server.post("", &bundle);
    reply.expect(200);
    let response = reply.json();
    assert_eq!(response["type"], "batch-response");
    let entries = response["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 5, "one response entry per request entry");
    let statuses: Vec<u16> = entries.iter().map(status).collect();
    assert_eq!(statuses, [201, 422, 404, 201, 404], "{response}");
    for i in [1, 2, 4] {
        assert_eq!(
            entries[i]["response"]["outcome"]["resourceType"], "OperationOutcome",
            "a failed entry carries an outcome: {}",
            entries[i]
        );
    }
    assert_eq!(
        entries[1]["response"]["outcome"]["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.birthDate",
        "the outcome names the element: {}",
        entries[1]
    );
    let created = type_and_id(&entries[0]);
    assert_eq!(server.get(&created).json()["name"][0]["family"], "Valid");
    server.get("Patient/batch-put").expect(200);
    let (history, _) = server.history_all("_history");
    assert_eq!(history.len(), 2, "only the two valid writes: {history:?}");
}

/// Standard base64 (RFC 4648), enough for a test.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn patch_entries_travel_as_binary_json_patch() {
    assert_eq!(base64(b"hello!?"), "aGVsbG8hPw==");
    let server = Server::start();
    let id = server.create_id(&patient("Patchable"));
    let patch = json!([
        {"op": "replace", "path": "/gender", "value": "male"},
        {"op": "add", "path": "/birthDate", "value": "1960-06-06"}
    ]);
    let binary = json!({
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64(&serde_json::to_vec(&patch).expect("json"))
    });
    let bundle = transaction(vec![
        json!({"resource": binary, "request": {"method": "PATCH", "url": format!("Patient/{id}")}}),
    ]);
    let reply = server.post("", &bundle);
    reply.expect(200);
    let response = reply.json();
    assert_eq!(status(&response["entry"][0]), 200, "{response}");
    let v = server.get(&format!("Patient/{id}")).json();
    assert_eq!(v["gender"], "male");
    assert_eq!(v["birthDate"], "1960-06-06");
    assert_eq!(v["meta"]["versionId"], "2");
    let (history, _) = server.history_all(&format!("Patient/{id}/_history"));
    assert_eq!(history[0]["request"]["method"], "PATCH");

    // A patch entry that yields an invalid resource fails the transaction.
    let bad = json!([{"op": "replace", "path": "/gender", "value": "robot"}]);
    let binary = json!({
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64(&serde_json::to_vec(&bad).expect("json"))
    });
    let before = snapshot(&server);
    let reply = server.post(
        "",
        &transaction(vec![
            post(None, patient("Other")),
            json!({"resource": binary, "request": {"method": "PATCH", "url": format!("Patient/{id}")}}),
        ]),
    );
    reply.expect_error(422);
    assert_eq!(snapshot(&server), before, "nothing written");
}

#[test]
fn only_batch_and_transaction_bundles_are_accepted_at_the_base() {
    let server = Server::start();
    for kind in [
        "collection",
        "document",
        "history",
        "searchset",
        "message",
        "nonsense",
    ] {
        let reply = server.post(
            "",
            &json!({"resourceType": "Bundle", "type": kind, "entry": [post(None, patient("X"))]}),
        );
        reply.expect_error(400);
        reply.expect_expression("Bundle.type");
    }
    server
        .post("", &json!({"resourceType": "Bundle", "entry": []}))
        .expect_error(400);
    server.post("", &patient("NotABundle")).expect_error(400);
    server
        .send_raw("POST", "", "application/fhir+json", b"{\"resourceType\":")
        .expect_error(400);
    // Entry-level structure errors.
    server
        .post(
            "",
            &transaction(vec![json!({"resource": patient("NoRequest")})]),
        )
        .expect_error(400);
    server
        .post(
            "",
            &transaction(vec![
                json!({"resource": patient("X"), "request": {"method": "FETCH", "url": "Patient"}}),
            ]),
        )
        .expect_error(400);
    // The resource must be of the type the entry's URL names; the PUT id must match.
    let reply = server.post(
        "",
        &transaction(vec![json!({
            "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
            "request": {"method": "POST", "url": "Patient"}
        })]),
    );
    reply.expect_error(400);
    reply.expect_expression("Bundle.entry[0]");
    let mut other_id = patient("OtherId");
    other_id["id"] = json!("b");
    server
        .post(
            "",
            &transaction(vec![
                json!({"resource": other_id, "request": {"method": "PUT", "url": "Patient/a"}}),
            ]),
        )
        .expect_error(400);
    server
        .post(
            "",
            &transaction(vec![
                json!({"resource": patient("X"), "request": {"method": "POST", "url": "Nonsense"}}),
            ]),
        )
        .expect_error(404);
    assert!(snapshot(&server).is_empty(), "nothing written");
    // An empty transaction is fine.
    let empty = server.post("", &transaction(vec![]));
    empty.expect(200);
    assert_eq!(empty.json()["type"], "transaction-response");
}

#[test]
fn prefer_minimal_leaves_resources_out_of_the_response() {
    let server = Server::start();
    let bundle = transaction(vec![post(None, patient("Min"))]);
    let bytes = serde_json::to_vec(&bundle).expect("json");
    let reply = server.request(
        "POST",
        "",
        &[
            ("content-type", "application/fhir+json"),
            ("prefer", "return=minimal"),
        ],
        Some(&bytes),
    );
    reply.expect(200);
    let entry = &reply.json()["entry"][0];
    assert!(entry.get("resource").is_none(), "minimal: {entry}");
    assert_eq!(status(entry), 201);
    let full = server.post("", &bundle);
    let entry = &full.json()["entry"][0];
    assert_eq!(
        entry["resource"]["resourceType"], "Patient",
        "representation: {entry}"
    );
}

#[test]
fn absolute_full_urls_are_resolved_like_placeholders() {
    let server = Server::start();
    let mut with_id = patient("Absolute");
    with_id["id"] = json!("abc");
    let observation = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "http://example.org/fhir/Patient/abc"},
        "focus": [{"reference": "Patient/abc"}]
    });
    let reply = server.post(
        "",
        &transaction(vec![
            post(Some("http://example.org/fhir/Patient/abc"), with_id),
            post(None, observation),
        ]),
    );
    reply.expect(200);
    let response = reply.json();
    let patient_ref = type_and_id(&response["entry"][0]);
    assert_ne!(
        patient_ref, "Patient/abc",
        "a POST ignores the id in the body"
    );
    let o = server.get(&type_and_id(&response["entry"][1])).json();
    assert_eq!(
        o["subject"]["reference"],
        patient_ref.as_str(),
        "a reference to the entry's absolute fullUrl is rewritten"
    );
    assert_eq!(
        o["focus"][0]["reference"], "Patient/abc",
        "a relative reference of an entry without fullUrl resolves against the server, unchanged"
    );
}

#[test]
fn absolute_request_urls_on_this_server_are_accepted() {
    let server = Server::start();
    let mut body = patient("Absolute");
    body["id"] = json!("abs");
    let bundle = transaction(vec![
        json!({"resource": body, "request": {"method": "PUT", "url": format!("{}/Patient/abs", server.base)}}),
        json!({"request": {"method": "GET", "url": format!("{}/Patient/abs", server.base)}}),
    ]);
    let reply = server.post("", &bundle);
    reply.expect(200);
    let response = reply.json();
    assert_eq!(status(&response["entry"][0]), 201, "{response}");
    assert_eq!(status(&response["entry"][1]), 200, "{response}");
    assert_eq!(response["entry"][1]["resource"]["id"], "abs");
    server.get("Patient/abs").expect(200);
}

/// R4 http.html#trules: "Servers SHALL replace all matching links in the bundle, whether
/// they are found in the resource ids, resource references, elements of type uri, url, oid,
/// uuid, and <a href=""> & <img src=""> in the narrative."
#[test]
fn placeholders_in_uri_elements_and_narrative_are_rewritten() {
    let server = Server::start();
    let p = "urn:uuid:2b1e8c40-9f6a-4d4e-8c1c-0f7b6f0d2a11";
    let other = json!({
        "resourceType": "Basic",
        "code": {"text": "x"},
        "text": {
            "status": "generated",
            "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"{p}\">patient</a></div>")
        },
        "extension": [{"url": "http://example.org/link", "valueUri": p}]
    });
    let reply = server.post(
        "",
        &transaction(vec![post(Some(p), patient("Linked")), post(None, other)]),
    );
    reply.expect(200);
    let response = reply.json();
    let stored = server.get(&type_and_id(&response["entry"][1]));
    assert!(
        !stored.text().contains(p),
        "no placeholder may remain: {}",
        stored.text()
    );
}
