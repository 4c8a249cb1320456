//! Shared helpers of the exposure tests.
#![allow(dead_code)]

pub mod otlp;

use std::path::Path;

use cohortd::config::SourceFile;
use cohortd::Snapshot;

/// Compiles one YAML config document into a snapshot.
pub fn snapshot(yaml: &str) -> Snapshot {
    let path = Path::new("test.yaml");
    let doc = cohortd::config::parse_file(path, yaml.as_bytes()).expect("config parses");
    Snapshot::compile(&[SourceFile {
        path: path.to_owned(),
        doc,
    }])
    .expect("config compiles")
}

/// A JSON object context.
pub fn ctx(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => panic!("context must be an object"),
    }
}

use std::sync::Arc;
use std::time::Duration;

use cohortd::exposure::otel::OtelExport;
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

/// As [`serve`], with the server options adjusted by `adjust` (e.g. an OFREP
/// listener).
pub async fn serve_with(
    yaml: &str,
    endpoint: Option<&str>,
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
    let otel = endpoint.map(|e| OtelExport::to_endpoint(e, Some(Duration::from_secs(2))).unwrap());
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

/// A `google.protobuf.Struct` of string fields.
pub fn proto_ctx(fields: &[(&str, &str)]) -> prost_types::Struct {
    prost_types::Struct {
        fields: fields
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::StringValue((*v).to_owned())),
                    },
                )
            })
            .collect(),
    }
}

/// One OFREP POST over a fresh HTTP/1.1 connection with extra `headers`;
/// returns the status and the JSON body (null when there is none).
pub async fn ofrep_post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let json = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}
