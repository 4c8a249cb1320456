//! What the engine tests share: evaluating one experiment for a unit, a
//! [`Trace`] that records the steps taken, Pearson's chi-square test with its
//! critical values, and a deterministic proptest configuration.

use cohortd::engine::{EvalOptions, Reason, Step, Trace};
use cohortd::snapshot::Experiment;

use super::context::Unit;

/// Evaluates `e` for unit `id` under attribute `key`: `(variant key, enrolled, reason)`.
pub fn eval<'s>(e: &'s Experiment, key: &str, id: &str) -> (&'s str, bool, Reason) {
    let a = e.evaluate(
        &Unit {
            key,
            id,
            extra: &[],
        },
        EvalOptions::default(),
        &mut (),
    );
    (&a.variant.key, a.enrolled, a.reason)
}

/// The unit id of the `i`-th synthetic unit. Ids look like real user ids.
pub fn unit_id(i: u64) -> String {
    format!("user-{i:08}")
}

/// Pearson's chi-square statistic of `observed` counts against `expected` proportions
/// (normalised here, so weights can be passed directly).
pub fn chi_square(observed: &[u64], weights: &[f64]) -> f64 {
    assert_eq!(observed.len(), weights.len());
    let n: u64 = observed.iter().sum();
    let total: f64 = weights.iter().sum();
    observed
        .iter()
        .zip(weights)
        .map(|(&o, &w)| {
            let e = n as f64 * w / total;
            (o as f64 - e).powi(2) / e
        })
        .sum()
}

/// Pearson's chi-square statistic of independence for an r x c contingency table.
pub fn chi_square_independence(table: &[Vec<u64>]) -> f64 {
    let rows: Vec<f64> = table.iter().map(|r| r.iter().sum::<u64>() as f64).collect();
    let cols: Vec<f64> = (0..table[0].len())
        .map(|j| table.iter().map(|r| r[j]).sum::<u64>() as f64)
        .collect();
    let n: f64 = rows.iter().sum();
    let mut stat = 0.0;
    for (i, r) in table.iter().enumerate() {
        for (j, &o) in r.iter().enumerate() {
            let e = rows[i] * cols[j] / n;
            stat += (o as f64 - e).powi(2) / e;
        }
    }
    stat
}

/// Critical values of the chi-square distribution at p = 0.001 for 1 to 10 degrees
/// of freedom (standard tables, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.4). A
/// statistic above the value rejects "the split follows the weights" at the 0.1%
/// level. Seeds and unit ids are fixed, so each test's statistic is a constant: a
/// correct engine passes every run, a biased one fails every run.
pub const CHI2_P001: [f64; 10] = [
    10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588,
];

/// The p = 0.001 critical value for `df` degrees of freedom.
pub fn chi2_critical(df: usize) -> f64 {
    CHI2_P001[df - 1]
}

/// A [`Trace`] that records which kinds of step were taken.
#[derive(Default, Debug)]
pub struct Kinds {
    /// Step names in order.
    pub steps: Vec<&'static str>,
    /// The traffic slot, if the traffic draw ran.
    pub traffic_slot: Option<u32>,
    /// Variant scores, in variant order, if rendezvous ran.
    pub scores: Vec<(String, f64)>,
}

impl Trace for Kinds {
    fn step(&mut self, step: Step<'_>) {
        self.steps.push(match step {
            Step::Status(_) => "status",
            Step::Unit { .. } => "unit",
            Step::Rule { .. } => "rule",
            Step::Sticky { .. } => "sticky",
            Step::Holdout { .. } => "holdout",
            Step::Layer { .. } => "layer",
            Step::Traffic { slot, .. } => {
                self.traffic_slot = Some(slot);
                "traffic"
            }
            Step::Score { variant, score, .. } => {
                self.scores.push((variant.to_owned(), score));
                "score"
            }
        });
    }
}

/// A proptest configuration with a fixed seed and no failure files, so every run
/// explores the same cases (deterministic CI) and leaves nothing behind.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x00c0_407d),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
