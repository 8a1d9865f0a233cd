//! Helpers shared by the validation rule suites (`rules.rs`, `rules_nested.rs`): running
//! the validator, asserting one issue, and building resources to mutate.
#![allow(dead_code)] // each suite uses a different part

use caduceus_model::IssueCode;
use caduceus_validate::{is_valid, validate_resource};
use serde_json::{Value, json};
/// The error issues as `(code, expression)`.
pub fn errors(resource: &Value) -> Vec<(&'static str, String)> {
    validate_resource(resource)
        .into_iter()
        .filter(|i| i.is_error())
        .map(|i| (i.code.code(), i.expression.join(",")))
        .collect()
}

/// Asserts that validating `resource` gives exactly one error, with this code and location.
#[track_caller]
pub fn assert_single(resource: Value, code: IssueCode, expression: &str) {
    assert_eq!(
        errors(&resource),
        vec![(code.code(), expression.to_owned())],
        "for {resource}"
    );
}

#[track_caller]
pub fn assert_valid(resource: Value) {
    let issues = validate_resource(&resource);
    assert!(
        is_valid(&issues),
        "unexpected issues {issues:#?} for {resource}"
    );
}

pub fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"lastUpdated": "2024-01-02T03:04:05.123Z", "profile": ["http://example.org/p"]},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jim</div>"},
        "extension": [{"url": "http://example.org/ext", "valueString": "x"}],
        "identifier": [{"system": "urn:oid:1.2.3", "value": "123"}],
        "active": true,
        "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
        "telecom": [{"system": "phone", "value": "555", "rank": 1}],
        "gender": "male",
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://example.org/time", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
        "deceasedBoolean": false,
        "multipleBirthInteger": 2,
        "contact": [{"relationship": [{"coding": [{"system": "http://example.org", "code": "N"}]}], "name": {"family": "du Marché"}}],
        "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}]
    })
}

pub fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let target = base.pointer_mut(parent).expect("parent exists");
    match target {
        Value::Object(m) => {
            m.insert(key.to_owned(), value);
        }
        Value::Array(a) => {
            let i: usize = key.parse().expect("index");
            if i < a.len() {
                a[i] = value;
            } else {
                a.push(value);
            }
        }
        _ => panic!("not a container"),
    }
    base
}

pub fn without(mut base: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    if let Some(Value::Object(m)) = base.pointer_mut(parent) {
        m.shift_remove(key);
    }
    base
}

pub fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": 72.50, "unit": "beats/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        "component": [{"code": {"text": "x"}, "valueString": "y"}]
    })
}
