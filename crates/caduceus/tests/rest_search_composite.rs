//! Search over HTTP: composite parameters (search.html#composite), token `:of-type` on
//! identifiers and reference `:identifier`, including a run over Synthea whose expected
//! answer is computed from the bundles' JSON, not from the index.

mod common;
mod search_support;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use common::Server;
use search_support::*;
use serde_json::{Value, json};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

fn quantity_observation(id: &str, code: &str, value: f64, unit: &str) -> Value {
    observation(
        id,
        None,
        code,
        json!({"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}),
    )
}

/// Two blood pressures: systolic/diastolic 120/80 and 150/95.
fn blood_pressure(id: &str, systolic: f64, diastolic: f64) -> Value {
    let component = |code: &str, value: f64| {
        json!({
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}
        })
    };
    observation(
        id,
        None,
        "85354-9",
        json!({"component": [component("8480-6", systolic), component("8462-4", diastolic)]}),
    )
}

#[test]
fn code_value_quantity_with_prefixes_and_units() {
    let server = Server::start();
    put(
        &server,
        quantity_observation("hr-72", "8867-4", 72.0, "/min"),
    );
    put(
        &server,
        quantity_observation("hr-95", "8867-4", 95.0, "/min"),
    );
    put(
        &server,
        quantity_observation("wt-kg", "29463-7", 80.0, "kg"),
    );
    put(
        &server,
        quantity_observation("wt-g", "29463-7", 81500.0, "g"),
    );

    let q = |v: &str| ids(&server, &format!("Observation?code-value-quantity={v}"));
    assert_eq!(q("http://loinc.org|8867-4$gt80"), ["hr-95"]);
    assert_eq!(q("http://loinc.org|8867-4$lt80"), ["hr-72"]);
    assert_eq!(q("http://loinc.org|8867-4$ge72"), ["hr-72", "hr-95"]);
    assert_eq!(q("8867-4$72"), ["hr-72"], "any code system");
    assert_eq!(q("8867-4$ne72"), ["hr-95"]);
    assert!(q("http://other|8867-4$72").is_empty(), "another system");
    // The value belongs to the code of the same Observation: 80 is a weight, not a rate.
    assert!(q("http://loinc.org|8867-4$80").is_empty());
    // Units: kg and g compare in canonical units.
    assert_eq!(
        q("http://loinc.org|29463-7$80|http://unitsofmeasure.org|kg"),
        ["wt-kg"]
    );
    assert_eq!(
        q("http://loinc.org|29463-7$gt79000|http://unitsofmeasure.org|g"),
        ["wt-g", "wt-kg"]
    );
    assert_eq!(
        q("http://loinc.org|29463-7$gt81|http://unitsofmeasure.org|kg"),
        ["wt-g"]
    );
    assert!(q("http://loinc.org|29463-7$lt79|http://unitsofmeasure.org|kg").is_empty());
    // No unit: the value as written.
    assert_eq!(q("29463-7$gt100"), ["wt-g"]);
    // OR between values, AND between repeated parameters.
    assert_eq!(
        q("8867-4$gt90,29463-7$le80|http://unitsofmeasure.org|kg"),
        ["hr-95", "wt-kg"]
    );
    assert_eq!(
        ids(
            &server,
            "Observation?code-value-quantity=8867-4$gt60&code-value-quantity=8867-4$lt80"
        ),
        ["hr-72"]
    );
    // `:missing` works on composites too.
    put(&server, observation("no-value", None, "8867-4", json!({})));
    assert_eq!(
        ids(&server, "Observation?code-value-quantity:missing=true"),
        ["no-value"]
    );
}

#[test]
fn component_composites_pair_code_and_value_of_the_same_component() {
    let server = Server::start();
    put(&server, blood_pressure("bp-normal", 120.0, 80.0));
    put(&server, blood_pressure("bp-high", 150.0, 95.0));
    let q = |v: &str| {
        ids(
            &server,
            &format!("Observation?component-code-value-quantity={v}"),
        )
    };
    assert_eq!(q("http://loinc.org|8480-6$120"), ["bp-normal"]);
    assert_eq!(q("http://loinc.org|8480-6$gt140"), ["bp-high"]);
    assert_eq!(q("8462-4$lt90"), ["bp-normal"]);
    assert_eq!(
        q("8462-4$80|http://unitsofmeasure.org|mm%5BHg%5D"),
        ["bp-normal"]
    );
    // The systolic code with the diastolic value is no match: the pair comes from one
    // component, never from two.
    assert!(q("http://loinc.org|8480-6$80").is_empty());
    assert!(q("http://loinc.org|8462-4$120").is_empty());
    assert!(q("http://loinc.org|8480-6$le95").is_empty());
    // The plain parameters, combined, do find it: that is what composites exist for.
    assert_eq!(
        ids(
            &server,
            "Observation?component-code=8480-6&component-value-quantity=80"
        ),
        ["bp-normal"]
    );
    // combo- covers the Observation and its components.
    assert_eq!(
        ids(&server, "Observation?combo-code-value-quantity=8480-6$150"),
        ["bp-high"]
    );
    assert!(ids(&server, "Observation?combo-code-value-quantity=8480-6$95").is_empty());
}

#[test]
fn code_value_concept_date_and_string() {
    let server = Server::start();
    let snomed = "http://snomed.info/sct";
    put(
        &server,
        observation(
            "covid-pos",
            None,
            "94500-6",
            json!({"valueCodeableConcept": {"coding": [{"system": snomed, "code": "10828004"}]}}),
        ),
    );
    put(
        &server,
        observation(
            "covid-neg",
            None,
            "94500-6",
            json!({"valueCodeableConcept": {"coding": [{"system": snomed, "code": "260385009"}]}}),
        ),
    );
    put(
        &server,
        observation(
            "other-pos",
            None,
            "1234-5",
            json!({"valueCodeableConcept": {"coding": [{"system": snomed, "code": "10828004"}]}}),
        ),
    );
    assert_eq!(
        ids(
            &server,
            "Observation?code-value-concept=http://loinc.org|94500-6$http://snomed.info/sct|10828004"
        ),
        ["covid-pos"]
    );
    assert_eq!(
        ids(&server, "Observation?code-value-concept=94500-6$260385009"),
        ["covid-neg"]
    );
    assert_eq!(
        ids(
            &server,
            "Observation?code-value-concept=1234-5$10828004,94500-6$10828004"
        ),
        ["covid-pos", "other-pos"]
    );
    assert!(ids(&server, "Observation?code-value-concept=1234-5$260385009").is_empty());

    put(
        &server,
        observation(
            "onset",
            None,
            "11368-8",
            json!({"valueDateTime": "2024-02-03T10:00:00Z"}),
        ),
    );
    put(
        &server,
        observation(
            "period",
            None,
            "11368-8",
            json!({"valuePeriod": {"start": "2023-05-01", "end": "2023-06-01"}}),
        ),
    );
    put(
        &server,
        observation(
            "other-date",
            None,
            "9999-9",
            json!({"valueDateTime": "2024-02-03"}),
        ),
    );
    let d = |v: &str| ids(&server, &format!("Observation?code-value-date={v}"));
    assert_eq!(d("11368-8$2024-02"), ["onset"]);
    assert_eq!(d("11368-8$2024-02-03"), ["onset"]);
    assert!(d("11368-8$2024-03").is_empty());
    assert_eq!(d("11368-8$lt2024-01-01"), ["period"]);
    assert_eq!(d("11368-8$ge2023-05-15"), ["onset", "period"]);
    assert_eq!(d("11368-8$2023"), ["period"]);
    assert_eq!(d("9999-9$2024"), ["other-date"]);

    put(
        &server,
        observation(
            "text",
            None,
            "5778-6",
            json!({"valueString": "Jaune Clair"}),
        ),
    );
    let s = |v: &str| ids(&server, &format!("Observation?code-value-string={v}"));
    assert_eq!(s("5778-6$jaune"), ["text"], "starts with, any case");
    assert_eq!(s("http://loinc.org|5778-6$JAUNE%20CL"), ["text"]);
    assert!(s("5778-6$clair").is_empty(), "a prefix, not a substring");
    assert!(s("5778-7$jaune").is_empty());
}

#[test]
fn reference_and_three_component_composites() {
    let server = Server::start();
    let doc = |id: &str, relates: Value| {
        json!({
            "resourceType": "DocumentReference", "id": id, "status": "current",
            "content": [{"attachment": {"contentType": "text/plain", "url": "http://example.org/doc"}}],
            "relatesTo": relates
        })
    };
    let mut old = doc("old", json!(null));
    old.as_object_mut().expect("object").remove("relatesTo");
    put(&server, old);
    put(
        &server,
        doc(
            "new",
            json!([{"code": "replaces", "target": {"reference": "DocumentReference/old"}}]),
        ),
    );
    put(
        &server,
        doc(
            "addendum",
            json!([{"code": "appends", "target": {"reference": "DocumentReference/old"}}]),
        ),
    );
    // Components in the definition's order: relatesto (reference), then relation (token).
    let r = |v: &str| ids(&server, &format!("DocumentReference?relationship={v}"));
    assert_eq!(r("DocumentReference/old$replaces"), ["new"]);
    assert_eq!(r("old$appends"), ["addendum"]);
    assert!(r("DocumentReference/new$replaces").is_empty());

    let sequence = |id: &str, chromosome: &str, start: i64, end: i64| {
        json!({
            "resourceType": "MolecularSequence", "id": id, "type": "dna", "coordinateSystem": 0,
            "referenceSeq": {
                "chromosome": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/chromosome-human", "code": chromosome}]},
                "genomeBuild": "GRCh38",
                "windowStart": start, "windowEnd": end
            }
        })
    };
    put(&server, sequence("s1", "1", 100, 200));
    put(&server, sequence("s2", "1", 1000, 2000));
    put(&server, sequence("s3", "2", 100, 200));
    let w = |v: &str| {
        ids(
            &server,
            &format!("MolecularSequence?chromosome-window-coordinate={v}"),
        )
    };
    assert_eq!(w("1$100$200"), ["s1"]);
    assert_eq!(w("1$ge100$le2000"), ["s1", "s2"]);
    assert_eq!(w("1$gt150$gt1500"), ["s2"]);
    assert!(w("2$1000$2000").is_empty());
    assert_eq!(w("2$lt500$lt500"), ["s3"]);
}

#[test]
fn use_context_composites_on_conformance_resources() {
    let server = Server::start();
    let usage = "http://terminology.hl7.org/CodeSystem/usage-context-type";
    let vs = |id: &str, focus: &str, age: f64| {
        json!({
            "resourceType": "ValueSet", "id": id, "status": "active",
            "useContext": [
                {"code": {"system": usage, "code": "focus"},
                 "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": focus}]}},
                {"code": {"system": usage, "code": "age"},
                 "valueQuantity": {"value": age, "system": UCUM, "code": "a"}}
            ]
        })
    };
    put(&server, vs("adult-diabetes", "73211009", 18.0));
    put(&server, vs("child-asthma", "195967001", 5.0));
    assert_eq!(
        ids(&server, "ValueSet?context-type-value=focus$73211009"),
        ["adult-diabetes"]
    );
    assert!(ids(&server, "ValueSet?context-type-value=age$73211009").is_empty());
    assert_eq!(
        ids(&server, "ValueSet?context-type-quantity=age$lt10"),
        ["child-asthma"]
    );
}

