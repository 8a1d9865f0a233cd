//! `caduceus import`: Bundles and NDJSON into the store, through the engine (so every
//! resource is validated and every transaction is atomic), with a progress bar and a
//! summary of resources per second and failures with their reasons.
//!
//! - `transaction` and `batch` Bundles are processed as such.
//! - Other Bundles (`collection`, `searchset`, ...) and NDJSON files become transactions:
//!   a resource with an id is PUT at that id, one without is POSTed.
//! - NDJSON is committed in chunks of `--chunk-size` resources, each one transaction.
//!
//! Each committed transaction is logged ("committed", with the file's position), so a run
//! that is killed can be checked and resumed: nothing logged as committed is ever lost.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use caduceus_engine::{BundleKind, Engine, EntryResponse, parse_json};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::cli::ImportArgs;
use crate::store::open_engine;

/// The base URL imported bundles are resolved against (they carry no server base).
const IMPORT_BASE: &str = "urn:caduceus:import";

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let engine = open_engine(&args.store, true).await?;
    crate::reindex::check_index(&engine).await?;
    let files = collect_files(&args.paths)?;
    let report = import_files(&engine, &files, args.chunk_size, !args.quiet).await;
    report.print();
    if report.failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} entries failed", report.failures.len())
    }
}

/// One entry (or a whole file) that was not imported.
#[derive(Debug)]
pub struct Failure {
    pub file: PathBuf,
    pub status: u16,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub files: usize,
    pub resources: u64,
    pub elapsed: Duration,
    pub failures: Vec<Failure>,
}

impl ImportReport {
    pub fn resources_per_second(&self) -> f64 {
        self.resources as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn print(&self) {
        println!(
            "imported {} resources from {} files in {:.2} s ({:.0} resources/s); {} failures",
            self.resources,
            self.files,
            self.elapsed.as_secs_f64(),
            self.resources_per_second(),
            self.failures.len()
        );
        for f in self.failures.iter().take(50) {
            println!("  {}: {} {}", f.file.display(), f.status, f.reason);
        }
        if self.failures.len() > 50 {
            println!("  ... and {} more", self.failures.len() - 50);
        }
    }
}

/// Every `.json` and `.ndjson` file under `paths`, sorted, folders walked one level deep
/// and further.
pub fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut stack = vec![path.clone()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir)
                    .with_context(|| format!("cannot read {}", dir.display()))?
                {
                    let p = entry?.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if is_importable(&p) {
                        files.push(p);
                    }
                }
            }
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{} does not exist", path.display());
        }
    }
    files.sort();
    Ok(files)
}

fn is_importable(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("json" | "ndjson")
    )
}

/// How many files are parsed, validated and written at once. Overlapping files keeps both
/// cores busy while an earlier file's commit waits for its fsync, and concurrent commits
/// share one fsync in the store's group-committing writer.
const FILES_IN_FLIGHT: usize = 4;

