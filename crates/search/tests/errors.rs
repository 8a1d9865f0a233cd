//! Errors and warnings, as a table: query → the issues, in lenient and strict handling.
//! Each issue renders as `severity|code|expression|diagnostics`; no diagnostic may contain
//! the value searched for.

mod common;
use common::*;

/// How the table entry applies.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// An error in lenient and strict handling alike.
    Both,
    /// Ignored with this warning in lenient handling; the same text, as an error, in strict.
    Ignored,
}
use Mode::*;

const CASES: &[(&str, &str, Mode, &str)] = &[
    (
        "Patient",
        "birthdate=2024-13",
        Both,
        r#"error|value|birthdate|Search parameter 'birthdate': invalid value: expected [prefix]date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]), prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "Patient",
        "birthdate=yesterday",
        Both,
        r#"error|value|birthdate|Search parameter 'birthdate': invalid value: expected [prefix]date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]), prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "Patient",
        "birthdate=xx2024",
        Both,
        r#"error|value|birthdate|Search parameter 'birthdate': invalid value: expected [prefix]date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]), prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "Patient",
        "birthdate=2024-02-30",
        Both,
        r#"error|value|birthdate|Search parameter 'birthdate': invalid value: expected [prefix]date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]), prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "Patient",
        "birthdate=2024-02-03T25:00",
        Both,
        r#"error|value|birthdate|Search parameter 'birthdate': invalid value: expected [prefix]date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]), prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "Patient",
        "birthdate=2024-02-03T04:05:06+0100",
        Both,
        r#"error|value|birthdate|Search parameter 'birthdate': invalid value: expected [prefix]date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]), prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "Patient",
        "birthdate=24-02-03",
        Both,
        r#"error|value|birthdate|Search parameter 'birthdate': invalid value: expected [prefix]date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]), prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "RiskAssessment",
        "probability=abc",
        Both,
        r#"error|value|probability|Search parameter 'probability': invalid value: expected [prefix]number, prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "RiskAssessment",
        "probability=xx5",
        Both,
        r#"error|value|probability|Search parameter 'probability': invalid value: expected [prefix]number, prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "RiskAssessment",
        "probability=5.",
        Both,
        r#"error|value|probability|Search parameter 'probability': invalid value: expected [prefix]number, prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "RiskAssessment",
        "probability=1e",
        Both,
        r#"error|value|probability|Search parameter 'probability': invalid value: expected [prefix]number, prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "RiskAssessment",
        "probability=12345678901234567890123456789012345",
        Both,
        r#"error|value|probability|Search parameter 'probability': invalid value: too many digits"#,
    ),
    (
        "RiskAssessment",
        "probability=1e99999",
        Both,
        r#"error|value|probability|Search parameter 'probability': invalid value: expected [prefix]number, prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "Observation",
        "value-quantity=5|mg",
        Both,
        r#"error|value|value-quantity|Search parameter 'value-quantity': invalid value: expected [prefix]number|[system]|[code]"#,
    ),
    (
        "Observation",
        "value-quantity=gt|http://unitsofmeasure.org|mg",
        Both,
        r#"error|value|value-quantity|Search parameter 'value-quantity': invalid value: expected [prefix]number, prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "Observation",
        "value-quantity=1|2|3|4",
        Both,
        r#"error|value|value-quantity|Search parameter 'value-quantity': invalid value: expected [prefix]number|[system]|[code]"#,
    ),
    (
        "Patient",
        "identifier=a|b|c",
        Both,
        r#"error|value|identifier|Search parameter 'identifier': invalid value: expected [system]|[code]; escape a literal | as \|"#,
    ),
    (
        "Patient",
        "identifier=|",
        Both,
        r#"error|value|identifier|Search parameter 'identifier': invalid value: expected [system]|[code] with a system or a code"#,
    ),
    (
        "Patient",
        "identifier:of-type=a|b",
        Both,
        r#"error|value|identifier:of-type|Search parameter 'identifier:of-type': invalid value: expected system|code|value for :of-type"#,
    ),
    (
        "Observation",
        "subject=Patient/bad id",
        Both,
        r#"error|value|subject|Search parameter 'subject': invalid value: the id is not a valid FHIR id"#,
    ),
    (
        "Observation",
        "subject=Nope/1",
        Both,
        r#"error|value|subject|Search parameter 'subject': invalid value: the reference names an unknown resource type"#,
    ),
    (
        "Observation",
        "subject=Medication/1",
        Both,
        r#"error|value|subject|Search parameter 'subject': invalid value: the reference's type is not a target of the parameter"#,
    ),
    (
        "Observation",
        "subject:Patient=Group/1",
        Both,
        r#"error|value|subject:Patient|Search parameter 'subject:Patient': invalid value: the reference's type differs from the type modifier"#,
    ),
    (
        "Observation",
        "subject=Patient/1/2",
        Both,
        r#"error|value|subject|Search parameter 'subject': invalid value: expected [type]/[id], [id], [type]/[id]/_history/[version] or a URL"#,
    ),
    (
        "Observation",
        "subject=Patient/1/_history/a b",
        Both,
        r#"error|value|subject|Search parameter 'subject': invalid value: the version is not a valid FHIR id"#,
    ),
    (
        "ValueSet",
        "url=http://a b",
        Both,
        r#"error|value|url|Search parameter 'url': invalid value: a URI cannot contain spaces"#,
    ),
    (
        "Observation",
        "code-value-quantity=1234",
        Both,
        r#"error|value|code-value-quantity|Search parameter 'code-value-quantity': invalid value: expected one value per component of the composite, separated by $"#,
    ),
    (
        "Observation",
        "code-value-quantity=1234$abc",
        Both,
        r#"error|value|code-value-quantity|Search parameter 'code-value-quantity': invalid value: expected [prefix]number, prefix one of eq ne gt lt ge le sa eb ap"#,
    ),
    (
        "Location",
        "near=1",
        Both,
        r#"error|value|near|Search parameter 'near': invalid value: expected latitude|longitude[|distance[|units]]"#,
    ),
    (
        "Location",
        "near=a|b",
        Both,
        r#"error|value|near|Search parameter 'near': invalid value: expected latitude|longitude[|distance[|units]]"#,
    ),
    (
        "Patient",
        "name:missing=maybe",
        Both,
        r#"error|value|name:missing|Search parameter 'name:missing': invalid value: :missing takes true or false"#,
    ),
    // modifiers
    (
        "Patient",
        "gender:exact=male",
        Both,
        r#"error|invalid|gender:exact|Search parameter 'gender:exact': the modifier ':exact' does not apply to a token parameter"#,
    ),
    (
        "Patient",
        "name:not=x",
        Both,
        r#"error|invalid|name:not|Search parameter 'name:not': the modifier ':not' does not apply to a string parameter"#,
    ),
    (
        "Patient",
        "birthdate:contains=2020",
        Both,
        r#"error|invalid|birthdate:contains|Search parameter 'birthdate:contains': the modifier ':contains' does not apply to a date parameter"#,
    ),
    (
        "Patient",
        "name:Patient=x",
        Both,
        r#"error|invalid|name:Patient|Search parameter 'name:Patient': the modifier ':Patient' does not apply to a string parameter"#,
    ),
    (
        "Observation",
        "subject:Medication=1",
        Both,
        r#"error|invalid|subject:Medication|Search parameter 'subject:Medication': the type modifier ':Medication' is not a target type of the parameter"#,
    ),
    (
        "Patient",
        "name:fuzzy=x",
        Both,
        r#"error|invalid|name:fuzzy|Search parameter 'name:fuzzy': unknown modifier"#,
    ),
    (
        "ValueSet",
        "url:contains=x",
        Both,
        r#"error|invalid|url:contains|Search parameter 'url:contains': the modifier ':contains' does not apply to a uri parameter"#,
    ),
    (
        "Observation",
        "value-quantity:text=x",
        Both,
        r#"error|invalid|value-quantity:text|Search parameter 'value-quantity:text': the modifier ':text' does not apply to a quantity parameter"#,
    ),
    (
        "Patient",
        "general-practitioner:text=x",
        Both,
        r#"error|invalid|general-practitioner:text|Search parameter 'general-practitioner:text': the modifier ':text' does not apply to a reference parameter"#,
    ),
    // chains
    (
        "Patient",
        "name.given=x",
        Both,
        r#"error|invalid|name.given|Search parameter 'name.given': only reference parameters can be chained, and 'name' is a string parameter"#,
    ),
    (
        "Observation",
        "subject.nothing=x",
        Both,
        r#"error|invalid|subject.nothing|Search parameter 'subject.nothing': 'nothing' is not a search parameter of any target type (Group, Device, Patient, Location)"#,
    ),
    (
        "Observation",
        "subject:Medication.name=x",
        Both,
        r#"error|invalid|subject:Medication.name|Search parameter 'subject:Medication.name': 'Medication' is not a target type of 'subject'"#,
    ),
    (
        "Observation",
        "subject:missing.name=x",
        Both,
        r#"error|invalid|subject:missing.name|Search parameter 'subject:missing.name': only a resource type modifier can precede a chain"#,
    ),
    (
        "Observation",
        "subject:nope.name=x",
        Both,
        r#"error|invalid|subject:nope.name|Search parameter 'subject:nope.name': unknown modifier"#,
    ),
    (
        "Observation",
        "subject:Patient.name.x=1",
        Both,
        r#"error|invalid|subject:Patient.name.x|Search parameter 'subject:Patient.name.x': only reference parameters can be chained, and 'name' is a string parameter"#,
    ),
    (
        "Patient",
        "_has:Observation=1",
        Both,
        r#"error|invalid|_has:Observation|Search parameter '_has:Observation': _has takes the form _has:[type]:[reference parameter]:[parameter]"#,
    ),
    (
        "Patient",
        "_has:Observation:patient=1",
        Both,
        r#"error|invalid|_has:Observation:patient|Search parameter '_has:Observation:patient': _has takes the form _has:[type]:[reference parameter]:[parameter]"#,
    ),
    (
        "Patient",
        "_has:Nope:patient:code=1",
        Both,
        r#"error|invalid|_has:Nope:patient:code|Search parameter '_has:Nope:patient:code': _has names an unknown resource type"#,
    ),
    (
        "Patient",
        "_has:Observation:nope:code=1",
        Both,
        r#"error|invalid|_has:Observation:nope:code|Search parameter '_has:Observation:nope:code': _has: 'nope' is not a search parameter of Observation"#,
    ),
    (
        "Patient",
        "_has:Observation:code:code=1",
        Both,
        r#"error|invalid|_has:Observation:code:code|Search parameter '_has:Observation:code:code': _has: 'code' of Observation is not a reference parameter"#,
    ),
    (
        "Patient",
        "_has:Observation:device:code=1",
        Both,
        r#"error|invalid|_has:Observation:device:code|Search parameter '_has:Observation:device:code': _has: 'device' of Observation does not refer to Patient"#,
    ),
    (
        "Patient",
        "_has:Observation:patient:nope=1",
        Both,
        r#"error|invalid|_has:Observation:patient:nope|Search parameter '_has:Observation:patient:nope': 'nope' is not a search parameter of any target type (Observation)"#,
    ),
    // unknown parameters
    (
        "Patient",
        "nope=1",
        Ignored,
        r#"warning|not-supported|nope|Search parameter 'nope': not a known search parameter of Patient; ignored"#,
    ),
    (
        "Patient",
        "nope:exact=1",
        Ignored,
        r#"warning|not-supported|nope:exact|Search parameter 'nope:exact': not a known search parameter of Patient; ignored"#,
    ),
    (
        "Patient",
        "_filter=name eq x",
        Ignored,
        r#"warning|not-supported|_filter|Search parameter '_filter': not supported (_filter); ignored"#,
    ),
    (
        "Patient",
        "_query=mine",
        Ignored,
        r#"warning|not-supported|_query|Search parameter '_query': not supported (named queries); ignored"#,
    ),
    (
        "Patient",
        "name=",
        Ignored,
        r#"warning|value|name|Search parameter 'name': the value is empty; ignored"#,
    ),
    (
        "Patient",
        "name=,,",
        Ignored,
        r#"warning|value|name|Search parameter 'name': the value is empty; ignored"#,
    ),
    (
        "Patient",
        "=x",
        Ignored,
        r#"warning|not-supported||Search parameter '': not a known search parameter of Patient; ignored"#,
    ),
    (
        "Patient,Practitioner",
        "birthdate=2020",
        Ignored,
        r#"warning|not-supported|birthdate|Search parameter 'birthdate': not a known search parameter of Practitioner; ignored"#,
    ),
    (
        "",
        "name=x",
        Ignored,
        r#"warning|not-supported|name|Search parameter 'name': not a known search parameter of 107 resource types; ignored"#,
    ),
    (
        "",
        "_type=Patient,Nope",
        Both,
        r#"error|value|_type|Search parameter '_type': invalid value: names an unknown resource type"#,
    ),
    (
        "Patient",
        "_type=Patient",
        Ignored,
        r#"warning|not-supported|_type|Search parameter '_type': not supported on a type-level search; ignored"#,
    ),
    (
        "Patient",
        "_count=10&_count=20",
        Both,
        r#"error|invalid|_count|Search parameter '_count': given more than once"#,
    ),
    (
        "Patient",
        "_count=-1",
        Both,
        r#"error|value|_count|Search parameter '_count': invalid value: expected a non-negative integer"#,
    ),
    (
        "Patient",
        "_count=ten",
        Both,
        r#"error|value|_count|Search parameter '_count': invalid value: expected a non-negative integer"#,
    ),
    (
        "Patient",
        "_summary=maybe",
        Both,
        r#"error|value|_summary|Search parameter '_summary': invalid value: expected true, text, data, count or false"#,
    ),
    (
        "Patient",
        "_total=all",
        Both,
        r#"error|value|_total|Search parameter '_total': invalid value: expected none, estimate or accurate"#,
    ),
    (
        "Patient",
        "_contained=maybe",
        Both,
        r#"error|value|_contained|Search parameter '_contained': invalid value: expected true, false or both"#,
    ),
    (
        "Patient",
        "_containedType=both",
        Both,
        r#"error|value|_containedType|Search parameter '_containedType': invalid value: expected container or contained"#,
    ),
    (
        "Patient",
        "_sort=nope",
        Ignored,
        r#"warning|not-supported|_sort|Search parameter '_sort': refers to an unknown search parameter or element (Patient); ignored"#,
    ),
    (
        "Patient",
        "_sort=,name",
        Both,
        r#"error|value|_sort|Search parameter '_sort': invalid value: expected a comma list of [-]parameter"#,
    ),
    (
        "Observation",
        "_sort=code-value-quantity",
        Ignored,
        r#"warning|not-supported|_sort|Search parameter '_sort': not supported (sorting on a composite or special parameter); ignored"#,
    ),
    (
        "Patient",
        "_elements=nope",
        Ignored,
        r#"warning|not-supported|_elements|Search parameter '_elements': refers to an unknown search parameter or element (element of Patient); ignored"#,
    ),
    (
        "Patient",
        "_elements=na-me",
        Both,
        r#"error|value|_elements|Search parameter '_elements': invalid value: expected a comma list of element names, optionally [type].[name]"#,
    ),
    (
        "Patient",
        "_elements=Observation.code",
        Both,
        r#"error|value|_elements|Search parameter '_elements': invalid value: names a type that is not searched"#,
    ),
    (
        "Patient",
        "_include=Observation:subject",
        Both,
        r#"error|value|_include|Search parameter '_include': invalid value: the source type is not a type searched (use _include:iterate)"#,
    ),
    (
        "Patient",
        "_include=Patient:nope",
        Ignored,
        r#"warning|not-supported|_include|Search parameter '_include': refers to an unknown search parameter or element (Patient); ignored"#,
    ),
    (
        "Patient",
        "_include=Patient:name",
        Both,
        r#"error|value|_include|Search parameter '_include': invalid value: names a parameter that is not a reference"#,
    ),
    (
        "Patient",
        "_include=Patient",
        Both,
        r#"error|value|_include|Search parameter '_include': invalid value: expected [type]:[parameter], [type]:[parameter]:[target type] or *"#,
    ),
    (
        "Patient",
        "_include=Nope:x",
        Both,
        r#"error|value|_include|Search parameter '_include': invalid value: names an unknown resource type"#,
    ),
    (
        "Patient",
        "_include=Patient:general-practitioner:Device",
        Both,
        r#"error|value|_include|Search parameter '_include': invalid value: the target type is not a target of the parameter"#,
    ),
    (
        "Patient",
        "_revinclude=Medication:ingredient",
        Both,
        r#"error|value|_revinclude|Search parameter '_revinclude': invalid value: the parameter cannot refer to a type searched (use _revinclude:iterate)"#,
    ),
];

