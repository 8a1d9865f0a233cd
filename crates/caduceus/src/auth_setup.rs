//! How `caduceus serve` authenticates: from the flags (`AuthArgs`) to the server's
//! [`AuthMode`]. Secure by default: without `--insecure-dev-mode` every FHIR request needs
//! a bearer token from a trusted issuer, and with no issuer configured nobody gets in.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use axum::Router;
use caduceus_access::{Policy, Principal};
use caduceus_auth::{
    AuthFile, Authenticator, ClaimMapping, IssuerConfig, JwkSet, KeySource, RevocationCheck,
    RevocationError,
};
use caduceus_authserver::{AuthServer, AuthServerConfig};
use caduceus_server::{AuthFailure, AuthMode, Authenticate, Credentials};
use caduceus_store::Store;
use clap::{ArgAction, Args, ValueEnum};

use crate::cli::ServeArgs;

/// The realm named in `WWW-Authenticate`.
const REALM: &str = "caduceus";

/// Authentication and authorization flags of `caduceus serve`.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// An OpenID Connect issuer whose access tokens are accepted (its keys are found by
    /// discovery). For several issuers, use --auth-config.
    #[arg(long, env = "CADUCEUS_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The audience the issuer's tokens must name (default: the public base URL).
    #[arg(long, env = "CADUCEUS_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// The issuer's JWKS URL, when it does not publish OpenID Connect discovery.
    #[arg(long, env = "CADUCEUS_OIDC_JWKS_URI")]
    pub oidc_jwks_uri: Option<String>,
    /// Where the issuer puts roles and client ids: caduceus (`roles`), keycloak
    /// (`realm_access.roles`), entra (`roles`, `azp`), okta (`groups`).
    #[arg(long, env = "CADUCEUS_OIDC_CLAIMS", value_enum, default_value_t = ClaimPreset::Caduceus)]
    pub oidc_claims: ClaimPreset,
    /// Extra CA certificates (PEM) for the issuer's URLs.
    #[arg(long, env = "CADUCEUS_OIDC_CA_FILE")]
    pub oidc_ca_file: Option<PathBuf>,
    /// A TOML file of trusted issuers (`[[issuer]]` tables; docs/security.md).
    #[arg(long, env = "CADUCEUS_AUTH_CONFIG")]
    pub auth_config: Option<PathBuf>,
    /// The role policy (TOML; default: the built-in one, docs/security.md).
    #[arg(long, env = "CADUCEUS_POLICY_FILE")]
    pub policy_file: Option<PathBuf>,
    /// Run the built-in OAuth2 / SMART authorization server at `<origin>/auth` (needs
    /// --base-url, the public FHIR base URL); its tokens are accepted beside any issuer's.
    #[arg(long, env = "CADUCEUS_AUTH_SERVER", action = ArgAction::SetTrue)]
    pub auth_server: bool,
    /// A PEM (PKCS#8, P-256) signing key for the built-in server, instead of the one it
    /// generates and keeps in the store.
    #[arg(long, env = "CADUCEUS_AUTH_SIGNING_KEY_FILE")]
    pub auth_signing_key_file: Option<PathBuf>,
}

/// What `serve` needs for authentication.
pub struct AuthSetup {
    /// How the API authenticates.
    pub mode: AuthMode,
    /// The built-in authorization server's routes (none without `--auth-server`).
    pub routes: Router,
    /// Its SMART configuration document.
    pub smart_configuration: Option<serde_json::Value>,
}

/// Claim layouts of common identity providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClaimPreset {
    /// Caduceus' own authorization server.
    Caduceus,
    /// Keycloak.
    Keycloak,
    /// Microsoft Entra ID.
    Entra,
    /// Okta.
    Okta,
}

impl ClaimPreset {
    fn mapping(self) -> ClaimMapping {
        match self {
            ClaimPreset::Caduceus => ClaimMapping::default(),
            ClaimPreset::Keycloak => ClaimMapping::keycloak(),
            ClaimPreset::Entra => ClaimMapping::entra_id(),
            ClaimPreset::Okta => ClaimMapping::okta(),
        }
    }
}

