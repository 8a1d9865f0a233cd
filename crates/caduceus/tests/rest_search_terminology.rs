//! Search over HTTP, token terminology modifiers (search.html#token): `:in`, `:not-in`,
//! `:above` and `:below`, answered from the ValueSets and CodeSystems stored on the server
//! (there is no terminology service: what needs one is a 4xx OperationOutcome).

mod common;
mod search_support;

use std::collections::{BTreeSet, HashMap};

use common::Server;
use search_support::*;
use serde_json::{Value, json};

const FINDINGS: &str = "http://example.org/fhir/CodeSystem/findings";
const VISITS: &str = "http://example.org/fhir/CodeSystem/visits";
const VS: &str = "http://example.org/fhir/ValueSet";

/// finding
/// ├── cardio
/// │   ├── hypertension
/// │   │   └── hypertension-severe
/// │   └── arrhythmia
/// └── respiratory
///     ├── asthma
///     └── copd (top level, under respiratory by a `parent` property)
fn findings() -> Value {
    json!({
        "resourceType": "CodeSystem", "id": "findings", "url": FINDINGS, "version": "1",
        "status": "active", "content": "complete", "hierarchyMeaning": "is-a",
        "property": [{"code": "parent", "uri": "http://hl7.org/fhir/concept-properties#parent", "type": "code"}],
        "concept": [
            {"code": "finding", "concept": [
                {"code": "cardio", "concept": [
                    {"code": "hypertension", "concept": [{"code": "hypertension-severe"}]},
                    {"code": "arrhythmia"}
                ]},
                {"code": "respiratory", "concept": [{"code": "asthma"}]}
            ]},
            {"code": "copd", "property": [{"code": "parent", "valueCode": "respiratory"}]}
        ]
    })
}

/// visit ├── outpatient ├── clinic, telehealth; └── inpatient
fn visits() -> Value {
    json!({
        "resourceType": "CodeSystem", "id": "visits", "url": VISITS,
        "status": "active", "content": "complete",
        "concept": [{"code": "visit", "concept": [
            {"code": "outpatient", "concept": [{"code": "clinic"}, {"code": "telehealth"}]},
            {"code": "inpatient"}
        ]}]
    })
}

fn value_set(id: &str, body: Value) -> Value {
    let mut vs = json!({"resourceType": "ValueSet", "id": id, "url": format!("{VS}/{id}"), "status": "active"});
    for (k, v) in body.as_object().unwrap() {
        vs[k] = v.clone();
    }
    vs
}

fn coding(system: &str, code: &str) -> Value {
    json!({"system": system, "code": code})
}

fn obs(id: &str, codings: &[Value], encounter: Option<&str>) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
                       "code": {"coding": codings}});
    if let Some(e) = encounter {
        o["encounter"] = json!({"reference": format!("Encounter/{e}")});
    }
    o
}

fn encounter(id: &str, visit: &str) -> Value {
    json!({"resourceType": "Encounter", "id": id, "status": "finished",
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
           "type": [{"coding": [coding(VISITS, visit)]}]})
}

