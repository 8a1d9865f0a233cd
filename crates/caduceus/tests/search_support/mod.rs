//! Helpers shared by the search suites (`rest_search_*.rs`): building resources, running
//! searches and checking the searchset Bundles they return.
#![allow(dead_code)] // each suite uses a different part

use crate::common::Server;
use serde_json::{Value, json};

/// PUTs a resource at its own id (update as create) and expects 201.
#[track_caller]
pub fn put(server: &Server, resource: Value) {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().expect("type"),
        resource["id"].as_str().expect("id")
    );
    server.put(&path, &resource).expect(201);
}

/// Runs a search that must succeed and checks the searchset Bundle's structure: type,
/// `self` link, and for every entry a search mode and (for matches and includes) a
/// `fullUrl` that is the resource's own URL on this server.
#[track_caller]
pub fn search(server: &Server, query: &str) -> Value {
    let reply = server.get(query);
    reply.expect(200);
    let b = reply.json();
    check_searchset(server, &b);
    b
}

#[track_caller]
pub fn check_searchset(server: &Server, b: &Value) {
    assert_eq!(b["resourceType"], "Bundle", "{b}");
    assert_eq!(b["type"], "searchset", "{b}");
    assert!(
        link(b, "self").is_some(),
        "a searchset has a self link: {b}"
    );
    for e in b["entry"].as_array().into_iter().flatten() {
        let mode = e["search"]["mode"].as_str().unwrap_or_default();
        match mode {
            "match" | "include" => {
                let r = &e["resource"];
                let expected = format!(
                    "{}/{}/{}",
                    server.base,
                    r["resourceType"].as_str().unwrap(),
                    r["id"].as_str().unwrap()
                );
                let full_url = e["fullUrl"].as_str().unwrap_or_default();
                match full_url.rsplit_once('#') {
                    // A contained resource returned as itself (`_containedType=contained`):
                    // its container's URL with its own id as the fragment.
                    Some((container, local)) => {
                        assert_eq!(json!(local), r["id"], "fullUrl of {e}");
                        let path = container
                            .strip_prefix(&format!("{}/", server.base))
                            .unwrap_or_else(|| panic!("fullUrl of {e}"));
                        assert_eq!(path.split('/').count(), 2, "fullUrl of {e}");
                    }
                    None => assert_eq!(e["fullUrl"], json!(expected), "fullUrl of {e}"),
                }
            }
            "outcome" => assert_eq!(e["resource"]["resourceType"], "OperationOutcome", "{e}"),
            other => panic!("entry.search.mode {other:?} in {e}"),
        }
    }
}

pub fn link(b: &Value, relation: &str) -> Option<String> {
    b["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
        .map(str::to_owned)
}

/// `Type/id` of the entries with the given search mode, in Bundle order.
pub fn entries(b: &Value, mode: &str) -> Vec<String> {
    b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == mode)
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect()
}

/// The ids of the matches of a search, sorted.
#[track_caller]
pub fn ids(server: &Server, query: &str) -> Vec<String> {
    let b = search(server, query);
    let mut ids: Vec<String> = entries(&b, "match")
        .into_iter()
        .map(|t| t.split_once('/').unwrap().1.to_owned())
        .collect();
    ids.sort();
    ids
}

pub fn outcomes(b: &Value) -> Vec<Value> {
    b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "outcome")
        .map(|e| e["resource"].clone())
        .collect()
}

/// Asserts an error status with an OperationOutcome whose text never repeats `secret`.
#[track_caller]
pub fn expect_error_without(server: &Server, query: &str, status: u16, secret: &str) -> Value {
    let reply = server.get(query);
    let outcome = reply.expect_error(status);
    assert!(
        !reply.text().contains(secret),
        "the error of {query} echoes the searched value: {}",
        reply.text()
    );
    outcome
}

pub fn patient(id: &str, family: &str, given: &str, gender: &str, birth: Option<&str>) -> Value {
    let mut p = json!({
        "resourceType": "Patient",
        "id": id,
        "name": [{"family": family, "given": [given]}],
        "gender": gender,
    });
    if let Some(b) = birth {
        p["birthDate"] = json!(b);
    }
    p
}

pub fn observation(id: &str, subject: Option<&str>, code: &str, extra: Value) -> Value {
    let mut o = json!({
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": format!("Display of {code}")}]},
    });
    if let Some(s) = subject {
        o["subject"] = json!({"reference": s});
    }
    for (k, v) in extra.as_object().into_iter().flatten() {
        o[k] = v.clone();
    }
    o
}

/// p1 (female, Alpha) ← e1 ← o-enc (encounter only); p1 ← o1 (code A); p2 (male, Beta) ← o2 (code B).
pub fn clinical(server: &Server) {
    put(
        server,
        patient("p1", "Alpha", "Ann", "female", Some("1970")),
    );
    put(server, patient("p2", "Beta", "Ben", "male", Some("1980")));
    put(
        server,
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/p1"}}),
    );
    put(
        server,
        observation("o1", Some("Patient/p1"), "A", json!({})),
    );
    put(
        server,
        observation("o2", Some("Patient/p2"), "B", json!({})),
    );
    put(
        server,
        observation(
            "o-enc",
            None,
            "C",
            json!({"encounter": {"reference": "Encounter/e1"}}),
        ),
    );
}
