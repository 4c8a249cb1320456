//! The one place the server is put together: shared state, the gRPC services and
//! layers, the management HTTP port, health, and the shutdown sequence.
//!
//! To add a gRPC service, add one line to [`services`]; it is then routed,
//! reported by health, listed by reflection (if its proto is in `proto/`) and
//! counted in `/metrics`. To add a tower layer around every call, add it to the
//! `ServiceBuilder` in [`start`].
//!
//! Over 500 lines because [`start`] is one ordered sequence (bind every
//! listener, wire state, layers and services, serve, shut down in order) that
//! reads best top to bottom; the listen addresses and reflection are in
//! `server/`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};

use crate::transport::conn_limit::{ConnLimit, ConnOptions, LimitedListener};
use crate::transport::stream_limit::StreamLimitLayer;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tower::ServiceBuilder;

use crate::exposure::ExposureSink;
use crate::metrics::Metrics;
use crate::reload::Store;
use crate::security::{Alpn, Security, SecurityError, SecurityOptions};
use crate::shutdown::{self, Shutdown, Trigger};
use crate::transport::cohortd_v1::AssignmentService;
use crate::transport::delay::DelayLayer;
use crate::transport::limits::Limits;
use crate::transport::observe::ObserveLayer;
use crate::transport::{admin, flagd, http_serve, ofrep};

use crate::state::AppState;

mod listen;
mod reflection;

pub use listen::{Bound, Listen, ListenParseError};
use reflection::{methods_of, reflection};

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// gRPC listen address.
    pub listen: Listen,
    /// Management HTTP address; `None` disables it.
    pub admin_listen: Option<SocketAddr>,
    /// OFREP HTTP address; `None` (the library default, so embedders and tests
    /// opt in) disables it. `cohortd serve` defaults to 127.0.0.1:8016.
    pub ofrep_listen: Option<SocketAddr>,
    /// flagd sync (flagd.sync.v1) gRPC address; `None` (the library default)
    /// disables it. `cohortd serve` defaults to 127.0.0.1:8015.
    pub sync_listen: Option<SocketAddr>,
    /// How long in-flight calls may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Request limits.
    pub limits: Limits,
    /// Test hook: delay every gRPC call by this much (shutdown tests). Off in
    /// normal operation, and then the layer is not installed at all.
    pub debug_delay: Option<Duration>,
    /// Server spans continuing the caller's W3C trace context, so exposures join
    /// the caller's trace (a pass-through when exposure export is off).
    pub trace: crate::exposure::trace_context::TraceContextLayer,
    /// The probe listener (health only, plaintext); `None` disables it.
    pub probe_listen: Option<SocketAddr>,
    /// TLS, auth and ingest settings.
    pub security: SecurityOptions,
    /// Connection and stream limits, keep-alive and handshake timeout.
    pub conns: crate::transport::conn_limit::ConnOptions,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 8013))),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8014))),
            ofrep_listen: None,
            sync_listen: None,
            shutdown_grace: Duration::from_secs(10),
            limits: Limits::default(),
            debug_delay: None,
            trace: Default::default(),
            probe_listen: None,
            security: SecurityOptions::default(),
            conns: Default::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The Unix socket path is in use by a live server, or is not a socket.
    #[error("cannot listen on unix:{}: {why}", path.display())]
    SocketPath {
        /// The path.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// A certificate, key or token file cannot be used.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// The reflection service could not read the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// The gRPC services being assembled, with the names health reports on.
#[derive(Default)]
pub struct Services {
    routes: RoutesBuilder,
    health_names: Vec<&'static str>,
    names: Vec<&'static str>,
}

/// Whether the health service reports on a gRPC service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// An application service: SERVING once a config is loaded.
    Reported,
    /// Infrastructure (health itself, reflection): routed only.
    Unreported,
}

impl Services {
    /// Routes a gRPC service; `health` says whether health reports on it.
    pub fn add<S>(&mut self, svc: S, health: Health) -> &mut Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Error = Infallible,
                Response = http::Response<tonic::body::Body>,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        if health == Health::Reported {
            self.health_names.push(S::NAME);
        }
        self.names.push(S::NAME);
        self.routes.add_service(svc);
        self
    }
}

/// THE composition point: every application gRPC service cohortd serves.
fn services(state: &AppState) -> Services {
    let mut s = Services::default();
    s.add(
        AssignmentService::new(state.clone()).into_server(),
        Health::Reported,
    );
    let (flagd_v1, flagd_v2) = flagd::services_with(
        state.store.clone(),
        state.sink.clone(),
        flagd_options(state),
    );
    s.add(flagd_v1, Health::Reported)
        .add(flagd_v2, Health::Reported);
    s
}

