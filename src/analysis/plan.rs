//! The analysis plan of one experiment, parsed once from its config
//! (`metrics`, `evaluation`, `rollback`, `srm`) into the types the analysis uses.

use crate::config::{Correction, Direction, MetricKind};
use crate::snapshot::Experiment;

/// Significance level when the config sets none.
pub const DEFAULT_ALPHA: f64 = 0.05;

/// How a metric is reduced to one number per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 1 if the unit had at least one event with a positive value after its
    /// first exposure, else 0. Tested with the two-proportion z-test.
    Conversion,
    /// The sum of the unit's values after its first exposure (0 without any).
    /// Tested with Welch's t-test.
    Continuous,
}

/// The role a metric plays in the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The decision metric.
    Primary,
    /// Supporting.
    Secondary,
    /// Must not degrade beyond its threshold.
    Guardrail,
}

/// One metric to analyse.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricPlan {
    /// Metric name, as outcomes carry it.
    pub name: String,
    /// Per-unit reduction and test.
    pub kind: Kind,
    /// Role.
    pub role: Role,
    /// Which direction is good (`Increase` unless the config says otherwise;
    /// guardrails default to `Decrease`: an error rate must not go up).
    pub good: Direction,
    /// Guardrails: the largest tolerated degradation of a variant against
    /// control, as an absolute difference of per-unit means.
    pub threshold: Option<f64>,
}

/// Conditions under which `rollback.conditions` asks for a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// A guardrail breached its threshold.
    GuardrailBreach,
    /// Sample-ratio mismatch.
    SrmDetected,
}

/// How alpha is spread over the planned looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Spending {
    /// Lan-DeMets O'Brien-Fleming-type spending: little alpha early, nearly all at the end.
    OBrienFleming,
    /// alpha / maxPeeks at every look (Bonferroni over looks).
    Split,
}

/// The plan of one experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    /// Experiment key.
    pub experiment: String,
    /// Variant keys in config order.
    pub variants: Vec<String>,
    /// Configured weights (same order).
    pub weights: Vec<f64>,
    /// Index of the control variant (the first variant).
    pub control: usize,
    /// Metrics: primary, then secondary, then guardrails.
    pub metrics: Vec<MetricPlan>,
    /// Significance level.
    pub alpha: f64,
    /// Multiple-comparison correction.
    pub correction: Correction,
    /// Planned looks (1 when unset: a single analysis).
    pub max_peeks: u32,
    /// `maxPeeks` is set: looks are numbered in the ledger.
    pub peeks_tracked: bool,
    /// Minimum units per variant before effects are read.
    pub min_sample_size: u64,
    /// Rollback conditions the config lists.
    pub rollback: Vec<Condition>,
    /// Conditions in the config that the analysis does not know (reported).
    pub unknown_conditions: Vec<String>,
    /// The `srm.strata` attribute.
    pub strata: Option<String>,
    /// Epoch of the analysed config.
    pub epoch: u32,
    /// Salt fingerprint of the analysed config.
    pub salt_fingerprint: String,
}

fn kind_of(k: Option<MetricKind>) -> Kind {
    match k {
        Some(MetricKind::Conversion) | None => Kind::Conversion,
        Some(MetricKind::Continuous | MetricKind::Count | MetricKind::Ratio) => Kind::Continuous,
    }
}

impl Plan {
    /// The plan of a compiled experiment.
    pub fn of(e: &Experiment) -> Plan {
        let c = &e.config;
        let mut metrics = Vec::new();
        if let Some(m) = &c.metrics {
            let declared = m.primary.iter().chain(&m.secondary);
            for (i, x) in declared.enumerate() {
                if metrics.iter().any(|p: &MetricPlan| p.name == x.name) {
                    continue;
                }
                metrics.push(MetricPlan {
                    name: x.name.clone(),
                    kind: kind_of(x.kind),
                    role: if i == 0 && m.primary.is_some() {
                        Role::Primary
                    } else {
                        Role::Secondary
                    },
                    good: x.direction.unwrap_or(Direction::Increase),
                    threshold: None,
                });
            }
            for g in &m.guardrails {
                let known = metrics.iter().find(|p| p.name == g.name);
                let (kind, good) = known.map_or((Kind::Conversion, Direction::Decrease), |p| {
                    (p.kind, p.good)
                });
                metrics.push(MetricPlan {
                    name: g.name.clone(),
                    kind,
                    role: Role::Guardrail,
                    good,
                    threshold: Some(g.threshold),
                });
            }
        }
        let ev = c.evaluation.as_ref();
        let mut rollback = Vec::new();
        let mut unknown_conditions = Vec::new();
        for cond in c.rollback.iter().flat_map(|r| &r.conditions) {
            match cond.as_str() {
                "guardrail_breach" => rollback.push(Condition::GuardrailBreach),
                "srm_detected" => rollback.push(Condition::SrmDetected),
                other => unknown_conditions.push(other.to_owned()),
            }
        }
        Plan {
            experiment: e.key.to_string(),
            variants: e.variants.iter().map(|v| v.key.to_string()).collect(),
            weights: e.variants.iter().map(|v| v.weight).collect(),
            control: 0,
            metrics,
            alpha: ev.and_then(|v| v.alpha).unwrap_or(DEFAULT_ALPHA),
            correction: ev.and_then(|v| v.correction).unwrap_or(Correction::None),
            max_peeks: ev.and_then(|v| v.max_peeks).unwrap_or(1).max(1),
            peeks_tracked: ev.is_some_and(|v| v.max_peeks.is_some()),
            min_sample_size: ev.and_then(|v| v.min_sample_size).unwrap_or(0),
            rollback,
            unknown_conditions,
            strata: c.srm.as_ref().and_then(|s| s.strata.clone()),
            epoch: e.epoch,
            salt_fingerprint: e.salt_fingerprint.to_string(),
        }
    }

    /// Index of a variant key.
    pub fn variant(&self, key: &str) -> Option<usize> {
        self.variants.iter().position(|v| v == key)
    }

    /// Index of a metric name.
    pub fn metric(&self, name: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m.name == name)
    }
}
