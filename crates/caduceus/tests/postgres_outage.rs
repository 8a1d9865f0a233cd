//! The server through a PostgreSQL outage: on a private PostgreSQL cluster (initdb into a
//! temporary folder, its own port), a write load runs, PostgreSQL is stopped hard
//! (`pg_ctl stop -m immediate`), and then started again.
//!
//! While it is down, requests fail fast with 503 and an OperationOutcome (never a hang,
//! never a 500) and `/health/ready` says 503. Once it is back, the server recovers by itself
//! (ready again, writes succeed) and every create that was answered 201 is readable.
//!
//! Needs the PostgreSQL server binaries (`CADUCEUS_TEST_PG_BINDIR`, else the newest
//! `/usr/lib/postgresql/*/bin`); skipped without them (failed under
//! `CADUCEUS_TEST_REQUIRE_POSTGRES=1`). As root (CI), the cluster runs as the user postgres.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Server, pg};
use serde_json::{Value, json};

/// Longest a request may take while PostgreSQL is down: failing, not hanging.
const MAX_REQUEST: Duration = Duration::from_secs(5);

/// A PostgreSQL cluster of this test's own, stopped (immediately) when dropped.
struct Cluster {
    bindir: PathBuf,
    /// Owns the folder; removed last.
    _tmp: tempfile::TempDir,
    data: PathBuf,
    sockets: PathBuf,
    log: PathBuf,
    port: u16,
    /// Run the PostgreSQL programs as this user (we are root).
    as_user: Option<String>,
}

impl Cluster {
    /// initdb and start; None (after saying so) when there are no PostgreSQL binaries.
    fn create(test: &str) -> Option<Cluster> {
        let Some(bindir) = pg::bindir() else {
            assert!(
                !pg::required(),
                "{test}: CADUCEUS_TEST_REQUIRE_POSTGRES=1 but no PostgreSQL server binaries \
                 (set CADUCEUS_TEST_PG_BINDIR or install postgresql)"
            );
            eprintln!("skipped {test}: no PostgreSQL server binaries (initdb, pg_ctl) installed");
            return None;
        };
        let tmp = tempfile::Builder::new()
            .prefix("caduceus-pg-")
            .tempdir()
            .expect("temp dir");
        let root = tmp.path().to_owned();
        let as_user = is_root().then(|| "postgres".to_owned());
        if let Some(user) = &as_user {
            // initdb refuses to run as root: the folder belongs to the user that runs it.
            run(Command::new("chown").arg(format!("{user}:")).arg(&root))
                .unwrap_or_else(|e| panic!("chown the cluster folder to {user}: {e}"));
        }
        let cluster = Cluster {
            data: root.join("data"),
            sockets: root.join("sockets"),
            log: root.join("postgres.log"),
            port: free_port(),
            bindir,
            _tmp: tmp,
            as_user,
        };
        std::fs::create_dir_all(&cluster.sockets).expect("sockets dir");
        if let Some(user) = &cluster.as_user {
            run(Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&cluster.sockets))
            .expect("chown the sockets dir");
        }
        cluster
            .pg("initdb")
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .args(["--locale", "C", "-D"])
            .arg(&cluster.data)
            .output()
            .map_err(|e| e.to_string())
            .and_then(checked)
            .unwrap_or_else(|e| panic!("initdb: {e}"));
        cluster.start();
        Some(cluster)
    }

    /// A command running one of the PostgreSQL programs (as the cluster's user).
    fn pg(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        let mut command = match &self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        command.current_dir(self._tmp.path()).env_remove("PGDATA");
        command
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100",
            self.port,
            self.sockets.display()
        );
        let result = self
            .pg("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-o", &options])
            .output()
            .map_err(|e| e.to_string())
            .and_then(checked);
        if let Err(e) = result {
            panic!("pg_ctl start: {e}\nlog:\n{}", self.log_text());
        }
    }

    fn stop_immediately(&self) {
        self.pg("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-t", "60", "-D"])
            .arg(&self.data)
            .output()
            .map_err(|e| e.to_string())
            .and_then(checked)
            .unwrap_or_else(|e| panic!("pg_ctl stop: {e}"));
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = self
                .pg("pg_ctl")
                .args(["stop", "-m", "immediate", "-w", "-D"])
                .arg(&self.data)
                .output();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn run(command: &mut Command) -> Result<Output, String> {
    command
        .output()
        .map_err(|e| e.to_string())
        .and_then(checked)
}

