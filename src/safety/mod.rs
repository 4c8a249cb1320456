//! Cohort safety: config changes must not silently move units between cohorts.
//!
//! * [`diff`]: what a change does to each experiment (causes, exact fractions);
//! * [`cause`]: the causes a diff reports, explained and rendered;
//! * [`exact`]: the formulas behind those fractions;
//! * [`flagd_diff`]: the same for flagd-format flags (reported, never refused);
//! * [`simulate`]: the same fractions estimated on a synthetic population;
//! * [`guard`]: the policy that refuses reshuffles of running experiments, used by
//!   `cohortd diff` and by every reload.
//!
//! Ramp schedules (evaluated on the request path) live in
//! [`crate::snapshot::schedule`]; the JSON Schema in [`crate::config::schema`].

pub mod cause;
pub mod diff;
pub mod exact;
pub mod flagd_diff;
pub mod guard;
pub mod simulate;
pub mod summary;
