//! Shared fixtures for the flagd protocol tests: a config covering every value
//! type and reason, an in-process server on an ephemeral loopback port, and an
//! exposure sink that remembers what it was given.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cohortd::config::{parse_sources, RawFile};
use cohortd::exposure::{Exposure, ExposureSink};
use cohortd::reload::Store;
use cohortd::transport::flagd::{services_with, FlagdOptions};
use cohortd::Snapshot;
use tokio_stream::wrappers::TcpListenerStream;

/// Every value type, every reason, and the plain-flag forms.
pub const CONFIG: &str = r#"
experiments:
  # A boolean kill switch: one live variant, so it is STATIC and needs no unit.
  - key: kill-switch
    status: running
    variants:
      - {key: "on", value: true}
      - {key: "off", value: false, weight: 0}
    defaultVariant: "off"
  # A percentage rollout of an integer.
  - key: upload-limit-mb
    status: running
    trafficAllocation: 0.2
    variants:
      - {key: new, value: 250}
      - {key: old, value: 100, weight: 0}
    defaultVariant: old
  - key: greeting
    status: running
    variants:
      - {key: en, value: "hello"}
      - {key: fr, value: "bonjour"}
  - key: price-multiplier
    status: running
    variants:
      - {key: low, value: 0.9}
      - {key: high, value: 1.25}
  - key: checkout-config
    status: running
    variants:
      - {key: one-page, value: {steps: 1, express: true}}
      - {key: multi-page, value: {steps: 3, express: false}}
  - key: tour
    status: completed
    winner: short
    variants: [none, short]
  - key: old-test
    status: stopped
    variants: [control, treatment]
  - key: beta-only
    status: running
    variants: [off, on]
    targeting:
      rules:
        - {attribute: plan, op: equals, value: beta}
  - key: unfinished
    status: draft
    variants: [a, b]
"#;

/// Compiles a YAML config text.
pub fn snapshot(text: &str) -> Snapshot {
    let files = vec![RawFile {
        path: "flags.yaml".into(),
        bytes: text.as_bytes().to_vec(),
    }];
    Snapshot::compile(&parse_sources(&files).expect("parses")).expect("compiles")
}

/// One recorded exposure, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub experiment: String,
    pub variant: String,
    pub unit: String,
    pub source: &'static str,
}

/// Remembers every exposure it receives.
#[derive(Debug, Default)]
pub struct RecordingSink(pub Mutex<Vec<Seen>>);

impl ExposureSink for RecordingSink {
    fn record(&self, e: &Exposure<'_>) {
        self.0.lock().unwrap().push(Seen {
            experiment: e.assignment.experiment.key.to_string(),
            variant: e.assignment.variant.key.to_string(),
            unit: e.unit.to_string(),
            source: e.source,
        });
    }
}

impl RecordingSink {
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A running flagd-protocol server.
pub struct Server {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    pub sink: Arc<RecordingSink>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts both flagd services on 127.0.0.1:0 over `store` (in the current runtime).
pub async fn start(store: Arc<Store>, keep_alive: Duration) -> Server {
    let sink = Arc::new(RecordingSink::default());
    let (v1, v2) = services_with(store.clone(), sink.clone(), FlagdOptions { keep_alive });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(v1)
            .add_service(v2)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    Server { addr, store, sink }
}

/// A store serving [`CONFIG`].
pub fn store() -> Arc<Store> {
    let store = Store::new();
    store.install(snapshot(CONFIG));
    store
}
