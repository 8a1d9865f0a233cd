//! Composite extraction (tuples from the same element), `:of-type` rows on Identifiers and
//! `Reference.identifier` rows on references, over hand-made resources with known answers.

use caduceus_index::extract;
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

/// The tuples of a composite parameter, each component reduced to a short text:
/// tokens `system|code`, quantities `value unit`, dates `start..end`, strings normalised,
/// references `Type/id`, numbers their value.
fn tuples(resource: &Value, param: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = rows(resource, param)
        .into_iter()
        .map(|v| match v {
            IndexValue::Composite(parts) => parts.iter().map(short).collect(),
            other => panic!("{param}: not a composite: {other:?}"),
        })
        .collect();
    out.sort();
    out
}

fn short(v: &IndexValue) -> String {
    match v {
        IndexValue::Token { system, code, text } => {
            assert_eq!(text, &None, "tokens in tuples keep no text");
            format!(
                "{}|{}",
                system.as_deref().unwrap_or(""),
                code.as_deref().unwrap_or("")
            )
        }
        IndexValue::Quantity {
            value,
            code,
            canonical_value,
            canonical_code,
            ..
        } => format!(
            "{value} {} ({:?} {:?})",
            code.as_deref().unwrap_or(""),
            canonical_value,
            canonical_code.as_deref()
        ),
        IndexValue::Date { start, end } => format!("{start}..{end}"),
        IndexValue::String { normalized, .. } => normalized.clone(),
        IndexValue::Reference {
            target_type,
            target_id,
            ..
        } => format!(
            "{}/{}",
            target_type.as_deref().unwrap_or(""),
            target_id.as_deref().unwrap_or("")
        ),
        IndexValue::Number { value, .. } => value.to_string(),
        other => format!("{other:?}"),
    }
}

fn blood_pressure() -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
            },
            {
                "code": {"coding": [
                    {"system": "http://loinc.org", "code": "8462-4"},
                    {"system": "http://snomed.info/sct", "code": "271650006"}
                ]},
                "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "no-value"}]}
            }
        ]
    })
}

#[test]
fn component_tuples_pair_code_and_value_of_the_same_component() {
    let t = tuples(&blood_pressure(), "component-code-value-quantity");
    let pairs: Vec<(String, String)> = t
        .iter()
        .map(|t| {
            (
                t[0].clone(),
                t[1].split(' ').next().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("http://loinc.org|8462-4".to_owned(), "80".to_owned()),
            ("http://loinc.org|8480-6".to_owned(), "120".to_owned()),
            (
                "http://snomed.info/sct|271650006".to_owned(),
                "80".to_owned()
            ),
        ],
        "each coding of a component with that component's value; a component without a \
         value gives no tuple; never a code of one component with the value of another"
    );
    // The Observation itself has no value: no code-value-quantity tuple.
    assert!(tuples(&blood_pressure(), "code-value-quantity").is_empty());
    // combo covers the Observation and its components, still element by element.
    assert_eq!(
        tuples(&blood_pressure(), "combo-code-value-quantity").len(),
        3
    );
}

#[test]
fn observation_value_composites() {
    let mut o = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
        "valueQuantity": {"value": 95, "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    });
    let t = tuples(&o, "code-value-quantity");
    assert_eq!(t.len(), 1, "the concept's text alone is no code: {t:?}");
    assert_eq!(t[0][0], "http://loinc.org|2345-7");
    assert!(
        t[0][1].starts_with("95 mg/dL (Some(0.95") && t[0][1].ends_with("Some(\"g/L\"))"),
        "canonical units are kept: {}",
        t[0][1]
    );

    o.as_object_mut().unwrap().remove("valueQuantity");
    o["valueCodeableConcept"] =
        json!({"coding": [{"system": "http://snomed.info/sct", "code": "260385009"}]});
    assert_eq!(
        tuples(&o, "code-value-concept"),
        vec![vec![
            "http://loinc.org|2345-7".to_owned(),
            "http://snomed.info/sct|260385009".to_owned()
        ]]
    );
    assert!(tuples(&o, "code-value-quantity").is_empty());

    o.as_object_mut().unwrap().remove("valueCodeableConcept");
    o["valueDateTime"] = json!("2024-02-03");
    match tuples(&o, "code-value-date").as_slice() {
        [t] => {
            let (s, e) = t[1].split_once("..").unwrap();
            let (s, e): (i64, i64) = (s.parse().unwrap(), e.parse().unwrap());
            assert_eq!(e - s, 86_400_000_000, "a day");
        }
        other => panic!("{other:?}"),
    }

    o.as_object_mut().unwrap().remove("valueDateTime");
    o["valueString"] = json!("Négatif");
    assert_eq!(
        tuples(&o, "code-value-string"),
        vec![vec![
            "http://loinc.org|2345-7".to_owned(),
            "negatif".to_owned()
        ]]
    );
}

#[test]
fn use_context_and_group_composites() {
    let vs = json!({
        "resourceType": "ValueSet",
        "status": "active",
        "useContext": [
            {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "focus"},
             "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "1234"}]}},
            {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
             "valueQuantity": {"value": 18, "system": "http://unitsofmeasure.org", "code": "a"}}
        ]
    });
    let ctx = "http://terminology.hl7.org/CodeSystem/usage-context-type";
    assert_eq!(
        tuples(&vs, "context-type-value"),
        vec![vec![
            format!("{ctx}|focus"),
            "http://snomed.info/sct|1234".to_owned()
        ]]
    );
    let q = tuples(&vs, "context-type-quantity");
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0][0], format!("{ctx}|age"));

    let g = json!({
        "resourceType": "Group",
        "type": "person",
        "actual": true,
        "characteristic": [
            {"code": {"coding": [{"system": "http://x", "code": "smoker"}]}, "valueBoolean": true, "exclude": false},
            {"code": {"coding": [{"system": "http://x", "code": "colour"}]},
             "valueCodeableConcept": {"coding": [{"system": "http://x", "code": "blue"}]}, "exclude": false}
        ]
    });
    assert_eq!(
        tuples(&g, "characteristic-value"),
        vec![
            vec!["http://x|colour".to_owned(), "http://x|blue".to_owned()],
            vec!["http://x|smoker".to_owned(), "|true".to_owned()],
        ]
    );
}

