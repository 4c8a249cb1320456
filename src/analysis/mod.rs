//! `cohortd analyze`: exposures and outcomes in, a decision out, checked in an
//! order that a drifted cohort cannot fool (docs/analysis.md).
//!
//! The data flows through one file per idea:
//!
//! * [`input`] streams files ([`otlp`] Collector lines, [`flat`] JSON lines and
//!   CSV) into [`record`]s, counting every bad line;
//! * [`plan`] reads each experiment's `metrics` / `evaluation` / `rollback` once;
//! * [`cohort`] folds exposures into first-assigned units with the integrity
//!   signals, then joins outcomes (two passes, memory per unit, not per event);
//! * [`summary`] holds the per-variant sufficient statistics, which the
//!   warehouse path (`sql/analysis_stats.sql`, `--stats`) produces directly;
//! * [`evaluate`] applies integrity, SRM, [`stats`], [`correction`], the
//!   [`spending`] plan with its [`ledger`], sample size and guardrails;
//! * [`report`] and [`plot`] present it.

pub mod cohort;
pub mod correction;
pub mod evaluate;
pub mod flat;
pub mod input;
pub mod ledger;
pub mod otlp;
pub mod plan;
pub mod plot;
pub mod record;
pub mod report;
pub mod spending;
pub mod stats;
pub mod summary;

use std::path::PathBuf;

use crate::config::ConfigErrors;
use crate::snapshot::Snapshot;

use cohort::{CohortError, Cohorts};
use evaluate::{evaluate, Look, Settings};
use input::{InputError, InputStats, Pass};
use ledger::{Ledger, LedgerError};
use plan::{Plan, Spending};
use record::Record;
use report::Report;
use summary::StatsError;

/// Where the numbers come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Raw exposure and outcome files.
    Events(Vec<PathBuf>),
    /// A per-variant statistics CSV (`sql/analysis_stats.sql`).
    Stats(PathBuf),
}

/// One run's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The config directory (or file).
    pub config: PathBuf,
    /// Input.
    pub source: Source,
    /// Only these experiments (all with two or more variants when empty).
    pub experiments: Vec<String>,
    /// The look ledger file.
    pub ledger: PathBuf,
    /// Take a look beyond `maxPeeks` anyway.
    pub force_look: bool,
    /// Alpha spending over looks.
    pub spending: Spending,
    /// Bad input lines tolerated before giving up.
    pub max_bad_lines: u64,
    /// Threads parsing JSON-lines input (1: the calling thread only); the
    /// report is the same for any number.
    pub threads: usize,
    /// Thresholds not in the config.
    pub settings: Settings,
}

