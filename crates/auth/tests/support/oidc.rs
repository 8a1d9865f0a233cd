//! A real OpenID Connect provider for tests: `tests/oidc/provider.mjs` (panva's
//! `oidc-provider` on Node), started on a free loopback port, with one client_credentials
//! client whose access tokens are JWTs for a given audience, and admin calls that rotate its
//! signing keys.
//!
//! Self-contained so that other test crates can include it with
//! `#[path = "../../auth/tests/support/oidc.rs"] mod oidc;`: it needs only `std`, `ureq`
//! (plain HTTP to loopback) and `serde_json`.
//!
//! When `node` or `tests/oidc/node_modules` (`npm ci --prefix tests/oidc`) is missing,
//! [`OidcProvider::start`] says SKIPPED and returns `None`, unless
//! `CADUCEUS_TEST_REQUIRE_OIDC=1` (CI), where it panics.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// The test client's credentials (the provider's defaults).
pub const CLIENT_ID: &str = "caduceus-test";
pub const CLIENT_SECRET: &str = "caduceus-test-secret";
/// The custom `roles` claim the provider adds to every access token.
pub const ROLES: &str = "clinician";
const ADMIN_TOKEN: &str = "caduceus-test-admin";

/// A running provider; killed when dropped.
pub struct OidcProvider {
    child: Child,
    /// `http://127.0.0.1:<port>`, the issuer and base URL.
    pub issuer: String,
    /// The audience (FHIR base URL) its access tokens are for.
    pub audience: String,
    /// The current signing key's id.
    pub kid: String,
    stderr: Arc<Mutex<String>>,
}

/// Whether tests must not skip when the provider cannot run.
pub fn required() -> bool {
    std::env::var("CADUCEUS_TEST_REQUIRE_OIDC").is_ok_and(|v| v == "1" || v == "true")
}

/// `tests/oidc` of the repository, found upwards from the test crate's folder.
pub fn provider_dir() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("tests/oidc"))
        .find(|d| d.join("provider.mjs").is_file())
}

fn skip(test: &str, why: &str) -> Option<OidcProvider> {
    assert!(
        !required(),
        "{test}: CADUCEUS_TEST_REQUIRE_OIDC=1 but {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
    None
}

impl OidcProvider {
    /// Starts the provider for `audience`, or `None` (after printing SKIPPED) when it
    /// cannot run here and it is not required.
    pub fn start(test: &str, audience: &str) -> Option<OidcProvider> {
        let Some(dir) = provider_dir() else {
            return skip(test, "tests/oidc/provider.mjs not found");
        };
        let node_ok = Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !node_ok {
            return skip(test, "node is not installed");
        }
        if !dir.join("node_modules/oidc-provider").is_dir() {
            return skip(
                test,
                "tests/oidc/node_modules is missing (npm ci --prefix tests/oidc)",
            );
        }
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .arg("0")
            .current_dir(&dir)
            .env("OIDC_AUDIENCE", audience)
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_ROLES", ROLES)
            .env("OIDC_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node tests/oidc/provider.mjs");
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = String::new();
                let _ = pipe.read_to_string(&mut buf);
                sink.lock().unwrap().push_str(&buf);
            });
        }
        let stdout = child.stdout.take().expect("provider stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Drain the rest so the provider never blocks on a full pipe.
            for _ in lines {}
        });
        let mut provider = OidcProvider {
            child,
            issuer: String::new(),
            audience: audience.to_owned(),
            kid: String::new(),
            stderr,
        };
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = provider.child.kill();
                let _ = provider.child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "the OIDC provider did not start: {}",
                    provider.stderr.lock().unwrap()
                );
            }
        };
        let ready: Value = serde_json::from_str(&line).expect("provider's ready line");
        provider.issuer = ready["issuer"].as_str().expect("issuer").to_owned();
        provider.kid = ready["kid"].as_str().expect("kid").to_owned();
        Some(provider)
    }

    /// An access token from the client_credentials grant, for `scope` (space-separated).
    pub fn token(&self, scope: &str) -> String {
        let mut response = ureq::post(format!("{}/token", self.issuer))
            .send_form([
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("scope", scope),
                ("resource", self.audience.as_str()),
            ])
            .expect("token request");
        let body: Value = response.body_mut().read_json().expect("token response");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    fn admin(&mut self, action: &str) -> Value {
        let mut response = ureq::post(format!("{}/admin/{action}", self.issuer))
            .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .send_empty()
            .expect("admin request");
        let body: Value = response.body_mut().read_json().expect("admin response");
        self.kid = body["kid"].as_str().expect("kid").to_owned();
        body
    }

    /// A new signing key signs from now on; the old keys stay published. Returns the
    /// new key's id.
    pub fn rotate(&mut self) -> String {
        self.admin("rotate");
        self.kid.clone()
    }

    /// Unpublishes every key but the current signing key. Returns the published ids.
    pub fn retire(&mut self) -> Vec<String> {
        self.admin("retire")["kids"]
            .as_array()
            .expect("kids")
            .iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