#[test]
fn document_reference_relationship_pairs_target_and_code() {
    let d = json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [{"attachment": {"url": "http://x/doc"}}],
        "relatesTo": [
            {"code": "replaces", "target": {"reference": "DocumentReference/old"}},
            {"code": "appends", "target": {"reference": "DocumentReference/other"}}
        ]
    });
    // Components in the order of the definition: relatesto (reference), relation (token).
    assert_eq!(
        tuples(&d, "relationship"),
        vec![
            vec!["DocumentReference/old".to_owned(), "|replaces".to_owned()],
            vec!["DocumentReference/other".to_owned(), "|appends".to_owned()],
        ]
    );
}

#[test]
fn molecular_sequence_coordinates_have_three_components() {
    let m = json!({
        "resourceType": "MolecularSequence",
        "coordinateSystem": 0,
        "referenceSeq": {
            "chromosome": {"coding": [{"system": "http://chr", "code": "1"}]},
            "windowStart": 100,
            "windowEnd": 200
        },
        "variant": [{"start": 120, "end": 121}, {"start": 150, "end": 152}]
    });
    assert_eq!(
        tuples(&m, "chromosome-window-coordinate"),
        vec![vec![
            "http://chr|1".to_owned(),
            "100".to_owned(),
            "200".to_owned()
        ]]
    );
    // `%resource` in a component reaches the sequence from each variant.
    assert_eq!(
        tuples(&m, "chromosome-variant-coordinate"),
        vec![
            vec![
                "http://chr|1".to_owned(),
                "120".to_owned(),
                "121".to_owned()
            ],
            vec![
                "http://chr|1".to_owned(),
                "150".to_owned(),
                "152".to_owned()
            ],
        ]
    );
}

#[test]
fn identifiers_give_type_and_value_pairs_for_of_type() {
    let v2 = "http://terminology.hl7.org/CodeSystem/v2-0203";
    let p = json!({
        "resourceType": "Patient",
        "identifier": [
            {"system": "urn:mrn", "value": "A1",
             "type": {"coding": [{"system": v2, "code": "MR"}, {"system": "http://local", "code": "chart"}], "text": "MRN"}},
            {"system": "urn:ssn", "value": "B2", "type": {"text": "no coding"}},
            {"type": {"coding": [{"system": v2, "code": "DL"}]}}
        ]
    });
    let mut composites = Vec::new();
    let mut plain = Vec::new();
    for v in rows(&p, "identifier") {
        match v {
            IndexValue::Composite(parts) => {
                composites.push(parts.iter().map(short).collect::<Vec<_>>())
            }
            IndexValue::Token { system, code, .. } => plain.push((system, code)),
            other => panic!("{other:?}"),
        }
    }
    composites.sort();
    assert_eq!(
        composites,
        vec![
            vec!["http://local|chart".to_owned(), "urn:mrn|A1".to_owned()],
            vec![format!("{v2}|MR"), "urn:mrn|A1".to_owned()],
        ],
        "one pair per type coding, only for identifiers with a value"
    );
    assert_eq!(plain.len(), 3, "the plain identifier tokens are unchanged");
}

#[test]
fn references_give_their_identifier_as_a_token() {
    let o = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/p1", "identifier": {"system": "urn:mrn", "value": "A1"}},
        "performer": [{"identifier": {"system": "urn:npi", "value": "999"}, "display": "Dr"}]
    });
    let subject = rows(&o, "subject");
    assert_eq!(subject.len(), 2, "{subject:?}");
    assert!(matches!(&subject[0], IndexValue::Reference { target_id: Some(id), .. } if id == "p1"));
    assert_eq!(
        subject[1],
        IndexValue::Token {
            system: Some("urn:mrn".into()),
            code: Some("A1".into()),
            text: None
        }
    );
    // A logical reference (identifier only) gives the token alone.
    assert_eq!(
        rows(&o, "performer"),
        vec![IndexValue::Token {
            system: Some("urn:npi".into()),
            code: Some("999".into()),
            text: None
        }]
    );
}