#[test]
fn errors_are_tabled() {
    let mut failures = Vec::new();
    for (types, query, mode, expected) in CASES {
        let (lenient_got, strict_got) = match mode {
            Both => (
                show_issues(&err(types, query, &lenient())),
                show_issues(&err(types, query, &strict())),
            ),
            Ignored => (
                show_issues(&ok(types, query).ignored),
                show_issues(&err(types, query, &strict())),
            ),
        };
        let strict_expected = match mode {
            Both => expected.to_string(),
            Ignored => expected
                .replacen("warning|", "error|", 1)
                .replace("; ignored", ""),
        };
        if lenient_got != *expected || strict_got != strict_expected {
            failures.push(format!(
                "{types}?{query}\n  expected {expected}\n  lenient  {lenient_got}\n  strict   {strict_got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn diagnostics_never_echo_values() {
    let secret = "Zyxwvut9876";
    for (types, query, _, _) in CASES {
        let (name, value) = query.split_once('=').unwrap_or((query, ""));
        if value.is_empty() {
            continue;
        }
        // Replace the value by a marker that keeps its shape errors (prefix, separators).
        let marked = format!("{name}={value}{secret}");
        for options in [lenient(), strict()] {
            let issues = match run(types, &marked, &options) {
                Ok(q) => q.ignored,
                Err(e) => e,
            };
            for i in issues {
                assert!(
                    !i.diagnostics.contains(secret)
                        && !i.expression.iter().any(|e| e.contains(secret)),
                    "{types}?{marked}: {}",
                    i.diagnostics
                );
            }
        }
    }
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let issues = err("Patient", "birthdate=x&gender:exact=y&_count=z", &lenient());
    let got: Vec<&str> = issues.iter().map(|i| i.expression[0].as_str()).collect();
    assert_eq!(got, ["birthdate", "gender:exact", "_count"]);
}

#[test]
fn chains_and_has_nest_at_most_max_depth() {
    // Five steps are fine, six are not.
    ok(
        "Observation",
        "patient.organization.partof.partof.partof.name=x",
    );
    let issues = err(
        "Observation",
        "patient.organization.partof.partof.partof.partof.name=x",
        &lenient(),
    );
    assert_eq!(
        show_issues(&issues),
        "error|not-supported|patient.organization.partof.partof.partof.partof.name|\
         Search parameter 'patient.organization.partof.partof.partof.partof.name': \
         chains and _has nest deeper than 5 steps"
    );
    let has = "_has:Observation:has-member:";
    ok("Observation", &format!("{}code=1", has.repeat(5)));
    let issues = err(
        "Observation",
        &format!("{}code=1", has.repeat(6)),
        &lenient(),
    );
    assert_eq!(issues[0].code.code(), "not-supported");
}

#[test]
fn unknown_parameter_names_are_cut_in_diagnostics() {
    let name = "x".repeat(500);
    let q = ok("Patient", &format!("{name}=1"));
    assert_eq!(q.ignored.len(), 1);
    assert!(q.ignored[0].diagnostics.len() < 250);
}
