//! Exposure export against a real OTLP/gRPC receiver on loopback: exact
//! attributes on the log record (and, with spans on, the span event), the
//! caller's trace as parent, dedup, unit-id hashing/omission, batching, and a
//! dead collector.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cohortd::engine::EvalOptions;
use cohortd::exposure::id::{window_index, ExposureId, IdFields};
use cohortd::exposure::otel::{OtelExport, Signals};
use cohortd::exposure::pipeline::{ExposurePipeline, PipelineConfig, Recorder};
use cohortd::exposure::privacy::{hash_unit, UnitIdMode};
use cohortd::exposure::trace_context::extract;
use cohortd::exposure::{Exposure, ExposureSink};
use cohortd::Snapshot;
use support::otlp::{attrs, hex, Receiver, V};
use tonic::codegen::http::HeaderMap;

const CONFIG: &str = r#"
layers:
  - key: checkout-layer
experiments:
  - experimentId: checkout
    status: running
    variants: [control, treatment]
    assignment: {hashKey: userId, salt: secret-salt-123, epoch: 3}
    layer: {key: checkout-layer, range: [0, 1]}
"#;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN: &str = "b7ad6b7169203331";

fn traceparent() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_SPAN}-01").parse().unwrap(),
    );
    h
}

/// Records `user`'s exposure to `checkout`, inside the caller's trace context.
fn expose(sink: &dyn ExposureSink, snap: &Snapshot, user: &str) -> String {
    let ctx = support::context::json_ctx(serde_json::json!({ "userId": user }));
    let a = snap
        .assign("checkout", &ctx, EvalOptions::default())
        .unwrap();
    assert!(a.enrolled);
    let _guard = extract(&traceparent()).attach();
    sink.record_in(
        &Exposure {
            subject: cohortd::exposure::Subject::Experiment(a),
            unit: user,
            config_version: snap.version(),
            source: cohortd::exposure::Source::Assign,
        },
        &ctx,
    );
    a.variant.key.to_string()
}

fn cfg(unit_id: UnitIdMode) -> PipelineConfig {
    PipelineConfig {
        unit_id,
        ..PipelineConfig::default()
    }
}

fn s(v: &str) -> V {
    V::S(v.to_owned())
}