fn load(server: &Server) {
    put(server, findings());
    put(server, visits());
    // Another version of the same URL, under another id, stored first: without a version,
    // `:in` uses the most recently stored one (version 1 below).
    put(
        server,
        json!({"resourceType": "ValueSet", "id": "enumerated-v2", "url": format!("{VS}/enumerated"),
               "version": "2", "status": "draft",
               "compose": {"include": [{"system": FINDINGS, "concept": [{"code": "copd"}]}]}}),
    );
    put(
        server,
        value_set(
            "enumerated",
            json!({"version": "1", "compose": {"include": [{"system": FINDINGS, "concept": [{"code": "asthma"}, {"code": "arrhythmia"}]}]}}),
        ),
    );
    put(
        server,
        value_set(
            "cardio",
            json!({"compose": {"include": [{"system": FINDINGS, "filter": [{"property": "concept", "op": "is-a", "value": "cardio"}]}]}}),
        ),
    );
    put(
        server,
        value_set(
            "all-findings",
            json!({"compose": {"include": [{"system": FINDINGS}]}}),
        ),
    );
    put(
        server,
        value_set(
            "mild-cardio",
            json!({"compose": {
                "include": [{"valueSet": [format!("{VS}/cardio")]}],
                "exclude": [{"system": FINDINGS, "concept": [{"code": "hypertension-severe"}]}]
            }}),
        ),
    );
    // Expanded: the expansion is used, although the compose needs LOINC.
    put(
        server,
        value_set(
            "expanded",
            json!({
                "compose": {"include": [{"system": "http://loinc.org"}]},
                "expansion": {"timestamp": "2024-01-01T00:00:00Z", "total": 2, "contains": [
                    coding(FINDINGS, "copd"), coding("http://loinc.org", "1234-5")
                ]}
            }),
        ),
    );
    put(
        server,
        value_set(
            "outpatient",
            json!({"compose": {"include": [{"system": VISITS, "filter": [{"property": "concept", "op": "is-a", "value": "outpatient"}]}]}}),
        ),
    );
    // Needs a terminology service: all of LOINC.
    put(
        server,
        value_set(
            "loinc",
            json!({"compose": {"include": [{"system": "http://loinc.org"}]}}),
        ),
    );
    // Needs a terminology service: a filter this server does not evaluate.
    put(
        server,
        value_set(
            "regex",
            json!({"compose": {"include": [{"system": FINDINGS, "filter": [{"property": "concept", "op": "regex", "value": "hyper.*"}]}]}}),
        ),
    );

    put(server, encounter("e-clinic", "clinic"));
    put(server, encounter("e-tele", "telehealth"));
    put(server, encounter("e-inpatient", "inpatient"));
    put(
        server,
        obs(
            "o-htn",
            &[coding(FINDINGS, "hypertension")],
            Some("e-clinic"),
        ),
    );
    put(
        server,
        obs(
            "o-severe",
            &[coding(FINDINGS, "hypertension-severe")],
            Some("e-inpatient"),
        ),
    );
    put(
        server,
        obs("o-arr", &[coding(FINDINGS, "arrhythmia")], Some("e-tele")),
    );
    put(
        server,
        obs(
            "o-asthma",
            &[coding(FINDINGS, "asthma")],
            Some("e-inpatient"),
        ),
    );
    put(server, obs("o-copd", &[coding(FINDINGS, "copd")], None));
    put(
        server,
        obs("o-loinc", &[coding("http://loinc.org", "1234-5")], None),
    );
    // Two codings: one in the enumerated set, one not.
    put(
        server,
        obs(
            "o-mixed",
            &[
                coding(FINDINGS, "asthma"),
                coding("http://loinc.org", "9999-9"),
            ],
            None,
        ),
    );
    // The same code under another system is another code.
    put(
        server,
        obs("o-foreign", &[coding("http://elsewhere", "asthma")], None),
    );
    let condition = |id: &str, code: Option<&str>| {
        let mut c = json!({"resourceType": "Condition", "id": id,
                           "subject": {"reference": "Patient/p"}});
        if let Some(code) = code {
            c["code"] = json!({"coding": [coding(FINDINGS, code)]});
        }
        c
    };
    put(server, json!({"resourceType": "Patient", "id": "p"}));
    put(server, condition("c-htn", Some("hypertension")));
    put(server, condition("c-asthma", Some("asthma")));
    put(server, condition("c-none", None));
}

#[test]
fn in_and_not_in_use_stored_value_sets() {
    let server = Server::start();
    load(&server);
    let enumerated = format!("{VS}/enumerated");
    assert_eq!(
        ids(&server, &format!("Observation?code:in={enumerated}")),
        ["o-arr", "o-asthma", "o-mixed"]
    );
    // By version, and by literal reference.
    assert_eq!(
        ids(&server, &format!("Observation?code:in={enumerated}|1")),
        ["o-arr", "o-asthma", "o-mixed"]
    );
    assert_eq!(
        ids(&server, &format!("Observation?code:in={enumerated}|2")),
        ["o-copd"]
    );
    assert_eq!(
        ids(&server, "Observation?code:in=ValueSet/enumerated-v2"),
        ["o-copd"]
    );
    assert_eq!(
        ids(
            &server,
            &format!("Observation?code:in={}/ValueSet/cardio", server.base)
        ),
        ["o-arr", "o-htn", "o-severe"]
    );
    // is-a filter, whole system, import minus exclude, stored expansion.
    assert_eq!(
        ids(&server, &format!("Observation?code:in={VS}/cardio")),
        ["o-arr", "o-htn", "o-severe"]
    );
    assert_eq!(
        ids(&server, &format!("Observation?code:in={VS}/all-findings")),
        [
            "o-arr", "o-asthma", "o-copd", "o-htn", "o-mixed", "o-severe"
        ]
    );
    assert_eq!(
        ids(&server, &format!("Observation?code:in={VS}/mild-cardio")),
        ["o-arr", "o-htn"]
    );
    assert_eq!(
        ids(&server, &format!("Observation?code:in={VS}/expanded")),
        ["o-copd", "o-loinc"]
    );
    // OR of two value sets.
    assert_eq!(
        ids(
            &server,
            &format!("Observation?code:in={VS}/expanded,{VS}/mild-cardio")
        ),
        ["o-arr", "o-copd", "o-htn", "o-loinc"]
    );

    // :not-in: no coding in the set; a resource with another coding too is excluded.
    assert_eq!(
        ids(&server, &format!("Observation?code:not-in={enumerated}")),
        ["o-copd", "o-foreign", "o-htn", "o-loinc", "o-severe"]
    );
    // ... and resources without the element at all are kept.
    assert_eq!(
        ids(&server, &format!("Condition?code:not-in={VS}/cardio")),
        ["c-asthma", "c-none"]
    );
    assert_eq!(
        ids(&server, &format!("Condition?code:in={VS}/cardio")),
        ["c-htn"]
    );
    // Combined with other criteria.
    assert_eq!(
        ids(
            &server,
            &format!("Observation?code:in={VS}/cardio&encounter=Encounter/e-clinic")
        ),
        ["o-htn"]
    );
}

