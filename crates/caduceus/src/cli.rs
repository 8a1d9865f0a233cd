//! Command-line flags, `CADUCEUS_*` environment variables and the optional TOML
//! configuration file. Precedence: flag, then environment, then file, then default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{
    ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum,
};

use crate::store::{DatabaseUrl, Location};

#[derive(Debug, Parser)]
#[command(
    name = "caduceus",
    version,
    about = "A FHIR R4 server: secure, fast, container-native"
)]
pub struct Cli {
    /// A TOML file with settings (keys as the long flags, e.g. `listen = "0.0.0.0:8080"`).
    #[arg(long, global = true, env = "CADUCEUS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "CADUCEUS_LOG_FORMAT",
        value_enum,
        default_value = "human"
    )]
    pub log_format: LogFormat,
    /// Log level or filter (e.g. `info`, `caduceus_server=debug`); `CADUCEUS_LOG` overrides.
    #[arg(
        long,
        global = true,
        env = "CADUCEUS_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the FHIR API.
    Serve(Box<ServeArgs>),
    /// Import a Bundle file, NDJSON file, or a folder of them into the store.
    Import(ImportArgs),
    /// Load demo patients into the store (Synthea samples if found, else generated ones).
    DemoData(DemoArgs),
    /// Rebuild the search index of every stored resource (after the search parameters
    /// changed; the server warns at start-up when that is needed).
    Reindex(ReindexArgs),
    /// Apply the schema migrations this binary carries to the store, and say what was
    /// applied and the schema version now.
    Migrate(MigrateArgs),
    /// Copy a whole store (every version, in write order) into an empty one, rebuild the
    /// copy's search index and check that both hold the same counts.
    Copy(CopyArgs),
    /// Users of the built-in authorization server (add, list, remove, reset-totp,
    /// set-password).
    #[command(subcommand)]
    Users(crate::accounts::UsersCommand),
    /// Clients of the built-in authorization server (add, list, remove).
    #[command(subcommand)]
    Clients(crate::accounts::ClientsCommand),
    /// The built-in authorization server's signing key (rotate-key).
    #[command(subcommand)]
    Auth(crate::accounts::AuthCommand),
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The folder of the embedded store; created if absent. Unused with --database.
    #[arg(long, env = "CADUCEUS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// A PostgreSQL URL (`postgres://user:password@host:5432/db`): keep the data there,
    /// shared by every replica, instead of in --data-dir.
    #[arg(
        long,
        env = "CADUCEUS_DATABASE_URL",
        hide_env_values = true,
        value_parser = Quiet(DatabaseUrl::parse)
    )]
    pub database: Option<DatabaseUrl>,
    /// Connections to PostgreSQL in this process's pool (default 16).
    #[arg(long, env = "CADUCEUS_DB_POOL_SIZE")]
    pub db_pool_size: Option<usize>,
    /// A PEM file of CA certificates to trust for PostgreSQL's server certificate, besides
    /// the system's trust store: the CA of a managed database (RDS, Cloud SQL) or of your
    /// organisation. The URL's `sslmode` decides whether TLS is used (docs/postgres.md).
    #[arg(long, env = "CADUCEUS_DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,
}

