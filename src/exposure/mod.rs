//! Exposure export sits beside the request path: transports hand each exposure to
//! an [`ExposureSink`], which must return at once (queue, drop and count; never
//! block an assignment).
//!
//! The real sink is [`pipeline::ExposurePipeline`]: [`dedup`] (once per unit,
//! variant and config version per window), [`counts`] and the live [`srm`] check
//! (also within each [`stratum`], which exposures carry for offline analysis),
//! then a bounded queue to a background task ([`export_task`]) that exports
//! OTLP/gRPC log records built directly ([`otlp_logs`], configured by
//! [`otlp_env`]) and, when on, spans through the SDK ([`otel`]), each with a
//! deterministic [`id`]. Requests get a
//! server span continuing the caller's W3C trace context from
//! [`trace_context`], so exposures join the caller's trace. Outcome events
//! ([`outcome`], from `Track`) share the sink, queue and exporter.

use crate::engine::context::UnitBuf;
use crate::engine::resolve::{Flag, Resolution};
use crate::engine::{Assignment, Context};
use crate::snapshot::flagd::FlagdFlag;

mod attr_cache;
pub mod counts;
pub mod dedup;
mod export_task;
pub use export_task::EXPORT_NICE;
pub mod id;
pub mod metrics;
pub mod otel;
pub mod otlp_env;
pub mod otlp_logs;
pub mod outcome;
pub mod pipeline;
pub mod privacy;
mod queue;
pub mod srm;
pub mod stratum;
pub mod trace_context;
mod wire;

/// One exposure: a unit that the caller reports as seeing its variant.
#[derive(Debug, Clone, Copy)]
pub struct Exposure<'a> {
    /// What was exposed: an experiment's assignment or a flagd flag's variant.
    pub subject: Subject<'a>,
    /// The unit id as a string (the experiment's hash attribute, or a flagd
    /// flag's `targetingKey`).
    pub unit: &'a str,
    /// The config version that produced the assignment.
    pub config_version: &'a str,
    /// Which transport reported it.
    pub source: Source,
}

/// What an exposure is of. The two formats share dedup, counts, ids and
/// export; only experiments carry an epoch and a salt (flagd has neither, so
/// its exposures say nothing of them) and only experiments feed the live SRM
/// check (see docs/exposures.md).
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A cohortd experiment's assignment (enrolled units only).
    Experiment(Assignment<'a>),
    /// A flagd-format flag whose targeting went through `fractional`.
    Flagd(FlagdExposure<'a>),
}

/// The exposed variant of a flagd-format flag.
#[derive(Debug, Clone, Copy)]
pub struct FlagdExposure<'a> {
    /// The flag (its key, and its merged flag-set metadata).
    pub flag: &'a FlagdFlag,
    /// The variant served.
    pub variant: &'a str,
    /// `fractional` chose the variant (`split`); otherwise a branch that saw
    /// its result did (`targeting_match`).
    pub split: bool,
}

/// The context attribute a flagd flag's exposure takes its unit from.
pub const FLAGD_UNIT_ATTRIBUTE: &str = "targetingKey";

impl<'a> Subject<'a> {
    /// The exposure decision of one single-flag evaluation: an enrolled
    /// experiment unit, or a flagd flag that served a variant named by
    /// targeting that went through `fractional`. `None`: not an exposure.
    pub fn of(r: &Resolution<'a>) -> Option<Subject<'a>> {
        match r.flag {
            Flag::Experiment(_) => r.assignment.filter(|a| a.enrolled).map(Subject::Experiment),
            Flag::Flagd(flag, _) => {
                let variant = r.variant.filter(|_| r.bucketed)?;
                Some(Subject::Flagd(FlagdExposure {
                    flag,
                    variant,
                    split: r.split,
                }))
            }
        }
    }

    /// The flag or experiment key (`feature_flag.key`).
    pub fn key(&self) -> &'a str {
        match self {
            Subject::Experiment(a) => &a.experiment.key,
            Subject::Flagd(f) => f.flag.key(),
        }
    }

