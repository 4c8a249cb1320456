//! The live sample-ratio-mismatch check, fed through the exposure sink with real
//! assignments: a biased stream fires, an unbiased one stays quiet, and a
//! stratified experiment catches an imbalance confined to strata that the
//! totals hide. Also the exposure metric families.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use cohortd::engine::{EvalOptions, Sticky};
use cohortd::exposure::pipeline::{ExposurePipeline, PipelineConfig};
use cohortd::exposure::{Exposure, ExposureSink};
use cohortd::Snapshot;

const CONFIG: &str = r#"
experiments:
  - experimentId: even
    status: running
    variants: [control, treatment]
  - experimentId: weighted
    status: running
    variants:
      - {key: small, weight: 1}
      - {key: large, weight: 3}
      - {key: off, weight: 0}
  - experimentId: regional
    status: running
    variants: [control, treatment]
    srm: {strata: region}
  - experimentId: stopped
    status: stopped
    variants: [control, treatment]
"#;

/// Assigns `units` units to `key` and records each exposure for which `keep`
/// (given unit index, variant key and region) says the client reported it.
fn stream(
    sink: &dyn ExposureSink,
    snap: &Snapshot,
    key: &str,
    units: usize,
    mut keep: impl FnMut(usize, &str, &str) -> bool,
) {
    for i in 0..units {
        let region = if i % 2 == 0 { "eu" } else { "us" };
        let unit = format!("unit-{i}");
        let ctx = support::context::json_ctx(serde_json::json!({
            "targetingKey": unit, "region": region
        }));
        let a = snap.assign(key, &ctx, EvalOptions::default()).unwrap();
        if keep(i, &a.variant.key, region) {
            sink.record_in(
                &Exposure {
                    subject: cohortd::exposure::Subject::Experiment(a),
                    unit: &unit,
                    config_version: snap.version(),
                    source: cohortd::exposure::Source::Assign,
                },
                &ctx,
            );
        }
    }
}

fn pipeline() -> ExposurePipeline {
    ExposurePipeline::start(PipelineConfig::default(), None)
}

/// Captures `tracing` output while `f` runs.
fn logs_of<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .finish();
    let r = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (r, text)
}

#[tokio::test]
async fn biased_stream_fires_and_warns_once() {
    let snap = support::compile::compile_yaml(CONFIG);
    let p = pipeline();
    // A client that loses one in ten treatment exposures.
    let mut lost = 0;
    stream(&*p.sink(), &snap, "even", 20_000, |_, v, _| {
        if v == "treatment" {
            lost += 1;
            lost % 10 != 0
        } else {
            true
        }
    });
    let (results, log) = logs_of(|| p.srm().evaluate());
    let r = results.iter().find(|r| r.experiment == "even").unwrap();
    assert!(r.p_value < 0.001 && r.mismatch, "{r:?}");
    assert!(
        log.contains("WARN") && log.contains("sample ratio mismatch"),
        "{log}"
    );
    assert!(log.contains("even"), "{log}");
    // Still mismatched on the next run: no repeated warning for the same episode.
    let (again, log2) = logs_of(|| p.srm().evaluate());
    assert!(again.iter().any(|r| r.experiment == "even" && r.mismatch));
    assert!(!log2.contains("sample ratio mismatch"), "{log2}");
}

#[tokio::test]
async fn unbiased_streams_stay_quiet() {
    let snap = support::compile::compile_yaml(CONFIG);
    let p = pipeline();
    stream(&*p.sink(), &snap, "even", 20_000, |_, _, _| true);
    stream(&*p.sink(), &snap, "weighted", 20_000, |_, _, _| true);
    stream(&*p.sink(), &snap, "regional", 20_000, |_, _, _| true);
    let (results, log) = logs_of(|| p.srm().evaluate());
    // even, weighted, regional totals, and regional's two strata.
    assert_eq!(results.len(), 5, "{results:?}");
    for r in &results {
        assert!(!r.mismatch && r.p_value > 0.001, "{r:?}");
    }
    assert!(!log.contains("sample ratio mismatch"), "{log}");
    // The 1:3 weights are what the counts follow (the zero-weight variant gets none).
    let small = p.counts().get("weighted", "small") as f64;
    let large = p.counts().get("weighted", "large") as f64;
    assert_eq!(p.counts().get("weighted", "off"), 0);
    assert!((large / (small + large) - 0.75).abs() < 0.02);
}

