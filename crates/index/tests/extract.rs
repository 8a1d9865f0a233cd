//! Index extraction over hand-made resources with known answers, and over every official
//! example and Synthea resource (when `../shared` is present) with no evaluation errors.

use caduceus_index::{compile_errors, extract};
use caduceus_store::index::{IndexRow, IndexValue};
use serde_json::{Value, json};

fn rows(resource: &Value, param: &str) -> Vec<IndexValue> {
    let out = extract(resource);
    assert!(
        out.failed_params.is_empty(),
        "failed: {:?}",
        out.failed_params
    );
    out.rows
        .into_iter()
        .filter(|r: &IndexRow| r.param == param)
        .map(|r| r.value)
        .collect()
}

fn token(system: Option<&str>, code: Option<&str>, text: Option<&str>) -> IndexValue {
    IndexValue::Token {
        system: system.map(Into::into),
        code: code.map(Into::into),
        text: text.map(Into::into),
    }
}

#[test]
fn every_official_expression_parses() {
    assert_eq!(compile_errors(), Vec::new());
}

#[test]
fn patient_parameters() {
    let p = json!({
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:mrn", "value": "12345", "type": {"text": "Medical Record"}}],
        "name": [{"family": "Müller", "given": ["Zoë", "Ann"], "prefix": ["Dr"]}],
        "telecom": [{"system": "phone", "value": "555-0101"}],
        "gender": "female",
        "birthDate": "1974-12-25",
        "address": [{"line": ["1 Main St"], "city": "Springfield", "postalCode": "01234"}],
        "generalPractitioner": [{"reference": "Practitioner/doc-1"}],
        "active": true
    });
    let family = rows(&p, "family");
    assert_eq!(
        family,
        vec![IndexValue::String {
            normalized: "muller".into(),
            exact: "Müller".into()
        }]
    );
    let name: Vec<String> = rows(&p, "name")
        .into_iter()
        .map(|v| match v {
            IndexValue::String { normalized, .. } => normalized,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(name, ["muller", "zoe", "ann", "dr"]);
    assert_eq!(rows(&p, "gender"), vec![token(None, Some("female"), None)]);
    assert_eq!(rows(&p, "active"), vec![token(None, Some("true"), None)]);
    assert_eq!(
        rows(&p, "identifier"),
        vec![token(
            Some("urn:mrn"),
            Some("12345"),
            Some("medical record")
        )]
    );
    assert_eq!(
        rows(&p, "phone"),
        vec![token(Some("phone"), Some("555-0101"), None)]
    );
    assert_eq!(rows(&p, "address-city").len(), 1);
    assert_eq!(rows(&p, "address").len(), 3, "line, city and postal code");
    match rows(&p, "birthdate").as_slice() {
        [IndexValue::Date { start, end }] => assert_eq!(end - start, 86_400_000_000),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rows(&p, "general-practitioner"),
        vec![IndexValue::Reference {
            target_type: Some("Practitioner".into()),
            target_id: Some("doc-1".into()),
            version: None,
            url: None
        }]
    );
    assert!(
        rows(&p, "_id").is_empty(),
        "_id is searched on the resource id, not on rows"
    );
}

#[test]
fn observation_parameters() {
    let o = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}], "text": "Glucose SerPl-mCnc"},
        "subject": {"reference": "http://example.org/fhir/Patient/p1/_history/2"},
        "effectivePeriod": {"start": "2024-01-01T10:00:00Z"},
        "valueQuantity": {"value": 95.0, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    });
    assert_eq!(
        rows(&o, "code"),
        vec![
            token(Some("http://loinc.org"), Some("2345-7"), Some("glucose")),
            // The concept's own text, for `:text`.
            token(None, None, Some("glucose serpl-mcnc")),
        ]
    );
    match rows(&o, "subject").as_slice() {
        [
            IndexValue::Reference {
                target_type,
                target_id,
                version,
                url,
            },
        ] => {
            assert_eq!(target_type.as_deref(), Some("Patient"));
            assert_eq!(target_id.as_deref(), Some("p1"));
            assert_eq!(version.as_deref(), Some("2"));
            assert!(
                url.as_deref()
                    .is_some_and(|u| u.starts_with("http://example.org/"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rows(&o, "patient").len(),
        1,
        "subject resolves to a Patient"
    );
    match rows(&o, "date").as_slice() {
        [IndexValue::Date { end, .. }] => assert_eq!(*end, i64::MAX, "an open period runs on"),
        other => panic!("{other:?}"),
    }
    match rows(&o, "value-quantity").as_slice() {
        [
            IndexValue::Quantity {
                value,
                low,
                high,
                canonical_value,
                canonical_code,
                ..
            },
        ] => {
            assert_eq!(*value, 95.0);
            assert!(
                (high - low - 0.1).abs() < 1e-9,
                "95.0 has one decimal: {low}..{high}"
            );
            assert!((canonical_value.unwrap() - 0.95).abs() < 1e-9);
            assert_eq!(canonical_code.as_deref(), Some("g/L"));
        }
        other => panic!("{other:?}"),
    }
}

fn shared() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: ../shared not present");
        None
    }
}

/// Every resource of every Synthea bundle extracts with no failing expression.
#[test]
fn synthea_extracts_without_errors() {
    let Some(shared) = shared() else { return };
    let mut failures = Vec::new();
    let mut resources = 0;
    let mut total_rows = 0;
    for entry in std::fs::read_dir(shared.join("fhir/synthea")).unwrap() {
        let bundle: Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        for e in bundle["entry"].as_array().unwrap() {
            let out = extract(&e["resource"]);
            resources += 1;
            total_rows += out.rows.len();
            for p in out.failed_params {
                failures.push(format!("{}.{p}", e["resource"]["resourceType"]));
            }
        }
    }
    failures.sort();
    failures.dedup();
    assert!(
        failures.is_empty(),
        "expressions failing on Synthea: {failures:?}"
    );
    assert!(
        total_rows > resources * 3,
        "{total_rows} rows for {resources} resources"
    );
}

/// Every official example extracts; expressions that fail on some example are listed.
#[test]
fn official_examples_extract_without_errors() {
    let Some(shared) = shared() else { return };
    let file = std::fs::File::open(shared.join("fhir/hl7.fhir.r4.examples-4.0.1.tgz")).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut failures = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if !path.ends_with(".json") || path.contains("package.json") || path.contains(".index.json")
        {
            continue;
        }
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut text).unwrap();
        let Ok(resource) = serde_json::from_slice::<Value>(&text) else {
            continue;
        };
        for p in extract(&resource).failed_params {
            failures.push(format!("{}.{p}", resource["resourceType"]));
        }
    }
    failures.sort();
    failures.dedup();
    assert!(
        failures.is_empty(),
        "expressions failing on official examples: {failures:?}"
    );
}