#[test]
fn identifier_of_type() {
    let server = Server::start();
    let v2 = "http://terminology.hl7.org/CodeSystem/v2-0203";
    let with = |id: &str, type_code: &str, value: &str| {
        let mut p = patient(id, "OfType", "T", "female", None);
        p["identifier"] = json!([{
            "system": format!("urn:{id}"),
            "value": value,
            "type": {"coding": [{"system": v2, "code": type_code}]}
        }]);
        p
    };
    put(&server, with("mr", "MR", "A1"));
    put(&server, with("dl", "DL", "A1"));
    put(&server, with("mr2", "MR", "B2"));
    let mut plain = patient("plain", "OfType", "T", "male", None);
    plain["identifier"] = json!([{"system": "urn:x", "value": "A1"}]);
    put(&server, plain);

    let q = |v: &str| ids(&server, &format!("Patient?identifier:of-type={v}"));
    assert_eq!(q(&format!("{v2}|MR|A1")), ["mr"]);
    assert_eq!(q(&format!("{v2}|DL|A1")), ["dl"]);
    assert_eq!(q(&format!("{v2}|MR|A1,{v2}|MR|B2")), ["mr", "mr2"]);
    assert!(q(&format!("{v2}|MR|A2")).is_empty());
    assert!(q("http://other|MR|A1").is_empty());
    // The plain token still matches every A1.
    assert_eq!(ids(&server, "Patient?identifier=A1"), ["dl", "mr", "plain"]);
    // An incomplete value is a client error that does not echo it.
    expect_error_without(
        &server,
        "Patient?identifier:of-type=MR|SECRETV",
        400,
        "SECRETV",
    );
    // Only identifiers have types.
    server.get("Patient?gender:of-type=a|b|c").expect_error(400);
}

