//! The flagd protocol fixture: a config covering every value type and reason,
//! a store serving it, both flagd evaluation services in process on an
//! ephemeral loopback port, and what the interop clients should see.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cohortd::reload::Store;
use cohortd::transport::flagd::{services_with, FlagdOptions};
use cohortd::Snapshot;
use tokio_stream::wrappers::TcpListenerStream;

use super::compile::compile_yaml;
use super::sink::RecordingSink;

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
    start_with(
        store,
        FlagdOptions {
            keep_alive,
            ..Default::default()
        },
    )
    .await
}

/// Starts both flagd services with explicit options.
pub async fn start_with(store: Arc<Store>, opts: FlagdOptions) -> Server {
    let sink = Arc::new(RecordingSink::default());
    let (v1, v2) = services_with(store.clone(), sink.clone(), opts);
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
    store.install(compile_yaml(CONFIG));
    store
}

/// What the interop clients should see, computed with cohortd's engine: an
/// enrolled and an outside user of the rollout, and the split variant of a few
/// users for the string, float and object flags.
pub fn expectations() -> String {
    use cohortd::engine::EvalOptions;
    let snap = compile_yaml(CONFIG);
    let ctx = |u: &str| -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("targetingKey".into(), u.into());
        m
    };
    let assign = |key: &str, u: &str| snap.assign(key, &ctx(u), EvalOptions::default()).unwrap();
    let units: Vec<String> = (0..8).map(|i| format!("user-{i}")).collect();
    let find = |enrolled: bool| {
        (0..10_000)
            .map(|i| format!("u{i}"))
            .find(|u| assign("upload-limit-mb", u).enrolled == enrolled)
            .unwrap()
    };
    let mut exp = serde_json::Map::new();
    exp.insert("rollout_in".into(), find(true).into());
    exp.insert("rollout_out".into(), find(false).into());
    for key in ["greeting", "price-multiplier", "checkout-config"] {
        let m: serde_json::Map<String, serde_json::Value> = units
            .iter()
            .map(|u| (u.clone(), assign(key, u).variant.key.to_string().into()))
            .collect();
        exp.insert(key.into(), m.into());
    }
    serde_json::Value::Object(exp).to_string()
}

/// [`CONFIG`] with the kill switch stopped: the change every client must see.
pub fn changed_config() -> String {
    let stopped = CONFIG.replace(
        "  - key: kill-switch\n    status: running",
        "  - key: kill-switch\n    status: stopped",
    );
    assert_ne!(stopped, CONFIG, "the kill switch moved in CONFIG");
    stopped
}

/// [`changed_config`], compiled: what the in-process interop clients reload to.
pub fn stopped_kill_switch() -> Snapshot {
    compile_yaml(&changed_config())
}

/// The experiments of [`CONFIG`] that are plain flags (one live variant for
/// everyone): OpenFeature reports STATIC for them where a split says SPLIT.
pub const PLAIN_FLAGS: &[&str] = &["kill-switch"];

/// Contexts the out-of-process clients evaluate: plain users, users matching
/// `beta-only`'s rule, and one without a unit.
pub fn contexts() -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = (0..10)
        .map(|i| serde_json::json!({"targetingKey": format!("user-{i}")}))
        .collect();
    out.push(serde_json::json!({"targetingKey": "user-beta-1", "plan": "beta"}));
    out.push(serde_json::json!({"targetingKey": "user-beta-2", "plan": "beta"}));
    out.push(serde_json::json!({}));
    out
}
