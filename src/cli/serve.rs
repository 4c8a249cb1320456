//! `cohortd serve`: the sidecar. Loads the config directory, serves gRPC and the
//! management port, reloads on SIGHUP, and shuts down gracefully on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ReadLimits;
use crate::exposure::otel::OtelExport;
use crate::exposure::pipeline::ExposurePipeline;
use crate::metrics::Metrics;
use crate::reload::settle::Settle;
use crate::reload::{reload_now, watch, ReloadOutcome, Store, WatchHandle, WatchOptions};
use crate::server::{Bound, Listen, ServeOptions};
use crate::transport::conn_limit::ConnOptions;
use crate::transport::limits::Limits;

use super::duration::parse_duration;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Arguments of `cohortd serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    /// gRPC address: IP:PORT, or unix:/path/to.sock for a Unix domain socket (the
    /// fastest and safest transport inside a pod). Loopback unless you ask.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8013",
        env = "COHORTD_LISTEN"
    )]
    listen: Listen,
    /// Management HTTP address for /healthz, /readyz and /metrics; `off` disables it.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8014",
        env = "COHORTD_ADMIN_LISTEN",
        value_parser = parse_admin
    )]
    admin_listen: AdminListen,
    /// OFREP (OpenFeature Remote Evaluation Protocol) HTTP address, also serving
    /// flagd v2 over the Connect protocol (the Go flagd provider's RPC mode);
    /// flagd's OFREP port by default; `off` disables it.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8016",
        env = "COHORTD_OFREP_LISTEN",
        value_parser = parse_admin
    )]
    ofrep_listen: AdminListen,
    /// gRPC address of flagd's in-process sync service (flagd.sync.v1), flagd's
    /// sync port by default; `off` disables it.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8015",
        env = "COHORTD_SYNC_LISTEN",
        value_parser = parse_admin
    )]
    sync_listen: AdminListen,
    /// Which released form of flagd's `fractional` flagd-format flags bucket
    /// with: v1 (legacy percentages), v2 (flagd's Go evaluator), v3 (typed
    /// values, openfeature-flagd-core 2.x). See docs/openfeature.md.
    #[arg(long, value_name = "FORM", default_value = "v3", env = "COHORTD_FLAGD_FRACTIONAL",
          value_parser = parse_form)]
    flagd_fractional: crate::engine::flagd::FractionalForm,
    /// How long in-flight calls may take to finish after SIGTERM/SIGINT.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        env = "COHORTD_SHUTDOWN_GRACE",
        value_parser = parse_duration
    )]
    pub(crate) shutdown_grace: Duration,
    /// Log format (level from the COHORTD_LOG env var, e.g. `info`, `cohortd=debug`).
    #[arg(long, value_enum, default_value = "human", env = "COHORTD_LOG_FORMAT")]
    log_format: LogFormat,
    /// Largest request message in bytes (checked before the message is buffered).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Most top-level attributes in one evaluation context.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_context_attributes)]
    max_context_attributes: usize,
    /// Longest experiment or variant key accepted in a request, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_key_bytes)]
    max_key_bytes: usize,
    /// Longest context attribute name, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_attribute_name_bytes)]
    max_attribute_name_bytes: usize,
    /// Longest string anywhere in a context, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_string_value_bytes)]
    max_string_value_bytes: usize,
    /// Most experiments listed in one AssignAll (an empty list means all, always allowed).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_assign_all_experiments)]
    max_assign_all_experiments: usize,
    /// Most records in one LogExposures call.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_exposure_records)]
    max_exposure_records: usize,
    /// Most values in one evaluation context, nested values included.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_context_nodes, env = "COHORTD_MAX_CONTEXT_NODES")]
    max_context_nodes: usize,
    /// Most bytes in one evaluation context (names, strings, 8 per number), nested values included.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_context_bytes, env = "COHORTD_MAX_CONTEXT_BYTES")]
    max_context_bytes: usize,
    /// Most outcome events in one Track call.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_track_events, env = "COHORTD_MAX_TRACK_EVENTS")]
    max_track_events: usize,
    #[command(flatten)]
    exposure: super::serve_exposure::ExposureArgs,
    #[command(flatten)]
    security: super::security::SecurityArgs,
    /// Quiet time after the last change in the config directory before reloading,
    /// in milliseconds: one ConfigMap update or editor save is several filesystem
    /// events, and this turns them into one reload.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 100,
        env = "COHORTD_DEBOUNCE_MS"
    )]
    debounce_ms: u64,
    /// How often to re-hash the config directory in case filesystem events were
    /// missed (inotify limits, network filesystems); reloads only on a change.
    /// `0` disables it.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, env = "COHORTD_POLL_INTERVAL")]
    poll_interval: Duration,
    /// Whether to follow filesystem events (inotify). `off` leaves the poll alone,
    /// for filesystems that send no events; with `--poll-interval 0` too, only
    /// SIGHUP reloads.
    #[arg(long, value_name = "on|off", default_value = "on", env = "COHORTD_WATCH_EVENTS",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    watch_events: bool,
    /// How long a plain (non-ConfigMap) config directory must stay unchanged before
    /// its content is applied, so a directory copied file by file is never served
    /// half-copied. ConfigMap volumes (`..data` swaps) are applied at once. `0` disables it.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration, env = "COHORTD_SETTLE")]
    settle: Duration,
    /// How long a change that removes a running experiment from a plain directory
    /// must persist before it is applied (a missing file is what a half-done copy looks like).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, env = "COHORTD_REMOVAL_SETTLE")]
    removal_settle: Duration,
    /// Largest config file read, in bytes; a larger one rejects the reload, unread.
    #[arg(long, value_name = "BYTES", default_value_t = ReadLimits::default().max_file_bytes, env = "COHORTD_MAX_CONFIG_FILE_BYTES")]
    max_config_file_bytes: u64,
    /// Largest total of all config files, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = ReadLimits::default().max_total_bytes, env = "COHORTD_MAX_CONFIG_TOTAL_BYTES")]
    max_config_total_bytes: u64,
    /// Most config files in the config directory.
    #[arg(long, value_name = "N", default_value_t = ReadLimits::default().max_files, env = "COHORTD_MAX_CONFIG_FILES")]
    max_config_files: usize,
    /// Most open connections on the gRPC listener; more are closed on accept.
    #[arg(long, value_name = "N", default_value_t = ConnOptions::default().max_connections, env = "COHORTD_MAX_CONNECTIONS")]
    max_connections: usize,
    /// Most open connections on the admin listener.
    #[arg(long, value_name = "N", default_value_t = ConnOptions::default().admin_max_connections, env = "COHORTD_ADMIN_MAX_CONNECTIONS")]
    admin_max_connections: usize,
    /// Most open Watch and flagd EventStream streams (all connections); more get RESOURCE_EXHAUSTED.
    #[arg(long, value_name = "N", default_value_t = ConnOptions::default().max_streams, env = "COHORTD_MAX_STREAMS")]
    max_streams: usize,
    /// Most concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, value_name = "N", default_value_t = ConnOptions::default().max_concurrent_streams_per_connection, env = "COHORTD_MAX_CONCURRENT_STREAMS_PER_CONNECTION")]
    max_concurrent_streams_per_connection: u32,
    /// Time a new connection has to send its first bytes (HTTP/2 preface or HTTP/1
    /// request line) before it is closed; `0` disables it.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, env = "COHORTD_HANDSHAKE_TIMEOUT")]
    handshake_timeout: Duration,
    /// Interval of server HTTP/2 keep-alive pings on gRPC connections; `0` disables
    /// them. Client pings (flagd providers send them often) are always answered.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, env = "COHORTD_HTTP2_KEEPALIVE_INTERVAL")]
    http2_keepalive_interval: Duration,
    /// Time an HTTP request on the admin and OFREP ports has to send all its
    /// headers before its connection is closed (slowloris); `0` disables it.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, env = "COHORTD_ADMIN_HEADER_TIMEOUT")]
    admin_header_timeout: Duration,
    /// Test hook: delay every gRPC call (used by the graceful-shutdown test).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, hide = true)]
    debug_delay: Option<Duration>,
}

/// `--admin-listen`, `--ofrep-listen`: an address or `off`.
#[derive(Debug, Clone, Copy)]
pub struct AdminListen(Option<SocketAddr>);

fn parse_admin(s: &str) -> Result<AdminListen, String> {
    if s == "off" {
        return Ok(AdminListen(None));
    }
    s.parse()
        .map(|a| AdminListen(Some(a)))
        .map_err(|_| format!("`{s}` is not IP:PORT or `off`"))
}

pub(crate) fn parse_form(s: &str) -> Result<crate::engine::flagd::FractionalForm, String> {
    crate::engine::flagd::FractionalForm::parse(s)
        .ok_or_else(|| format!("`{s}` is not a fractional form: use v1, v2 or v3"))
}

impl Args {
    fn read_limits(&self) -> ReadLimits {
        ReadLimits {
            max_file_bytes: self.max_config_file_bytes,
            max_total_bytes: self.max_config_total_bytes,
            max_files: self.max_config_files,
        }
    }

    fn options(&self) -> ServeOptions {
        ServeOptions {
            listen: self.listen.clone(),
            admin_listen: self.admin_listen.0,
            ofrep_listen: self.ofrep_listen.0,
            sync_listen: self.sync_listen.0,
            shutdown_grace: self.shutdown_grace,
            limits: Limits {
                max_message_bytes: self.max_message_bytes,
                max_context_attributes: self.max_context_attributes,
                max_key_bytes: self.max_key_bytes,
                max_attribute_name_bytes: self.max_attribute_name_bytes,
                max_string_value_bytes: self.max_string_value_bytes,
                max_assign_all_experiments: self.max_assign_all_experiments,
                max_exposure_records: self.max_exposure_records,
                max_context_nodes: self.max_context_nodes,
                max_context_bytes: self.max_context_bytes,
                max_track_events: self.max_track_events,
            },
            debug_delay: self.debug_delay,
            trace: Default::default(),
            probe_listen: self.security.probe_listen.0,
            security: self.security.options(),
            conns: ConnOptions {
                max_connections: self.max_connections,
                admin_max_connections: self.admin_max_connections,
                max_streams: self.max_streams,
                max_concurrent_streams_per_connection: self.max_concurrent_streams_per_connection,
                handshake_timeout: self.handshake_timeout,
                http2_keepalive_interval: self.http2_keepalive_interval,
                admin_header_timeout: self.admin_header_timeout,
            },
        }
    }
}

/// Installs the global tracing subscriber: level from `COHORTD_LOG` (default
/// `info`), human or JSON lines on stderr.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COHORTD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // On a failed write (stderr closed: EPIPE) tracing-subscriber would report
        // it with `eprintln!`, which panics on that same closed stderr and kills
        // the process. A sidecar whose log reader went away keeps serving.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Starts following the config directory. If the OS refuses an event watch (e.g.
/// the inotify watch limit), the content-hash poll alone still picks up changes.
fn start_watcher(args: &Args, store: &Arc<Store>) -> Option<WatchHandle> {
    let dir = args.config.path().to_path_buf();
    let opts = WatchOptions {
        debounce: Duration::from_millis(args.debounce_ms),
        poll_interval: args.poll_interval,
        events: args.watch_events,
        settle: Settle {
            settle: args.settle,
            removal_settle: args.removal_settle,
        },
        limits: args.read_limits(),
    };
    if !dir.exists() {
        // One clear line; the first reload then reports the path as unreadable.
        tracing::warn!(
            dir = %dir.display(),
            poll = %humantime_secs(opts.poll_interval),
            "the config directory does not exist; checking for it at each poll"
        );
        return match watch::spawn(
            dir,
            store.clone(),
            WatchOptions {
                events: false,
                ..opts
            },
        ) {
            Ok(w) if !args.poll_interval.is_zero() => Some(w),
            Ok(_) | Err(_) => {
                tracing::error!(
                    "config reload is off: the directory is missing and --poll-interval is 0"
                );
                None
            }
        };
    }
    match watch::spawn(dir.clone(), store.clone(), opts.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, poll = %humantime_secs(opts.poll_interval), "no filesystem events; polling the config directory only");
            let poll_only = WatchOptions {
                events: false,
                ..opts
            };
            match watch::spawn(dir, store.clone(), poll_only) {
                Ok(w) if !args.poll_interval.is_zero() => Some(w),
                Ok(_) | Err(_) => {
                    tracing::error!("config reload is off: no events and --poll-interval 0");
                    None
                }
            }
        }
    }
}

/// Runs the command; returns the process exit code.
pub fn run(args: &Args) -> i32 {
    init_logging(args.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return 1;
        }
    };
    rt.block_on(serve(args))
}

/// Waits (up to a minute) until the watcher's first reload attempt is done.
async fn first_reload(w: &WatchHandle) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while w.stats().reloads == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn serve(args: &Args) -> i32 {
    let dir = args.config.path();
    let mut signals = match crate::signals::Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install SIGTERM/SIGINT/SIGHUP handlers");
            return 1;
        }
    };
    let store = Store::with_flagd_form(args.flagd_fractional);
    let metrics = Metrics::new();
    metrics.watch_store(store.clone());

    // The startup load is the watcher's first reload (building the snapshot a
    // second time would leave the allocator holding another copy's worth of
    // memory). Listeners open after it, so the first caller finds the config in
    // force. An invalid config does not stop the sidecar: it serves NOT_SERVING /
    // UNAVAILABLE until a valid config arrives.
    let watcher = start_watcher(args, &store);
    match &watcher {
        Some(w) => first_reload(w).await,
        None => {
            if let ReloadOutcome::Rejected(errors) = reload_now(dir, &store) {
                for e in &errors.0 {
                    tracing::error!(error = %e, "invalid config");
                }
            }
        }
    }
    match store.load() {
        Some(snap) => tracing::info!(
            version = snap.version(),
            experiments = snap.experiments().len(),
            dir = %dir.display(),
            "config loaded"
        ),
        // The watcher's first reload logged the problems and what is served.
        None if watcher.is_some() => {}
        None => tracing::error!(
            dir = %dir.display(),
            "no valid config; serving NOT_SERVING until one arrives"
        ),
    }

    // Exposures: dedup, counts and the SRM check always; OTLP export when an
    // OTEL_EXPORTER_OTLP_*ENDPOINT is configured.
    let otel = match OtelExport::from_env(args.exposure.signals()) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "invalid OpenTelemetry export settings");
            return 1;
        }
    };
    let mut exposures = ExposurePipeline::start(args.exposure.config(), otel);
    exposures.follow_reloads(&store);
    metrics.register_collector(Box::new(crate::exposure::metrics::ExposureMetrics::of(
        &exposures,
    )));
    tracing::info!(
        export = exposures.exporting(),
        spans = exposures.exporting()
            && args.exposure.signals() == crate::exposure::otel::Signals::Spans,
        unit_id = args.exposure.exposure_unit_id.as_str(),
        "exposure pipeline started"
    );
    let mut options = args.options();
    options.trace = exposures.trace_layer();
    let sink = exposures.sink();
    let started = crate::server::start(options, store.clone(), sink, metrics).await;
    let running = match started {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return 1;
        }
    };
    let or_off =
        |a: Option<std::net::SocketAddr>| a.map_or_else(|| "off".to_owned(), |a| a.to_string());
    let (admin, ofrep, probe) = (
        or_off(running.admin_addr),
        or_off(running.ofrep_addr),
        or_off(running.probe_addr),
    );
    match &running.grpc_addr {
        Bound::Tcp(a) => {
            tracing::info!(grpc = %a, admin = %admin, ofrep = %ofrep, probe = %probe, "serving")
        }
        Bound::Unix(p) => {
            tracing::info!(grpc = %format!("unix:{}", p.display()), admin = %admin, ofrep = %ofrep, probe = %probe, "serving")
        }
    }

    let signal = loop {
        match signals.recv().await {
            crate::signals::Request::Stop(name) => break name,
            crate::signals::Request::Reload => {
                tracing::info!(signal = "SIGHUP", dir = %dir.display(), "reloading the config now");
                match &watcher {
                    Some(w) => w.reload(),
                    None => {
                        let (d, s) = (dir.to_owned(), store.clone());
                        let outcome = tokio::task::spawn_blocking(move || reload_now(&d, &s)).await;
                        let outcome = match outcome {
                            Ok(ReloadOutcome::Applied(_)) => "applied",
                            Ok(ReloadOutcome::Unchanged) => "unchanged",
                            Ok(ReloadOutcome::Rejected(_)) => "rejected",
                            Err(_) => "failed",
                        };
                        tracing::info!(outcome, "SIGHUP reload done");
                    }
                }
            }
        }
    };
    tracing::info!(signal, grace = %humantime_secs(args.shutdown_grace), "shutting down");
    if let Some(w) = watcher {
        w.stop().await;
    }
    let deadline = tokio::time::Instant::now() + args.shutdown_grace;
    let clean = running.shutdown().await;
    // Exposures get what is left of the grace period (at least a moment).
    let left = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(Duration::from_millis(500));
    let flushed = exposures.shutdown(left).await;
    tracing::info!(
        clean,
        exposures_flushed = flushed.completed,
        exposures_dropped = flushed.stats.dropped,
        "stopped"
    );
    0
}

/// A duration for a log line: `10s`, `1.5s`, `250ms` (not Rust's `Duration` debug form).
fn humantime_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}
