//! Runs the official FHIRPath test suite for R4 (`shared/fhir/fhirpath/tests-fhir-r4.xml`)
//! and fails when the pass rate drops below the floor. Inputs are read as JSON (the suite's
//! `X.xml` from `X.json` beside it); an input that exists only as XML is converted by the
//! small model-driven converter in `support/xml_to_json.rs`, and tests whose input cannot be
//! read either way are counted as skipped. Every test runs in strict mode (unknown elements and wrong context types are
//! errors), which is what the suite's `invalid="semantic"` expectations assume.

mod support {
    pub mod xml_to_json;
}

use caduceus_fhirpath::{Context, Expression, Item};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The pass rate (over the tests whose inputs are available) this suite must keep.
const FLOOR: f64 = 0.996;

struct Case {
    name: String,
    group: String,
    input: Option<String>,
    expression: String,
    invalid: Option<String>,
    predicate: bool,
    outputs: Vec<(String, String)>,
}

fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir/fhirpath")
}

fn load_cases(xml: &str) -> Vec<Case> {
    let doc = roxmltree::Document::parse(xml).expect("test suite XML");
    let mut out = Vec::new();
    for t in doc.descendants().filter(|n| n.has_tag_name("test")) {
        let Some(expr) = t.children().find(|n| n.has_tag_name("expression")) else {
            continue;
        };
        let group = t
            .parent()
            .and_then(|g| g.attribute("name"))
            .unwrap_or("")
            .to_string();
        out.push(Case {
            name: t.attribute("name").unwrap_or("(unnamed)").to_string(),
            group,
            input: t.attribute("inputfile").map(str::to_string),
            expression: expr.text().unwrap_or("").to_string(),
            invalid: expr.attribute("invalid").map(str::to_string),
            predicate: t.attribute("predicate") == Some("true"),
            outputs: t
                .children()
                .filter(|n| n.has_tag_name("output"))
                .map(|o| {
                    (
                        o.attribute("type").unwrap_or("").to_string(),
                        o.text().unwrap_or("").to_string(),
                    )
                })
                .collect(),
        });
    }
    out
}

fn matches_output(item: &Item<'_>, ty: &str, expected: &str) -> bool {
    let sys = item.to_system();
    match ty {
        "integer" => {
            matches!(sys, Some(Item::Integer(_))) && item.to_text().as_deref() == Some(expected)
        }
        "decimal" => {
            let (Some(a), Ok(b)) = (
                item.to_text()
                    .and_then(|t| t.parse::<rust_decimal::Decimal>().ok()),
                expected.parse::<rust_decimal::Decimal>(),
            ) else {
                return false;
            };
            matches!(sys, Some(Item::Decimal(_))) && a == b
        }
        _ if expected.starts_with('@') => {
            let e = expected.trim_start_matches('@').trim_start_matches('T');
            item.to_text().as_deref() == Some(e)
        }
        _ => item.to_text().as_deref() == Some(expected),
    }
}

#[derive(Debug)]
enum Outcome {
    Pass,
    Skip,
    Fail(&'static str, String),
}

fn run(case: &Case, inputs: &BTreeMap<String, Option<serde_json::Value>>) -> Outcome {
    let null = serde_json::Value::Null;
    let resource = match &case.input {
        None => &null,
        Some(f) => match inputs.get(f) {
            Some(Some(v)) => v,
            _ => return Outcome::Skip,
        },
    };
    let expr = match Expression::parse(&case.expression) {
        Ok(e) => e,
        Err(e) => {
            return if case.invalid.is_some() {
                Outcome::Pass
            } else {
                Outcome::Fail("unexpected parse error", e.to_string())
            };
        }
    };
    let ctx = Context::new().strict(true);
    let result = match expr.evaluate(resource, &ctx) {
        Ok(r) => r,
        Err(e) => {
            return if case.invalid.is_some() {
                Outcome::Pass
            } else {
                Outcome::Fail("unexpected evaluation error", e.to_string())
            };
        }
    };
    if case.invalid.is_some() {
        return Outcome::Fail(
            "expected an error",
            format!("got {:?}", caduceus_fhirpath::to_strings(&result)),
        );
    }
    let result = if case.predicate {
        vec![Item::Boolean(!result.is_empty())]
    } else {
        result
    };
    let ok = result.len() == case.outputs.len()
        && result
            .iter()
            .zip(&case.outputs)
            .all(|(item, (ty, text))| matches_output(item, ty, text));
    if ok {
        Outcome::Pass
    } else {
        let got: Vec<String> = result
            .iter()
            .map(|i| format!("{} ({})", i, i.type_name().1))
            .collect();
        let want: Vec<String> = case
            .outputs
            .iter()
            .map(|(t, v)| format!("{v} ({t})"))
            .collect();
        Outcome::Fail("wrong result", format!("got {got:?}, expected {want:?}"))
    }
}

#[test]
fn official_fhirpath_suite() {
    let dir = shared_dir();
    let Ok(xml) = std::fs::read_to_string(dir.join("tests-fhir-r4.xml")) else {
        println!("skipped: ../shared not present");
        return;
    };
    let cases = load_cases(&xml);
    let mut inputs = BTreeMap::new();
    for c in &cases {
        if let Some(f) = &c.input {
            inputs.entry(f.clone()).or_insert_with(|| {
                let json = Path::new(f).with_extension("json");
                // FHIRPATH_SUITE_PREFER_XML=1 reads every input from its XML (the suite's own
                // inputs; some JSON examples differ from them, e.g. observation-example).
                let prefer_xml =
                    std::env::var_os("FHIRPATH_SUITE_PREFER_XML").is_some() && f.ends_with(".xml");
                let json_text = if prefer_xml {
                    Err(std::io::Error::other("XML preferred"))
                } else {
                    std::fs::read_to_string(dir.join(json))
                };
                match json_text {
                    Ok(t) => serde_json::from_str::<serde_json::Value>(&t).ok(),
                    // only XML: convert it (tests of inputs that fail to convert are skipped)
                    Err(_) => std::fs::read_to_string(dir.join(f))
                        .ok()
                        .and_then(|x| support::xml_to_json::convert(&x)),
                }
            });
        }
    }
    let (mut pass, mut skip) = (0usize, 0usize);
    let mut failures: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for c in &cases {
        let outcome = std::panic::catch_unwind(|| run(c, &inputs))
            .unwrap_or(Outcome::Fail("panic", String::new()));
        match outcome {
            Outcome::Pass => pass += 1,
            Outcome::Skip => skip += 1,
            Outcome::Fail(reason, detail) => failures.entry(reason).or_default().push(format!(
                "{}/{}: `{}` -- {detail}",
                c.group,
                c.name,
                c.expression.replace('\n', " ")
            )),
        }
    }
    let run_count = cases.len() - skip;
    let rate = pass as f64 / run_count.max(1) as f64;
    for (reason, list) in &failures {
        println!("== {reason} ({})", list.len());
        for l in list {
            println!("  {l}");
        }
    }
    println!(
        "FHIRPath R4 suite: {pass}/{run_count} passed ({:.1}%), {skip} skipped: input not readable; {} tests in all",
        rate * 100.0,
        cases.len()
    );
    assert!(panics_free(&failures), "a test case panicked");
    assert!(
        rate >= FLOOR,
        "pass rate {rate:.3} fell below the floor {FLOOR}"
    );
}

fn panics_free(failures: &BTreeMap<&'static str, Vec<String>>) -> bool {
    !failures.contains_key("panic")
}
