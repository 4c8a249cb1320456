//! Exposure export sits beside the request path: transports hand each exposure to
//! an [`ExposureSink`], which must return at once (queue, drop and count; never
//! block an assignment).

use crate::engine::Assignment;

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
}

/// A sink that drops everything: export is off.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopSink;

impl ExposureSink for NoopSink {
    #[inline]
    fn record(&self, _: &Exposure<'_>) {}
}
