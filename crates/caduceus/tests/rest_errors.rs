//! Every error a client can provoke comes back as an OperationOutcome with the status FHIR
//! R4 gives it (http.html, "Rejecting Updates" and the status codes per interaction), with
//! `issue.expression` pointing at the offending element where there is one. No failed
//! request writes anything.

mod common;

use common::Server;
use serde_json::{Value, json};

fn patient() -> Value {
    json!({"resourceType": "Patient", "gender": "female", "birthDate": "1980-01-01"})
}

/// Asserts that nothing at all was stored.
#[track_caller]
fn assert_nothing_stored(server: &Server) {
    let (history, _) = server.history_all("_history");
    assert!(history.is_empty(), "nothing may be stored: {history:?}");
}

#[test]
fn unknown_resource_type_in_the_url_is_404() {
    let server = Server::start();
    server.get("Nonsense/1").expect_error(404);
    server.get("patient/1").expect_error(404);
    server.get("Nonsense").expect_error(404);
    server.get("Nonsense/_history").expect_error(404);
    server.get("Nonsense/1/_history/1").expect_error(404);
    server
        .post("Nonsense", &json!({"resourceType": "Nonsense"}))
        .expect_error(404);
    server
        .put(
            "Nonsense/1",
            &json!({"resourceType": "Nonsense", "id": "1"}),
        )
        .expect_error(404);
    server.delete("Nonsense/1").expect_error(404);
    // Abstract and data types are not resource types either.
    server
        .post("DomainResource", &json!({"resourceType": "DomainResource"}))
        .expect_error(404);
    server.get("HumanName/1").expect_error(404);
    assert_nothing_stored(&server);
}

#[test]
fn malformed_json_is_400() {
    let server = Server::start();
    for body in [
        &b"{\"resourceType\": \"Patient\", "[..],
        b"not json at all",
        b"",
        b"{\"resourceType\":\"Patient\"}{}",
    ] {
        server
            .send_raw("POST", "Patient", "application/fhir+json", body)
            .expect_error(400);
        server
            .send_raw("PUT", "Patient/x", "application/fhir+json", body)
            .expect_error(400);
    }
    // Valid JSON that is not an object.
    server
        .send_raw("POST", "Patient", "application/fhir+json", b"[1,2]")
        .expect_error(400);
    server
        .send_raw("POST", "Patient", "application/fhir+json", b"\"Patient\"")
        .expect_error(400);
    // A repeated property name (FHIR JSON forbids it; a parser would keep only one).
    let repeated =
        br#"{"resourceType":"Patient","gender":"male","name":[{"family":"A","family":"B"}]}"#;
    server
        .send_raw("POST", "Patient", "application/fhir+json", repeated)
        .expect_error(400);
    // No resourceType.
    server
        .send_raw(
            "POST",
            "Patient",
            "application/fhir+json",
            b"{\"gender\":\"male\"}",
        )
        .expect_error(400);
    assert_nothing_stored(&server);
}

#[test]
fn body_type_must_match_the_url() {
    let server = Server::start();
    let observation =
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    let reply = server.post("Patient", &observation);
    reply.expect_error(400);
    reply.expect_expression("resourceType");
    let mut put = observation.clone();
    put["id"] = json!("o1");
    server.put("Patient/o1", &put).expect_error(400);
    assert_nothing_stored(&server);
}

#[test]
fn put_id_must_match_and_be_present() {
    let server = Server::start();
    let mut body = patient();
    body["id"] = json!("other");
    let mismatch = server.put("Patient/p1", &body);
    mismatch.expect_error(400);
    mismatch.expect_expression("id");
    server.put("Patient/p1", &patient()).expect_error(400);
    body["id"] = json!(17);
    server.put("Patient/p1", &body).expect_error(400);
    assert_nothing_stored(&server);
}

