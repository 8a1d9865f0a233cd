//! Evaluates the invariants (`constraint.expression`) of the core resource definitions over
//! the official examples (`shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz`): every invariant must
//! parse and evaluate without error, and the only violations found on the published examples
//! are the ones checked by hand to be genuine ([`GENUINE`]): a new one is more likely an
//! engine bug than an example bug.

use caduceus_fhirpath::{Context, Expression};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;

fn package() -> Option<Vec<(String, Value)>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz");
    let file = std::fs::File::open(path).ok()?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let name = entry.path().ok()?.to_string_lossy().into_owned();
        let Some(base) = name.strip_prefix("package/") else {
            continue;
        };
        if base.contains('/')
            || !base.ends_with(".json")
            || base == "package.json"
            || base.starts_with('.')
        {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).ok()?;
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            out.push((base.to_string(), v));
        }
    }
    Some(out)
}

struct Invariant {
    key: String,
    path: Expression,
    expr: Expression,
}

#[test]
fn core_invariants_hold_on_official_examples() {
    let Some(files) = package() else {
        println!("skipped: ../shared not present");
        return;
    };
    // invariants of the core resource definitions, by resource type
    let mut by_type: HashMap<String, Vec<Invariant>> = HashMap::new();
    let mut parse_failures = Vec::new();
    let mut count = 0;
    for (_, sd) in &files {
        if sd["resourceType"] != "StructureDefinition"
            || sd["kind"] != "resource"
            || sd["derivation"] != "specialization"
        {
            continue;
        }
        let Some(rt) = sd["type"].as_str() else {
            continue;
        };
        let Some(elements) = sd["snapshot"]["element"].as_array() else {
            continue;
        };
        for el in elements {
            let Some(path) = el["path"].as_str() else {
                continue;
            };
            // inherited invariants (ele-1, dom-*) are checked where they are defined
            for c in el["constraint"].as_array().into_iter().flatten() {
                let (Some(key), Some(text)) = (c["key"].as_str(), c["expression"].as_str()) else {
                    continue;
                };
                if key.starts_with("ele-") || key.starts_with("ext-") {
                    continue;
                }
                count += 1;
                let fhirpath = path.replace("[x]", "");
                match (Expression::parse(&fhirpath), Expression::parse(text)) {
                    (Ok(p), Ok(e)) => by_type.entry(rt.to_string()).or_default().push(Invariant {
                        key: format!("{key} ({path})"),
                        path: p,
                        expr: e,
                    }),
                    (_, Err(e)) | (Err(e), _) => {
                        parse_failures.push(format!("{key}: `{text}`: {e}"))
                    }
                }
            }
        }
    }
    assert!(count > 500, "only {count} invariants found");
    assert!(parse_failures.is_empty(), "{parse_failures:#?}");
    let ctx = Context::new();
    let (mut checks, mut violations, mut errors) = (0usize, BTreeMap::new(), BTreeMap::new());
    for (name, resource) in &files {
        let Some(rt) = resource["resourceType"].as_str() else {
            continue;
        };
        for inv in by_type.get(rt).into_iter().flatten() {
            let Ok(nodes) = inv.path.evaluate(resource, &ctx) else {
                continue;
            };
            for node in &nodes {
                checks += 1;
                match inv
                    .expr
                    .evaluate_on(std::slice::from_ref(node), resource, &ctx)
                {
                    Ok(r) if r.len() == 1 && r[0].as_bool() == Some(false) => {
                        violations
                            .entry(inv.key.clone())
                            .or_insert_with(Vec::new)
                            .push(name.clone());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        errors
                            .entry(inv.key.clone())
                            .or_insert_with(Vec::new)
                            .push(format!("{name}: {e}"));
                    }
                }
            }
        }
    }
    let nviol: usize = violations.values().map(Vec::len).sum();
    let nerr: usize = errors.values().map(Vec::len).sum();
    println!(
        "{count} invariants, {checks} checks over {} files: {nviol} violations, {nerr} errors",
        files.len()
    );
    for (k, v) in &violations {
        println!("violated {k}: {} e.g. {}", v.len(), v[0]);
    }
    for (k, v) in &errors {
        println!("error {k}: {} e.g. {}", v.len(), v[0]);
    }
    assert!(checks > 90_000, "only {checks} checks");
    assert_eq!(nerr, 0, "evaluation errors");
    let unexpected: Vec<&String> = violations
        .keys()
        .filter(|k| !GENUINE.iter().any(|g| k.starts_with(&format!("{g} "))))
        .collect();
    assert!(
        unexpected.is_empty(),
        "invariants newly violated: {unexpected:?}"
    );
    assert!(
        nviol <= 4261,
        "{nviol} violations, more than the 4261 genuine ones"
    );
}

/// Invariants the official examples really do violate (checked by hand): names that are not
/// identifiers (`csd-0`, `vsd-0`, `spd-0`, `sdf-0`, `pdf-0`, `tst-0`, warnings), resources
/// without narrative (`dom-6`, a warning), a collection Bundle with repeated fullUrls
/// (`bdl-7`, Bundle-dataelements) and a logical model without `baseDefinition` (`sdf-4`,
/// StructureDefinition-Definition).
const GENUINE: [&str; 9] = [
    "bdl-7", "csd-0", "dom-6", "pdf-0", "sdf-0", "sdf-4", "spd-0", "tst-0", "vsd-0",
];

/// `ele-1` ("All FHIR elements must have a @value or children") holds on every element of
/// (a sample of) the examples: exercises `hasValue()`, `children()` and primitive `_name`
/// siblings on real data.
#[test]
fn ele_1_holds_on_every_element_of_the_examples() {
    let Some(files) = package() else {
        println!("skipped: ../shared not present");
        return;
    };
    let ctx = Context::new();
    let all = Expression::parse("descendants()").expect("parses");
    let ele1 =
        Expression::parse("hasValue() or (children().count() > id.count())").expect("parses");
    let mut checked = 0usize;
    let mut failures = Vec::new();
    for (name, resource) in files.iter().step_by(10) {
        let nodes = all.evaluate(resource, &ctx).expect("descendants");
        for node in &nodes {
            checked += 1;
            let r = ele1.evaluate_on(std::slice::from_ref(node), resource, &ctx);
            if !matches!(r.as_deref(), Ok([x]) if x.as_bool() == Some(true)) {
                failures.push(format!("{name}: {node} -> {r:?}"));
            }
        }
    }
    println!(
        "ele-1: {checked} elements checked, {} failures",
        failures.len()
    );
    assert!(checked > 50_000, "only {checked} elements");
    assert!(
        failures.is_empty(),
        "{:#?}",
        &failures[..failures.len().min(20)]
    );
}
