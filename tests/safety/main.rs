//! Cohort safety: diff fractions (exact vs simulated), the reload guard end to end,
//! ramp schedules, the JSON Schema and the `diff` / `schema` / `assign --at` CLI.

mod cli;
mod diff;
mod guard;
mod schedule;
mod schema;
mod watch;

use cohortd::config::{parse_sources, RawFile};
use cohortd::Snapshot;

/// Compiles one in-memory JSON or YAML file (the extension picks the format).
pub fn snap_named(name: &str, text: &str) -> Snapshot {
    let files = vec![RawFile {
        path: name.into(),
        bytes: text.as_bytes().to_vec(),
    }];
    let parsed = parse_sources(&files).unwrap_or_else(|e| panic!("{e}"));
    Snapshot::compile(&parsed).unwrap_or_else(|e| panic!("{e}"))
}

/// Compiles one in-memory JSON file.
pub fn snap(text: &str) -> Snapshot {
    snap_named("exp.json", text)
}