#[test]
fn below_and_above_follow_the_stored_hierarchy() {
    let server = Server::start();
    load(&server);
    assert_eq!(
        ids(
            &server,
            &format!("Observation?code:below={FINDINGS}|cardio")
        ),
        ["o-arr", "o-htn", "o-severe"]
    );
    // copd is under respiratory by its `parent` property.
    assert_eq!(
        ids(
            &server,
            &format!("Observation?code:below={FINDINGS}|respiratory")
        ),
        ["o-asthma", "o-copd", "o-mixed"]
    );
    assert_eq!(
        ids(
            &server,
            &format!("Observation?code:below={FINDINGS}|hypertension-severe")
        ),
        ["o-severe"]
    );
    assert_eq!(
        ids(
            &server,
            &format!("Observation?code:above={FINDINGS}|hypertension-severe")
        ),
        ["o-htn", "o-severe"]
    );
    assert_eq!(
        ids(&server, &format!("Observation?code:above={FINDINGS}|copd")),
        ["o-copd"]
    );
    // A code without a system: the one stored CodeSystem that defines it. (`asthma` under
    // http://elsewhere is not that code.)
    assert_eq!(
        ids(&server, "Observation?code:below=respiratory"),
        ["o-asthma", "o-copd", "o-mixed"]
    );
    assert_eq!(
        ids(&server, "Condition?code:above=hypertension-severe"),
        ["c-htn"]
    );
}

#[test]
fn terminology_works_inside_chains_and_has() {
    let server = Server::start();
    load(&server);
    assert_eq!(
        ids(
            &server,
            &format!("Encounter?_has:Observation:encounter:code:in={VS}/cardio")
        ),
        ["e-clinic", "e-inpatient", "e-tele"]
    );
    assert_eq!(
        ids(
            &server,
            &format!("Encounter?_has:Observation:encounter:code:below={FINDINGS}|hypertension")
        ),
        ["e-clinic", "e-inpatient"]
    );
    assert_eq!(
        ids(
            &server,
            &format!("Observation?encounter.type:in={VS}/outpatient")
        ),
        ["o-arr", "o-htn"]
    );
    assert_eq!(
        ids(&server, "Observation?encounter.type:in=ValueSet/outpatient"),
        ["o-arr", "o-htn"]
    );
    assert_eq!(
        ids(
            &server,
            &format!("Observation?encounter.type:below={VISITS}|visit")
        ),
        ["o-arr", "o-asthma", "o-htn", "o-severe"]
    );
    assert_eq!(
        ids(
            &server,
            &format!("Observation?encounter.type:not-in={VS}/outpatient")
        ),
        ["o-asthma", "o-severe"]
    );
}

