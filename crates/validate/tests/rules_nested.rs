//! Validation rules of nested structures: contained resources, the base-resource invariants
//! (dom-3, dom-4, dom-5, txt-1, txt-2), resources inside Bundle and Parameters, extensions
//! and content references. Each test asserts the exact issue code and FHIRPath location.

mod rules_support;

use caduceus_model::IssueCode;
use caduceus_validate::validate_resource;
use rules_support::*;
use serde_json::{Value, json};

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
