//! Errors: the typed error of opening or migrating a store ([`PgStoreError`]), and the
//! mapping of PostgreSQL and pool errors onto [`StoreError`] for the trait methods.
//!
//! Two rules shape this module:
//! - **What may pass is `Unavailable`.** A lost connection, a server shutting down or
//!   starting up, too many connections, a pool with no free connection in time: the server
//!   answers 503 and a client (or load balancer) retries. Serialization failures and
//!   deadlocks are retried inside `write()` first and reach here only when retries ran out.
//! - **No content, no secrets.** PostgreSQL's messages can quote values (`invalid input
//!   syntax for type integer: "…"`, a unique violation's `DETAIL` names the key), so a
//!   database error is reported by its SQLSTATE and the schema objects it names (table,
//!   column, constraint), never by its message or detail; except for class 42 (syntax
//!   errors, undefined or duplicate objects), whose messages name schema objects only. A connection URL is shown only as
//!   `user@host:port/dbname` ([`describe_target`]), never with its password.

use caduceus_store::StoreError;
use tokio_postgres::error::SqlState;

/// Why a store could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    /// The connection URL could not be parsed (the text names the problem, not the URL).
    #[error(
        "invalid PostgreSQL connection URL ({0}); expected \
         postgres://user:password@host:port/database"
    )]
    InvalidUrl(String),
    /// The connection pool could not be built.
    #[error("cannot build the PostgreSQL connection pool: {0}")]
    Pool(String),
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect {
        /// `user@host:port/dbname`, without the password.
        target: String,
        /// What went wrong.
        #[source]
        source: StoreError,
    },
    /// A schema migration failed; the database is left at the previous version.
    #[error("schema migration {version} ({name}) failed: {source}")]
    Migration {
        /// The migration's version number.
        version: i64,
        /// The migration's name.
        name: &'static str,
        /// What PostgreSQL said.
        #[source]
        source: StoreError,
    },
    /// The database lacks migrations this binary needs, and migrating at open is off.
    #[error(
        "database schema is at version {found}, this binary needs {supported}; run \
         `caduceus migrate` (or open with migrations enabled)"
    )]
    MigrationsMissing {
        /// The newest migration applied in the database.
        found: i64,
        /// The newest migration this binary knows.
        supported: i64,
    },
    /// The database has a *contract* migration this binary does not know: a newer Caduceus
    /// removed or changed something this binary relies on.
    #[error(
        "database schema version {found} is newer than this binary supports ({supported}) \
         and migration {contract} removed what this version relies on; upgrade Caduceus"
    )]
    SchemaTooNew {
        /// The newest migration applied in the database.
        found: i64,
        /// The newest migration this binary knows.
        supported: i64,
        /// The first unknown contract migration.
        contract: i64,
    },
    /// A CA certificate file (`--database-ca-file`, `sslrootcert=`) is missing, unreadable or
    /// holds no usable certificate.
    #[error("cannot use the PostgreSQL CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// TLS could not be set up (no trusted CA at all, say).
    #[error("cannot set up TLS to PostgreSQL: {0}")]
    Tls(String),
    /// A query on an open store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Maps a PostgreSQL client error onto the trait's error: conditions that may pass
/// (connection lost or refused, server shutting down or starting, too many connections,
/// serialization failure, deadlock, lock or statement timeout) become
/// [`StoreError::Unavailable`], everything else [`StoreError::Internal`]. The text never
/// holds a value (see the module doc).
pub fn map_pg(e: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("postgres {} ({})", db.code().code(), db.severity());
        for (what, name) in [
            ("table", db.table()),
            ("column", db.column()),
            ("constraint", db.constraint()),
        ] {
            if let Some(name) = name {
                text.push_str(&format!(" {what} {name}"));
            }
        }
        // Class 42 (syntax error or access rule violation: a missing table, a name taken)
        // is about the schema and the SQL, which name objects, never data values.
        if db.code().code().starts_with("42") {
            text.push_str(&format!(": {}", db.message()));
        }
        return if is_transient(db.code()) {
            StoreError::Unavailable(text)
        } else {
            StoreError::Internal(text)
        };
    }
    if let Some(code) = e.code()
        && is_transient(code)
    {
        return StoreError::Unavailable(format!("postgres {}", code.code()));
    }
    // A refused certificate: say which check failed, so the operator knows what to fix.
    // Unavailable, as any connect failure: once the certificate or CA is fixed, the pool
    // reconnects without a restart.
    if let Some(why) = crate::tls::describe_failure(e) {
        return StoreError::Unavailable(why);
    }
    // Client-side errors: a closed connection, I/O, connect failures and timeouts may pass.
    // Their texts are the client's own (kinds and OS messages), never query data.
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    let text = e.to_string();
    if e.is_closed() || io || text.starts_with("error connecting") || text.contains("timeout") {
        StoreError::Unavailable(format!("postgres connection: {text}"))
    } else {
        StoreError::Internal(format!("postgres client: {text}"))
    }
}

/// SQLSTATEs worth a retry: connection exceptions (class 08), insufficient resources
/// (class 53), operator intervention (class 57: shutdown, cannot connect now, query
/// cancelled), serialization failure, deadlock, lock not available.
fn is_transient(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08")
        || c.starts_with("53")
        || c.starts_with("57")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
}

/// True for the errors `write()` retries in a new transaction: serialization failure and
/// deadlock.
pub(crate) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// Maps a pool error: no connection within the wait timeout, a closed pool, or a failed
/// connect are [`StoreError::Unavailable`].
pub(crate) fn map_pool(e: &deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => map_pg(e),
        PoolError::Timeout(kind) => {
            StoreError::Unavailable(format!("no database connection in time ({kind:?})"))
        }
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".into()),
        PoolError::NoRuntimeSpecified => {
            StoreError::Internal("the connection pool has no runtime".into())
        }
        PoolError::PostCreateHook(_) => {
            StoreError::Unavailable("a new database connection failed its set-up".into())
        }
    }
}

/// `user@host:port/dbname` of a connection configuration: what an operator needs to
/// recognise the target, without the password.
pub(crate) fn describe_target(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or("?"),
        hosts.join(","),
        config.get_dbname().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_description_has_no_password() {
        let config: tokio_postgres::Config = "postgres://app:s3cret@db.example:6543/fhir"
            .parse()
            .expect("url");
        let text = describe_target(&config);
        assert_eq!(text, "app@db.example:6543/fhir");
        assert!(!text.contains("s3cret"));
    }

    #[test]
    fn transient_states() {
        for code in [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_FAILURE,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ] {
            assert!(is_transient(&code), "{}", code.code());
        }
        for code in [SqlState::UNIQUE_VIOLATION, SqlState::SYNTAX_ERROR] {
            assert!(!is_transient(&code), "{}", code.code());
        }
    }
}
