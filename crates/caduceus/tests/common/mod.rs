//! Test harness: starts the real `caduceus` binary on a loopback port over a fresh data
//! folder, and talks to it over HTTP. Each test gets its own server and store.
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

/// The path of the binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_caduceus")
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
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    agent: ureq::Agent,
}

impl Server {
    /// Starts a server on a fresh data folder.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir, &[]);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on `data_dir` with extra flags for `serve`.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Server {
        Server::spawn(&[], data_dir, extra)
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
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
    /// Starts a server on a fresh data folder with extra flags for `serve`.
    pub fn start_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server with global flags placed before `serve` (e.g. `--log-level debug`).
    pub fn start_with_global(global: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let mut s = Server::spawn(global, &dir, &[]);
        s._tmp = Some(tmp);
        s
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

    fn spawn(global: &[&str], data_dir: &Path, extra: &[&str]) -> Server {
        let mut args: Vec<&str> = vec!["--log-format", "json"];
        args.extend_from_slice(global);
        args.extend_from_slice(&["serve", "--listen", "127.0.0.1:0", "--data-dir"]);
        let mut child = Command::new(binary())
            .args(args)
            .arg(data_dir)
            .args(extra)
            .env_remove("CADUCEUS_LOG")
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
            data_dir: data_dir.to_owned(),
            _tmp: None,
            agent,
        }
    }

    /// Starts a server on `data_dir` with global flags (before `serve`) and `serve` flags.
    pub fn start_in_with(data_dir: &Path, global: &[&str], extra: &[&str]) -> Server {
        Server::spawn(global, data_dir, extra)
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
