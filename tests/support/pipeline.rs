//! The in-process server wired to a real exposure pipeline (dedup, SRM,
//! OTLP export), as `cohortd serve` wires it: what the exposure tests start.

use std::sync::Arc;
use std::time::Duration;

use cohortd::exposure::otel::{OtelExport, Signals};
use cohortd::exposure::pipeline::{ExposurePipeline, PipelineConfig};
use cohortd::metrics::Metrics;
use cohortd::reload::Store;
use cohortd::server::{Bound, Listen, Running, ServeOptions};
use cohortd::transport::pb::assignment_client::AssignmentClient;

/// A server wired to an exposure pipeline, as `cohortd serve` wires it.
pub struct Served {
    pub running: Running,
    pub pipeline: ExposurePipeline,
    pub metrics: Arc<Metrics>,
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
}

/// Starts the gRPC server on 127.0.0.1:0 with config `yaml`, exporting
/// exposures to `endpoint` (or not at all).
pub async fn serve(yaml: &str, endpoint: Option<&str>, cfg: PipelineConfig) -> Served {
    serve_with(yaml, endpoint, cfg, |_| {}).await
}

/// As [`serve`], exporting exposure spans (and server spans) besides the log
/// records, as `cohortd serve --exposure-spans` does.
pub async fn serve_spans(yaml: &str, endpoint: &str, cfg: PipelineConfig) -> Served {
    serve_signals(yaml, Some(endpoint), Signals::Spans, cfg, |_| {}).await
}

/// As [`serve`], with the server options adjusted by `adjust` (e.g. an OFREP
/// listener).
pub async fn serve_with(
    yaml: &str,
    endpoint: Option<&str>,
    cfg: PipelineConfig,
    adjust: impl FnOnce(&mut ServeOptions),
) -> Served {
    serve_signals(yaml, endpoint, Signals::Logs, cfg, adjust).await
}

async fn serve_signals(
    yaml: &str,
    endpoint: Option<&str>,
    signals: Signals,
    cfg: PipelineConfig,
    adjust: impl FnOnce(&mut ServeOptions),
) -> Served {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("experiments.yaml"), yaml).unwrap();
    let store = Store::new();
    let out = cohortd::reload::reload_now(dir.path(), &store);
    assert!(
        matches!(out, cohortd::reload::ReloadOutcome::Applied(_)),
        "{out:?}"
    );
    let otel = endpoint
        .map(|e| OtelExport::to_endpoint_with(e, Some(Duration::from_secs(2)), signals).unwrap());
    let mut pipeline = ExposurePipeline::start(cfg, otel);
    pipeline.follow_reloads(&store);
    let metrics = Metrics::new();
    metrics.register_collector(Box::new(cohortd::exposure::metrics::ExposureMetrics::of(
        &pipeline,
    )));
    let mut opts = ServeOptions {
        listen: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
        admin_listen: None,
        shutdown_grace: Duration::from_secs(5),
        trace: pipeline.trace_layer(),
        ..ServeOptions::default()
    };
    adjust(&mut opts);
    let running = cohortd::server::start(opts, store.clone(), pipeline.sink(), metrics.clone())
        .await
        .unwrap();
    Served {
        running,
        pipeline,
        metrics,
        dir,
        store,
    }
}

impl Served {
    pub async fn client(&self) -> AssignmentClient<tonic::transport::Channel> {
        let url = match &self.running.grpc_addr {
            Bound::Tcp(a) => format!("http://{a}"),
            Bound::Unix(_) => unreachable!(),
        };
        AssignmentClient::connect(url).await.unwrap()
    }
}
