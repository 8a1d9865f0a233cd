//! Serving the app on a listener, over plain HTTP or TLS: one accept loop for both (axum's
//! own `serve` has no TLS and no header read timeout).
//!
//! Every connection is served by hyper (HTTP/1.1, and HTTP/2 by ALPN or prior knowledge)
//! with a header read timeout, so a client that trickles its request head (slowloris) or
//! idles on a kept-alive connection is disconnected; the TLS handshake has the same limit.
//! Every request carries `ConnectInfo<SocketAddr>` (the peer, for rate limits) and, over
//! mutual TLS, the verified [`ClientCertificate`].
//!
//! Shutdown: when `shutdown` completes, the listener is closed, idle connections are closed,
//! in-flight requests finish (each connection closes after its current response) for up to
//! the grace period; whatever is still running then is dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::tls::{ClientCertificate, OverTls, TlsAcceptor};

/// How connections are served.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Plain HTTP: behind a gateway that terminates TLS, or for development.
    Plain,
    /// TLS with this acceptor.
    Tls(TlsAcceptor),
}

impl Transport {
    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Transport::Plain => "http",
            Transport::Tls(_) => "https",
        }
    }
}

/// Connection-level limits and the shutdown grace period.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Longest wait for a complete request head (and for a TLS handshake, and for the next
    /// request on an idle kept-alive HTTP/1.1 connection).
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every connection finished within the grace period.
    Drained,
    /// The grace period ended with connections still open; they were dropped.
    GraceExpired,
}

/// Serves `app` on `listener` until `shutdown` completes, then drains (see the module doc).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    transport: Transport,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Stopped {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Dead peers of idle HTTP/2 connections are found by pings.
        .keep_alive_interval(Some(Duration::from_secs(60)))
        .keep_alive_timeout(Duration::from_secs(20));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            builder: builder.clone(),
            watcher: graceful.watcher(),
            peer,
        };
        match &transport {
            Transport::Plain => {
                tokio::spawn(connection.run(tcp, None));
            }
            Transport::Tls(acceptor) => {
                let acceptor = acceptor.clone();
                let limit = options.header_read_timeout;
                tokio::spawn(async move {
                    match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
                        Ok(Ok((tls, client))) => connection.run(tls, Some(client)).await,
                        // Scanners, old clients, refused client certificates: not the
                        // server's problem, and frequent; debug only.
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    match tokio::time::timeout(options.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => Stopped::Drained,
        Err(_) => {
            tracing::warn!(
                seconds = options.shutdown_grace.as_secs(),
                "grace period over; stopping with requests in flight"
            );
            Stopped::GraceExpired
        }
    }
}

/// One accepted connection, before its (plain or TLS) stream is served.
struct Connection {
    app: Router,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
    peer: SocketAddr,
}

impl Connection {
    /// Serves requests on `io` until the client or the shutdown closes it. `tls` is `None`
    /// for plain HTTP, else the verified client certificate if there is one.
    async fn run<S>(self, io: S, tls: Option<Option<ClientCertificate>>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            app,
            builder,
            watcher,
            peer,
        } = self;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let extensions = request.extensions_mut();
            extensions.insert(ConnectInfo(peer));
            if let Some(client) = &tls {
                extensions.insert(OverTls);
                if let Some(certificate) = client {
                    extensions.insert(certificate.clone());
                }
            }
            let app = app.clone();
            async move { app.oneshot(request).await }
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        if let Err(e) = watcher.watch(connection).await {
            // Clients that go away mid-request, header read timeouts: routine.
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}
