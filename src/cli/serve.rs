//! `cohortd serve`: the sidecar. Loads the config directory, serves gRPC and the
//! management port, and shuts down gracefully on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::exposure::otel::OtelExport;
use crate::exposure::pipeline::ExposurePipeline;
use crate::metrics::Metrics;
use crate::reload::{reload_now, watch, ReloadOutcome, Store, WatchHandle, WatchOptions};
use crate::server::{Bound, Listen, ServeOptions};
use crate::transport::limits::Limits;

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
    /// How long in-flight calls may take to finish after SIGTERM/SIGINT.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    shutdown_grace: Duration,
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
    /// Most outcome events in one Track call.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_track_events)]
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
    /// Test hook: delay every gRPC call (used by the graceful-shutdown test).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, hide = true)]
    debug_delay: Option<Duration>,
}

/// `--admin-listen`: an address or `off`.
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

/// Parses `250ms`, `10s`, `2m` or a bare number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration (e.g. 500ms, 10s, 1m)");
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

impl Args {
    fn options(&self) -> ServeOptions {
        ServeOptions {
            listen: self.listen.clone(),
            admin_listen: self.admin_listen.0,
            shutdown_grace: self.shutdown_grace,
            limits: Limits {
                max_message_bytes: self.max_message_bytes,
                max_context_attributes: self.max_context_attributes,
                max_key_bytes: self.max_key_bytes,
                max_attribute_name_bytes: self.max_attribute_name_bytes,
                max_string_value_bytes: self.max_string_value_bytes,
                max_assign_all_experiments: self.max_assign_all_experiments,
                max_exposure_records: self.max_exposure_records,
                max_track_events: self.max_track_events,
            },
            debug_delay: self.debug_delay,
            trace: Default::default(),
            probe_listen: self.security.probe_listen.0,
            security: self.security.options(),
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
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Starts following the config directory. If the OS refuses an event watch (e.g.
/// the inotify watch limit), the content-hash poll alone still picks up changes.
fn start_watcher(args: &Args, store: &Arc<Store>) -> Option<WatchHandle> {
    let dir = args.config.config_dir.clone();
    let opts = WatchOptions {
        debounce: Duration::from_millis(args.debounce_ms),
        poll_interval: args.poll_interval,
        events: true,
    };
    match watch::spawn(dir.clone(), store.clone(), opts.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, poll = ?opts.poll_interval, "no filesystem events; polling the config directory only");
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
    let dir = &args.config.config_dir;
    let mut signals = match crate::shutdown::Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install SIGTERM/SIGINT handlers");
            return 1;
        }
    };
    let store = Store::new();
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
        None => tracing::error!(
            dir = %dir.display(),
            error = store.status().last_error.as_deref(),
            "no valid config; serving NOT_SERVING until one arrives"
        ),
    }

    // Exposures: dedup, counts and the SRM check always; OTLP export when an
    // OTEL_EXPORTER_OTLP_*ENDPOINT is configured.
    let otel = match OtelExport::from_env() {
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
    match &running.grpc_addr {
        Bound::Tcp(a) => {
            tracing::info!(grpc = %a, admin = ?running.admin_addr, probe = ?running.probe_addr, "serving")
        }
        Bound::Unix(p) => {
            tracing::info!(grpc = %format!("unix:{}", p.display()), admin = ?running.admin_addr, probe = ?running.probe_addr, "serving")
        }
    }

    let signal = signals.recv().await;
    tracing::info!(signal, grace = ?args.shutdown_grace, "shutting down");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
