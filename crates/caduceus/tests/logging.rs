//! Logs carry no patient data and every line of a request carries its request id.
//!
//! A scenario full of distinctive names, birth dates and identifiers (in bodies, in URLs,
//! in query strings, in invalid and malformed requests, in failing transactions) runs
//! against a server logging at debug level in JSON; afterwards none of those values may
//! appear in any log line.

mod common;

use common::Server;
use serde_json::{Value, json};

const FAMILY: &str = "Zyxwvutsonian";
const BIRTH_DATE: &str = "1937-04-05";
const MRN: &str = "MRN-7788-UNIQUE";
const GIVEN: &str = "Quorbflax";
const PHONE: &str = "555-0199-8877";

fn sensitive_patient() -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "http://hospital.example.org/mrn", "value": MRN}],
        "name": [{"family": FAMILY, "given": [GIVEN]}],
        "telecom": [{"system": "phone", "value": PHONE}],
        "gender": "female",
        "birthDate": BIRTH_DATE
    })
}

/// Runs requests that put the sensitive values everywhere a request can carry them.
fn scenario(server: &Server) {
    // Valid writes and reads.
    let id = server.create_id(&sensitive_patient());
    let mut at_mrn = sensitive_patient();
    at_mrn["id"] = json!(MRN);
    server.put(&format!("Patient/{MRN}"), &at_mrn).expect(201);
    server.get(&format!("Patient/{MRN}")).expect(200);
    server
        .get(&format!("Patient/{id}?_pretty=true"))
        .expect(200);
    server
        .get(&format!("Patient/{MRN}/_history?_since={BIRTH_DATE}"))
        .expect(200);
    server
        .patch(
            &format!("Patient/{id}"),
            &json!([{"op": "replace", "path": "/name/0/family", "value": format!("{FAMILY}-Patched")}]),
            &[],
        )
        .expect(200);

    // Invalid values on exactly those elements.
    let mut bad = sensitive_patient();
    bad["birthDate"] = json!(format!("{BIRTH_DATE}{FAMILY}"));
    bad["gender"] = json!(FAMILY);
    bad["name"] = json!([{"family": [FAMILY], "given": GIVEN}]);
    bad["identifier"] = json!([{"value": MRN, "system": MRN, "period": MRN}]);
    bad[FAMILY] = json!(MRN);
    server.post("Patient", &bad).expect_error(422);
    server.post("Patient/$validate", &bad).expect(200);
    let mut bad_put = bad.clone();
    bad_put["id"] = json!(MRN);
    server
        .put(&format!("Patient/{MRN}"), &bad_put)
        .expect_error(422);
    // Id mismatch and type mismatch.
    let mut mismatch = sensitive_patient();
    mismatch["id"] = json!(format!("{FAMILY}-other"));
    server
        .put(&format!("Patient/{MRN}"), &mismatch)
        .expect_error(400);
    let mut wrong_type = sensitive_patient();
    wrong_type["resourceType"] = json!(FAMILY);
    server.post("Patient", &wrong_type).expect_error(400);
    // Malformed JSON that contains the values.
    let malformed = format!(
        r#"{{"resourceType":"Patient","name":[{{"family":"{FAMILY}"}}],"birthDate":"{BIRTH_DATE}","identifier":[{{"value":"{MRN}" "#
    );
    server
        .send_raw(
            "POST",
            "Patient",
            "application/fhir+json",
            malformed.as_bytes(),
        )
        .expect_error(400);
    let bad_escape =
        format!(r#"{{"resourceType":"Patient","name":[{{"family":"{FAMILY}\q{MRN}"}}]}}"#);
    server
        .send_raw(
            "POST",
            "Patient",
            "application/fhir+json",
            bad_escape.as_bytes(),
        )
        .expect_error(400);
    // Unknown type and bad ids made of the values.
    server.get(&format!("{FAMILY}/{MRN}")).expect_error(404);
    server
        .get(&format!(
            "Patient/{FAMILY}_{BIRTH_DATE}_{MRN}_{GIVEN}_{PHONE}"
        ))
        .expect_error(400);
    server.get(&format!("Patient/{FAMILY}")).expect_error(404);
    server
        .get(&format!("_history?_since={FAMILY}"))
        .expect_error(400);
    server
        .get(&format!("{FAMILY}?name={FAMILY}&birthdate={BIRTH_DATE}"))
        .expect_error(404);
    // Searches carry the values in the query, answered or refused.
    server
        .get(&format!("Patient?identifier={MRN}&family={FAMILY}"))
        .expect(200);
    server
        .get(&format!("Patient?birthdate=x{FAMILY}"))
        .expect_error(400);
    // Stale If-Match.
    server
        .send_json_with(
            "PUT",
            &format!("Patient/{MRN}"),
            &[("if-match", "W/\"9\"")],
            &at_mrn,
        )
        .expect_error(412);

    // Failing transactions.
    let entry = |resource: Value| {
        json!({
            "fullUrl": format!("urn:uuid:{FAMILY}"),
            "resource": resource,
            "request": {"method": "POST", "url": "Patient"}
        })
    };
    let failing = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [entry(sensitive_patient()), {"resource": bad, "request": {"method": "POST", "url": "Patient"}}]
    });
    server.post("", &failing).expect_error(422);
    let dangling = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "resource": {"resourceType": "Observation", "status": "final", "code": {"text": FAMILY},
                         "subject": {"reference": format!("urn:uuid:{MRN}")}},
            "request": {"method": "POST", "url": "Observation"}
        }]
    });
    server.post("", &dangling).expect_error(400);
    let bad_url = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": sensitive_patient(), "request": {"method": "PUT", "url": format!("Patient/{FAMILY}/{MRN}")}}]
    });
    server.post("", &bad_url).expect_error(400);
    let batch = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": format!("Patient/{MRN}-{BIRTH_DATE}")}},
            {"resource": {"resourceType": "Patient", "birthDate": FAMILY}, "request": {"method": "POST", "url": "Patient"}}
        ]
    });
    server.post("", &batch).expect(200);
    server.delete(&format!("Patient/{MRN}")).expect(200);
    server.get(&format!("Patient/{MRN}")).expect_error(410);
}

