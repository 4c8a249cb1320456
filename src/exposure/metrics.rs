//! The exposure metric families, rendered on each scrape from the pipeline's
//! own counters (so the request path bumps plain atomics, not label maps):
//!
//! (every name carries the process-wide `cohortd_` prefix)
//!
//! * `exposures_total{experiment, variant}`: deduped exposures (units) counted;
//! * `exposures_deduped_total`: exposures skipped as repeats within the window;
//! * `exposures_dropped_total`: exposures not exported because the queue was full
//!   (or closed at shutdown);
//! * `exposures_emitted_total`: exposures handed to the OpenTelemetry SDK;
//! * `otlp_exported_total{signal}` / `otlp_export_failed_total{signal}`: spans
//!   and log records the collector accepted / the exporter failed to deliver.
//!   Every exposure and outcome is one log record, so `exposures_emitted_total`
//!   plus `outcomes_emitted_total` minus both `{signal="logs"}` counters is what the SDK's own queue dropped or still holds;
//! * `outcomes_total`: outcome events (`Track`) recorded (after dedup);
//!   `outcomes_deduped_total`: retries of an event id within the window;
//!   `outcomes_unattributed_total`: events of units enrolled in no experiment
//!   that lists the metric (not exported); `outcomes_dropped_total` and
//!   `outcomes_emitted_total`: outcome log records dropped at the queue / handed
//!   to the SDK;
//! * `srm_p_value{experiment[, stratum_attribute, stratum]}`: the latest SRM
//!   p-value (absent until every variant expects enough exposures);
//! * `srm_mismatch{...}`: 1 while that p-value is below the alarm threshold.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::pipeline::{ExposurePipeline, Shared};

/// A prometheus-client collector over the pipeline's counters and SRM results.
#[derive(Debug)]
pub struct ExposureMetrics {
    shared: Arc<Shared>,
}

impl ExposureMetrics {
    /// The exposure metric families of `pipeline`, for `Metrics::register_collector`.
    pub fn of(pipeline: &ExposurePipeline) -> ExposureMetrics {
        ExposureMetrics {
            shared: pipeline.shared(),
        }
    }
}

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    let m = enc.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

impl Collector for ExposureMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = &self.shared;
        {
            let mut m = enc.encode_descriptor(
                "cohortd_exposures",
                "Exposures counted after dedup, by experiment and variant.",
                None,
                MetricType::Counter,
            )?;
            for (experiment, variant, n) in s.counts.snapshot() {
                let labels = [
                    ("experiment", experiment.as_str()),
                    ("variant", variant.as_str()),
                ];
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut enc,
            "cohortd_exposures_deduped",
            "Exposures skipped as repeats of the same unit, variant and config version within the dedup window.",
            s.stats.deduped.load(Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "cohortd_exposures_dropped",
            "Exposures not exported because the export queue was full or closed.",
            s.stats.dropped.load(Ordering::Relaxed),
        )?;
        let st = &s.stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut enc,
            "cohortd_outcomes",
            "Outcome events (Track) recorded, after dedup by event id.",
            load(&st.outcomes_received).saturating_sub(load(&st.outcomes_deduped)),
        )?;
        counter(
            &mut enc,
            "cohortd_outcomes_deduped",
            "Outcome events skipped as retries of an event id recorded within the dedup window.",
            load(&st.outcomes_deduped),
        )?;
        counter(
            &mut enc,
            "cohortd_outcomes_unattributed",
            "Outcome events of units enrolled in no experiment that lists the metric (not exported).",
            load(&st.outcomes_unattributed),
        )?;
        counter(
            &mut enc,
            "cohortd_outcomes_dropped",
            "Outcome log records not exported because the export queue was full or closed.",
            load(&st.outcomes_dropped),
        )?;
        if let Some(f) = &s.failures {
            counter(
                &mut enc,
                "cohortd_outcomes_emitted",
                "Outcome log records handed to the OpenTelemetry SDK.",
                load(&st.outcomes_emitted),
            )?;
            counter(
                &mut enc,
                "cohortd_exposures_emitted",
                "Exposures handed to the OpenTelemetry SDK (one span and one log record each).",
                s.stats.emitted.load(Ordering::Relaxed),
            )?;
            for (name, help, spans, logs) in [
                (
                    "cohortd_otlp_exported",
                    "Spans (server and exposure) and log records the OTLP collector accepted.",
                    &f.spans_ok,
                    &f.logs_ok,
                ),
                (
                    "cohortd_otlp_export_failed",
                    "Spans and log records the OTLP exporter failed to deliver (collector down, slow or refusing).",
                    &f.spans,
                    &f.logs,
                ),
            ] {
                let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
                for (signal, n) in [
                    ("traces", spans.load(Ordering::Relaxed)),
                    ("logs", logs.load(Ordering::Relaxed)),
                ] {
                    ConstCounter::new(n).encode(m.encode_family(&[("signal", signal)])?)?;
                }
            }
        }
        let results = s.srm.last();
        for (name, help, value) in [
            (
                "cohortd_srm_p_value",
                "Sample-ratio-mismatch chi-square p-value of deduped split exposures against the configured weights.",
                (|r: &super::srm::SrmResult| r.p_value) as fn(&super::srm::SrmResult) -> f64,
            ),
            (
                "cohortd_srm_mismatch",
                "1 while the sample-ratio-mismatch p-value is below the alarm threshold (reported only; assignment is unchanged).",
                |r: &super::srm::SrmResult| if r.mismatch { 1.0 } else { 0.0 },
            ),
        ] {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for r in &results {
                let g = ConstGauge::new(value(r));
                match &r.stratum {
                    None => g.encode(m.encode_family(&[("experiment", r.experiment.as_str())])?)?,
                    Some((attr, v)) => g.encode(m.encode_family(&[
                        ("experiment", r.experiment.as_str()),
                        ("stratum_attribute", attr.as_str()),
                        ("stratum", v.as_str()),
                    ])?)?,
                }
            }
        }
        Ok(())
    }
}
