//! One targeted negative test per validation rule, each asserting the exact issue code and
//! FHIRPath location, plus the positive cases the rules must not reject.

use caduceus_model::IssueCode;
use caduceus_validate::{is_valid, validate_resource};
use serde_json::{Value, json};

/// The error issues as `(code, expression)`.
fn errors(resource: &Value) -> Vec<(&'static str, String)> {
    validate_resource(resource)
        .into_iter()
        .filter(|i| i.is_error())
        .map(|i| (i.code.code(), i.expression.join(",")))
        .collect()
}

/// Asserts that validating `resource` gives exactly one error, with this code and location.
#[track_caller]
fn assert_single(resource: Value, code: IssueCode, expression: &str) {
    assert_eq!(
        errors(&resource),
        vec![(code.code(), expression.to_owned())],
        "for {resource}"
    );
}

#[track_caller]
fn assert_valid(resource: Value) {
    let issues = validate_resource(&resource);
    assert!(
        is_valid(&issues),
        "unexpected issues {issues:#?} for {resource}"
    );
}

fn patient() -> Value {
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

fn with(mut base: Value, pointer: &str, value: Value) -> Value {
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

fn without(mut base: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    if let Some(Value::Object(m)) = base.pointer_mut(parent) {
        m.shift_remove(key);
    }
    base
}

fn observation() -> Value {
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

// --- nested resources -----------------------------------------------------------------------

/// The patient with `contained` and a reference to each of them (dom-3).
fn containing(contained: Value) -> Value {
    let ids: Vec<Value> = contained
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c.get("id").and_then(Value::as_str))
                .map(|id| json!({"reference": format!("#{id}")}))
                .collect()
        })
        .unwrap_or_default();
    let mut p = with(patient(), "/contained", contained);
    if !ids.is_empty() {
        p = with(p, "/generalPractitioner", Value::Array(ids));
    }
    p
}

#[test]
fn contained_resources() {
    let contained = json!({"resourceType": "Practitioner", "id": "pr1", "active": true});
    assert_valid(containing(json!([contained.clone()])));
    // Without an id it cannot be referenced: reported once, as the missing id.
    assert_single(
        with(
            patient(),
            "/contained",
            json!([without(contained.clone(), "/id")]),
        ),
        IssueCode::Invalid,
        "Patient.contained[0]",
    );
    let nested = with(
        contained.clone(),
        "/contained",
        json!([{"resourceType": "Organization", "id": "o", "name": "O"}]),
    );
    assert_single(
        containing(json!([nested])),
        IssueCode::Invariant,
        "Patient.contained[0].contained",
    );
    assert_single(
        containing(json!([with(contained.clone(), "/foo", json!(1))])),
        IssueCode::Structure,
        "Patient.contained[0].foo",
    );
    assert_single(
        containing(json!([with(contained, "/resourceType", json!("Nope"))])),
        IssueCode::NotSupported,
        "Patient.contained[0].resourceType",
    );
}

// --- invariants of the base resources --------------------------------------------------------