/// Imports `files`, several at a time; each transaction commits on its own.
pub async fn import_files(
    engine: &Engine,
    files: &[PathBuf],
    chunk_size: usize,
    progress: bool,
) -> ImportReport {
    let started = Instant::now();
    let bar = if progress {
        ProgressBar::new(files.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} files {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut report = ImportReport {
        files: files.len(),
        ..ImportReport::default()
    };
    let mut pending = files.iter().cloned().enumerate();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < FILES_IN_FLIGHT {
            let Some((index, file)) = pending.next() else {
                break;
            };
            let engine = engine.clone();
            running.spawn(async move { import_file(&engine, index, file, chunk_size).await });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((resources, failures)) => {
                report.resources += resources;
                report.failures.extend(failures);
            }
            Err(e) => report.failures.push(Failure {
                file: PathBuf::new(),
                status: 500,
                reason: format!("import task failed: {e}"),
            }),
        }
        bar.inc(1);
        bar.set_message(format!(
            "{} resources, {:.0}/s",
            report.resources,
            report.resources as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ));
    }
    bar.finish_and_clear();
    report.elapsed = started.elapsed();
    report
}

/// Imports one file: the resources committed and the failures.
async fn import_file(
    engine: &Engine,
    index: usize,
    file: PathBuf,
    chunk_size: usize,
) -> (u64, Vec<Failure>) {
    let mut failures = Vec::new();
    let mut resources = 0;
    let transactions = match read_transactions(&file, chunk_size) {
        Ok(t) => t,
        Err(reason) => {
            failures.push(Failure {
                file,
                status: 400,
                reason,
            });
            return (0, failures);
        }
    };
    for bundle in transactions {
        match engine.process_bundle_entries(bundle, IMPORT_BASE).await {
            Ok((kind, responses)) => {
                let ok = count_ok(&file, kind, &responses, &mut failures);
                resources += ok;
                tracing::info!(file_index = index, resources = ok, "committed");
            }
            Err(e) => {
                let reason = e
                    .outcome
                    .issues
                    .iter()
                    .map(|i| format!("{} at {}", i.diagnostics, i.expression.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ");
                failures.push(Failure {
                    file: file.clone(),
                    status: e.status,
                    reason,
                });
            }
        }
    }
    (resources, failures)
}

fn count_ok(
    file: &Path,
    kind: BundleKind,
    responses: &[EntryResponse],
    failures: &mut Vec<Failure>,
) -> u64 {
    let mut ok = 0;
    for (i, r) in responses.iter().enumerate() {
        if r.status < 400 {
            ok += 1;
        } else if kind == BundleKind::Batch {
            let reason = r
                .outcome
                .as_ref()
                .and_then(|o| o.issues.first())
                .map(|issue| {
                    format!(
                        "entry {i}: {} at {}",
                        issue.diagnostics,
                        issue.expression.join(", ")
                    )
                })
                .unwrap_or_else(|| format!("entry {i} failed"));
            failures.push(Failure {
                file: file.to_owned(),
                status: r.status,
                reason,
            });
        }
    }
    ok
}

/// The transactions (or batches) to run for one file.
fn read_transactions(file: &Path, chunk_size: usize) -> Result<Vec<Value>, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
    if file.extension().and_then(|e| e.to_str()) == Some("ndjson") {
        let mut resources = Vec::new();
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let v = parse_json(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            resources.push(v);
        }
        return Ok(resources
            .chunks(chunk_size.max(1))
            .map(|chunk| as_transaction(chunk.iter().cloned().map(|r| (None, r)).collect()))
            .collect());
    }
    let v = parse_json(&bytes).map_err(|e| e.to_string())?;
    match (
        v.get("resourceType").and_then(Value::as_str),
        v.get("type").and_then(Value::as_str),
    ) {
        (Some("Bundle"), Some("transaction" | "batch")) => Ok(vec![v]),
        (Some("Bundle"), _) => {
            let entries = v
                .get("entry")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let items = entries
                .into_iter()
                .filter_map(|e| {
                    let full_url = e.get("fullUrl").and_then(Value::as_str).map(str::to_owned);
                    e.get("resource").cloned().map(|r| (full_url, r))
                })
                .collect();
            Ok(vec![as_transaction(items)])
        }
        (Some(_), _) => Ok(vec![as_transaction(vec![(None, v)])]),
        (None, _) => Err("not a FHIR resource (no resourceType)".to_owned()),
    }
}

/// A transaction that stores each resource: PUT at its id, or POST without one.
fn as_transaction(resources: Vec<(Option<String>, Value)>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|(full_url, r)| {
            let rt = r
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let request = match r.get("id").and_then(Value::as_str) {
                Some(id) => json!({ "method": "PUT", "url": format!("{rt}/{id}") }),
                None => json!({ "method": "POST", "url": rt }),
            };
            let mut entry = json!({ "resource": r, "request": request });
            if let Some(u) = full_url {
                entry["fullUrl"] = Value::String(u);
            }
            entry
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries })
}