#[test]
fn links_and_paging_keep_the_value_as_written() {
    let server = Server::start();
    load(&server);
    let query = format!("Observation?code:in={VS}/all-findings&_count=2");
    let mut seen = Vec::new();
    let mut page = search(&server, &query);
    let own = link(&page, "self").unwrap();
    assert!(own.contains("code:in="), "{own}");
    assert!(
        !own.contains("hypertension"),
        "the self link shows the ValueSet, not its codes: {own}"
    );
    loop {
        seen.extend(entries(&page, "match"));
        let Some(next) = link(&page, "next") else {
            break;
        };
        page = search(&server, &next);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "Observation/o-arr",
            "Observation/o-asthma",
            "Observation/o-copd",
            "Observation/o-htn",
            "Observation/o-mixed",
            "Observation/o-severe"
        ]
    );
    // _total counts with the same set.
    let b = search(
        &server,
        &format!("Observation?code:in={VS}/cardio&_total=accurate"),
    );
    assert_eq!(b["total"], 3);
}

#[test]
fn large_value_sets_are_not_limited_by_or_lists() {
    let server = Server::start();
    // 3,000 codes: far beyond the 400 values one parameter may OR.
    let concepts: Vec<Value> = (0..3000)
        .map(|k| json!({"code": format!("k{k}")}))
        .collect();
    put(
        &server,
        value_set(
            "large",
            json!({"compose": {"include": [{"system": "http://example.org/large", "concept": concepts}]}}),
        ),
    );
    for (id, code) in [("a", "k0"), ("b", "k1500"), ("c", "k2999"), ("d", "k3000")] {
        put(
            &server,
            obs(id, &[coding("http://example.org/large", code)], None),
        );
    }
    assert_eq!(
        ids(&server, &format!("Observation?code:in={VS}/large")),
        ["a", "b", "c"]
    );
    assert_eq!(
        ids(&server, &format!("Observation?code:not-in={VS}/large")),
        ["d"]
    );
}

#[test]
fn an_empty_value_set_matches_nothing_and_excludes_nothing() {
    let server = Server::start();
    load(&server);
    put(
        &server,
        value_set(
            "empty",
            json!({"compose": {
                "include": [{"system": FINDINGS, "concept": [{"code": "asthma"}]}],
                "exclude": [{"system": FINDINGS, "concept": [{"code": "asthma"}]}]
            }}),
        ),
    );
    assert!(ids(&server, &format!("Observation?code:in={VS}/empty")).is_empty());
    assert_eq!(
        ids(&server, &format!("Condition?code:not-in={VS}/empty")),
        ["c-asthma", "c-htn", "c-none"]
    );
}

#[test]
fn conditional_interactions_resolve_terminology_too() {
    let server = Server::start();
    load(&server);
    // One Condition in the cardio set: a conditional update updates it.
    let body = json!({"resourceType": "Condition", "subject": {"reference": "Patient/p"},
                      "code": {"coding": [coding(FINDINGS, "arrhythmia")]}});
    server
        .put(&format!("Condition?code:in={VS}/cardio"), &body)
        .expect(200);
    assert_eq!(
        ids(
            &server,
            &format!("Condition?code:below={FINDINGS}|arrhythmia")
        ),
        ["c-htn"]
    );
    // A conditional delete of the respiratory findings.
    let reply = server.delete(&format!("Condition?code:below={FINDINGS}|respiratory"));
    assert!(
        matches!(reply.status, 200 | 204),
        "conditional delete: {}",
        reply.status
    );
    assert_eq!(ids(&server, "Condition"), ["c-htn", "c-none"]);
}

#[test]
fn what_needs_a_terminology_service_is_an_operation_outcome() {
    let server = Server::start();
    load(&server);
    let cases = [
        (
            format!("Observation?code:in={VS}/loinc"),
            "http://loinc.org",
        ),
        (format!("Observation?code:in={VS}/regex"), "regex"),
        (format!("Observation?code:in={VS}/unknown"), "unknown"),
        (
            "Observation?code:in=ValueSet/unknown".to_owned(),
            "ValueSet/unknown",
        ),
        (
            "Observation?code:below=http://loinc.org|1234-5".to_owned(),
            "http://loinc.org",
        ),
        (
            format!("Encounter?_has:Observation:encounter:code:not-in={VS}/loinc"),
            "http://loinc.org",
        ),
    ];
    for (query, names) in &cases {
        let reply = server.get(query);
        let outcome = reply.expect_error(400);
        let text = outcome["issue"][0]["diagnostics"].as_str().unwrap_or("");
        assert!(text.contains(names), "{query}: {text}");
        assert!(text.contains("terminology service"), "{query}: {text}");
    }
    // The searched code is never echoed.
    let outcome = expect_error_without(
        &server,
        &format!("Observation?code:below={FINDINGS}|SECRETCODE"),
        400,
        "SECRETCODE",
    );
    assert_eq!(outcome["issue"][0]["code"], "code-invalid");
    expect_error_without(
        &server,
        "Observation?code:below=SECRETCODE",
        400,
        "SECRETCODE",
    );
    // The issue points at the parameter.
    server
        .get(&format!("Observation?code:in={VS}/loinc"))
        .expect_expression("code:in");
    // A conditional create is refused the same way, and creates nothing.
    let reply = server.request(
        "POST",
        "Observation",
        &[
            ("content-type", "application/fhir+json"),
            ("if-none-exist", &format!("code:in={VS}/loinc")),
        ],
        Some(&serde_json::to_vec(&obs("x", &[coding(FINDINGS, "copd")], None)).unwrap()),
    );
    reply.expect_error(400);
    assert_eq!(
        ids(&server, &format!("Observation?code:in={VS}/expanded")).len(),
        2
    );
}

