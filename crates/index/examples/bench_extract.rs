//! Extraction throughput over the Synthea sample bundles:
//! `cargo run --release -p caduceus-index --example bench_extract [rounds]`.

use std::time::Instant;

use serde_json::Value;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir/synthea");
    let Ok(files) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: {} not present", dir.display());
        return;
    };
    let mut resources: Vec<Value> = Vec::new();
    for f in files.flatten() {
        let Ok(bytes) = std::fs::read(f.path()) else {
            continue;
        };
        let Ok(bundle) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        for e in bundle["entry"].as_array().into_iter().flatten() {
            resources.push(e["resource"].clone());
        }
    }
    // Warm the per-type expression cache.
    for r in &resources {
        caduceus_index::extract(r);
    }
    let started = Instant::now();
    let mut rows = 0;
    for _ in 0..rounds {
        for r in &resources {
            rows += caduceus_index::extract(r).rows.len();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let n = resources.len() * rounds;
    println!("| resources | rows/resource | resources/s | µs/resource |");
    println!("|---|---|---|---|");
    println!(
        "| {n} | {:.1} | {:.0} | {:.1} |",
        rows as f64 / n as f64,
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}
