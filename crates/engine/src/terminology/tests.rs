//! The expansion logic over an in-memory set of resources (the same read-and-retry loop as
//! the engine, with a map instead of a store).

use std::collections::BTreeSet;

use caduceus_model::IssueCode;
use caduceus_search::{ParseOptions, SearchValue, TokenValue, parse};
use serde_json::{Value, json};

use super::*;

const SYS: &str = "http://example.org/cs/body";

/// The resources a key names, as the engine's reader would return them.
fn lookup(resources: &[Value], key: &Key) -> Vec<Value> {
    let matches = |r: &Value, ty: &str, c: &Canonical| {
        r["resourceType"] == ty
            && r["url"] == c.url.as_str()
            && c.version
                .as_deref()
                .is_none_or(|v| r["version"].as_str() == Some(v))
    };
    resources
        .iter()
        .filter(|r| match key {
            Key::ValueSet(c) => matches(r, "ValueSet", c),
            Key::CodeSystem(c) => matches(r, "CodeSystem", c),
            Key::ValueSetId(id) => r["resourceType"] == "ValueSet" && r["id"] == id.as_str(),
            Key::CompleteCodeSystems => {
                r["resourceType"] == "CodeSystem" && r["content"] == "complete"
            }
        })
        .cloned()
        .collect()
}

/// Runs `f` until it no longer needs a resource; counts the reads.
fn run<T>(
    resources: &[Value],
    mut f: impl FnMut(&mut Terminology) -> Result<T, Stop>,
) -> (Result<T, FhirError>, usize) {
    let mut t = Terminology::default();
    let mut reads = 0;
    loop {
        match f(&mut t) {
            Ok(v) => return (Ok(v), reads),
            Err(Stop::Fail(e)) => return (Err(e), reads),
            Err(Stop::Need(key)) => {
                reads += 1;
                assert!(reads < 100, "reads forever");
                let found = lookup(resources, &key);
                t.provide(key, found);
            }
        }
    }
}

fn expand(resources: &[Value], url: &str) -> Result<Vec<String>, FhirError> {
    run(resources, |t| {
        t.value_set_codes(url, Some("http://base/fhir"))
    })
    .0
    .map(|codes| {
        codes
            .iter()
            .map(|(s, c)| {
                if s == SYS {
                    c.clone()
                } else {
                    format!("{s}|{c}")
                }
            })
            .collect()
    })
}

fn below(
    resources: &[Value],
    system: Option<&str>,
    code: &str,
    above: bool,
) -> Result<Vec<String>, FhirError> {
    let token = TokenValue {
        system: system.map(str::to_owned),
        code: Some(code.to_owned()),
    };
    run(resources, |t| t.hierarchy_codes(&token, above))
        .0
        .map(|codes| codes.into_iter().map(|(_, c)| c).collect())
}

/// body
/// ├── head
/// │   ├── eye
/// │   └── ear (also under sense, through a `parent` property)
/// ├── limb
/// │   ├── arm ── hand (hand through a `child` property of arm)
/// │   └── leg
/// sense
/// toe (parent: leg, by `subsumedBy`)
fn code_system() -> Value {
    json!({
        "resourceType": "CodeSystem",
        "id": "body",
        "url": SYS,
        "version": "1",
        "status": "active",
        "content": "complete",
        "hierarchyMeaning": "is-a",
        "property": [
            {"code": "parent", "uri": "http://hl7.org/fhir/concept-properties#parent", "type": "code"},
            {"code": "child", "uri": "http://hl7.org/fhir/concept-properties#child", "type": "code"},
            {"code": "side", "type": "string"}
        ],
        "concept": [
            {"code": "body", "concept": [
                {"code": "head", "concept": [
                    {"code": "eye", "property": [{"code": "side", "valueString": "both"}]},
                    {"code": "ear", "property": [
                        {"code": "parent", "valueCode": "sense"},
                        {"code": "side", "valueString": "both"}
                    ]}
                ]},
                {"code": "limb", "concept": [
                    {"code": "arm", "property": [{"code": "child", "valueCode": "hand"}]},
                    {"code": "leg"}
                ]}
            ]},
            {"code": "sense"},
            {"code": "hand"},
            {"code": "toe", "property": [{"code": "subsumedBy", "valueCode": "leg"}]}
        ]
    })
}

