//! Command-line flags, `CADUCEUS_*` environment variables and the optional TOML
//! configuration file. Precedence: flag, then environment, then file, then default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

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
    Serve(ServeArgs),
    /// Import a Bundle file, NDJSON file, or a folder of them into the store.
    Import(ImportArgs),
    /// Load demo patients into the store (Synthea samples if found, else generated ones).
    DemoData(DemoArgs),
    /// Rebuild the search index of every stored resource (after the search parameters
    /// changed; the server warns at start-up when that is needed).
    Reindex(ReindexArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The folder of the embedded store; created if absent.
    #[arg(long, env = "CADUCEUS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
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
            let mut extra = Vec::new();
            for (key, value) in &table {
                let id = key.replace('-', "_");
                let unset = defaults_only(&matches, &id)
                    && sub.as_ref().is_none_or(|m| defaults_only(m, &id));
                if !unset {
                    continue;
                }
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(true) => String::new(),
                    toml::Value::Boolean(false) => continue,
                    other => anyhow::bail!(
                        "unsupported value for {key} in the configuration file: {other}"
                    ),
                };
                extra.push(format!("--{}", key.replace('_', "-")));
                if !text.is_empty() {
                    extra.push(text);
                }
            }
            args.extend(extra);
            matches = Cli::command()
                .try_get_matches_from(args)
                .with_context(|| format!("a setting in {} is not valid", path.display()))?;
        }
        Ok(Cli::from_arg_matches(&matches)?)
    }
}
