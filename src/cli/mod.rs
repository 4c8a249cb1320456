//! The command line: one subcommand per file.

pub mod assign;
pub mod diff;
pub mod schema;
pub mod serve;
pub mod serve_exposure;
pub mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// cohortd assigns experiment variants deterministically.
///
/// Assignment is a pure function of the config and the unit id: the same config
/// gives the same variant on every pod, forever. Run `cohortd serve` as a sidecar,
/// or use `validate` and `assign` offline.
#[derive(Debug, Parser)]
#[command(name = "cohortd", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve assignments over gRPC as a sidecar (health, reflection, /metrics).
    ///
    /// Loads the config directory, listens on 127.0.0.1:8013 (gRPC) and
    /// 127.0.0.1:8014 (management HTTP), and stops gracefully on SIGTERM or SIGINT.
    Serve(Box<serve::Args>),
    /// Check a config directory (or file) and print every problem found.
    ///
    /// Exits 0 with a one-line summary when the config is valid, 1 otherwise.
    Validate(validate::Args),
    /// Assign units read as JSON lines from stdin, writing one JSON line each.
    ///
    /// Each input line is a context object such as {"userId":"u1","region":"US"}.
    /// Analysts use this to reconstruct cohorts from the config that was in force.
    Assign(assign::Args),
    /// Show what a config change does to every experiment's cohort.
    ///
    /// For each changed experiment: the causes and the fractions of eligible units
    /// that change variant, leave or join. Exits 3 when a running experiment would
    /// reassign enrolled units without an assignment.epoch bump, 1 on invalid
    /// input, 0 otherwise.
    Diff(diff::Args),
    /// Print the JSON Schema of the config format.
    Schema(schema::Args),
}

/// The config location shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Directory of *.json / *.yaml / *.yml config files, or a single file.
    #[arg(
        long = "config-dir",
        short = 'c',
        value_name = "PATH",
        env = "COHORTD_CONFIG_DIR"
    )]
    pub config_dir: PathBuf,
}
