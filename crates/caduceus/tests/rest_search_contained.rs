//! Search over HTTP (FHIR R4 search.html, "Contained resources"): `_contained=true|both`,
//! `_containedType=container|contained`, paging and totals over contained matches, includes
//! on a contained page, contained resources following their container's updates and
//! deletes, ordinary searches never returning them, and chains through `#id` references
//! into contained resources. Then every official example that contains resources, with the
//! expected answers computed by scanning the examples' JSON.

mod common;
mod search_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use common::Server;
use search_support::*;
use serde_json::{Value, json};

const SCT: &str = "http://snomed.info/sct";

/// The `fullUrl`s of every match of a search, relative to the base, following `next` links.
/// Checks that each page has the same `total` (when asked) and returns it.
#[track_caller]
fn matches(server: &Server, query: &str) -> (Vec<String>, Option<u64>) {
    let mut out = Vec::new();
    let mut total: Option<u64> = None;
    let mut next = Some(query.to_owned());
    let mut pages = 0;
    while let Some(q) = next {
        pages += 1;
        assert!(pages < 1000, "paging does not end: {query}");
        let b = search(server, &q);
        if let Some(t) = b["total"].as_u64() {
            if let Some(before) = total {
                assert_eq!(before, t, "the total changed between pages of {query}");
            }
            total = Some(t);
        }
        for e in b["entry"].as_array().into_iter().flatten() {
            if e["search"]["mode"] == "match" {
                let url = e["fullUrl"].as_str().expect("fullUrl");
                let rel = url
                    .strip_prefix(&format!("{}/", server.base))
                    .expect("fullUrl under the base");
                out.push(rel.to_owned());
            }
        }
        next = link(&b, "next");
    }
    (out, total)
}

#[track_caller]
fn urls(server: &Server, query: &str) -> Vec<String> {
    matches(server, query).0
}

fn med(id: &str, code: &str) -> Value {
    json!({"resourceType": "Medication", "id": id,
           "code": {"coding": [{"system": SCT, "code": code}]}})
}

/// A MedicationRequest whose medication is its first contained Medication; any others are
/// named by `supportingInformation` (a contained resource must be referenced, dom-3).
fn request(id: &str, contained: Vec<Value>) -> Value {
    let refs: Vec<Value> = contained
        .iter()
        .skip(1)
        .map(|c| json!({"reference": format!("#{}", c["id"].as_str().unwrap())}))
        .collect();
    let mut r = json!({"resourceType": "MedicationRequest", "id": id, "status": "active",
           "intent": "order", "subject": {"reference": "Patient/pat"}});
    match contained.first() {
        Some(first) => {
            r["medicationReference"] =
                json!({"reference": format!("#{}", first["id"].as_str().unwrap())});
            r["contained"] = json!(contained);
        }
        None => r["medicationCodeableConcept"] = json!({"text": "none contained"}),
    }
    if !refs.is_empty() {
        r["supportingInformation"] = json!(refs);
    }
    r
}

fn fixture(server: &Server) {
    put(server, json!({"resourceType": "Patient", "id": "pat"}));
    put(
        server,
        json!({"resourceType": "Organization", "id": "maker", "name": "Maker"}),
    );
    put(server, med("top", "A"));
    put(server, med("other", "B"));
    let mut m1 = med("m1", "A");
    m1["manufacturer"] = json!({"reference": "Organization/maker"});
    put(server, request("mr1", vec![m1]));
    put(server, request("mr2", vec![med("m1", "A"), med("m2", "A")]));
    put(server, request("mr3", vec![med("x", "B")]));
    put(
        server,
        json!({"resourceType": "MedicationDispense", "id": "md1", "status": "completed",
               "contained": [med("d1", "A")], "medicationReference": {"reference": "#d1"}}),
    );
}