#[test]
fn reference_identifier() {
    let server = Server::start();
    put(&server, patient("p1", "Ref", "R", "female", None));
    put(
        &server,
        observation(
            "literal-and-logical",
            None,
            "A",
            json!({"subject": {"reference": "Patient/p1", "identifier": {"system": "urn:mrn", "value": "A1"}}}),
        ),
    );
    put(
        &server,
        observation(
            "logical-only",
            None,
            "A",
            json!({"subject": {"identifier": {"system": "urn:mrn", "value": "A1"}, "display": "Someone"}}),
        ),
    );
    put(
        &server,
        observation(
            "other-system",
            None,
            "A",
            json!({"subject": {"identifier": {"system": "urn:ssn", "value": "A1"}}}),
        ),
    );
    put(
        &server,
        observation("literal-only", Some("Patient/p1"), "A", json!({})),
    );
    let q = |v: &str| ids(&server, &format!("Observation?subject:identifier={v}"));
    assert_eq!(q("urn:mrn|A1"), ["literal-and-logical", "logical-only"]);
    assert_eq!(
        q("A1"),
        ["literal-and-logical", "logical-only", "other-system"]
    );
    assert_eq!(q("urn:ssn|"), ["other-system"]);
    assert!(q("urn:mrn|A2").is_empty());
    // The literal reference is searched as before.
    assert_eq!(
        ids(&server, "Observation?subject=Patient/p1"),
        ["literal-and-logical", "literal-only"]
    );
    // `patient` is `subject.where(resolve() is Patient)`: a reference known only by its
    // identifier does not resolve to a Patient, so only the literal one is there.
    assert_eq!(
        ids(&server, "Observation?patient:identifier=urn:mrn|A1"),
        ["literal-and-logical"]
    );
}

