//! Exposure export sits beside the request path: transports hand each exposure to
//! an [`ExposureSink`], which must return at once (queue, drop and count; never
//! block an assignment).
//!
//! The real sink is [`pipeline::ExposurePipeline`]: [`dedup`] (once per unit,
//! variant and config version per window), [`counts`] and the live [`srm`] check,
//! then a bounded queue to a background task that exports through [`otel`]
//! (OTLP/gRPC spans and log records with a deterministic [`id`]). Requests get a
//! server span continuing the caller's W3C trace context from
//! [`trace_context`], so exposures join the caller's trace.

use crate::engine::{Assignment, Context};

pub mod counts;
pub mod dedup;
pub mod id;
pub mod metrics;
pub mod otel;
pub mod pipeline;
pub mod privacy;
pub mod srm;
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
    /// Which transport reported it: `assign`, `assign_all`, `log_exposures`, `flagd`.
    pub source: &'static str,
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
