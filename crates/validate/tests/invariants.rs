//! The invariants of the definitions (`constraint.expression`), evaluated with FHIRPath on
//! each element instance: one violating resource per kind of context (resource, backbone
//! element, datatype, nested resource, contained resource), the key and location reported,
//! the value never.

use caduceus_validate::{is_valid, validate_resource};
use serde_json::{Value, json};

/// The error issues as `(code, expression, diagnostics)`.
fn errors(resource: &Value) -> Vec<(&'static str, String, String)> {
    validate_resource(resource)
        .into_iter()
        .filter(|i| i.is_error())
        .map(|i| (i.code.code(), i.expression.join(","), i.diagnostics.clone()))
        .collect()
}

/// Asserts exactly one error: invariant `key` at `expression`.
#[track_caller]
fn assert_invariant(resource: Value, key: &str, expression: &str) {
    let errors = errors(&resource);
    assert_eq!(errors.len(), 1, "{errors:#?} for {resource}");
    let (code, at, diagnostics) = &errors[0];
    assert_eq!(*code, "invariant");
    assert_eq!(at, expression);
    assert!(
        diagnostics.starts_with(&format!("{expression}: {key}: ")),
        "{diagnostics}"
    );
}

#[track_caller]
fn assert_valid(resource: Value) {
    let issues = validate_resource(&resource);
    assert!(is_valid(&issues), "{issues:#?} for {resource}");
}

#[test]
fn backbone_element_invariant_pat_1() {
    // pat-1: a contact has a name, telecom, address or organization.
    let mut p = json!({"resourceType": "Patient", "contact": [
        {"name": {"family": "Ok"}},
        {"gender": "female"}
    ]});
    assert_invariant(p.clone(), "pat-1", "Patient.contact[1]");
    p["contact"][1]["telecom"] = json!([{"system": "phone", "value": "555"}]);
    assert_valid(p);
}

#[test]
fn resource_invariant_obs_6_and_obs_7() {
    let base = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    let mut o = base.clone();
    o["valueString"] = json!("SECRET-VALUE");
    o["dataAbsentReason"] = json!({"text": "unknown"});
    assert_invariant(o.clone(), "obs-6", "Observation");
    // The value is never echoed.
    let all = format!("{:?}", validate_resource(&o));
    assert!(!all.contains("SECRET-VALUE"), "{all}");
    // obs-7: a component code equal to the observation's code needs no value of its own.
    let code = json!({"coding": [{"system": "http://loinc.org", "code": "8867-4"}]});
    let mut o = base.clone();
    o["code"] = code.clone();
    o["valueQuantity"] = json!({"value": 1});
    o["component"] = json!([{"code": code, "valueQuantity": {"value": 2}}]);
    assert_invariant(o, "obs-7", "Observation");
    let mut o = base;
    o["valueString"] = json!("fine");
    assert_valid(o);
}

#[test]
fn datatype_invariant_per_1() {
    let mut e = json!({"resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "period": {"start": "2020-02-01T10:00:00Z", "end": "2020-01-01T10:00:00Z"}});
    assert_invariant(e.clone(), "per-1", "Encounter.period");
    // Deep inside an array of backbone elements too.
    e["period"] = json!({"start": "2020-01-01"});
    e["participant"] = json!([{"period": {"start": "2021", "end": "2020"}}]);
    assert_invariant(e.clone(), "per-1", "Encounter.participant[0].period");
    // Different precisions that cannot be compared: empty, which passes.
    e["participant"] = json!([{"period": {"start": "2020-01-01", "end": "2020-01-01T00:00:00Z"}}]);
    assert_valid(e);
}

#[test]
fn bundle_invariants() {
    // bdl-1: total only in searchset and history bundles.
    assert_invariant(
        json!({"resourceType": "Bundle", "type": "collection", "total": 3}),
        "bdl-1",
        "Bundle",
    );
    // bdl-3: entry.request mandatory in a transaction.
    let b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
         "resource": {"resourceType": "Patient"}}
    ]});
    assert_invariant(b, "bdl-3", "Bundle");
    // bdl-8 (on Bundle.entry): no version-specific fullUrl.
    let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://x/Patient/1/_history/2", "resource": {"resourceType": "Patient"}}
    ]});
    assert_invariant(b, "bdl-8", "Bundle.entry[0]");
    // Invariants of resources inside a bundle are checked with %resource = that resource.
    let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "contact": [{"gender": "male"}]}}
    ]});
    assert_invariant(b, "pat-1", "Bundle.entry[0].resource.contact[0]");
}

#[test]
fn quantity_reference_and_corrected_invariants_qty_3_ref_1_que_7() {
    // qty-3: a code needs a system.
    let o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "valueQuantity": {"value": 1, "code": "mg"}});
    assert_invariant(o, "qty-3", "Observation.valueQuantity");
    // ref-1: a local reference must name a contained resource.
    let o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": "#nope"}});
    assert_invariant(o, "ref-1", "Observation.subject");
    // "#" (a reference to the container) only from a contained resource.
    let o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": "#"}});
    assert_invariant(o, "ref-1", "Observation.subject");
    // A contained resource may reference its container with "#" and a sibling.
    assert_valid(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "contained": [
            {"resourceType": "Patient", "id": "p", "link": [{"other": {"reference": "#r"}, "type": "seealso"}]},
            {"resourceType": "RelatedPerson", "id": "r", "patient": {"reference": "#"}}
        ],
        "subject": {"reference": "#p"}}),
    );
    // que-7 (corrected): an `exists` enableWhen takes a boolean answer.
    let mut q = json!({"resourceType": "Questionnaire", "status": "draft", "item": [
        {"linkId": "1", "type": "boolean"},
        {"linkId": "2", "type": "string", "enableWhen": [
            {"question": "1", "operator": "exists", "answerBoolean": true}]}
    ]});
    assert_valid(q.clone());
    q["item"][1]["enableWhen"][0] =
        json!({"question": "1", "operator": "exists", "answerString": "y"});
    assert_invariant(q, "que-7", "Questionnaire.item[1].enableWhen[0]");
}

#[test]
fn ele_1_id_only_elements() {
    let p = json!({"resourceType": "Patient", "name": [{"id": "n1"}]});
    let errors = errors(&p);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].1, "Patient.name[0]");
    assert!(errors[0].2.contains("ele-1"));
    let p = json!({"resourceType": "Patient", "_birthDate": {"id": "b1"}});
    assert!(errors_contain(&p, "ele-1"));
    assert_valid(
        json!({"resourceType": "Patient", "birthDate": "2000", "_birthDate": {"id": "b1"}}),
    );
}

fn errors_contain(resource: &Value, text: &str) -> bool {
    errors(resource).iter().any(|e| e.2.contains(text))
}
