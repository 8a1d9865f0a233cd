//! Test harness: starts the real `caduceus` binary on a loopback port over a fresh store,
//! and talks to it over HTTP. Each test gets its own server and store.
//!
//! The store is a fresh data folder (embedded SQLite) by default. With
//! `CADUCEUS_TEST_STORE=postgres`, [`Server::start`] (and `start_with`, `start_with_global`)
//! create a fresh database `caduceus_t_<time>_<random>` on `CADUCEUS_TEST_DATABASE_URL`,
//! start the server with `--database` on it, and drop it when the server is dropped; `.ci/test`
//! runs the behavioural suites (`rest_*.rs`) that way a second time.
//!
//! Tests inherently about the embedded store always use SQLite: [`Server::start_sqlite`], and
//! every server started on an explicit data folder (`start_in`, `start_in_with`). Those are
//! crash_import.rs (imports into a folder), reindex.rs (reindexes a folder, reads its
//! `caduceus.db`), and rest_http.rs's SIGTERM test (restarts on the same folder).
//!
//! The server logs JSON lines to stderr; the harness keeps them so tests can check what was
//! logged (no patient data, request ids on every line).
#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A marker among a server's extra flags: start it secure (authentication on), without
/// the `--insecure-dev-mode` the behavioural suites run with. Not passed to the binary.
pub const SECURE: &str = "<secure>";

/// The path of the binary under test: the one cargo built with these tests, or
/// `CADUCEUS_TEST_BIN` (e.g. a copy that a concurrent build cannot replace mid-run).
pub fn binary() -> String {
    std::env::var("CADUCEUS_TEST_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_caduceus").to_owned())
}

/// `../shared` as seen from the repository root, if this checkout has it.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    dir.is_dir().then(|| dir.canonicalize().unwrap_or(dir))
}

/// Returns the shared folder, or prints why the test is skipped and returns None.
pub fn shared_or_skip(test: &str) -> Option<PathBuf> {
    let dir = shared_dir();
    if dir.is_none() {
        eprintln!("skipped {test}: ../shared is not present in this checkout");
    }
    dir
}

/// A running server.
pub struct Server {
    child: Child,
    pub base: String,
    pub addr: String,
    logs: Arc<Mutex<Vec<String>>>,
    /// The data folder (SQLite); for a server on PostgreSQL, an empty temporary folder.
    pub data_dir: PathBuf,
    /// The database URL the server was started with (PostgreSQL), if any.
    pub database_url: Option<String>,
    _tmp: Option<tempfile::TempDir>,
    /// The database this server owns; dropped (after the process is killed) with it.
    _database: Option<pg::TestDatabase>,
    agent: ureq::Agent,
}

