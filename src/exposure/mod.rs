//! Exposure export sits beside the request path: transports hand each exposure to
//! an [`ExposureSink`], which must return at once (queue, drop and count; never
//! block an assignment).
//!
//! The real sink is [`pipeline::ExposurePipeline`]: [`dedup`] (once per unit,
//! variant and config version per window), [`counts`] and the live [`srm`] check
//! (also within each [`stratum`], which exposures carry for offline analysis),
//! then a bounded queue to a background task that exports through [`otel`]
//! (OTLP/gRPC spans and log records with a deterministic [`id`]). Requests get a
//! server span continuing the caller's W3C trace context from
//! [`trace_context`], so exposures join the caller's trace. Outcome events
//! ([`outcome`], from `Track`) share the sink, queue and exporter.

use crate::engine::context::UnitBuf;
use crate::engine::{Assignment, Context};

pub mod counts;
pub mod dedup;
pub mod id;
pub mod metrics;
pub mod otel;
pub mod outcome;
pub mod pipeline;
pub mod privacy;
pub mod srm;
pub mod stratum;
pub mod trace_context;

/// One exposure: an enrolled unit that the caller reports as seeing its variant.
#[derive(Debug, Clone, Copy)]
pub struct Exposure<'a> {
    /// The assignment that was exposed (experiment, variant, reason).
    pub assignment: Assignment<'a>,
    /// The unit id as a string (the experiment's hash attribute).
    pub unit: &'a str,
    /// The config version that produced the assignment.
    pub config_version: &'a str,
    /// Which transport reported it.
    pub source: Source,
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

/// The one way a transport reports an exposure: builds it from the assignment,
/// reading the unit id from `ctx` with the same rules as hashing, and hands it to
/// `sink` with its context. Not enrolled, or no usable unit: nothing is recorded.
pub fn expose(
    sink: &dyn ExposureSink,
    assignment: &Assignment<'_>,
    ctx: &dyn Context,
    config_version: &str,
    source: Source,
) {
    if !assignment.enrolled {
        return;
    }
    let mut buf = UnitBuf::default();
    let seen = ctx.get(&assignment.experiment.hash_key);
    // Enrolled implies a usable unit; its bytes came from a string or a number.
    let Some(unit) = buf
        .unit_bytes(seen)
        .and_then(|b| std::str::from_utf8(b).ok())
    else {
        return;
    };
    sink.record_in(
        &Exposure {
            assignment: *assignment,
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