fn export_to(endpoint: &str, signals: Signals) -> OtelExport {
    OtelExport::to_endpoint_with(endpoint, Some(Duration::from_secs(5)), signals).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_only_a_log_record_in_the_callers_trace_with_exact_attributes() {
    let (rx, endpoint) = Receiver::start().await;
    let snap = support::compile::compile_yaml(CONFIG);
    let otel = OtelExport::to_endpoint(&endpoint, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(otel.signals(), Signals::Logs);
    let expected = exact_attributes(&rx, &snap, otel, 0).await;
    assert!(rx.spans().is_empty(), "no spans unless asked for");
    let logs = rx.logs();
    assert_eq!(logs.len(), 1, "one exposure log record after dedup");
    let log = &logs[0];
    assert_eq!(log.event_name, "feature_flag.evaluation");
    assert_eq!(attrs(&log.attributes), expected);
    assert_eq!(hex(&log.trace_id), TRACE_ID, "the caller's trace");
    assert_eq!(hex(&log.span_id), PARENT_SPAN, "the caller's span");
    assert_eq!(log.flags & 0xff, 1, "sampled, as the caller said");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_spans_on_span_event_and_log_record_carry_exact_attributes_in_the_callers_trace() {
    let (rx, endpoint) = Receiver::start().await;
    let snap = support::compile::compile_yaml(CONFIG);
    let expected = exact_attributes(&rx, &snap, export_to(&endpoint, Signals::Spans), 1).await;
    let spans = rx.spans();
    assert_eq!(spans.len(), 1, "one exposure span after dedup");
    let (service, span) = &spans[0];
    assert_eq!(service, "cohortd");
    assert_eq!(span.name, "feature_flag.evaluation");
    assert_eq!(hex(&span.trace_id), TRACE_ID, "joins the caller's trace");
    assert_eq!(hex(&span.parent_span_id), PARENT_SPAN);
    assert_eq!(span.events.len(), 1);
    assert_eq!(span.events[0].name, "feature_flag.evaluation");
    assert_eq!(attrs(&span.events[0].attributes), expected);

    let logs = rx.logs();
    assert_eq!(logs.len(), 1, "one exposure log record after dedup");
    let log = &logs[0];
    assert_eq!(log.event_name, "feature_flag.evaluation");
    assert_eq!(attrs(&log.attributes), expected);
    assert_eq!(hex(&log.trace_id), TRACE_ID);
    assert_eq!(
        log.span_id, span.span_id,
        "the log points at the exposure span"
    );
}

/// Exposes `user-1` twice (the second deduped) through `otel`, checks the
/// totals (`spans` exposure spans exported), and returns the attributes the
/// exported exposure must carry.
async fn exact_attributes(
    rx: &Receiver,
    snap: &Snapshot,
    otel: OtelExport,
    spans: u64,
) -> BTreeMap<String, V> {
    let pipeline = ExposurePipeline::start(cfg(UnitIdMode::Raw), Some(otel));
    let sink = pipeline.sink();

    let variant = expose(&*sink, snap, "user-1");
    // The same unit, variant and config version again: deduped, not exported.
    expose(&*sink, snap, "user-1");
    let report = pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(report.stats.received, 2);
    assert_eq!(report.stats.deduped, 1);
    assert_eq!(report.stats.emitted, 1);
    assert_eq!(report.stats.dropped, 0);
    assert_eq!(
        (report.stats.exported_spans, report.stats.exported_logs),
        (spans, 1)
    );
    assert_eq!(
        (report.stats.failed_spans, report.stats.failed_logs),
        (0, 0)
    );

    let exp = snap.experiment("checkout").unwrap();
    let window = window_index(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        3600,
    );
    let id = ExposureId::derive(&IdFields {
        unit: "user-1",
        experiment: "checkout",
        variant: &variant,
        config_version: snap.version(),
        window,
    })
    .to_hex();
    let expected: BTreeMap<String, V> = [
        ("feature_flag.key", s("checkout")),
        ("feature_flag.result.variant", s(&variant)),
        ("feature_flag.result.reason", s("split")),
        ("feature_flag.context.id", s("user-1")),
        ("feature_flag.version", s(snap.version())),
        ("feature_flag.provider.name", s("cohortd")),
        ("feature_flag.set.id", s("checkout-layer")),
        ("cohortd.exposure.id", s(&id)),
        ("cohortd.unit_attribute", s("userId")),
        ("cohortd.sticky", V::B(false)),
        ("cohortd.salt_fingerprint", s(&exp.salt_fingerprint)),
        ("cohortd.experiment.status", s("running")),
        ("cohortd.epoch", V::I(3)),
        ("cohortd.source", s("assign")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    // The salt itself is never exported.
    let everything = format!("{:?}{:?}", rx.spans(), rx.logs());
    assert!(!everything.contains("secret-salt-123"));
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_id_can_be_hashed_or_omitted() {
    let snap = support::compile::compile_yaml(CONFIG);
    for mode in [UnitIdMode::Hash, UnitIdMode::Omit] {
        let (rx, endpoint) = Receiver::start().await;
        let otel = export_to(&endpoint, Signals::Spans);
        let pipeline = ExposurePipeline::start(cfg(mode), Some(otel));
        expose(&*pipeline.sink(), &snap, "alice@example.com");
        assert!(pipeline.shutdown(Duration::from_secs(10)).await.completed);
        let spans = rx.spans();
        let logs = rx.logs();
        assert_eq!((spans.len(), logs.len()), (1, 1));
        for a in [
            attrs(&spans[0].1.events[0].attributes),
            attrs(&logs[0].attributes),
        ] {
            let got = a.get("feature_flag.context.id").cloned();
            match mode {
                UnitIdMode::Hash => assert_eq!(got, Some(s(&hash_unit("alice@example.com")))),
                _ => assert_eq!(got, None),
            }
            assert!(a.contains_key("cohortd.exposure.id"));
        }
        let everything = format!("{spans:?}{logs:?}");
        assert!(
            !everything.contains("alice@example.com"),
            "{mode:?} leaks the raw id"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_off_exports_every_exposure_with_the_same_id() {
    let (rx, endpoint) = Receiver::start().await;
    let snap = support::compile::compile_yaml(CONFIG);
    let otel = OtelExport::to_endpoint(&endpoint, Some(Duration::from_secs(5))).unwrap();
    let pipeline = ExposurePipeline::start(
        PipelineConfig {
            dedup_window: Duration::ZERO,
            ..PipelineConfig::default()
        },
        Some(otel),
    );
    expose(&*pipeline.sink(), &snap, "user-7");
    expose(&*pipeline.sink(), &snap, "user-7");
    let report = pipeline.shutdown(Duration::from_secs(10)).await;
    assert_eq!((report.stats.deduped, report.stats.emitted), (0, 2));
    let logs = rx.logs();
    assert_eq!(logs.len(), 2);
    let ids: Vec<_> = logs
        .iter()
        .map(|l| attrs(&l.attributes)["cohortd.exposure.id"].clone())
        .collect();
    assert_eq!(
        ids[0], ids[1],
        "a repeat carries the same id, for downstream dedup"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn dead_collector_never_blocks_and_counts_drops_and_failures() {
    // A loopback port with nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let snap = support::compile::compile_yaml(CONFIG);
    let otel =
        OtelExport::to_endpoint(&format!("http://{closed}"), Some(Duration::from_secs(1))).unwrap();
    let pipeline = ExposurePipeline::start(
        PipelineConfig {
            queue: 16,
            ..PipelineConfig::default()
        },
        Some(otel),
    );
    let sink = pipeline.sink();
    let recorder = pipeline.recorder();
    // The export task cannot run while this loop holds the only runtime thread,
    // so the bounded queue fills: the first 16 are queued, the rest dropped.
    for i in 0..2000 {
        expose(&*sink, &snap, &format!("u{i}"));
    }
    let before = pipeline.stats();
    assert_eq!(before.received, 2000);
    assert_eq!(before.queued, 16);
    assert_eq!(before.dropped, 2000 - 16);
    let report = pipeline.shutdown(Duration::from_secs(5)).await;
    let st = report.stats;
    assert_eq!(st.emitted, 16);
    assert_eq!(st.failed_spans, 0, "no spans unless asked for: {st:?}");
    assert_eq!(st.failed_logs, 16, "{st:?}");
    // After shutdown, recording still returns at once and counts a drop.
    let recorder_stats_before = sink_stats(&recorder);
    expose(&recorder, &snap, "late");
    assert_eq!(
        sink_stats(&recorder).dropped,
        recorder_stats_before.dropped + 1
    );
}

fn sink_stats(r: &Recorder) -> cohortd::exposure::pipeline::StatsSnapshot {
    r.stats()
}

/// A stand-in handler: records one exposure when called.
#[derive(Clone)]
struct Handler {
    sink: std::sync::Arc<dyn ExposureSink>,
    snap: std::sync::Arc<Snapshot>,
}

impl tonic::codegen::Service<tonic::codegen::http::Request<()>> for Handler {
    type Response = tonic::codegen::http::Response<()>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: tonic::codegen::http::Request<()>) -> Self::Future {
        let (sink, snap) = (self.sink.clone(), self.snap.clone());
        Box::pin(async move {
            // Yield once: the context must survive across polls.
            tokio::task::yield_now().await;
            let ctx = support::context::json_ctx(serde_json::json!({ "userId": "user-9" }));
            let a = snap
                .assign("checkout", &ctx, EvalOptions::default())
                .unwrap();
            sink.record(&Exposure {
                subject: cohortd::exposure::Subject::Experiment(a),
                unit: "user-9",
                config_version: snap.version(),
                source: cohortd::exposure::Source::Assign,
            });
            Ok(tonic::codegen::http::Response::new(()))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_layer_makes_a_server_span_that_parents_the_exposure() {
    let (rx, endpoint) = Receiver::start().await;
    through_trace_layer(export_to(&endpoint, Signals::Spans), Some(traceparent())).await;

    let spans = rx.spans();
    assert_eq!(spans.len(), 2, "server span + exposure span");
    let server = &spans
        .iter()
        .find(|(_, s)| s.name == "cohortd.v1.Assignment/Assign")
        .unwrap()
        .1;
    let exposure = &spans
        .iter()
        .find(|(_, s)| s.name == "feature_flag.evaluation")
        .unwrap()
        .1;
    // SpanKind::Server is 2 in OTLP.
    assert_eq!(server.kind, 2);
    assert_eq!(hex(&server.trace_id), TRACE_ID);
    assert_eq!(hex(&server.parent_span_id), PARENT_SPAN);
    assert_eq!(exposure.trace_id, server.trace_id);
    assert_eq!(exposure.parent_span_id, server.span_id);
    let a = attrs(&server.attributes);
    assert_eq!(a["rpc.system"], s("grpc"));
    assert_eq!(a["rpc.service"], s("cohortd.v1.Assignment"));
    assert_eq!(a["rpc.method"], s("Assign"));
    let logs = rx.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].span_id, exposure.span_id);
}

/// Sends one request (with `headers`) through the pipeline's trace layer to a
/// handler that records one exposure, then shuts the pipeline down.
async fn through_trace_layer(otel: OtelExport, headers: Option<HeaderMap>) {
    use tonic::codegen::Service as _;
    use tower::Layer as _;
    let snap = std::sync::Arc::new(support::compile::compile_yaml(CONFIG));
    let pipeline = ExposurePipeline::start(cfg(UnitIdMode::Raw), Some(otel));
    let mut svc = pipeline.trace_layer().layer(Handler {
        sink: pipeline.sink(),
        snap,
    });
    let mut req = tonic::codegen::http::Request::builder()
        .uri("http://localhost/cohortd.v1.Assignment/Assign")
        .body(())
        .unwrap();
    if let Some(h) = headers {
        *req.headers_mut() = h;
    }
    svc.call(req).await.unwrap();
    assert!(pipeline.shutdown(Duration::from_secs(10)).await.completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_spans_the_trace_layer_puts_the_log_record_in_the_callers_trace() {
    let (rx, endpoint) = Receiver::start().await;
    through_trace_layer(export_to(&endpoint, Signals::Logs), Some(traceparent())).await;
    assert!(rx.spans().is_empty(), "no server span, no exposure span");
    let logs = rx.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(hex(&logs[0].trace_id), TRACE_ID);
    assert_eq!(hex(&logs[0].span_id), PARENT_SPAN, "the caller's span");

    // No traceparent (or a broken one): the record carries no trace.
    let (rx, endpoint) = Receiver::start().await;
    through_trace_layer(export_to(&endpoint, Signals::Logs), None).await;
    let mut broken = HeaderMap::new();
    broken.insert("traceparent", "00-zz-nonsense-01".parse().unwrap());
    let (rx2, endpoint2) = Receiver::start().await;
    through_trace_layer(export_to(&endpoint2, Signals::Logs), Some(broken)).await;
    for rx in [rx, rx2] {
        let logs = rx.logs();
        assert_eq!(logs.len(), 1);
        assert!(logs[0].trace_id.is_empty() && logs[0].span_id.is_empty());
        assert!(rx.spans().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_exposures_arrive_batched_and_all_counted() {
    let (rx, endpoint) = Receiver::start().await;
    let snap = support::compile::compile_yaml(CONFIG);
    let pipeline = ExposurePipeline::start(
        PipelineConfig {
            queue: 100_000,
            ..PipelineConfig::default()
        },
        Some(export_to(&endpoint, Signals::Logs)),
    );
    let sink = pipeline.sink();
    let n = 5_000;
    for i in 0..n {
        expose(&*sink, &snap, &format!("load-{i}"));
    }
    let report = pipeline.shutdown(Duration::from_secs(30)).await;
    assert!(report.completed, "{report:?}");
    let st = report.stats;
    assert_eq!((st.received, st.queued, st.dropped), (n, n, 0), "{st:?}");
    assert_eq!((st.emitted, st.exported_logs, st.failed_logs), (n, n, 0));
    let requests = rx.got.lock().unwrap().logs.len();
    assert_eq!(rx.logs().len() as u64, n);
    assert!(
        requests < 50,
        "{n} records in {requests} export requests: batched, not one call each"
    );
    let ids: std::collections::BTreeSet<_> = rx
        .logs()
        .iter()
        .map(|l| format!("{:?}", attrs(&l.attributes)["cohortd.exposure.id"]))
        .collect();
    assert_eq!(ids.len() as u64, n, "every exposure exactly once");
}

/// On a multi-threaded runtime (as `cohortd serve`'s) the builder runs
/// on its own thread at `EXPORT_NICE` (a lower priority than the request
/// workers).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_runs_on_its_own_lower_priority_thread() {
    let export_threads = || {
        let mut nice = Vec::new();
        for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() == "cohortd-export" {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap();
                // Field 19 (nice), counted after the `(comm)` field.
                let after = &stat[stat.rfind(')').unwrap() + 2..];
                nice.push(after.split(' ').nth(16).unwrap().parse::<i32>().unwrap());
            }
        }
        nice
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let otel = OtelExport::to_endpoint(&format!("http://{closed}"), None).unwrap();
    let pipeline = ExposurePipeline::start(PipelineConfig::default(), Some(otel));
    // The thread names itself and lowers its priority as it starts: wait for
    // that (at most 100 x 10 ms). Other tests' pipelines may have export
    // threads too: all qualify.
    let want = cohortd::priority::current_nice()
        .unwrap()
        .max(cohortd::exposure::EXPORT_NICE);
    let mut nice = Vec::new();
    for _ in 0..100 {
        nice = export_threads();
        if !nice.is_empty() && nice.iter().all(|&n| n == want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !nice.is_empty() && nice.iter().all(|&n| n == want),
        "{nice:?}"
    );
    // The sender ends only after the builder closed its channel.
    let report = pipeline.shutdown(Duration::from_secs(5)).await;
    assert!(report.completed);
}
