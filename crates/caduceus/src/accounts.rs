//! `caduceus users ...`, `caduceus clients ...` and `caduceus auth rotate-key`: accounts of
//! the built-in authorization server (`caduceus-authserver`), kept in the store, so they
//! take the same store flags as `migrate`. Passwords come from standard input
//! (`--password-stdin`) or a prompt without echo; a new TOTP enrolment URI or client secret
//! is printed once and never stored in a form that can be shown again.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use caduceus_authserver::{Accounts, Clearance, NewClient, NewClientKind, NewUser};
use clap::{Args, Subcommand};

use crate::cli::StoreArgs;
use crate::store::{OpenOptions, open_store};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user: asks for the password (or reads it with --password-stdin) and prints
    /// the TOTP enrolment URI once (for an authenticator app).
    Add(UserAddArgs),
    /// List users (names, roles, departments, clearance, fhirUser).
    List(StoreOnlyArgs),
    /// Remove a user (its refresh tokens stop working; access tokens expire).
    Remove(UserNameArgs),
    /// Give a user a new TOTP secret and print its enrolment URI once.
    ResetTotp(UserNameArgs),
    /// Set a user's password.
    SetPassword(UserPasswordArgs),
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client (a backend service with a JWKS or a secret, or a public app).
    Add(ClientAddArgs),
    /// List clients.
    List(StoreOnlyArgs),
    /// Remove a client.
    Remove(ClientIdArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Make a new signing key current; the previous public key stays in the JWKS so tokens
    /// signed before keep verifying until they expire. Running servers switch within 30 s.
    RotateKey(StoreOnlyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StoreOnlyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct UserAddArgs {
    /// The username (letters, digits and ._@-).
    pub username: String,
    /// A role (repeat for several): clinician, nurse, scheduler, billing, auditor, admin,
    /// patient, or one the policy defines.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// A department code (repeat for several).
    #[arg(long = "department")]
    pub departments: Vec<String>,
    /// Confidentiality clearance: N, R or V.
    #[arg(long, value_parser = parse_clearance, default_value = "N")]
    pub clearance: Clearance,
    /// The user's FHIR resource, e.g. Practitioner/12 or Patient/7.
    #[arg(long)]
    pub fhir_user: Option<String>,
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct UserNameArgs {
    /// The username.
    pub username: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct UserPasswordArgs {
    /// The username.
    pub username: String,
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["jwks_file", "secret_generate", "public"])))]
pub struct ClientAddArgs {
    /// The client id (letters, digits and ._@-).
    pub client_id: String,
    /// A scope the client may be granted (repeat for several), e.g. "system/*.rs",
    /// "user/Observation.rs", "launch/patient", "offline_access".
    #[arg(long = "scope", required = true)]
    pub scopes: Vec<String>,
    /// A JWKS file of the client's public keys (SMART Backend Services, private_key_jwt).
    #[arg(long)]
    pub jwks_file: Option<PathBuf>,
    /// Generate a client secret (printed once).
    #[arg(long)]
    pub secret_generate: bool,
    /// A public app (authorization code with PKCE, no secret).
    #[arg(long)]
    pub public: bool,
    /// A redirect URI, matched exactly (repeat for several).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// A role of the client's own tokens (backend services; repeat for several).
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// A department code of the client's own tokens (repeat for several).
    #[arg(long = "department")]
    pub departments: Vec<String>,
    /// Confidentiality clearance of the client's own tokens: N, R or V.
    #[arg(long, value_parser = parse_clearance, default_value = "N")]
    pub clearance: Clearance,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ClientIdArgs {
    /// The client id.
    pub client_id: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

fn parse_clearance(text: &str) -> Result<Clearance, String> {
    match text {
        "N" | "R" | "V" => Clearance::from_code(text).ok_or_else(|| "N, R or V".to_owned()),
        _ => Err("the clearance is N, R or V".to_owned()),
    }
}

async fn accounts(store: &StoreArgs) -> anyhow::Result<Accounts> {
    let store = open_store(
        &store.location(),
        OpenOptions {
            pool_size: store.db_pool_size.or(Some(2)),
            migrate: true,
            ca_file: store.database_ca_file.clone(),
        },
    )
    .await?;
    Ok(Accounts::new(Arc::clone(&store)))
}

/// A password from the first line of standard input, or typed twice without echo.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let again =
        rpassword::prompt_password("Password again: ").context("cannot read the password")?;
    anyhow::ensure!(first == again, "the two passwords differ");
    Ok(first)
}

pub async fn users(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add(args) => {
            let accounts = accounts(&args.store).await?;
            let password = read_password(args.password_stdin)?;
            let enrolment = accounts
                .add_user(
                    NewUser {
                        username: args.username.clone(),
                        roles: args.roles,
                        departments: args.departments,
                        clearance: args.clearance,
                        fhir_user: args.fhir_user,
                    },
                    &password,
                )
                .await
                .with_context(|| format!("cannot add user {}", args.username))?;
            println!("user {} added.", args.username);
            println!("TOTP enrolment (shown once; add it to an authenticator app):");
            println!("{}", enrolment.uri);
        }
        UsersCommand::List(args) => {
            let accounts = accounts(&args.store).await?;
            for u in accounts.list_users().await? {
                println!(
                    "{}\troles={}\tdepartments={}\tclearance={}\tfhirUser={}",
                    u.username,
                    u.roles.join(","),
                    u.departments.join(","),
                    u.clearance.code(),
                    u.fhir_user.as_deref().unwrap_or("-")
                );
            }
        }
        UsersCommand::Remove(args) => {
            let accounts = accounts(&args.store).await?;
            if accounts.remove_user(&args.username).await? {
                println!("user {} removed", args.username);
            } else {
                anyhow::bail!("there is no user {}", args.username);
            }
        }
        UsersCommand::ResetTotp(args) => {
            let accounts = accounts(&args.store).await?;
            let enrolment = accounts
                .reset_totp(&args.username)
                .await
                .with_context(|| format!("cannot reset the TOTP of {}", args.username))?;
            println!("new TOTP enrolment for {} (shown once):", args.username);
            println!("{}", enrolment.uri);
        }
        UsersCommand::SetPassword(args) => {
            let accounts = accounts(&args.store).await?;
            let password = read_password(args.password_stdin)?;
            accounts
                .set_password(&args.username, &password)
                .await
                .with_context(|| format!("cannot set the password of {}", args.username))?;
            println!("password of {} set", args.username);
        }
    }
    Ok(())
}

pub async fn clients(command: ClientsCommand) -> anyhow::Result<()> {
    match command {
        ClientsCommand::Add(args) => {
            let kind = if let Some(path) = &args.jwks_file {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let jwks = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?;
                NewClientKind::Jwt(jwks)
            } else if args.secret_generate {
                NewClientKind::Secret
            } else {
                NewClientKind::Public
            };
            let accounts = accounts(&args.store).await?;
            let secret = accounts
                .add_client(NewClient {
                    client_id: args.client_id.clone(),
                    kind,
                    scopes: args.scopes,
                    redirect_uris: args.redirect_uris,
                    roles: args.roles,
                    departments: args.departments,
                    clearance: args.clearance,
                })
                .await
                .with_context(|| format!("cannot add client {}", args.client_id))?;
            println!("client {} added.", args.client_id);
            if let Some(secret) = secret {
                println!("client secret (shown once; only its hash is stored):");
                println!("{secret}");
            }
        }
        ClientsCommand::List(args) => {
            let accounts = accounts(&args.store).await?;
            for c in accounts.list_clients().await? {
                println!(
                    "{}\t{}\tscopes={}\tredirect_uris={}\troles={}\tclearance={}",
                    c.client_id,
                    c.kind,
                    c.scopes.join(" "),
                    c.redirect_uris.join(" "),
                    c.roles.join(","),
                    c.clearance.code()
                );
            }
        }
        ClientsCommand::Remove(args) => {
            let accounts = accounts(&args.store).await?;
            if accounts.remove_client(&args.client_id).await? {
                println!("client {} removed", args.client_id);
            } else {
                anyhow::bail!("there is no client {}", args.client_id);
            }
        }
    }
    Ok(())
}

pub async fn auth(command: AuthCommand) -> anyhow::Result<()> {
    match command {
        AuthCommand::RotateKey(args) => {
            let accounts = accounts(&args.store).await?;
            let kid = accounts.rotate_signing_key().await?;
            println!("new signing key {kid} is current; the previous one stays published");
        }
    }
    Ok(())
}