fn reference(target_type: &str, target_id: &str) -> IndexValue {
    IndexValue::Reference {
        target_type: Some(target_type.into()),
        target_id: Some(target_id.into()),
        version: None,
        url: None,
    }
}

#[test]
fn contained_resources_get_rows_of_their_own_type_apart() {
    let mr = json!({
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "contained": [
            {"resourceType": "Medication", "id": "med1",
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "123"}]}},
            {"resourceType": "Provenance", "id": "prov", "target": [{"reference": "#"}],
             "agent": [{"who": {"reference": "#med1"}}], "recorded": "2020-01-01T00:00:00Z"},
            {"resourceType": "Medication", "id": "med1",
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "dup"}]}},
            {"resourceType": "Medication",
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "no-id"}]}},
            {"resourceType": "NotAType", "id": "x"}
        ],
        "status": "active",
        "intent": "order",
        "medicationReference": {"reference": "#med1"},
        "subject": {"reference": "Patient/p1"},
        "requester": {"reference": "#nowhere"}
    });
    let out = extract(&mr);
    assert!(out.failed_params.is_empty(), "{:?}", out.failed_params);
    // The container's own rows: the local reference is typed and kept as `#med1`; one that
    // names no contained resource is dropped; no Medication code leaks into its rows.
    let medication: Vec<&IndexValue> = out
        .rows
        .iter()
        .filter(|r| r.param == "medication")
        .map(|r| &r.value)
        .collect();
    assert_eq!(medication, vec![&reference("Medication", "#med1")]);
    assert!(!out.rows.iter().any(|r| r.param == "requester"));
    assert!(!out.rows.iter().any(|r| matches!(&r.value,
        IndexValue::Token { code: Some(c), .. } if c == "123")));
    // One entry per indexable contained resource: first of an id, with an id, known type.
    let keys: Vec<(&str, &str)> = out
        .contained
        .iter()
        .map(|c| (c.resource_type.as_str(), c.id.as_str()))
        .collect();
    assert_eq!(keys, [("Medication", "med1"), ("Provenance", "prov")]);
    let med = &out.contained[0];
    assert!(med.rows.iter().any(|r| r.param == "code"
        && r.value == token(Some("http://snomed.info/sct"), Some("123"), None)));
    assert!(!med.rows.iter().any(|r| matches!(&r.value,
        IndexValue::Token { code: Some(c), .. } if c == "dup")));
    // Inside a contained resource `#` names the container and `#id` a sibling.
    let prov = &out.contained[1];
    let target: Vec<&IndexValue> = prov
        .rows
        .iter()
        .filter(|r| r.param == "target")
        .map(|r| &r.value)
        .collect();
    assert_eq!(target, vec![&reference("MedicationRequest", "#")]);
    let agent: Vec<&IndexValue> = prov
        .rows
        .iter()
        .filter(|r| r.param == "agent")
        .map(|r| &r.value)
        .collect();
    assert_eq!(agent, vec![&reference("Medication", "#med1")]);
}

#[test]
fn a_top_level_hash_reference_names_nothing() {
    let obs = json!({
        "resourceType": "Observation", "id": "o1", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": "#"}
    });
    assert!(rows(&obs, "subject").is_empty());
    assert!(extract(&obs).contained.is_empty());
}