#[test]
fn invalid_resources_are_422_with_expressions() {
    let server = Server::start();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"resourceType": "Patient", "gender": "robot"}),
            "Patient.gender",
        ),
        (
            json!({"resourceType": "Patient", "birthDate": "05/04/1937"}),
            "Patient.birthDate",
        ),
        (
            json!({"resourceType": "Patient", "birthDate": "1937-02-30"}),
            "Patient.birthDate",
        ),
        (
            json!({"resourceType": "Patient", "foo": "bar"}),
            "Patient.foo",
        ),
        // Cardinality: gender is 0..1, so an array is wrong; name is 0..*, so an object is.
        (
            json!({"resourceType": "Patient", "gender": ["male", "female"]}),
            "Patient.gender",
        ),
        (
            json!({"resourceType": "Patient", "name": {"family": "X"}}),
            "Patient.name",
        ),
        // Required element missing (Observation.status is 1..1).
        (
            json!({"resourceType": "Observation", "code": {"text": "x"}}),
            "Observation.status",
        ),
        // Wrong JSON type of a primitive.
        (
            json!({"resourceType": "Patient", "active": "yes"}),
            "Patient.active",
        ),
        // FHIR JSON: no nulls, no empty arrays, objects or strings (json.html, ele-1).
        (
            json!({"resourceType": "Patient", "gender": null}),
            "Patient.gender",
        ),
        (
            json!({"resourceType": "Patient", "name": []}),
            "Patient.name",
        ),
        (
            json!({"resourceType": "Patient", "name": [{}]}),
            "Patient.name[0]",
        ),
        (
            json!({"resourceType": "Patient", "gender": ""}),
            "Patient.gender",
        ),
        // One type of a choice element only.
        (
            json!({"resourceType": "Patient", "multipleBirthBoolean": true, "multipleBirthInteger": 2}),
            "Patient.multipleBirth",
        ),
        // ext-1: an extension has a value or nested extensions.
        (
            json!({"resourceType": "Patient", "extension": [{"url": "http://example.org/x"}]}),
            "Patient.extension[0]",
        ),
        // Nested element.
        (
            json!({"resourceType": "Patient", "name": [{"family": "X", "bogus": 1}]}),
            "Patient.name[0].bogus",
        ),
    ];
    for (body, expression) in cases {
        let rt = body["resourceType"].as_str().expect("type").to_owned();
        let reply = server.post(&rt, &body);
        assert_eq!(
            reply.status,
            422,
            "POST {body}: expected 422, got {} {}",
            reply.status,
            reply.text()
        );
        reply.expect_error(422);
        reply.expect_expression(expression);
        // The same through update-as-create.
        let mut put = body.clone();
        put["id"] = json!("x1");
        let reply = server.put(&format!("{rt}/x1"), &put);
        reply.expect_error(422);
        reply.expect_expression(expression);
    }
    assert_nothing_stored(&server);
}

/// Invariants (FHIRPath constraints) of the base resources: dom-3 (a contained resource is
/// referenced from its container) and txt-1 (narrative holds only basic XHTML, no scripts).
#[test]
fn invariants_of_the_base_resources_are_enforced() {
    let server = Server::start();
    let unreferenced = json!({
        "resourceType": "Patient",
        "contained": [{"resourceType": "Organization", "id": "o1", "name": "Nobody refers to me"}]
    });
    server.post("Patient", &unreferenced).expect_error(422);
    let script = json!({
        "resourceType": "Patient",
        "text": {
            "status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>"
        }
    });
    let reply = server.post("Patient", &script);
    reply.expect_error(422);
    reply.expect_expression("Patient.text.div");
    assert_nothing_stored(&server);
}

#[test]
fn invalid_ids_in_the_url_are_400() {
    let server = Server::start();
    let long = "a".repeat(65);
    let max = "b".repeat(64);
    for id in [long.as_str(), "a_b", "a%20b", "%C3%A9t%C3%A9"] {
        server.get(&format!("Patient/{id}")).expect_error(400);
        let body = json!({"resourceType": "Patient", "id": id});
        server
            .put(&format!("Patient/{id}"), &body)
            .expect_error(400);
        server.delete(&format!("Patient/{id}")).expect_error(400);
        server
            .get(&format!("Patient/{id}/_history"))
            .expect_error(400);
    }
    assert_nothing_stored(&server);
    // 64 characters is still a valid id.
    let body = json!({"resourceType": "Patient", "id": max});
    server.put(&format!("Patient/{max}"), &body).expect(201);
}

#[test]
fn unknown_routes_are_404_and_wrong_methods_405() {
    let server = Server::start();
    for url in [
        server.root_url("nope"),
        server.root_url("fhir/Patient/1/_history/1/extra"),
        server.root_url("fhir/Patient/1/something"),
        server.root_url("health/nope"),
    ] {
        server.request("GET", &url, &[], None).expect_error(404);
    }
    let body = serde_json::to_vec(&patient()).expect("json");
    for (method, path) in [
        ("DELETE", "metadata"),
        ("POST", "metadata"),
        ("PUT", "Patient"),
        ("DELETE", "Patient"),
        ("POST", "Patient/123"),
        ("POST", "Patient/123/_history/1"),
        ("DELETE", "_history"),
        ("GET", "Patient/$validate"),
    ] {
        let reply = server.request(
            method,
            path,
            &[("content-type", "application/fhir+json")],
            Some(&body),
        );
        assert_eq!(
            reply.status,
            405,
            "{method} {path}: {} {}",
            reply.status,
            reply.text()
        );
        reply.expect_error(405);
        assert!(
            reply.header("allow").is_some_and(|a| !a.is_empty()),
            "a 405 names the allowed methods (RFC 9110): {method} {path}"
        );
    }
    assert_nothing_stored(&server);
}

#[test]
fn bodies_over_the_limit_are_413() {
    let server = Server::start_with(&["--max-body-bytes", "1000"]);
    let mut big = patient();
    big["name"] = json!([{"text": "x".repeat(2000)}]);
    server.post("Patient", &big).expect_error(413);
    big["id"] = json!("big");
    server.put("Patient/big", &big).expect_error(413);
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": big, "request": {"method": "POST", "url": "Patient"}}]
    });
    server.post("", &bundle).expect_error(413);
    // Below the limit is fine.
    server.post("Patient", &patient()).expect(201);
}