/// The flagd services' options: the server's limits, streams that end at shutdown.
fn flagd_options(state: &AppState) -> flagd::FlagdOptions {
    flagd::FlagdOptions {
        stop: Some(stop_signal(&state.shutdown)),
        limits: state.limits,
        ..Default::default()
    }
}

/// Ends flagd event streams when the server shuts down.
fn stop_signal(shutdown: &Shutdown) -> flagd::events::StopSignal {
    let shutdown = shutdown.clone();
    Arc::new(move || {
        let mut s = shutdown.clone();
        Box::pin(async move { s.wait().await })
    })
}

/// A started server. Call [`Running::shutdown`] to stop it gracefully.
#[derive(Debug)]
pub struct Running {
    state: AppState,
    trigger: Trigger,
    health_names: Vec<&'static str>,
    /// The gRPC listener.
    pub grpc_addr: Bound,
    /// The management HTTP listener, if enabled.
    pub admin_addr: Option<SocketAddr>,
    /// The probe listener, if enabled.
    pub probe_addr: Option<SocketAddr>,
    /// The OFREP HTTP listener, if enabled.
    pub ofrep_addr: Option<SocketAddr>,
    /// The flagd sync gRPC listener, if enabled.
    pub sync_addr: Option<SocketAddr>,
    grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    sync: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    admin: Option<JoinHandle<std::io::Result<()>>>,
    ofrep: Option<JoinHandle<std::io::Result<()>>>,
    probe: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    grace: Duration,
}