#[test]
fn malformed_composite_values_are_400() {
    let server = Server::start();
    put(&server, quantity_observation("o", "8867-4", 72.0, "/min"));
    for query in [
        // One part for two components.
        "Observation?code-value-quantity=http://loinc.org|SECRETCODE",
        // Three parts for two components.
        "Observation?code-value-quantity=SECRETCODE$72$73",
        // A part that is not of its component's type.
        "Observation?code-value-quantity=SECRETCODE$notanumber",
        "Observation?code-value-date=SECRETCODE$yesterday",
        // Composites take no modifiers but :missing.
        "Observation?code-value-quantity:exact=SECRETCODE$72",
    ] {
        let outcome = expect_error_without(&server, query, 400, "SECRETCODE");
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{query}");
    }
    // The server answers on.
    assert_eq!(
        ids(&server, "Observation?code-value-quantity=8867-4$72"),
        ["o"]
    );
}

// ---------------------------------------------------------------------------------------
// Synthea

/// How many Synthea bundles the composite check loads (sorted by name): enough for
/// hundreds of matching Observations, few enough to stay quick.
const SYNTHEA_BUNDLES: usize = 6;

/// Every match of a search, following `next` links, as `Type/id`.
fn all_matches(server: &Server, query: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut url = query.to_owned();
    let mut pages = 0;
    loop {
        let page = search(server, &url);
        for m in entries(&page, "match") {
            assert!(out.insert(m.clone()), "{m} on two pages of {query}");
        }
        pages += 1;
        assert!(pages < 1000, "runaway paging");
        match link(&page, "next") {
            Some(next) => url = next,
            None => break,
        }
    }
    out
}

