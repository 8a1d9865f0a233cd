//! Search over HTTP (FHIR R4 search.html), part 3: system, compartment and `$everything`
//! searches, POST `_search`, and the errors of unknown, malformed and unsupported searches.

mod common;
mod search_support;

use common::Server;
use search_support::*;
use serde_json::json;

// ---------------------------------------------------------------------------------------
// System, compartment, $everything, POST _search

#[test]
fn system_search_with_type() {
    let server = Server::start();
    clinical(&server);
    put(
        &server,
        json!({"resourceType": "Organization", "id": "org", "name": "Org"}),
    );
    let b = search(&server, "?_type=Patient,Encounter&_total=accurate");
    assert_eq!(b["total"], 3);
    let mut m = entries(&b, "match");
    m.sort();
    assert_eq!(m, ["Encounter/e1", "Patient/p1", "Patient/p2"]);
    // A parameter common to the types.
    let b = search(
        &server,
        "?_type=Patient,Observation,Organization&_id=p1,o1,org",
    );
    let mut m = entries(&b, "match");
    m.sort();
    assert_eq!(m, ["Observation/o1", "Organization/org", "Patient/p1"]);
    // Every type.
    let b = search(&server, "?_total=accurate");
    assert_eq!(b["total"], 7);
}

#[test]
fn compartment_search() {
    let server = Server::start();
    clinical(&server);
    assert_eq!(ids(&server, "Patient/p1/Observation"), ["o1"]);
    assert_eq!(ids(&server, "Patient/p2/Observation"), ["o2"]);
    assert_eq!(ids(&server, "Patient/p1/Observation?code=B").len(), 0);
    assert_eq!(ids(&server, "Patient/p1/Encounter"), ["e1"]);
    assert!(ids(&server, "Patient/nobody/Observation").is_empty());
    let b = search(&server, "Patient/p1/*");
    let mut m: Vec<String> = entries(&b, "match")
        .into_iter()
        .filter(|t| !t.starts_with("Patient/"))
        .collect();
    m.sort();
    assert_eq!(m, ["Encounter/e1", "Observation/o1"]);
    assert!(!entries(&b, "match").contains(&"Patient/p2".to_owned()));
}

#[test]
fn everything_starts_with_the_patient_and_pages() {
    let server = Server::start();
    clinical(&server);
    for i in 0..4 {
        put(
            &server,
            observation(&format!("x{i}"), Some("Patient/p1"), "X", json!({})),
        );
    }
    let b = search(&server, "Patient/p1/$everything");
    let m = entries(&b, "match");
    assert_eq!(m[0], "Patient/p1", "the patient comes first: {m:?}");
    let mut rest = m[1..].to_vec();
    rest.sort();
    assert_eq!(
        rest,
        [
            "Encounter/e1",
            "Observation/o1",
            "Observation/x0",
            "Observation/x1",
            "Observation/x2",
            "Observation/x3"
        ]
    );

    // Paged.
    let mut all = Vec::new();
    let mut url = "Patient/p1/$everything?_count=2".to_owned();
    let mut pages = 0;
    loop {
        let b = search(&server, &url);
        all.extend(entries(&b, "match"));
        pages += 1;
        match link(&b, "next") {
            Some(n) => url = n,
            None => break,
        }
        assert!(pages < 20);
    }
    assert_eq!(all[0], "Patient/p1");
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "duplicates: {all:?}");
    assert_eq!(all.len(), 7, "{all:?}");
    assert!(pages >= 3);

    // _type restricts the compartment's types.
    let b = search(&server, "Patient/p1/$everything?_type=Encounter");
    assert_eq!(entries(&b, "match"), ["Patient/p1", "Encounter/e1"]);
    server.get("Patient/nobody/$everything").expect_error(404);
}

#[test]
fn post_search_with_a_form_body_equals_get() {
    let server = Server::start();
    clinical(&server);
    let get = search(&server, "Observation?code=A,B&_include=Observation:subject");
    let reply = server.send_raw(
        "POST",
        "Observation/_search",
        "application/x-www-form-urlencoded",
        b"code=A%2CB&_include=Observation%3Asubject",
    );
    reply.expect(200);
    let post = reply.json();
    check_searchset(&server, &post);
    assert_eq!(post["entry"], get["entry"]);
    assert_eq!(link(&post, "self"), link(&get, "self"));
    // URL and body parameters combine.
    let reply = server.send_raw(
        "POST",
        "Patient/_search?gender=female",
        "application/x-www-form-urlencoded",
        b"family=alpha",
    );
    reply.expect(200);
    assert_eq!(entries(&reply.json(), "match"), ["Patient/p1"]);
}