/// Where a server keeps its data.
enum StoreArg<'a> {
    Folder(&'a Path),
    Database(&'a str),
}

/// True when `CADUCEUS_TEST_STORE=postgres`: servers of [`Server::start`] use PostgreSQL.
pub fn store_is_postgres() -> bool {
    match std::env::var("CADUCEUS_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("CADUCEUS_TEST_STORE={other:?}: expected postgres or sqlite"),
    }
}

impl Server {
    /// Starts a server on a fresh store: a data folder, or a fresh PostgreSQL database when
    /// `CADUCEUS_TEST_STORE=postgres`.
    pub fn start() -> Server {
        Server::start_fresh(&[], &[])
    }

    /// Starts a server on a fresh data folder (embedded SQLite), whatever
    /// `CADUCEUS_TEST_STORE` says: for tests about the embedded store itself.
    pub fn start_sqlite() -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir, &[]);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on `data_dir` (always embedded SQLite) with extra flags for `serve`.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Server {
        Server::spawn(&[], StoreArg::Folder(data_dir), extra)
    }

    /// Starts a server on the PostgreSQL database at `url` with extra flags for `serve`.
    /// The caller owns the database (several servers may share it: [`pg::TestDatabase`]).
    pub fn start_with_database(url: &str, extra: &[&str]) -> Server {
        Server::spawn(&[], StoreArg::Database(url), extra)
    }

    /// A fresh store as `CADUCEUS_TEST_STORE` says, with global and `serve` flags.
    fn start_fresh(global: &[&str], extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let mut s = if store_is_postgres() {
            let admin = pg::admin_url().expect(
                "CADUCEUS_TEST_STORE=postgres needs CADUCEUS_TEST_DATABASE_URL (a database URL \
                 of a role that may create databases)",
            );
            let db = pg::TestDatabase::create(&admin);
            let mut s = Server::spawn(global, StoreArg::Database(&db.url), extra);
            s.data_dir = dir;
            s._database = Some(db);
            s
        } else {
            Server::spawn(global, StoreArg::Folder(&dir), extra)
        };
        s._tmp = Some(tmp);
        s
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The log lines once `done` holds for them, or after 10 s whatever they are: a
    /// request's log line is written after its response and reaches the pipe a little later.
    #[allow(dead_code)]
    pub fn logs_when(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs = self.logs();
            if done(&logs) || Instant::now() > deadline {
                return logs;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a request. `path` is relative to the FHIR base (e.g. `Patient/1`) or absolute
    /// (starting with `http`). Returns status, headers and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{}", self.base, path)
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .expect("request");
        let response = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        // ureq stops at 10 MB by default; some official examples are 35 MB. A body that
        // cannot be read in full is a failure, never an empty body.
        let body = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("{method} {url}: reading the body: {e}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.send_json("POST", path, body)
    }

    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.send_json("PUT", path, body)
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, &[], None)
    }

    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.request(
            method,
            path,
            &[("content-type", "application/fhir+json")],
            Some(&bytes),
        )
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_addr(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? == "listening" {
        return v.get("addr")?.as_str().map(str::to_owned);
    }
    None
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Reply {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// The `expression`s of every issue of an OperationOutcome body.
    pub fn issue_expressions(&self) -> Vec<String> {
        let v = self.json();
        assert_eq!(
            v["resourceType"], "OperationOutcome",
            "not an OperationOutcome: {v}"
        );
        v["issue"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e.as_str().map(str::to_owned))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Helpers shared by the REST behaviour suites (rest_*.rs, logging.rs, crash_import.rs).
// They only speak HTTP, so the same suites can run against any store behind the server.

impl Server {
    /// Starts a server on a fresh store (as [`Server::start`]) with extra flags for `serve`.
    pub fn start_with(extra: &[&str]) -> Server {
        Server::start_fresh(&[], extra)
    }

    /// Starts a server on a fresh store (as [`Server::start`]) with global flags placed
    /// before `serve` (e.g. `--log-level debug`).
    pub fn start_with_global(global: &[&str]) -> Server {
        Server::start_fresh(global, &[])
    }

    /// Sends raw bytes with a given content type.
    pub fn send_raw(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Reply {
        self.request(method, path, &[("content-type", content_type)], Some(body))
    }

    /// Sends JSON with extra headers (content type is `application/fhir+json`).
    pub fn send_json_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut all = vec![("content-type", "application/fhir+json")];
        all.extend_from_slice(headers);
        self.request(method, path, &all, Some(&bytes))
    }

    /// PATCH with a JSON Patch document.
    pub fn patch(&self, path: &str, patch: &Value, headers: &[(&str, &str)]) -> Reply {
        let bytes = serde_json::to_vec(patch).unwrap();
        let mut all = vec![("content-type", "application/json-patch+json")];
        all.extend_from_slice(headers);
        self.request("PATCH", path, &all, Some(&bytes))
    }

    /// A URL outside the FHIR base (health probes, unknown routes).
    pub fn root_url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Creates a resource and returns its server-assigned id.
    #[track_caller]
    pub fn create_id(&self, body: &Value) -> String {
        let rt = body["resourceType"].as_str().expect("resourceType");
        let reply = self.post(rt, body);
        reply.expect(201);
        reply.json()["id"].as_str().expect("id").to_owned()
    }

    /// Every entry of a history, following `next` links until there are none. Returns the
    /// entries in the order the pages gave them and the number of pages fetched.
    #[track_caller]
    pub fn history_all(&self, path: &str) -> (Vec<Value>, usize) {
        self.history_pages(path, |_| {})
    }

    /// Like [`Server::history_all`], calling `between(page_number)` after each page is
    /// fetched and before the next one is requested.
    #[track_caller]
    pub fn history_pages(&self, path: &str, mut between: impl FnMut(usize)) -> (Vec<Value>, usize) {
        let mut entries = Vec::new();
        let mut url = path.to_owned();
        let mut pages = 0;
        loop {
            let page = self.get(&url);
            page.expect(200);
            let v = page.json();
            assert_eq!(v["resourceType"], "Bundle", "history is not a Bundle: {v}");
            assert_eq!(v["type"], "history", "history Bundle.type: {v}");
            pages += 1;
            assert!(pages < 10_000, "history paging does not end");
            entries.extend(v["entry"].as_array().cloned().unwrap_or_default());
            between(pages);
            let next = v["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["relation"] == "next")
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
            match next {
                Some(n) => url = n,
                None => return (entries, pages),
            }
        }
    }

    fn spawn(global: &[&str], store: StoreArg<'_>, extra: &[&str]) -> Server {
        let mut args: Vec<&str> = vec!["--log-format", "json"];
        args.extend_from_slice(global);
        args.extend_from_slice(&["serve", "--listen", "127.0.0.1:0"]);
        // The behavioural suites test FHIR, not access control: they run without it.
        // Access-control tests start servers with `start_secure`.
        if !extra.contains(&SECURE) {
            args.push("--insecure-dev-mode");
        }
        let (data_dir, database_url) = match store {
            StoreArg::Folder(dir) => {
                args.push("--data-dir");
                (dir.to_owned(), None)
            }
            StoreArg::Database(url) => {
                args.push("--database");
                (PathBuf::new(), Some(url.to_owned()))
            }
        };
        let mut command = Command::new(binary());
        command.args(args);
        match &database_url {
            Some(url) => command.arg(url),
            None => command.arg(&data_dir),
        };
        let mut child = command
            .args(extra.iter().filter(|a| **a != SECURE))
            .env_remove("CADUCEUS_LOG")
            // The store is the one this harness chose, never one from the environment.
            .env_remove("CADUCEUS_DATABASE_URL")
            .env_remove("CADUCEUS_DATA_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start caduceus");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Server {
            child,
            base: format!("http://{addr}/fhir"),
            addr,
            logs,
            data_dir,
            database_url,
            _tmp: None,
            _database: None,
            agent,
        }
    }

    /// Starts a server on `data_dir` (always embedded SQLite) with global flags (before
    /// `serve`) and `serve` flags.
    pub fn start_in_with(data_dir: &Path, global: &[&str], extra: &[&str]) -> Server {
        Server::spawn(global, StoreArg::Folder(data_dir), extra)
    }

    /// Sends SIGTERM, waits for the exit, and returns the exit status and every log line
    /// (including those written while shutting down).
    pub fn terminate_with_logs(self) -> (std::process::ExitStatus, Vec<String>) {
        let logs = self.logs.clone();
        let status = self.terminate();
        // The reader thread drains stderr until the pipe closes; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = 0;
        loop {
            let n = logs.lock().unwrap().len();
            if (n == last && n > 0) || Instant::now() > deadline {
                break;
            }
            last = n;
            std::thread::sleep(Duration::from_millis(50));
        }
        let lines = logs.lock().unwrap().clone();
        (status, lines)
    }

    /// The process id of the server (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Reply {
    /// Asserts the status and that the body is an OperationOutcome with at least one
    /// error-level issue; returns the outcome.
    #[track_caller]
    pub fn expect_error(&self, status: u16) -> Value {
        self.expect(status);
        let v = self.json();
        assert_eq!(
            v["resourceType"], "OperationOutcome",
            "a {status} must carry an OperationOutcome: {v}"
        );
        assert!(
            v["issue"].as_array().is_some_and(|issues| issues
                .iter()
                .any(|i| i["severity"] == "error" || i["severity"] == "fatal")),
            "the OperationOutcome of a {status} must have an error issue: {v}"
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/fhir+json")),
            "content type of an error: {:?}",
            self.header("content-type")
        );
        v
    }

    /// Asserts that some issue expression starts with `prefix`.
    #[track_caller]
    pub fn expect_expression(&self, prefix: &str) {
        let expressions = self.issue_expressions();
        assert!(
            expressions.iter().any(|e| e.starts_with(prefix)),
            "no issue expression starts with {prefix:?}; got {expressions:?}; body {}",
            self.text()
        );
    }
}

/// A tiny pseudo-random source for test data (xorshift), so runs are reproducible.
pub struct TestRng(pub u64);

impl TestRng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL for tests.

/// PostgreSQL for tests: the admin URL from the environment, fresh databases that drop
/// themselves, and skipping (or failing, under `CADUCEUS_TEST_REQUIRE_POSTGRES=1`) when no
/// PostgreSQL is available.
pub mod pg {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// Prefix of the databases this harness creates.
    pub const PREFIX: &str = "caduceus_t_";
    /// Databases of this harness older than this are dropped by the next run (left behind by
    /// a run that was killed).
    const STALE_AFTER: Duration = Duration::from_secs(3 * 3600);

    /// `CADUCEUS_TEST_DATABASE_URL`: a database URL of a role that may create databases.
    pub fn admin_url() -> Option<String> {
        std::env::var("CADUCEUS_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
    }

    /// `CADUCEUS_TEST_REQUIRE_POSTGRES=1` (CI): a test that needs PostgreSQL fails instead of
    /// skipping when it is not there.
    pub fn required() -> bool {
        std::env::var("CADUCEUS_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
    }

    /// The admin URL, or None after saying that `test` is skipped; panics instead when
    /// PostgreSQL is required.
    pub fn admin_url_or_skip(test: &str) -> Option<String> {
        let url = admin_url();
        if url.is_none() {
            assert!(
                !required(),
                "{test}: CADUCEUS_TEST_REQUIRE_POSTGRES=1 but CADUCEUS_TEST_DATABASE_URL is not set"
            );
            eprintln!("skipped {test}: PostgreSQL not available (set CADUCEUS_TEST_DATABASE_URL)");
        }
        url
    }

    /// The folder of the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`):
    /// `CADUCEUS_TEST_PG_BINDIR`, else the newest `/usr/lib/postgresql/*/bin`.
    pub fn bindir() -> Option<PathBuf> {
        if let Ok(dir) = std::env::var("CADUCEUS_TEST_PG_BINDIR")
            && !dir.is_empty()
        {
            let dir = PathBuf::from(dir);
            return dir.join("initdb").is_file().then_some(dir);
        }
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, dir)| dir)
    }

    /// `url` with its database name replaced by `name` (query parameters kept).
    pub fn url_with_database(url: &str, name: &str) -> String {
        let (head, query) = match url.find('?') {
            Some(q) => url.split_at(q),
            None => (url, ""),
        };
        let after_scheme = head.find("://").map_or(0, |i| i + 3);
        let authority_end = head[after_scheme..]
            .rfind('@')
            .map_or(after_scheme, |at| after_scheme + at + 1);
        let host_part = match head[authority_end..].find('/') {
            Some(slash) => &head[..authority_end + slash],
            None => head,
        };
        format!("{host_part}/{name}{query}")
    }

    /// Runs each statement, in order, on a connection to `url` (outside any transaction,
    /// so `CREATE DATABASE` works).
    pub fn execute(url: &str, statements: &[&str]) -> Result<(), String> {
        query_strings(url, statements, None).map(|_| ())
    }

    /// Runs `query` and returns its first column as text.
    pub fn query_column(url: &str, query: &str) -> Result<Vec<String>, String> {
        query_strings(url, &[], Some(query))
    }

    fn query_strings(
        url: &str,
        statements: &[&str],
        query: Option<&str>,
    ) -> Result<Vec<String>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        runtime.block_on(async {
            let mut config: tokio_postgres::Config =
                url.parse().map_err(|e| format!("database URL: {e}"))?;
            config.connect_timeout(Duration::from_secs(10));
            config.application_name("caduceus-tests");
            let (client, connection) = tokio::time::timeout(
                Duration::from_secs(15),
                config.connect(tokio_postgres::NoTls),
            )
            .await
            .map_err(|_| "connecting to PostgreSQL timed out".to_owned())?
            .map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
            let connection = tokio::spawn(connection);
            let mut column = Vec::new();
            for sql in statements {
                client
                    .batch_execute(sql)
                    .await
                    .map_err(|e| format!("{sql}: {e}"))?;
            }
            if let Some(sql) = query {
                for message in client
                    .simple_query(sql)
                    .await
                    .map_err(|e| format!("{sql}: {e}"))?
                {
                    if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                        column.push(row.get(0).unwrap_or_default().to_owned());
                    }
                }
            }
            drop(client);
            let _ = connection.await;
            Ok(column)
        })
    }

    /// A fresh database, dropped (with `WITH (FORCE)`, best effort) when this is dropped.
    pub struct TestDatabase {
        pub name: String,
        /// The URL of this database.
        pub url: String,
        admin_url: String,
    }

    impl TestDatabase {
        /// Creates `caduceus_t_<unix time>_<random>` on the server of `admin_url`.
        pub fn create(admin_url: &str) -> TestDatabase {
            sweep_stale(admin_url);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let name = format!("{PREFIX}{}_{:016x}", now.as_secs(), random());
            execute(admin_url, &[&format!("CREATE DATABASE {name}")])
                .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
            TestDatabase {
                url: url_with_database(admin_url, &name),
                name,
                admin_url: admin_url.to_owned(),
            }
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            if let Err(e) = execute(&self.admin_url, &[&drop]) {
                eprintln!("could not drop the test database {}: {e}", self.name);
            }
        }
    }

    /// Drops this harness's databases left behind by runs that were killed (once a process).
    fn sweep_stale(admin_url: &str) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let names = query_column(
                admin_url,
                &format!("SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%'"),
            )
            .unwrap_or_default();
            for name in names {
                // Only names of this layout (`<10-digit time>_<suffix>`): other helpers
                // share the prefix with names of their own.
                let created = name[PREFIX.len()..]
                    .split_once('_')
                    .filter(|(t, _)| t.len() == 10 && t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|(t, _)| t.parse::<u64>().ok());
                if created.is_some_and(|t| t + STALE_AFTER.as_secs() < now) {
                    let _ = execute(
                        admin_url,
                        &[&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")],
                    );
                }
            }
        });
    }

    /// 64 random-enough bits (no rand crate): the std hasher's random keys, the time, a
    /// counter and the process id.
    pub fn random() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.finish()
    }
}