#[test]
fn contained_medications_are_found_as_containers_or_as_themselves() {
    let server = Server::start();
    fixture(&server);
    let a = format!("Medication?code={SCT}|A");

    // Ordinary searches never return contained resources.
    assert_eq!(urls(&server, &a), ["Medication/top"]);
    assert_eq!(
        urls(&server, &format!("{a}&_contained=false")),
        ["Medication/top"]
    );
    assert_eq!(
        urls(&server, "Medication"),
        ["Medication/other", "Medication/top"]
    );
    assert_eq!(
        urls(&server, "?_type=Medication"),
        ["Medication/other", "Medication/top"]
    );

    // `_contained=true`: the containers (each once), whatever their type.
    assert_eq!(
        urls(&server, &format!("{a}&_contained=true")),
        [
            "MedicationDispense/md1",
            "MedicationRequest/mr1",
            "MedicationRequest/mr2"
        ]
    );
    assert_eq!(
        urls(
            &server,
            &format!("{a}&_contained=true&_containedType=container")
        ),
        [
            "MedicationDispense/md1",
            "MedicationRequest/mr1",
            "MedicationRequest/mr2"
        ]
    );
    // `_containedType=contained`: the contained resources themselves, at their container's
    // URL with their id as fragment, each body exactly the `contained` entry.
    let b = search(
        &server,
        &format!("{a}&_contained=true&_containedType=contained"),
    );
    let got: Vec<(String, Value)> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["fullUrl"].as_str().unwrap().to_owned(),
                e["resource"].clone(),
            )
        })
        .collect();
    let base = &server.base;
    let mut m1 = med("m1", "A");
    m1["manufacturer"] = json!({"reference": "Organization/maker"});
    assert_eq!(
        got,
        [
            (format!("{base}/MedicationDispense/md1#d1"), med("d1", "A")),
            (format!("{base}/MedicationRequest/mr1#m1"), m1),
            (format!("{base}/MedicationRequest/mr2#m1"), med("m1", "A")),
            (format!("{base}/MedicationRequest/mr2#m2"), med("m2", "A")),
        ]
    );
    // `both`: top-level matches and contained ones together.
    assert_eq!(
        urls(&server, &format!("{a}&_contained=both")),
        [
            "Medication/top",
            "MedicationDispense/md1",
            "MedicationRequest/mr1",
            "MedicationRequest/mr2"
        ]
    );
    assert_eq!(
        urls(
            &server,
            &format!("{a}&_contained=both&_containedType=contained")
        ),
        // In (type, id) order: a contained resource's id is its key `Container/id#local`.
        [
            "MedicationDispense/md1#d1",
            "MedicationRequest/mr1#m1",
            "MedicationRequest/mr2#m1",
            "MedicationRequest/mr2#m2",
            "Medication/top",
        ]
    );
    // Without criteria: every contained Medication.
    assert_eq!(
        urls(
            &server,
            "Medication?_contained=true&_containedType=contained"
        )
        .len(),
        5
    );
}

#[test]
fn contained_pages_are_keyset_paged_with_accurate_totals() {
    let server = Server::start();
    fixture(&server);
    let a = format!("Medication?code={SCT}|A");
    for (params, expected) in [
        ("_contained=true", 3usize),
        ("_contained=true&_containedType=contained", 4),
        ("_contained=both", 4),
        ("_contained=both&_containedType=contained", 5),
    ] {
        let query = format!("{a}&{params}&_count=1&_total=accurate");
        let (all, total) = matches(&server, &query);
        assert_eq!(total, Some(expected as u64), "{query}");
        assert_eq!(all.len(), expected, "{query}: {all:?}");
        let unique: BTreeSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), expected, "no repeats across pages: {all:?}");
        // Same matches in the same order as one page.
        let (one_page, _) = matches(&server, &format!("{a}&{params}&_count=50"));
        assert_eq!(all, one_page, "{query}");
    }
    // `next` links keep the contained parameters.
    let b = search(
        &server,
        &format!("{a}&_contained=true&_containedType=contained&_count=1"),
    );
    let next = link(&b, "next").expect("a next link");
    assert!(next.contains("_contained=true"), "{next}");
    assert!(next.contains("_containedType=contained"), "{next}");
    // `_summary=count` counts containers.
    let b = search(&server, &format!("{a}&_contained=true&_summary=count"));
    assert_eq!(b["total"], 3);
}

#[test]
fn includes_apply_to_the_contained_resources_returned() {
    let server = Server::start();
    fixture(&server);
    let a = format!("Medication?code={SCT}|A&_contained=true&_containedType=contained");
    let b = search(&server, &format!("{a}&_include=Medication:manufacturer"));
    assert_eq!(entries(&b, "include"), ["Organization/maker"]);
    let b = search(
        &server,
        &format!("{a}&_revinclude=MedicationRequest:medication"),
    );
    assert_eq!(
        entries(&b, "include"),
        ["MedicationRequest/mr1", "MedicationRequest/mr2"]
    );
    // On a container page, includes apply to the containers (of other types than the
    // searched one, so named with `:iterate`).
    let b = search(
        &server,
        &format!(
            "Medication?code={SCT}|A&_contained=true&_include:iterate=MedicationRequest:subject"
        ),
    );
    assert_eq!(entries(&b, "include"), ["Patient/pat"]);
}

