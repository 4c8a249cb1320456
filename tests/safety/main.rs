//! Cohort safety: diff fractions (exact vs simulated), the reload guard end to end,
//! ramp schedules, the JSON Schema and the `diff` / `schema` / `assign --at` CLI.

// The shared kit lives one directory up; this binary's root is tests/safety/.
#[path = "../support/mod.rs"]
mod support;

mod cli;
mod diff;
mod guard;
mod guard_key;
mod schedule;
mod schema;
mod watch;
