//! Validation throughput on the Synthea bundles: every entry resource is validated on its own,
//! as an import would, over several rounds.
//!
//! `cargo run --release -p caduceus-validate --example bench_validate [rounds]`

use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir/synthea");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipped: ../shared not present");
        return;
    };
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let mut resources: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        bytes += text.len();
        let Ok(mut bundle) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if let Some(Value::Array(items)) = bundle.get_mut("entry") {
            for item in items.iter_mut() {
                if let Some(r) = item.get_mut("resource") {
                    resources.push(r.take());
                }
            }
        }
    }
    println!(
        "{} resources from {:.1} MB of Synthea bundles, {rounds} rounds",
        resources.len(),
        bytes as f64 / 1e6
    );
    let mut errors = 0usize;
    let start = Instant::now();
    for _ in 0..rounds {
        for r in &resources {
            errors += caduceus_validate::validate_resource(r)
                .iter()
                .filter(|i| i.is_error())
                .count();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = (resources.len() * rounds) as f64;
    println!(
        "validated {n} resources in {elapsed:.2} s: {:.0} resources/s, {:.1} µs per resource ({errors} errors)",
        n / elapsed,
        elapsed * 1e6 / n
    );
}