/// A value parser whose errors never quote the value: clap's own (`invalid value '…'`)
/// would print a mistyped database URL, password and all, to the terminal or a log.
#[derive(Clone, Copy)]
pub struct Quiet<T>(pub fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for Quiet<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let name = arg.map_or_else(|| "a setting".to_owned(), |a| format!("--{}", a.get_id()));
        let fail = |why: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for {}: {why}\n", name.replace('_', "-")),
            )
            .with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| fail("not valid UTF-8"))?;
        (self.0)(text.trim()).map_err(|why| fail(&why))
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. The FHIR base is `http://ADDRESS/fhir`.
    #[arg(long, env = "CADUCEUS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Public base URL of the FHIR API, when behind a gateway (default: from the Host header).
    #[arg(long, env = "CADUCEUS_BASE_URL")]
    pub base_url: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "CADUCEUS_MAX_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds to wait for in-flight requests after SIGTERM before stopping anyway.
    #[arg(long, env = "CADUCEUS_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,
    /// Load demo data at start-up when the store is empty.
    #[arg(long, env = "CADUCEUS_DEMO_DATA")]
    pub demo_data: bool,
    /// Apply missing PostgreSQL schema migrations at start-up (under the database's
    /// advisory lock: replicas starting together apply each once). With `false`, a database
    /// that lacks migrations is refused; run `caduceus migrate` first.
    #[arg(
        long,
        env = "CADUCEUS_MIGRATE_ON_START",
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub migrate_on_start: bool,
    /// Development only: no authentication, no authorization, plain HTTP. Every request
    /// acts as an unrestricted administrator. Logs a warning at every start; never use it
    /// with real patient data.
    #[arg(long, env = "CADUCEUS_INSECURE_DEV_MODE")]
    pub insecure_dev_mode: bool,
    #[command(flatten)]
    pub auth: crate::auth_setup::AuthArgs,
    #[command(flatten)]
    pub tls: crate::tls_args::TlsArgs,
    #[command(flatten)]
    pub hardening: crate::tls_args::HardeningArgs,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CopyArgs {
    /// The store to copy: a data folder of the embedded store, or a postgres:// URL.
    #[arg(long, value_parser = Quiet(Location::parse))]
    pub from: Location,
    /// The store to copy into (created and migrated if needed; it must hold no data): a
    /// data folder or a postgres:// URL.
    #[arg(long, value_parser = Quiet(Location::parse))]
    pub to: Location,
    /// Versions per store transaction.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Connections in each PostgreSQL pool.
    #[arg(long, env = "CADUCEUS_DB_POOL_SIZE")]
    pub db_pool_size: Option<usize>,
    /// A PEM file of CA certificates to trust for PostgreSQL's server certificate, besides
    /// the system's trust store (for either side): the CA of a managed database (RDS, Cloud SQL) or of your
    /// organisation. The URL's `sslmode` decides whether TLS is used (docs/postgres.md).
    #[arg(long, env = "CADUCEUS_DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,
    /// Hide the progress bars (for scripts and logs).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Files or folders: Bundles (`.json`) and NDJSON (`.ndjson`).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Resources per transaction when importing NDJSON.
    #[arg(long, default_value_t = 500)]
    pub chunk_size: usize,
    /// Hide the progress bar (for scripts and logs).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Resources per store transaction.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Rebuild even when the index is current.
    #[arg(long)]
    pub force: bool,
    /// Hide the progress bar (for scripts and logs).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Folder of Synthea bundles to load; when absent or missing, patients are generated.
    #[arg(
        long,
        env = "CADUCEUS_DEMO_SOURCE",
        default_value = "../shared/fhir/synthea"
    )]
    pub source: PathBuf,
    /// How many patients to generate when no Synthea folder is found.
    #[arg(long, default_value_t = 25)]
    pub patients: usize,
}

impl Cli {
    /// Parses flags and environment, then fills what neither set from the config file.
    pub fn load() -> anyhow::Result<Cli> {
        let mut matches = Cli::command().get_matches();
        let config_path = matches.get_one::<PathBuf>("config").cloned();
        if let Some(path) = config_path {
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!("cannot read the configuration file {}", path.display())
            })?;
            let table: BTreeMap<String, toml::Value> = toml::from_str(&text)
                .with_context(|| format!("{} is not valid TOML", path.display()))?;
            let mut args = vec!["caduceus".to_owned()];
            args.extend(std::env::args().skip(1));
            let defaults_only = |m: &ArgMatches, id: &str| {
                matches!(m.value_source(id), Some(ValueSource::DefaultValue) | None)
            };
            let sub = matches.subcommand().map(|(_, m)| m.clone());
            let command = Cli::command();
            let sub_command = matches
                .subcommand_name()
                .and_then(|name| command.find_subcommand(name));
            let mut extra = Vec::new();
            for (key, value) in &table {
                let id = key.replace('-', "_");
                // The argument this key sets for the command being run: one file serves
                // every command, so a key of another command (`listen` for `import`) is
                // skipped; a key of no command at all is a mistake worth an error.
                let arg = command
                    .get_arguments()
                    .chain(sub_command.iter().flat_map(|c| c.get_arguments()))
                    .find(|a| a.get_id() == id.as_str());
                let Some(arg) = arg else {
                    let known_elsewhere = command
                        .get_subcommands()
                        .flat_map(|c| c.get_arguments())
                        .any(|a| a.get_id() == id.as_str());
                    if known_elsewhere {
                        continue;
                    }
                    anyhow::bail!("{} has an unknown setting: {key}", path.display());
                };
                // Asked only of the matches that define the argument (clap's debug builds
                // panic on an id a matches does not know).
                let is_global = command.get_arguments().any(|a| a.get_id() == id.as_str());
                let owner = if is_global {
                    Some(&matches)
                } else {
                    sub.as_ref()
                };
                let unset = owner.is_none_or(|m| defaults_only(m, &id));
                if !unset {
                    continue;
                }
                let takes_value = arg.get_action().takes_values();
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    // A setting with a value (`migrate-on-start = false`) gets it spelled
                    // out; a plain flag is present or absent.
                    toml::Value::Boolean(b) if takes_value => b.to_string(),
                    toml::Value::Boolean(true) => String::new(),
                    toml::Value::Boolean(false) => continue,
                    other => anyhow::bail!(
                        "unsupported value for {key} in the configuration file: {other}"
                    ),
                };
                // `--key=value`, so a value starting with `-` is never taken for a flag.
                let flag = format!("--{}", key.replace('_', "-"));
                extra.push(if text.is_empty() {
                    flag
                } else {
                    format!("{flag}={text}")
                });
            }
            args.extend(extra);
            matches = Cli::command()
                .try_get_matches_from(args)
                .with_context(|| format!("a setting in {} is not valid", path.display()))?;
        }
        Ok(Cli::from_arg_matches(&matches)?)
    }
}