fn quantity_value(v: &Value) -> Option<f64> {
    v["value"].as_f64()
}

fn has_coding(concept: &Value, system: &str, code: &str) -> bool {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["system"] == system && c["code"] == code)
}

#[test]
fn synthea_composites_agree_with_a_scan_of_the_bundles() {
    let Some(shared) =
        common::shared_or_skip("synthea_composites_agree_with_a_scan_of_the_bundles")
    else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("fhir/synthea"))
        .expect("fhir/synthea")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.truncate(SYNTHEA_BUNDLES);

    let server = Server::start();
    // fullUrl → stored `Type/id` for every Observation, and the Observations themselves.
    let mut observations: Vec<(String, Value)> = Vec::new();
    for path in &files {
        let bundle: Value =
            serde_json::from_slice(&std::fs::read(path).expect("read")).expect("bundle JSON");
        let reply = server.post("", &bundle);
        reply.expect(200);
        let answer = reply.json();
        let sent = bundle["entry"].as_array().expect("entries");
        let got = answer["entry"].as_array().expect("answers");
        assert_eq!(sent.len(), got.len());
        let mut stored: HashMap<usize, String> = HashMap::new();
        for (i, a) in got.iter().enumerate() {
            let location = a["response"]["location"].as_str().expect("location");
            let parts: Vec<&str> = location.split('/').collect();
            let at = parts
                .iter()
                .rposition(|p| *p == "_history")
                .expect("_history");
            stored.insert(i, format!("{}/{}", parts[at - 2], parts[at - 1]));
        }
        for (i, e) in sent.iter().enumerate() {
            if e["resource"]["resourceType"] == "Observation" {
                observations.push((stored[&i].clone(), e["resource"].clone()));
            }
        }
    }

    // Body weight above 80 kg: the Observation's own code and value.
    let expected: BTreeSet<String> = observations
        .iter()
        .filter(|(_, o)| {
            has_coding(&o["code"], LOINC, "29463-7")
                && o["valueQuantity"]["code"] == "kg"
                && quantity_value(&o["valueQuantity"]).is_some_and(|v| v > 80.0)
        })
        .map(|(id, _)| id.clone())
        .collect();
    assert!(expected.len() > 10, "only {} heavy weights", expected.len());
    assert_eq!(
        all_matches(
            &server,
            "Observation?code-value-quantity=http://loinc.org|29463-7$gt80&_count=50"
        ),
        expected
    );
    // The same in grams: canonical units.
    assert_eq!(
        all_matches(
            &server,
            "Observation?code-value-quantity=http://loinc.org|29463-7$gt80000|http://unitsofmeasure.org|g&_count=50"
        ),
        expected
    );

    // Systolic pressure above 130, paired within each component of the panels.
    let expected: BTreeSet<String> = observations
        .iter()
        .filter(|(_, o)| {
            o["component"].as_array().into_iter().flatten().any(|c| {
                has_coding(&c["code"], LOINC, "8480-6")
                    && quantity_value(&c["valueQuantity"]).is_some_and(|v| v > 130.0)
            })
        })
        .map(|(id, _)| id.clone())
        .collect();
    let panels = observations
        .iter()
        .filter(|(_, o)| o["component"].is_array())
        .count();
    assert!(
        !expected.is_empty() && expected.len() < panels,
        "{} of {panels} panels have a systolic above 130",
        expected.len()
    );
    assert_eq!(
        all_matches(
            &server,
            "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt130&_count=100"
        ),
        expected
    );
}