/// The server's authentication for these flags (opens the built-in authorization server
/// over `store` when asked).
pub async fn auth_setup(args: &ServeArgs, store: Arc<dyn Store>) -> anyhow::Result<AuthSetup> {
    if args.insecure_dev_mode {
        return Ok(AuthSetup {
            mode: AuthMode::Insecure,
            routes: Router::new(),
            smart_configuration: None,
        });
    }
    let auth = &args.auth;
    let policy = match &auth.policy_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the policy file {}", path.display()))?;
            Policy::parse(&text).with_context(|| format!("policy file {}", path.display()))?
        }
        None => Policy::default_policy(),
    };
    let mut issuers: Vec<IssuerConfig> = Vec::new();
    if let Some(path) = &auth.auth_config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the auth config {}", path.display()))?;
        let file = AuthFile::from_toml(&text)
            .with_context(|| format!("auth config {}", path.display()))?;
        issuers.extend(file.issuer_configs());
    }
    if let Some(issuer) = &auth.oidc_issuer {
        let audience = auth
            .oidc_audience
            .clone()
            .or_else(|| args.base_url.clone())
            .context("--oidc-issuer needs --oidc-audience (or --base-url, the default audience)")?;
        let mut config = IssuerConfig::discover(issuer.clone(), audience);
        if let Some(jwks) = &auth.oidc_jwks_uri {
            config.keys = KeySource::JwksUri(jwks.clone());
        }
        config.claims = auth.oidc_claims.mapping();
        config.ca_file = auth.oidc_ca_file.clone();
        issuers.push(config);
    }
    let mut routes = Router::new();
    let mut smart_configuration = None;
    if auth.auth_server {
        let base = args
            .base_url
            .as_deref()
            .context(
                "--auth-server needs --base-url (the public FHIR base URL, https://host/fhir)",
            )?
            .trim_end_matches('/');
        let origin = base.strip_suffix("/fhir").with_context(|| {
            format!("--base-url must end in /fhir for --auth-server (got {base})")
        })?;
        let mut config = AuthServerConfig::new(format!("{origin}/auth"), base);
        if let Some(path) = &auth.auth_signing_key_file {
            config.signing_key_pem = Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            );
        }
        let server = AuthServer::open(store, config)
            .await
            .context("cannot start the built-in authorization server")?;
        let keys = server.clone();
        let jwks = move || -> JwkSet {
            serde_json::from_value(keys.jwks()).unwrap_or(JwkSet { keys: Vec::new() })
        };
        let mut issuer = IssuerConfig::local(server.issuer(), base, Arc::new(jwks));
        issuer.revocation = Some(Arc::new(Revocations(server.clone())));
        issuers.push(issuer);
        smart_configuration = Some(server.smart_configuration(base));
        routes = server.router();
        tracing::info!(issuer = %server.issuer(), "built-in authorization server on");
    }
    let authenticator: Arc<dyn Authenticate> = if issuers.is_empty() {
        tracing::warn!(
            "no token issuer is configured (--oidc-issuer, --auth-config, --auth-server): \
             every FHIR request will be refused with 401"
        );
        Arc::new(NobodyConfigured)
    } else {
        for i in &issuers {
            tracing::info!(issuer = %i.issuer, "accepting access tokens");
        }
        Arc::new(Tokens(
            Authenticator::new(issuers).context("token issuers")?,
        ))
    };
    Ok(AuthSetup {
        mode: AuthMode::Required {
            authenticator,
            policy: Arc::new(policy),
        },
        routes,
        smart_configuration,
    })
}

/// The built-in server's revocation list, for its own tokens.
struct Revocations(AuthServer);

#[async_trait]
impl RevocationCheck for Revocations {
    async fn is_revoked(&self, jti: &str) -> Result<bool, RevocationError> {
        self.0
            .is_revoked(jti)
            .await
            .map_err(|e| Box::new(e) as RevocationError)
    }
}

/// Bearer tokens of the configured issuers.
struct Tokens(Authenticator);

#[async_trait]
impl Authenticate for Tokens {
    async fn authenticate(&self, credentials: Credentials<'_>) -> Result<Principal, AuthFailure> {
        self.0
            .authenticate(credentials.authorization)
            .await
            .map_err(|e| AuthFailure {
                status: e.status(),
                www_authenticate: e.www_authenticate(REALM),
                message: e.to_string(),
            })
    }
}

/// Secure by default: with no issuer configured nobody gets in.
struct NobodyConfigured;

#[async_trait]
impl Authenticate for NobodyConfigured {
    async fn authenticate(&self, _: Credentials<'_>) -> Result<Principal, AuthFailure> {
        Err(AuthFailure {
            status: 401,
            www_authenticate: format!("Bearer realm=\"{REALM}\""),
            message: "no token issuer is configured on this server".to_owned(),
        })
    }
}