fn assert_no_patient_data(logs: &[String]) {
    for line in logs {
        for value in [FAMILY, BIRTH_DATE, MRN, GIVEN, PHONE, "19370405", "Zyxwv"] {
            assert!(
                !line.contains(value),
                "log line carries patient data ({value}): {line}"
            );
        }
    }
}

/// The request id of a JSON log line, at the top level or in its span.
fn request_id(line: &Value) -> Option<&str> {
    line.get("request_id")
        .or_else(|| line.get("span").and_then(|s| s.get("request_id")))
        .or_else(|| {
            line.get("spans")
                .and_then(Value::as_array)
                .and_then(|spans| spans.iter().find_map(|s| s.get("request_id")))
        })
        .and_then(Value::as_str)
}

#[test]
fn no_patient_data_in_logs_at_debug_level() {
    let server = Server::start_with_global(&["--log-level", "debug"]);
    scenario(&server);
    let logs = server.logs();
    assert!(
        logs.len() > 20,
        "debug logging should show the requests; got {} lines",
        logs.len()
    );
    assert_no_patient_data(&logs);
}

#[test]
fn no_patient_data_in_logs_at_default_level() {
    let server = Server::start();
    scenario(&server);
    let status = {
        let logs = server.logs();
        assert_no_patient_data(&logs);
        server.terminate()
    };
    assert!(status.success());
}

#[test]
fn every_request_log_line_carries_the_request_id() {
    let server = Server::start_with_global(&["--log-level", "debug"]);
    scenario(&server);
    let logs = server.logs();
    // Start-up ends with the "listening" line; everything after it is request work.
    let started = logs
        .iter()
        .position(|l| l.contains(r#""message":"listening""#))
        .expect("a listening line")
        + 1;
    let during: Vec<&String> = logs[started..].iter().collect();
    assert!(!during.is_empty(), "requests were logged");
    let mut ids = std::collections::BTreeSet::new();
    for line in during {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        let id = request_id(&v).unwrap_or_else(|| panic!("log line without request_id: {line}"));
        assert!(!id.is_empty(), "empty request_id: {line}");
        ids.insert(id.to_owned());
    }
    assert!(ids.len() > 10, "each request has its own id: {ids:?}");
}

#[test]
fn the_client_request_id_is_echoed_and_logged() {
    let server = Server::start_with_global(&["--log-level", "debug"]);
    let client_id = "client-req-4711-abc";
    let reply = server.request("GET", "metadata", &[("x-request-id", client_id)], None);
    reply.expect(200);
    assert_eq!(reply.header("x-request-id"), Some(client_id));
    let reply = server.request(
        "GET",
        "Patient/nope",
        &[("x-request-id", "another-id-1")],
        None,
    );
    reply.expect_error(404);
    assert_eq!(reply.header("x-request-id"), Some("another-id-1"));
    // An id that could forge or bloat log lines is replaced by a generated one.
    for bad in ["has spaces in it", &"x".repeat(200), "quote\"brace}"] {
        let reply = server.request("GET", "metadata", &[("x-request-id", bad)], None);
        reply.expect(200);
        let echoed = reply.header("x-request-id").expect("an id");
        assert_ne!(echoed, bad, "unsafe request id must not be echoed");
        assert!(
            !echoed.is_empty() && echoed.len() <= 64,
            "generated id: {echoed}"
        );
    }
    // Without one, the server makes one up, different per request.
    let a = server.get("metadata");
    let b = server.get("metadata");
    let (a, b) = (
        a.header("x-request-id").expect("generated id").to_owned(),
        b.header("x-request-id").expect("generated id").to_owned(),
    );
    assert!(!a.is_empty() && a != b, "generated ids {a} {b}");
    let wanted = [client_id, "another-id-1", a.as_str(), b.as_str()];
    let ids_of = |logs: &[String]| -> Vec<String> {
        logs.iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| request_id(&v).map(str::to_owned))
            .collect()
    };
    let logs = server.logs_when(|logs| {
        let ids = ids_of(logs);
        wanted.iter().all(|w| ids.iter().any(|l| l == w))
    });
    let logged = ids_of(&logs);
    for id in wanted {
        assert!(
            logged.iter().any(|l| l == id),
            "request id {id} is logged; logged ids {logged:?}"
        );
    }
}
