//! Allocations on the exposure hot path, counted by an instrumented global
//! allocator (`stats_alloc`, so the test needs no `unsafe`): recording an exposure for export costs one packed
//! buffer (plus the queue's blocks, one per 32 items), and an experiment that
//! declares no `srm.strata` costs no more than one that does, since its
//! stratum is never read and the packed buffer already has room for it.

mod exposure_support;

use std::alloc::System;

use cohortd::engine::EvalOptions;
use cohortd::exposure::otel::OtelExport;
use cohortd::exposure::pipeline::{ExposurePipeline, PipelineConfig};
use cohortd::exposure::{Exposure, ExposureSink, Source};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

/// Counts every allocation of the process (the SDK's idle export threads may
/// add a few: the bounds below leave room for that).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CONFIG: &str = r#"
experiments:
  - experimentId: plain
    status: running
    variants: [control, treatment]
  - experimentId: regional
    status: running
    variants: [control, treatment]
    srm: {strata: region}
"#;

const N: usize = 4096;

/// Allocations per recorded exposure of `key`, for `N` new units whose context
/// holds `region` (the contexts and assignments are built before counting).
fn per_exposure(sink: &dyn ExposureSink, key: &str, region: serde_json::Value) -> f64 {
    let snap = exposure_support::snapshot(CONFIG);
    let units: Vec<String> = (0..N).map(|i| format!("{key}-unit-{i}")).collect();
    let ctxs: Vec<_> = units
        .iter()
        .map(|u| exposure_support::ctx(serde_json::json!({"targetingKey": u, "region": region})))
        .collect();
    let assignments: Vec<_> = ctxs
        .iter()
        .map(|c| snap.assign(key, c, EvalOptions::default()).unwrap())
        .collect();
    // Warm up: the first exposure of an experiment creates its counters and
    // SRM tally (and strata), once.
    let warm = |i: usize| {
        sink.record_in(
            &Exposure {
                assignment: assignments[i],
                unit: &units[i],
                config_version: snap.version(),
                source: Source::Assign,
            },
            &ctxs[i],
        )
    };
    warm(0);
    let region = Region::new(GLOBAL);
    for i in 1..N {
        warm(i);
    }
    let c = region.change();
    (c.allocations + c.reallocations) as f64 / (N - 1) as f64
}

#[tokio::test(flavor = "current_thread")]
async fn an_experiment_without_strata_allocates_no_more_per_exposure() {
    // Export on (to a closed port: nothing is sent while this thread is busy),
    // dedup off, a queue that holds every exposure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let otel = OtelExport::to_endpoint(&format!("http://{closed}"), None).unwrap();
    let cfg = PipelineConfig {
        dedup_window: std::time::Duration::ZERO,
        queue: 4 * N,
        ..PipelineConfig::default()
    };
    let pipeline = ExposurePipeline::start(cfg, Some(otel));
    let sink = pipeline.sink();
    let plain = per_exposure(&*sink, "plain", "eu".into());
    let regional = per_exposure(&*sink, "regional", "eu".into());
    // A numeric stratum needs its string form: one more allocation, which
    // shows the counter sees the hot path.
    let numeric = per_exposure(&*sink, "regional", 7.into());
    eprintln!("allocations per exposure: plain {plain}, regional {regional}, numeric {numeric}");
    let stats = pipeline.stats();
    assert_eq!(stats.queued, 3 * N as u64, "{stats:?}");
    assert!(
        plain <= regional + 0.01,
        "no strata: {plain} allocations per exposure, with strata {regional}"
    );
    assert!(
        plain < 1.1,
        "one packed buffer per exposure (plus a queue block per 32): {plain}"
    );
    assert!(
        numeric >= regional + 0.9,
        "numeric {numeric}, string {regional}"
    );
}
