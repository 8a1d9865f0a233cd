//! Store micro-benchmark: bundle writes, point reads (1 and 4 threads), concurrent small
//! writes (group commit), and a history page.
//!
//! Run: `cargo run --release -p caduceus-store-sqlite --example store_bench`
//! Optional: `STORE_BENCH_DIR=/path` to put the database somewhere other than the temp dir.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use caduceus_store::{HistoryQuery, HistoryScope, Store, WriteOp};
use caduceus_store_sqlite::SqliteStore;
use serde_json::{Value, json};

const BUNDLES: usize = 40;
const BUNDLE_SIZE: usize = 350;
const READS_PER_THREAD: usize = 300_000;

fn patient(i: usize) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": format!("MRN-{i:08}")}],
        "active": true,
        "name": [{"use": "official", "family": format!("Family{}", i % 997), "given": ["Peter", "James"]}],
        "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
        "gender": if i.is_multiple_of(2) { "male" } else { "female" },
        "birthDate": format!("19{:02}-{:02}-{:02}", i % 100, 1 + i % 12, 1 + i % 28),
        "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille", "state": "Vic", "postalCode": "3999"}],
        "managingOrganization": {"reference": "Organization/1"}
    })
}

/// A small xorshift: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Reads random ids on the current thread; returns the per-read latencies.
fn read_loop(store: &SqliteStore, ids: &[String], n: usize, seed: u64) -> Vec<Duration> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut rng = Rng(seed);
    let mut lat = Vec::with_capacity(n);
    rt.block_on(async {
        for _ in 0..n {
            let id = &ids[rng.next() % ids.len()];
            let t = Instant::now();
            let v = store.read("Patient", id).await.expect("read");
            lat.push(t.elapsed());
            assert!(v.is_some_and(|v| v.body.is_some()));
        }
    });
    lat
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = match std::env::var_os("STORE_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("caduceus-store-bench-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(&dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rows: Vec<(String, String)> = Vec::new();

    // 1. Bundles of 350 creates, one write() each.
    let mut ids = Vec::with_capacity(BUNDLES * BUNDLE_SIZE);
    let bundles: Vec<Vec<WriteOp>> = (0..BUNDLES)
        .map(|b| {
            (0..BUNDLE_SIZE)
                .map(|k| {
                    let i = b * BUNDLE_SIZE + k;
                    let id = format!("pat-{i}");
                    ids.push(id.clone());
                    WriteOp::Create {
                        resource_type: "Patient".into(),
                        id,
                        resource: patient(i),
                        index: Vec::new(),
                        contained: Vec::new(),
                    }
                })
                .collect()
        })
        .collect();
    let mut bundle_times = Vec::new();
    let t = Instant::now();
    rt.block_on(async {
        for ops in bundles {
            let tb = Instant::now();
            store.write(ops).await.expect("bundle write");
            bundle_times.push(tb.elapsed());
        }
    });
    let secs = t.elapsed().as_secs_f64();
    bundle_times.sort();
    rows.push((
        format!("write: {BUNDLES} bundles x {BUNDLE_SIZE} creates"),
        format!(
            "{:>9.0} resources/s  (bundle p50 {:.1} ms, max {:.1} ms)",
            (BUNDLES * BUNDLE_SIZE) as f64 / secs,
            percentile(&bundle_times, 0.5).as_secs_f64() * 1e3,
            bundle_times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        ),
    ));

    // 2. Concurrent single-resource writes: 64 tasks x 40 creates (group commit).
    let tasks = 64;
    let per_task = 40;
    let shared = Arc::new(store.clone());
    let t = Instant::now();
    rt.block_on(async {
        let mut handles = Vec::new();
        for task in 0..tasks {
            let store = Arc::clone(&shared);
            handles.push(tokio::spawn(async move {
                for i in 0..per_task {
                    store
                        .write(vec![WriteOp::Create {
                            resource_type: "Patient".into(),
                            id: format!("single-{task}-{i}"),
                            resource: patient(i),
                            index: Vec::new(),
                            contained: Vec::new(),
                        }])
                        .await
                        .expect("single write");
                }
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
    });
    let secs = t.elapsed().as_secs_f64();
    rows.push((
        format!("write: {tasks} tasks x {per_task} single creates"),
        format!(
            "{:>9.0} writes/s (group commit)",
            (tasks * per_task) as f64 / secs
        ),
    ));

    // 3. Point reads, one thread.
    let _ = read_loop(&store, &ids, 20_000, 7); // warm up
    let t = Instant::now();
    let mut lat = read_loop(&store, &ids, READS_PER_THREAD, 42);
    let secs = t.elapsed().as_secs_f64();
    lat.sort();
    rows.push((
        "read: 1 thread".into(),
        format!(
            "{:>9.0} reads/s     (p50 {:.1} µs, p99 {:.1} µs)",
            READS_PER_THREAD as f64 / secs,
            percentile(&lat, 0.5).as_secs_f64() * 1e6,
            percentile(&lat, 0.99).as_secs_f64() * 1e6
        ),
    ));

    // 4. Point reads, four threads.
    let threads = 4;
    let t = Instant::now();
    let mut lat: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let store = &store;
                let ids = &ids;
                s.spawn(move || read_loop(store, ids, READS_PER_THREAD, 1000 + k as u64))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("reader thread"))
            .collect()
    });
    let secs = t.elapsed().as_secs_f64();
    lat.sort();
    rows.push((
        format!("read: {threads} threads"),
        format!(
            "{:>9.0} reads/s     (p50 {:.1} µs, p99 {:.1} µs)",
            (threads * READS_PER_THREAD) as f64 / secs,
            percentile(&lat, 0.5).as_secs_f64() * 1e6,
            percentile(&lat, 0.99).as_secs_f64() * 1e6
        ),
    ));

    // 5. Type history pages of 50.
    let pages = 2_000;
    let t = Instant::now();
    rt.block_on(async {
        for _ in 0..pages {
            let page = store
                .history(&HistoryQuery {
                    scope: HistoryScope::Type("Patient".into()),
                    since: None,
                    at: None,
                    before_seq: None,
                    limit: 50,
                })
                .await
                .expect("history");
            assert_eq!(page.len(), 50);
        }
    });
    let secs = t.elapsed().as_secs_f64();
    rows.push((
        "history: type, pages of 50".into(),
        format!("{:>9.0} pages/s", pages as f64 / secs),
    ));

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("store_bench ({cores} cores, database {})", dir.display());
    for (what, figure) in &rows {
        println!("  {what:<40} {figure}");
    }
    drop(shared);
    drop(store);
    if std::env::var_os("STORE_BENCH_DIR").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