#[test]
fn dom_3_contained_resources_are_referenced() {
    let org = json!({"resourceType": "Organization", "id": "o1", "name": "Acme"});
    let pr = json!({"resourceType": "Practitioner", "id": "pr1", "active": true});
    // Not referenced at all, or only by a reference to something else.
    assert_single(
        with(patient(), "/contained", json!([org.clone()])),
        IssueCode::Invariant,
        "Patient.contained[0]",
    );
    let elsewhere = with(
        with(patient(), "/contained", json!([org.clone(), pr.clone()])),
        "/managingOrganization",
        json!({"reference": "#o1"}),
    );
    assert_single(
        elsewhere.clone(),
        IssueCode::Invariant,
        "Patient.contained[1]",
    );
    let message = validate_resource(&elsewhere)
        .into_iter()
        .find(|i| i.is_error())
        .map(|i| i.diagnostics)
        .unwrap_or_default();
    assert!(message.contains("dom-3"), "{message}");
    // `#o1` must match exactly: `#o` or `#o1x` or `Organization/o1` are not references to it
    // (and a local reference to no contained resource breaks ref-1 too).
    for other in ["#o", "#o1x"] {
        let r = with(
            with(patient(), "/contained", json!([org.clone()])),
            "/managingOrganization",
            json!({"reference": other}),
        );
        assert_eq!(
            errors(&r),
            [
                ("invariant", "Patient.managingOrganization".to_owned()),
                ("invariant", "Patient.contained[0]".to_owned())
            ],
            "{other}"
        );
    }
    for other in ["Organization/o1", "o1"] {
        assert_single(
            with(
                with(patient(), "/contained", json!([org.clone()])),
                "/managingOrganization",
                json!({"reference": other}),
            ),
            IssueCode::Invariant,
            "Patient.contained[0]",
        );
    }
    // Referenced from the container, from another contained resource, from an extension.
    assert_valid(with(
        with(patient(), "/contained", json!([org.clone()])),
        "/managingOrganization",
        json!({"reference": "#o1"}),
    ));
    let chain = with(
        pr.clone(),
        "/qualification",
        json!([{"code": {"text": "x"}, "issuer": {"reference": "#o1"}}]),
    );
    assert_valid(with(
        containing(json!([chain])),
        "/contained/1",
        org.clone(),
    ));
    assert_valid(with(
        with(patient(), "/contained", json!([org.clone()])),
        "/extension/1",
        json!({"url": "http://example.org/e", "valueReference": {"reference": "#o1"}}),
    ));
    // A uri, url or canonical element equal to #id counts too.
    assert_valid(with(
        with(patient(), "/contained", json!([org.clone()])),
        "/extension/1",
        json!({"url": "http://example.org/e", "valueUri": "#o1"}),
    ));
    let questionnaire = json!({"resourceType": "Questionnaire", "id": "q1", "status": "draft"});
    let response = json!({
        "resourceType": "QuestionnaireResponse",
        "contained": [questionnaire],
        "questionnaire": "#q1",
        "status": "completed"
    });
    assert_valid(response.clone());
    assert_single(
        with(
            response,
            "/questionnaire",
            json!("http://example.org/Questionnaire/q1"),
        ),
        IssueCode::Invariant,
        "QuestionnaireResponse.contained[0]",
    );
    // A contained resource that references its container (`#`) needs no reference to it.
    let provenance_like = with(
        pr.clone(),
        "/qualification",
        json!([{"code": {"text": "x"}, "issuer": {"reference": "#"}}]),
    );
    assert_valid(with(patient(), "/contained", json!([provenance_like])));
    // ... but the container's own `#` does not cover its contained resources (and is not a
    // reference a container may make: ref-1).
    assert_eq!(
        errors(&with(
            with(patient(), "/contained", json!([org.clone()])),
            "/managingOrganization",
            json!({"reference": "#"}),
        )),
        [
            ("invariant", "Patient.managingOrganization".to_owned()),
            ("invariant", "Patient.contained[0]".to_owned())
        ]
    );
    // Each resource of a bundle is its own container.
    let entry_with = |reference: &str| {
        json!({"resource": with(
            with(patient(), "/contained", json!([org.clone()])),
            "/managingOrganization",
            json!({"reference": reference}),
        )})
    };
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [entry_with("#o1"), entry_with("#nope")]
    });
    assert_eq!(
        errors(&bundle),
        [
            (
                "invariant",
                "Bundle.entry[1].resource.managingOrganization".to_owned()
            ),
            (
                "invariant",
                "Bundle.entry[1].resource.contained[0]".to_owned()
            )
        ]
    );
}

#[test]
fn dom_4_and_dom_5_contained_meta() {
    let with_meta = |meta: Value| {
        containing(json!([{"resourceType": "Organization", "id": "o1", "name": "O", "meta": meta}]))
    };
    assert_valid(with_meta(json!({"profile": ["http://example.org/p"]})));
    assert_single(
        with_meta(json!({"versionId": "1"})),
        IssueCode::Invariant,
        "Patient.contained[0].meta.versionId",
    );
    assert_single(
        with_meta(json!({"lastUpdated": "2024-01-02T03:04:05Z"})),
        IssueCode::Invariant,
        "Patient.contained[0].meta.lastUpdated",
    );
    assert_single(
        with_meta(json!({"security": [{"system": "http://example.org", "code": "R"}]})),
        IssueCode::Invariant,
        "Patient.contained[0].meta.security",
    );
    // The container itself may have all of them.
    assert_valid(with(
        patient(),
        "/meta",
        json!({"versionId": "3", "lastUpdated": "2024-01-02T03:04:05Z",
               "security": [{"system": "http://example.org", "code": "R"}]}),
    ));
}

