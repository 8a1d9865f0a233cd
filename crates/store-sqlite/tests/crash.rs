//! Crash safety: a child process writes in a loop and prints each committed write's seq; it
//! is killed with SIGKILL mid-stream; every printed seq must survive, and the database must
//! pass `PRAGMA integrity_check`.
//!
//! The child is this test binary re-invoked on the `crash_child` test with an environment
//! variable naming the data folder (without it, `crash_child` does nothing).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use caduceus_store::{Store, WriteOutcome};
use caduceus_store_sqlite::SqliteStore;
use common::{TempDir, create, update};

const CHILD_DIR: &str = "CADUCEUS_STORE_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "CADUCEUS_STORE_CRASH_CHILD_ROUND";

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let round = std::env::var(CHILD_ROUND).unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = Arc::new(SqliteStore::open(Path::new(&dir)).expect("open"));
        let mut tasks = Vec::new();
        for t in 0..4 {
            let store = Arc::clone(&store);
            let round = round.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0u64.. {
                    // A create and an update of a shared resource, atomically; some writes
                    // are bundles of 50 so the kill can land in a big transaction.
                    let mut ops = vec![
                        create(&format!("r{round}-t{t}-{i}"), "x"),
                        update(&format!("shared-{t}"), &i.to_string(), None),
                    ];
                    if i % 10 == 0 {
                        for k in 0..50 {
                            ops.push(create(&format!("r{round}-t{t}-{i}-b{k}"), "bulk"));
                        }
                    }
                    let out = store.write(ops).await.expect("write");
                    for o in out {
                        if let WriteOutcome::Written { version, .. } = o {
                            println!("SEQ {}", version.seq);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

fn run_and_kill(dir: &Path, round: usize, wanted: usize) -> Vec<i64> {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seqs = Vec::new();
    let parse = |line: &str| {
        line.strip_prefix("SEQ ")
            .and_then(|s| s.trim().parse::<i64>().ok())
    };
    while seqs.len() < wanted {
        match lines.next() {
            Some(Ok(line)) => seqs.extend(parse(&line)),
            _ => panic!("child stopped early after {} writes", seqs.len()),
        }
    }
    child.kill().expect("SIGKILL the child");
    // Whatever the child printed before it died was committed too.
    for line in lines.map_while(Result::ok) {
        seqs.extend(parse(&line));
    }
    let _ = child.wait();
    seqs
}

#[tokio::test]
async fn kill_9_loses_no_committed_write() {
    let dir = TempDir::new("crash");
    let mut all = Vec::new();
    for round in 0..3 {
        let seqs = run_and_kill(dir.path(), round, 400 + round * 300);
        assert!(!seqs.is_empty());
        all.extend(seqs);

        let store = SqliteStore::open(dir.path()).expect("reopen after kill -9");
        assert_eq!(store.integrity_check().expect("integrity check"), ["ok"]);
        let conn = rusqlite::Connection::open(store.db_path()).expect("inspect");
        let mut stmt = conn
            .prepare("SELECT count(*) FROM versions WHERE seq = ?1")
            .expect("prepare");
        for seq in &all {
            let n: i64 = stmt.query_row([seq], |r| r.get(0)).expect("query");
            assert_eq!(n, 1, "committed seq {seq} lost in round {round}");
        }
        // The current state agrees with the newest version of every resource.
        let mismatched: i64 = conn
            .query_row(
                "SELECT count(*) FROM resources r WHERE r.seq <> \
                 (SELECT max(seq) FROM versions v WHERE v.tenant = r.tenant \
                  AND v.type = r.type AND v.id = r.id)",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(mismatched, 0);
        // And the store still writes after the crash.
        store
            .write(vec![create(&format!("after-{round}"), "y")])
            .await
            .expect("write after crash");
    }
}
