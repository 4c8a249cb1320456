//! The command line: one subcommand per file.

pub mod analyze;
pub mod assign;
pub mod diff;
pub mod duration;
pub mod list;
pub mod schema;
pub mod security;
pub mod serve;
pub mod serve_exposure;
pub mod validate;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

/// A gRPC sidecar that assigns experiment variants deterministically, hot-reloads
/// configs from a ConfigMap volume and exports exposures through OpenTelemetry.
///
/// Assignment is a pure function of the config and the unit id: the same config
/// gives the same variant on every pod, forever. Run `cohortd serve` as a sidecar,
/// or use `validate` and `assign` offline.
#[derive(Debug, Parser)]
#[command(name = "cohortd", version, max_term_width = 100)]
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
    /// Analyse exposures and outcomes: integrity, SRM, effects, peeking, guardrails (docs/analysis.md).
    Analyze(Box<analyze::Args>),
    /// List the experiments of a config: key, status, traffic, variants, version.
    ///
    /// Reads a config directory (or file) like `validate`; a running sidecar lists
    /// what it serves at http://127.0.0.1:8014/experiments.
    List(list::Args),
    /// Print the JSON Schema of the config format.
    Schema(schema::Args),
}

/// The config location shared by `serve`, `validate`, `assign` and `list`: a
/// positional path or `--config-dir` (or `COHORTD_CONFIG_DIR`), whichever the
/// reader finds natural.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Directory of *.json / *.yaml / *.yml config files, or a single file (the
    /// same as --config-dir).
    #[arg(value_name = "PATH", conflicts_with = "config_dir")]
    pub path: Option<PathBuf>,
    /// Directory of *.json / *.yaml / *.yml config files, or a single file.
    #[arg(
        long = "config-dir",
        short = 'c',
        value_name = "PATH",
        env = "COHORTD_CONFIG_DIR",
        required_unless_present = "path"
    )]
    pub config_dir: Option<PathBuf>,
}

impl ConfigArg {
    /// The path given, positional or `--config-dir` (clap requires one).
    pub fn path(&self) -> &Path {
        self.path
            .as_deref()
            .or(self.config_dir.as_deref())
            .unwrap_or(Path::new("."))
    }
}