/// Why a run produced no report.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The config did not load.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// A named experiment is not in the config.
    #[error("experiment {0:?} is not in the config")]
    UnknownExperiment(String),
    /// Nothing to analyse.
    #[error("the config has no experiment with two or more variants to analyse")]
    NothingToAnalyse,
    /// An input file could not be read.
    #[error("{0}")]
    Input(#[from] InputError),
    /// Too many bad lines.
    #[error("{} bad input line(s), more than --max-bad-lines {max}:\n{}{}", stats.bad_lines, stats.bad_examples.iter().map(|b| format!("  {b}\n")).collect::<String>(), if stats.bad_lines > stats.bad_examples.len() as u64 { "  ...\n" } else { "" })]
    BadLines {
        /// The counts and the first bad lines.
        stats: Box<InputStats>,
        /// The tolerance.
        max: u64,
    },
    /// A limit was hit.
    #[error("{0}")]
    Cohort(#[from] CohortError),
    /// The statistics file is unusable.
    #[error("{0}")]
    Stats(#[from] StatsError),
    /// The look ledger is unusable.
    #[error("{0}")]
    Ledger(#[from] LedgerError),
    /// Looks beyond the plan.
    #[error("look refused: {}; every look spends alpha, and these experiments have spent all of theirs. Pass --force-look to see descriptive estimates anyway (recorded as forced)", .0.iter().map(|(e, n, m)| format!("{e} would be look {n} of maxPeeks {m}")).collect::<Vec<_>>().join(", "))]
    LookRefused(Vec<(String, u32, u32)>),
}

impl AnalyzeError {
    /// The documented exit code: 5 for a refused look, 1 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            AnalyzeError::LookRefused(_) => 5,
            _ => 1,
        }
    }
}

/// Runs the analysis and records the looks taken in the ledger.
pub fn run(opts: &Options) -> Result<Report, AnalyzeError> {
    let snapshot = Snapshot::load(&opts.config)?;
    for name in &opts.experiments {
        if snapshot.experiment(name).is_none() {
            return Err(AnalyzeError::UnknownExperiment(name.clone()));
        }
    }
    let plans: Vec<Plan> = snapshot
        .experiments()
        .iter()
        .filter(|e| opts.experiments.is_empty() || opts.experiments.iter().any(|k| **k == *e.key))
        .filter(|e| e.variants.len() >= 2)
        .map(Plan::of)
        .collect();
    if plans.is_empty() {
        return Err(AnalyzeError::NothingToAnalyse);
    }
    // Looks are checked before any data is read.
    let mut ledger = Ledger::open(&opts.ledger)?;
    let mut looks = Vec::with_capacity(plans.len());
    let mut refused = Vec::new();
    for p in &plans {
        let planned = p.max_peeks.min(spending::MAX_LOOKS);
        let number = if p.peeks_tracked {
            ledger.next_look(&p.experiment)
        } else {
            1
        };
        let forced = number > planned;
        if forced && !opts.force_look {
            refused.push((p.experiment.clone(), number, planned));
        }
        let nominal_alpha = if forced {
            0.0
        } else {
            spending::nominal_alpha(spending::boundary(p.alpha, planned, number, opts.spending))
        };
        looks.push(Look {
            number,
            planned,
            nominal_alpha,
            forced,
        });
    }
    if !refused.is_empty() {
        return Err(AnalyzeError::LookRefused(refused));
    }
    let (plans, summaries, input, unmatched) = match &opts.source {
        Source::Stats(path) => {
            let s = summary::read_stats(path, &plans)?;
            (plans, s, None, None)
        }
        Source::Events(paths) => {
            let mut cohorts = Cohorts::new(plans, snapshot.version());
            let mut stats = InputStats::default();
            let mut failure = None;
            input::scan(paths, opts.threads, Pass::All, &mut stats, |r| {
                if let (Record::Exposure(x), None) = (&r, &failure) {
                    failure = cohorts.expose(x).err();
                }
            })?;
            if stats.bad_lines > opts.max_bad_lines {
                return Err(AnalyzeError::BadLines {
                    stats: Box::new(stats),
                    max: opts.max_bad_lines,
                });
            }
            if let Some(e) = failure {
                return Err(e.into());
            }
            cohorts.exposures_done();
            if stats.outcomes > 0 {
                let mut again = InputStats::default();
                input::scan(paths, opts.threads, Pass::Outcomes, &mut again, |r| {
                    if let (Record::Outcome(o), None) = (&r, &failure) {
                        failure = cohorts.outcome(o).err();
                    }
                })?;
            }
            if let Some(e) = failure {
                return Err(e.into());
            }
            let unmatched = cohorts.unmatched.clone();
            let (plans, s) = cohorts.finish();
            (plans, s, Some(stats), Some(unmatched))
        }
    };
    let experiments: Vec<_> = plans
        .iter()
        .zip(&summaries)
        .zip(&looks)
        .map(|((p, s), l)| evaluate(p, s, *l, &opts.settings))
        .collect();
    let mut record = false;
    for (p, e) in plans.iter().zip(&experiments) {
        if p.peeks_tracked {
            ledger.record(&p.experiment, e.integrity.counts.units, e.look.forced);
            record = true;
        }
    }
    if record {
        ledger.save()?;
    }
    Ok(Report {
        config_version: snapshot.version().to_owned(),
        input,
        unmatched,
        rollback_recommended: experiments.iter().any(|e| !e.rollback.is_empty()),
        experiments,
    })
}