/// Binds the listeners and starts serving `store` in the background. Health
/// reports NOT_SERVING until the store holds a snapshot.
pub async fn start(
    opts: ServeOptions,
    store: Arc<Store>,
    sink: Arc<dyn ExposureSink>,
    metrics: Arc<Metrics>,
) -> Result<Running, ServeError> {
    let (trigger, shutdown) = shutdown::channel();
    // tonic_health::server::health_reporter, with a nameable service type (the
    // probe listener takes the same service).
    let health = HealthReporter::new();
    let health_service: crate::transport::probe::HealthGrpc =
        tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health.clone()),
        );
    // Refuse to start on a certificate or token that cannot be used.
    let security = Security::load(&opts.security)?;
    security.follow(&shutdown);
    let grpc_security = match &opts.listen {
        Listen::Tcp(addr) => security.for_tcp(addr, Alpn::H2, "gRPC (--listen)")?,
        Listen::Unix(_) => security.for_unix(),
    };
    let state = AppState {
        store,
        sink,
        metrics,
        limits: opts.limits,
        health,
        shutdown,
        security,
    };
    let probe_health = health_service.clone();

    let mut svcs = services(&state);
    let health_names = std::mem::take(&mut svcs.health_names);
    set_health(&state.health, &health_names, ServingStatus::NotServing).await;
    svcs.add(health_service, Health::Unreported);
    // Reflection lists only what is served (proto/ also holds the bench proto).
    let mut listed: Vec<&str> = svcs.names.clone();
    listed.extend([
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]);
    let reflection = || {
        listed
            .iter()
            .fold(reflection(), |b, n| b.with_service_name(*n))
    };
    svcs.add(reflection().build_v1()?, Health::Unreported);
    svcs.add(reflection().build_v1alpha()?, Health::Unreported);

    let observe = ObserveLayer::new(&state.metrics, &methods_of(&svcs.names));
    let c = opts.conns;
    let conn_limit = |listener: &'static str, max: usize| {
        let open = state
            .metrics
            .open_connections
            .get_or_create(&[("listener", listener)])
            .clone();
        ConnLimit::new(listener, max, c.handshake_timeout, open)
    };
    // Layers around every call, outermost first.
    let layers = ServiceBuilder::new()
        .layer(opts.trace.clone())
        .layer(observe)
        // Inside `observe`, so metrics count the status the caller receives.
        // Outside the auth and ingest layers, which answer refusals with an empty
        // body of their inner service's type (the stream slot's body has none).
        .layer(StreamLimitLayer::new(
            c.max_streams,
            state.metrics.open_streams.clone(),
        ))
        // Inside `observe` too, so refusals are counted; before any decoding.
        .option_layer(grpc_security.grpc_auth_layer())
        .layer(grpc_security.ingest_gate())
        .layer(crate::transport::bad_request::BadRequestLayer)
        .option_layer(opts.debug_delay.map(DelayLayer::new))
        .into_inner();
    let keepalive = (!c.http2_keepalive_interval.is_zero()).then_some(c.http2_keepalive_interval);
    let router = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(c.max_concurrent_streams_per_connection))
        .http2_keepalive_interval(keepalive)
        .layer(layers)
        .add_routes(svcs.routes.routes());

    // Bind before spawning, so callers learn of a taken port at once.
    let mut stop = state.shutdown.clone();
    let signal = async move { stop.wait().await };
    let (grpc_addr, grpc) = match &opts.listen {
        Listen::Tcp(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
            let bound = l.local_addr().map_err(|source| ServeError::Bind {
                addr: addr.to_string(),
                source,
            })?;
            let incoming =
                conn_limit("grpc", c.max_connections).incoming(grpc_security.incoming(l));
            let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, signal));
            (Bound::Tcp(bound), task)
        }
        Listen::Unix(path) => {
            let l = bind_unix(path).await?;
            let incoming =
                conn_limit("grpc", c.max_connections).incoming(grpc_security.incoming_unix(l));
            let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, signal));
            (Bound::Unix(path.clone()), task)
        }
    };

    let (admin_addr, admin) = match opts.admin_listen {
        None => (None, None),
        Some(addr) => {
            let limit = conn_limit("admin", c.admin_max_connections);
            let app = admin::router(state.clone());
            serve_http(addr, "admin", "--admin-listen", app, limit, &state, &c).await?
        }
    };
    let (ofrep_addr, ofrep_task) = match opts.ofrep_listen {
        None => (None, None),
        Some(addr) => {
            // flagd's v2 evaluation over the Connect protocol shares the HTTP/1.1
            // listener: the Go flagd provider speaks nothing else.
            let app = ofrep::router(
                state.store.clone(),
                state.sink.clone(),
                state.limits,
                &state.metrics,
            )
            .merge(flagd::connect::router(
                state.store.clone(),
                state.sink.clone(),
                flagd_options(&state),
            ));
            let limit = conn_limit("ofrep", c.admin_max_connections);
            serve_http(addr, "OFREP", "--ofrep-listen", app, limit, &state, &c).await?
        }
    };

    let (sync_addr, sync) = match opts.sync_listen {
        None => (None, None),
        Some(addr) => {
            let bind_err = |source| ServeError::Bind {
                addr: format!("{addr} (flagd sync)"),
                source,
            };
            let sec = state
                .security
                .for_tcp(&addr, Alpn::H2, "flagd sync (--sync-listen)")?;
            let l = TcpListener::bind(addr).await.map_err(bind_err)?;
            let bound = l.local_addr().map_err(bind_err)?;
            let svc = flagd::sync::SyncServer::new(flagd::sync::FlagSync::new(
                state.store.clone(),
                Some(stop_signal(&state.shutdown)),
            ));
            // Providers ping often; the server answers every ping and never
            // counts them against the client (no ping policy, as in flagd).
            let router = tonic::transport::Server::builder()
                .http2_keepalive_interval(keepalive)
                .layer(
                    ServiceBuilder::new()
                        .layer(StreamLimitLayer::new(
                            c.max_streams,
                            state.metrics.open_streams.clone(),
                        ))
                        .option_layer(sec.grpc_auth_layer())
                        .into_inner(),
                )
                .add_service(svc);
            let incoming = conn_limit("sync", c.max_connections).incoming(sec.incoming(l));
            let mut stop = state.shutdown.clone();
            let task = tokio::spawn(
                router.serve_with_incoming_shutdown(incoming, async move { stop.wait().await }),
            );
            (Some(bound), Some(task))
        }
    };

    let (probe_addr, probe) = match opts.probe_listen {
        None => (None, None),
        Some(addr) => {
            let bind_err = |source| ServeError::Bind {
                addr: format!("{addr} (probe)"),
                source,
            };
            let l = TcpListener::bind(addr).await.map_err(bind_err)?;
            let bound = l.local_addr().map_err(bind_err)?;
            let task = crate::transport::probe::start(l, &state, probe_health);
            (Some(bound), Some(task))
        }
    };

    tokio::spawn(track_health(
        state.store.clone(),
        state.health.clone(),
        health_names.clone(),
        state.shutdown.clone(),
    ));

    Ok(Running {
        state,
        trigger,
        health_names,
        grpc_addr,
        admin_addr,
        probe_addr,
        ofrep_addr,
        sync_addr,
        grpc,
        sync,
        admin,
        ofrep: ofrep_task,
        probe,
        grace: opts.shutdown_grace,
    })
}

