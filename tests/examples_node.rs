//! The Node Track example (tests/node/track_example.mjs) against a live server:
//! its outcome is attributed to the variant the engine assigns, a retry is
//! recorded once, and a bad batch is refused. Needs tests/node/node_modules
//! (`.ci/setup-node.sh`): skipped without them outside CI, a failure in CI.

mod support;

use std::process::Command;
use std::time::Duration;

use cohortd::exposure::pipeline::PipelineConfig;
use cohortd::server::Bound;
use cohortd::transport::pb;
use support::context::proto_ctx;
use support::pipeline::serve;
use support::runners::node_dir;

const CONFIG: &str = r#"
experiments:
  - experimentId: checkout
    status: running
    variants: [control, treatment]
    assignment: {hashKey: userId}
    metrics:
      primary: {name: purchase, type: conversion}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_track_example_attributes_and_dedups() {
    let Some(dir) = node_dir("@grpc/proto-loader") else {
        return;
    };
    let srv = serve(CONFIG, None, PipelineConfig::default()).await;
    let Bound::Tcp(addr) = srv.running.grpc_addr.clone() else {
        unreachable!()
    };
    let mut c = srv.client().await;
    let want = c
        .assign(pb::AssignRequest {
            experiment: "checkout".into(),
            context: Some(proto_ctx(&[("userId", "node-user")])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let node = std::env::var_os("COHORTD_NODE").unwrap_or_else(|| "node".into());
    let mut cmd = Command::new(node);
    cmd.current_dir(&dir)
        .arg("track_example.mjs")
        .arg(addr.to_string())
        .args(["node-user", "purchase", "node-event-1"]);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .expect("the Node example finishes within 60 s")
    .unwrap()
    .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "track event_id=node-event-1 duplicate=false assignments=checkout:{}",
                want.variant
            )
            .as_str(),
            "track_retry event_id=node-event-1 duplicate=true",
            "track_invalid status=INVALID_ARGUMENT",
        ]
    );
    let text = srv.metrics.encode();
    assert!(text.contains("cohortd_outcomes_total 1\n"), "{text}");
    assert!(
        text.contains("cohortd_outcomes_deduped_total 1\n"),
        "{text}"
    );
    srv.running.shutdown().await;
}