#[test]
fn contained_resources_follow_their_containers_writes() {
    let server = Server::start();
    fixture(&server);
    let a = format!("Medication?code={SCT}|A&_contained=true");
    // An update without the contained Medication: no longer found.
    put_ok(&server, request("mr1", vec![]));
    assert_eq!(
        urls(&server, &a),
        ["MedicationDispense/md1", "MedicationRequest/mr2"]
    );
    // An update changing a contained Medication's code.
    put_ok(
        &server,
        request("mr2", vec![med("m1", "B"), med("m2", "A")]),
    );
    assert_eq!(
        urls(&server, &format!("{a}&_containedType=contained")),
        ["MedicationDispense/md1#d1", "MedicationRequest/mr2#m2"]
    );
    // A delete: gone.
    server.delete("MedicationRequest/mr2").expect(200);
    server.delete("MedicationDispense/md1").expect(200);
    assert!(urls(&server, &a).is_empty());
    assert_eq!(
        urls(&server, &format!("Medication?code={SCT}|B&_contained=true")),
        ["MedicationRequest/mr3"]
    );
    // A PATCH replaces them too.
    let patch = json!([{"op": "replace", "path": "/contained/0/code/coding/0/code", "value": "A"}]);
    server
        .patch(
            "MedicationRequest/mr3",
            &patch,
            &[("Content-Type", "application/json-patch+json")],
        )
        .expect(200);
    assert_eq!(urls(&server, &a), ["MedicationRequest/mr3"]);
    // A transaction's writes index contained resources as well.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": request("mr9", vec![med("t1", "A")]),
        "request": {"method": "PUT", "url": "MedicationRequest/mr9"}
    }]});
    server.post("", &bundle).expect(200);
    assert_eq!(
        urls(&server, &a),
        ["MedicationRequest/mr3", "MedicationRequest/mr9"]
    );
}

#[test]
fn chains_are_evaluated_inside_contained_resources() {
    let server = Server::start();
    put(
        &server,
        json!({"resourceType": "Patient", "id": "real", "name": [{"family": "Smith"}]}),
    );
    put(
        &server,
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
               "code": {"text": "weight"},
               "contained": [{"resourceType": "Patient", "id": "p1",
                              "name": [{"family": "Taylor"}], "gender": "female"}],
               "subject": {"reference": "#p1"}}),
    );
    put(
        &server,
        json!({"resourceType": "Observation", "id": "o2", "status": "final",
               "code": {"text": "weight"}, "subject": {"reference": "Patient/real"}}),
    );
    assert_eq!(ids(&server, "Observation?subject.name=Taylor"), ["o1"]);
    assert_eq!(
        ids(&server, "Observation?subject:Patient.name=taylor"),
        ["o1"]
    );
    assert_eq!(ids(&server, "Observation?subject.name=Smith"), ["o2"]);
    assert_eq!(
        ids(&server, "Observation?subject:Patient.gender=female"),
        ["o1"]
    );
    // The contained Patient is not a Patient of the server...
    assert!(ids(&server, "Patient?name=Taylor").is_empty());
    assert!(
        ids(&server, "Patient?_has:Observation:subject:status=final")
            .iter()
            .all(|id| id == "real")
    );
    // ...but `_contained` finds it, and `_has` reaches it from its container.
    assert_eq!(
        urls(
            &server,
            "Patient?name=Taylor&_contained=true&_containedType=contained"
        ),
        ["Observation/o1#p1"]
    );
    assert_eq!(
        urls(
            &server,
            "Patient?_has:Observation:subject:status=final&_contained=true"
        ),
        ["Observation/o1"]
    );
    // Including the subject of an Observation whose subject is contained includes nothing
    // (the Patient is already in the Observation).
    let b = search(&server, "Observation?_id=o1&_include=Observation:subject");
    assert!(entries(&b, "include").is_empty());
    // A `:missing` subject: a local reference is a subject.
    assert!(ids(&server, "Observation?subject:missing=true").is_empty());
}

#[test]
fn refusals() {
    let server = Server::start();
    fixture(&server);
    let reply = server.get("Medication?_contained=true&_sort=code");
    let outcome = reply.expect_error(501);
    assert!(outcome.to_string().contains("_contained"), "{outcome}");
    // A conditional interaction never selects contained resources or their containers.
    let reply = server.put(
        &format!("Medication?code={SCT}|A&_contained=true"),
        &med("new", "A"),
    );
    reply.expect_error(400);
    let reply = server.delete(&format!("Medication?code={SCT}|A&_contained=both"));
    reply.expect_error(400);
    assert_eq!(
        urls(&server, "MedicationRequest").len(),
        3,
        "nothing deleted"
    );
    // Bad values.
    server.get("Medication?_contained=maybe").expect_error(400);
    server
        .get("Medication?_contained=true&_containedType=both")
        .expect_error(400);
}

