//! Errors: the typed error of opening a store, and the mapping of SQLite errors onto
//! [`StoreError`] for the trait methods.

use std::path::PathBuf;

use caduceus_store::StoreError;
use rusqlite::ffi::ErrorCode;

/// Why a store could not be opened (or an operator command on it failed).
#[derive(Debug, thiserror::Error)]
pub enum SqliteStoreError {
    /// The data folder could not be created or read.
    #[error("data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused to open or configure the database.
    #[error("database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A schema migration failed; the database is left at the previous version.
    #[error("schema migration {version} ({name}) failed: {source}")]
    Migration {
        /// The migration's version number.
        version: i64,
        /// The migration's name.
        name: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer Caduceus: this binary does not know its schema.
    #[error(
        "database schema version {found} is newer than this binary supports ({supported}); \
         upgrade Caduceus"
    )]
    SchemaTooNew {
        /// The schema version in the database.
        found: i64,
        /// The newest schema version this binary knows.
        supported: i64,
    },
    /// The writer thread could not be started.
    #[error("cannot start the writer thread: {0}")]
    Writer(#[source] std::io::Error),
    /// A query on an open store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Maps a SQLite error onto the trait's error: transient conditions (busy, locked, I/O,
/// disk full, cannot open) become [`StoreError::Unavailable`], everything else
/// [`StoreError::Internal`]. The text names the error kind only: SQLite's own messages name
/// tables and columns, never values, and the conversion errors' payloads are left out.
pub(crate) fn map_sqlite(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(err, msg) => {
            let text = match msg {
                Some(m) => format!("sqlite {:?} ({}): {m}", err.code, err.extended_code),
                None => format!("sqlite {:?} ({})", err.code, err.extended_code),
            };
            match err.code {
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::ReadOnly => StoreError::Unavailable(text),
                _ => StoreError::Internal(text),
            }
        }
        rusqlite::Error::FromSqlConversionFailure(col, ty, _) => {
            StoreError::Internal(format!("column {col}: cannot convert from {ty}"))
        }
        rusqlite::Error::IntegralValueOutOfRange(col, _) => {
            StoreError::Internal(format!("column {col}: integer out of range"))
        }
        rusqlite::Error::InvalidColumnType(col, name, ty) => {
            StoreError::Internal(format!("column {col} ({name}): unexpected type {ty}"))
        }
        rusqlite::Error::Utf8Error(col, _) => {
            StoreError::Internal(format!("column {col}: invalid UTF-8"))
        }
        rusqlite::Error::QueryReturnedNoRows => StoreError::Internal("no rows returned".into()),
        rusqlite::Error::ToSqlConversionFailure(_) => {
            StoreError::Internal("a value cannot be bound as an SQL parameter".into())
        }
        other => StoreError::Internal(format!("sqlite client: {}", kind_of(&other))),
    }
}

/// A payload-free description of the rarer client-side errors.
fn kind_of(e: &rusqlite::Error) -> &'static str {
    match e {
        rusqlite::Error::InvalidColumnIndex(_) => "invalid column index",
        rusqlite::Error::InvalidColumnName(_) => "invalid column name",
        rusqlite::Error::InvalidParameterName(_) => "invalid parameter name",
        rusqlite::Error::InvalidParameterCount(_, _) => "invalid parameter count",
        rusqlite::Error::ExecuteReturnedResults => "execute returned results",
        rusqlite::Error::StatementChangedRows(_) => "statement changed an unexpected row count",
        rusqlite::Error::NulError(_) => "string holds a NUL byte",
        rusqlite::Error::InvalidQuery => "invalid query",
        rusqlite::Error::MultipleStatement => "multiple statements",
        _ => "other error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("msg".into()))
    }

    #[test]
    fn transient_errors_are_unavailable() {
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_IOERR,
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_CANTOPEN,
        ] {
            assert!(matches!(
                map_sqlite(failure(code)),
                StoreError::Unavailable(_)
            ));
        }
        for code in [
            rusqlite::ffi::SQLITE_CORRUPT,
            rusqlite::ffi::SQLITE_CONSTRAINT,
        ] {
            assert!(matches!(map_sqlite(failure(code)), StoreError::Internal(_)));
        }
        let conversion = rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Blob,
            "secret content".into(),
        );
        let text = map_sqlite(conversion).to_string();
        assert!(!text.contains("secret"), "{text}");
    }
}
