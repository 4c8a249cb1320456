//! Shared helpers for the server tests: a config directory, an in-process server
//! on ephemeral loopback ports, a recording exposure sink, and a tiny HTTP GET.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cohortd::exposure::{Exposure, ExposureSink};
use cohortd::metrics::Metrics;
use cohortd::reload::Store;
use cohortd::server::{Bound, Listen, Running, ServeOptions};
use cohortd::transport::pb::assignment_client::AssignmentClient;
use prost_types::value::Kind;
use prost_types::{Struct, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

/// A config with a flag, a 50% experiment with targeting, a layered experiment
/// behind a holdout, a completed one with a winner, and a draft.
pub const CONFIG: &str = r#"
layers:
  - key: search
holdouts:
  - key: hold
    fraction: 0.1
experiments:
  - key: flag
    status: running
    variants:
      - {key: "on", value: true}
      - {key: "off", value: false, weight: 0}
    defaultVariant: "off"
  - key: half
    status: running
    trafficAllocation: 0.5
    variants:
      - {key: a, value: {color: "red", size: 2}}
      - {key: b, value: {color: "blue", size: 3}}
    targeting:
      include: ["country:NL"]
  - key: layered
    status: running
    variants: [control, treat]
    layer: {key: search, range: [0.0, 0.5]}
    holdout: hold
  - key: done
    status: completed
    winner: big
    variants: [small, big]
  - key: wip
    status: draft
    variants: [x, y]
"#;

/// Writes [`CONFIG`] into `dir/experiments.yaml`.
pub fn write_config(dir: &Path) {
    std::fs::write(dir.join("experiments.yaml"), CONFIG).unwrap();
}

/// One recorded exposure: `(experiment, variant, unit, source, config_version)`.
pub type Recorded = (String, String, String, &'static str, String);

/// Keeps every exposure it is handed.
#[derive(Debug, Default)]
pub struct RecordingSink(pub Mutex<Vec<Recorded>>);

impl ExposureSink for RecordingSink {
    fn record(&self, e: &Exposure<'_>) {
        self.0.lock().unwrap().push((
            e.subject.key().to_string(),
            e.subject.variant().to_string(),
            e.unit.to_owned(),
            e.source.as_str(),
            e.config_version.to_owned(),
        ));
    }
}

impl RecordingSink {
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// An in-process server and what the tests need to poke at it.
pub struct TestServer {
    pub running: Running,
    pub store: Arc<Store>,
    pub sink: Arc<RecordingSink>,
    pub metrics: Arc<Metrics>,
    pub dir: tempfile::TempDir,
}

/// Starts a server on 127.0.0.1:0 (gRPC and admin). With `load`, the config is
/// loaded first; otherwise the store is empty (nothing served yet).
pub async fn start(load: bool, tweak: impl FnOnce(&mut ServeOptions)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let store = Store::new();
    if load {
        let out = cohortd::reload::reload_now(dir.path(), &store);
        assert!(
            matches!(out, cohortd::reload::ReloadOutcome::Applied(_)),
            "{out:?}"
        );
    }
    let sink = Arc::new(RecordingSink::default());
    let metrics = Metrics::new();
    metrics.watch_store(store.clone());
    let mut opts = ServeOptions {
        listen: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        shutdown_grace: Duration::from_secs(5),
        ..ServeOptions::default()
    };
    tweak(&mut opts);
    let running = cohortd::server::start(opts, store.clone(), sink.clone(), metrics.clone())
        .await
        .unwrap();
    TestServer {
        running,
        store,
        sink,
        metrics,
        dir,
    }
}

impl TestServer {
    pub fn url(&self) -> String {
        match &self.running.grpc_addr {
            Bound::Tcp(a) => format!("http://{a}"),
            Bound::Unix(_) => panic!("not TCP"),
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> AssignmentClient<Channel> {
        AssignmentClient::new(self.channel().await)
    }

    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.running.admin_addr.unwrap(), path).await
    }
}

/// A minimal HTTP/1.1 GET (Connection: close), returning status and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

pub fn sv(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

/// A context from `(name, string value)` pairs.
pub fn ctx(pairs: &[(&str, &str)]) -> Struct {
    Struct {
        fields: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), sv(v)))
            .collect::<BTreeMap<_, _>>(),
    }
}
