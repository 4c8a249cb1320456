//! The cohort table: each unit's first-assigned variant per experiment, the
//! integrity signals, and the outcome join.
//!
//! Memory is one entry per (experiment, unit) plus one `f64` per metric for
//! each, whatever the number of events: exposures are folded into the entry as
//! they stream past, and outcomes (read in a second pass, once every unit's
//! first exposure is known) into the per-unit values. Input order does not
//! matter: the first exposure is the earliest by timestamp.

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;

use super::plan::{Kind, Plan};
use super::record::{Exposure, Outcome};
use super::summary::Summary;

/// Distinct outcome event ids remembered for dedup (about 16 bytes each).
pub const MAX_EVENT_IDS: usize = 20_000_000;
/// Units per experiment (about 60 bytes plus the id and 8 bytes per metric each).
pub const MAX_UNITS: usize = 50_000_000;

const NONE: u16 = u16::MAX;
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

#[derive(Debug, Clone)]
struct Unit {
    /// First-assigned variant in the analysed cohort (`NONE` when only foreign).
    variant: u16,
    /// Time of that first exposure.
    first_ns: u64,
    /// Bit per variant seen in any exposure.
    seen: u64,
    /// Hash of the first (epoch, salt fingerprint) seen.
    cohort: u64,
    multi_cohort: bool,
    stratum: u32,
}

#[derive(Debug, Default)]
struct ExperimentTable {
    index: HashMap<Box<str>, u32, RandomState>,
    units: Vec<Unit>,
    values: Vec<f64>,
    strata: Vec<String>,
    strata_index: HashMap<String, u32, RandomState>,
    summary: Summary,
}

/// Why the table could not take more input.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CohortError {
    /// Too many units for one experiment.
    #[error("experiment {0}: more than {MAX_UNITS} units; aggregate in the warehouse (sql/analysis_stats.sql) and use --stats")]
    TooManyUnits(String),
    /// Too many outcome event ids to deduplicate.
    #[error(
        "more than {MAX_EVENT_IDS} distinct outcome event ids; deduplicate upstream or use --stats"
    )]
    TooManyEventIds,
}

/// Counts about records that matched no planned experiment or metric.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Unmatched {
    /// Exposures of experiments that are not in the config.
    pub exposures_unknown_experiment: u64,
    /// Outcomes of metrics no experiment declares.
    pub outcomes_unknown_metric: u64,
    /// Outcomes whose event id was already seen (counted once).
    pub duplicate_outcomes: u64,
}

/// The cohort table of every planned experiment.
#[derive(Debug)]
pub struct Cohorts {
    plans: Vec<Plan>,
    version: String,
    by_key: HashMap<String, usize, RandomState>,
    by_metric: HashMap<String, Vec<(usize, usize)>, RandomState>,
    tables: Vec<ExperimentTable>,
    event_ids: HashSet<u64, RandomState>,
    /// Records that matched nothing.
    pub unmatched: Unmatched,
}

/// Identifies an (epoch, salt fingerprint) pair; only compared for equality.
fn cohort_hash(epoch: u32, salt: &str) -> u64 {
    use std::hash::Hasher as _;
    let mut h = seahash::SeaHasher::new();
    h.write_u32(epoch);
    h.write(salt.as_bytes());
    h.finish() | 1
}

impl Cohorts {
    /// An empty table for `plans`; `version` is the analysed config's version.
    pub fn new(plans: Vec<Plan>, version: &str) -> Cohorts {
        let mut by_metric: HashMap<String, Vec<(usize, usize)>, RandomState> = HashMap::default();
        for (e, p) in plans.iter().enumerate() {
            for (m, metric) in p.metrics.iter().enumerate() {
                by_metric
                    .entry(metric.name.clone())
                    .or_default()
                    .push((e, m));
            }
        }
        Cohorts {
            by_key: plans
                .iter()
                .enumerate()
                .map(|(i, p)| (p.experiment.clone(), i))
                .collect(),
            tables: plans
                .iter()
                .map(|p| ExperimentTable {
                    summary: Summary::empty(p),
                    ..ExperimentTable::default()
                })
                .collect(),
            plans,
            version: version.to_owned(),
            by_metric,
            event_ids: HashSet::default(),
            unmatched: Unmatched::default(),
        }
    }

