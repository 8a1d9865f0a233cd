//! TLS to a real PostgreSQL server with real certificates: the server's own certificate
//! (`SHOW ssl_cert_file`, Debian's self-signed "snakeoil" one on CI, which names
//! `localhost`) serves as the CA file, so every check — trusted or not, host name or not —
//! runs against a genuine handshake.
//!
//! Each test runs again in a child process whose *system* trust store is the public CAs
//! only (`SSL_CERT_FILE` = Debian's bundle, no `SSL_CERT_DIR`): on a Debian machine with
//! `ssl-cert`, /etc/ssl/certs also holds that machine's snakeoil certificate, which would
//! make "trusted only with the CA file" impossible to test.
//!
//! Skipped, saying so, without `CADUCEUS_TEST_DATABASE_URL` (failed instead under
//! `CADUCEUS_TEST_REQUIRE_POSTGRES=1`); skipped even then when the server has `ssl = off`,
//! since there is no TLS to test (Debian's package, which .ci/run installs, turns it on).

use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

use caduceus_store::Store;
use caduceus_store_postgres::testing::{TestDb, fresh_database};
use caduceus_store_postgres::{PgOptions, PgStoreError, PostgresStore, migrate_with_options};

/// Set in the child process that runs a test's body.
const CHILD: &str = "CADUCEUS_TLS_TEST_CHILD";

/// True in the child, which runs the test's body; in the test's own process, runs the test
/// `name` in a child with the public CAs as the system's trust store, checks that it passed
/// (or skipped), and returns false.
fn in_child(name: &str) -> bool {
    in_child_trusting(name, true)
}

/// [`in_child`], with the public CAs as the system's trust store (`public`) or nothing.
fn in_child_trusting(name: &str, public: bool) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let bundle = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
    let dir = std::env::temp_dir().join(format!("caduceus-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let trust = if public && bundle.is_file() {
        bundle
    } else {
        // No public bundle here: trust nothing but the CA files.
        let empty = dir.join("none.pem");
        std::fs::write(&empty, "").expect("write");
        empty
    };
    let out = std::process::Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("SSL_CERT_FILE", &trust)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run the child test");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed in its child process");
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in its child"
    );
    false
}

/// What a test needs: its database, the server's certificate, and the host name the
/// certificate names (resolving to this machine).
struct Tls {
    db: TestDb,
    cert: PathBuf,
    cert_host: String,
}

/// The test's database and the server's TLS facts, or `None` after saying why the test is
/// skipped.
async fn setup() -> Option<Tls> {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    let db = fresh_database()?;
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let setting = |name: &'static str| {
        let client = &client;
        async move {
            let row = client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .expect("SHOW");
            row.get::<_, String>(0)
        }
    };
    if setting("ssl").await != "on" {
        println!("skipped {test}: the PostgreSQL server has ssl = off, so there is no TLS to test");
        return None;
    }
    let cert = PathBuf::from(setting("ssl_cert_file").await);
    let required = std::env::var("CADUCEUS_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    if std::fs::read(&cert).is_err() {
        let why = format!(
            "the server's certificate {} is not readable here (is the server remote?)",
            cert.display()
        );
        assert!(!required, "{test}: {why}");
        println!("skipped {test}: {why}");
        return None;
    }
    let config: tokio_postgres::Config = db.url().parse().expect("url");
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let Some(cert_host) = cert_host(&cert, port) else {
        let why = format!(
            "the certificate {} names no host that resolves to this machine",
            cert.display()
        );
        assert!(!required, "{test}: {why}");
        println!("skipped {test}: {why}");
        return None;
    };
    Some(Tls {
        db,
        cert,
        cert_host,
    })
}

/// A DNS name in `cert` (its subjectAltNames, else its CN, as `openssl` prints them) that
/// resolves to a loopback address; `localhost` when `openssl` is not installed.
fn cert_host(cert: &Path, port: u16) -> Option<String> {
    let openssl = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(["x509", "-noout", "-in"])
            .arg(cert)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let mut names: Vec<String> = Vec::new();
    if let Some(text) = openssl(&["-ext", "subjectAltName"]) {
        names.extend(
            text.split([',', '\n'])
                .filter_map(|part| part.trim().strip_prefix("DNS:"))
                .map(str::to_owned),
        );
    }
    if names.is_empty()
        && let Some(text) = openssl(&["-subject", "-nameopt", "sep_multiline"])
    {
        names.extend(
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("CN="))
                .map(str::to_owned),
        );
    }
    if names.is_empty() {
        names.push("localhost".into());
    }
    names.into_iter().find(|name| {
        (name.as_str(), port)
            .to_socket_addrs()
            .is_ok_and(|mut addrs| addrs.any(|a| a.ip().is_loopback()))
    })
}