    /// The variant key (`feature_flag.result.variant`).
    pub fn variant(&self) -> &'a str {
        match self {
            Subject::Experiment(a) => &a.variant.key,
            Subject::Flagd(f) => f.variant,
        }
    }

    /// `feature_flag.result.reason`: cohortd's reason for an experiment (`split`,
    /// `sticky`); for a flagd flag the semantic conventions' `split` or
    /// `targeting_match`.
    pub fn reason(&self) -> &'static str {
        match self {
            Subject::Experiment(a) => a.reason.as_str(),
            Subject::Flagd(f) if f.split => "split",
            Subject::Flagd(_) => "targeting_match",
        }
    }

    /// The context attribute the unit id is read from.
    pub fn unit_attribute(&self) -> &'a str {
        match self {
            Subject::Experiment(a) => &a.experiment.hash_key,
            Subject::Flagd(_) => FLAGD_UNIT_ATTRIBUTE,
        }
    }

    /// Whether this is an exposure at all (experiments: enrolled units only).
    fn counts(&self) -> bool {
        match self {
            Subject::Experiment(a) => a.enrolled,
            Subject::Flagd(_) => true,
        }
    }
}

/// Which call reported an exposure (the `cohortd.source` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// `cohortd.v1.Assignment/Assign` with `exposure: true`.
    Assign,
    /// `cohortd.v1.Assignment/AssignAll` with `exposure: true`.
    AssignAll,
    /// `cohortd.v1.Assignment/LogExposures`.
    LogExposures,
    /// A flagd evaluation (v1 or v2 `Resolve*`).
    Flagd,
    /// An OFREP single-flag evaluation.
    Ofrep,
}

impl Source {
    /// The attribute value: `assign`, `assign_all`, `log_exposures`, `flagd`, `ofrep`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Assign => "assign",
            Source::AssignAll => "assign_all",
            Source::LogExposures => "log_exposures",
            Source::Flagd => "flagd",
            Source::Ofrep => "ofrep",
        }
    }
}

/// The one way a transport reports an exposure: builds it from the subject,
/// reading the unit id from `ctx` with the same rules as hashing (the
/// experiment's hash attribute, or `targetingKey` for a flagd flag), and hands
/// it to `sink` with its context. Not enrolled, or no usable unit: nothing is
/// recorded.
pub fn expose(
    sink: &dyn ExposureSink,
    subject: Subject<'_>,
    ctx: &dyn Context,
    config_version: &str,
    source: Source,
) {
    if !subject.counts() {
        return;
    }
    let mut buf = UnitBuf::default();
    let seen = ctx.get(subject.unit_attribute());
    // An enrolled unit's bytes came from a string or a number; a flagd flag
    // without a usable targeting key records nothing (docs/exposures.md).
    let Some(unit) = buf
        .unit_bytes(seen)
        .and_then(|b| std::str::from_utf8(b).ok())
    else {
        return;
    };
    sink.record_in(
        &Exposure {
            subject,
            unit,
            config_version,
            source,
        },
        ctx,
    );
}

/// Receives exposures. Implementations must not block or fail the caller.
pub trait ExposureSink: Send + Sync + std::fmt::Debug {
    /// Records one exposure (asynchronously).
    fn record(&self, exposure: &Exposure<'_>);

    /// Records one exposure together with the evaluation context it came from,
    /// so the SRM check can read the experiment's strata attribute (`srm.strata`).
    /// Sinks that do not stratify ignore the context.
    fn record_in(&self, exposure: &Exposure<'_>, ctx: &dyn Context) {
        let _ = ctx;
        self.record(exposure);
    }

    /// Records one outcome event, deduped by its event id. Sinks that keep no
    /// dedup state (export off in tests) record every call.
    fn record_outcome(&self, outcome: &outcome::Outcome<'_>) -> outcome::OutcomeVerdict {
        let _ = outcome;
        outcome::OutcomeVerdict::Recorded
    }
}

/// A sink that drops everything: export is off.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopSink;

impl ExposureSink for NoopSink {
    #[inline]
    fn record(&self, _: &Exposure<'_>) {}
    #[inline]
    fn record_in(&self, _: &Exposure<'_>, _: &dyn Context) {}
}
