//! `caduceus serve`: check the transport flags, open the store, build the engine and the
//! HTTP app ([`build_app`]), serve it over TLS or plain HTTP ([`serve_app`]), and stop
//! gracefully on SIGTERM or Ctrl-C (stop accepting, drain in-flight requests for up to the
//! grace period, then exit). With TLS, SIGHUP reloads the certificate.

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use caduceus_engine::Engine;
use caduceus_server::serve::{ServeOptions, Stopped, Transport};
use caduceus_server::tls::TlsAcceptor;
use caduceus_server::{AppState, ServerConfig};

use crate::auth_setup::AuthSetup;

use crate::cli::ServeArgs;
use crate::store::open_engine;
use crate::tls_args;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Transport first: a refused configuration or an unreadable certificate is reported
    // before the store is opened (or migrated).
    let transport = match args.tls.transport(args.insecure_dev_mode)? {
        tls_args::Transport::Tls(settings) => Transport::Tls(
            TlsAcceptor::new(&settings).context("cannot set up TLS (--tls-cert, --tls-key)")?,
        ),
        tls_args::Transport::Plain => Transport::Plain,
    };
    if args.insecure_dev_mode {
        tracing::warn!(
            "--insecure-dev-mode: authentication and authorization are OFF and every request \
             acts as an unrestricted administrator; never use this with real patient data"
        );
    }
    let engine = open_engine(&args.store, args.migrate_on_start).await?;
    crate::reindex::check_index(&engine).await?;
    if args.demo_data && engine.store().count_live(None).await? == 0 {
        crate::demo::load(&engine, &crate::demo::default_source(), 25).await?;
    }
    let auth = crate::auth_setup::auth_setup(&args, engine.store().clone()).await?;
    let app = build_app(engine, &args, matches!(transport, Transport::Tls(_)), auth);
    serve_app(app, &args, transport).await
}

/// The HTTP application over the engine: routes and every layer, configured from the flags.
pub fn build_app(engine: Engine, args: &ServeArgs, tls: bool, auth: AuthSetup) -> Router {
    let hardening = &args.hardening;
    let state = AppState::new(
        engine,
        ServerConfig {
            public_base_url: args.base_url.clone(),
            max_body_bytes: args.max_body_bytes,
            hsts: tls || args.tls.hsts,
            cors_origins: hardening.cors_origins.clone(),
            request_timeout: Duration::from_secs(hardening.request_timeout_seconds),
            rate_limit: hardening.rate_limit(args.insecure_dev_mode),
            smart_configuration: auth.smart_configuration,
            break_glass: Duration::from_secs(args.auth.break_glass_seconds),
            ..ServerConfig::default()
        },
        auth.mode,
    );
    caduceus_server::app_with(state, auth.routes)
}

/// Listens and serves `app` until SIGTERM or Ctrl-C, then drains.
pub async fn serve_app(app: Router, args: &ServeArgs, transport: Transport) -> anyhow::Result<()> {
    match &transport {
        Transport::Tls(acceptor) => {
            acceptor.spawn_watcher(args.tls.reload_interval());
            reload_on_sighup(acceptor.clone());
        }
        Transport::Plain if args.tls.plain_http => tracing::info!(
            "--plain-http: serving plain HTTP; TLS must be terminated by the gateway in front"
        ),
        Transport::Plain => {}
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let scheme = transport.scheme();
    tracing::info!(%addr, scheme, base = %format!("{scheme}://{addr}/fhir"), "listening");

    let options = ServeOptions {
        header_read_timeout: Duration::from_secs(args.hardening.header_read_timeout_seconds),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_seconds),
    };
    let stopped =
        caduceus_server::serve(listener, app, transport, options, shutdown_signal()).await;
    tracing::info!(drained = stopped == Stopped::Drained, "stopped");
    Ok(())
}

/// SIGHUP reloads the certificate and key (the files are also watched).
fn reload_on_sighup(acceptor: TlsAcceptor) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hangups) => {
                tokio::spawn(async move {
                    while hangups.recv().await.is_some() {
                        tracing::info!("SIGHUP: reloading the TLS certificate");
                        let acceptor = acceptor.clone();
                        // The reload logs its outcome.
                        let _ = tokio::task::spawn_blocking(move || acceptor.reload()).await;
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
        }
    }
    #[cfg(not(unix))]
    let _ = acceptor;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
