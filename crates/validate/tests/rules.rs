//! One targeted negative test per validation rule, each asserting the exact issue code and
//! FHIRPath location, plus the positive cases the rules must not reject: resource level,
//! unknown elements, JSON shapes, cardinality, primitive formats, choices, bindings,
//! privacy and limits. Nested resources, base invariants, extensions and content
//! references are in `rules_nested.rs`.

mod rules_support;

use caduceus_model::IssueCode;
use caduceus_validate::validate_resource;
use rules_support::*;
use serde_json::{Value, json};

#[test]
fn valid_resources_have_no_errors() {
    assert_valid(patient());
    assert_valid(observation());
    assert!(validate_resource(&patient()).is_empty());
}

// --- resource level -------------------------------------------------------------------------

#[test]
fn a_resource_must_be_an_object() {
    assert_single(json!(["Patient"]), IssueCode::Structure, "Resource");
    assert_single(json!("Patient"), IssueCode::Structure, "Resource");
}

#[test]
fn resource_type_must_be_known() {
    assert_single(
        json!({"id": "x"}),
        IssueCode::Required,
        "Resource.resourceType",
    );
    assert_single(
        json!({"resourceType": "Patientt"}),
        IssueCode::NotSupported,
        "Resource.resourceType",
    );
    assert_single(
        json!({"resourceType": "DomainResource"}),
        IssueCode::NotSupported,
        "Resource.resourceType",
    );
    assert_single(
        json!({"resourceType": "HumanName"}),
        IssueCode::NotSupported,
        "Resource.resourceType",
    );
    assert_single(
        json!({"resourceType": 7}),
        IssueCode::Structure,
        "Resource.resourceType",
    );
}

#[test]
fn resource_id_must_be_a_valid_id() {
    assert_single(
        with(patient(), "/id", json!("a".repeat(65))),
        IssueCode::Value,
        "Patient.id",
    );
    assert_single(
        with(patient(), "/id", json!("has space")),
        IssueCode::Value,
        "Patient.id",
    );
    assert_valid(with(patient(), "/id", json!("A-1.b".repeat(12))));
}

// --- unknown elements -----------------------------------------------------------------------

#[test]
fn unknown_elements_are_rejected_at_every_depth() {
    assert_single(
        with(patient(), "/foo", json!(1)),
        IssueCode::Structure,
        "Patient.foo",
    );
    assert_single(
        with(patient(), "/name/0/foo", json!("x")),
        IssueCode::Structure,
        "Patient.name[0].foo",
    );
    assert_single(
        with(patient(), "/contact/0/foo", json!("x")),
        IssueCode::Structure,
        "Patient.contact[0].foo",
    );
    assert_single(
        with(patient(), "/contact/0/name/foo", json!("x")),
        IssueCode::Structure,
        "Patient.contact[0].name.foo",
    );
    // resourceType is only a property of resources.
    assert_single(
        with(patient(), "/name/0/resourceType", json!("HumanName")),
        IssueCode::Structure,
        "Patient.name[0].resourceType",
    );
}

#[test]
fn primitive_extension_siblings() {
    // `_name` only for primitives, holding id and extension only.
    assert_single(
        with(patient(), "/_foo", json!({"id": "a"})),
        IssueCode::Structure,
        "Patient._foo",
    );
    assert_single(
        with(patient(), "/_name", json!([{"id": "a"}])),
        IssueCode::Structure,
        "Patient._name",
    );
    assert_single(
        with(patient(), "/_birthDate/value", json!("1974")),
        IssueCode::Structure,
        "Patient.birthDate.value",
    );
    assert_single(
        with(patient(), "/_birthDate", json!([{"id": "a"}])),
        IssueCode::Structure,
        "Patient.birthDate",
    );
    // Arrays: aligned with the values, nulls where an item has no extension or no value.
    let ext = json!({"extension": [{"url": "http://example.org/e", "valueCode": "x"}]});
    assert_valid(with(
        with(patient(), "/name/0/given", json!(["Peter", null])),
        "/name/0/_given",
        json!([null, ext]),
    ));
    assert_single(
        with(patient(), "/name/0/given", json!(["Peter", null])),
        IssueCode::Structure,
        "Patient.name[0].given[1]",
    );
    assert_single(
        with(
            with(patient(), "/name/0/given", json!(["Peter", null])),
            "/name/0/_given",
            json!([null, null]),
        ),
        IssueCode::Structure,
        "Patient.name[0].given[1]",
    );
    assert_single(
        with(patient(), "/name/0/_suffix", json!([null])),
        IssueCode::Structure,
        "Patient.name[0].suffix[0]",
    );
    assert_single(
        with(patient(), "/name/0/_given", json!([ext])),
        IssueCode::Structure,
        "Patient.name[0].given",
    );
    assert_single(
        with(patient(), "/name/0/_given", json!([{"foo": 1}, null])),
        IssueCode::Structure,
        "Patient.name[0].given[0].foo",
    );
    // A primitive may have extensions and no value.
    assert_valid(with(without(patient(), "/birthDate"), "/_gender", ext));
}

