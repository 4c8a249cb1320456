//! The live sample-ratio-mismatch (SRM) check: are deduped exposure counts in
//! the proportions the config's weights promise?
//!
//! Per running experiment, a chi-square goodness-of-fit test compares the counts
//! of hash-assigned (`split`) exposures with the expected counts
//! `n * w_i / sum(w)` over the variants with positive weight (zero-weight
//! variants are never chosen by hashing; sticky exposures follow the caller, not
//! the weights, and are left out). The p-value is exported as a gauge; when it
//! falls below `alpha` (default 0.001) while every variant expects at least
//! `min_expected` exposures (default 100), a warning is logged once per
//! episode. If the experiment declares `srm.strata`, the same test runs inside
//! each value of that context attribute, with a Bonferroni correction over the
//! strata tested, so an imbalance confined to one segment is caught even when the
//! totals balance.
//!
//! The check reports only. A pod never changes assignment on its own data:
//! pods deciding separately would split the fleet, so rollback is a config change.
//! Counts restart when the experiment's fingerprint (its assignment-relevant
//! config) changes, since old counts were drawn under other weights.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::config::Status;
use crate::snapshot::{Experiment, Snapshot};

use super::stratum::strata_attribute;

/// Thresholds of the check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrmSettings {
    /// Minimum expected exposures in every positive-weight variant before a
    /// p-value is computed (small samples make the chi-square approximation
    /// poor and the alarm noisy).
    pub min_expected: f64,
    /// Significance level of the warning.
    pub alpha: f64,
    /// Most strata tracked per experiment; values beyond it are not stratified
    /// (they still count in the totals), which bounds memory.
    pub max_strata: usize,
}

impl Default for SrmSettings {
    fn default() -> Self {
        SrmSettings {
            min_expected: 100.0,
            alpha: 0.001,
            max_strata: 64,
        }
    }
}

/// One test result.
#[derive(Debug, Clone, PartialEq)]
pub struct SrmResult {
    /// Experiment key.
    pub experiment: String,
    /// `(attribute, value)` for a stratum; `None` for the experiment's totals.
    pub stratum: Option<(String, String)>,
    /// Exposures tested.
    pub total: u64,
    /// Chi-square statistic.
    pub chi2: f64,
    /// Its p-value (survival function of chi-square with k-1 degrees of freedom).
    pub p_value: f64,
    /// Whether `p_value` is below the (Bonferroni-corrected, for strata) alpha.
    pub mismatch: bool,
}

/// Chi-square goodness of fit of `counts` against `weights`, normalised over the
/// variants with positive weight. `None` when fewer than two variants have
/// positive weight or any expects fewer than `min_expected` exposures.
pub fn chi_square(counts: &[u64], weights: &[f64], min_expected: f64) -> Option<(f64, f64)> {
    let positive: Vec<(u64, f64)> = counts
        .iter()
        .zip(weights)
        .filter(|(_, &w)| w > 0.0 && w.is_finite())
        .map(|(&c, &w)| (c, w))
        .collect();
    if positive.len() < 2 {
        return None;
    }
    let n: u64 = positive.iter().map(|(c, _)| c).sum();
    let wsum: f64 = positive.iter().map(|(_, w)| w).sum();
    let mut stat = 0.0;
    for &(c, w) in &positive {
        let expected = n as f64 * w / wsum;
        if expected < min_expected || expected <= 0.0 {
            return None;
        }
        let d = c as f64 - expected;
        stat += d * d / expected;
    }
    let df = (positive.len() - 1) as f64;
    let dist = ChiSquared::new(df).ok()?;
    Some((stat, dist.sf(stat)))
}

struct Tally {
    fingerprint: Box<str>,
    variants: Vec<Box<str>>,
    weights: Vec<f64>,
    strata_attr: Option<Box<str>>,
    total: Vec<u64>,
    strata: HashMap<Box<str>, Vec<u64>>,
}