fn value_set(url: &str, compose: Value) -> Value {
    json!({"resourceType": "ValueSet", "id": url.rsplit('/').next().unwrap(), "url": url, "status": "active", "compose": compose})
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn single_issue(e: &FhirError) -> (u16, IssueCode, String) {
    let issue = &e.outcome.issues[0];
    (e.status, issue.code, issue.diagnostics.clone())
}

#[test]
fn hierarchy_follows_nesting_and_parent_child_properties() {
    let cs = [code_system()];
    assert_eq!(
        below(&cs, Some(SYS), "head", false).unwrap(),
        strings(&["ear", "eye", "head"])
    );
    assert_eq!(
        below(&cs, Some(SYS), "limb", false).unwrap(),
        strings(&["arm", "hand", "leg", "limb", "toe"])
    );
    assert_eq!(
        below(&cs, Some(SYS), "sense", false).unwrap(),
        strings(&["ear", "sense"])
    );
    assert_eq!(
        below(&cs, Some(SYS), "ear", true).unwrap(),
        strings(&["body", "ear", "head", "sense"])
    );
    assert_eq!(
        below(&cs, Some(SYS), "toe", true).unwrap(),
        strings(&["body", "leg", "limb", "toe"])
    );
    // Without a system: the one stored CodeSystem that defines the code.
    assert_eq!(
        below(&cs, None, "arm", false).unwrap(),
        strings(&["arm", "hand"])
    );
}

#[test]
fn hierarchy_errors_name_the_system_not_the_code() {
    let cs = [code_system()];
    let e = below(&cs, Some(SYS), "SECRET", false).unwrap_err();
    let (status, code, text) = single_issue(&e);
    assert_eq!((status, code), (400, IssueCode::CodeInvalid));
    assert!(text.contains(SYS) && !text.contains("SECRET"), "{text}");

    let e = below(&cs, Some("http://example.org/not-stored"), "x", false).unwrap_err();
    let (_, code, text) = single_issue(&e);
    assert_eq!(code, IssueCode::NotSupported);
    assert!(text.contains("http://example.org/not-stored"), "{text}");
    assert!(text.contains("terminology service"), "{text}");

    assert!(below(&cs, None, "SECRET", false).is_err());
    // Two systems define the code: ambiguous without a system.
    let mut other = code_system();
    other["url"] = json!("http://example.org/cs/other");
    let both = [code_system(), other];
    let e = below(&both, None, "arm", false).unwrap_err();
    assert_eq!(single_issue(&e).1, IssueCode::Invalid);
    assert_eq!(
        below(&both, Some("http://example.org/cs/other"), "arm", false).unwrap(),
        strings(&["arm", "hand"])
    );

    // A fragment does not list every code.
    let mut fragment = code_system();
    fragment["content"] = json!("fragment");
    let e = below(&[fragment], Some(SYS), "head", false).unwrap_err();
    assert!(single_issue(&e).2.contains("not 'complete'"));
}

#[test]
fn hierarchy_cycles_terminate() {
    let cs = json!({
        "resourceType": "CodeSystem", "url": SYS, "status": "active", "content": "complete",
        "concept": [
            {"code": "a", "concept": [{"code": "b"}], "property": [{"code": "parent", "valueCode": "b"}]}
        ]
    });
    assert_eq!(
        below(std::slice::from_ref(&cs), Some(SYS), "a", false).unwrap(),
        strings(&["a", "b"])
    );
    assert_eq!(
        below(&[cs], Some(SYS), "b", true).unwrap(),
        strings(&["a", "b"])
    );
}

#[test]
fn compose_includes_concepts_systems_and_filters() {
    let mut r = vec![code_system()];
    r.push(value_set(
        "http://vs/enumerated",
        json!({"include": [
            {"system": SYS, "concept": [{"code": "eye"}, {"code": "leg"}]},
            {"system": "http://other", "concept": [{"code": "x"}]}
        ]}),
    ));
    r.push(value_set(
        "http://vs/all",
        json!({"include": [{"system": SYS}]}),
    ));
    let filter = |property: &str, op: &str, value: &str| json!({"include": [{"system": SYS, "filter": [{"property": property, "op": op, "value": value}]}]});
    r.push(value_set(
        "http://vs/is-a",
        filter("concept", "is-a", "limb"),
    ));
    r.push(value_set(
        "http://vs/descendent-of",
        filter("concept", "descendent-of", "limb"),
    ));
    r.push(value_set(
        "http://vs/is-not-a",
        filter("concept", "is-not-a", "body"),
    ));
    r.push(value_set(
        "http://vs/generalizes",
        filter("concept", "generalizes", "hand"),
    ));
    r.push(value_set("http://vs/eq", filter("concept", "=", "leg")));
    r.push(value_set("http://vs/parent", filter("parent", "=", "head")));
    r.push(value_set("http://vs/child", filter("child", "=", "ear")));
    r.push(value_set("http://vs/side", filter("side", "=", "both")));
    r.push(value_set(
        "http://vs/in",
        filter("concept", "in", "eye,leg,nope"),
    ));
    r.push(value_set(
        "http://vs/two-filters",
        json!({"include": [{"system": SYS, "filter": [
            {"property": "concept", "op": "is-a", "value": "body"},
            {"property": "concept", "op": "is-not-a", "value": "limb"}
        ]}]}),
    ));

    assert_eq!(
        expand(&r, "http://vs/enumerated").unwrap(),
        strings(&["eye", "leg", "http://other|x"])
    );
    assert_eq!(expand(&r, "http://vs/all").unwrap().len(), 10);
    assert_eq!(
        expand(&r, "http://vs/is-a").unwrap(),
        strings(&["arm", "hand", "leg", "limb", "toe"])
    );
    assert_eq!(
        expand(&r, "http://vs/descendent-of").unwrap(),
        strings(&["arm", "hand", "leg", "toe"])
    );
    assert_eq!(
        expand(&r, "http://vs/is-not-a").unwrap(),
        strings(&["sense"])
    );
    assert_eq!(
        expand(&r, "http://vs/generalizes").unwrap(),
        strings(&["arm", "body", "hand", "limb"])
    );
    assert_eq!(expand(&r, "http://vs/eq").unwrap(), strings(&["leg"]));
    assert_eq!(
        expand(&r, "http://vs/parent").unwrap(),
        strings(&["ear", "eye"])
    );
    assert_eq!(
        expand(&r, "http://vs/child").unwrap(),
        strings(&["head", "sense"])
    );
    assert_eq!(
        expand(&r, "http://vs/side").unwrap(),
        strings(&["ear", "eye"])
    );
    assert_eq!(
        expand(&r, "http://vs/in").unwrap(),
        strings(&["eye", "leg"])
    );
    assert_eq!(
        expand(&r, "http://vs/two-filters").unwrap(),
        strings(&["body", "ear", "eye", "head"])
    );
    // By literal reference, relative or under the base.
    assert_eq!(expand(&r, "ValueSet/eq").unwrap(), strings(&["leg"]));
    assert_eq!(
        expand(&r, "http://base/fhir/ValueSet/eq").unwrap(),
        strings(&["leg"])
    );
}

#[test]
fn excludes_are_subtracted_and_imports_intersected() {
    let mut r = vec![code_system()];
    r.push(value_set(
        "http://vs/limbs-but-arms",
        json!({
            "include": [{"system": SYS, "filter": [{"property": "concept", "op": "is-a", "value": "limb"}]}],
            "exclude": [{"system": SYS, "filter": [{"property": "concept", "op": "is-a", "value": "arm"}]}]
        }),
    ));
    r.push(value_set(
        "http://vs/import",
        json!({"include": [
            {"valueSet": ["http://vs/limbs-but-arms"]},
            {"system": SYS, "concept": [{"code": "eye"}]}
        ]}),
    ));
    r.push(value_set(
        "http://vs/intersect",
        json!({"include": [
            {"system": SYS, "concept": [{"code": "leg"}, {"code": "eye"}, {"code": "arm"}],
             "valueSet": ["http://vs/limbs-but-arms"]}
        ]}),
    ));
    assert_eq!(
        expand(&r, "http://vs/limbs-but-arms").unwrap(),
        strings(&["leg", "limb", "toe"])
    );
    assert_eq!(
        expand(&r, "http://vs/import").unwrap(),
        strings(&["eye", "leg", "limb", "toe"])
    );
    assert_eq!(
        expand(&r, "http://vs/intersect").unwrap(),
        strings(&["leg"])
    );
}

#[test]
fn versions_choose_among_value_sets() {
    let mut v1 = value_set(
        "http://vs/v",
        json!({"include": [{"system": SYS, "concept": [{"code": "eye"}]}]}),
    );
    v1["version"] = json!("1");
    let mut v2 = value_set(
        "http://vs/v",
        json!({"include": [{"system": SYS, "concept": [{"code": "ear"}]}]}),
    );
    v2["version"] = json!("2");
    // The reader returns the newest first.
    let r = [v2, v1];
    assert_eq!(expand(&r, "http://vs/v|1").unwrap(), strings(&["eye"]));
    assert_eq!(expand(&r, "http://vs/v|2").unwrap(), strings(&["ear"]));
    assert_eq!(expand(&r, "http://vs/v").unwrap(), strings(&["ear"]));
    assert_eq!(
        single_issue(&expand(&r, "http://vs/v|3").unwrap_err()).1,
        IssueCode::NotFound
    );
}

#[test]
fn import_cycles_and_depth_are_refused() {
    let r = vec![
        value_set(
            "http://vs/a",
            json!({"include": [{"valueSet": ["http://vs/b"]}]}),
        ),
        value_set(
            "http://vs/b",
            json!({"include": [{"valueSet": ["http://vs/a"]}]}),
        ),
        value_set(
            "http://vs/self",
            json!({"include": [{"valueSet": ["http://vs/self"]}]}),
        ),
    ];
    for url in ["http://vs/a", "http://vs/self"] {
        let e = expand(&r, url).unwrap_err();
        let (status, code, text) = single_issue(&e);
        assert_eq!((status, code), (400, IssueCode::NotSupported));
        assert!(text.contains("imports itself"), "{text}");
    }
    // A chain of 12 imports is deeper than allowed.
    let mut chain: Vec<Value> = (0..12)
        .map(|k| {
            value_set(
                &format!("http://vs/c{k}"),
                json!({"include": [{"valueSet": [format!("http://vs/c{}", k + 1)]}]}),
            )
        })
        .collect();
    chain.push(value_set(
        "http://vs/c12",
        json!({"include": [{"system": SYS, "concept": [{"code": "eye"}]}]}),
    ));
    let e = expand(&chain, "http://vs/c0").unwrap_err();
    assert!(single_issue(&e).2.contains("deep"));
    assert_eq!(expand(&chain, "http://vs/c6").unwrap(), strings(&["eye"]));
    // A diamond (two imports of the same set) is not a cycle.
    let diamond = vec![
        value_set(
            "http://vs/top",
            json!({"include": [{"valueSet": ["http://vs/l"]}, {"valueSet": ["http://vs/r"]}]}),
        ),
        value_set(
            "http://vs/l",
            json!({"include": [{"valueSet": ["http://vs/leaf"]}]}),
        ),
        value_set(
            "http://vs/r",
            json!({"include": [{"valueSet": ["http://vs/leaf"]}]}),
        ),
        value_set(
            "http://vs/leaf",
            json!({"include": [{"system": SYS, "concept": [{"code": "eye"}]}]}),
        ),
    ];
    assert_eq!(
        expand(&diamond, "http://vs/top").unwrap(),
        strings(&["eye"])
    );
}

#[test]
fn stored_expansions_are_used_when_complete() {
    let mut vs = value_set(
        "http://vs/expanded",
        json!({"include": [{"system": "http://not-stored"}]}),
    );
    vs["expansion"] = json!({
        "timestamp": "2024-01-01T00:00:00Z",
        "total": 4,
        "contains": [
            {"system": SYS, "code": "eye"},
            {"abstract": true, "display": "group", "contains": [
                {"system": SYS, "code": "leg"},
                {"system": "http://other", "code": "x"}
            ]}
        ]
    });
    assert_eq!(
        expand(std::slice::from_ref(&vs), "http://vs/expanded").unwrap(),
        strings(&["eye", "leg", "http://other|x"])
    );
    vs["expansion"]["total"] = json!(40);
    let e = expand(std::slice::from_ref(&vs), "http://vs/expanded").unwrap_err();
    assert!(single_issue(&e).2.contains("only part"));
    vs["expansion"]["total"] = json!(4);
    vs["expansion"]["offset"] = json!(20);
    assert!(expand(&[vs], "http://vs/expanded").is_err());
}

#[test]
fn what_needs_a_terminology_service_is_refused_with_the_url() {
    let mut r = vec![code_system()];
    r.push(value_set(
        "http://vs/loinc",
        json!({"include": [{"system": "http://loinc.org"}]}),
    ));
    r.push(value_set(
        "http://vs/regex",
        json!({"include": [{"system": SYS, "filter": [{"property": "concept", "op": "regex", "value": "e.*"}]}]}),
    ));
    r.push(value_set(
        "http://vs/missing-import",
        json!({"include": [{"valueSet": ["http://vs/nowhere"]}]}),
    ));
    r.push(json!({"resourceType": "ValueSet", "url": "http://vs/empty", "status": "draft"}));
    for (url, names) in [
        ("http://vs/loinc", "http://loinc.org"),
        ("http://vs/regex", "http://vs/regex"),
        ("http://vs/missing-import", "http://vs/nowhere"),
        ("http://vs/empty", "http://vs/empty"),
        ("http://vs/unknown", "http://vs/unknown"),
        ("ValueSet/unknown", "ValueSet/unknown"),
    ] {
        let e = expand(&r, url).unwrap_err();
        let (status, _, text) = single_issue(&e);
        assert_eq!(status, 400, "{url}");
        assert!(text.contains(names), "{url}: {text}");
        assert!(text.contains("terminology service"), "{url}: {text}");
    }
}

#[test]
fn expansions_are_capped() {
    let concepts: Vec<Value> = (0..MAX_CODES + 1)
        .map(|k| json!({"code": format!("c{k}")}))
        .collect();
    let big = json!({
        "resourceType": "CodeSystem", "url": "http://big", "status": "active",
        "content": "complete", "concept": [{"code": "root", "concept": concepts}]
    });
    let r = vec![
        big,
        value_set(
            "http://vs/big",
            json!({"include": [{"system": "http://big"}]}),
        ),
        value_set(
            "http://vs/big-filter",
            json!({"include": [{"system": "http://big", "filter": [{"property": "concept", "op": "descendent-of", "value": "root"}]}]}),
        ),
        value_set(
            "http://vs/small-filter",
            json!({"include": [{"system": "http://big", "filter": [{"property": "concept", "op": "=", "value": "c7"}]}]}),
        ),
    ];
    for url in ["http://vs/big", "http://vs/big-filter"] {
        let e = expand(&r, url).unwrap_err();
        assert_eq!(single_issue(&e).1, IssueCode::TooCostly, "{url}");
    }
    assert_eq!(
        expand(&r, "http://vs/small-filter").unwrap(),
        strings(&["http://big|c7"])
    );
    let token = TokenValue {
        system: Some("http://big".to_owned()),
        code: Some("root".to_owned()),
    };
    let (res, _) = run(&r, |t| t.hierarchy_codes(&token, false));
    assert_eq!(single_issue(&res.unwrap_err()).1, IssueCode::TooCostly);
}

#[test]
fn a_query_is_resolved_in_chains_and_once_per_resource() {
    let r = vec![
        code_system(),
        value_set(
            "http://vs/limbs",
            json!({"include": [{"system": SYS, "filter": [{"property": "concept", "op": "is-a", "value": "limb"}]}]}),
        ),
    ];
    let params: Vec<(String, String)> = [
        ("code:in", "http://vs/limbs"),
        ("_has:Observation:has-member:code:not-in", "http://vs/limbs"),
        ("code:below", &format!("{SYS}|head")),
        ("status", "final"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let mut query = parse(&["Observation"], &params, &ParseOptions::default()).unwrap();
    let before = query.to_query_string();
    let (res, reads) = run(&r, |t| t.resolve(&mut query, None));
    res.unwrap();
    // One ValueSet and one CodeSystem, each read once.
    assert_eq!(reads, 2);
    assert_eq!(query.to_query_string(), before);
    let codes = |ci: usize| -> BTreeSet<String> {
        let SearchValue::TokenSet(set) = &query.criteria[ci].values[0] else {
            panic!("not resolved: {:?}", query.criteria[ci]);
        };
        set.codes.iter().map(|(_, c)| c.clone()).collect()
    };
    assert_eq!(codes(0).len(), 5);
    assert_eq!(codes(1), codes(0));
    assert_eq!(codes(2).len(), 3);
    assert!(matches!(query.criteria[3].values[0], SearchValue::Token(_)));
}

#[test]
fn errors_point_at_the_parameter() {
    let params = vec![("code:in".to_owned(), "http://vs/none".to_owned())];
    let mut query = parse(&["Observation"], &params, &ParseOptions::default()).unwrap();
    let (res, _) = run(&[], |t| t.resolve(&mut query, None));
    let e = res.unwrap_err();
    assert_eq!(e.outcome.issues[0].expression, ["code:in"]);
}