// --- JSON shapes ----------------------------------------------------------------------------

#[test]
fn json_types_must_fit_the_element_type() {
    assert_single(
        with(patient(), "/active", json!("true")),
        IssueCode::Structure,
        "Patient.active",
    );
    assert_single(
        with(patient(), "/birthDate", json!(1974)),
        IssueCode::Structure,
        "Patient.birthDate",
    );
    assert_single(
        with(patient(), "/multipleBirthInteger", json!("2")),
        IssueCode::Structure,
        "Patient.multipleBirthInteger",
    );
    assert_single(
        with(patient(), "/name/0", json!("Jim")),
        IssueCode::Structure,
        "Patient.name[0]",
    );
    assert_single(
        with(observation(), "/valueQuantity/value", json!("72.5")),
        IssueCode::Structure,
        "Observation.valueQuantity.value",
    );
}

#[test]
fn arrays_versus_single_values() {
    assert_single(
        with(patient(), "/name", json!({"family": "x"})),
        IssueCode::Structure,
        "Patient.name",
    );
    assert_single(
        with(patient(), "/gender", json!(["male"])),
        IssueCode::Structure,
        "Patient.gender",
    );
    assert_single(
        with(patient(), "/contact/0/name", json!([{"family": "x"}])),
        IssueCode::Structure,
        "Patient.contact[0].name",
    );
}

#[test]
fn empty_and_null_values_are_invalid() {
    assert_single(
        with(patient(), "/name", json!([])),
        IssueCode::Structure,
        "Patient.name",
    );
    assert_single(
        with(patient(), "/name/0", json!({})),
        IssueCode::Structure,
        "Patient.name[0]",
    );
    assert_single(
        with(patient(), "/gender", Value::Null),
        IssueCode::Structure,
        "Patient.gender",
    );
    assert_single(
        with(patient(), "/name/1", Value::Null),
        IssueCode::Structure,
        "Patient.name[1]",
    );
    assert_single(
        with(patient(), "/meta", json!({})),
        IssueCode::Structure,
        "Patient.meta",
    );
}

// --- cardinality ----------------------------------------------------------------------------

#[test]
fn required_elements_at_each_present_level() {
    assert_single(
        without(observation(), "/status"),
        IssueCode::Required,
        "Observation.status",
    );
    assert_single(
        without(observation(), "/code"),
        IssueCode::Required,
        "Observation.code",
    );
    assert_single(
        without(observation(), "/component/0/code"),
        IssueCode::Required,
        "Observation.component[0].code",
    );
    assert_single(
        without(patient(), "/link/0/type"),
        IssueCode::Required,
        "Patient.link[0].type",
    );
    // Absent parents do not require their children.
    assert_valid(without(patient(), "/link"));
    // A primitive present only through its extensions counts as present.
    let ext = json!({"extension": [{"url": "http://example.org/e", "valueCode": "x"}]});
    assert_valid(with(without(observation(), "/status"), "/_status", ext));
}

// --- primitive formats ----------------------------------------------------------------------

#[test]
fn primitive_formats() {
    let cases = [
        ("/birthDate", json!("2023-02-30"), "Patient.birthDate"),
        ("/birthDate", json!("1990-1-1"), "Patient.birthDate"),
        (
            "/birthDate",
            json!("1990-01-01T10:00:00Z"),
            "Patient.birthDate",
        ),
        (
            "/meta/lastUpdated",
            json!("2024-01-02"),
            "Patient.meta.lastUpdated",
        ),
        ("/deceasedBoolean", json!(true), ""),
        (
            "/multipleBirthInteger",
            json!(2147483648_i64),
            "Patient.multipleBirthInteger",
        ),
        ("/telecom/0/rank", json!(0), "Patient.telecom[0].rank"),
        ("/name/0/family", json!(""), "Patient.name[0].family"),
        ("/name/0/family", json!(" \t "), "Patient.name[0].family"),
        ("/name/0/given/1", json!(""), "Patient.name[0].given[1]"),
        (
            "/identifier/0/system",
            json!("urn:x y"),
            "Patient.identifier[0].system",
        ),
        (
            "/meta/profile/0",
            json!("http://x y"),
            "Patient.meta.profile[0]",
        ),
        ("/text/div", json!("<p>Jim</p>"), "Patient.text.div"),
        ("/extension/0/url", json!(""), "Patient.extension[0].url"),
    ];
    for (pointer, value, expression) in cases {
        let resource = with(patient(), pointer, value);
        if expression.is_empty() {
            assert_valid(resource);
        } else {
            assert_single(resource, IssueCode::Value, expression);
        }
    }
    let decimal: Value = serde_json::from_str("72.50e1").expect("number");
    assert_valid(with(observation(), "/valueQuantity/value", decimal));
    let leading_zero: Value = serde_json::from_str("[1]").expect("number");
    assert_valid(with(
        observation(),
        "/valueQuantity/value",
        leading_zero[0].clone(),
    ));
}

