//! Access to the shared FHIR test data (`../shared/fhir` next to the repository), which a
//! fresh clone may not have: callers skip with a plain message when it is absent.

#![allow(dead_code)] // each test binary uses part of this module

use std::io::Read;
use std::path::PathBuf;

use caduceus_model::Issue;
use serde_json::Value;

/// `../shared/fhir`, if present.
pub fn shared_fhir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir");
    dir.is_dir().then_some(dir)
}

/// Every JSON resource of the examples package: `(file name, resource)`, skipping the
/// package manifest.
pub fn package_examples(fhir: &std::path::Path) -> Vec<(String, Value)> {
    let file = std::fs::File::open(fhir.join("hl7.fhir.r4.examples-4.0.1.tgz")).expect("package");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
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
        entry.read_to_string(&mut text).expect("utf-8");
        let value: Value = serde_json::from_str(&text).expect("JSON");
        out.push((base.to_owned(), value));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The Synthea bundles: `(file name, bundle)`.
pub fn synthea_bundles(fhir: &std::path::Path) -> Vec<(String, Value)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fhir.join("synthea"))
        .expect("synthea dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, serde_json::from_str(&text).expect("JSON"))
        })
        .collect()
}

/// The error issues, one line each, for failure messages.
pub fn errors(issues: &[Issue]) -> Vec<String> {
    issues
        .iter()
        .filter(|i| i.is_error())
        .map(|i| format!("{} [{}]", i.diagnostics, i.code.code()))
        .collect()
}