fn checked(output: Output) -> Result<Output, String> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Where the outage was when a request was sent and when its answer came.
const UP: u8 = 0;
const DOWN: u8 = 1;
const BACK: u8 = 2;
/// A second after the first write succeeded again: from here every write must succeed.
const RECOVERED: u8 = 3;

#[derive(Debug)]
struct Outcome {
    sent_in: u8,
    answered_in: u8,
    status: u16,
    elapsed: Duration,
    id: Option<String>,
    body: String,
}

/// `threads` clients creating Patients until `stop`, each recording every answer.
fn write_load(
    base: &str,
    threads: usize,
    phase: &Arc<AtomicU8>,
    stop: &Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<Vec<Outcome>>> {
    (0..threads)
        .map(|t| {
            let base = base.to_owned();
            let phase = phase.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(60)))
                    .build()
                    .into();
                let mut outcomes = Vec::new();
                let mut n = 0u32;
                while !stop.load(Ordering::SeqCst) && n < 5_000 {
                    n += 1;
                    let body = json!({
                        "resourceType": "Patient",
                        "name": [{"family": format!("load-{t}-{n}")}],
                    });
                    let sent_in = phase.load(Ordering::SeqCst);
                    let started = Instant::now();
                    let reply = agent
                        .post(&format!("{base}/Patient"))
                        .header("content-type", "application/fhir+json")
                        .send(serde_json::to_vec(&body).expect("json").as_slice());
                    let elapsed = started.elapsed();
                    let answered_in = phase.load(Ordering::SeqCst);
                    let (status, body) = match reply {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body = r.into_body().read_to_string().unwrap_or_default();
                            (status, body)
                        }
                        Err(e) => (0, format!("no answer: {e}")),
                    };
                    let id = (status == 201)
                        .then(|| serde_json::from_str::<Value>(&body).ok())
                        .flatten()
                        .and_then(|v| v["id"].as_str().map(str::to_owned));
                    outcomes.push(Outcome {
                        sent_in,
                        answered_in,
                        status,
                        elapsed,
                        id,
                        body,
                    });
                    if status != 201 {
                        // Failing fast must not become a busy loop.
                        thread::sleep(Duration::from_millis(20));
                    }
                }
                outcomes
            })
        })
        .collect()
}

#[track_caller]
fn assert_unavailable(what: &str, reply: &common::Reply) {
    assert_eq!(
        reply.status,
        503,
        "{what} while PostgreSQL is down: {}",
        reply.text()
    );
    let v = reply.json();
    assert_eq!(
        v["resourceType"], "OperationOutcome",
        "{what}: a 503 carries an OperationOutcome: {v}"
    );
    assert!(
        reply.header("retry-after").is_some(),
        "{what}: a 503 says when to retry (Retry-After)"
    );
}

