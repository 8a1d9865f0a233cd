//! Result parameters, scope (`_type`, compartments) and options.

mod common;
use caduceus_search::{
    Contained, ContainedType, Handling, ParseOptions, ReferenceValue, SearchValue, Summary, Total,
    parse, parse_in_compartment,
};
use common::*;

fn includes(q: &caduceus_search::SearchQuery, reverse: bool) -> Vec<String> {
    let list = if reverse { &q.revincludes } else { &q.includes };
    list.iter()
        .map(|i| {
            format!(
                "{}:{}:{}{}",
                i.source_type.unwrap_or("*"),
                i.param
                    .as_ref()
                    .map(|p| format!("{p:?}"))
                    .unwrap_or("*".into()),
                i.target_type.unwrap_or("-"),
                if i.iterate { " iterate" } else { "" }
            )
        })
        .collect()
}

#[test]
fn includes_and_revincludes() {
    let q = ok(
        "MedicationRequest",
        "_include=MedicationRequest:patient&_include=MedicationRequest:requester:Practitioner\
         &_include:iterate=PractitionerRole:organization&_include:recurse=Organization:partof\
         &_include=*&_include=MedicationRequest:*\
         &_revinclude=Provenance:target&_revinclude:iterate=Observation:has-member",
    );
    assert_eq!(
        includes(&q, false),
        [
            "MedicationRequest:patient(reference@MedicationRequest):-",
            "MedicationRequest:requester(reference@MedicationRequest):Practitioner",
            "PractitionerRole:organization(reference@PractitionerRole):- iterate",
            "Organization:partof(reference@Organization):- iterate",
            "*:*:-",
            "MedicationRequest:*:-",
        ]
    );
    assert_eq!(
        includes(&q, true),
        [
            "Provenance:target(reference@Provenance):-",
            "Observation:has-member(reference@Observation):- iterate",
        ]
    );
    // A comma list is several includes.
    let q = ok(
        "Observation",
        "_include=Observation:subject,Observation:performer",
    );
    assert_eq!(q.includes.len(), 2);
}

#[test]
fn sort_keys_keep_their_order() {
    let q = ok("Patient", "_sort=-birthdate,name,_id,-_lastUpdated");
    let keys: Vec<String> = q
        .sort
        .iter()
        .map(|k| format!("{}{}", if k.descending { "-" } else { "+" }, k.param.code))
        .collect();
    assert_eq!(keys, ["-birthdate", "+name", "+_id", "-_lastUpdated"]);
    // An unknown key is dropped (lenient) and the others kept.
    let q = ok("Patient", "_sort=nope,name");
    assert_eq!(q.sort.len(), 1);
    assert_eq!(q.ignored.len(), 1);
    // Multi-type searches sort only on parameters every type has.
    let q = ok("", "_type=Patient,Practitioner&_sort=family,birthdate");
    assert_eq!(q.sort.len(), 1);
    assert_eq!(q.ignored.len(), 1);
}

#[test]
fn count_has_a_default_and_a_maximum() {
    let options = ParseOptions {
        default_count: 50,
        max_count: 200,
        ..ParseOptions::default()
    };
    let p = |query: &str| parse(&["Patient"], &decode(query), &options);
    assert_eq!(p("").map(|q| q.count), Ok(50));
    assert_eq!(p("_count=0").map(|q| q.count), Ok(0));
    assert_eq!(p("_count=007").map(|q| q.count), Ok(7));
    let q = p("_count=5000").expect("capped");
    assert_eq!(q.count, 200);
    assert_eq!(
        show_issues(&q.ignored),
        "warning|too-costly|_count|Search parameter '_count': above the maximum page size; 200 used"
    );
    assert_eq!(
        p("_count=99999999999999999999999").map(|q| q.count),
        Ok(200)
    );
    // A default above the maximum is capped too.
    let odd = ParseOptions {
        default_count: 500,
        max_count: 100,
        ..ParseOptions::default()
    };
    assert_eq!(parse(&["Patient"], &[], &odd).map(|q| q.count), Ok(100));
}

