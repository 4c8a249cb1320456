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
            experiment: e.subject.key().to_string(),
            variant: e.subject.variant().to_string(),
            unit: e.unit.to_string(),
            source: e.source.as_str(),
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
    store.install(snapshot(CONFIG));
    store
}

/// The Python interpreter with the OpenFeature packages: `$COHORTD_PYTHON` (set by
/// .ci/test.sh), else the project's `.venv`. `None` (skip) only outside CI; in CI
/// a missing interpreter fails the test.
pub fn python() -> Option<std::path::PathBuf> {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    match std::env::var_os("COHORTD_PYTHON") {
        Some(p) => Some(p.into()),
        None if venv.exists() => Some(venv),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("COHORTD_PYTHON is unset in CI: run the suite with `bash .ci/test.sh`, which creates .venv")
        }
        None => {
            eprintln!("skipping: no COHORTD_PYTHON and no .venv (run `bash .ci/setup-python.sh`)");
            None
        }
    }
}

/// A client process driven line by line over stdin/stdout, killed if it
/// outlives the test.
pub struct Driven {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    deadline: std::time::Instant,
}

impl Driven {
    /// Starts `cmd` with piped stdio; the whole exchange must end within `limit`.
    pub fn spawn(mut cmd: std::process::Command, limit: Duration) -> Driven {
        use std::io::{BufRead, Read};
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Driven {
            child,
            lines,
            stderr,
            deadline: std::time::Instant::now() + limit,
        }
    }

    /// Waits for the line `want`; `Err` carries everything seen instead.
    pub fn expect_line(&mut self, want: &str) -> Result<(), String> {
        let mut seen = Vec::new();
        loop {
            let left = self
                .deadline
                .saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.trim() == want => return Ok(()),
                Ok(l) => seen.push(l),
                Err(_) => return Err(format!("no `{want}` line; stdout so far: {seen:?}")),
            }
        }
    }

    /// Writes one line to the child's stdin.
    pub fn send_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for exit (killing the child at the deadline) and returns whether it
    /// succeeded, with its stderr.
    pub fn finish(mut self) -> (bool, String) {
        let ok = loop {
            match self.child.try_wait().unwrap() {
                Some(status) => break status.success(),
                None if std::time::Instant::now() >= self.deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break false;
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        (ok, self.stderr.join().unwrap_or_default())
    }

    /// Kills the child (after a failed exchange) and returns its stderr.
    pub fn abort(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.join().unwrap_or_default()
    }
}

/// What the interop clients should see, computed with cohortd's engine: an
/// enrolled and an outside user of the rollout, and the split variant of a few
/// users for the string, float and object flags.
pub fn expectations() -> String {
    use cohortd::engine::EvalOptions;
    let snap = snapshot(CONFIG);
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

/// [`CONFIG`] with the kill switch stopped: what the interop clients reload to.
pub fn stopped_kill_switch() -> Snapshot {
    snapshot(&CONFIG.replace(
        "  - key: kill-switch\n    status: running",
        "  - key: kill-switch\n    status: stopped",
    ))
}
