//! `caduceus serve`: open the store, build the engine and the HTTP app, listen, and stop
//! gracefully on SIGTERM or Ctrl-C (stop accepting, drain in-flight requests for up to the
//! grace period, then exit).

use std::time::Duration;

use anyhow::Context;
use caduceus_server::{AppState, ServerConfig};

use crate::cli::ServeArgs;
use crate::store::open_engine;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
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
    let state = AppState::new(
        engine,
        ServerConfig {
            public_base_url: args.base_url.clone(),
            max_body_bytes: args.max_body_bytes,
            ..ServerConfig::default()
        },
    );
    let app = caduceus_server::app(state);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, base = %format!("http://{addr}/fhir"), "listening");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        let _ = stop_tx.send(true);
    });
    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    let mut stopped = stop_rx.clone();
    tokio::select! {
        result = server => result.context("server error")?,
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!(seconds = grace.as_secs(), "grace period over; stopping with requests in flight"),
    }
    tracing::info!("stopped");
    Ok(())
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
