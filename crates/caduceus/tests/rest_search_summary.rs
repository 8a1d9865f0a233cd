//! `_summary=true` over HTTP (search.html#summary), on search results and on reads: only the
//! elements the definitions mark `isSummary` (recursively), plus `resourceType`, `id`,
//! `meta` and mandatory elements, tagged SUBSETTED.

mod common;
mod search_support;

use common::Server;
use search_support::*;
use serde_json::{Value, json};

const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

fn full_patient() -> Value {
    json!({
        "resourceType": "Patient", "id": "sp1",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Ann Doe</div>"},
        "identifier": [{"system": "urn:mrn", "value": "123"}],
        "active": true,
        "name": [{"family": "Summary", "given": ["Ann"]}],
        "gender": "female",
        "birthDate": "1990-01-01",
        "maritalStatus": {"text": "married"},
        "photo": [{"contentType": "image/png", "data": "AAAA"}],
        "contact": [{"name": {"family": "Roe"}, "telecom": [{"system": "phone", "value": "555"}]}],
        "communication": [{"language": {"text": "en"}}],
        "link": [{"other": {"reference": "Patient/sp2"}, "type": "seealso"}]
    })
}

fn full_observation() -> Value {
    json!({
        "resourceType": "Observation", "id": "so1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/sp1"},
        "effectiveDateTime": "2020-01-01",
        "valueQuantity": {"value": 60, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        "interpretation": [{"text": "normal"}],
        "note": [{"text": "a note"}],
        "referenceRange": [{"low": {"value": 50}, "high": {"value": 100}}]
    })
}

#[track_caller]
fn keys(r: &Value) -> Vec<String> {
    let mut k: Vec<String> = r.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[track_caller]
fn assert_subsetted(r: &Value) {
    assert!(
        r["meta"]["tag"].as_array().is_some_and(|tags| tags
            .iter()
            .any(|t| t["code"] == "SUBSETTED" && t["system"] == SUBSETTED_SYSTEM)),
        "SUBSETTED tag: {r}"
    );
    assert!(r["meta"]["versionId"].is_string(), "meta is kept: {r}");
}

#[track_caller]
fn check_patient_summary(r: &Value) {
    assert_eq!(
        keys(r),
        [
            "active",
            "birthDate",
            "gender",
            "id",
            "identifier",
            "link",
            "meta",
            "name",
            "resourceType"
        ],
        "{r}"
    );
    assert_eq!(r["name"][0]["given"][0], "Ann");
    assert_eq!(r["link"][0]["type"], "seealso");
    assert_subsetted(r);
}

#[track_caller]
fn check_observation_summary(r: &Value) {
    assert_eq!(
        keys(r),
        [
            "code",
            "effectiveDateTime",
            "id",
            "meta",
            "resourceType",
            "status",
            "subject",
            "valueQuantity"
        ],
        "{r}"
    );
    assert_eq!(r["valueQuantity"]["value"], 60);
    assert_subsetted(r);
}

#[test]
fn summary_true_on_search_results() {
    let server = Server::start();
    put(&server, full_patient());
    put(&server, full_observation());

    let b = search(&server, "Patient?_id=sp1&_summary=true");
    assert_eq!(entries(&b, "match"), ["Patient/sp1"]);
    check_patient_summary(&b["entry"][0]["resource"]);

    let b = search(&server, "Observation?code=8867-4&_summary=true");
    assert_eq!(entries(&b, "match"), ["Observation/so1"]);
    check_observation_summary(&b["entry"][0]["resource"]);

    // Included resources are summarised too, and next links keep _summary.
    let b = search(
        &server,
        "Observation?_id=so1&_include=Observation:subject&_summary=true",
    );
    let included: Vec<&Value> = b["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .collect();
    assert_eq!(included.len(), 1, "{b}");
    check_patient_summary(&included[0]["resource"]);
    let self_link = link(&b, "self").expect("self link");
    assert!(self_link.contains("_summary=true"), "{self_link}");

    // _summary=false is everything, untagged.
    let b = search(&server, "Patient?_id=sp1&_summary=false");
    let r = &b["entry"][0]["resource"];
    assert!(
        r.get("photo").is_some() && r.get("contact").is_some(),
        "{r}"
    );
    assert!(r["meta"].get("tag").is_none(), "{r}");
}

#[test]
fn summary_true_on_reads() {
    let server = Server::start();
    put(&server, full_patient());
    put(&server, full_observation());

    let reply = server.get("Patient/sp1?_summary=true");
    reply.expect(200);
    check_patient_summary(&reply.json());
    let reply = server.get("Observation/so1?_summary=true");
    reply.expect(200);
    check_observation_summary(&reply.json());

    // The other _summary forms and _elements work on reads as in searches.
    let r = server.get("Patient/sp1?_summary=text").json();
    assert_eq!(keys(&r), ["id", "meta", "resourceType", "text"], "{r}");
    assert_subsetted(&r);
    let r = server.get("Patient/sp1?_summary=data").json();
    assert!(r.get("text").is_none() && r.get("photo").is_some(), "{r}");
    let r = server.get("Patient/sp1?_elements=gender").json();
    assert_eq!(keys(&r), ["gender", "id", "meta", "resourceType"], "{r}");
    assert_subsetted(&r);

    // Without them, the stored resource as it is.
    let r = server.get("Patient/sp1").json();
    assert!(
        r.get("photo").is_some() && r["meta"].get("tag").is_none(),
        "{r}"
    );
    let r = server.get("Patient/sp1?_summary=false").json();
    assert!(r.get("contact").is_some(), "{r}");

    // _summary=count or garbage on a read is a client error.
    server.get("Patient/sp1?_summary=count").expect_error(400);
    server.get("Patient/sp1?_summary=maybe").expect_error(400);
}
