//! Search over HTTP (FHIR R4 search.html), part 2: chains and reverse chains,
//! `_include`/`_revinclude`, `_sort`, paging through `next` links while the data changes,
//! `_total`, `_summary` and `_elements`.

mod common;
mod search_support;

use common::Server;
use search_support::*;
use serde_json::json;

// ---------------------------------------------------------------------------------------
// Chains, reverse chains, includes, sorting

#[test]
fn chains_and_reverse_chains() {
    let server = Server::start();
    clinical(&server);
    assert_eq!(
        ids(&server, "Observation?subject:Patient.name=alpha"),
        ["o1"]
    );
    assert_eq!(ids(&server, "Observation?subject.family=beta"), ["o2"]);
    assert_eq!(ids(&server, "Observation?patient.gender=female"), ["o1"]);
    // Depth 2: Observation → Encounter → Patient.
    assert_eq!(
        ids(&server, "Observation?encounter.subject.gender=female"),
        ["o-enc"]
    );
    assert!(ids(&server, "Observation?encounter.subject.gender=male").is_empty());
    // _has: patients with an observation of code A.
    assert_eq!(
        ids(&server, "Patient?_has:Observation:patient:code=A"),
        ["p1"]
    );
    assert_eq!(
        ids(&server, "Patient?_has:Observation:patient:code=A,B"),
        ["p1", "p2"]
    );
    assert!(ids(&server, "Patient?_has:Observation:patient:code=C").is_empty());
    assert_eq!(
        ids(&server, "Patient?_has:Encounter:subject:status=finished"),
        ["p1"]
    );
}

#[test]
fn include_iterate_and_revinclude() {
    let server = Server::start();
    clinical(&server);

    let b = search(&server, "Observation?code=A,B&_include=Observation:subject");
    let mut matches = entries(&b, "match");
    matches.sort();
    assert_eq!(matches, ["Observation/o1", "Observation/o2"]);
    let mut included = entries(&b, "include");
    included.sort();
    assert_eq!(included, ["Patient/p1", "Patient/p2"]);

    // Without :iterate only the matches' own references are followed.
    let b = search(&server, "Observation?code=C&_include=Observation:encounter");
    assert_eq!(entries(&b, "match"), ["Observation/o-enc"]);
    assert_eq!(entries(&b, "include"), ["Encounter/e1"]);
    let b = search(
        &server,
        "Observation?code=C&_include=Observation:encounter&_include:iterate=Encounter:subject",
    );
    assert_eq!(entries(&b, "match"), ["Observation/o-enc"]);
    let mut included = entries(&b, "include");
    included.sort();
    assert_eq!(included, ["Encounter/e1", "Patient/p1"]);

    let b = search(&server, "Patient?_id=p1&_revinclude=Observation:subject");
    assert_eq!(entries(&b, "match"), ["Patient/p1"]);
    assert_eq!(entries(&b, "include"), ["Observation/o1"]);
    let b = search(
        &server,
        "Patient?_id=p1,p2&_revinclude=Observation:subject&_revinclude=Encounter:subject",
    );
    let mut included = entries(&b, "include");
    included.sort();
    assert_eq!(
        included,
        ["Encounter/e1", "Observation/o1", "Observation/o2"]
    );
    // Includes are not counted in the total.
    let b = search(
        &server,
        "Patient?_id=p1&_revinclude=Observation:subject&_total=accurate",
    );
    assert_eq!(b["total"], 1);
}

