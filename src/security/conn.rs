//! Accepted connections, optionally TLS, each carrying its own [`ConnInfo`]
//! (peer address, whether TLS, its ingest budget) that tonic puts into every
//! request's extensions.
//!
//! TLS handshakes run in their own tasks (at most [`MAX_HANDSHAKES`] at once,
//! each bounded by [`HANDSHAKE_TIMEOUT`]), so a slow or silent client cannot
//! stall the accept loop; finished connections reach the server through a
//! bounded channel.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use super::ingest::{IngestBudget, IngestPolicy};

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TLS handshakes in progress at once per listener.
pub const MAX_HANDSHAKES: usize = 256;

/// What the server knows about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer (TCP only).
    pub remote: Option<SocketAddr>,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// This connection's ingest allowance (records per second).
    pub ingest: Arc<IngestBudget>,
}

enum Io {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

/// An accepted connection.
pub struct Conn {
    io: Io,
    info: ConnInfo,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("info", &self.info).finish()
    }
}

impl Conn {
    /// The connection's info.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut $self.get_mut().io {
            Io::Tcp($s) => {
                let $s = Pin::new($s);
                $e
            }
            Io::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            Io::Unix($s) => {
                let $s = Pin::new($s);
                $e
            }
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Tcp(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
            Io::Unix(s) => s.is_write_vectored(),
        }
    }
}

/// Accepted connections as a stream (for tonic's `serve_with_incoming*`).
pub type Incoming = ReceiverStream<io::Result<Conn>>;

/// Accepts TCP connections on `listener`, doing the TLS handshake when
/// `tls` is set. The accept loop ends when the returned stream is dropped.
pub fn accept_tcp(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ingest: IngestPolicy,
) -> Incoming {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let info = ConnInfo {
                remote: Some(peer),
                tls: tls.is_some(),
                ingest: Arc::new(IngestBudget::new(ingest)),
            };
            let Some(acceptor) = tls.clone() else {
                if tx
                    .send(Ok(Conn {
                        io: Io::Tcp(tcp),
                        info,
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            };
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "too many TLS handshakes in progress; connection dropped");
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => {
                        let _ = tx
                            .send(Ok(Conn {
                                io: Io::Tls(Box::new(s)),
                                info,
                            }))
                            .await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Accepts Unix socket connections (never TLS: a socket does not leave the pod).
pub fn accept_unix(listener: UnixListener, ingest: IngestPolicy) -> Incoming {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => return,
            };
            match accepted {
                Ok((s, _)) => {
                    let info = ConnInfo {
                        remote: None,
                        tls: false,
                        ingest: Arc::new(IngestBudget::new(ingest)),
                    };
                    if tx
                        .send(Ok(Conn {
                            io: Io::Unix(s),
                            info,
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

/// The same connections for `axum::serve`.
#[derive(Debug)]
pub struct HttpListener {
    incoming: Incoming,
    local: SocketAddr,
}

impl HttpListener {
    /// Wraps an accept stream of a listener bound to `local`.
    pub fn new(incoming: Incoming, local: SocketAddr) -> Self {
        HttpListener { incoming, local }
    }
}

impl axum::serve::Listener for HttpListener {
    type Io = Conn;
    type Addr = Option<SocketAddr>;

    async fn accept(&mut self) -> (Conn, Option<SocketAddr>) {
        use tokio_stream::StreamExt;
        loop {
            match self.incoming.next().await {
                Some(Ok(c)) => {
                    let peer = c.info.remote;
                    return (c, peer);
                }
                Some(Err(_)) => continue,
                // The accept task only ends when this stream is dropped.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Option<SocketAddr>> {
        Ok(Some(self.local))
    }
}
