//! The decision for one experiment, from its plan and sufficient statistics,
//! in the order that cannot be fooled by a drifted cohort:
//!
//! 1. cohort integrity (crossed-over units, several cohorts, foreign exposures);
//! 2. sample-ratio mismatch, which halts every effect estimate;
//! 3. (the join happened upstream: `cohort.rs`);
//! 4. tests against control;
//! 5. the multiple-comparison correction over variants x (primary, secondary);
//! 6. the look's alpha from the spending plan;
//! 7. the minimum sample size and the minimum detectable effect;
//! 8. guardrails and the rollback conditions that hold.

use std::collections::BTreeMap;

use crate::config::{Correction, Direction};

use super::correction::adjust;
use super::plan::{Condition, Kind, Plan, Role};
use super::stats::{mde, two_proportion, welch, Comparison, Group};
use super::summary::{Integrity, Summary};

/// Analysis settings that are not part of the experiment config.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Fraction of crossed-over units above which integrity is flagged.
    pub crossover_threshold: f64,
    /// Significance level of the SRM test.
    pub srm_alpha: f64,
    /// Power for the minimum detectable effect.
    pub power: f64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            crossover_threshold: 0.01,
            srm_alpha: 0.001,
            power: 0.8,
        }
    }
}

/// Where this analysis sits in the peeking plan.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Look {
    /// 1-based look number.
    pub number: u32,
    /// Planned looks (`maxPeeks`, 1 when unset).
    pub planned: u32,
    /// The two-sided alpha this look may spend (0 for a forced look beyond the plan).
    pub nominal_alpha: f64,
    /// A look beyond the plan, forced.
    pub forced: bool,
}

/// The integrity verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IntegrityResult {
    /// The counts.
    #[serde(flatten)]
    pub counts: Integrity,
    /// crossed_over / (units + foreign-only units).
    pub crossed_over_fraction: f64,
    /// Above the threshold.
    pub flagged: bool,
}

/// One chi-square test.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SrmTest {
    /// Stratum value (`None` for the whole experiment).
    pub stratum: Option<String>,
    /// Units per variant.
    pub units: Vec<u64>,
    /// Chi-square statistic (`None` when too few units to test).
    pub chi2: Option<f64>,
    /// p-value.
    pub p_value: Option<f64>,
    /// Below alpha (Bonferroni-corrected over strata).
    pub mismatch: bool,
}

/// One metric of one variant against control.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricResult {
    /// Metric name.
    pub metric: String,
    /// Role.
    pub role: Role,
    /// Per-unit reduction.
    pub kind: Kind,
    /// Treatment variant.
    pub variant: String,
    /// Units in control and treatment.
    pub units: (u64, u64),
    /// The test (`None` when undefined, e.g. no variance).
    pub comparison: Option<Comparison>,
    /// p-value after the correction (primary and secondary only).
    pub adjusted_p: Option<f64>,
    /// Adjusted p below the look's alpha, with enough data.
    pub significant: bool,
    /// Minimum detectable absolute effect at the current size.
    pub mde: Option<f64>,
    /// Guardrails: the threshold, the confidence bound of the degradation, breached.
    pub guardrail: Option<GuardrailResult>,
}

/// A guardrail check.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct GuardrailResult {
    /// Largest tolerated degradation (absolute difference of means).
    pub threshold: f64,
    /// The lower confidence bound of the degradation.
    pub degradation_bound: f64,
    /// The bound exceeds the threshold.
    pub breached: bool,
}

/// The report of one experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExperimentReport {
    /// Experiment key.
    pub experiment: String,
    /// Control variant.
    pub control: String,
    /// Variants, config order.
    pub variants: Vec<String>,
    /// Configured weights.
    pub weights: Vec<f64>,
    /// Significance level of the plan.
    pub alpha: f64,
    /// Correction of the plan.
    pub correction: Correction,
    /// Minimum units per variant of the plan.
    pub min_sample_size: u64,
    /// The look.
    pub look: Look,
    /// Step 1.
    pub integrity: IntegrityResult,
    /// Step 2: overall, then per stratum.
    pub srm: Vec<SrmTest>,
    /// Step 7: the smallest variant is below `minSampleSize`.
    pub not_enough_data: bool,
    /// Steps 4-8.
    pub results: Vec<MetricResult>,
    /// The verdict in one sentence.
    pub decision: String,
    /// The winning variant, when there is one.
    pub winner: Option<String>,
    /// Rollback conditions of the config that hold.
    pub rollback: Vec<Condition>,
    /// Other things the reader should know.
    pub notes: Vec<String>,
    /// First exposures per UTC day and variant (empty from a statistics file).
    pub daily: BTreeMap<i64, Vec<u64>>,
}

