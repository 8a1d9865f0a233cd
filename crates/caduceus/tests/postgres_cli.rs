//! Selecting and preparing the PostgreSQL store from the command line: `--database`,
//! `CADUCEUS_DATABASE_URL`, the configuration file, `--migrate-on-start` and
//! `caduceus migrate`; and the rule that the database password never shows (help, errors,
//! logs).
//!
//! The tests that talk to PostgreSQL need `CADUCEUS_TEST_DATABASE_URL` and are skipped
//! without it (failed under `CADUCEUS_TEST_REQUIRE_POSTGRES=1`).

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Server, pg};
use serde_json::json;

/// Runs the binary with `args`, killing it after `limit` (a server that should have refused
/// to start must not hang the test).
fn run(args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Output {
    let mut command = Command::new(common::binary());
    command
        .args(args)
        .env_remove("CADUCEUS_DATABASE_URL")
        .env_remove("CADUCEUS_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start caduceus");
    let deadline = Instant::now() + limit;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("caduceus output")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const SECRET: &str = "Pw-9f27c1e4";

#[test]
fn a_database_url_is_never_echoed_by_help_or_a_refused_value() {
    let url = format!("postgres://fhir:{SECRET}@db.example:5432/fhir");
    let help = run(
        &["serve", "--help"],
        &[("CADUCEUS_DATABASE_URL", &url)],
        Duration::from_secs(30),
    );
    assert!(help.status.success());
    assert!(text(&help).contains("--database"), "{}", text(&help));
    assert!(!text(&help).contains(SECRET), "{}", text(&help));

    let wrong_scheme = format!("postgress://fhir:{SECRET}@db.example/fhir");
    for args in [
        vec!["migrate", "--database", wrong_scheme.as_str()],
        vec!["copy", "--from", wrong_scheme.as_str(), "--to", "./x"],
    ] {
        let out = run(&args, &[], Duration::from_secs(30));
        assert!(!out.status.success());
        assert!(text(&out).contains("postgres://"), "{}", text(&out));
        assert!(!text(&out).contains(SECRET), "{}", text(&out));
    }
}

#[test]
fn a_refused_connection_names_host_and_database_only() {
    let Some(admin) = pg::admin_url_or_skip("postgres_cli::a_refused_connection") else {
        return;
    };
    // The right server with a wrong password: PostgreSQL refuses the login.
    let url = pg::url_with_database(&admin, "postgres");
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let wrong = format!("{scheme}://postgres:{SECRET}@{host}");
    for args in [
        vec![
            "--log-format",
            "json",
            "migrate",
            "--database",
            wrong.as_str(),
        ],
        vec![
            "--log-format",
            "json",
            "serve",
            "--insecure-dev-mode",
            "--listen",
            "127.0.0.1:0",
            "--database",
            wrong.as_str(),
        ],
    ] {
        let out = run(&args, &[], Duration::from_secs(60));
        let all = text(&out);
        assert!(!out.status.success(), "{all}");
        assert!(!all.contains(SECRET), "the password leaked: {all}");
        assert!(
            all.contains(host.split('/').next().unwrap_or(host)),
            "{all}"
        );
    }
}

#[test]
fn migrate_on_start_false_waits_for_caduceus_migrate() {
    let Some(admin) = pg::admin_url_or_skip("postgres_cli::migrate_on_start_false") else {
        return;
    };
    let db = pg::TestDatabase::create(&admin);
    let tmp = tempfile::tempdir().expect("temp dir");
    // Set from the configuration file: the URL, and a boolean that takes a value.
    let config = tmp.path().join("caduceus.toml");
    std::fs::write(
        &config,
        format!(
            "database = \"{}\"\nmigrate-on-start = false\nlisten = \"127.0.0.1:0\"\n",
            db.url
        ),
    )
    .expect("write config");
    let config = config.to_str().expect("UTF-8 path");

    let refused = run(
        &["--config", config, "serve", "--insecure-dev-mode"],
        &[],
        Duration::from_secs(60),
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("caduceus migrate"),
        "{}",
        text(&refused)
    );

    // The variable works as the flag does.
    let migrated = run(
        &["migrate"],
        &[("CADUCEUS_DATABASE_URL", &db.url)],
        Duration::from_secs(60),
    );
    assert!(migrated.status.success(), "{}", text(&migrated));
    assert!(text(&migrated).contains("applied migration 1"));

    let server = Server::start_with_database(&db.url, &["--migrate-on-start", "false"]);
    let created = server.post(
        "Patient",
        &json!({"resourceType": "Patient", "active": true}),
    );
    created.expect(201);
    // The store names its target `user@host:port/db`; the password never appears. (The
    // test password may be a common word, so its `:password@` form is what is looked for.)
    let logs = server.logs().join("\n");
    let password = db
        .url
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, pw)| pw.to_owned())
        .unwrap_or_default();
    assert!(!logs.contains(&db.url), "the URL reached the log: {logs}");
    if !password.is_empty() {
        assert!(
            !logs.contains(&format!(":{password}@")),
            "the password reached the log: {logs}"
        );
    }
}
