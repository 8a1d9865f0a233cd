//! The invariants of the definitions (`constraint.expression`, evaluated with FHIRPath) over
//! HTTP: a write that breaks one is refused with 422 and an OperationOutcome naming the key
//! and the element, never the value; nothing is stored; the same resource fixed is accepted.

mod common;

use common::Server;
use serde_json::{Value, json};

/// Asserts a 422 whose outcome has an `invariant` error for `key` at `expression`, and that
/// the outcome does not echo `secret`.
#[track_caller]
fn expect_invariant(reply: &common::Reply, key: &str, expression: &str, secret: &str) {
    let outcome = reply.expect_error(422);
    let issues = outcome["issue"].as_array().expect("issues");
    assert!(
        issues.iter().any(|i| i["severity"] == "error"
            && i["code"] == "invariant"
            && i["expression"][0] == expression
            && i["diagnostics"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("{key}:")))),
        "no {key} error at {expression}: {outcome}"
    );
    assert!(!reply.text().contains(secret), "the value leaks: {outcome}");
}

fn observation(id: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}})
}

#[test]
fn patient_contact_pat_1() {
    let server = Server::start();
    let mut p = json!({"resourceType": "Patient", "id": "inv-p1",
        "contact": [{"gender": "female", "relationship": [{"text": "SECRET-REL"}]}]});
    let reply = server.put("Patient/inv-p1", &p);
    expect_invariant(&reply, "pat-1", "Patient.contact[0]", "SECRET-REL");
    server.get("Patient/inv-p1").expect(404);
    // POST is validated the same way.
    let reply = server.post("Patient", &p);
    expect_invariant(&reply, "pat-1", "Patient.contact[0]", "SECRET-REL");
    p["contact"][0]["telecom"] = json!([{"system": "phone", "value": "555"}]);
    server.put("Patient/inv-p1", &p).expect(201);
}

#[test]
fn observation_obs_6_and_period_per_1() {
    let server = Server::start();
    let mut o = observation("inv-o1");
    o["valueString"] = json!("SECRET-VALUE");
    o["dataAbsentReason"] = json!({"text": "unknown"});
    let reply = server.put("Observation/inv-o1", &o);
    expect_invariant(&reply, "obs-6", "Observation", "SECRET-VALUE");

    let mut o = observation("inv-o2");
    o["effectivePeriod"] = json!({"start": "2021-03-01T10:00:00Z", "end": "2021-02-01T10:00:00Z"});
    let reply = server.put("Observation/inv-o2", &o);
    expect_invariant(
        &reply,
        "per-1",
        "Observation.effectivePeriod",
        "2021-03-01T10:00:00Z",
    );
    o["effectivePeriod"]["end"] = json!("2021-04-01T10:00:00Z");
    server.put("Observation/inv-o2", &o).expect(201);
}

#[test]
fn bundle_and_reference_invariants() {
    let server = Server::start();
    // bdl-1 on a Bundle resource stored as such.
    let b = json!({"resourceType": "Bundle", "id": "inv-b1", "type": "collection", "total": 1});
    let reply = server.put("Bundle/inv-b1", &b);
    expect_invariant(&reply, "bdl-1", "Bundle", "inv-b1-secret");
    // Invariants of the resources inside a stored Bundle, located inside it.
    let b = json!({"resourceType": "Bundle", "id": "inv-b2", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:4b5e7b5a-1c0f-4b43-9f6a-5a4a2f0f4a10",
         "resource": {"resourceType": "Patient", "contact": [{"gender": "male"}]}}]});
    let reply = server.put("Bundle/inv-b2", &b);
    expect_invariant(
        &reply,
        "pat-1",
        "Bundle.entry[0].resource.contact[0]",
        "4b5e7b5a",
    );
    // ref-1: a local reference to no contained resource.
    let mut o = observation("inv-o3");
    o["subject"] = json!({"reference": "#SECRET-ID"});
    let reply = server.put("Observation/inv-o3", &o);
    expect_invariant(&reply, "ref-1", "Observation.subject", "SECRET-ID");
}

#[test]
fn transaction_entries_and_validate_operation() {
    let server = Server::start();
    // A transaction with one invalid entry is refused as a whole.
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0e0b2c4a-1111-4c55-9a9a-000000000001",
         "resource": {"resourceType": "Patient", "id": "inv-t1", "active": true},
         "request": {"method": "PUT", "url": "Patient/inv-t1"}},
        {"fullUrl": "urn:uuid:0e0b2c4a-1111-4c55-9a9a-000000000002",
         "resource": {"resourceType": "Patient", "id": "inv-t2", "contact": [{"gender": "male"}]},
         "request": {"method": "PUT", "url": "Patient/inv-t2"}}
    ]});
    let reply = server.post("", &tx);
    assert!(
        reply.status == 400 || reply.status == 422,
        "{}: {}",
        reply.status,
        reply.text()
    );
    assert!(reply.text().contains("pat-1"), "{}", reply.text());
    server.get("Patient/inv-t1").expect(404);

    // $validate reports the invariant without storing anything.
    let p = json!({"resourceType": "Patient", "contact": [{"gender": "male"}]});
    let reply = server.post("Patient/$validate", &p);
    assert!(reply.text().contains("pat-1"), "{}", reply.text());
}
