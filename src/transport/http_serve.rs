//! The accept loop of the HTTP/1 listeners (admin and OFREP), with a deadline on
//! reading each request's headers.
//!
//! `axum::serve` offers no header-read timeout: a client that sends a request
//! line and then trickles one header byte at a time (slowloris) holds its
//! connection slot for as long as it likes, and 64 such clients fill the admin
//! port. Here each connection is served by hyper's HTTP/1 builder directly, with
//! `header_read_timeout` (`--admin-header-timeout`): a request whose headers are
//! not complete in time gets its connection closed. The listener passed in
//! already carries the TLS-aware accept and the connection limit; shutdown stops
//! accepting, lets in-flight requests finish and closes idle keep-alive
//! connections (the caller bounds the wait with the grace period).

use std::io;
use std::time::Duration;

use axum::serve::Listener;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use crate::shutdown::Shutdown;

/// Serves `app` on the connections `listener` accepts until `stop` fires.
/// `header_timeout` of zero disables the header deadline.
pub async fn serve<L>(
    mut listener: L,
    app: axum::Router,
    header_timeout: Duration,
    mut stop: Shutdown,
) -> io::Result<()>
where
    L: Listener,
    L::Io: Unpin,
{
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.timer(TokioTimer::new());
    // hyper's own default applies when a timer is set and no timeout is given.
    http1.header_read_timeout((!header_timeout.is_zero()).then_some(header_timeout));
    let graceful = GracefulShutdown::new();
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait() => break,
        };
        let service = TowerToHyperService::new(app.clone());
        // No upgrades: neither port offers WebSockets or CONNECT.
        let conn = graceful.watch(http1.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    // Stop accepting before waiting for the open connections.
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
