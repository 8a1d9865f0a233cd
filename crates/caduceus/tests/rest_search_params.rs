//! Search over HTTP (FHIR R4 search.html), part 1: every parameter type with its prefixes
//! and modifiers.

mod common;
mod search_support;

use common::Server;
use search_support::*;
use serde_json::{Value, json};

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