#[track_caller]
fn put_ok(server: &Server, resource: Value) {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    server.put(&path, &resource).expect(200);
}

/// The examples of the official package that have a top-level `contained`.
fn examples_with_contained(tgz: &std::path::Path) -> Vec<Value> {
    let file = std::fs::File::open(tgz).unwrap_or_else(|e| panic!("{}: {e}", tgz.display()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let path = entry.path().expect("entry path").into_owned();
        let name = path.to_string_lossy().into_owned();
        if !name.starts_with("package/")
            || !name.ends_with(".json")
            || name.matches('/').count() != 1
        {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read entry");
        let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if body["contained"].as_array().is_some_and(|c| !c.is_empty()) && body["id"].is_string() {
            out.push(body);
        }
    }
    out
}

#[test]
fn official_examples_with_contained_resources() {
    let Some(shared) = common::shared_or_skip("official_examples_with_contained_resources") else {
        return;
    };
    let examples = examples_with_contained(&shared.join("fhir/hl7.fhir.r4.examples-4.0.1.tgz"));
    assert!(examples.len() > 100, "{} examples", examples.len());
    let server = Server::start();
    // Expected answers, from the JSON of the examples the server stored:
    // contained type -> contained keys (`Container/id#local`) and containers.
    let mut contained: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut containers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Medication codings -> containers / keys.
    let mut med_codes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stored = BTreeSet::new();
    for ex in &examples {
        let (t, id) = (
            ex["resourceType"].as_str().unwrap(),
            ex["id"].as_str().unwrap(),
        );
        let key = format!("{t}/{id}");
        if !stored.insert(key.clone()) {
            continue; // the same resource in two files: the first stays
        }
        let reply = server.put(&key, ex);
        if !matches!(reply.status, 200 | 201) {
            stored.remove(&key);
            continue; // refused (see official_examples.rs); nothing of it is stored
        }
        for c in ex["contained"].as_array().unwrap() {
            let (Some(ct), Some(cid)) = (c["resourceType"].as_str(), c["id"].as_str()) else {
                continue;
            };
            let ckey = format!("{key}#{cid}");
            contained
                .entry(ct.to_owned())
                .or_default()
                .insert(ckey.clone());
            containers
                .entry(ct.to_owned())
                .or_default()
                .insert(key.clone());
            if ct == "Medication" {
                for coding in c["code"]["coding"].as_array().into_iter().flatten() {
                    if let (Some(s), Some(code)) =
                        (coding["system"].as_str(), coding["code"].as_str())
                    {
                        med_codes
                            .entry(format!("{s}|{code}"))
                            .or_default()
                            .insert(ckey.clone());
                    }
                }
            }
        }
    }
    assert!(stored.len() > 100, "{} stored", stored.len());
    assert!(contained.len() > 10, "{:?}", contained.keys());
    for (ct, keys) in &contained {
        let got: BTreeSet<String> = urls(
            &server,
            &format!("{ct}?_contained=true&_containedType=contained&_count=7"),
        )
        .into_iter()
        .collect();
        assert_eq!(&got, keys, "{ct} contained");
        let got: BTreeSet<String> = urls(&server, &format!("{ct}?_contained=true&_count=7"))
            .into_iter()
            .collect();
        assert_eq!(&got, &containers[ct], "{ct} containers");
        // Ordinary searches see none of them.
        let top = urls(&server, &format!("{ct}?_count=500"));
        assert!(top.iter().all(|u| !u.contains('#')), "{ct}: {top:?}");
        let (_, total) = matches(
            &server,
            &format!("{ct}?_contained=both&_containedType=contained&_total=accurate&_count=500"),
        );
        assert_eq!(total, Some((top.len() + keys.len()) as u64), "{ct} both");
    }
    assert!(!med_codes.is_empty());
    for (token, keys) in &med_codes {
        let got: BTreeSet<String> = urls(
            &server,
            &format!("Medication?code={token}&_contained=true&_containedType=contained"),
        )
        .into_iter()
        .collect();
        assert_eq!(&got, keys, "Medication?code={token}");
    }
}