#[test]
fn deleted_resources_vanish_and_updates_are_found_by_new_values() {
    let server = Server::start();
    put(&server, patient("a", "Oldname", "A", "male", None));
    put(&server, patient("b", "Gone", "B", "male", None));
    put(&server, observation("o", Some("Patient/b"), "A", json!({})));
    server.delete("Patient/b").expect(200);
    assert!(ids(&server, "Patient?family=gone").is_empty());
    assert!(ids(&server, "Patient?_id=b").is_empty());
    assert_eq!(ids(&server, "Patient?_total=accurate"), ["a"]);
    // Includes do not bring back a deleted resource.
    let b = search(&server, "Observation?_include=Observation:subject");
    assert!(entries(&b, "include").is_empty(), "{b}");
    // Nor do chains through it, or reverse chains from a deleted resource.
    assert!(ids(&server, "Observation?subject:Patient.family=gone").is_empty());
    put(
        &server,
        observation("o-a", Some("Patient/a"), "Z", json!({})),
    );
    assert_eq!(
        ids(&server, "Patient?_has:Observation:subject:code=Z"),
        ["a"]
    );
    server.delete("Observation/o-a").expect(200);
    assert!(ids(&server, "Patient?_has:Observation:subject:code=Z").is_empty());
    let b = search(&server, "Patient?_id=a&_revinclude=Observation:subject");
    assert!(entries(&b, "include").is_empty(), "{b}");

    server
        .put("Patient/a", &patient("a", "Newname", "A", "female", None))
        .expect(200);
    assert!(ids(&server, "Patient?family=oldname").is_empty());
    assert!(ids(&server, "Patient?gender=male").is_empty());
    assert_eq!(ids(&server, "Patient?family=newname"), ["a"]);
    assert_eq!(ids(&server, "Patient?gender=female"), ["a"]);
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn unknown_parameters_are_ignored_leniently_and_refused_strictly() {
    let server = Server::start();
    put(&server, patient("a", "X", "A", "male", None));
    put(&server, patient("b", "Y", "B", "female", None));
    let b = search(&server, "Patient?gender=male&nonsense=1");
    assert_eq!(entries(&b, "match"), ["Patient/a"]);
    let outs = outcomes(&b);
    assert_eq!(outs.len(), 1, "{b}");
    assert!(
        outs[0]["issue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["severity"] == "warning"),
        "{b}"
    );
    // The self link shows what was actually searched: without the ignored parameter.
    let own = link(&b, "self").unwrap();
    assert!(!own.contains("nonsense"), "{own}");

    let strict = server.request(
        "GET",
        "Patient?gender=male&nonsense=1",
        &[("prefer", "handling=strict")],
        None,
    );
    strict.expect_error(400);
    // Lenient explicitly.
    let lenient = server.request(
        "GET",
        "Patient?gender=male&nonsense=1",
        &[("prefer", "handling=lenient")],
        None,
    );
    lenient.expect(200);
}

#[test]
fn malformed_values_are_400_without_echoing_the_value() {
    let server = Server::start();
    put(&server, patient("a", "X", "A", "male", None));
    expect_error_without(&server, "Patient?birthdate=SECRET1980", 400, "SECRET1980");
    expect_error_without(&server, "Patient?birthdate=1980-13-45", 400, "1980-13-45");
    expect_error_without(&server, "Patient?birthdate=zz1980", 400, "zz1980");
    expect_error_without(
        &server,
        "RiskAssessment?probability=gtSECRET",
        400,
        "gtSECRET",
    );
    // A modifier that does not apply to the type.
    expect_error_without(&server, "Patient?birthdate:exact=1980", 400, "1980");
    expect_error_without(&server, "Patient?family:not=SECRETNAME", 400, "SECRETNAME");
    expect_error_without(&server, "Patient?_count=SECRETCOUNT", 400, "SECRETCOUNT");
    // Broken chain: gender is not a reference.
    expect_error_without(&server, "Patient?gender.name=SECRETNAME", 400, "SECRETNAME");
}

#[test]
fn unknown_types_are_404_and_unsupported_features_501() {
    let server = Server::start();
    put(&server, observation("o", None, "A", json!({})));
    server.get("NotAType?name=x").expect_error(404);
    // In `_type` an unknown type is a bad parameter value.
    server.get("?_type=Patient,NotAType").expect_error(400);
    // (Token `:in` is answered from stored ValueSets: see rest_search_terminology.rs.)
    // (`_contained` is searched: see rest_search_contained.rs; not with `_sort`.)
    server
        .get("Observation?_contained=true&_sort=code")
        .expect_error(501);
    // The server is still there.
    assert_eq!(ids(&server, "Observation"), ["o"]);
}

/// search.html#token: `:text` matches "the text associated with the code/value, either
/// CodeableConcept.text, Coding.display, or Identifier.type.text". The indexer
/// (`caduceus-index` convert.rs `tokens`) keeps `CodeableConcept.text` only when no coding
/// has a display, so a concept's own text cannot be searched once a coding is displayed.
#[test]
fn token_text_matches_the_codeable_concept_text_too() {
    let server = Server::start();
    put(
        &server,
        observation(
            "o1",
            None,
            "2345-7",
            json!({"code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose [Mass/volume] in Serum"}], "text": "Blood sugar"}}),
        ),
    );
    assert_eq!(ids(&server, "Observation?code:text=blood"), ["o1"]);
    assert_eq!(ids(&server, "Observation?code:text=sugar"), ["o1"]);
}

