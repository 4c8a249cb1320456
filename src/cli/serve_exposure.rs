//! The `--exposure-*` and `--srm-*` flags of `cohortd serve` (each with a
//! `COHORTD_*` environment fallback). OTLP export itself is configured by the
//! standard `OTEL_*` variables, not by flags: see [`crate::exposure::otel`].

use clap::builder::TypedValueParser as _;
use std::time::Duration;

use crate::exposure::pipeline::PipelineConfig;
use crate::exposure::privacy::UnitIdMode;
use crate::exposure::srm::SrmSettings;

use super::duration::parse_duration;

/// Exposure pipeline flags, flattened into `serve`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ExposureArgs {
    /// Export one unit's exposure to the same variant of the same config version
    /// at most once per window (wall-clock aligned); `0` or `off` exports every
    /// exposure.
    #[arg(long, value_name = "DURATION", default_value = "1h", env = "COHORTD_EXPOSURE_DEDUP_WINDOW", value_parser = parse_window)]
    pub exposure_dedup_window: Duration,
    /// Most keys the dedup window remembers per generation (memory bound: about
    /// 2 x 16 bytes each); beyond it the oldest are forgotten and may be
    /// exported again (with the same exposure id).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1_000_000,
        env = "COHORTD_EXPOSURE_DEDUP_CAPACITY"
    )]
    pub exposure_dedup_capacity: usize,
    /// Exposures queued for export; when full, new ones are dropped and counted
    /// (exposures_dropped_total) rather than slowing an assignment.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8192,
        env = "COHORTD_EXPOSURE_QUEUE"
    )]
    pub exposure_queue: usize,
    /// What to export as feature_flag.context.id: the raw unit id, a hash of it
    /// (a pseudonym), or nothing.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "raw",
        env = "COHORTD_EXPOSURE_UNIT_ID",
        value_parser = clap::builder::PossibleValuesParser::new(["raw", "hash", "omit"])
            .try_map(|s| s.parse::<UnitIdMode>())
    )]
    pub exposure_unit_id: UnitIdMode,
    /// Minimum expected exposures per variant before the sample-ratio-mismatch
    /// check reports a p-value.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        env = "COHORTD_SRM_MIN_SAMPLES"
    )]
    pub srm_min_samples: u64,
    /// p-value below which a sample ratio mismatch is logged as a warning.
    #[arg(long, value_name = "P", default_value_t = 0.001, env = "COHORTD_SRM_ALPHA", value_parser = parse_alpha)]
    pub srm_alpha: f64,
    /// Also export exposures as spans: a server span per request and a
    /// `feature_flag.evaluation` span (with a span event) per exposure, besides
    /// the log record every exposure becomes. Costs more CPU per exposure
    /// (docs/benchmarks.md); implied when only OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    /// is set.
    #[arg(long, env = "COHORTD_EXPOSURE_SPANS")]
    pub exposure_spans: bool,
    /// How often the sample-ratio-mismatch check runs.
    #[arg(long, value_name = "DURATION", default_value = "10s", env = "COHORTD_SRM_INTERVAL", value_parser = parse_interval)]
    pub srm_interval: Duration,
}

impl ExposureArgs {
    /// Which signals carry exposures: spans when asked for, or when the
    /// environment configures only a traces endpoint.
    pub fn signals(&self) -> crate::exposure::otel::Signals {
        use crate::exposure::otel::Signals;
        if self.exposure_spans {
            Signals::Spans
        } else {
            Signals::from_env()
        }
    }

    /// The pipeline settings these flags describe.
    pub fn config(&self) -> PipelineConfig {
        PipelineConfig {
            dedup_window: self.exposure_dedup_window,
            dedup_capacity: self.exposure_dedup_capacity.max(1),
            queue: self.exposure_queue.max(1),
            unit_id: self.exposure_unit_id,
            srm: SrmSettings {
                min_expected: self.srm_min_samples as f64,
                alpha: self.srm_alpha,
                ..SrmSettings::default()
            },
            srm_interval: self.srm_interval,
        }
    }
}

impl clap::builder::ValueParserFactory for UnitIdMode {
    type Parser = clap::builder::ValueParser;
    fn value_parser() -> Self::Parser {
        clap::builder::ValueParser::new(|s: &str| s.parse::<UnitIdMode>())
    }
}

fn parse_window(s: &str) -> Result<Duration, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) {
        return Err(format!("`{s}` is too short: use at least 10ms"));
    }
    Ok(d)
}

fn parse_alpha(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(a) if a > 0.0 && a < 1.0 => Ok(a),
        _ => Err(format!(
            "`{s}` is not a probability strictly between 0 and 1"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        e: ExposureArgs,
    }

    #[test]
    fn defaults_and_overrides() {
        let d = T::try_parse_from(["t"]).unwrap().e.config();
        assert_eq!(d.dedup_window, Duration::from_secs(3600));
        assert_eq!(d.unit_id, UnitIdMode::Raw);
        assert_eq!(d.srm.min_expected, 100.0);
        let t = T::try_parse_from([
            "t",
            "--exposure-dedup-window",
            "off",
            "--exposure-unit-id",
            "hash",
            "--exposure-queue",
            "64",
            "--srm-min-samples",
            "500",
            "--srm-interval",
            "2s",
        ])
        .unwrap()
        .e
        .config();
        assert_eq!(t.dedup_window, Duration::ZERO);
        assert_eq!(t.unit_id, UnitIdMode::Hash);
        assert_eq!(t.queue, 64);
        assert_eq!(t.srm.min_expected, 500.0);
        assert_eq!(t.srm_interval, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_are_clear_errors() {
        for args in [
            ["t", "--exposure-unit-id", "sha256"],
            ["t", "--exposure-dedup-window", "forever"],
            ["t", "--srm-alpha", "1.5"],
            ["t", "--srm-interval", "1ms"],
        ] {
            let e = T::try_parse_from(args).unwrap_err().to_string();
            assert!(e.contains(args[2]), "{e}");
        }
    }
}
