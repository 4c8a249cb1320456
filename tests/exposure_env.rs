//! The standard OTEL_* environment variables configure export: endpoint,
//! resource and sampler, and the logs exporter's own settings (signal
//! endpoint, headers, timeout, batch size, schedule delay, refused HTTPS),
//! which cohortd reads itself since it builds log records without the SDK.
//! One test in its own binary, because the environment is process-wide.

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
    {
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
    logs_exporter_settings_come_from_the_environment().await;
}

fn expose_units(pipeline: &ExposurePipeline, n: usize) {
    let snap = support::compile::compile_yaml(
        "experiments:\n  - {experimentId: e, status: running, variants: [a, b]}\n",
    );
    for i in 0..n {
        let unit = format!("unit-{i}");
        let ctx = support::context::json_ctx(serde_json::json!({ "targetingKey": unit }));
        let a = snap.assign("e", &ctx, EvalOptions::default()).unwrap();
        pipeline.sink().record(&Exposure {
            subject: cohortd::exposure::Subject::Experiment(a),
            unit: &unit,
            config_version: snap.version(),
            source: cohortd::exposure::Source::Assign,
        });
    }
}

async fn logs_exporter_settings_come_from_the_environment() {
    for k in [
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_SAMPLER",
    ] {
        std::env::remove_var(k);
    }
    // The logs endpoint wins over the generic one (which points nowhere), the
    // logs headers over the generic ones; values are URL-decoded and a
    // malformed pair is skipped.
    let (rx, endpoint) = Receiver::start().await;
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1");
    std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", &endpoint);
    std::env::set_var("OTEL_EXPORTER_OTLP_HEADERS", "x-generic=no");
    std::env::set_var(
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        "authorization=Bearer%20t0ken, x-team = growth,broken",
    );
    std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "4321");
    std::env::set_var("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "2");
    std::env::set_var("OTEL_BLRP_MAX_QUEUE_SIZE", "64");
    let otel = OtelExport::from_env(Signals::Logs).unwrap().unwrap();
    let c = otel.logs_config();
    assert_eq!(c.endpoint, endpoint);
    assert_eq!(c.timeout, Duration::from_millis(4321));
    assert_eq!((c.max_batch, c.max_queue), (2, 64));
    assert_eq!(c.delay, Duration::from_secs(1), "the SDK's default delay");
    let pipeline = ExposurePipeline::start(PipelineConfig::default(), Some(otel));
    expose_units(&pipeline, 5);
    let report = pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(
        (report.stats.exported_logs, report.stats.failed_logs),
        (5, 0)
    );
    {
        let got = rx.got.lock().unwrap();
        let sizes: Vec<usize> = got
            .logs
            .iter()
            .map(|r| r.resource_logs[0].scope_logs[0].log_records.len())
            .collect();
        assert_eq!(
            sizes,
            [2, 2, 1],
            "batches of OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"
        );
        for m in &got.log_metadata {
            assert_eq!(m.get("authorization").unwrap(), "Bearer t0ken");
            assert_eq!(m.get("x-team").unwrap(), "growth");
            assert!(m.get("x-generic").is_none(), "the logs headers win");
        }
        let scope = got.logs[0].resource_logs[0].scope_logs[0]
            .scope
            .clone()
            .unwrap();
        assert_eq!(
            (scope.name.as_str(), scope.version.as_str()),
            ("cohortd", "")
        );
        let resource = got.logs[0].resource_logs[0].resource.clone().unwrap();
        let r = attrs(&resource.attributes);
        assert_eq!(r["service.name"], V::S("cohortd".into()), "the default");
        assert_eq!(r["telemetry.sdk.language"], V::S("rust".into()));
    }

    // A partial batch goes out after OTEL_BLRP_SCHEDULE_DELAY, without waiting
    // for shutdown.
    let (rx, endpoint) = Receiver::start().await;
    std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", &endpoint);
    std::env::set_var("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "1000");
    std::env::set_var("OTEL_BLRP_SCHEDULE_DELAY", "20");
    let pipeline = ExposurePipeline::start(
        PipelineConfig::default(),
        OtelExport::from_env(Signals::Logs).unwrap(),
    );
    expose_units(&pipeline, 3);
    let mut waited = 0;
    // Counted once the collector answered, so after it stored the records.
    while pipeline.stats().exported_logs < 3 && waited < 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(
        pipeline.stats().exported_logs,
        3,
        "exported before shutdown"
    );
    assert_eq!(rx.logs().len(), 3);
    assert!(pipeline.shutdown(Duration::from_secs(10)).await.completed);

    // This build sends plain gRPC only: an https endpoint is refused, naming
    // the variable it came from.
    std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "https://collector:4317");
    let e = OtelExport::from_env(Signals::Logs).unwrap_err().to_string();
    assert!(
        e.contains("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") && e.contains("HTTPS"),
        "{e}"
    );
    // A scheme-less endpoint is https unless OTEL_EXPORTER_OTLP_INSECURE=true.
    std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "collector:4317");
    assert!(OtelExport::from_env(Signals::Logs).is_err());
    std::env::set_var("OTEL_EXPORTER_OTLP_INSECURE", "true");
    let otel = OtelExport::from_env(Signals::Logs).unwrap().unwrap();
    assert_eq!(otel.logs_config().endpoint, "http://collector:4317");
}