// --- choices --------------------------------------------------------------------------------

#[test]
fn choice_elements() {
    assert_single(
        with(observation(), "/valueString", json!("x")),
        IssueCode::Invalid,
        "Observation.valueString",
    );
    assert_single(
        with(patient(), "/deceasedDateTime", json!("2020-01-01")),
        IssueCode::Invalid,
        "Patient.deceasedDateTime",
    );
    assert_single(
        with(
            without(observation(), "/valueQuantity"),
            "/valueMoney",
            json!({"value": 1}),
        ),
        IssueCode::Structure,
        "Observation.valueMoney",
    );
    assert_single(
        with(observation(), "/valueQuantity", json!("72")),
        IssueCode::Structure,
        "Observation.valueQuantity",
    );
    assert_valid(with(
        without(observation(), "/valueQuantity"),
        "/valuePeriod",
        json!({"start": "2020"}),
    ));
}

// --- bindings -------------------------------------------------------------------------------

#[test]
fn required_bindings_on_codes() {
    assert_single(
        with(patient(), "/gender", json!("m")),
        IssueCode::CodeInvalid,
        "Patient.gender",
    );
    assert_single(
        with(observation(), "/status", json!("done")),
        IssueCode::CodeInvalid,
        "Observation.status",
    );
    assert_single(
        with(patient(), "/telecom/0/system", json!("pager2")),
        IssueCode::CodeInvalid,
        "Patient.telecom[0].system",
    );
    // Value sets the package cannot enumerate (MIME types) are not checked.
    assert_valid(with(
        patient(),
        "/photo",
        json!([{"contentType": "image/x-anything"}]),
    ));
}

// --- privacy --------------------------------------------------------------------------------

#[test]
fn diagnostics_never_contain_the_value() {
    const SECRET: &str = "Zebediah-1974";
    let bad = [
        ("/gender", json!(SECRET)),
        ("/birthDate", json!(SECRET)),
        ("/id", json!(format!("{SECRET} x"))),
        ("/active", json!(SECRET)),
        ("/name/0/family", json!([SECRET])),
        ("/multipleBirthInteger", json!(SECRET)),
        ("/text/div", json!(SECRET)),
        ("/meta/lastUpdated", json!(SECRET)),
    ];
    for (pointer, value) in bad {
        let issues = validate_resource(&with(patient(), pointer, value));
        assert!(!issues.is_empty(), "{pointer} should be invalid");
        for issue in issues {
            assert!(
                !issue.diagnostics.contains(SECRET),
                "{pointer}: {}",
                issue.diagnostics
            );
            assert!(issue.expression.iter().all(|e| !e.contains(SECRET)));
        }
    }
}

#[test]
fn required_bindings_on_codeable_concepts() {
    let condition = json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [
            {"system": "http://snomed.info/sct", "code": "55561003"},
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
        ]},
        "subject": {"reference": "Patient/p1"}
    });
    assert_valid(condition.clone());
    assert_single(
        with(
            condition.clone(),
            "/clinicalStatus/coding/1/code",
            json!("gone"),
        ),
        IssueCode::CodeInvalid,
        "Condition.clinicalStatus",
    );
    assert_single(
        with(condition, "/clinicalStatus", json!({"text": "active"})),
        IssueCode::CodeInvalid,
        "Condition.clinicalStatus",
    );
}

#[test]
fn issues_are_capped() {
    let names: Vec<Value> = (0..1500).map(|_| json!({"foo": 1})).collect();
    let issues = validate_resource(&with(patient(), "/name", Value::Array(names)));
    assert_eq!(issues.len(), caduceus_validate::MAX_ISSUES + 1);
    let last = issues.last().expect("the note");
    assert_eq!(last.code, IssueCode::TooCostly);
    assert!(last.diagnostics.starts_with("500 further issues"));
}

#[test]
fn deep_nesting_is_walked_without_exhausting_the_stack() {
    // Deeper than serde_json's parse limit of 128, on a test thread's 2 MiB stack.
    let mut item = json!({"linkId": "leaf", "type": "display"});
    for depth in 0..200 {
        item = json!({"linkId": depth.to_string(), "type": "group", "item": [item]});
    }
    assert_valid(json!({"resourceType": "Questionnaire", "status": "draft", "item": [item]}));
}
