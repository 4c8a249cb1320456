//! Who may reach which listener, and how: TLS (optionally mutual) on listeners
//! that leave the pod, shared-secret auth, and the ingest switch and budget.
//!
//! # Using it from a listener (gRPC, OFREP, sync, admin)
//!
//! [`Security`] is loaded once at start from [`SecurityOptions`] (an unreadable
//! or invalid certificate or token file is a [`SecurityError`] and the process
//! does not start) and then follows its files ([`Security::follow`]). Each
//! listener asks it for a [`ListenerSecurity`] with one call and serves through
//! that:
//!
//! ```ignore
//! let sec = security.for_tcp(&addr, Alpn::Http1, "ofrep")?;   // or Alpn::H2 for gRPC
//! // HTTP (axum): TLS-terminating listener + auth layer (401 / X-API-Key).
//! axum::serve(sec.http_listener(tcp_listener)?, router.layer(sec.http_auth_layer()));
//! // gRPC (tonic): TLS-terminating incoming + auth layer (UNAUTHENTICATED).
//! Server::builder().option_layer(sec.grpc_auth_layer())…serve_with_incoming(sec.incoming(tcp_listener), …);
//! ```
//!
//! TLS applies when `--tls-cert` is set and the address is not loopback (a
//! loopback or Unix socket listener never leaves the pod, so the app in the pod
//! keeps plain gRPC). A non-loopback listener without TLS is allowed (a pod
//! behind a NetworkPolicy, a mesh doing mTLS) but logged as a warning at start.
//! Auth applies to every listener when `--auth-token-file` is set, health
//! excepted.

pub mod auth;
pub mod conn;
pub mod gate;
pub mod ingest;
pub mod secret_file;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;

use self::auth::{AuthLayer, Style, TokenStore};
use self::conn::{HttpListener, Incoming};
use self::ingest::{IngestGateLayer, IngestPolicy};
use self::secret_file::FileError;
use self::tls::{TlsError, TlsFiles, TlsReloader};
use crate::shutdown::Shutdown;

/// Security settings, parsed from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityOptions {
    /// Certificate files; `None` serves plaintext.
    pub tls: Option<TlsFiles>,
    /// The token file; `None` serves without authentication.
    pub auth_token_file: Option<PathBuf>,
    /// Ingest switch and per-connection budget.
    pub ingest: IngestPolicy,
    /// How often certificate and token files are re-read.
    pub poll_interval: Duration,
}

impl Default for SecurityOptions {
    fn default() -> Self {
        SecurityOptions {
            tls: None,
            auth_token_file: None,
            ingest: IngestPolicy::default(),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// Why the security settings cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecurityError {
    /// The certificate, key or CA.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The token file.
    #[error("auth token: {0}")]
    Token(#[from] FileError),
}

/// ALPN protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// HTTP/2 (gRPC).
    H2,
    /// HTTP/1.1 (axum listeners).
    Http1,
}

/// The loaded security state of the process. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Security {
    tls: Option<Arc<TlsReloader>>,
    auth: Option<Arc<TokenStore>>,
    ingest: IngestPolicy,
    poll_interval: Duration,
}

impl Security {
    /// Reads and checks every file named in `opts`.
    pub fn load(opts: &SecurityOptions) -> Result<Self, SecurityError> {
        let tls = opts.tls.clone().map(TlsReloader::load).transpose()?;
        let auth = opts
            .auth_token_file
            .clone()
            .map(TokenStore::load)
            .transpose()?;
        Ok(Security {
            tls,
            auth,
            ingest: opts.ingest,
            poll_interval: opts.poll_interval,
        })
    }

    /// Re-reads the certificate and token files every poll interval until
    /// `shutdown`, installing good rotations and keeping the last good
    /// credentials on bad ones.
    pub fn follow(&self, shutdown: &Shutdown) {
        if let Some(tls) = &self.tls {
            let tls = tls.clone();
            secret_file::follow(
                tls.files().paths(),
                self.poll_interval,
                shutdown.clone(),
                move |contents| {
                    let _ = tls.apply(contents);
                },
            );
        }
        if let Some(auth) = &self.auth {
            let auth = auth.clone();
            secret_file::follow(
                vec![auth.path().to_owned()],
                self.poll_interval,
                shutdown.clone(),
                move |mut contents| {
                    if let Some(c) = contents.pop() {
                        auth.apply(c);
                    }
                },
            );
        }
    }

