//! How `caduceus serve` authenticates: from the flags (`AuthArgs`) to the server's
//! [`AuthMode`]. Secure by default: without `--insecure-dev-mode` every FHIR request needs
//! a bearer token from a trusted issuer, and with no issuer configured nobody gets in.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use axum::Router;
use caduceus_access::{Policy, Principal, PrincipalKind, Scope};
use caduceus_auth::{
    AuthFile, Authenticator, ClaimMapping, IssuerConfig, JwkSet, KeySource, RevocationCheck,
    RevocationError,
};
use caduceus_authserver::{Accounts, AuthServer, AuthServerConfig};
use caduceus_server::{AuthFailure, AuthMode, Authenticate, ClientCertificate, Credentials};
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
    /// How long a break-glass declaration (`POST [base]/$break-glass`) lifts label
    /// restrictions, in seconds.
    #[arg(long, env = "CADUCEUS_BREAK_GLASS_SECONDS", default_value_t = 3600)]
    pub break_glass_seconds: u64,
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
        let server = AuthServer::open(store.clone(), config)
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
    let tokens = if issuers.is_empty() {
        None
    } else {
        for i in &issuers {
            tracing::info!(issuer = %i.issuer, "accepting access tokens");
        }
        Some(Authenticator::new(issuers).context("token issuers")?)
    };
    // With a client CA, a verified client certificate whose subject CN is a registered
    // client id authenticates as that client (service-to-service calls without tokens).
    let certificates = args
        .tls
        .tls_client_ca
        .is_some()
        .then(|| CertificateClients {
            accounts: Accounts::new(store.clone()),
            cache: Mutex::new(HashMap::new()),
        });
    if tokens.is_none() && certificates.is_none() {
        tracing::warn!(
            "no token issuer is configured (--oidc-issuer, --auth-config, --auth-server) and \
             no client CA (--tls-client-ca): every FHIR request will be refused with 401"
        );
    }
    let authenticator: Arc<dyn Authenticate> = Arc::new(Gate {
        tokens,
        certificates,
    });
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

/// Bearer tokens of the configured issuers, and client certificates of registered
/// clients. A request with an `Authorization` header is judged by its token alone.
struct Gate {
    tokens: Option<Authenticator>,
    certificates: Option<CertificateClients>,
}

#[async_trait]
impl Authenticate for Gate {
    async fn authenticate(&self, credentials: Credentials<'_>) -> Result<Principal, AuthFailure> {
        if credentials.authorization.is_none()
            && let Some(certificates) = &self.certificates
            && let Some(certificate) = credentials.extensions.get::<ClientCertificate>()
        {
            return certificates.principal(certificate).await;
        }
        match &self.tokens {
            Some(tokens) => tokens
                .authenticate(credentials.authorization)
                .await
                .map_err(|e| AuthFailure {
                    status: e.status(),
                    www_authenticate: e.www_authenticate(REALM),
                    message: e.to_string(),
                }),
            None => Err(failure(401, "no token issuer is configured on this server")),
        }
    }
}

/// How long what the store says of a certificate's client is reused.
const CERTIFICATE_CACHE: Duration = Duration::from_secs(10);

/// Registered clients, by the subject CN of their client certificates.
struct CertificateClients {
    accounts: Accounts,
    cache: Mutex<HashMap<String, (Instant, Option<Principal>)>>,
}

impl CertificateClients {
    async fn principal(&self, certificate: &ClientCertificate) -> Result<Principal, AuthFailure> {
        let Some(cn) = certificate.subject_cn.as_deref() else {
            return Err(failure(
                401,
                "the client certificate has no subject common name",
            ));
        };
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(cn).cloned())
            .filter(|(at, _)| at.elapsed() < CERTIFICATE_CACHE);
        let principal = match cached {
            Some((_, principal)) => principal,
            None => {
                let client = self.accounts.get_client(cn).await.map_err(|e| {
                    tracing::warn!(error = %e, "cannot read the clients of client certificates");
                    failure(503, "client accounts cannot be read now")
                })?;
                let principal = client.map(|c| Principal {
                    kind: PrincipalKind::Client,
                    subject: c.client_id.clone(),
                    client_id: Some(c.client_id),
                    issuer: "mtls".to_owned(),
                    scopes: Scope::parse_list(&c.scopes.join(" ")).unwrap_or_default(),
                    roles: c.roles,
                    patient: None,
                    fhir_user: None,
                    departments: c.departments,
                    clearance: c.clearance,
                    token_id: None,
                });
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() > 10_000 {
                        cache.clear();
                    }
                    cache.insert(cn.to_owned(), (Instant::now(), principal.clone()));
                }
                principal
            }
        };
        principal.ok_or_else(|| {
            failure(
                401,
                "the client certificate names no registered client (its subject CN must be a \
                 client id)",
            )
        })
    }
}

fn failure(status: u16, message: &str) -> AuthFailure {
    AuthFailure {
        status,
        www_authenticate: format!("Bearer realm=\"{REALM}\""),
        message: message.to_owned(),
    }
}
