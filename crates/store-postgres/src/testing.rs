//! Test support (cargo feature `testing`): a fresh, empty database per test on a real
//! PostgreSQL server, dropped when the test ends.
//!
//! The server is named by `CADUCEUS_TEST_DATABASE_URL` (an admin URL, e.g.
//! `postgres://postgres:caduceus@127.0.0.1:5432/postgres`). When it is unset,
//! [`fresh_database`] prints `skipped <test>: PostgreSQL not available (...)` and returns
//! `None`, so `cargo test` passes on a machine without PostgreSQL; with
//! `CADUCEUS_TEST_REQUIRE_POSTGRES=1` (CI) it panics instead, so a missing server cannot
//! pass for green.
//!
//! Creating and dropping a database runs on a short-lived thread with its own runtime, so
//! the helper works the same from plain `#[test]`s and from inside `#[tokio::test]`s.

/// The environment variable naming the admin URL of the test server.
pub const DATABASE_URL_VAR: &str = "CADUCEUS_TEST_DATABASE_URL";

/// Set to `1` to make a missing test server a failure instead of a skip.
pub const REQUIRE_VAR: &str = "CADUCEUS_TEST_REQUIRE_POSTGRES";

/// A database created for one test; dropped (with its connections) when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    /// The URL of the test's own database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name (`caduceus_t_<random>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the test's database on `host` instead of the server's (the same port,
    /// user and password), with `params` (key-value pairs such as `sslmode=verify-full`)
    /// appended: for tests of how a host name and TLS settings are checked.
    pub fn url_with(&self, host: &str, params: &str) -> String {
        let mut config: tokio_postgres::Config = match self.url.parse() {
            Ok(c) => c,
            Err(e) => panic!("the test database's URL does not parse: {e}"),
        };
        let ports = config.get_ports().to_vec();
        let mut moved = tokio_postgres::Config::new();
        moved.host(host);
        if let Some(port) = ports.first() {
            moved.port(*port);
        }
        if let Some(user) = config.get_user() {
            moved.user(user);
        }
        if let Some(password) = config.get_password() {
            moved.password(password);
        }
        if let Some(db) = config.get_dbname() {
            moved.dbname(db);
        }
        config = moved;
        format!("{} {params}", to_url(&config))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = admin(&self.admin_url, sql) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// A new empty database on the test server, or `None` (after printing why) when no server
/// is configured. Panics when the server is configured but unusable, or when none is
/// configured and [`REQUIRE_VAR`] is `1`.
pub fn fresh_database() -> Option<TestDb> {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    let Ok(admin_url) = std::env::var(DATABASE_URL_VAR) else {
        if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
            panic!(
                "{test}: PostgreSQL is required ({REQUIRE_VAR}=1) but {DATABASE_URL_VAR} is not set"
            );
        }
        println!("skipped {test}: PostgreSQL not available (set {DATABASE_URL_VAR})");
        return None;
    };
    let name = format!("caduceus_t_{}", uuid::Uuid::new_v4().simple());
    if let Err(e) = admin(&admin_url, format!("CREATE DATABASE {name}")) {
        panic!("{test}: cannot create a test database: {e}");
    }
    let mut config: tokio_postgres::Config = match admin_url.parse() {
        Ok(c) => c,
        Err(e) => panic!("{test}: {DATABASE_URL_VAR} is not a valid URL: {e}"),
    };
    config.dbname(&name);
    let url = to_url(&config);
    Some(TestDb {
        admin_url,
        name,
        url,
    })
}

/// A URL for `config` (tokio-postgres has no formatter): key-value form, which the same
/// parsers accept.
fn to_url(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let mut parts = Vec::new();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    if !hosts.is_empty() {
        parts.push(format!("host={}", quote(&hosts.join(","))));
    }
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        parts.push(format!("port={}", ports.join(",")));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote(user)));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!(
            "password={}",
            quote(&String::from_utf8_lossy(password))
        ));
    }
    if let Some(db) = config.get_dbname() {
        parts.push(format!("dbname={}", quote(db)));
    }
    // An admin URL that says `sslmode=disable` means it for the test databases too.
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
        parts.push("sslmode=disable".into());
    }
    parts.join(" ")
}

/// A key-value connection string value, quoted.
fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Runs one statement on the admin database, on a thread of its own.
fn admin(admin_url: &str, sql: String) -> Result<(), String> {
    let admin_url = admin_url.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                .await
                .map_err(|e| crate::map_pg(&e).to_string())?;
            let task = tokio::spawn(conn);
            let result = client
                .batch_execute(&sql)
                .await
                .map_err(|e| crate::map_pg(&e).to_string());
            drop(client);
            let _ = task.await;
            result
        })
    })
    .join()
    .map_err(|_| "the admin thread panicked".to_owned())?
}
