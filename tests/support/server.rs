//! The in-process cohortd server: a config covering every experiment form,
//! written to a temporary directory, and `cohortd::server::start` on ephemeral
//! loopback ports (gRPC and admin) with a recording exposure sink.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cohortd::metrics::Metrics;
use cohortd::reload::Store;
use cohortd::server::{Bound, Listen, Running, ServeOptions};
use cohortd::transport::limits::Limits;
use cohortd::transport::pb::assignment_client::AssignmentClient;
use tonic::transport::Channel;

use super::http::http_get;
use super::sink::RecordingSink;

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

/// An in-process server with the OFREP listener on, over a given store.
pub struct OfrepServer {
    pub running: Running,
    pub store: Arc<Store>,
    pub sink: Arc<RecordingSink>,
}

impl OfrepServer {
    /// The OFREP listener's address.
    pub fn ofrep(&self) -> std::net::SocketAddr {
        self.running.ofrep_addr.expect("OFREP is on")
    }
}

/// Starts gRPC, admin and OFREP on 127.0.0.1:0 over `store` with `limits`.
pub async fn start_ofrep(store: Arc<Store>, limits: Limits) -> OfrepServer {
    let sink = Arc::new(RecordingSink::default());
    let opts = ServeOptions {
        listen: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ofrep_listen: Some("127.0.0.1:0".parse().unwrap()),
        limits,
        ..ServeOptions::default()
    };
    let running = cohortd::server::start(opts, store.clone(), sink.clone(), Metrics::new())
        .await
        .unwrap();
    OfrepServer {
        running,
        store,
        sink,
    }
}