fn with_ca(cert: &Path) -> PgOptions {
    PgOptions {
        ca_file: Some(cert.to_path_buf()),
        ..PgOptions::default()
    }
}

/// Whether the store's pooled connection, and every connection of the store to its
/// database (the lock session's too), use TLS.
async fn pooled_ssl(store: &PostgresStore) -> bool {
    let client = store.pool().get().await.expect("pooled connection");
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

/// Every connection to the test database that Caduceus opened (`application_name`
/// caduceus), and how many of them use TLS.
async fn caduceus_connections(store: &PostgresStore) -> (i64, i64) {
    let client = store.pool().get().await.expect("pooled connection");
    let row = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datname = current_database() AND a.application_name = 'caduceus'",
            &[],
        )
        .await
        .expect("pg_stat_activity");
    (row.get(0), row.get(1))
}

fn connect_error(err: &PgStoreError) -> (String, String) {
    match err {
        PgStoreError::Connect { target, source } => (target.clone(), source.to_string()),
        other => panic!("expected a Connect error, got {other:?}"),
    }
}

#[tokio::test]
async fn require_with_the_ca_file_and_the_certificates_host_name_connects_over_tls() {
    if !in_child("require_with_the_ca_file_and_the_certificates_host_name_connects_over_tls") {
        return;
    }
    let Some(t) = setup().await else { return };
    let url = t.db.url_with(&t.cert_host, "sslmode=require");
    let store = PostgresStore::open(&url, &with_ca(&t.cert))
        .await
        .expect("a verified TLS connection");
    assert!(pooled_ssl(&store).await, "pg_stat_ssl says plain");
    // The lock session connects as the pool does.
    let lock = store.lock("Patient?identifier=a|1").await.expect("lock");
    let (all, tls) = caduceus_connections(&store).await;
    assert!(all >= 2, "the pool and the lock session: {all}");
    assert_eq!(all, tls, "every connection of the store uses TLS");
    drop(lock);
    store.ping().await.expect("ping");
}

#[tokio::test]
async fn require_without_the_ca_file_refuses_the_untrusted_certificate() {
    if !in_child("require_without_the_ca_file_refuses_the_untrusted_certificate") {
        return;
    }
    let Some(t) = setup().await else { return };
    let url = t.db.url_with(&t.cert_host, "sslmode=require");
    let err = PostgresStore::open(&url, &PgOptions::default())
        .await
        .expect_err("a self-signed certificate is not in the system's trust store");
    println!("refused as expected: {err}");
    let (target, why) = connect_error(&err);
    assert!(target.contains(&t.cert_host), "{target}");
    assert!(target.ends_with(t.db.name()), "{target}");
    assert!(why.contains("not trusted"), "{why}");
    // The target names user, host, port and database, never the password.
    let text = format!("{err} {err:?}");
    assert!(!text.to_lowercase().contains("password"), "{text}");
    assert!(!text.contains(&format!(":{}@", "caduceus")), "{text}");
    // migrate() uses the same connector, and refuses the same way.
    let err = migrate_with_options(&url, &PgOptions::default())
        .await
        .expect_err("refused");
    assert!(connect_error(&err).1.contains("not trusted"), "{err}");
}

#[tokio::test]
async fn verify_full_refuses_a_host_the_certificate_does_not_name() {
    if !in_child("verify_full_refuses_a_host_the_certificate_does_not_name") {
        return;
    }
    let Some(t) = setup().await else { return };
    let url = t.db.url_with("127.0.0.1", "sslmode=verify-full");
    let err = PostgresStore::open(&url, &with_ca(&t.cert))
        .await
        .expect_err("the certificate does not name 127.0.0.1");
    println!("refused as expected: {err}");
    let (target, why) = connect_error(&err);
    assert!(target.contains("127.0.0.1"), "{target}");
    assert!(why.contains("host name mismatch"), "{why}");
    // By the certificate's own name, the same settings connect.
    let url = t.db.url_with(&t.cert_host, "sslmode=verify-full");
    let store = PostgresStore::open(&url, &with_ca(&t.cert))
        .await
        .expect("verify-full by the certificate's name");
    assert!(pooled_ssl(&store).await);
}

#[tokio::test]
async fn verify_ca_checks_the_chain_but_not_the_host_name() {
    if !in_child("verify_ca_checks_the_chain_but_not_the_host_name") {
        return;
    }
    let Some(t) = setup().await else { return };
    // The CA file given in the URL, as libpq spells it.
    let url = t.db.url_with(
        "127.0.0.1",
        &format!("sslmode=verify-ca sslrootcert='{}'", t.cert.display()),
    );
    let store = PostgresStore::open(&url, &PgOptions::default())
        .await
        .expect("verify-ca ignores the host name");
    assert!(pooled_ssl(&store).await, "pg_stat_ssl says plain");
    // The chain is still checked: without the CA, refused.
    let url = t.db.url_with("127.0.0.1", "sslmode=verify-ca");
    let err = PostgresStore::open(&url, &PgOptions::default())
        .await
        .expect_err("untrusted chain");
    assert!(connect_error(&err).1.contains("not trusted"), "{err}");
    // And migrate() connects with the same settings.
    let url = t.db.url_with("127.0.0.1", "sslmode=verify-ca");
    let report = migrate_with_options(&url, &with_ca(&t.cert))
        .await
        .expect("migrate over verify-ca");
    assert!(report.current >= 1);
}