impl Tally {
    fn new(e: &Experiment) -> Tally {
        Tally {
            fingerprint: (*e.fingerprint).into(),
            variants: e.variants.iter().map(|v| (*v.key).into()).collect(),
            weights: e.variants.iter().map(|v| v.weight).collect(),
            strata_attr: strata_attribute(e).map(Into::into),
            total: vec![0; e.variants.len()],
            strata: HashMap::new(),
        }
    }
}

#[derive(Default)]
struct State {
    tallies: HashMap<Box<str>, Tally>,
    last: Vec<SrmResult>,
    flagged: HashSet<(String, Option<(String, String)>)>,
}

/// Live SRM tallies and the latest results.
pub struct Srm {
    settings: SrmSettings,
    state: Mutex<State>,
}

impl std::fmt::Debug for Srm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srm")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Srm {
    /// An empty check with these thresholds.
    pub fn new(settings: SrmSettings) -> Srm {
        Srm {
            settings,
            state: Mutex::default(),
        }
    }

    /// The thresholds in force.
    pub fn settings(&self) -> SrmSettings {
        self.settings
    }

    /// Counts one deduped, hash-assigned exposure of `variant` of `e`, in
    /// `stratum` (the value of the experiment's strata attribute, if known).
    /// Experiments that are not running are ignored.
    pub fn observe(&self, e: &Experiment, variant: &str, stratum: Option<&str>) {
        if e.status != Status::Running {
            return;
        }
        let Some(idx) = e.variants.iter().position(|v| &*v.key == variant) else {
            return;
        };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let tally = match st.tallies.get_mut(&*e.key) {
            Some(t) if *t.fingerprint == *e.fingerprint => t,
            _ => {
                st.tallies.insert((*e.key).into(), Tally::new(e));
                st.tallies
                    .get_mut(&*e.key)
                    .unwrap_or_else(|| unreachable!())
            }
        };
        tally.total[idx] += 1;
        if let (Some(s), Some(_)) = (stratum, &tally.strata_attr) {
            if let Some(v) = tally.strata.get_mut(s) {
                v[idx] += 1;
            } else if tally.strata.len() < self.settings.max_strata {
                let mut v = vec![0; tally.variants.len()];
                v[idx] = 1;
                tally.strata.insert(s.into(), v);
            }
        }
    }

    /// Drops tallies of experiments that are gone, no longer running, or whose
    /// assignment-relevant config changed (call it after a reload).
    pub fn retain(&self, snapshot: &Snapshot) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.tallies.retain(|k, t| {
            snapshot
                .experiment(k)
                .is_some_and(|e| e.status == Status::Running && *e.fingerprint == *t.fingerprint)
        });
        let keep: HashSet<String> = st.tallies.keys().map(|k| k.to_string()).collect();
        st.last.retain(|r| keep.contains(&r.experiment));
        st.flagged.retain(|(e, _)| keep.contains(e));
    }

    /// Runs every test, logs a warning for each newly detected mismatch (and an
    /// info line when one clears), remembers the results for the gauge and
    /// returns them.
    pub fn evaluate(&self) -> Vec<SrmResult> {
        let s = self.settings;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut results = Vec::new();
        let mut keys: Vec<&Box<str>> = st.tallies.keys().collect();
        keys.sort();
        for key in keys {
            let t = &st.tallies[key];
            if let Some((chi2, p)) = chi_square(&t.total, &t.weights, s.min_expected) {
                results.push(SrmResult {
                    experiment: key.to_string(),
                    stratum: None,
                    total: t.total.iter().sum(),
                    chi2,
                    p_value: p,
                    mismatch: p < s.alpha,
                });
            }
            if let Some(attr) = &t.strata_attr {
                let mut strata: Vec<SrmResult> = t
                    .strata
                    .iter()
                    .filter_map(|(value, counts)| {
                        let (chi2, p) = chi_square(counts, &t.weights, s.min_expected)?;
                        Some(SrmResult {
                            experiment: key.to_string(),
                            stratum: Some((attr.to_string(), value.to_string())),
                            total: counts.iter().sum(),
                            chi2,
                            p_value: p,
                            mismatch: false,
                        })
                    })
                    .collect();
                let corrected = s.alpha / strata.len().max(1) as f64;
                for r in &mut strata {
                    r.mismatch = r.p_value < corrected;
                }
                strata.sort_by(|a, b| a.stratum.cmp(&b.stratum));
                results.extend(strata);
            }
        }
        let mut flagged = HashSet::new();
        for r in &results {
            let id = (r.experiment.clone(), r.stratum.clone());
            if r.mismatch {
                if !st.flagged.contains(&id) {
                    let (attr, value) = r.stratum.clone().unwrap_or_default();
                    let counts = self.counts_text(&st, &r.experiment, r.stratum.as_ref());
                    tracing::warn!(
                        experiment = %r.experiment,
                        stratum_attribute = %attr,
                        stratum = %value,
                        p_value = r.p_value,
                        chi2 = r.chi2,
                        exposures = r.total,
                        counts = %counts,
                        "sample ratio mismatch: exposure counts do not match the configured weights \
                         (reported only; assignment is unchanged)"
                    );
                }
                flagged.insert(id);
            } else if st.flagged.contains(&id) {
                tracing::info!(experiment = %r.experiment, p_value = r.p_value, "sample ratio mismatch cleared");
            }
        }
        st.flagged = flagged;
        st.last = results.clone();
        results
    }

    /// The results of the latest [`Srm::evaluate`].
    pub fn last(&self) -> Vec<SrmResult> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last
            .clone()
    }

    fn counts_text(&self, st: &State, exp: &str, stratum: Option<&(String, String)>) -> String {
        let Some(t) = st.tallies.get(exp) else {
            return String::new();
        };
        let counts = match stratum {
            None => Some(&t.total),
            Some((_, v)) => t.strata.get(v.as_str()),
        };
        let Some(counts) = counts else {
            return String::new();
        };
        t.variants
            .iter()
            .zip(counts)
            .zip(&t.weights)
            .map(|((v, c), w)| format!("{v}={c} (weight {w})"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi_square_matches_known_values() {
        let (stat, p) = chi_square(&[500, 500], &[1.0, 1.0], 100.0).unwrap();
        assert_eq!(stat, 0.0);
        assert!((p - 1.0).abs() < 1e-12);
        // 3.841459 is the 95th percentile of chi-square with 1 df.
        // counts 531/469 of 1000: stat = 2 * 31^2 / 500 = 3.844.
        let (stat, p) = chi_square(&[531, 469], &[1.0, 1.0], 100.0).unwrap();
        assert!((stat - 3.844).abs() < 1e-9);
        assert!((p - 0.0499).abs() < 5e-4, "p = {p}");
        // 5.991465 is the 95th percentile with 2 df: weights 2:1:1 of 400.
        let (_, p) = chi_square(&[200, 100, 100], &[2.0, 1.0, 1.0], 50.0).unwrap();
        assert!((p - 1.0).abs() < 1e-12);
        let (stat, p) = chi_square(&[600, 400], &[1.0, 1.0], 100.0).unwrap();
        assert!((stat - 40.0).abs() < 1e-9);
        assert!(p < 1e-9 && p > 0.0, "p = {p}");
    }

    #[test]
    fn zero_weights_are_left_out_and_small_samples_skipped() {
        // The zero-weight variant's (impossible) count is ignored.
        let (stat, _) = chi_square(&[500, 500, 7], &[1.0, 1.0, 0.0], 100.0).unwrap();
        assert_eq!(stat, 0.0);
        assert!(chi_square(&[99, 99], &[1.0, 1.0], 100.0).is_none());
        assert!(chi_square(&[1000], &[1.0], 100.0).is_none());
        assert!(chi_square(&[1000, 0], &[1.0, 0.0], 100.0).is_none());
    }
}