/// Polls `/health/ready` until it answers `status` or `within` passes; returns the last.
fn ready_status(server: &Server, status: u16, within: Duration) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        let got = server
            .request("GET", &server.root_url("health/ready"), &[], None)
            .status;
        if got == status || Instant::now() > deadline {
            return got;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn server_fails_fast_while_postgres_is_down_and_recovers_by_itself() {
    let test = "postgres_outage::server_fails_fast_while_postgres_is_down";
    let Some(cluster) = Cluster::create(test) else {
        return;
    };
    pg::execute(&cluster.url("postgres"), &["CREATE DATABASE caduceus"])
        .unwrap_or_else(|e| panic!("create the database: {e}"));
    let server = Server::start_with_database(&cluster.url("caduceus"), &[]);
    assert_eq!(ready_status(&server, 200, Duration::from_secs(10)), 200);
    let before = server.create_id(&json!({"resourceType": "Patient", "active": true}));

    // --- up: a write load -------------------------------------------------------------
    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(&server.base, 4, &phase, &stop);
    thread::sleep(Duration::from_secs(2));

    // --- down ---------------------------------------------------------------------------
    cluster.stop_immediately();
    phase.store(DOWN, Ordering::SeqCst);
    let down_at = Instant::now();
    assert_eq!(
        ready_status(&server, 503, Duration::from_secs(10)),
        503,
        "/health/ready while PostgreSQL is down"
    );
    let started = Instant::now();
    let read = server.get(&format!("Patient/{before}"));
    assert!(
        started.elapsed() < MAX_REQUEST,
        "a read hung while PostgreSQL was down"
    );
    assert_unavailable("a read", &read);
    let started = Instant::now();
    let search = server.get("Patient?name=load");
    assert!(
        started.elapsed() < MAX_REQUEST,
        "a search hung while PostgreSQL was down"
    );
    assert_unavailable("a search", &search);
    let started = Instant::now();
    let create = server.post("Patient", &json!({"resourceType": "Patient"}));
    assert!(
        started.elapsed() < MAX_REQUEST,
        "a create hung while PostgreSQL was down"
    );
    assert_unavailable("a create", &create);
    // The liveness probe is about the process, not the database.
    server
        .request("GET", &server.root_url("health/live"), &[], None)
        .expect(200);
    if let Some(rest) = Duration::from_secs(3).checked_sub(down_at.elapsed()) {
        thread::sleep(rest);
    }

    // --- back ---------------------------------------------------------------------------
    // BACK from before the start: PostgreSQL accepts connections a little before
    // `pg_ctl start -w` returns, and a create then is rightly acknowledged.
    phase.store(BACK, Ordering::SeqCst);
    cluster.start();
    let back_at = Instant::now();
    let ready = ready_status(&server, 200, Duration::from_secs(30));
    assert_eq!(
        ready,
        200,
        "/health/ready after PostgreSQL came back ({:?} later)",
        back_at.elapsed()
    );
    // Writes succeed again: some create succeeds within 30 s of the restart...
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = server.post("Patient", &json!({"resourceType": "Patient"}));
        if reply.status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no create succeeded within 30 s of PostgreSQL coming back: {} {}",
            reply.status,
            reply.text()
        );
        thread::sleep(Duration::from_millis(200));
    }
    let recovered_at = Instant::now();
    thread::sleep(Duration::from_secs(1));
    phase.store(RECOVERED, Ordering::SeqCst);
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let outcomes: Vec<Outcome> = load
        .into_iter()
        .flat_map(|h| h.join().expect("load thread"))
        .collect();
    eprintln!(
        "outage: {} requests; down for {:?}; recovered {:?} after the restart",
        outcomes.len(),
        back_at - down_at,
        recovered_at - back_at
    );

    // --- what the clients saw -------------------------------------------------------------
    let mut failures = Vec::new();
    for o in &outcomes {
        let problem = if o.status == 0 {
            Some("no HTTP answer")
        } else if o.status == 500 {
            Some("a 500")
        } else if o.status != 201 && o.status != 503 {
            Some("neither 201 nor 503")
        } else if o.status == 503
            && serde_json::from_str::<Value>(&o.body)
                .map_or(true, |v| v["resourceType"] != "OperationOutcome")
        {
            Some("a 503 without an OperationOutcome")
        } else if o.elapsed > MAX_REQUEST {
            Some("a request that took too long")
        } else if o.sent_in == DOWN && o.answered_in == DOWN && o.status == 201 {
            Some("a create acknowledged while PostgreSQL was down")
        } else if o.sent_in == RECOVERED && o.status != 201 {
            Some("a failed create well after the server had recovered")
        } else {
            None
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "{problem}: {} after {:?} (sent in phase {}): {}",
                o.status,
                o.elapsed,
                o.sent_in,
                &o.body[..o.body.len().min(300)]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests went wrong, e.g.:\n{}",
        failures.len(),
        outcomes.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    let created_up = outcomes
        .iter()
        .filter(|o| o.sent_in == UP && o.status == 201)
        .count();
    let refused_down = outcomes
        .iter()
        .filter(|o| o.sent_in == DOWN && o.status == 503)
        .count();
    let created_recovered = outcomes
        .iter()
        .filter(|o| o.sent_in == RECOVERED && o.status == 201)
        .count();
    assert!(created_up > 0, "the load created nothing before the outage");
    assert!(refused_down > 0, "the load saw no 503 during the outage");
    assert!(
        created_recovered > 0,
        "the load created nothing after the recovery"
    );

    // --- nothing acknowledged is lost -------------------------------------------------------
    let mut ids: Vec<&str> = outcomes.iter().filter_map(|o| o.id.as_deref()).collect();
    ids.push(&before);
    for id in &ids {
        let read = server.get(&format!("Patient/{id}"));
        assert_eq!(
            read.status,
            200,
            "Patient/{id} was acknowledged with 201 but cannot be read after the outage: {}",
            read.text()
        );
    }
    eprintln!(
        "outage: all {} acknowledged creates are readable",
        ids.len()
    );
}