#[test]
fn unknown_result_parameters_follow_the_handling_preference() {
    let server = Server::start();
    put(&server, observation("o", None, "A", json!({})));
    let strict = [("prefer", "handling=strict")];
    for q in [
        "Observation?_sort=nonsense",
        "Observation?_include=Observation:nonsense",
        "Observation?_elements=nonsense",
    ] {
        let b = search(&server, q);
        assert_eq!(entries(&b, "match"), ["Observation/o"], "{q}: {b}");
        assert_eq!(outcomes(&b).len(), 1, "{q} is ignored with a warning: {b}");
        server.request("GET", q, &strict, None).expect_error(400);
    }
    // POST _search: the same handling, and only a form body.
    let post = |headers: &[(&str, &str)], body: &[u8]| {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        server.request("POST", "Observation/_search", &all, Some(body))
    };
    post(&strict, b"nonsense=1").expect_error(400);
    let lenient = post(&[], b"nonsense=1");
    lenient.expect(200);
    assert_eq!(outcomes(&lenient.json()).len(), 1);
    server
        .send_json("POST", "Observation/_search", &json!({}))
        .expect_error(415);
    // System-level POST _search.
    let reply = server.send_raw(
        "POST",
        "_search",
        "application/x-www-form-urlencoded",
        b"_type=Observation&_total=accurate",
    );
    reply.expect(200);
    let b = reply.json();
    check_searchset(&server, &b);
    assert_eq!(b["total"], 1);
}

#[test]
fn compartment_and_everything_errors() {
    let server = Server::start();
    clinical(&server);
    // Organization defines no compartment; Foo is no type at all.
    server.get("Organization/x/Observation").expect_error(400);
    server.get("Foo/x/Observation").expect_error(404);
    server.get("Patient/p1/Foo").expect_error(404);
    server
        .get("Patient/p1/$everything?_type=Foo")
        .expect_error(400);
    server
        .get("Patient/p1/$everything?_count=1&_cursor=garbage")
        .expect_error(400);
    // A cursor of one patient's $everything does not page another's.
    let b = search(&server, "Patient/p1/$everything?_count=1");
    let next = link(&b, "next").expect("a next link");
    let cursor = next.split_once("_cursor=").unwrap().1;
    server
        .get(&format!("Patient/p2/$everything?_count=1&_cursor={cursor}"))
        .expect_error(400);
    // $everything is a Patient operation.
    let r = server.get("Observation/o1/$everything");
    assert!(matches!(r.status, 400 | 404), "{} {}", r.status, r.text());
}

#[test]
fn next_links_keep_every_result_parameter() {
    let server = Server::start();
    for i in 0..5 {
        put(
            &server,
            patient(&format!("p{i}"), "Keep", "K", "male", None),
        );
        put(
            &server,
            observation(
                &format!("o{i}"),
                Some(&format!("Patient/p{i}")),
                "K",
                json!({}),
            ),
        );
    }
    let mut url =
        "Observation?code=K&_include=Observation:subject&_elements=status&_count=2&_total=accurate"
            .to_owned();
    let mut matches = Vec::new();
    let mut pages = 0;
    loop {
        let b = search(&server, &url);
        pages += 1;
        assert_eq!(b["total"], 5, "page {pages}: {b}");
        let page = entries(&b, "match");
        // Each page includes the subjects of its own matches.
        let mut expected: Vec<String> = page
            .iter()
            .map(|o| format!("Patient/p{}", o.trim_start_matches("Observation/o")))
            .collect();
        expected.sort();
        let mut included = entries(&b, "include");
        included.sort();
        assert_eq!(included, expected, "page {pages}: {b}");
        for e in b["entry"].as_array().unwrap() {
            if e["search"]["mode"] == "match" {
                assert!(e["resource"].get("code").is_none(), "_elements kept: {e}");
                assert_eq!(e["resource"]["status"], "final");
            }
        }
        matches.extend(page);
        match link(&b, "next") {
            Some(n) => url = n,
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    matches.sort();
    assert_eq!(
        matches,
        [
            "Observation/o0",
            "Observation/o1",
            "Observation/o2",
            "Observation/o3",
            "Observation/o4"
        ]
    );
}