#[tokio::test]
async fn strata_catch_an_imbalance_the_totals_hide() {
    let snap = support::compile::compile_yaml(CONFIG);
    let p = pipeline();
    // Europe loses 15% of treatment exposures, the US 15% of control ones: the
    // totals balance, each region does not.
    let mut n = 0;
    stream(&*p.sink(), &snap, "regional", 40_000, |_, v, region| {
        let lossy = (region == "eu" && v == "treatment") || (region == "us" && v == "control");
        if lossy {
            n += 1;
            n % 20 >= 3
        } else {
            true
        }
    });
    let results = p.srm().evaluate();
    let total = results
        .iter()
        .find(|r| r.experiment == "regional" && r.stratum.is_none())
        .unwrap();
    assert!(!total.mismatch && total.p_value > 0.001, "{total:?}");
    for region in ["eu", "us"] {
        let r = results
            .iter()
            .find(|r| r.stratum == Some(("region".into(), region.into())))
            .unwrap();
        assert!(r.mismatch && r.p_value < 0.001 / 2.0, "{r:?}");
    }
}

#[tokio::test]
async fn only_running_split_exposures_are_tested_and_small_samples_wait() {
    let snap = support::compile::compile_yaml(CONFIG);
    let p = pipeline();
    let sink = p.sink();
    // Too few units: no result yet (each variant expects < 100).
    stream(&*sink, &snap, "even", 150, |_, _, _| true);
    assert!(p.srm().evaluate().is_empty());
    // A stopped experiment serves but enrols nobody: nothing is counted.
    stream(&*sink, &snap, "stopped", 1000, |_, _, _| true);
    assert_eq!(
        p.counts()
            .snapshot()
            .iter()
            .filter(|c| c.0 == "stopped")
            .count(),
        0
    );
    // Sticky exposures follow the caller, not the weights: counted, not tested.
    for i in 0..1000 {
        let unit = format!("sticky-{i}");
        let ctx = support::context::json_ctx(serde_json::json!({ "targetingKey": unit }));
        let opts = EvalOptions {
            sticky: Some(Sticky {
                variant: "treatment",
            }),
            ..EvalOptions::default()
        };
        let a = snap.assign("even", &ctx, opts).unwrap();
        assert_eq!(a.reason.as_str(), "sticky");
        sink.record(&Exposure {
            subject: cohortd::exposure::Subject::Experiment(a),
            unit: &unit,
            config_version: snap.version(),
            source: cohortd::exposure::Source::Assign,
        });
    }
    assert!(p.counts().get("even", "treatment") >= 1000);
    assert!(
        p.srm().evaluate().is_empty(),
        "sticky units are not in the SRM test"
    );
}

#[tokio::test]
async fn metrics_families_render() {
    let snap = support::compile::compile_yaml(CONFIG);
    let p = pipeline();
    let sink = p.sink();
    stream(&*sink, &snap, "regional", 4_000, |_, _, _| true);
    // A repeat of the same unit and variant is deduped.
    stream(&*sink, &snap, "regional", 1, |_, _, _| true);
    p.srm().evaluate();
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(cohortd::exposure::metrics::ExposureMetrics::of(
        &p,
    )));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let control = p.counts().get("regional", "control");
    let treatment = p.counts().get("regional", "treatment");
    assert_eq!(control + treatment, 4_000);
    for line in [
        format!("cohortd_exposures_total{{experiment=\"regional\",variant=\"control\"}} {control}"),
        format!("cohortd_exposures_total{{experiment=\"regional\",variant=\"treatment\"}} {treatment}"),
        "cohortd_exposures_deduped_total 1".to_string(),
        "cohortd_exposures_dropped_total 0".to_string(),
        "cohortd_srm_mismatch{experiment=\"regional\"} 0".to_string(),
        "cohortd_srm_mismatch{experiment=\"regional\",stratum_attribute=\"region\",stratum=\"eu\"} 0"
            .to_string(),
    ] {
        assert!(text.contains(&line), "missing `{line}` in\n{text}");
    }
    assert!(
        text.contains("cohortd_srm_p_value{experiment=\"regional\"} "),
        "{text}"
    );
}

#[test]
fn srm_strata_config_is_validated() {
    let bad = r#"
experiments:
  - experimentId: e
    status: running
    variants: [a, b]
    srm: {strata: ""}
"#;
    let doc = cohortd::config::parse_file(std::path::Path::new("t.yaml"), bad.as_bytes()).unwrap();
    let err = Snapshot::compile(&[cohortd::config::SourceFile {
        path: "t.yaml".into(),
        doc,
    }])
    .unwrap_err();
    assert!(err.to_string().contains("srm.strata"), "{err}");
    let typo = r#"
experiments:
  - experimentId: e
    status: running
    variants: [a, b]
    srm: {strat: region}
"#;
    let err =
        cohortd::config::parse_file(std::path::Path::new("t.yaml"), typo.as_bytes()).unwrap_err();
    let text = format!("{err:?}");
    assert!(text.contains("strat"), "{text}");
}
