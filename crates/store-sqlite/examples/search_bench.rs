//! Search benchmark over the Synthea bundles (`../shared/fhir/synthea`, about 20k
//! resources): imports them with their index rows, then times typical searches (first page
//! of 20, and `_summary=count`), each run repeatedly; prints median and 95th percentile.
//!
//! Run: `cargo run --release -p caduceus-store-sqlite --example search_bench`

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use caduceus_search::{ParseOptions, parse};
use caduceus_store::{Store, WriteOp};
use caduceus_store_sqlite::SqliteStore;
use serde_json::Value;

const RUNS: usize = 200;

fn resolve(v: &mut Value, urls: &HashMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "reference"
                    && let Value::String(s) = child
                    && let Some(local) = urls.get(s.as_str())
                {
                    *s = local.clone();
                } else {
                    resolve(child, urls);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| resolve(i, urls)),
        _ => {}
    }
}

fn load(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the Synthea folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for f in files {
        let bundle: Value =
            serde_json::from_slice(&std::fs::read(&f).expect("read")).expect("json");
        let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
        let urls: HashMap<String, String> = entries
            .iter()
            .filter_map(|e| {
                let r = &e["resource"];
                Some((
                    e["fullUrl"].as_str()?.to_owned(),
                    format!("{}/{}", r["resourceType"].as_str()?, r["id"].as_str()?),
                ))
            })
            .collect();
        for e in entries {
            let mut r = e["resource"].clone();
            resolve(&mut r, &urls);
            let key = (r["resourceType"].to_string(), r["id"].to_string());
            if seen.insert(key) {
                out.push(r);
            }
        }
    }
    out
}

fn op(resource: Value) -> WriteOp {
    let index = caduceus_index::extract(&resource);
    WriteOp::Create {
        resource_type: resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        id: resource["id"].as_str().unwrap_or_default().to_owned(),
        index: index.rows,
        contained: index.contained,
        resource,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir/synthea");
    if !dir.is_dir() {
        println!("no Synthea bundles at {}", dir.display());
        return;
    }
    let data = std::env::temp_dir().join(format!("caduceus-search-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let store = SqliteStore::open(&data).expect("open");
    let all = load(&dir);
    let t = Instant::now();
    for chunk in all.chunks(500) {
        store
            .write(chunk.iter().cloned().map(op).collect())
            .await
            .expect("import");
    }
    println!(
        "imported {} resources (with index rows) in {:.1?}\n",
        all.len(),
        t.elapsed()
    );
    let patient = all
        .iter()
        .find(|r| r["resourceType"] == "Patient")
        .and_then(|r| r["id"].as_str())
        .unwrap_or_default()
        .to_owned();
    let subject = format!("Patient/{patient}");
    let searches: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("Observation", vec![("code", "http://loinc.org|8302-2")]),
        ("Patient", vec![("name", "ma")]),
        (
            "Patient",
            vec![("gender", "female"), ("birthdate", "ge1960")],
        ),
        (
            "Encounter",
            vec![("date", "ge2015-01-01"), ("date", "lt2016-01-01")],
        ),
        ("Observation", vec![("subject", subject.as_str())]),
        (
            "Observation",
            vec![("subject", subject.as_str()), ("_sort", "-date")],
        ),
        ("Observation", vec![("subject:Patient.gender", "female")]),
        (
            "Patient",
            vec![("_has:Observation:subject:code", "http://loinc.org|8302-2")],
        ),
        (
            "Observation",
            vec![("value-quantity", "gt170|http://unitsofmeasure.org|cm")],
        ),
        (
            "Observation",
            vec![
                ("code", "http://loinc.org|8302-2"),
                ("_include", "Observation:subject"),
            ],
        ),
        ("Patient", vec![("_revinclude", "Encounter:subject")]),
        ("Observation", vec![("_sort", "date")]),
        ("Claim", vec![]),
        ("", vec![("_type", "Patient,Practitioner"), ("name", "ma")]),
        ("", vec![("_id", patient.as_str())]),
    ];
    println!("| search | first page (20) median / p95 | _summary=count median / p95 | total |");
    println!("|---|---|---|---|");
    for (ty, params) in searches {
        let mut times = Vec::with_capacity(2);
        let mut total = 0;
        for count_only in [false, true] {
            let mut p: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            if count_only {
                p.retain(|(k, _)| {
                    !k.starts_with("_sort")
                        && !k.starts_with("_include")
                        && !k.starts_with("_revinclude")
                });
                p.push(("_summary".into(), "count".into()));
            }
            let types: &[&str] = if ty.is_empty() { &[] } else { &[ty] };
            let q = parse(types, &p, &ParseOptions::default()).expect("parse");
            let mut d = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let t = Instant::now();
                let page = store.search(&q, None).await.expect("search");
                d.push(t.elapsed());
                if count_only {
                    total = page.total.unwrap_or(0);
                }
            }
            d.sort();
            times.push((percentile(&d, 0.5), percentile(&d, 0.95)));
        }
        let shown: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                let v = if v.starts_with("Patient/") {
                    "Patient/<id>"
                } else {
                    v
                };
                format!("{k}={v}")
            })
            .collect();
        println!(
            "| {ty}?{} | {:.2?} / {:.2?} | {:.2?} / {:.2?} | {total} |",
            shown.join("&"),
            times[0].0,
            times[0].1,
            times[1].0,
            times[1].1
        );
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&data);
}