/// An HTTP task and the address it bound.
type HttpTask = (Option<SocketAddr>, Option<JoinHandle<std::io::Result<()>>>);

/// Binds `addr` (before spawning, so a taken port is reported at once) and
/// serves `app` on it until shutdown, with the connection limit and the header
/// deadline (`transport::http_serve`).
async fn serve_http(
    addr: SocketAddr,
    what: &'static str,
    flag: &'static str,
    mut app: axum::Router,
    limit: ConnLimit,
    state: &AppState,
    conns: &ConnOptions,
) -> Result<HttpTask, ServeError> {
    let bind_err = |source| ServeError::Bind {
        addr: format!("{addr} ({what})"),
        source,
    };
    let l = TcpListener::bind(addr).await.map_err(bind_err)?;
    let bound = l.local_addr().ok();
    let stop = state.shutdown.clone();
    let sec = state
        .security
        .for_tcp(&addr, Alpn::Http1, &format!("{what} ({flag})"))?;
    if let Some(auth) = sec.http_auth_layer() {
        app = app.layer(auth);
    }
    let l = LimitedListener {
        inner: sec.http_listener(l).map_err(bind_err)?,
        limit,
    };
    let task = tokio::spawn(http_serve::serve(l, app, conns.admin_header_timeout, stop));
    Ok((bound, Some(task)))
}

/// Binds a Unix socket, removing a stale socket file left by a dead server. A
/// path held by a live server, or by something that is not a socket, is refused.
async fn bind_unix(path: &Path) -> Result<UnixListener, ServeError> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ServeError::SocketPath {
                path: path.to_owned(),
                why: "the path exists and is not a socket",
            });
        }
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(ServeError::SocketPath {
                path: path.to_owned(),
                why: "another server is listening on it",
            });
        }
        std::fs::remove_file(path).map_err(|source| ServeError::Bind {
            addr: format!("unix:{} (removing the stale socket)", path.display()),
            source,
        })?;
    }
    UnixListener::bind(path).map_err(|source| ServeError::Bind {
        addr: format!("unix:{}", path.display()),
        source,
    })
}

async fn set_health(health: &HealthReporter, names: &[&str], status: ServingStatus) {
    health.set_service_status("", status).await;
    for n in names {
        health.set_service_status(n, status).await;
    }
}

/// Flips health to SERVING once the store holds a snapshot (a snapshot is never
/// removed, so this happens once).
async fn track_health(
    store: Arc<Store>,
    health: HealthReporter,
    names: Vec<&'static str>,
    mut shutdown: Shutdown,
) {
    let mut events = store.subscribe();
    while store.load().is_none() {
        tokio::select! {
            // Applied, lagged or closed: look at the store again.
            _ = events.recv() => {}
            _ = shutdown.wait() => return,
        }
    }
    if !shutdown.is_fired() {
        set_health(&health, &names, ServingStatus::Serving).await;
    }
}

impl Running {
    /// The shared state (store, metrics, limits).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops gracefully: health NOT_SERVING, listeners closed, Watch streams
    /// ended, in-flight calls given the grace period to finish. Returns whether
    /// everything finished within it.
    pub async fn shutdown(self) -> bool {
        set_health(
            &self.state.health,
            &self.health_names,
            ServingStatus::NotServing,
        )
        .await;
        self.trigger.fire();
        let deadline = tokio::time::Instant::now() + self.grace;
        let mut clean = true;
        let mut grpc = self.grpc;
        match tokio::time::timeout_at(deadline, &mut grpc).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                tracing::error!(error = %e, "gRPC server failed");
                clean = false;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "gRPC server task failed");
                clean = false;
            }
            Err(_) => {
                tracing::warn!(grace = %format_args!("{}s", self.grace.as_secs_f64()), "grace period elapsed; dropping the calls still in flight");
                grpc.abort();
                clean = false;
            }
        }
        if let Some(mut sync) = self.sync {
            if tokio::time::timeout_at(deadline, &mut sync).await.is_err() {
                sync.abort();
            }
        }
        if let Some(mut probe) = self.probe {
            if tokio::time::timeout_at(deadline, &mut probe).await.is_err() {
                probe.abort();
            }
        }
        for mut http in [self.admin, self.ofrep].into_iter().flatten() {
            if tokio::time::timeout_at(deadline, &mut http).await.is_err() {
                http.abort();
            }
        }
        if let Bound::Unix(path) = &self.grpc_addr {
            let _ = std::fs::remove_file(path);
        }
        clean
    }
}