#[test]
fn txt_1_and_txt_2_narrative() {
    let div = |inner: &str| {
        with(
            patient(),
            "/text/div",
            json!(format!(
                "<div xmlns=\"http://www.w3.org/1999/xhtml\">{inner}</div>"
            )),
        )
    };
    assert_valid(div("<p>Peter <b>Chalmers</b>, <a href=\"#x\">more</a></p>"));
    for bad in [
        "<script>alert(1)</script>",
        "<img src=\"x\" onerror=\"alert(1)\"/>",
        "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
        "<a href=\"javascript&#58;alert(1)\">x</a>",
        "<iframe src=\"http://example.org\">x</iframe>",
        "<![CDATA[<img src=x onerror=alert(1)>]]>",
        " ",
    ] {
        assert_single(div(bad), IssueCode::Invariant, "Patient.text.div");
    }
    // Not XML, or not an XHTML div.
    for bad in [
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>x</div>",
        "<div>no namespace</div>",
    ] {
        assert_single(
            with(patient(), "/text/div", json!(bad)),
            IssueCode::Value,
            "Patient.text.div",
        );
    }
    let message = validate_resource(&div("<script>alert('Zebediah')</script>"))
        .into_iter()
        .find(|i| i.is_error())
        .map(|i| i.diagnostics)
        .unwrap_or_default();
    assert!(
        message.contains("txt-1") && message.contains("(script)") && !message.contains("Zebediah"),
        "{message}"
    );
    // Narratives of contained and bundled resources are checked too.
    let contained = json!([{"resourceType": "Organization", "id": "o1",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><form>x</form></div>"}}]);
    assert_single(
        containing(contained),
        IssueCode::Invariant,
        "Patient.contained[0].text.div",
    );
}

#[test]
fn bundle_and_parameters_resources_validate_by_their_own_type() {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:0b5c5a6e-1d8e-4f5b-9a53-4b2b1e5d6f70", "resource": patient()},
            {"resource": observation()}
        ]
    });
    assert_valid(bundle.clone());
    let bad = json!({"resource": with(observation(), "/status", json!("bogus"))});
    assert_single(
        with(bundle.clone(), "/entry/2", bad),
        IssueCode::CodeInvalid,
        "Bundle.entry[2].resource.status",
    );
    assert_single(
        with(
            bundle.clone(),
            "/entry/0/resource/resourceType",
            json!("Unknown"),
        ),
        IssueCode::NotSupported,
        "Bundle.entry[0].resource.resourceType",
    );
    // A nested resource does not need an id.
    assert_single(
        with(bundle, "/entry/1/resource/id", json!(false)),
        IssueCode::Structure,
        "Bundle.entry[1].resource.id",
    );
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "a", "valueInteger": 1},
            {"name": "b", "resource": with(patient(), "/gender", json!("m"))},
            {"name": "c", "part": [{"name": "d", "valueString": "x"}]}
        ]
    });
    assert_single(
        parameters,
        IssueCode::CodeInvalid,
        "Parameters.parameter[1].resource.gender",
    );
}

// --- extensions -----------------------------------------------------------------------------

#[test]
fn extensions_with_any_url_are_accepted_when_well_formed() {
    let nested = json!({"url": "http://example.org/race", "extension": [
        {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}},
        {"url": "text", "valueString": "White"}
    ]});
    assert_valid(with(patient(), "/extension/1", nested));
    assert_valid(with(
        patient(),
        "/name/0/extension",
        json!([{"url": "http://example.org/x", "valueBoolean": true}]),
    ));
    assert_single(
        without(patient(), "/extension/0/url"),
        IssueCode::Required,
        "Patient.extension[0].url",
    );
    assert_single(
        with(patient(), "/extension/0/valueCode", json!("x")),
        IssueCode::Invalid,
        "Patient.extension[0].valueCode",
    );
    assert_single(
        with(
            patient(),
            "/extension/0/extension",
            json!([{"url": "a", "valueString": "b"}]),
        ),
        IssueCode::Invalid,
        "Patient.extension[0]",
    );
    assert_single(
        without(patient(), "/extension/0/valueString"),
        IssueCode::Invalid,
        "Patient.extension[0]",
    );
    assert_single(
        with(patient(), "/extension/0/valueFoo", json!("x")),
        IssueCode::Structure,
        "Patient.extension[0].valueFoo",
    );
}

#[test]
fn modifier_extensions_are_refused() {
    let m = json!([{"url": "http://example.org/anything", "valueBoolean": true}]);
    assert_single(
        with(patient(), "/modifierExtension", m.clone()),
        IssueCode::Extension,
        "Patient.modifierExtension[0]",
    );
    assert_single(
        with(patient(), "/contact/0/modifierExtension", m),
        IssueCode::Extension,
        "Patient.contact[0].modifierExtension[0]",
    );
}

// --- content references and narrative -------------------------------------------------------

#[test]
fn content_references_reuse_the_referenced_structure() {
    let questionnaire = json!({
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [{"linkId": "1", "type": "group", "item": [
            {"linkId": "1.1", "type": "string", "item": [{"linkId": "1.1.1", "type": "display"}]}
        ]}]
    });
    assert_valid(questionnaire.clone());
    assert_single(
        with(questionnaire.clone(), "/item/0/item/0/item/0/foo", json!(1)),
        IssueCode::Structure,
        "Questionnaire.item[0].item[0].item[0].foo",
    );
    assert_single(
        without(questionnaire.clone(), "/item/0/item/0/linkId"),
        IssueCode::Required,
        "Questionnaire.item[0].item[0].linkId",
    );
    assert_single(
        with(questionnaire, "/item/0/item/0/type", json!("bogus")),
        IssueCode::CodeInvalid,
        "Questionnaire.item[0].item[0].type",
    );
    let value_set = json!({
        "resourceType": "ValueSet",
        "status": "active",
        "compose": {
            "include": [{"system": "http://loinc.org"}],
            "exclude": [{"system": "http://loinc.org", "concept": [{"code": "1-8"}], "foo": 1}]
        }
    });
    assert_single(
        value_set,
        IssueCode::Structure,
        "ValueSet.compose.exclude[0].foo",
    );
}

#[test]
fn narrative() {
    assert_single(
        without(patient(), "/text/div"),
        IssueCode::Required,
        "Patient.text.div",
    );
    assert_single(
        with(patient(), "/text/status", json!("bogus")),
        IssueCode::CodeInvalid,
        "Patient.text.status",
    );
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
