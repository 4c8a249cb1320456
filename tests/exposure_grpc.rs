//! Exposures through the real gRPC server: `Assign` with `exposure: true` and a
//! caller's `traceparent` reaches a real OTLP receiver inside the caller's
//! trace, deduped; a dead collector changes no response and is counted.

mod support;

use std::time::Duration;

use cohortd::exposure::pipeline::PipelineConfig;
use cohortd::exposure::privacy::{hash_unit, UnitIdMode};
use cohortd::transport::pb;
use support::context::proto_ctx;
use support::otlp::{attrs, hex, Receiver, V};
use support::pipeline::{serve, serve_spans};

const CONFIG: &str = r#"
experiments:
  - experimentId: checkout
    status: running
    variants: [control, treatment]
    assignment: {hashKey: userId}
    srm: {strata: region}
"#;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn assign(user: &str) -> tonic::Request<pb::AssignRequest> {
    let mut req = tonic::Request::new(pb::AssignRequest {
        experiment: "checkout".into(),
        context: Some(proto_ctx(&[("userId", user), ("region", "eu")])),
        exposure: true,
        sticky: Default::default(),
    });
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_exposure_log_records_carry_the_callers_trace_and_no_spans() {
    let (rx, endpoint) = Receiver::start().await;
    let s = serve(CONFIG, Some(&endpoint), PipelineConfig::default()).await;
    let mut client = s.client().await;
    client.assign(assign("u-1")).await.unwrap();
    let mut untraced = assign("u-2");
    untraced.metadata_mut().remove("traceparent");
    client.assign(untraced).await.unwrap();
    assert!(s.running.shutdown().await);
    let report = s.pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(
        (report.stats.exported_logs, report.stats.exported_spans),
        (2, 0)
    );
    assert!(
        rx.spans().is_empty(),
        "no server or exposure spans by default"
    );
    let logs = rx.logs();
    assert_eq!(logs.len(), 2);
    let by_unit = |u: &str| {
        logs.iter()
            .find(|l| attrs(&l.attributes)["feature_flag.context.id"] == V::S(u.into()))
            .unwrap()
    };
    let traced = by_unit("u-1");
    assert_eq!(hex(&traced.trace_id), TRACE_ID);
    assert_eq!(hex(&traced.span_id), CALLER_SPAN, "the caller's span");
    let untraced = by_unit("u-2");
    assert!(untraced.trace_id.is_empty() && untraced.span_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_spans_assign_with_exposure_joins_the_callers_trace_once_per_unit() {
    let (rx, endpoint) = Receiver::start().await;
    let cfg = PipelineConfig {
        unit_id: UnitIdMode::Hash,
        ..PipelineConfig::default()
    };
    let s = serve_spans(CONFIG, &endpoint, cfg).await;
    let mut client = s.client().await;
    let first = client.assign(assign("u-1")).await.unwrap().into_inner();
    let again = client.assign(assign("u-1")).await.unwrap().into_inner();
    assert_eq!(first.variant, again.variant);
    client.assign(assign("u-2")).await.unwrap();
    // Not an exposure: the flag is off.
    let mut quiet = assign("u-3");
    quiet.get_mut().exposure = false;
    client.assign(quiet).await.unwrap();

    let metrics = s.metrics.encode();
    assert!(
        metrics.contains("cohortd_exposures_deduped_total 1"),
        "{metrics}"
    );
    assert!(s.running.shutdown().await);
    let report = s.pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    assert_eq!((report.stats.received, report.stats.deduped), (3, 1));

    let spans = rx.spans();
    let servers: Vec<_> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.name == "cohortd.v1.Assignment/Assign")
        .collect();
    let exposures: Vec<_> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.name == "feature_flag.evaluation")
        .collect();
    assert_eq!(servers.len(), 4, "one server span per call");
    assert_eq!(exposures.len(), 2, "u-1 once (deduped), u-2 once");
    for srv in &servers {
        assert_eq!(hex(&srv.trace_id), TRACE_ID);
        assert_eq!(hex(&srv.parent_span_id), CALLER_SPAN);
    }
    let mut units = Vec::new();
    for e in &exposures {
        assert_eq!(
            hex(&e.trace_id),
            TRACE_ID,
            "the exposure joins the caller's trace"
        );
        assert!(
            servers.iter().any(|s| s.span_id == e.parent_span_id),
            "the exposure's parent is a server span"
        );
        let a = attrs(&e.events[0].attributes);
        assert_eq!(a["feature_flag.key"], V::S("checkout".into()));
        assert_eq!(a["feature_flag.result.reason"], V::S("split".into()));
        assert_eq!(a["cohortd.unit_attribute"], V::S("userId".into()));
        assert_eq!(a["cohortd.source"], V::S("assign".into()));
        units.push(a["feature_flag.context.id"].clone());
    }
    units.sort_by_key(|v| v.to_string());
    let mut want = vec![V::S(hash_unit("u-1")), V::S(hash_unit("u-2"))];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(units, want, "unit ids are exported hashed");
    let logs = rx.logs();
    assert_eq!(logs.len(), 2);
    for l in &logs {
        assert_eq!(hex(&l.trace_id), TRACE_ID);
        assert_eq!(l.event_name, "feature_flag.evaluation");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_collector_changes_no_response_and_is_counted() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg = PipelineConfig {
        queue: 8,
        ..PipelineConfig::default()
    };
    let s = serve(CONFIG, Some(&format!("http://{closed}")), cfg).await;
    let reference = serve(CONFIG, None, PipelineConfig::default()).await;
    let mut client = s.client().await;
    let mut plain = reference.client().await;
    // Concurrent callers, so the small queue overflows while exports fail.
    let mut tasks = Vec::new();
    for t in 0..4 {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut variants = Vec::new();
            for i in 0..150 {
                let r = c.assign(assign(&format!("t{t}-u{i}"))).await.unwrap();
                variants.push(r.into_inner().variant);
            }
            variants
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.extend(t.await.unwrap());
    }
    assert_eq!(got.len(), 600, "every request succeeded");
    // The same answers as a server without export.
    for t in 0..4 {
        for i in (0..150).step_by(15) {
            let want = plain
                .assign(assign(&format!("t{t}-u{i}")))
                .await
                .unwrap()
                .into_inner()
                .variant;
            assert_eq!(got[t * 150 + i], want);
        }
    }
    let _ = client.assign(assign("last")).await.unwrap();
    assert!(s.running.shutdown().await);
    let report = s.pipeline.shutdown(Duration::from_secs(5)).await;
    let st = report.stats;
    assert_eq!(st.received, 601);
    assert_eq!(st.queued + st.dropped, 601, "{st:?}");
    assert!(
        st.failed_logs > 0 && st.failed_spans == 0,
        "export failures are counted (log records only by default): {st:?}"
    );
    // Nothing reached a collector: whatever was attempted failed (how much was
    // attempted within the grace depends on the machine).
    assert!(st.failed_logs <= st.emitted, "{st:?}");
    let text = s.metrics.encode();
    assert!(
        text.contains(&format!("cohortd_exposures_dropped_total {}", st.dropped)),
        "{text}"
    );
    assert!(
        text.contains("cohortd_otlp_export_failed_total{signal=\"logs\"}"),
        "{text}"
    );
    reference.running.shutdown().await;
}