// ---------------------------------------------------------------------------------------
// Synthea

/// Synthea Conditions searched with `code:in` a ValueSet listing SNOMED codes found in the
/// bundles: the matches are exactly the Conditions whose codings the test finds by reading
/// the bundles themselves.
#[test]
fn synthea_conditions_by_value_set() {
    let Some(shared) = common::shared_or_skip("synthea_conditions_by_value_set") else {
        return;
    };
    let dir = shared.join("fhir/synthea");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files.truncate(6);
    if files.is_empty() {
        eprintln!("skipped synthea_conditions_by_value_set: no Synthea bundles");
        return;
    }
    let server = Server::start();
    // fullUrl → server id of each Condition, and its SNOMED codes.
    let mut conditions: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut frequency: HashMap<String, usize> = HashMap::new();
    for path in &files {
        let bundle: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let reply = server.post("", &bundle);
        reply.expect(200);
        let answers = reply.json()["entry"].as_array().cloned().unwrap();
        for (sent, answer) in bundle["entry"].as_array().unwrap().iter().zip(&answers) {
            let resource = &sent["resource"];
            if resource["resourceType"] != "Condition" {
                continue;
            }
            let location = answer["response"]["location"].as_str().unwrap();
            let id = location
                .split("Condition/")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .unwrap()
                .to_owned();
            let codes: BTreeSet<String> = resource["code"]["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["system"] == "http://snomed.info/sct")
                .filter_map(|c| c["code"].as_str().map(str::to_owned))
                .collect();
            for c in &codes {
                *frequency.entry(c.clone()).or_default() += 1;
            }
            conditions.push((id, codes));
        }
    }
    assert!(!conditions.is_empty(), "the bundles hold Conditions");
    // Every third code, most frequent first (ties by code), at most 12.
    let mut by_frequency: Vec<(&String, &usize)> = frequency.iter().collect();
    by_frequency.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let chosen: BTreeSet<String> = by_frequency
        .iter()
        .step_by(3)
        .take(12)
        .map(|(c, _)| (*c).clone())
        .collect();
    let concepts: Vec<Value> = chosen.iter().map(|c| json!({"code": c})).collect();
    put(
        &server,
        value_set(
            "synthea-conditions",
            json!({"compose": {"include": [{"system": "http://snomed.info/sct", "concept": concepts}]}}),
        ),
    );
    let mut expected_in: Vec<String> = conditions
        .iter()
        .filter(|(_, codes)| codes.iter().any(|c| chosen.contains(c)))
        .map(|(id, _)| id.clone())
        .collect();
    expected_in.sort();
    let mut expected_not_in: Vec<String> = conditions
        .iter()
        .filter(|(_, codes)| !codes.iter().any(|c| chosen.contains(c)))
        .map(|(id, _)| id.clone())
        .collect();
    expected_not_in.sort();
    assert!(!expected_in.is_empty() && !expected_not_in.is_empty());
    assert_eq!(
        ids(
            &server,
            &format!("Condition?code:in={VS}/synthea-conditions&_count=1000")
        ),
        expected_in
    );
    assert_eq!(
        ids(
            &server,
            &format!("Condition?code:not-in={VS}/synthea-conditions&_count=1000")
        ),
        expected_not_in
    );
}

/// R4's `searchParam` has no place for modifiers: the statement says in prose how the
/// terminology modifiers are answered.
#[test]
fn the_capability_statement_says_there_is_no_terminology_service() {
    let server = Server::start();
    let reply = server.get("metadata");
    reply.expect(200);
    let text = reply.json()["rest"][0]["documentation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains(":in") && text.contains("no terminology service"),
        "{text}"
    );
}
