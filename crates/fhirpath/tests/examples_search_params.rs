//! Evaluates every core search parameter expression of a resource's type over every JSON
//! example of the official examples package (`shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz`),
//! as the indexer will on every write: no expression may fail, and most must find values.

use caduceus_fhirpath::{Cache, Context};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

fn examples() -> Option<Vec<(String, Value)>> {
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

#[test]
fn search_parameters_evaluate_over_official_examples() {
    let Some(examples) = examples() else {
        println!("skipped: ../shared not present");
        return;
    };
    let cache = Cache::new();
    let ctx = Context::new();
    let (mut evaluations, mut found) = (0usize, 0usize);
    let mut failures = Vec::new();
    let start = Instant::now();
    for (name, resource) in &examples {
        let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
            continue;
        };
        for p in caduceus_model::defs::search_params(rt) {
            if p.expression.is_empty() {
                continue;
            }
            let expr = match cache.get(p.expression) {
                Ok(e) => e,
                Err(e) => {
                    failures.push(format!("{rt}.{}: {e}", p.code));
                    continue;
                }
            };
            evaluations += 1;
            match expr.evaluate(resource, &ctx) {
                Ok(items) => found += usize::from(!items.is_empty()),
                Err(e) => failures.push(format!("{name} {rt}.{}: {e}", p.code)),
            }
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{} examples, {evaluations} evaluations ({found} non-empty) in {elapsed:?}, {} failures",
        examples.len(),
        failures.len()
    );
    assert!(
        examples.len() > 1000 && found > 10_000,
        "too little was found: {found}"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures[..failures.len().min(50)].join("\n")
    );
}