    /// The security of a TCP listener on `addr` speaking `alpn`; `what` names
    /// it in the start-up warning about plaintext non-loopback listeners.
    pub fn for_tcp(
        &self,
        addr: &SocketAddr,
        alpn: Alpn,
        what: &str,
    ) -> Result<ListenerSecurity, SecurityError> {
        let leaves_pod = !addr.ip().is_loopback();
        let tls = match (&self.tls, leaves_pod) {
            (Some(t), true) => {
                let protocols: &[&[u8]] = match alpn {
                    Alpn::H2 => &[b"h2"],
                    Alpn::Http1 => &[b"http/1.1"],
                };
                Some(TlsAcceptor::from(t.server_config(protocols)?))
            }
            _ => None,
        };
        if tls.is_some() {
            tracing::info!(listener = what, %addr, mutual = self.tls.as_ref().is_some_and(|t| t.status().mutual), "TLS on");
        }
        if leaves_pod && tls.is_none() {
            tracing::warn!(
                listener = what,
                %addr,
                auth = self.auth.is_some(),
                "listening beyond loopback WITHOUT TLS: anything that can reach this address can read the traffic{}; set --tls-cert/--tls-key, or keep it on loopback",
                if self.auth.is_some() { "" } else { " and call it unauthenticated" }
            );
        }
        Ok(ListenerSecurity {
            tls,
            auth: self.auth.clone(),
            ingest: self.ingest,
        })
    }

    /// The security of a Unix socket listener (no TLS: it never leaves the pod).
    pub fn for_unix(&self) -> ListenerSecurity {
        ListenerSecurity {
            tls: None,
            auth: self.auth.clone(),
            ingest: self.ingest,
        }
    }

    /// The `tls` and `auth` sections of `/readyz`.
    pub fn status_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tls": self.tls.as_ref().map(|t| t.status()),
            "auth": self.auth.is_some(),
            "ingest": self.ingest.enabled,
        })
    }
}

/// What one listener needs: how to accept (TLS or not), whom to let in, and
/// the ingest policy. See the module doc.
#[derive(Clone)]
pub struct ListenerSecurity {
    tls: Option<TlsAcceptor>,
    auth: Option<Arc<TokenStore>>,
    ingest: IngestPolicy,
}

impl std::fmt::Debug for ListenerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerSecurity")
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth.is_some())
            .field("ingest", &self.ingest)
            .finish()
    }
}

impl ListenerSecurity {
    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Accepted connections of a TCP listener, for tonic's `serve_with_incoming*`.
    pub fn incoming(&self, listener: TcpListener) -> Incoming {
        conn::accept_tcp(listener, self.tls.clone(), self.ingest)
    }

    /// Accepted connections of a Unix socket listener.
    pub fn incoming_unix(&self, listener: UnixListener) -> Incoming {
        conn::accept_unix(listener, self.ingest)
    }

    /// A listener for `axum::serve`.
    pub fn http_listener(&self, listener: TcpListener) -> std::io::Result<HttpListener> {
        let local = listener.local_addr()?;
        Ok(HttpListener::new(self.incoming(listener), local))
    }

    /// Auth for a gRPC server (UNAUTHENTICATED), when a token file is set.
    pub fn grpc_auth_layer(&self) -> Option<AuthLayer> {
        self.auth.clone().map(|s| AuthLayer::new(s, Style::Grpc))
    }

    /// Auth for an HTTP router (401), when a token file is set. Apply it with
    /// `tower::util::option_layer` or only when `Some`.
    pub fn http_auth_layer(&self) -> Option<AuthLayer> {
        self.auth.clone().map(|s| AuthLayer::new(s, Style::Http))
    }

    /// The gate that refuses ingest methods when ingest is off (gRPC only).
    pub fn ingest_gate(&self) -> IngestGateLayer {
        IngestGateLayer::new(self.ingest)
    }
}