#[tokio::test]
async fn disable_connects_in_plain_text() {
    if !in_child("disable_connects_in_plain_text") {
        return;
    }
    let Some(t) = setup().await else { return };
    let url = t.db.url_with(&t.cert_host, "sslmode=disable");
    let store = PostgresStore::open(&url, &with_ca(&t.cert))
        .await
        .expect("plain");
    assert!(!pooled_ssl(&store).await, "pg_stat_ssl says TLS");
}

#[tokio::test]
async fn prefer_uses_tls_only_with_a_verified_certificate() {
    if !in_child("prefer_uses_tls_only_with_a_verified_certificate") {
        return;
    }
    let Some(t) = setup().await else { return };
    // The default sslmode: with the CA, a verified TLS session.
    let url = t.db.url_with(&t.cert_host, "");
    let store = PostgresStore::open(&url, &with_ca(&t.cert))
        .await
        .expect("prefer with the CA");
    assert!(
        pooled_ssl(&store).await,
        "prefer with a trusted certificate uses TLS"
    );
    drop(store);
    // Without it, the certificate is never accepted: prefer goes on in plain text.
    let url = t.db.url_with(&t.cert_host, "sslmode=prefer");
    let store = PostgresStore::open(&url, &PgOptions::default())
        .await
        .expect("prefer without the CA");
    assert!(
        !pooled_ssl(&store).await,
        "an unverified certificate was used"
    );
    let lock = store.lock("k").await.expect("lock");
    let (_, tls) = caduceus_connections(&store).await;
    assert_eq!(tls, 0, "no connection uses TLS");
    drop(lock);
}

#[tokio::test]
async fn a_missing_ca_file_is_a_start_up_error_naming_it() {
    if !in_child("a_missing_ca_file_is_a_start_up_error_naming_it") {
        return;
    }
    let Some(t) = setup().await else { return };
    let missing = PathBuf::from("/nonexistent/caduceus-ca.pem");
    for (url, options) in [
        (
            t.db.url_with(&t.cert_host, "sslmode=verify-full"),
            with_ca(&missing),
        ),
        (
            t.db.url_with(
                &t.cert_host,
                &format!("sslmode=require sslrootcert={}", missing.display()),
            ),
            PgOptions::default(),
        ),
        // Even when TLS is off: a wrong path is found now, not when TLS is turned on.
        (
            t.db.url_with(&t.cert_host, "sslmode=disable"),
            with_ca(&missing),
        ),
    ] {
        let err = PostgresStore::open(&url, &options)
            .await
            .expect_err("missing CA file");
        println!("refused as expected: {err}");
        assert!(
            matches!(&err, PgStoreError::CaFile { path, .. } if *path == missing),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("/nonexistent/caduceus-ca.pem"),
            "{err}"
        );
    }
    // A file that holds no certificate.
    let dir = std::env::temp_dir().join(format!("caduceus-tls-{}", t.db.name()));
    std::fs::create_dir_all(&dir).expect("dir");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let err = PostgresStore::open(
        &t.db.url_with(&t.cert_host, "sslmode=require"),
        &with_ca(&empty),
    )
    .await
    .expect_err("no certificate in the file");
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_no_ca_at_all_prefer_goes_plain_and_require_refuses_to_start() {
    if !in_child_trusting(
        "with_no_ca_at_all_prefer_goes_plain_and_require_refuses_to_start",
        false,
    ) {
        return;
    }
    let Some(t) = setup().await else { return };
    // An empty system store and no CA file: TLS could never be verified.
    let store = PostgresStore::open(&t.db.url_with(&t.cert_host, ""), &PgOptions::default())
        .await
        .expect("prefer without any CA");
    assert!(!pooled_ssl(&store).await);
    let err = PostgresStore::open(
        &t.db.url_with(&t.cert_host, "sslmode=verify-full"),
        &PgOptions::default(),
    )
    .await
    .expect_err("nothing to verify with");
    println!("refused as expected: {err}");
    assert!(matches!(err, PgStoreError::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("--database-ca-file"), "{err}");
    // The CA file alone is enough.
    let store = PostgresStore::open(
        &t.db.url_with(&t.cert_host, "sslmode=verify-full"),
        &with_ca(&t.cert),
    )
    .await
    .expect("the CA file alone");
    assert!(pooled_ssl(&store).await);
}
