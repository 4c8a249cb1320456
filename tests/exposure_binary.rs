//! The real `cohortd serve` binary with OTEL_* export: flags and environment
//! are honoured, exposures join the caller's trace, spans only with
//! `--exposure-spans`, and SIGTERM flushes what is queued before the process
//! exits.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cohortd::transport::pb;
use support::context::proto_ctx;
use support::otlp::{attrs, hex, Receiver, V};

const CONFIG: &str = r#"
experiments:
  - experimentId: checkout
    status: running
    variants: [control, treatment]
    assignment: {hashKey: userId}
"#;

const TRACE_ID: &str = "5bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_log_records_with_otel_env_and_flushes_on_sigterm() {
    let rx = run_serve(&[]).await;
    assert!(rx.spans().is_empty(), "no spans without --exposure-spans");
    let logs = rx.logs();
    for l in &logs {
        assert_eq!(hex(&l.span_id), CALLER_SPAN, "the caller's span");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposure_spans_flag_adds_server_and_exposure_spans() {
    let rx = run_serve(&["--exposure-spans"]).await;
    let spans = rx.spans();
    let named = |n: &str| spans.iter().filter(|(_, s)| s.name == n).count();
    assert_eq!(named("feature_flag.evaluation"), 3);
    assert_eq!(
        named("cohortd.v1.Assignment/Assign"),
        3,
        "a server span per call"
    );
    for l in &rx.logs() {
        assert!(
            spans
                .iter()
                .any(|(_, s)| s.span_id == l.span_id && s.name == "feature_flag.evaluation"),
            "the log record points at its exposure span"
        );
    }
}

const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Runs `cohortd serve` (with `extra` flags) exporting to a receiver, makes
/// three traced exposure calls (dedup off), SIGTERMs it, checks the log
/// records, and returns the receiver.
async fn run_serve(extra: &[&str]) -> Receiver {
    let (rx, endpoint) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e.yaml"), CONFIG).unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .arg("serve")
        .arg("--config-dir")
        .arg(dir.path())
        .args(["--listen", &addr.to_string(), "--admin-listen", "off"])
        .args(["--ofrep-listen", "off", "--sync-listen", "off"])
        .args([
            "--exposure-unit-id",
            "omit",
            "--exposure-dedup-window",
            "off",
        ])
        .args(extra)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_SERVICE_NAME", "checkout-web")
        .env("COHORTD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut client = loop {
        match pb::assignment_client::AssignmentClient::connect(format!("http://{addr}")).await {
            Ok(c) => break c,
            Err(_) => {
                assert!(child.try_wait().unwrap().is_none(), "server exited early");
                assert!(Instant::now() < deadline, "server did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    for user in ["ann", "ann", "bob"] {
        let mut req = tonic::Request::new(pb::AssignRequest {
            experiment: "checkout".into(),
            context: Some(proto_ctx(&[("userId", user)])),
            exposure: true,
            sticky: Default::default(),
        });
        req.metadata_mut().insert(
            "traceparent",
            format!("00-{TRACE_ID}-{CALLER_SPAN}-01").parse().unwrap(),
        );
        client.assign(req).await.unwrap();
    }
    drop(client);

    // SIGTERM right away: the export batches (1 s delay) are flushed on the way out.
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");

    let logs = rx.logs();
    assert_eq!(
        logs.len(),
        3,
        "dedup off: every exposure, flushed at shutdown"
    );
    for l in &logs {
        let a = attrs(&l.attributes);
        assert_eq!(a["feature_flag.key"], V::S("checkout".into()));
        assert!(
            !a.contains_key("feature_flag.context.id"),
            "--exposure-unit-id omit"
        );
        assert_eq!(hex(&l.trace_id), TRACE_ID);
    }
    let got = rx.got.lock().unwrap();
    let resource = got.logs[0].resource_logs[0].resource.as_ref().unwrap();
    assert_eq!(
        attrs(&resource.attributes)["service.name"],
        V::S("checkout-web".into())
    );
    drop(got);
    rx
}