    /// Folds one exposure in (first pass).
    pub fn expose(&mut self, x: &Exposure) -> Result<(), CohortError> {
        let Some(&e) = self.by_key.get(&*x.experiment) else {
            self.unmatched.exposures_unknown_experiment += 1;
            return Ok(());
        };
        let plan = &self.plans[e];
        let t = &mut self.tables[e];
        let integrity = &mut t.summary.integrity;
        let Some(v) = plan.variant(&x.variant) else {
            integrity.unknown_variant_exposures += 1;
            return Ok(());
        };
        if !x.version.is_empty() && *x.version != *self.version {
            integrity.other_version_exposures += 1;
        }
        let salt_known = !x.salt_fingerprint.is_empty();
        let in_cohort =
            x.epoch == plan.epoch && (!salt_known || x.salt_fingerprint == plan.salt_fingerprint);
        let salt = if salt_known {
            &*x.salt_fingerprint
        } else {
            plan.salt_fingerprint.as_str()
        };
        let cohort = cohort_hash(x.epoch, salt);
        if !in_cohort {
            integrity.foreign_exposures += 1;
        }
        let id = match t.index.get(&*x.unit) {
            Some(&i) => i as usize,
            None => {
                if t.units.len() >= MAX_UNITS {
                    return Err(CohortError::TooManyUnits(plan.experiment.clone()));
                }
                t.index.insert((*x.unit).into(), t.units.len() as u32);
                t.units.push(Unit {
                    variant: NONE,
                    first_ns: u64::MAX,
                    seen: 0,
                    cohort,
                    multi_cohort: false,
                    stratum: u32::MAX,
                });
                t.units.len() - 1
            }
        };
        let stratum = match (&x.stratum, &plan.strata) {
            (Some(s), Some(_)) => match t.strata_index.get(&**s) {
                Some(&i) => i,
                None if t.strata.len() < 1024 => {
                    t.strata.push(s.to_string());
                    let i = (t.strata.len() - 1) as u32;
                    t.strata_index.insert(s.to_string(), i);
                    i
                }
                None => u32::MAX,
            },
            _ => u32::MAX,
        };
        let u = &mut t.units[id];
        if v < 64 {
            u.seen |= 1 << v;
        }
        if u.cohort != cohort {
            u.multi_cohort = true;
        }
        if in_cohort && x.time_ns < u.first_ns {
            u.variant = v as u16;
            u.first_ns = x.time_ns;
            u.stratum = stratum;
        }
        Ok(())
    }

    /// Ends the first pass: sizes the per-unit metric values.
    pub fn exposures_done(&mut self) {
        for (t, p) in self.tables.iter_mut().zip(&self.plans) {
            t.values = vec![0.0; t.units.len() * p.metrics.len()];
        }
    }

    /// Joins one outcome (second pass): it counts for each experiment that
    /// declares its metric (or the ones it names), for a unit exposed there,
    /// dated at or after that unit's first exposure.
    pub fn outcome(&mut self, o: &Outcome) -> Result<(), CohortError> {
        let Some(targets) = self.by_metric.get(&*o.metric) else {
            self.unmatched.outcomes_unknown_metric += 1;
            return Ok(());
        };
        if !o.event_id.is_empty() {
            if self.event_ids.len() >= MAX_EVENT_IDS {
                return Err(CohortError::TooManyEventIds);
            }
            if !self.event_ids.insert(seahash::hash(o.event_id.as_bytes())) {
                self.unmatched.duplicate_outcomes += 1;
                return Ok(());
            }
        }
        for &(e, m) in targets {
            let plan = &self.plans[e];
            if !o.experiments.is_empty() && !o.experiments.iter().any(|e| *e == plan.experiment) {
                continue;
            }
            let t = &mut self.tables[e];
            let integrity = &mut t.summary.integrity;
            let Some(&id) = t.index.get(&*o.unit) else {
                integrity.outcomes_unexposed += 1;
                continue;
            };
            let u = &t.units[id as usize];
            if u.variant == NONE {
                integrity.outcomes_unexposed += 1;
                continue;
            }
            if o.time_ns < u.first_ns {
                integrity.outcomes_before_exposure += 1;
                continue;
            }
            let slot = &mut t.values[id as usize * plan.metrics.len() + m];
            match plan.metrics[m].kind {
                Kind::Conversion => {
                    if o.value > 0.0 {
                        *slot = 1.0;
                    }
                }
                Kind::Continuous => *slot += o.value,
            }
        }
        Ok(())
    }

    /// The plans and the per-experiment summaries.
    pub fn finish(self) -> (Vec<Plan>, Vec<Summary>) {
        let mut out = Vec::with_capacity(self.tables.len());
        for (t, p) in self.tables.into_iter().zip(&self.plans) {
            let mut s = t.summary;
            let nm = p.metrics.len();
            let nv = p.variants.len();
            for (i, u) in t.units.iter().enumerate() {
                if u.seen.count_ones() > 1 {
                    s.integrity.crossed_over += 1;
                }
                if u.multi_cohort {
                    s.integrity.multi_cohort += 1;
                }
                if u.variant == NONE {
                    s.integrity.foreign_only_units += 1;
                    continue;
                }
                let v = u.variant as usize;
                s.integrity.units += 1;
                let vs = &mut s.variants[v];
                vs.units += 1;
                for m in 0..nm {
                    let x = t.values[i * nm + m];
                    vs.sum[m] += x;
                    vs.sum_sq[m] += x * x;
                }
                if let Some(name) = t.strata.get(u.stratum as usize) {
                    s.strata.entry(name.clone()).or_insert_with(|| vec![0; nv])[v] += 1;
                }
                let day = (u.first_ns / NANOS_PER_DAY) as i64;
                s.daily.entry(day).or_insert_with(|| vec![0; nv])[v] += 1;
            }
            out.push(s);
        }
        (self.plans, out)
    }
}