#[test]
fn sort_on_two_keys_ascending_and_descending() {
    let server = Server::start();
    put(
        &server,
        patient("a", "Brown", "A", "male", Some("1990-01-01")),
    );
    put(
        &server,
        patient("b", "Adams", "B", "male", Some("1970-01-01")),
    );
    put(
        &server,
        patient("c", "Brown", "C", "male", Some("1960-01-01")),
    );
    put(
        &server,
        patient("d", "Clark", "D", "male", Some("1980-01-01")),
    );
    let order = |q: &str| -> Vec<String> {
        entries(&search(&server, q), "match")
            .into_iter()
            .map(|t| t.split_once('/').unwrap().1.to_owned())
            .collect()
    };
    assert_eq!(
        order("Patient?_sort=family,birthdate"),
        ["b", "c", "a", "d"]
    );
    assert_eq!(
        order("Patient?_sort=family,-birthdate"),
        ["b", "a", "c", "d"]
    );
    assert_eq!(
        order("Patient?_sort=-family,birthdate"),
        ["d", "c", "a", "b"]
    );
    assert_eq!(order("Patient?_sort=-birthdate"), ["a", "d", "b", "c"]);
    // Sorted paging keeps the order across pages.
    let mut all = Vec::new();
    let mut url = "Patient?_sort=family,-birthdate&_count=1".to_owned();
    loop {
        let b = search(&server, &url);
        all.extend(entries(&b, "match"));
        match link(&b, "next") {
            Some(n) => url = n,
            None => break,
        }
        assert!(all.len() < 10, "paging does not end");
    }
    assert_eq!(all, ["Patient/b", "Patient/a", "Patient/c", "Patient/d"]);
}

// ---------------------------------------------------------------------------------------
// Paging, totals, summaries

#[test]
fn paging_follows_next_links_while_resources_are_created() {
    let server = Server::start();
    let mut originals = Vec::new();
    for i in 0..10 {
        originals.push(server.create_id(&json!({
            "resourceType": "Patient",
            "name": [{"family": "Page"}],
            "birthDate": format!("19{:02}", 50 + i),
        })));
    }
    let mut seen = Vec::new();
    let mut url = "Patient?family=page&_count=3".to_owned();
    let mut pages = 0;
    loop {
        let b = search(&server, &url);
        let page = entries(&b, "match");
        assert!(page.len() <= 3, "a page holds at most _count matches: {b}");
        seen.extend(page);
        pages += 1;
        // Two more matching resources appear between every page.
        for _ in 0..2 {
            server.create_id(&json!({"resourceType": "Patient", "name": [{"family": "Page"}]}));
        }
        match link(&b, "next") {
            Some(n) => {
                assert!(n.starts_with(&server.base), "next link is absolute: {n}");
                assert!(n.contains("_cursor="), "{n}");
                url = n;
            }
            None => break,
        }
        assert!(pages < 50, "paging does not end");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a resource came twice: {seen:?}");
    for id in &originals {
        assert!(
            seen.contains(&format!("Patient/{id}")),
            "Patient/{id} was skipped; saw {seen:?}"
        );
    }
    assert!(pages >= 4, "10 matches at 3 a page take at least 4 pages");
}

#[test]
fn a_tampered_or_foreign_cursor_is_a_400() {
    let server = Server::start();
    for i in 0..4 {
        put(
            &server,
            patient(&format!("p{i}"), "Cursor", "C", "male", None),
        );
    }
    put(&server, observation("o1", None, "A", json!({})));
    let b = search(&server, "Patient?family=cursor&_count=2");
    let next = link(&b, "next").expect("a next link");
    let (head, cursor) = next.split_once("_cursor=").unwrap();
    let cursor = cursor.split('&').next().unwrap();
    // The cursor works as given.
    search(&server, &next);

    // One character changed.
    let mut chars: Vec<char> = cursor.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    server
        .get(&format!("{head}_cursor={tampered}"))
        .expect_error(400);
    // Garbage.
    server
        .get("Patient?family=cursor&_count=2&_cursor=not-a-cursor")
        .expect_error(400);
    // A cursor from another query.
    server
        .get(&format!("Patient?family=other&_count=2&_cursor={cursor}"))
        .expect_error(400);
    server
        .get(&format!("Observation?_count=2&_cursor={cursor}"))
        .expect_error(400);
    // The same parameters on another type or compartment are another search: a cursor
    // carried over would silently skip that search's results before its position.
    let b = search(&server, "Patient?_count=2");
    let next = link(&b, "next").expect("a next link");
    let cursor = next.split_once("_cursor=").unwrap().1;
    server
        .get(&format!("Observation?_count=2&_cursor={cursor}"))
        .expect_error(400);
    server
        .get(&format!("?_type=Observation&_count=2&_cursor={cursor}"))
        .expect_error(400);
}

#[test]
fn total_summary_and_elements() {
    let server = Server::start();
    for i in 0..5 {
        let mut p = patient(&format!("p{i}"), "Sum", "S", "female", Some("2000-01-01"));
        p["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Patient</div>"});
        put(&server, p);
    }
    put(&server, patient("other", "Other", "O", "male", None));

    let b = search(&server, "Patient?family=sum&_total=accurate&_count=2");
    assert_eq!(b["total"], 5);
    assert_eq!(entries(&b, "match").len(), 2);

    let b = search(&server, "Patient?family=sum&_summary=count");
    assert_eq!(b["total"], 5);
    assert!(
        b["entry"].as_array().is_none_or(|e| e.is_empty()),
        "_summary=count has no entries: {b}"
    );

    let b = search(&server, "Patient?_id=p1&_summary=data");
    let r = &b["entry"][0]["resource"];
    assert!(r.get("text").is_none(), "_summary=data removes text: {r}");
    assert_eq!(r["gender"], "female");

    let b = search(&server, "Patient?_id=p1&_summary=text");
    let r = &b["entry"][0]["resource"];
    assert!(r.get("text").is_some(), "{r}");
    assert!(
        r.get("gender").is_none(),
        "_summary=text keeps only text: {r}"
    );

    let b = search(&server, "Patient?family=sum&_elements=gender,birthDate");
    assert_eq!(entries(&b, "match").len(), 5);
    for e in b["entry"].as_array().unwrap() {
        let r = e["resource"].as_object().unwrap();
        let mut keys: Vec<&str> = r.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["birthDate", "gender", "id", "meta", "resourceType"],
            "{r:?}"
        );
        assert!(
            r["meta"]["tag"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["code"] == "SUBSETTED"
                    && t["system"] == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"),
            "a subsetted resource carries the SUBSETTED tag: {r:?}"
        );
    }
    // Without _elements the stored resource comes back untouched, without the tag.
    let read = server.get("Patient/p1").json();
    let b = search(&server, "Patient?_id=p1");
    assert_eq!(b["entry"][0]["resource"], read);
}

