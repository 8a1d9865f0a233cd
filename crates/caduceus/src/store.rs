//! Which store a command works on, and opening it: the embedded SQLite store in a data
//! folder, or PostgreSQL at a `postgres://` URL. Every command opens its store here, so the
//! choice (and the rule that a database password never reaches a log line, an error or
//! `--help`) lives in one place.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use caduceus_engine::{Engine, EngineConfig};
use caduceus_store::Store;
use caduceus_store_postgres::{PgOptions, PostgresStore};
use caduceus_store_sqlite::SqliteStore;

use crate::cli::StoreArgs;

/// A PostgreSQL connection URL. Its `Debug` and `Display` show host and database only: the
/// URL carries the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Accepts `postgres://…` and `postgresql://…` URLs, and the empty text (an unset
    /// variable in a compose file), which [`StoreArgs::location`] takes as no database.
    pub fn parse(text: &str) -> Result<DatabaseUrl, String> {
        if text.is_empty() {
            return Ok(DatabaseUrl(String::new()));
        }
        let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(DatabaseUrl(text.to_owned()))
        } else {
            // The text is not echoed: it may be a URL with a password in a wrong form.
            Err("expected a postgres:// or postgresql:// URL".to_owned())
        }
    }

    /// The URL itself, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `host[:port]/database`, without user, password or parameters.
    pub fn redacted(&self) -> String {
        let rest = self.0.split_once("://").map_or("", |(_, r)| r);
        // Parameters (`?sslmode=…&password=…`) and the fragment are left out entirely.
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        // The user info ends at the *last* `@` of the authority (a password may hold `@`).
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if host.is_empty() { "localhost" } else { host };
        let database = if database.is_empty() {
            "(default database)"
        } else {
            database
        };
        format!("{host}/{database}")
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgres {}", self.redacted())
    }
}

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The embedded store in this data folder.
    Folder(PathBuf),
    /// PostgreSQL.
    Postgres(DatabaseUrl),
}

impl Location {
    /// A `postgres://` URL is PostgreSQL; anything else is a data folder.
    pub fn parse(text: &str) -> Result<Location, String> {
        match DatabaseUrl::parse(text) {
            Ok(url) if !url.0.is_empty() => Ok(Location::Postgres(url)),
            Err(_) if text.contains("://") => {
                Err("expected a data folder or a postgres:// or postgresql:// URL".to_owned())
            }
            _ if text.is_empty() => Err("expected a data folder or a URL".to_owned()),
            _ => Ok(Location::Folder(PathBuf::from(text))),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Folder(dir) => write!(f, "SQLite {}", dir.display()),
            Location::Postgres(url) => url.fmt(f),
        }
    }
}

impl StoreArgs {
    /// `--database` when given, else `--data-dir`.
    pub fn location(&self) -> Location {
        match &self.database {
            Some(url) if !url.0.is_empty() => Location::Postgres(url.clone()),
            _ => Location::Folder(self.data_dir.clone()),
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// PostgreSQL pool size (the store's default when `None`).
    pub pool_size: Option<usize>,
    /// Apply missing PostgreSQL migrations at open (under the store's advisory lock, so
    /// replicas starting together apply each once). The embedded store always migrates.
    pub migrate: bool,
    /// `--database-ca-file`: CA certificates to trust for PostgreSQL's TLS certificate.
    pub ca_file: Option<PathBuf>,
}

/// Opens the store at `location`.
pub async fn open_store(
    location: &Location,
    options: OpenOptions,
) -> anyhow::Result<Arc<dyn Store>> {
    match location {
        Location::Folder(dir) => {
            let store = SqliteStore::open(dir)
                .with_context(|| format!("cannot open the store in {}", dir.display()))?;
            Ok(Arc::new(store))
        }
        Location::Postgres(url) => {
            let mut pg = PgOptions::default();
            if let Some(n) = options.pool_size {
                pg.pool_size = n.max(1);
            }
            pg.migrate = options.migrate;
            pg.ca_file = options.ca_file;
            // The store logs its own "opened" line (target, schema version, pool size).
            let store = PostgresStore::open(url.expose(), &pg)
                .await
                .with_context(|| {
                    format!("cannot open the PostgreSQL store at {}", url.redacted())
                })?;
            Ok(Arc::new(store))
        }
    }
}

/// Opens the store `args` name (migrating PostgreSQL when `migrate`) and an engine over it.
pub async fn open_engine(args: &StoreArgs, migrate: bool) -> anyhow::Result<Engine> {
    let store = open_store(
        &args.location(),
        OpenOptions {
            pool_size: args.db_pool_size,
            migrate,
            ca_file: args.database_ca_file.clone(),
        },
    )
    .await?;
    Ok(Engine::new(store, EngineConfig::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials_or_parameters() {
        let url = DatabaseUrl::parse("postgres://caduceus:s3cr@t@db.example:5432/fhir?password=x")
            .unwrap();
        assert_eq!(url.redacted(), "db.example:5432/fhir");
        assert!(!format!("{url:?} {url}").contains("s3cr"));
        let url = DatabaseUrl::parse("postgresql://db/fhir").unwrap();
        assert_eq!(url.redacted(), "db/fhir");
        let url = DatabaseUrl::parse("POSTGRES://u:p@/x").unwrap();
        assert_eq!(url.redacted(), "localhost/x");
        assert!(DatabaseUrl::parse("mysql://u:p@h/d").is_err());
        assert!(Location::parse("").is_err());
    }

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("./data").unwrap(),
            Location::Folder(PathBuf::from("./data"))
        );
        assert!(matches!(
            Location::parse("postgres://h/d").unwrap(),
            Location::Postgres(_)
        ));
        let err = Location::parse("mysql://u:secret@h/d").unwrap_err();
        assert!(!err.contains("secret"));
    }
}