fn group(s: &Summary, v: usize, m: usize) -> Group {
    Group {
        n: s.variants[v].units as f64,
        sum: s.variants[v].sum[m],
        sum_sq: s.variants[v].sum_sq[m],
    }
}

fn srm_test(units: &[u64], weights: &[f64], alpha: f64, stratum: Option<String>) -> SrmTest {
    let r = crate::exposure::srm::chi_square(units, weights, 5.0);
    SrmTest {
        stratum,
        units: units.to_vec(),
        chi2: r.map(|x| x.0),
        p_value: r.map(|x| x.1),
        mismatch: r.is_some_and(|(_, p)| p < alpha),
    }
}

/// Evaluates one experiment.
pub fn evaluate(plan: &Plan, s: &Summary, look: Look, settings: &Settings) -> ExperimentReport {
    let c = plan.control;
    let mut notes = Vec::new();
    // 1. Integrity.
    let i = &s.integrity;
    let seen = i.units + i.foreign_only_units;
    let frac = if seen == 0 {
        0.0
    } else {
        i.crossed_over as f64 / seen as f64
    };
    let flagged = frac > settings.crossover_threshold;
    let integrity = IntegrityResult {
        counts: i.clone(),
        crossed_over_fraction: frac,
        flagged,
    };
    // 2. SRM, overall and per stratum.
    let units: Vec<u64> = s.variants.iter().map(|v| v.units).collect();
    let mut srm = vec![srm_test(&units, &plan.weights, settings.srm_alpha, None)];
    let tested = s.strata.len().max(1) as f64;
    for (name, counts) in &s.strata {
        srm.push(srm_test(
            counts,
            &plan.weights,
            settings.srm_alpha / tested,
            Some(name.clone()),
        ));
    }
    if srm[0].chi2.is_none() {
        notes.push("SRM not tested: a variant expects fewer than 5 units".to_owned());
    }
    let srm_mismatch = srm.iter().any(|t| t.mismatch);
    // 7. Sample size (checked before effects so they are never read early).
    let smallest = units
        .iter()
        .zip(&plan.weights)
        .filter(|(_, &w)| w > 0.0)
        .map(|(&u, _)| u)
        .min()
        .unwrap_or(0);
    let not_enough_data = smallest < plan.min_sample_size;
    // 4. Tests against control (halted by an SRM).
    let mut results = Vec::new();
    if !srm_mismatch {
        let ci_alpha = if look.nominal_alpha > 0.0 {
            look.nominal_alpha
        } else {
            plan.alpha
        };
        for (m, metric) in plan.metrics.iter().enumerate() {
            for v in (0..plan.variants.len()).filter(|&v| v != c && plan.weights[v] > 0.0) {
                let (gc, gt) = (group(s, c, m), group(s, v, m));
                let comparison = match metric.kind {
                    Kind::Conversion => two_proportion(&gc, &gt, ci_alpha),
                    Kind::Continuous => welch(&gc, &gt, ci_alpha),
                };
                let sd = match metric.kind {
                    Kind::Conversion => {
                        let p = gc.mean();
                        (p * (1.0 - p)).sqrt()
                    }
                    Kind::Continuous => gc.variance().sqrt(),
                };
                let guardrail = match (metric.threshold, comparison) {
                    (Some(threshold), Some(cmp)) => {
                        let bound = match metric.good {
                            Direction::Decrease => cmp.abs_ci.0,
                            Direction::Increase => -cmp.abs_ci.1,
                        };
                        Some(GuardrailResult {
                            threshold,
                            degradation_bound: bound,
                            breached: bound > threshold,
                        })
                    }
                    _ => None,
                };
                results.push(MetricResult {
                    metric: metric.name.clone(),
                    role: metric.role,
                    kind: metric.kind,
                    variant: plan.variants[v].clone(),
                    units: (gc.n as u64, gt.n as u64),
                    comparison,
                    adjusted_p: None,
                    significant: false,
                    mde: mde(sd, gc.n, gt.n, plan.alpha, settings.power),
                    guardrail,
                });
            }
        }
        // 5. Correction over variants x (primary, secondary).
        let family: Vec<usize> = (0..results.len())
            .filter(|&k| results[k].role != Role::Guardrail)
            .filter(|&k| results[k].comparison.is_some())
            .collect();
        let ps: Vec<f64> = family
            .iter()
            .filter_map(|&k| results[k].comparison.map(|c| c.p_value))
            .collect();
        let adjusted = adjust(&ps, plan.correction);
        for (&k, &p) in family.iter().zip(&adjusted) {
            results[k].adjusted_p = Some(p);
            // 6. The look's alpha.
            results[k].significant = !not_enough_data && p < look.nominal_alpha;
        }
    }
    // 8. Guardrails and rollback.
    let breached: Vec<&MetricResult> = results
        .iter()
        .filter(|r| r.guardrail.is_some_and(|g| g.breached))
        .collect();
    let mut rollback = Vec::new();
    for cond in &plan.rollback {
        let holds = match cond {
            Condition::SrmDetected => srm_mismatch,
            Condition::GuardrailBreach => !breached.is_empty(),
        };
        if holds && !rollback.contains(cond) {
            rollback.push(*cond);
        }
    }
    for u in &plan.unknown_conditions {
        notes.push(format!(
            "rollback condition {u:?} is not one the analysis evaluates"
        ));
    }
    if look.forced {
        notes.push(format!(
            "look {} is beyond maxPeeks {} (forced): no alpha left, estimates are descriptive",
            look.number, look.planned
        ));
    }
    // The verdict.
    let primary = plan.metrics.iter().find(|m| m.role == Role::Primary);
    let mut winner = None;
    let decision = if srm_mismatch {
        let t = srm.iter().find(|t| t.mismatch).expect("a mismatch");
        let where_ = t
            .stratum
            .as_deref()
            .map(|s| format!(" in stratum {s:?}"))
            .unwrap_or_default();
        format!(
            "halted: sample ratio mismatch{where_} (units {:?} against weights {:?}, p = {:.3e}); effects are not estimated because the groups are not comparable",
            t.units, plan.weights, t.p_value.unwrap_or(f64::NAN)
        )
    } else if not_enough_data {
        let mde_primary = primary
            .and_then(|p| results.iter().find(|r| r.metric == p.name))
            .and_then(|r| r.mde);
        match mde_primary {
            Some(d) => format!(
                "not enough data: the smallest variant has {smallest} of minSampleSize {} units; at this size the minimum detectable effect on the primary metric is {d:.4} (absolute, {:.0}% power)",
                plan.min_sample_size,
                settings.power * 100.0
            ),
            None => format!(
                "not enough data: the smallest variant has {smallest} of minSampleSize {} units",
                plan.min_sample_size
            ),
        }
    } else if let Some(p) = primary {
        let wins: Vec<&MetricResult> = results
            .iter()
            .filter(|r| r.metric == p.name && r.significant)
            .filter(|r| {
                r.comparison.is_some_and(|c| match p.good {
                    Direction::Increase => c.abs_lift > 0.0,
                    Direction::Decrease => c.abs_lift < 0.0,
                })
            })
            .collect();
        if flagged {
            format!(
                "no winner: cohort integrity flagged ({:.1}% of units crossed over between variants); the estimates below use first-assigned variants only",
                frac * 100.0
            )
        } else if !breached.is_empty() {
            format!(
                "no winner: guardrail {} breached",
                breached
                    .iter()
                    .map(|r| format!("{} ({})", r.metric, r.variant))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else if let Some(best) = wins.iter().max_by(|a, b| {
            let ka = a.comparison.map_or(0.0, |c| c.abs_lift.abs());
            let kb = b.comparison.map_or(0.0, |c| c.abs_lift.abs());
            ka.total_cmp(&kb)
        }) {
            winner = Some(best.variant.clone());
            format!(
                "winner: {} on {} (look {} of {})",
                best.variant, p.name, look.number, look.planned
            )
        } else if look.number < look.planned {
            format!("no winner yet (look {} of {})", look.number, look.planned)
        } else {
            format!(
                "no winner: no significant improvement of {} over {}",
                p.name, plan.variants[c]
            )
        }
    } else {
        "no decision: the config declares no primary metric".to_owned()
    };
    ExperimentReport {
        experiment: plan.experiment.clone(),
        control: plan.variants[c].clone(),
        variants: plan.variants.clone(),
        weights: plan.weights.clone(),
        alpha: plan.alpha,
        correction: plan.correction,
        min_sample_size: plan.min_sample_size,
        look,
        integrity,
        srm,
        not_enough_data,
        results,
        decision,
        winner,
        rollback,
        notes,
        daily: s.daily.clone(),
    }
}