#[test]
fn summary_elements_total_contained() {
    for (v, s) in [
        ("true", Summary::True),
        ("text", Summary::Text),
        ("data", Summary::Data),
        ("count", Summary::Count),
        ("false", Summary::False),
    ] {
        assert_eq!(ok("Patient", &format!("_summary={v}")).summary, Some(s));
    }
    for (v, t) in [
        ("none", Total::None),
        ("estimate", Total::Estimate),
        ("accurate", Total::Accurate),
    ] {
        assert_eq!(ok("Patient", &format!("_total={v}")).total, Some(t));
    }
    for (v, c) in [
        ("true", Contained::True),
        ("false", Contained::False),
        ("both", Contained::Both),
    ] {
        assert_eq!(ok("Patient", &format!("_contained={v}")).contained, Some(c));
    }
    for (v, c) in [
        ("container", ContainedType::Container),
        ("contained", ContainedType::Contained),
    ] {
        assert_eq!(
            ok("Patient", &format!("_containedType={v}")).contained_type,
            Some(c)
        );
    }
    let q = ok(
        "Observation",
        "_elements=status,code,value,Observation.subject",
    );
    assert_eq!(
        q.elements,
        ["status", "code", "value", "Observation.subject"]
    );
    let q = ok("Patient", "_elements=name,nope");
    assert_eq!(q.elements, ["name"]);
    assert_eq!(q.ignored.len(), 1);
}

#[test]
fn format_and_pretty_are_left_to_the_http_layer() {
    let q = ok("Patient", "_format=json&_pretty=true&name=x");
    assert_eq!(q.criteria.len(), 1);
    assert!(q.ignored.is_empty());
}

#[test]
fn system_level_search_scope() {
    let q = ok("", "_type=Patient,Observation,Patient");
    assert_eq!(q.types, ["Patient", "Observation"]);
    assert_eq!(
        q.type_filter.as_deref(),
        Some(&["Patient", "Observation"][..])
    );
    let q = ok("", "_lastUpdated=gt2020");
    assert_eq!(q.types.len(), 146);
    assert!(q.type_filter.is_none());
    // _text is a DomainResource parameter: not on Bundle, Binary, Parameters.
    let q = ok("", "_text=x");
    assert!(q.criteria.is_empty());
    assert_eq!(
        show_issues(&q.ignored),
        "warning|not-supported|_text|Search parameter '_text': not a known search parameter of \
         Binary, Bundle, Parameters; ignored"
    );
}

#[test]
fn compartment_searches() {
    let q = parse_in_compartment(
        "Patient",
        "123",
        &["Observation"],
        &decode("code=x"),
        &lenient(),
    )
    .expect("parses");
    let c = q.compartment.expect("compartment");
    assert_eq!(c.compartment_type, "Patient");
    assert_eq!(c.id, "123");
    assert_eq!(c.links, [("Observation", &["subject", "performer"][..])]);
    assert_eq!(q.types, ["Observation"]);
    // Every type in the compartment.
    let q = parse_in_compartment("Patient", "123", &[], &[], &lenient()).expect("parses");
    assert!(q.types.len() > 50 && q.types.contains(&"Condition"));
    // Not in the compartment, not a compartment, bad id.
    for (ct, id, ty) in [
        ("Patient", "123", "CodeSystem"),
        ("Observation", "1", "Observation"),
        ("Patient", "bad id", "Observation"),
    ] {
        let issues = parse_in_compartment(ct, id, &[ty], &[], &lenient()).expect_err("refused");
        assert_eq!(issues.len(), 1, "{ct}/{id}/{ty}");
        assert!(!issues[0].diagnostics.contains("bad id"));
    }
}

#[test]
fn unknown_searched_type_is_an_error() {
    let issues = parse(&["Nope"], &[], &lenient()).expect_err("refused");
    assert_eq!(issues[0].code.code(), "not-supported");
}

#[test]
fn absolute_references_under_the_base_are_local() {
    let options = ParseOptions {
        base_url: Some("https://example.org/fhir/".into()),
        handling: Handling::Lenient,
        ..ParseOptions::default()
    };
    let q = parse(
        &["Observation"],
        &decode(
            "subject=https://example.org/fhir/Patient/123,https://elsewhere.org/fhir/Patient/1",
        ),
        &options,
    )
    .expect("parses");
    assert_eq!(
        q.criteria[0].values,
        [
            SearchValue::Reference(ReferenceValue::Local {
                resource_type: Some("Patient"),
                id: "123".into(),
                version: None
            }),
            SearchValue::Reference(ReferenceValue::Url {
                url: "https://elsewhere.org/fhir/Patient/1".into(),
                version: None
            }),
        ]
    );
}

#[test]
fn lenient_keeps_the_rest_of_the_query() {
    let q = ok(
        "Patient",
        "nope=1&name=x&_sort=nope&_count=3&also-nope:exact=2",
    );
    assert_eq!(q.criteria.len(), 1);
    assert_eq!(q.count, 3);
    let ignored: Vec<&str> = q.ignored.iter().map(|i| i.expression[0].as_str()).collect();
    assert_eq!(ignored, ["nope", "_sort", "also-nope:exact"]);
    assert!(q.ignored.iter().all(|i| !i.is_error()));
}
