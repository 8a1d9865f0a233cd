//! `caduceus`: the one binary. It parses configuration (flags, `CADUCEUS_*` environment
//! variables, an optional TOML file), sets up logging, opens the store and runs a command:
//! `serve`, `import`, `demo-data`, `reindex`, `migrate` or `copy`.
//!
//! Invariant: only this crate reads configuration and uses `anyhow`; the libraries get typed
//! settings and return typed errors.

mod accounts;
mod auth_setup;
mod cli;
mod copy;
mod demo;
mod import;
mod logging;
mod migrate;
mod reindex;
mod serve;
mod store;
mod tls_args;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::load()?;
    logging::init(cli.log_format, &cli.log_level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            cli::Command::Serve(args) => serve::run(*args).await,
            cli::Command::Import(args) => import::run(args).await,
            cli::Command::DemoData(args) => demo::run(args).await,
            cli::Command::Reindex(args) => reindex::run(args).await,
            cli::Command::Migrate(args) => migrate::run(args).await,
            cli::Command::Copy(args) => copy::run(args).await,
            cli::Command::Users(command) => accounts::users(command).await,
            cli::Command::Clients(command) => accounts::clients(command).await,
            cli::Command::Auth(command) => accounts::auth(command).await,
        }
    })
}

// clap's derive needs the trait in scope for `Cli::parse_from`.
#[allow(unused_imports)]
use Parser as _;
