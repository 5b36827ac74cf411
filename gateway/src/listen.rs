//! The HTTP accept loop: HTTP/1.1 connections with a header timeout (which also closes idle
//! keep-alive connections), a cap on open connections, `TCP_NODELAY`, and a graceful end.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use laurel_runtime::Shutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// How connections are held to account.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest wait for a request's headers, counted from when the connection is ready for
    /// the next request: a slow sender of headers and an idle keep-alive connection are
    /// both closed after it.
    pub header_timeout: Duration,
    /// Most connections open at once; past it new ones are closed as soon as accepted (the
    /// client sees a reset and retries elsewhere or later).
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown`, then lets open connections finish. With
/// `tls`, each connection's TLS handshake must end within the header timeout.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let stopped = async move { shutdown.wait().await };
    tokio::pin!(stopped);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pass, rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max = limits.max_connections, "refusing a connection over the cap");
            drop(tcp);
            continue;
        };
        // Answers and live notifications are small writes: without TCP_NODELAY, Nagle's
        // algorithm holds them back until the client's delayed ack (tens of milliseconds).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let (app, watcher, tls) = (app.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let served = match tls {
                None => serve_connection(tcp, app, limits, watcher).await,
                Some(tls) => {
                    match tokio::time::timeout(limits.header_timeout, tls.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_connection(stream, app, limits, watcher).await,
                        Ok(Err(e)) => Err(e.into()),
                        Err(_) => Err("the TLS handshake timed out".into()),
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it ends or shutdown drains it.
async fn serve_connection<IO>(
    io: IO,
    app: Router,
    limits: ConnectionLimits,
    watcher: hyper_util::server::graceful::Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    watcher.watch(connection).await?;
    Ok(())
}
