//! The search interaction over HTTP (FHIR R4 search.html): every parameter type with its
//! prefixes and modifiers, chains and reverse chains, `_include`/`_revinclude`, `_sort`,
//! paging through `next` links while the data changes, `_total`, `_summary`, `_elements`,
//! system, compartment and `$everything` searches, POST `_search`, and the errors of
//! unknown, malformed and unsupported searches.

mod common;

use common::Server;
use serde_json::{Value, json};

/// PUTs a resource at its own id (update as create) and expects 201.
#[track_caller]
fn put(server: &Server, resource: Value) {
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
fn search(server: &Server, query: &str) -> Value {
    let reply = server.get(query);
    reply.expect(200);
    let b = reply.json();
    check_searchset(server, &b);
    b
}

#[track_caller]
fn check_searchset(server: &Server, b: &Value) {
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
                assert_eq!(e["fullUrl"], json!(expected), "fullUrl of {e}");
            }
            "outcome" => assert_eq!(e["resource"]["resourceType"], "OperationOutcome", "{e}"),
            other => panic!("entry.search.mode {other:?} in {e}"),
        }
    }
}

fn link(b: &Value, relation: &str) -> Option<String> {
    b["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
        .map(str::to_owned)
}

/// `Type/id` of the entries with the given search mode, in Bundle order.
fn entries(b: &Value, mode: &str) -> Vec<String> {
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
fn ids(server: &Server, query: &str) -> Vec<String> {
    let b = search(server, query);
    let mut ids: Vec<String> = entries(&b, "match")
        .into_iter()
        .map(|t| t.split_once('/').unwrap().1.to_owned())
        .collect();
    ids.sort();
    ids
}

fn outcomes(b: &Value) -> Vec<Value> {
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
fn expect_error_without(server: &Server, query: &str, status: u16, secret: &str) -> Value {
    let reply = server.get(query);
    let outcome = reply.expect_error(status);
    assert!(
        !reply.text().contains(secret),
        "the error of {query} echoes the searched value: {}",
        reply.text()
    );
    outcome
}

fn patient(id: &str, family: &str, given: &str, gender: &str, birth: Option<&str>) -> Value {
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

fn observation(id: &str, subject: Option<&str>, code: &str, extra: Value) -> Value {
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

// ---------------------------------------------------------------------------------------
// Parameter types

#[test]
fn string_parameters_match_prefixes_case_and_accent_insensitively() {
    let server = Server::start();
    put(&server, patient("a", "Johnson", "Anne", "female", None));
    put(&server, patient("b", "Éclair", "Bob", "male", None));
    put(&server, patient("c", "Johns", "Carl", "male", None));
    put(&server, patient("d", "Ajohnson", "Dora", "female", None));

    // Default: starts with, ignoring case and accents.
    assert_eq!(ids(&server, "Patient?family=john"), ["a", "c"]);
    assert_eq!(ids(&server, "Patient?family=JOHNSON"), ["a"]);
    assert_eq!(ids(&server, "Patient?family=eclair"), ["b"]);
    assert_eq!(ids(&server, "Patient?family=%C3%A9CL"), ["b"]);
    // `name` covers given names too.
    assert_eq!(ids(&server, "Patient?name=dor"), ["d"]);
    // :exact is the whole string, case and accents included.
    assert_eq!(ids(&server, "Patient?family:exact=Johnson"), ["a"]);
    assert!(ids(&server, "Patient?family:exact=johnson").is_empty());
    assert!(ids(&server, "Patient?family:exact=Eclair").is_empty());
    assert_eq!(ids(&server, "Patient?family:exact=%C3%89clair"), ["b"]);
    // :contains anywhere in the string.
    assert_eq!(
        ids(&server, "Patient?family:contains=OHNS"),
        ["a", "c", "d"]
    );
    assert_eq!(ids(&server, "Patient?family:contains=lai"), ["b"]);
    assert!(ids(&server, "Patient?family=ohns").is_empty());
    // Strings have no prefixes: `ge` is the start of a name, not a comparison.
    put(&server, patient("e", "Gerald", "Eve", "female", None));
    assert_eq!(ids(&server, "Patient?family=gera"), ["e"]);
    assert!(ids(&server, "Patient?family=gejohnson").is_empty());
}

#[test]
fn token_parameters_match_codes_systems_and_modifiers() {
    let server = Server::start();
    let with_identifier = |id: &str, system: Option<&str>, value: &str, gender: &str| {
        let mut p = patient(id, "Token", "T", gender, None);
        let mut ident = json!({"value": value});
        if let Some(s) = system {
            ident["system"] = json!(s);
        }
        p["identifier"] = json!([ident]);
        p
    };
    put(
        &server,
        with_identifier("a", Some("http://sys/one"), "v1", "female"),
    );
    put(
        &server,
        with_identifier("b", Some("http://sys/two"), "v1", "male"),
    );
    put(&server, with_identifier("c", None, "v1", "other"));
    put(
        &server,
        with_identifier("d", Some("http://sys/one"), "v2", "female"),
    );
    let mut e = patient("e", "Token", "T", "male", None);
    e.as_object_mut().unwrap().remove("gender");
    put(&server, e);

    // code alone: any system.
    assert_eq!(ids(&server, "Patient?identifier=v1"), ["a", "b", "c"]);
    // system|code
    assert_eq!(ids(&server, "Patient?identifier=http://sys/one|v1"), ["a"]);
    // |code: no system at all.
    assert_eq!(ids(&server, "Patient?identifier=|v1"), ["c"]);
    // system|: any code in the system.
    assert_eq!(
        ids(&server, "Patient?identifier=http://sys/one|"),
        ["a", "d"]
    );
    // Booleans are tokens.
    put(
        &server,
        json!({"resourceType": "Patient", "id": "act", "active": true}),
    );
    assert_eq!(ids(&server, "Patient?active=true"), ["act"]);
    assert!(ids(&server, "Patient?active=false").is_empty());
    assert_eq!(ids(&server, "Patient?gender=female"), ["a", "d"]);
    // :not also returns resources with no value at all (search.html#token).
    assert_eq!(
        ids(&server, "Patient?gender:not=male"),
        ["a", "act", "c", "d", "e"]
    );
    // _id
    assert_eq!(ids(&server, "Patient?_id=b"), ["b"]);
    assert_eq!(ids(&server, "Patient?_id=b,d"), ["b", "d"]);
    assert!(ids(&server, "Patient?_id=zz").is_empty());

    // :text searches the display or text of a coding.
    put(
        &server,
        observation(
            "o1",
            None,
            "2345-7",
            json!({"code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose [Mass/volume] in Serum"}], "text": "Blood sugar"}}),
        ),
    );
    put(&server, observation("o2", None, "789-8", json!({})));
    assert_eq!(ids(&server, "Observation?code:text=glucose"), ["o1"]);
    assert_eq!(ids(&server, "Observation?code:text=serum"), ["o1"]);
    assert_eq!(
        ids(&server, "Observation?code=http://loinc.org|789-8"),
        ["o2"]
    );
    assert_eq!(ids(&server, "Observation?code=2345-7,789-8"), ["o1", "o2"]);
}

#[test]
fn date_parameters_follow_the_prefix_range_rules() {
    let server = Server::start();
    put(
        &server,
        patient("may", "D", "M", "female", Some("1980-05-15")),
    );
    put(
        &server,
        patient("july", "D", "J", "female", Some("1980-07-01")),
    );
    put(&server, patient("ninety", "D", "N", "male", Some("1990")));

    // eq at year, month and day precision: the search range contains the value's range.
    assert_eq!(ids(&server, "Patient?birthdate=1980"), ["july", "may"]);
    assert_eq!(ids(&server, "Patient?birthdate=eq1980-05"), ["may"]);
    assert_eq!(ids(&server, "Patient?birthdate=1980-05-15"), ["may"]);
    assert!(ids(&server, "Patient?birthdate=1980-05-16").is_empty());
    // `1990` (a year) is not inside any one day of it.
    assert!(ids(&server, "Patient?birthdate=1990-01-01").is_empty());
    assert_eq!(ids(&server, "Patient?birthdate=1990"), ["ninety"]);

    assert_eq!(
        ids(&server, "Patient?birthdate=gt1980-06"),
        ["july", "ninety"]
    );
    assert_eq!(ids(&server, "Patient?birthdate=lt1980-06-01"), ["may"]);
    assert_eq!(
        ids(&server, "Patient?birthdate=ge1980-07-01"),
        ["july", "ninety"]
    );
    assert_eq!(
        ids(&server, "Patient?birthdate=le1980-07-01"),
        ["july", "may"]
    );
    assert_eq!(
        ids(&server, "Patient?birthdate=sa1980-06"),
        ["july", "ninety"]
    );
    assert_eq!(ids(&server, "Patient?birthdate=eb1980-06"), ["may"]);
    assert_eq!(ids(&server, "Patient?birthdate=ne1980"), ["ninety"]);
    // AND of two ranges.
    assert_eq!(
        ids(&server, "Patient?birthdate=ge1980-06&birthdate=lt1985"),
        ["july"]
    );

    // A Period: [2020-01-01, 2020-01-10] and [2020-02-01, 2020-02-05].
    put(
        &server,
        observation(
            "jan",
            None,
            "1",
            json!({"effectivePeriod": {"start": "2020-01-01", "end": "2020-01-10"}}),
        ),
    );
    put(
        &server,
        observation(
            "feb",
            None,
            "1",
            json!({"effectivePeriod": {"start": "2020-02-01", "end": "2020-02-05"}}),
        ),
    );
    assert_eq!(ids(&server, "Observation?date=2020-01"), ["jan"]);
    assert_eq!(ids(&server, "Observation?date=2020"), ["feb", "jan"]);
    // The period is not inside one day of it.
    assert!(ids(&server, "Observation?date=eq2020-01-05").is_empty());
    assert_eq!(ids(&server, "Observation?date=ne2020-01"), ["feb"]);
    assert_eq!(ids(&server, "Observation?date=gt2020-01-15"), ["feb"]);
    assert_eq!(ids(&server, "Observation?date=lt2020-01-05"), ["jan"]);
    // ge/le: the period overlaps the range above/below the value.
    assert_eq!(
        ids(&server, "Observation?date=ge2020-01-05"),
        ["feb", "jan"]
    );
    assert_eq!(
        ids(&server, "Observation?date=le2020-02-03"),
        ["feb", "jan"]
    );
    assert_eq!(ids(&server, "Observation?date=sa2020-01-20"), ["feb"]);
    assert_eq!(ids(&server, "Observation?date=eb2020-01-20"), ["jan"]);
    assert!(ids(&server, "Observation?date=sa2020-01-05").contains(&"feb".to_owned()));

    // Instants with time zones compare as instants.
    put(
        &server,
        observation(
            "instant",
            None,
            "2",
            json!({"effectiveDateTime": "2021-03-01T09:00:00Z"}),
        ),
    );
    let at = |q: &str| ids(&server, &format!("Observation?code=2&date={q}"));
    assert_eq!(at("2021-03-01T11:00:00%2B02:00"), ["instant"]);
    assert!(at("2021-03-01T10:00:00%2B02:00").is_empty());
    assert_eq!(at("2021-03-01T09:00:00Z"), ["instant"]);
    assert_eq!(at("gt2021-03-01T08:59:59Z"), ["instant"]);
    assert!(at("gt2021-03-01T09:00:00Z").is_empty());
    assert_eq!(at("2021-03-01"), ["instant"]);
    assert!(!ids(&server, "Observation?date=sa2020-01-05").contains(&"jan".to_owned()));
}

#[test]
fn number_and_quantity_parameters_compare_values_and_convert_ucum_units() {
    let server = Server::start();
    put(&server, patient("p", "N", "N", "male", None));
    for (id, p) in [("high", "0.8"), ("low", "0.2"), ("exact", "0.50")] {
        put(
            &server,
            json!({"resourceType": "RiskAssessment", "id": id, "status": "final",
                   "subject": {"reference": "Patient/p"},
                   "prediction": [{"probabilityDecimal": serde_json::from_str::<Value>(p).unwrap()}]}),
        );
    }
    assert_eq!(ids(&server, "RiskAssessment?probability=gt0.5"), ["high"]);
    assert_eq!(ids(&server, "RiskAssessment?probability=lt0.5"), ["low"]);
    assert_eq!(
        ids(&server, "RiskAssessment?probability=ge0.5"),
        ["exact", "high"]
    );
    assert_eq!(ids(&server, "RiskAssessment?probability=0.5"), ["exact"]);
    assert_eq!(
        ids(&server, "RiskAssessment?probability=ne0.5"),
        ["high", "low"]
    );

    let ucum = "http://unitsofmeasure.org";
    let quantity = |v: &str, code: &str| json!({"valueQuantity": {"value": serde_json::from_str::<Value>(v).unwrap(), "unit": code, "system": ucum, "code": code}});
    put(
        &server,
        observation("five-g", None, "w", quantity("5", "g")),
    );
    put(
        &server,
        observation("four-g-in-mg", None, "w", quantity("4000", "mg")),
    );
    put(
        &server,
        observation("five-ml", None, "w", quantity("5", "mL")),
    );

    // The executor compares canonical UCUM values (store-sqlite search::values).
    assert_eq!(
        ids(
            &server,
            "Observation?value-quantity=5000|http://unitsofmeasure.org|mg"
        ),
        ["five-g"]
    );
    assert_eq!(
        ids(
            &server,
            "Observation?value-quantity=gt4.5|http://unitsofmeasure.org|g"
        ),
        ["five-g"]
    );
    assert_eq!(
        ids(
            &server,
            "Observation?value-quantity=le4|http://unitsofmeasure.org|g"
        ),
        ["four-g-in-mg"]
    );
    assert_eq!(
        ids(
            &server,
            "Observation?value-quantity=5|http://unitsofmeasure.org|mL"
        ),
        ["five-ml"]
    );
    // A number without a unit matches any unit.
    assert_eq!(
        ids(&server, "Observation?value-quantity=5"),
        ["five-g", "five-ml"]
    );
    // system||code form.
    assert_eq!(ids(&server, "Observation?value-quantity=5||g"), ["five-g"]);
}

#[test]
fn reference_uri_and_missing_parameters() {
    let server = Server::start();
    put(
        &server,
        patient("p1", "R", "One", "male", Some("2001-01-01")),
    );
    put(&server, patient("p2", "R", "Two", "female", None));
    put(
        &server,
        json!({"resourceType": "Group", "id": "p1", "type": "person", "actual": true}),
    );
    put(
        &server,
        observation("o1", Some("Patient/p1"), "x", json!({})),
    );
    put(
        &server,
        observation("o2", Some("Patient/p2"), "x", json!({})),
    );
    put(&server, observation("og", Some("Group/p1"), "x", json!({})));
    put(&server, observation("none", None, "x", json!({})));

    assert_eq!(ids(&server, "Observation?subject=Patient/p1"), ["o1"]);
    assert_eq!(ids(&server, "Observation?subject=Group/p1"), ["og"]);
    // A bare id matches the id on any target type.
    assert_eq!(ids(&server, "Observation?subject=p1"), ["o1", "og"]);
    assert_eq!(ids(&server, "Observation?subject:Patient=p1"), ["o1"]);
    assert_eq!(ids(&server, "Observation?patient=p2"), ["o2"]);
    // This server's own absolute URL is the same reference.
    let absolute = format!("Observation?subject={}/Patient/p1", server.base);
    assert_eq!(ids(&server, &absolute), ["o1"]);
    assert_eq!(
        ids(&server, "Observation?subject=Patient/p1,Patient/p2"),
        ["o1", "o2"]
    );

    assert_eq!(ids(&server, "Observation?subject:missing=true"), ["none"]);
    assert_eq!(
        ids(&server, "Observation?subject:missing=false"),
        ["o1", "o2", "og"]
    );
    assert_eq!(ids(&server, "Patient?birthdate:missing=true"), ["p2"]);
    assert_eq!(ids(&server, "Patient?birthdate:missing=false"), ["p1"]);

    // uri: exact match, not a prefix.
    for (id, url) in [
        ("a", "http://example.org/vs/a"),
        ("ab", "http://example.org/vs/ab"),
    ] {
        put(
            &server,
            json!({"resourceType": "ValueSet", "id": id, "url": url, "status": "active"}),
        );
    }
    assert_eq!(ids(&server, "ValueSet?url=http://example.org/vs/a"), ["a"]);
    assert!(ids(&server, "ValueSet?url=http://example.org/vs").is_empty());
}

#[test]
fn last_updated_or_and_and() {
    let server = Server::start();
    put(&server, patient("first", "Smith", "John", "male", None));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = patient("second", "Smith", "Jane", "female", None);
    let reply = server.put("Patient/second", &second);
    reply.expect(201);
    let stamp = reply.json()["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .to_owned();
    put(&server, patient("third", "Jones", "John", "other", None));
    let enc = |s: &str| s.replace('+', "%2B");

    let since = ids(&server, &format!("Patient?_lastUpdated=ge{}", enc(&stamp)));
    assert_eq!(since, ["second", "third"]);
    let before = ids(&server, &format!("Patient?_lastUpdated=lt{}", enc(&stamp)));
    assert_eq!(before, ["first"]);
    assert_eq!(
        ids(&server, "Patient?_lastUpdated=gt2000-01-01"),
        ["first", "second", "third"]
    );
    assert!(ids(&server, "Patient?_lastUpdated=lt2000-01-01").is_empty());

    // OR within one parameter, AND across repeats.
    assert_eq!(
        ids(&server, "Patient?gender=male,other"),
        ["first", "third"]
    );
    assert_eq!(ids(&server, "Patient?name=john&name=smith"), ["first"]);
    assert_eq!(
        ids(&server, "Patient?name=john,jane&family=smith"),
        ["first", "second"]
    );
    assert!(ids(&server, "Patient?gender=male&gender=female").is_empty());
}

// ---------------------------------------------------------------------------------------
// Chains, reverse chains, includes, sorting

/// p1 (female, Alpha) ← e1 ← o-enc (encounter only); p1 ← o1 (code A); p2 (male, Beta) ← o2 (code B).
fn clinical(server: &Server) {
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
    expect_error_without(
        &server,
        "Observation?code:in=http://example.org/SECRETVS",
        501,
        "SECRETVS",
    );
    expect_error_without(
        &server,
        "Observation?code-value-quantity=http://loinc.org|SECRET$5",
        501,
        "SECRET",
    );
    server.get("Observation?_contained=true").expect_error(501);
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
