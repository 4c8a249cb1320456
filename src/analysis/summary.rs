//! Per-variant sufficient statistics: everything the tests need, and all that
//! the warehouse path (`sql/analysis_stats.sql`, `--stats FILE`) has to produce.
//!
//! Both paths (raw events through the cohort table, and a statistics file) end
//! here, and the evaluation reads only this, so the two reports agree by
//! construction up to floating-point summation order.

use std::collections::BTreeMap;
use std::path::Path;

use super::plan::Plan;

/// One variant's first-assigned units and their per-metric sums.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct VariantStats {
    /// Units whose first exposure (in the analysed cohort) was this variant.
    pub units: u64,
    /// Per metric (plan order): the sum over units of the per-unit value.
    pub sum: Vec<f64>,
    /// Per metric: the sum over units of the squared per-unit value.
    pub sum_sq: Vec<f64>,
}

/// Cohort-integrity counts of one experiment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Integrity {
    /// Units analysed (with a first exposure in the analysed cohort).
    pub units: u64,
    /// Units exposed to more than one variant (the drift signature).
    pub crossed_over: u64,
    /// Units whose exposures came from more than one (epoch, salt fingerprint).
    pub multi_cohort: u64,
    /// Exposures from another epoch or salt than the analysed config's: not
    /// used for assignment.
    pub foreign_exposures: u64,
    /// Units seen only in foreign exposures: left out.
    pub foreign_only_units: u64,
    /// Exposures of variants the config does not have: left out.
    pub unknown_variant_exposures: u64,
    /// Exposures produced by another config version (any experiment's edit
    /// changes the version, so this is informational).
    pub other_version_exposures: u64,
    /// Outcomes of analysed units dated before the unit's first exposure: not counted.
    pub outcomes_before_exposure: u64,
    /// Outcomes of units never exposed in this experiment: not counted.
    pub outcomes_unexposed: u64,
}

/// Everything the evaluation needs about one experiment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Per variant, plan order.
    pub variants: Vec<VariantStats>,
    /// Integrity counts.
    pub integrity: Integrity,
    /// Per stratum value: first-assigned units per variant.
    pub strata: BTreeMap<String, Vec<u64>>,
    /// Per UTC day (days since 1970-01-01): first exposures per variant.
    pub daily: BTreeMap<i64, Vec<u64>>,
}

impl Summary {
    /// An empty summary shaped for `plan`.
    pub fn empty(plan: &Plan) -> Summary {
        let m = plan.metrics.len();
        Summary {
            variants: vec![
                VariantStats {
                    units: 0,
                    sum: vec![0.0; m],
                    sum_sq: vec![0.0; m],
                };
                plan.variants.len()
            ],
            ..Summary::default()
        }
    }
}

/// A statistics file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// Unreadable.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: csv::Error,
    },
    /// A row that does not fit the config.
    #[error("{path}:{line}: {reason}")]
    Row {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// Why.
        reason: String,
    },
}

/// One row of a statistics file (the output of `sql/analysis_stats.sql`).
#[derive(Debug, serde::Deserialize)]
struct StatsRow {
    experiment: String,
    variant: String,
    #[serde(default)]
    metric: String,
    #[serde(default)]
    units: u64,
    #[serde(default)]
    sum: f64,
    #[serde(default)]
    sum_sq: f64,
    #[serde(default)]
    crossed_over: u64,
    #[serde(default)]
    multi_cohort: u64,
    #[serde(default)]
    foreign_exposures: u64,
    #[serde(default)]
    foreign_only_units: u64,
}

/// Reads a statistics CSV into summaries for the planned experiments.
///
/// Rows with an empty `metric` carry the variant's unit count; the row with an
/// empty `variant` and `metric` carries the experiment's integrity counts; rows
/// with a metric carry `sum` and `sum_sq` of the per-unit values. Experiments
/// and variants not in the config are an error: the statistics must come from
/// the same config. Metrics the config does not declare are ignored.
pub fn read_stats(path: &Path, plans: &[Plan]) -> Result<Vec<Summary>, StatsError> {
    let p = path.display().to_string();
    let mut out: Vec<Summary> = plans.iter().map(Summary::empty).collect();
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|source| StatsError::Io {
            path: p.clone(),
            source,
        })?;
    for (i, row) in rdr.deserialize::<StatsRow>().enumerate() {
        // Line of the row: the header is line 1 (stats files have no multi-line fields).
        let line = i as u64 + 2;
        let row = row.map_err(|source| match source.position() {
            Some(pos) => StatsError::Row {
                path: p.clone(),
                line: pos.line(),
                reason: source.to_string(),
            },
            None => StatsError::Io {
                path: p.clone(),
                source,
            },
        })?;
        let bad = |reason: String| StatsError::Row {
            path: p.clone(),
            line,
            reason,
        };
        let Some(e) = plans.iter().position(|pl| pl.experiment == row.experiment) else {
            return Err(bad(format!(
                "experiment {:?} is not in the config",
                row.experiment
            )));
        };
        let plan = &plans[e];
        let s = &mut out[e];
        if row.variant.is_empty() {
            s.integrity.crossed_over += row.crossed_over;
            s.integrity.multi_cohort += row.multi_cohort;
            s.integrity.foreign_exposures += row.foreign_exposures;
            s.integrity.foreign_only_units += row.foreign_only_units;
            continue;
        }
        let v = plan.variant(&row.variant).ok_or_else(|| {
            bad(format!(
                "{}: variant {:?} is not in the config",
                row.experiment, row.variant
            ))
        })?;
        if row.metric.is_empty() {
            s.variants[v].units += row.units;
            s.integrity.units += row.units;
        } else if let Some(m) = plan.metric(&row.metric) {
            if !row.sum.is_finite() || !row.sum_sq.is_finite() {
                return Err(bad(format!("{}: sums must be finite", row.experiment)));
            }
            s.variants[v].sum[m] += row.sum;
            s.variants[v].sum_sq[m] += row.sum_sq;
        }
    }
    Ok(out)
}
