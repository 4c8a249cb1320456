//! The `serve` flags for TLS, auth, ingest and the probe listener (see
//! docs/security.md for what each one closes). The `#[arg(...)]` blocks look
//! alike because each flag declares its own name, env var and requirement.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::security::ingest::IngestPolicy;
use crate::security::tls::TlsFiles;
use crate::security::SecurityOptions;

/// `--ingest`: whether LogExposures and Track are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ingest {
    /// Served, within the per-connection budget.
    On,
    /// Refused with PERMISSION_DENIED.
    Off,
}

/// Security flags of `cohortd serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct SecurityArgs {
    /// Probe listener: grpc.health.v1 and HTTP /healthz, /readyz only, never TLS
    /// or auth, for kubelet probes on the pod IP (e.g. 0.0.0.0:8017); `off`
    /// disables it.
    #[arg(long, value_name = "ADDR", default_value = "off", env = "COHORTD_PROBE_LISTEN", value_parser = parse_probe)]
    pub probe_listen: ProbeListen,
    /// PEM certificate chain: turns on TLS for every listener that is not
    /// loopback (gRPC, admin, ...). Reloaded when the file changes.
    #[arg(
        long,
        value_name = "PATH",
        env = "COHORTD_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(
        long,
        value_name = "PATH",
        env = "COHORTD_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: require client certificates it signed (mutual TLS).
    #[arg(
        long,
        value_name = "PATH",
        env = "COHORTD_TLS_CLIENT_CA",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// File of accepted caller tokens (one per line); callers send
    /// `authorization: Bearer <token>` or `X-API-Key`. Health needs none.
    #[arg(long, value_name = "PATH", env = "COHORTD_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// How often certificate and token files are re-read for rotation.
    #[arg(long, value_name = "DURATION", default_value = "2s", env = "COHORTD_SECRET_POLL_INTERVAL", value_parser = super::duration::parse_duration)]
    pub secret_poll_interval: Duration,
    /// Ingest calls (LogExposures, Track): `off` refuses them (PERMISSION_DENIED).
    #[arg(long, value_enum, default_value = "on", env = "COHORTD_INGEST")]
    pub ingest: Ingest,
    /// Ingest records per second per connection (RESOURCE_EXHAUSTED beyond); 0 = unlimited.
    #[arg(long, value_name = "N", default_value_t = IngestPolicy::default().records_per_second, env = "COHORTD_INGEST_RECORDS_PER_SECOND")]
    pub ingest_records_per_second: u32,
    /// Ingest records a connection may send at once after being idle.
    #[arg(long, value_name = "N", default_value_t = IngestPolicy::default().burst, env = "COHORTD_INGEST_BURST")]
    pub ingest_burst: u32,
}

/// `--probe-listen`: an address or `off`.
#[derive(Debug, Clone, Copy)]
pub struct ProbeListen(pub Option<SocketAddr>);

fn parse_probe(s: &str) -> Result<ProbeListen, String> {
    if s == "off" {
        return Ok(ProbeListen(None));
    }
    s.parse()
        .map(|a| ProbeListen(Some(a)))
        .map_err(|_| format!("`{s}` is not IP:PORT or `off`"))
}

impl SecurityArgs {
    /// The parsed settings.
    pub fn options(&self) -> SecurityOptions {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        };
        SecurityOptions {
            tls,
            auth_token_file: self.auth_token_file.clone(),
            ingest: IngestPolicy {
                enabled: self.ingest == Ingest::On,
                records_per_second: self.ingest_records_per_second,
                burst: self.ingest_burst,
            },
            poll_interval: self.secret_poll_interval,
        }
    }
}
