//! The standard OTEL_* environment variables configure export. One test in its
//! own binary, because the environment is process-wide.

mod support;

use std::time::Duration;

use cohortd::engine::EvalOptions;
use cohortd::exposure::otel::{endpoint_from_env, OtelExport, Signals};
use cohortd::exposure::pipeline::{ExposurePipeline, PipelineConfig};
use cohortd::exposure::Exposure;
use support::otlp::{attrs, Receiver, V};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_env_vars_configure_endpoint_resource_and_sampler() {
    for k in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_SDK_DISABLED",
    ] {
        std::env::remove_var(k);
    }
    // No endpoint: export is off.
    assert_eq!(endpoint_from_env(), None);
    assert!(OtelExport::from_env(Signals::Logs).unwrap().is_none());

    // Spans are implied only when a traces endpoint is the only one set.
    assert_eq!(Signals::from_env(), Signals::Logs);
    std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:1");
    assert_eq!(Signals::from_env(), Signals::Spans);
    std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://127.0.0.1:1");
    assert_eq!(Signals::from_env(), Signals::Logs);
    std::env::remove_var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1");
    assert_eq!(Signals::from_env(), Signals::Logs);
    std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");

    let (rx, endpoint) = Receiver::start().await;
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    std::env::set_var("OTEL_SDK_DISABLED", "true");
    assert_eq!(endpoint_from_env(), None, "OTEL_SDK_DISABLED wins");
    std::env::remove_var("OTEL_SDK_DISABLED");
    assert_eq!(endpoint_from_env().as_deref(), Some(endpoint.as_str()));

    std::env::set_var("OTEL_SERVICE_NAME", "checkout-sidecar");
    std::env::set_var(
        "OTEL_RESOURCE_ATTRIBUTES",
        "deployment.environment=test,team=growth",
    );
    // Sampling drops the exposure spans; the log records still carry every exposure.
    std::env::set_var("OTEL_TRACES_SAMPLER", "always_off");

    // Spans on, so the sampler has something to drop.
    let otel = OtelExport::from_env(Signals::Spans)
        .unwrap()
        .expect("endpoint set: export on");
    let pipeline = ExposurePipeline::start(PipelineConfig::default(), Some(otel));
    let snap = support::compile::compile_yaml(
        "experiments:\n  - {experimentId: e, status: running, variants: [a, b]}\n",
    );
    let ctx = support::context::json_ctx(serde_json::json!({ "targetingKey": "u1" }));
    let a = snap.assign("e", &ctx, EvalOptions::default()).unwrap();
    pipeline.sink().record(&Exposure {
        subject: cohortd::exposure::Subject::Experiment(a),
        unit: "u1",
        config_version: snap.version(),
        source: cohortd::exposure::Source::Assign,
    });
    assert!(pipeline.shutdown(Duration::from_secs(10)).await.completed);

    assert!(
        rx.spans().is_empty(),
        "OTEL_TRACES_SAMPLER=always_off is honoured"
    );
    let got = rx.got.lock().unwrap();
    assert_eq!(got.logs.len(), 1);
    let resource = got.logs[0].resource_logs[0].resource.as_ref().unwrap();
    let r = attrs(&resource.attributes);
    assert_eq!(r["service.name"], V::S("checkout-sidecar".into()));
    assert_eq!(r["deployment.environment"], V::S("test".into()));
    assert_eq!(r["team"], V::S("growth".into()));
    let records = &got.logs[0].resource_logs[0].scope_logs[0].log_records;
    assert_eq!(records.len(), 1);
    assert_eq!(
        attrs(&records[0].attributes)["feature_flag.key"],
        V::S("e".into())
    );
}