#[test]
fn include_bounds_are_reported_in_the_bundle() {
    let server = Server::start();
    // 1,003 Observations of one Patient: more than a page may include.
    let mut entries_in = vec![json!({
        "resource": {"resourceType": "Patient", "id": "cap"},
        "request": {"method": "PUT", "url": "Patient/cap"}
    })];
    for n in 0..1003 {
        entries_in.push(json!({
            "resource": {"resourceType": "Observation", "id": format!("cap{n}"), "status": "final",
                         "code": {"text": "x"}, "subject": {"reference": "Patient/cap"}},
            "request": {"method": "PUT", "url": format!("Observation/cap{n}")}
        }));
    }
    server
        .post(
            "",
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries_in}),
        )
        .expect(200);
    let capped = |b: &serde_json::Value| {
        outcomes(b)
            .iter()
            .any(|o| o.to_string().contains("Included resources were capped"))
    };
    let b = search(&server, "Patient?_id=cap&_revinclude=Observation:subject");
    assert_eq!(entries(&b, "include").len(), 1000);
    assert!(capped(&b), "the cap is not reported: {}", b["entry"][1001]);
    let b = search(
        &server,
        "Patient?_id=cap&_revinclude=Observation:subject&_count=1",
    );
    assert!(capped(&b));

    // A chain of 12 linked Patients: :iterate follows 1 + 8 rounds, then says it stopped.
    for n in 0..12 {
        let mut p = json!({"resourceType": "Patient", "id": format!("chain{n}")});
        if n < 11 {
            p["link"] = json!([{"other": {"reference": format!("Patient/chain{}", n + 1)}, "type": "seealso"}]);
        }
        put(&server, p);
    }
    let b = search(&server, "Patient?_id=chain0&_include:iterate=Patient:link");
    let mut included = entries(&b, "include");
    included.sort();
    let expected: Vec<String> = {
        let mut e: Vec<String> = (1..=9).map(|n| format!("Patient/chain{n}")).collect();
        e.sort();
        e
    };
    assert_eq!(included, expected);
    assert!(capped(&b));
    // Within the bounds, no such note.
    let b = search(&server, "Patient?_id=chain9&_include:iterate=Patient:link");
    assert_eq!(
        entries(&b, "include"),
        ["Patient/chain10", "Patient/chain11"]
    );
    assert!(!capped(&b), "{b}");
}
