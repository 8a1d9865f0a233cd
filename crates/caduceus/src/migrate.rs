//! `caduceus migrate`: brings a store's schema up to this binary's, as a step of its own
//! (a rolling upgrade runs it before new replicas start; see docs/postgres.md).
//!
//! - PostgreSQL: applies the embedded migrations that the database lacks, each in its own
//!   transaction, under the store's advisory lock (so it is safe while replicas run, and
//!   while another `migrate` or a starting replica migrates too), and prints each one applied
//!   and the version now.
//! - SQLite: opening the embedded store migrates it (one process owns the file), so this
//!   opens it and reports its version.

use anyhow::Context;
use caduceus_store_sqlite::SqliteStore;

use crate::cli::MigrateArgs;
use crate::store::Location;

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    match args.store.location() {
        Location::Postgres(url) => {
            let options = caduceus_store_postgres::PgOptions {
                ca_file: args.store.database_ca_file.clone(),
                ..Default::default()
            };
            let report = caduceus_store_postgres::migrate_with_options(url.expose(), &options)
                .await
                .with_context(|| {
                    format!("cannot migrate the PostgreSQL store at {}", url.redacted())
                })?;
            if report.applied.is_empty() {
                println!(
                    "{}: already at schema version {}; nothing to apply",
                    url.redacted(),
                    report.current
                );
            }
            for (version, name) in &report.applied {
                println!("applied migration {version} ({name})");
            }
            if !report.applied.is_empty() {
                println!(
                    "{}: now at schema version {}",
                    url.redacted(),
                    report.current
                );
            }
        }
        Location::Folder(dir) => {
            let store = SqliteStore::open(&dir)
                .with_context(|| format!("cannot open the store in {}", dir.display()))?;
            println!(
                "{}: at schema version {} (this binary's newest is {}); the embedded store \
                 migrates whenever it is opened",
                store.db_path().display(),
                store.schema_version(),
                SqliteStore::supported_schema_version()
            );
        }
    }
    Ok(())
}
